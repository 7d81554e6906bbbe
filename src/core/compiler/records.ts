// The model as the compiler reads it: typed records decoded once, at the
// World's boundary, from the admin views the change log carries. Nothing past
// this file casts a view; a resolver that needs a fact not here adds a field
// here, so what the compiler depends on is written down in one place.
import type { NetItem, RuleItem } from "../../contract/intent.ts";
import { isNetworkHostPort } from "../model/owners.ts";
import { NETWORK_ROLE } from "../model/placement.ts";

/** A view as the change log carries it (a resource's admin view). */
export type View = Readonly<Record<string, unknown>>;

/** A network as its item carries it, less what the compiler adds (the other hosts' VTEPs, the resolvers). */
export type NetworkRec = Omit<NetItem, "kind" | "vteps" | "resolvers">;

export interface SubnetRec {
  readonly id: string;
  readonly network: string;
  readonly cidr: string;
  readonly gateway: string | null;
  readonly enableDhcp: boolean;
  /** dns_nameservers; empty: the network's own resolver (the DHCP port) */
  readonly dnsServers: readonly string[];
  readonly hostRoutes: readonly { readonly destination: string; readonly nexthop: string }[];
  /** ipv6_address_mode (null for IPv4, and for IPv6 subnets that set none) */
  readonly v6AddressMode: "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless" | null;
  /** ipv6_ra_mode: what the subnet's router advertises (null: it sends no advertisements) */
  readonly v6RaMode: "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless" | null;
}

/** One fixed IP's names (the port's dns_assignment, as the model computed it). */
export interface DnsName {
  readonly ip: string;
  readonly hostname: string;
  /** with the trailing dot */
  readonly fqdn: string;
}

export interface DhcpOpt {
  readonly name: string;
  readonly value: string;
  readonly version: 4 | 6;
}

export interface PortRec {
  readonly id: string;
  readonly network: string;
  /** bound host; "" when unbound */
  readonly host: string;
  readonly mac: string;
  readonly fixedIps: readonly { readonly subnet: string; readonly ip: string }[];
  /** allowed address pairs, the MAC defaulted to the port's */
  readonly pairs: readonly { readonly mac: string; readonly ip: string }[];
  readonly groups: readonly string[];
  /** groups it is a member of as a remote group: its security_groups and its `seam:policy` member_of, sorted */
  readonly memberOf: readonly string[];
  /** groups whose rules filter each direction: its security_groups, or what `seam:policy` says instead */
  readonly filters: { readonly ingress: readonly string[]; readonly egress: readonly string[] };
  /** port_security_enabled */
  readonly secured: boolean;
  readonly owner: string;
  /** device_id: for router ports, the router */
  readonly deviceId: string;
  readonly adminUp: boolean;
  /** carried by a network host for its network (router interface, DHCP): unbound `network:*` */
  readonly onNetworkHost: boolean;
  /** dns_assignment: the name each fixed IP resolves as */
  readonly names: readonly DnsName[];
  /** extra_dhcp_opts */
  readonly dhcpOpts: readonly DhcpOpt[];
}

/** A rule is sent as it is read: the rule item is the record (contract/intent.ts), kind aside. */
export type RuleRec = Omit<RuleItem, "kind">;

export interface GroupRec {
  readonly id: string;
  /**
   * The rules the group's view embeds (default groups are born with theirs).
   * When present they are the whole truth for the group: the World turns them
   * into rule changes, so rules have one source inside the compiler.
   */
  readonly rules: readonly RuleRec[] | null;
}

export interface RouterRec {
  readonly id: string;
  readonly adminUp: boolean;
  /** the external network and whether to SNAT to it; null: no gateway */
  readonly gateway: { readonly network: string; readonly snat: boolean } | null;
  readonly routes: readonly { readonly destination: string; readonly nexthop: string }[];
  readonly distributed: boolean;
}

export interface FloatingIpRec {
  readonly id: string;
  readonly floating: string;
  /** null: not associated */
  readonly router: string | null;
  readonly port: string | null;
  readonly fixed: string | null;
}

export interface AgentRec {
  readonly id: string;
  readonly host: string;
  readonly vtep: string | null;
  readonly roles: readonly string[];
}

/** A service (VIP + backends per port): what the client hosts' DNAT is compiled from. */
export interface ServiceRec {
  readonly id: string;
  /** the service subnet's network, and the subnet the VIP is on */
  readonly network: string;
  readonly subnet: string;
  readonly vip: string;
  readonly ports: readonly ServicePortRec[];
}

export interface ServicePortRec {
  readonly protocol: "tcp" | "udp" | "sctp";
  readonly port: number;
  /** the backends: address and port, and the Seam port holding the address (null: not a port Seam knows) */
  readonly targets: readonly { readonly ip: string; readonly port: number; readonly portId: string | null }[];
}

/** Record type per change-log kind the compiler reads. */
export interface Records {
  readonly network: NetworkRec;
  readonly subnet: SubnetRec;
  readonly port: PortRec;
  readonly security_group: GroupRec;
  readonly security_group_rule: RuleRec;
  readonly router: RouterRec;
  readonly floatingip: FloatingIpRec;
  readonly agent: AgentRec;
  readonly service: ServiceRec;
}
export type ModelKind = keyof Records;

const str = (v: unknown, dflt = ""): string => (typeof v === "string" ? v : dflt);
const strOrNull = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const numOrNull = (v: unknown): number | null => (typeof v === "number" ? v : null);
const list = <T>(v: unknown): readonly T[] => (Array.isArray(v) ? (v as T[]) : []);

function rule(v: View, group?: string): RuleRec {
  return {
    id: str(v.id),
    group: group ?? str(v.security_group_id),
    direction: v.direction === "egress" ? "egress" : "ingress",
    ethertype: v.ethertype === "IPv6" ? "IPv6" : "IPv4",
    protocol: v.protocol === null || v.protocol === undefined ? null : String(v.protocol),
    portMin: numOrNull(v.port_range_min),
    portMax: numOrNull(v.port_range_max),
    remoteCidr: strOrNull(v.remote_ip_prefix),
    remoteGroup: strOrNull(v.remote_group_id),
  };
}

// One decoder per kind: a kind added to Records without one does not compile.
const DECODERS: { readonly [K in ModelKind]: (v: View) => Records[K] } = {
  network: (v) => ({
    id: str(v.id),
    name: str(v.name),
    type: str(v["provider:network_type"], "local") as NetworkRec["type"],
    segment: numOrNull(v["provider:segmentation_id"]),
    physnet: strOrNull(v["provider:physical_network"]),
    mtu: numOrNull(v.mtu) ?? 1500,
    dnsDomain: strOrNull(v.dns_domain),
  }),
  subnet: (v) => ({
    id: str(v.id),
    network: str(v.network_id),
    cidr: str(v.cidr),
    gateway: strOrNull(v.gateway_ip),
    enableDhcp: v.enable_dhcp !== false,
    dnsServers: list<string>(v.dns_nameservers),
    hostRoutes: list<{ destination: string; nexthop: string }>(v.host_routes).map((r) => ({ destination: r.destination, nexthop: r.nexthop })),
    v6AddressMode: (strOrNull(v.ipv6_address_mode) as SubnetRec["v6AddressMode"]) ?? null,
    v6RaMode: (strOrNull(v.ipv6_ra_mode) as SubnetRec["v6RaMode"]) ?? null,
  }),
  port: (v) => {
    const mac = str(v.mac_address);
    const host = str(v["binding:host_id"]);
    const owner = str(v.device_owner);
    const groups = [...list<string>(v.security_groups)].sort();
    const policy = v["seam:policy"] as { ingress?: string[] | null; egress?: string[] | null; member_of?: string[] } | null | undefined;
    return {
      id: str(v.id),
      network: str(v.network_id),
      host,
      mac,
      fixedIps: list<{ subnet_id: string; ip_address: string }>(v.fixed_ips).map((f) => ({ subnet: f.subnet_id, ip: f.ip_address })),
      pairs: list<{ ip_address: string; mac_address?: string }>(v.allowed_address_pairs).map((a) => ({ mac: a.mac_address || mac, ip: a.ip_address })),
      groups,
      memberOf: [...new Set([...groups, ...list<string>(policy?.member_of)])].sort(),
      filters: { ingress: policy?.ingress ? [...policy.ingress].sort() : groups, egress: policy?.egress ? [...policy.egress].sort() : groups },
      secured: v.port_security_enabled !== false,
      owner,
      deviceId: str(v.device_id),
      adminUp: v.admin_state_up !== false,
      onNetworkHost: isNetworkHostPort(owner, host),
      names: list<{ ip_address: string; hostname: string; fqdn: string }>(v.dns_assignment).map((a) => ({ ip: a.ip_address, hostname: a.hostname, fqdn: a.fqdn })),
      dhcpOpts: list<{ opt_name: string; opt_value: string; ip_version?: number }>(v.extra_dhcp_opts).map((o) => ({ name: o.opt_name, value: o.opt_value, version: o.ip_version === 6 ? 6 : 4 })),
    };
  },
  security_group: (v) => {
    const id = str(v.id);
    return { id, rules: Array.isArray(v.security_group_rules) ? list<View>(v.security_group_rules).map((r) => rule(r, id)) : null };
  },
  security_group_rule: (v) => rule(v),
  router: (v) => {
    const gw = v.external_gateway_info as View | null | undefined;
    const network = gw ? str(gw.network_id) : "";
    return {
      id: str(v.id),
      adminUp: v.admin_state_up !== false,
      gateway: network ? { network, snat: gw!.enable_snat !== false } : null,
      routes: list<{ destination: string; nexthop: string }>(v.routes).map((r) => ({ destination: r.destination, nexthop: r.nexthop })),
      distributed: v.distributed === true,
    };
  },
  floatingip: (v) => ({ id: str(v.id), floating: str(v.floating_ip_address), router: strOrNull(v.router_id), port: strOrNull(v.port_id), fixed: strOrNull(v.fixed_ip_address) }),
  service: (v) => ({
    id: str(v.id),
    network: str(v.network_id),
    subnet: str(v.subnet_id),
    vip: str(v.vip_address),
    ports: list<{ protocol: ServicePortRec["protocol"]; port: number; targets?: { ip_address: string; port: number; port_id?: string | null }[] }>(v.ports).map((p) => ({
      protocol: p.protocol,
      port: p.port,
      targets: list<{ ip_address: string; port: number; port_id?: string | null }>(p.targets).map((t) => ({ ip: t.ip_address, port: t.port, portId: t.port_id ?? null })),
    })),
  }),
  agent: (v) => {
    const conf = (v.configurations ?? {}) as View;
    return { id: str(v.id), host: str(v.host), vtep: strOrNull(conf.tunneling_ip), roles: list<string>(conf.roles) };
  },
};

export const MODEL_KINDS = Object.keys(DECODERS) as readonly ModelKind[];

export const isModelKind = (kind: string): kind is ModelKind => Object.hasOwn(DECODERS, kind);

export function decode<K extends ModelKind>(kind: K, view: View): Records[K] {
  return DECODERS[kind](view);
}

export const isNetworkHost = (a: AgentRec | undefined) => Boolean(a?.roles.includes(NETWORK_ROLE));
