// The metadata service: a VM's request, relayed by the agent of the host that
// serves its network (haproxy in the network's DHCP namespace -> the agent's
// metadata socket -> here), names the network and the address it came from.
// Anti-spoofing makes that address the VM's own, so the port holding it on
// that network is the asker: no instance id travels from the VM. What the
// model answers, it answers (documents.ts); the rest goes to Nova's metadata
// API with the instance-id signature Nova checks, when one is configured, as
// Neutron's metadata agent does.
import { createHmac } from "node:crypto";
import type { Model } from "../../core/service/model.ts";
import { OWNER } from "../../core/model/owners.ts";
import { documentAt, type InstanceFacts } from "./documents.ts";

export interface NovaMetadata {
  /** e.g. http://nova:8775 */
  readonly url: string;
  /** metadata_proxy_shared_secret */
  readonly secret: string;
}

export interface MetadataAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

type View = Record<string, any>;

const notFound: MetadataAnswer = { status: 404, contentType: "text/plain", body: "Not Found" };

/** The asking port's facts, or null when no port on the network holds the address. */
export async function instanceFacts(model: Model, network: string, address: string): Promise<InstanceFacts | null> {
  const ctx = model.system;
  const [port] = (await model.find(ctx, "port", { network_id: network, fixed_ips: `ip_address=${address}` })) as View[];
  if (!port) return null;
  const net = (await model.show(ctx, "network", network)) as View;
  const subnets = new Map(((await model.find(ctx, "subnet", { network_id: network })) as View[]).map((s) => [s.id as string, s]));
  const [dhcp] = (await model.find(ctx, "port", { network_id: network, device_owner: OWNER.dhcp })) as View[];
  const dhcpIp = (subnet: string) => (dhcp?.fixed_ips as { subnet_id: string; ip_address: string }[] | undefined)?.find((f) => f.subnet_id === subnet)?.ip_address;
  const addresses = (port.fixed_ips as { subnet_id: string; ip_address: string }[]).map((f) => {
    const s = subnets.get(f.subnet_id);
    const own = dhcpIp(f.subnet_id);
    return {
      ip: f.ip_address,
      cidr: (s?.cidr as string) ?? `${f.ip_address}/32`,
      gateway: (s?.gateway_ip as string | null) ?? null,
      routes: (s?.host_routes as { destination: string; nexthop: string }[]) ?? [],
      // the same resolvers DHCP hands out: the subnet's dns_nameservers, or the network's own
      dns: (s?.dns_nameservers as string[] | undefined)?.length ? (s!.dns_nameservers as string[]) : own && s?.enable_dhcp ? [own] : [],
    };
  });
  const profile = (port["binding:profile"] ?? {}) as { public_keys?: unknown };
  const keys = profile.public_keys && typeof profile.public_keys === "object" && !Array.isArray(profile.public_keys) ? (profile.public_keys as Record<string, unknown>) : {};
  return {
    port: { id: port.id, name: port.name, mac: port.mac_address, deviceId: port.device_id || port.id, projectId: port.project_id, mtu: Number(net.mtu) || 1500 },
    hostname: (port.dns_assignment as { hostname: string }[] | undefined)?.[0]?.hostname ?? `host-${address.replace(/[.:]/g, "-")}`,
    networkId: network,
    addresses,
    publicKeys: Object.fromEntries(Object.entries(keys).filter((e): e is [string, string] => typeof e[1] === "string")),
  };
}

export async function answerMetadata(model: Model, nova: NovaMetadata | null, network: string, address: string, path: string): Promise<MetadataAnswer> {
  const facts = await instanceFacts(model, network, address);
  if (!facts) return notFound;
  const doc = documentAt(facts, path);
  if (doc) return doc.type === "json" ? { status: 200, contentType: "application/json", body: JSON.stringify(doc.body) } : { status: 200, contentType: "text/plain", body: doc.body };
  if (!nova) return notFound;
  const res = await fetch(`${nova.url.replace(/\/$/, "")}${path.startsWith("/") ? path : `/${path}`}`, {
    headers: {
      "X-Instance-ID": facts.port.deviceId,
      "X-Tenant-ID": facts.port.projectId,
      "X-Instance-ID-Signature": createHmac("sha256", nova.secret).update(facts.port.deviceId).digest("hex"),
      "X-Forwarded-For": address,
    },
    signal: AbortSignal.timeout(10_000),
  }).catch(() => null);
  if (!res) return { status: 502, contentType: "text/plain", body: "Nova's metadata API did not answer" };
  return { status: res.status, contentType: res.headers.get("content-type") ?? "text/plain", body: await res.text() };
}
