// The metadata a VM reads at 169.254.169.254, as Nova's metadata API lays it
// out, for what Seam knows from the model alone (pure): the OpenStack paths
// (network_data.json, meta_data.json) and the EC2 tree (instance id, hostname,
// addresses, MAC, public keys). A path answered here is answered the same for
// every version prefix a client asks (latest, 2009-04-04, 2017-02-22, ...).
// What it cannot answer (user data, vendor data, passwords) the service
// (service.ts) sends on to Nova when one is configured.

/** What the model says about the asking VM's port. */
export interface InstanceFacts {
  readonly port: { readonly id: string; readonly name: string; readonly mac: string; readonly deviceId: string; readonly projectId: string; readonly mtu: number };
  readonly hostname: string;
  readonly networkId: string;
  /** per fixed IP, with its subnet */
  readonly addresses: readonly {
    readonly ip: string;
    readonly cidr: string;
    readonly gateway: string | null;
    readonly routes: readonly { readonly destination: string; readonly nexthop: string }[];
    readonly dns: readonly string[];
  }[];
  /** name -> OpenSSH public key (binding:profile's public_keys) */
  readonly publicKeys: Readonly<Record<string, string>>;
}

export type Document = { readonly type: "json"; readonly body: unknown } | { readonly type: "text"; readonly body: string };

const isV6 = (ip: string) => ip.includes(":");

function netmask(cidr: string): string {
  const [, p] = cidr.split("/");
  const prefix = Number(p);
  if (isV6(cidr)) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) {
      const bits = Math.max(0, Math.min(16, prefix - i * 16));
      groups.push(((0xffff << (16 - bits)) & 0xffff).toString(16));
    }
    return groups.join(":");
  }
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join(".");
}

/** network_data.json (Nova's format): one link, one network per fixed IP, the resolvers as services. */
export function networkData(f: InstanceFacts): unknown {
  const link = `tap${f.port.id.slice(0, 11)}`;
  const services = new Map<string, { type: "dns"; address: string }>();
  const networks = f.addresses.map((a, i) => {
    for (const d of a.dns) services.set(d, { type: "dns", address: d });
    const v6 = isV6(a.ip);
    const routes = [
      ...(a.gateway ? [{ network: v6 ? "::" : "0.0.0.0", netmask: v6 ? "::" : "0.0.0.0", gateway: a.gateway }] : []),
      ...a.routes.map((r) => ({ network: r.destination.split("/")[0]!, netmask: netmask(r.destination), gateway: r.nexthop })),
    ];
    return {
      id: `network${i}`,
      type: v6 ? "ipv6" : "ipv4",
      link,
      ip_address: a.ip,
      netmask: netmask(a.cidr),
      routes,
      network_id: f.networkId,
      services: a.dns.map((d) => ({ type: "dns", address: d })),
    };
  });
  return {
    links: [{ id: link, vif_id: f.port.id, type: "bridge", mtu: f.port.mtu, ethernet_mac_address: f.port.mac }],
    networks,
    services: [...services.values()],
  };
}

export function metaData(f: InstanceFacts): unknown {
  const keys = Object.entries(f.publicKeys);
  return {
    uuid: f.port.deviceId,
    name: f.hostname,
    hostname: f.hostname,
    launch_index: 0,
    availability_zone: "nova",
    project_id: f.port.projectId,
    public_keys: Object.fromEntries(keys),
    keys: keys.map(([name, data]) => ({ name, type: "ssh", data })),
    meta: {},
  };
}

/** The EC2 tree: directories list their children, one per line (a trailing slash for a subtree). */
function ec2(f: InstanceFacts): Record<string, string | Record<string, unknown>> {
  const v4 = f.addresses.find((a) => !isV6(a.ip))?.ip ?? "";
  const keys = Object.entries(f.publicKeys);
  return {
    "instance-id": f.port.deviceId,
    hostname: f.hostname,
    "local-hostname": f.hostname,
    "local-ipv4": v4,
    mac: f.port.mac,
    "public-keys": Object.fromEntries(keys.map(([name, key], i) => [String(i), { "openssh-key": key, _name: name }])),
    placement: { "availability-zone": "nova" },
  };
}

function walk(tree: unknown, parts: readonly string[]): Document | null {
  let node = tree;
  for (const p of parts) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, p) || p === "_name") return null;
    node = (node as Record<string, unknown>)[p];
  }
  if (typeof node === "string") return { type: "text", body: node };
  const entries = Object.entries(node as Record<string, unknown>).filter(([k]) => k !== "_name");
  // public-keys/ lists "0=name", as EC2 does
  const line = ([k, v]: [string, unknown]) => (typeof v === "string" ? k : typeof v === "object" && v && "_name" in v ? `${k}=${(v as { _name: string })._name}` : `${k}/`);
  return { type: "text", body: entries.map(line).join("\n") };
}

const VERSION = /^(latest|\d{4}-\d{2}-\d{2})$/;

/** The document at a metadata path, or null when the model cannot answer it (Nova may). */
export function documentAt(f: InstanceFacts, path: string): Document | null {
  const parts = path.split("?")[0]!.split("/").filter(Boolean);
  if (parts.length === 0) return { type: "text", body: "latest\nopenstack" };
  if (parts[0] === "openstack") {
    if (parts.length === 1) return { type: "text", body: "latest" };
    if (!VERSION.test(parts[1]!)) return null;
    if (parts.length === 2) return { type: "text", body: "meta_data.json\nnetwork_data.json" };
    if (parts.length !== 3) return null;
    if (parts[2] === "network_data.json") return { type: "json", body: networkData(f) };
    if (parts[2] === "meta_data.json") return { type: "json", body: metaData(f) };
    return null;
  }
  if (!VERSION.test(parts[0]!)) return null;
  if (parts.length === 1) return { type: "text", body: "meta-data/" };
  if (parts[1] !== "meta-data") return null;
  return walk(ec2(f), parts.slice(2));
}
