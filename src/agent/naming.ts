// Every name the agent gives a kernel object, and how it recognises its own.
//
// Devices (15 characters at most, IFNAMSIZ):
//   sbr-<net[:11]>   a network's bridge
//   svx-<vni>        a network's VXLAN device
//   tap<port[:11]>   a port's device: named by whoever runs the workload
//                    (Nova/os-vif, the CNI service; contract/naming.ts); the
//                    agent only attaches it and marks it
// Neither `brq…` nor `vxlan-…`: those are Neutron's linuxbridge agent's, and
// both agents must be able to share a host without deleting each other's.
// Every device the agent creates or attaches carries the model id in its
// ifalias (`seam:net:<id>`, `seam:port:<id>`), so operators and `seam trace`
// can map kernel to model without a table.
//
// Routers: a namespace `seam-r-<router id>` (DHCP servers have
// `seam-d-<network id>`, with `sdi-<port[:11]>` inside and `sdp-<port[:11]>`
// on the host), a distributed router's SNAT instance `seam-s-<id>`,
// and a veth per router port: `srp-<port[:11]>` on the host, plugged like a
// tap (contract/naming.ts), and inside the namespace `sri-<port[:11]>` for an
// interface, `srg-<port[:11]>` for the gateway, `srs-<port[:11]>` for a SNAT
// instance's address on an internal subnet. Where
// several hosts share one /run/netns (the lab), each agent is given a suffix
// (`@host-1`) and knows only the namespaces that carry its own.
//
// nftables: one table `seam` per family (ruleset.ts has its contract); chains,
// sets and maps below; every rule that belongs to a model object says which in
// its comment (`port:<id>`, `sg:<id>`, `rule:<id>`).

export const SEAM = "seam";

export const device = {
  bridge: (networkId: string) => `sbr-${networkId.slice(0, 11)}`,
  vxlan: (vni: number) => `svx-${vni}`,
  /** every VXLAN device of ours, as an nft interface wildcard */
  vxlanPattern: "svx-*",
  /** inside a router's namespace */
  routerInterface: (portId: string) => `sri-${portId.slice(0, 11)}`,
  routerGateway: (portId: string) => `srg-${portId.slice(0, 11)}`,
  /** a distributed router's SNAT instance's address on an internal subnet (its csnat port) */
  routerSnat: (portId: string) => `srs-${portId.slice(0, 11)}`,
  /** the DHCP port's interface inside a DHCP server's namespace (its host side is `sdp-`, contract/naming.ts) */
  dhcpInterface: (portId: string) => `sdi-${portId.slice(0, 11)}`,
  /** a DHCP server's veth to the agent's DNS relay: in its namespace, and on the host (dhcp/dns-relay.ts) */
  dhcpRelay: (networkId: string) => `sdu-${networkId.slice(0, 11)}`,
  dhcpRelayHost: (networkId: string) => `sdh-${networkId.slice(0, 11)}`,
};

/** A DHCP server's relay veth on the host (the DHCP manager's: it goes with its namespace). */
export const isDhcpRelayDevice = (name: string) => /^sdh-[0-9a-f-]{1,11}$/.test(name);

/** A router's device inside its namespace. */
export const isRouterDevice = (name: string) => /^sr[igs]-[0-9a-f-]{1,11}$/.test(name);

/**
 * The MAC a host's distributed routers send from into the overlay. Their
 * interfaces have the same MAC on every host; leaving with it, a routed frame
 * would teach other hosts' bridges that their own gateway lives behind the
 * VXLAN device. So frames from a distributed interface to the overlay leave
 * with this one instead (Neutron's DVR MAC): fa:16:3f + the VTEP's last three
 * bytes, unique within an underlay /8.
 */
export function dvrMac(vtep: string): string {
  const b = vtep.split(".").slice(1).map((x) => Number(x).toString(16).padStart(2, "0"));
  return ["fa", "16", "3f", ...b].join(":");
}

const OWNED_DEVICE = /^(sbr-[0-9a-f-]{1,11}|svx-\d{1,8})$/;
const VXLAN_DEVICE = /^svx-\d{1,8}$/;

/** A device this agent created (and so may delete when no longer wanted). */
export const isOwnedDevice = (name: string) => OWNED_DEVICE.test(name);
export const isOwnedVxlan = (name: string) => VXLAN_DEVICE.test(name);

/** What the ifalias of a device the agent manages says: the model object it stands for. */
export const alias = {
  network: (id: string) => `${SEAM}:net:${id}`,
  port: (id: string) => `${SEAM}:port:${id}`,
};

/** The model object an ifalias names, if it is one of ours. */
export function parseAlias(text: string | null | undefined): { kind: "net" | "port"; id: string } | null {
  const m = /^seam:(net|port):([0-9A-Za-z-]+)$/.exec(text ?? "");
  return m ? { kind: m[1] as "net" | "port", id: m[2]! } : null;
}

export const netns = {
  router: (routerId: string, suffix = "") => `${SEAM}-r-${routerId}${suffix}`,
  /** a distributed router's SNAT instance, on the network host */
  snat: (routerId: string, suffix = "") => `${SEAM}-s-${routerId}${suffix}`,
  dhcp: (networkId: string, suffix = "") => `${SEAM}-d-${networkId}${suffix}`,
};
/** A namespace of this agent's (its suffix, and no other agent's), with what it is for. */
const NETNS_KINDS = { r: "router", s: "snat", d: "dhcp" } as const;
export function parseNetns(name: string, suffix = ""): { kind: "router" | "snat" | "dhcp"; id: string } | null {
  if (!name.endsWith(suffix)) return null;
  const m = /^seam-([rsd])-([0-9a-f-]{36})$/.exec(name.slice(0, name.length - suffix.length));
  return m ? { kind: NETNS_KINDS[m[1] as keyof typeof NETNS_KINDS], id: m[2]! } : null;
}
export const isOwnedNetns = (name: string, suffix = "") => parseNetns(name, suffix) !== null;

/** The table Seam owns in each nftables family it uses. */
export const NFT_TABLE = SEAM;

export const chain = {
  /** bridge family: frames a port sends (mark + anti-spoofing) */
  from: (port: string) => `from-${port}`,
  /** bridge family: frames to a port (mark) */
  to: (port: string) => `to-${port}`,
  egress: (port: string) => `eg-${port}`,
  ingress: (port: string) => `in-${port}`,
  sgIn: (group: string) => `sg-${group}-in`,
  sgEg: (group: string) => `sg-${group}-eg`,
};

export const set = {
  /** bridge family: the host sides of distributed router interfaces */
  dvrPorts: "dvr_ports",
  members: (group: string, v: 4 | 6) => `m-${group}-v${v}`,
  rules: (group: string, dir: "in" | "eg", v: 4 | 6, kind: "any" | "proto" | "ports") => `r-${group}-${dir}-v${v}-${kind}`,
};

/** The port an egress chain (`eg-<port>`) is for: how port indexes are recovered from the kernel. */
export const portOfEgressChain = (name: string) => (name.startsWith("eg-") ? name.slice(3) : null);

/** An nft comment naming the model object a rule belongs to. */
export const comment = (kind: "port" | "sg" | "rule" | "router", id: string) => `comment "${kind}:${id}"`;

/** A router namespace's NAT table (family ip): its maps and chains. */
export const nat = {
  table: SEAM,
  /** floating -> fixed, for inbound */
  dnatMap: "fip_dnat",
  /** fixed -> floating, for outbound */
  snatMap: "fip_snat",
  prerouting: "prerouting",
  postrouting: "postrouting",
};

/**
 * The host's service translation (services/): table `ip seam` with a map from
 * (client bridge, VIP, protocol, port) to a chain per service port and
 * client network, and a chain per backend; policy routing so a translated
 * packet stays on its bridge: per client bridge a rule `iif sbr-…` at
 * `bridgePref` to its own table (from `firstTable` up), and a rule at
 * `refusePref` for the refusals sent from service subnets.
 */
export const svc = {
  table: SEAM,
  dispatch: "services",
  /** (client bridge, VIP, protocol, port) with no backend: refused */
  empty: "no_backends",
  prerouting: "prerouting",
  forward: "refusals",
  /** a conntrack zone per client bridge */
  zones: "zones",
  chain: (service: string, network: string, proto: string, port: number) => `svc-${service}-${network.slice(0, 8)}-${proto}-${port}`,
  backend: (proto: string, ip: string, port: number) => `ep-${proto}-${ip}-${port}`,
  bridgePref: 1000,
  refusePref: 1001,
  refuseTable: 99999,
  firstTable: 100000,
};

const AGENT_DEVICE = /\b(tap[0-9a-f-]{1,11}|s[rd]p-[0-9a-f-]{1,11}|sbr-[0-9a-f-]{1,11}|svx-\d+)\b/;

/** The device an `ip -o monitor link` line is about (`5: NAME@if3: <...>`, `Deleted 5: NAME: ...`), when it concerns the agent (ports appearing, our devices changing). */
export function monitoredDevice(line: string): string | null {
  const m = /^(?:Deleted )?\d+: ([^:@\s]+)/.exec(line);
  return m && AGENT_DEVICE.test(m[1]!) ? m[1]! : null;
}
