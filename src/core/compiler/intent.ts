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
  readonly groups: readonly string[];
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

export type IntentItem = NetItem | PortItem | RemoteItem | SgItem | RuleItem | MemberItem;

/** key -> item; keys say what an item is about so a delete needs no body. */
export type HostIntent = Map<string, IntentItem>;

export const key = {
  net: (id: string) => `net/${id}`,
  port: (id: string) => `port/${id}`,
  remote: (network: string, port: string) => `remote/${network}/${port}`,
  sg: (id: string) => `sg/${id}`,
  rule: (id: string) => `rule/${id}`,
  member: (group: string, port: string) => `member/${group}/${port}`,
};

export const tapName = (portId: string) => `tap${portId.slice(0, 11)}`;

/** Items of one kind, typed. */
export function itemsOf<K extends IntentItem["kind"]>(intent: ReadonlyMap<string, IntentItem>, kind: K): Extract<IntentItem, { kind: K }>[] {
  const out: Extract<IntentItem, { kind: K }>[] = [];
  for (const item of intent.values()) if (item.kind === kind) out.push(item as Extract<IntentItem, { kind: K }>);
  return out;
}
