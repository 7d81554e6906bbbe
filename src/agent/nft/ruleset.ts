// HostIntent -> the two nftables tables Seam owns on a host (pure).
//
// This kernel has no bridge conntrack, so filtering is split:
//   table bridge seam, hook forward prio -200 (before br_netfilter): per port,
//     `from-<port>` (frames the port sends) marks the packet with the port's
//     index in the high 16 bits and drops spoofed MACs/IPs (ARP included);
//     `to-<port>` marks the low 16 bits with the index of the port it goes to.
//   table inet seam, hook forward (br_netfilter hands bridged IP packets to it,
//     with the bridge as interface, hence the marks): conntrack first, then the
//     mark's halves pick the sender's egress chain (prio 0) and the receiver's
//     ingress chain (prio 10). An `accept` ends one base chain, not the packet,
//     so a packet leaves a port's egress and still meets the other's ingress.
//   Security groups are chains shared by the ports using them; remote groups
//   are address sets, so rule count does not grow with members.
import { type IntentItem, itemsOf, key, type PortItem, type RuleItem } from "../../contract/intent.ts";
import { ICMP_PROTOCOLS, PORT_PROTOCOLS, protocolNumber } from "../../net/protocols.ts";
import { chain, comment, device, NFT_TABLE, set } from "../naming.ts";
import { collapse } from "./addresses.ts";
import { groupRuleSets } from "./group-rules.ts";

export interface SetSpec {
  readonly decl: string;
  readonly elements: readonly string[];
  /** elements never overlap and are edited one by one; otherwise (auto-merge) the set is refilled whole */
  readonly exact?: boolean;
}
export interface MapSpec {
  readonly decl: string;
  /** key -> value, as nft text */
  readonly elements: ReadonlyMap<string, string>;
}
export interface TableSpec {
  readonly family: "bridge" | "inet" | "ip";
  readonly name: string;
  /** chain name -> declaration ("" for regular chains, "{ type ... }" for base chains) */
  readonly chains: ReadonlyMap<string, { readonly decl: string; readonly rules: readonly string[] }>;
  readonly sets: ReadonlyMap<string, SetSpec>;
  readonly maps: ReadonlyMap<string, MapSpec>;
}

const IN_SHIFT = 16;

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
const anon = (xs: readonly string[]) => `{ ${xs.join(", ")} }`;
const isV6 = (ip: string) => ip.includes(":");

/** Frames a port may send: its MACs, and per MAC the addresses (ARP, IPv4, IPv6). */
function fromChain(p: PortItem, index: number): string[] {
  const sec = p.security!;
  const rules = [`meta mark set meta mark | ${hex(index << IN_SHIFT)} ${comment("port", p.id)}`];
  const macs = [...new Set(sec.allowed.map((a) => a.mac).concat(p.mac))];
  rules.push(`ether saddr != ${anon(macs)} drop`);
  const v4 = collapse(sec.allowed.filter((a) => !isV6(a.ip)).map((a) => a.ip));
  // 0.0.0.0: ARP probes (RFC 5227) and DHCP discovery come from no address.
  rules.push(`ether type arp arp saddr ip != ${anon([...v4, "0.0.0.0"])} drop`);
  rules.push("ether type arp return");
  for (const mac of macs) {
    const mine = sec.allowed.filter((a) => a.mac === mac);
    const m4 = collapse(mine.filter((a) => !isV6(a.ip)).map((a) => a.ip));
    const m6 = collapse(mine.filter((a) => isV6(a.ip)).map((a) => a.ip));
    if (m4.length) rules.push(`ether saddr ${mac} ip saddr ${anon(m4)} return`);
    rules.push(`ether saddr ${mac} ip6 saddr ${anon(collapse([...m6, "fe80::/10"]))} return`);
  }
  rules.push("ip saddr 0.0.0.0 udp sport 68 udp dport 67 return");
  rules.push("ip6 saddr :: return"); // duplicate address detection
  rules.push("drop");
  return rules;
}

/** One security group rule as an nft rule in its group's chain; null if it cannot match (family mismatch). */
export function ruleText(r: RuleItem): string | null {
  const v6 = r.ethertype === "IPv6";
  const fam = v6 ? "ip6" : "ip";
  const parts = [`meta nfproto ${v6 ? "ipv6" : "ipv4"}`];
  const peer = r.direction === "ingress" ? "saddr" : "daddr";
  if (r.remoteCidr) {
    if (isV6(r.remoteCidr) !== v6) return null;
    parts.push(`${fam} ${peer} ${r.remoteCidr}`);
  }
  if (r.remoteGroup) parts.push(`${fam} ${peer} @${set.members(r.remoteGroup, v6 ? 6 : 4)}`);
  const proto = protocolNumber(r.protocol, v6);
  if (proto !== null) {
    parts.push(`meta l4proto ${proto}`);
    if (ICMP_PROTOCOLS.has(proto) && r.portMin !== null) {
      const icmp = proto === 58 ? "icmpv6" : "icmp";
      parts.push(`${icmp} type ${r.portMin}`);
      if (r.portMax !== null) parts.push(`${icmp} code ${r.portMax}`);
    } else if (PORT_PROTOCOLS.has(proto) && r.portMin !== null) {
      const max = r.portMax ?? r.portMin;
      parts.push(`th dport ${r.portMin === max ? r.portMin : `${r.portMin}-${max}`}`);
    }
  }
  parts.push("accept", comment("rule", r.id));
  return parts.join(" ");
}

/** The rules every port gets before its groups' (Neutron's base rules): DHCP and IPv6 ND. */
const EGRESS_BASE = [
  "udp sport 67 udp dport 68 drop", // a port is not a DHCP server
  "meta l4proto 58 icmpv6 type nd-router-advert drop", // nor a router
  "udp sport 68 udp dport 67 accept",
  "meta l4proto 58 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept",
];
const INGRESS_BASE = ["meta l4proto 58 icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept", "udp sport 67 udp dport 68 accept"];

type Chain = { readonly decl: string; readonly rules: readonly string[] };
interface PortChains {
  readonly idx: number;
  readonly groups: string;
  readonly from: Chain;
  readonly to: Chain;
  readonly egress: Chain;
  readonly ingress: Chain;
}
/**
 * A port's four chains, remembered per intent item: items are immutable and
 * replaced when they change, so an unchanged port (the same object, index
 * and groups held) has the same chains, the very same objects, which lets the
 * planner skip them by identity. Rendering 200 ports' chains and comparing
 * them as text on every reconcile was a third of a reconcile's time.
 */
const chainsOf = new WeakMap<PortItem, PortChains>();

function portChains(p: PortItem, idx: number, held: (gs: readonly string[]) => string[]): PortChains {
  const sec = p.security!;
  const eg = held(sec.egress);
  const ing = held(sec.ingress);
  const groups = `${eg.join()}|${ing.join()}`;
  const known = chainsOf.get(p);
  if (known && known.idx === idx && known.groups === groups) return known;
  const tag = comment("port", p.id);
  const c: PortChains = {
    idx,
    groups,
    from: { decl: "", rules: fromChain(p, idx) },
    to: { decl: "", rules: [`meta mark set meta mark | ${hex(idx)} ${tag}`] },
    egress: { decl: "", rules: [...EGRESS_BASE, ...eg.map((g) => `jump ${chain.sgEg(g)}`), `drop ${tag}`] },
    ingress: { decl: "", rules: [...INGRESS_BASE, ...ing.map((g) => `jump ${chain.sgIn(g)}`), `drop ${tag}`] },
  };
  chainsOf.set(p, c);
  return c;
}

/** Stable small integers for ports (1..65535), allocated by the agent and recovered from the kernel. */
export type PortIndex = ReadonlyMap<string, number>;

/**
 * `dvrMac`: the host's DVR MAC (naming.ts: dvrMac), which frames from
 * distributed router interfaces take on their way into the overlay.
 */
export function renderTables(intent: ReadonlyMap<string, IntentItem>, index: PortIndex, dvrMac: string | null = null): [TableSpec, TableSpec] {
  const bChains = new Map<string, Chain>();
  const iChains = new Map<string, Chain>();
  const portIn = new Map<string, string>();
  const portOut = new Map<string, string>();
  const egress = new Map<string, string>();
  const ingress = new Map<string, string>();
  const sets = new Map<string, SetSpec>();

  const bSets = new Map<string, SetSpec>();
  const dvrPorts: string[] = [];
  for (const r of itemsOf(intent, "router")) {
    if (!r.distributed) continue;
    for (const id of r.interfaces) {
      const p = intent.get(key.port(id));
      if (p?.kind === "port") dvrPorts.push(`"${p.device}"`);
    }
  }
  const forward = ["iifname vmap @port_in", "oifname vmap @port_out"];
  if (dvrPorts.length && dvrMac) {
    bSets.set(set.dvrPorts, { decl: "{ type ifname; }", elements: dvrPorts.sort(), exact: true });
    forward.unshift(`iifname @${set.dvrPorts} oifname "${device.vxlanPattern}" ether saddr set ${dvrMac}`);
  }
  bChains.set("forward", { decl: "{ type filter hook forward priority -200; policy accept; }", rules: forward });
  iChains.set("egress", { decl: "{ type filter hook forward priority 0; policy accept; }", rules: ["ct state established,related accept", "meta mark & 0xffff0000 vmap @egress"] });
  iChains.set("ingress", { decl: "{ type filter hook forward priority 10; policy accept; }", rules: ["ct state established,related accept", "meta mark & 0x0000ffff vmap @ingress"] });

  for (const p of itemsOf(intent, "port")) {
    const idx = index.get(p.id);
    if (!p.security || !idx) continue;
    const c = portChains(p, idx, (gs) => gs.filter((g) => intent.has(key.sg(g))));
    bChains.set(chain.from(p.id), c.from);
    bChains.set(chain.to(p.id), c.to);
    portIn.set(`"${p.device}"`, `jump ${chain.from(p.id)}`);
    portOut.set(`"${p.device}"`, `jump ${chain.to(p.id)}`);
    iChains.set(chain.egress(p.id), c.egress);
    iChains.set(chain.ingress(p.id), c.ingress);
    egress.set(hex(idx << IN_SHIFT), `jump ${chain.egress(p.id)}`);
    ingress.set(hex(idx), `jump ${chain.ingress(p.id)}`);
  }

  const rulesByGroup = new Map<string, RuleItem[]>();
  for (const r of itemsOf(intent, "rule")) {
    const list = rulesByGroup.get(r.group);
    if (list) list.push(r);
    else rulesByGroup.set(r.group, [r]);
  }
  const remoteGroups = new Set<string>();
  for (const sg of itemsOf(intent, "sg")) {
    const rules = rulesByGroup.get(sg.id) ?? [];
    for (const r of rules) if (r.remoteGroup) remoteGroups.add(r.remoteGroup);
    for (const direction of ["ingress", "egress"] as const) {
      const groupRules: string[] = [];
      const dir = direction === "ingress" ? "in" : "eg";
      const peer = direction === "ingress" ? "saddr" : "daddr";
      const linear: RuleItem[] = [];
      for (const v6 of [false, true]) {
        const fam = v6 ? "ip6" : "ip";
        const addrType = v6 ? "ipv6_addr" : "ipv4_addr";
        const split = groupRuleSets(rules.filter((r) => r.direction === direction && (r.ethertype === "IPv6") === v6), v6);
        const name = (kind: "any" | "proto" | "ports") => set.rules(sg.id, dir, v6 ? 6 : 4, kind);
        sets.set(name("any"), { decl: `{ type ${addrType}; flags interval; }`, elements: split.any, exact: true });
        sets.set(name("proto"), { decl: `{ type inet_proto . ${addrType}; flags interval; }`, elements: split.proto, exact: true });
        sets.set(name("ports"), { decl: `{ type inet_proto . inet_service . ${addrType}; flags interval; }`, elements: split.ports, exact: true });
        const nf = `meta nfproto ${v6 ? "ipv6" : "ipv4"}`;
        const tag = comment("sg", sg.id);
        groupRules.push(`${nf} ${fam} ${peer} @${name("any")} accept ${tag}`);
        groupRules.push(`${nf} meta l4proto . ${fam} ${peer} @${name("proto")} accept ${tag}`);
        groupRules.push(`${nf} meta l4proto . th dport . ${fam} ${peer} @${name("ports")} accept ${tag}`);
        linear.push(...split.linear);
      }
      for (const r of linear.sort((a, b) => (a.id < b.id ? -1 : 1))) {
        const t = ruleText(r);
        if (t) groupRules.push(t);
      }
      iChains.set(direction === "ingress" ? chain.sgIn(sg.id) : chain.sgEg(sg.id), { decl: "", rules: groupRules });
    }
  }
  const members = new Map<string, string[]>();
  for (const m of itemsOf(intent, "member")) {
    const list = members.get(m.group) ?? [];
    list.push(...m.ips);
    members.set(m.group, list);
  }
  for (const g of remoteGroups) {
    const ips = members.get(g) ?? [];
    sets.set(set.members(g, 4), { decl: "{ type ipv4_addr; flags interval; auto-merge; }", elements: collapse(ips.filter((ip) => !isV6(ip))) });
    sets.set(set.members(g, 6), { decl: "{ type ipv6_addr; flags interval; auto-merge; }", elements: collapse(ips.filter(isV6)) });
  }

  const bridge: TableSpec = {
    family: "bridge",
    name: NFT_TABLE,
    chains: bChains,
    sets: bSets,
    maps: new Map([
      ["port_in", { decl: "{ type ifname : verdict; }", elements: portIn }],
      ["port_out", { decl: "{ type ifname : verdict; }", elements: portOut }],
    ]),
  };
  const inet: TableSpec = {
    family: "inet",
    name: NFT_TABLE,
    chains: iChains,
    sets,
    maps: new Map([
      ["egress", { decl: "{ type mark : verdict; }", elements: egress }],
      ["ingress", { decl: "{ type mark : verdict; }", elements: ingress }],
    ]),
  };
  return [bridge, inet];
}
