// HostIntent: what one host's dataplane should hold, as a flat map of small
// keyed items. Flat so that a change is a handful of set/del operations on
// keys (the southbound's deltas) and so that a rule or a member address is
// one item: a group with 10,000 rules never travels whole because one changed.

/** A network this host takes part in (it has a local port on it, or serves it). */
export interface NetItem {
  readonly kind: "net";
  readonly id: string;
  readonly name: string;
  readonly type: "vxlan" | "flat" | "local" | "vlan";
  /** VNI for vxlan, VLAN id for vlan, null otherwise */
  readonly segment: number | null;
  readonly physnet: string | null;
  readonly mtu: number;
  /** the network's dns_domain (handed to pods in the CNI result), null when it has none */
  readonly dnsDomain: string | null;
  /** the resolvers its workloads use (DHCP hands them to VMs, the CNI result to pods): per DHCP subnet its dns_nameservers, or else the network's own (the DHCP port) */
  readonly resolvers: readonly string[];
  /** the other hosts' VTEPs with something on this network (head-end replication list), sorted */
  readonly vteps: readonly string[];
}

/** A port plugged on this host. */
export interface PortItem {
  readonly kind: "port";
  readonly id: string;
  readonly network: string;
  /** the kernel device: `tap` + id[:11], as Nova/os-vif name it */
  readonly device: string;
  readonly mac: string;
  /** fixed IPs with their subnet's prefix length, e.g. 10.0.0.3/24 */
  readonly addresses: readonly string[];
  /** gateway per address family present, e.g. ["10.0.0.1"] */
  readonly gateways: readonly string[];
  readonly mtu: number;
  readonly owner: string;
  readonly adminUp: boolean;
  /** null: port security disabled (no anti-spoofing, no groups) */
  readonly security: PortSecurity | null;
}

export interface PortSecurity {
  /** the groups whose rules admit traffic to the port, sorted (its security_groups, unless a NetworkPolicy isolates it) */
  readonly ingress: readonly string[];
  /** the groups whose rules admit traffic from it, sorted */
  readonly egress: readonly string[];
  /** (MAC, address or CIDR) pairs the port may send from: its own fixed IPs and the allowed address pairs */
  readonly allowed: readonly { readonly mac: string; readonly ip: string }[];
}

/** A port on another host, on a network this host takes part in: FDB + neighbour entries. */
export interface RemoteItem {
  readonly kind: "remote";
  readonly network: string;
  readonly port: string;
  readonly mac: string;
  /** host addresses only (no CIDRs): these get neighbour entries */
  readonly ips: readonly string[];
  readonly vtep: string;
  readonly host: string;
}

/** A security group used by a local port (its rules are separate items). */
export interface SgItem {
  readonly kind: "sg";
  readonly id: string;
}

export interface RuleItem {
  readonly kind: "rule";
  readonly id: string;
  readonly group: string;
  readonly direction: "ingress" | "egress";
  readonly ethertype: "IPv4" | "IPv6";
  /** canonical protocol name or number as text; null: any */
  readonly protocol: string | null;
  readonly portMin: number | null;
  readonly portMax: number | null;
  readonly remoteCidr: string | null;
  readonly remoteGroup: string | null;
}

/** One port's addresses as a member of a group that a local rule names as remote group. */
export interface MemberItem {
  readonly kind: "member";
  readonly group: string;
  readonly port: string;
  readonly ips: readonly string[];
}

/**
 * A router this host runs: a namespace with an interface per attached port
 * (their port items carry MAC, addresses and MTU), the external gateway, its
 * static routes and whether it translates outbound traffic.
 */
export interface RouterItem {
  readonly kind: "router";
  readonly id: string;
  readonly adminUp: boolean;
  /**
   * A distributed router's instance on a host with ports on its networks:
   * the same interfaces (address and MAC) on every such host, no gateway;
   * outbound traffic goes to the router's SNAT instance (a default route).
   */
  readonly distributed: boolean;
  /** router interface port ids, sorted */
  readonly interfaces: readonly string[];
  readonly gateway: RouterGateway | null;
  /** static routes (the router's `routes`), sorted by destination */
  readonly routes: readonly { readonly destination: string; readonly nexthop: string }[];
  /** router advertisements: per interface on an IPv6 subnet with an ipv6_ra_mode, the prefix and the mode (centralised routers only) */
  readonly advertise: readonly RouterAdvert[];
}

export interface RouterAdvert {
  /** the interface port */
  readonly port: string;
  readonly prefix: string;
  readonly mode: "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless";
}

export interface RouterGateway {
  /** the gateway port (network:router_gateway) */
  readonly port: string;
  readonly network: string;
  /** the external subnets' gateways: the router's default routes, one per family */
  readonly nexthops: readonly string[];
  /** SNAT outbound traffic of the internal subnets to the gateway's address (enable_snat) */
  readonly snat: boolean;
}

/**
 * A distributed router's central instance on the network host: its address
 * on each internal subnet (the interfaces here are its csnat ports), the
 * gateway, SNAT and floating IPs.
 */
export interface SnatItem extends Omit<RouterItem, "kind" | "distributed" | "advertise"> {
  readonly kind: "snat";
}

/** A floating IP associated with a fixed IP, on the router that serves it. */
export interface FipItem {
  readonly kind: "fip";
  readonly id: string;
  readonly router: string;
  readonly floating: string;
  readonly fixed: string;
  /** the port holding the fixed IP */
  readonly port: string;
}

/**
 * A network whose DHCP and DNS this host serves: a namespace holding the DHCP
 * port's interface (its port item carries MAC, addresses and MTU) and a
 * server answering from the network's dhcphost items only.
 */
export interface DhcpItem {
  readonly kind: "dhcp";
  readonly network: string;
  /** the network:dhcp port */
  readonly port: string;
  /** the network's DNS domain, without the trailing dot (openstack.local) */
  readonly domain: string;
  readonly mtu: number;
  /** the DHCP-enabled subnets, IPv4 first */
  readonly subnets: readonly DhcpSubnet[];
}

export interface DhcpSubnet {
  readonly id: string;
  readonly cidr: string;
  readonly gateway: string | null;
  /** dns_nameservers; empty: the network's resolver (the DHCP port's address) */
  readonly dns: readonly string[];
  /** the DHCP port's address on this subnet (where metadata is reached), null if it has none */
  readonly server: string | null;
  /** host_routes (classless static routes) */
  readonly routes: readonly { readonly destination: string; readonly nexthop: string }[];
  /** IPv6 only: how hosts get addresses (ipv6_address_mode); null for IPv4 */
  readonly v6Mode: "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless" | null;
}

/** One port of a network this host serves: its static assignment, its names and its extra_dhcp_opts. */
export interface DhcpHostItem {
  readonly kind: "dhcphost";
  readonly network: string;
  readonly port: string;
  readonly mac: string;
  /** per fixed IP: the name it resolves as (dns_assignment); the first IPv4 one is the DHCP hostname */
  readonly names: readonly { readonly ip: string; readonly hostname: string; readonly fqdn: string }[];
  readonly opts: readonly { readonly name: string; readonly value: string; readonly version: 4 | 6 }[];
}

/**
 * A service this host has clients of (a Kubernetes ClusterIP): traffic from
 * a client network's bridge to the VIP and a service port is translated here,
 * at the client's own host, to one of the backends that network reaches.
 */
export interface SvcItem {
  readonly kind: "svc";
  readonly id: string;
  readonly vip: string;
  /** the service subnet's CIDR: what this host's refusals for services with no backend are sent from */
  readonly subnet: string;
  /** per service port, its backends, sorted */
  readonly ports: readonly { readonly protocol: "tcp" | "udp" | "sctp"; readonly port: number; readonly targets: readonly { readonly ip: string; readonly port: number }[] }[];
  /**
   * The client networks on this host, and per network the MAC each backend it
   * reaches is sent to: the backend's port on the same network, else the
   * interface of a router joining the two. A backend missing here is not
   * used from that network.
   */
  readonly clients: readonly { readonly network: string; readonly nexthops: readonly { readonly ip: string; readonly mac: string }[] }[];
}

export type IntentItem = NetItem | PortItem | RemoteItem | SgItem | RuleItem | MemberItem | RouterItem | SnatItem | FipItem | DhcpItem | DhcpHostItem | SvcItem;

/** key -> item; keys say what an item is about so a delete needs no body. */
export type HostIntent = Map<string, IntentItem>;

export type ItemKind = IntentItem["kind"];
export type ItemOf<K extends ItemKind> = Extract<IntentItem, { kind: K }>;

/** What a key names, decoded: the key codec's other direction. */
export type KeyParts =
  | { readonly kind: "net"; readonly id: string }
  | { readonly kind: "port"; readonly id: string }
  | { readonly kind: "remote"; readonly network: string; readonly port: string }
  | { readonly kind: "sg"; readonly id: string }
  | { readonly kind: "rule"; readonly id: string }
  | { readonly kind: "member"; readonly group: string; readonly port: string }
  | { readonly kind: "router"; readonly id: string }
  | { readonly kind: "snat"; readonly id: string }
  | { readonly kind: "fip"; readonly id: string }
  | { readonly kind: "dhcp"; readonly network: string }
  | { readonly kind: "dhcphost"; readonly network: string; readonly port: string }
  | { readonly kind: "svc"; readonly id: string };

// Every kind spells its key here and nowhere else; a kind added to IntentItem
// without a line in KEYS (or in KeyParts) does not compile.
const KEYS: { readonly [K in ItemKind]: (p: Omit<Extract<KeyParts, { kind: K }>, "kind">) => string } = {
  net: (p) => `net/${p.id}`,
  port: (p) => `port/${p.id}`,
  remote: (p) => `remote/${p.network}/${p.port}`,
  sg: (p) => `sg/${p.id}`,
  rule: (p) => `rule/${p.id}`,
  member: (p) => `member/${p.group}/${p.port}`,
  router: (p) => `router/${p.id}`,
  snat: (p) => `snat/${p.id}`,
  fip: (p) => `fip/${p.id}`,
  dhcp: (p) => `dhcp/${p.network}`,
  dhcphost: (p) => `dhcphost/${p.network}/${p.port}`,
  svc: (p) => `svc/${p.id}`,
};

export const key = {
  net: (id: string) => KEYS.net({ id }),
  port: (id: string) => KEYS.port({ id }),
  remote: (network: string, port: string) => KEYS.remote({ network, port }),
  sg: (id: string) => KEYS.sg({ id }),
  rule: (id: string) => KEYS.rule({ id }),
  member: (group: string, port: string) => KEYS.member({ group, port }),
  router: (id: string) => KEYS.router({ id }),
  snat: (id: string) => KEYS.snat({ id }),
  fip: (id: string) => KEYS.fip({ id }),
  dhcp: (network: string) => KEYS.dhcp({ network }),
  dhcphost: (network: string, port: string) => KEYS.dhcphost({ network, port }),
  svc: (id: string) => KEYS.svc({ id }),
};

/** A key decoded; null for a key no kind spells (a newer server's, say: ignored, never guessed). */
export function parseKey(k: string): KeyParts | null {
  // on the hub's hot path (every key of every concerned host): indexOf, no split
  const i = k.indexOf("/");
  if (i < 0) return null;
  const j = k.indexOf("/", i + 1);
  const kind = k.slice(0, i);
  const a = k.slice(i + 1, j < 0 ? undefined : j);
  const b = j < 0 ? undefined : k.slice(j + 1);
  if (!a || (b !== undefined && (!b || b.includes("/")))) return null;
  switch (kind) {
    case "net":
    case "port":
    case "sg":
    case "rule":
    case "router":
    case "snat":
    case "fip":
    case "svc":
      return b === undefined ? { kind, id: a } : null;
    case "dhcp":
      return b === undefined ? { kind, network: a } : null;
    case "dhcphost":
      return b ? { kind, network: a, port: b } : null;
    case "remote":
      return b ? { kind, network: a, port: b } : null;
    case "member":
      return b ? { kind, group: a, port: b } : null;
    default:
      return null;
  }
}

/** Items of one kind, typed. */
export function itemsOf<K extends ItemKind>(intent: ReadonlyMap<string, IntentItem>, kind: K): ItemOf<K>[] {
  const out: ItemOf<K>[] = [];
  for (const item of intent.values()) if (item.kind === kind) out.push(item as ItemOf<K>);
  return out;
}
