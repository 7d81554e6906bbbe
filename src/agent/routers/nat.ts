// A router's NAT as one nftables table in its namespace (pure):
//
//   table ip seam
//     map fip_dnat  floating -> fixed     map fip_snat  fixed -> floating
//     chain prerouting  (nat, dstnat)   dnat to ip daddr map @fip_dnat
//     chain postrouting (nat, srcnat)   via the gateway: snat to ip saddr map @fip_snat,
//                                         then (enable_snat) snat to the gateway's address;
//                                       internal to internal through a floating IP
//                                         (hairpin): masquerade, so replies come back
//
// NAT is decided on a connection's first packet, so SNAT is outbound only: a
// connection the outside opens toward an internal address (F3: a segment
// routed to the router) keeps its addresses both ways. Floating IPs are map
// elements, so associating, moving or releasing one is an element change in
// one transaction, and no other flow's rule is touched. The chains change
// only with the gateway; their rules carry a hash of the chain, which is how a
// restarted agent knows they are current without parsing nft's JSON rules.
import { createHash } from "node:crypto";
import { nat } from "../naming.ts";
import type { NatSpec } from "./spec.ts";

export interface ObservedNat {
  /** map name -> key -> value */
  readonly maps: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** chain name -> its rules' comments, in order */
  readonly chains: ReadonlyMap<string, readonly string[]>;
}

const T = `ip ${nat.table}`;

/** The chains' rules, each tagged with its chain's hash. */
export function natChains(spec: NatSpec): Map<string, string[]> {
  const g = `"${spec.gatewayDev}"`;
  const chains = new Map<string, string[]>([
    [nat.prerouting, [`dnat to ip daddr map @${nat.dnatMap}`]],
    [
      nat.postrouting,
      [
        `oifname ${g} snat to ip saddr map @${nat.snatMap}`,
        ...(spec.snat ? [`oifname ${g} snat to ${spec.snat}`] : []),
        `iifname != ${g} oifname != ${g} ct status dnat masquerade`,
      ],
    ],
  ]);
  for (const [name, rules] of chains) {
    const h = createHash("sha1").update(rules.join("\n")).digest("hex").slice(0, 12);
    chains.set(name, rules.map((r) => `${r} comment "h:${h}"`));
  }
  return chains;
}

const commentOf = (rule: string) => /comment "([^"]*)"$/.exec(rule)?.[1] ?? "";

export interface NatPlan {
  /** one nft transaction; empty when the table is as wanted */
  readonly lines: readonly string[];
  /** floating addresses whose translation changed or went: their tracked flows must be forgotten */
  readonly moved: readonly string[];
  /** floating addresses newly translated: announced (gratuitous ARP) */
  readonly added: readonly string[];
}

/** What turns the observed table into the wanted one (null: no table, no gateway). */
export function planNat(want: NatSpec | null, have: ObservedNat | null): NatPlan {
  if (!want) {
    const moved = [...(have?.maps.get(nat.dnatMap)?.keys() ?? [])];
    return { lines: have ? [`delete table ${T}`] : [], moved, added: [] };
  }
  const lines: string[] = [];
  if (!have) {
    lines.push(
      `add table ${T}`,
      `add map ${T} ${nat.dnatMap} { type ipv4_addr : ipv4_addr; }`,
      `add map ${T} ${nat.snatMap} { type ipv4_addr : ipv4_addr; }`,
      `add chain ${T} ${nat.prerouting} { type nat hook prerouting priority dstnat; policy accept; }`,
      `add chain ${T} ${nat.postrouting} { type nat hook postrouting priority srcnat; policy accept; }`,
    );
  }
  for (const m of [nat.dnatMap, nat.snatMap]) if (have && !have.maps.has(m)) lines.push(`add map ${T} ${m} { type ipv4_addr : ipv4_addr; }`);
  for (const [name, rules] of natChains(want)) {
    const cur = have?.chains.get(name);
    if (cur && cur.length === rules.length && cur.every((c, i) => c === commentOf(rules[i]!))) continue;
    if (have) lines.push(have.chains.has(name) ? `flush chain ${T} ${name}` : `add chain ${T} ${name} { type nat hook ${name} priority ${name === nat.prerouting ? "dstnat" : "srcnat"}; policy accept; }`);
    for (const r of rules) lines.push(`add rule ${T} ${name} ${r}`);
  }
  const snatWant = new Map([...want.fips].map(([floating, fixed]) => [fixed, floating]));
  const moved = new Set<string>();
  const added: string[] = [];
  const dnatHave = have?.maps.get(nat.dnatMap) ?? new Map<string, string>();
  for (const [floating, fixed] of dnatHave) if (want.fips.get(floating) !== fixed) moved.add(floating);
  for (const [floating] of want.fips) if (!dnatHave.has(floating)) added.push(floating);
  lines.push(...elementOps(nat.dnatMap, want.fips, dnatHave));
  lines.push(...elementOps(nat.snatMap, snatWant, have?.maps.get(nat.snatMap) ?? new Map()));
  return { lines, moved: [...moved], added };
}

function elementOps(map: string, want: ReadonlyMap<string, string>, have: ReadonlyMap<string, string>): string[] {
  const del: string[] = [];
  const add: string[] = [];
  for (const [k, v] of have) if (want.get(k) !== v) del.push(k);
  for (const [k, v] of want) if (have.get(k) !== v) add.push(`${k} : ${v}`);
  const out: string[] = [];
  if (del.length) out.push(`delete element ${T} ${map} { ${del.join(", ")} }`);
  if (add.length) out.push(`add element ${T} ${map} { ${add.join(", ")} }`);
  return out;
}

interface NftJson {
  map?: { name: string; elem?: [string, string][] };
  chain?: { name: string };
  rule?: { chain: string; comment?: string };
}

/** `nft -j list table ip seam` -> what the planner compares; null when there is no table. */
export function parseNat(json: string): ObservedNat | null {
  const text = json.trim();
  if (!text) return null;
  const objs = ((JSON.parse(text) as { nftables?: NftJson[] }).nftables ?? []) as NftJson[];
  const maps = new Map<string, Map<string, string>>();
  const chains = new Map<string, string[]>();
  for (const o of objs) {
    if (o.map) maps.set(o.map.name, new Map((o.map.elem ?? []).map(([k, v]) => [String(k), String(v)])));
    if (o.chain) chains.set(o.chain.name, []);
  }
  for (const o of objs) if (o.rule) chains.get(o.rule.chain)?.push(o.rule.comment ?? "");
  return { maps, chains };
}
