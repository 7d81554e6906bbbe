// A security group's rules as nft set elements wherever possible (pure).
//
// Rules that name a CIDR (or no remote at all) become elements of three
// interval sets per direction and family, matched by three fixed rules:
//   any protocol          addr                      e.g. 10.0.0.0/8
//   protocol, no ports    proto . addr              e.g. 17 . 0.0.0.0/0
//   protocol and ports    proto . port(s) . addr    e.g. 6 . 8000-8080 . 192.168.5.0/24
// so 10,000 rules cost one set lookup per new flow, and adding a rule is
// adding an element. nft refuses overlapping elements in one set: an element
// another covers entirely is dropped (the union accepts the same packets);
// one that overlaps only partly stays a linear rule, as do ICMP type/code
// and remote-group rules (those match the group's member set).
import { bits, type Cidr, cidrCovers, formatCidr, toCidr } from "../../net/address.ts";
import type { RuleItem } from "../../contract/intent.ts";
import { ICMP_PROTOCOLS, PORT_PROTOCOLS, protocolNumber } from "../../net/protocols.ts";

export interface GroupRuleSets {
  readonly any: string[];
  readonly proto: string[];
  readonly ports: string[];
  readonly linear: RuleItem[];
}

interface Element {
  readonly proto: number | null;
  readonly min: number;
  readonly max: number;
  readonly cidr: Cidr;
  readonly rule: RuleItem;
}

/** A rule's remote as a CIDR; no remote is the whole family. */
const cidrOf = (text: string | null, v6: boolean): Cidr | null => (text === null ? { version: v6 ? 6 : 4, network: 0n, prefixLen: 0 } : toCidr(text));

const cidrsMeet = (a: Cidr, b: Cidr) => cidrCovers(a, b) || cidrCovers(b, a);

/**
 * The elements kept so far, by (protocol, CIDR). Within one entry no two
 * ranges overlap (an element meeting a kept one goes linear), so sorted by
 * their start, the one kept element that can cover or meet a new one is the
 * last that starts at or before the new one's end: a binary search, not a scan
 * of every kept element (10,000 rules: ~800 ms a reconcile with the scan).
 */
class Kept {
  private readonly parts = new Map<string, { readonly proto: number | null; readonly cidr: Cidr; readonly els: Element[] }>();

  /** "covered": a kept element accepts all `e` does; "met": one overlaps it partly; null: neither */
  relation(e: Element): "covered" | "met" | null {
    let met = false;
    for (const p of this.parts.values()) {
      if (p.proto !== e.proto || !cidrsMeet(p.cidr, e.cidr)) continue;
      const c = p.els[this.lastStartingBy(p.els, e.max)];
      if (!c || c.max < e.min) continue;
      if (c.min <= e.min && c.max >= e.max && cidrCovers(c.cidr, e.cidr)) return "covered";
      met = true;
    }
    return met ? "met" : null;
  }

  add(e: Element): void {
    const key = `${e.proto}|${formatCidr(e.cidr)}`;
    let p = this.parts.get(key);
    if (!p) this.parts.set(key, (p = { proto: e.proto, cidr: e.cidr, els: [] }));
    p.els.splice(this.lastStartingBy(p.els, e.min) + 1, 0, e);
  }

  all(): Element[] {
    return [...this.parts.values()].flatMap((p) => p.els);
  }

  /** index of the last element whose range starts at or before `at` (-1: none) */
  private lastStartingBy(els: readonly Element[], at: number): number {
    let lo = 0;
    let hi = els.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (els[mid]!.min <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

/** Splits one direction's and family's rules into set elements and the rules that stay linear. */
export function groupRuleSets(rules: readonly RuleItem[], v6: boolean): GroupRuleSets {
  const out: GroupRuleSets = { any: [], proto: [], ports: [], linear: [] };
  const buckets: Record<"any" | "proto" | "ports", Element[]> = { any: [], proto: [], ports: [] };
  for (const r of rules) {
    const proto = protocolNumber(r.protocol, v6);
    const icmpTyped = proto !== null && ICMP_PROTOCOLS.has(proto) && r.portMin !== null;
    const cidr = cidrOf(r.remoteCidr, v6);
    if (r.remoteGroup || icmpTyped || !cidr || (cidr.version === 6) !== v6) {
      if (r.remoteGroup || icmpTyped) out.linear.push(r);
      continue; // a CIDR of the other family never matches this family
    }
    if (proto === null) buckets.any.push({ proto: null, min: 0, max: 65535, cidr, rule: r });
    else if (PORT_PROTOCOLS.has(proto) && r.portMin !== null) buckets.ports.push({ proto, min: r.portMin, max: r.portMax ?? r.portMin, cidr, rule: r });
    else buckets.proto.push({ proto, min: 0, max: 65535, cidr, rule: r });
  }
  for (const kind of ["any", "proto", "ports"] as const) {
    // widest first, so what another element covers is met after its cover
    const els = buckets[kind].sort((a, b) => a.cidr.prefixLen - b.cidr.prefixLen || b.max - b.min - (a.max - a.min) || (a.rule.id < b.rule.id ? -1 : 1));
    const kept = new Kept();
    for (const e of els) {
      const rel = kept.relation(e);
      if (rel === "covered") continue;
      if (rel === "met") out.linear.push(e.rule);
      else kept.add(e);
    }
    const addr = (c: Cidr) => (c.prefixLen === bits(c.version) ? formatCidr(c).split("/")[0]! : formatCidr(c));
    for (const e of kept.all().sort((a, b) => (a.rule.id < b.rule.id ? -1 : 1))) {
      if (kind === "any") out.any.push(addr(e.cidr));
      else if (kind === "proto") out.proto.push(`${e.proto} . ${addr(e.cidr)}`);
      else out.ports.push(`${e.proto} . ${e.min === e.max ? e.min : `${e.min}-${e.max}`} . ${addr(e.cidr)}`);
    }
  }
  return out;
}
