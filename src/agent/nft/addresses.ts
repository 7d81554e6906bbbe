// Address lists for nft sets: nft refuses overlapping intervals in one set
// literal, so addresses covered by a listed prefix are dropped (pure).
import { bits, type Cidr, cidrCovers, formatAddress, formatCidr, toCidr } from "../../net/address.ts";

/**
 * Distinct, non-overlapping, sorted: host addresses bare, prefixes as CIDR. Unparseable entries are dropped.
 * Prefixes are nested or disjoint, so sorted by start (widest first among
 * equal starts), a prefix is covered by another only if the last one kept
 * covers it: one pass, not every pair (a group of 200 members was 20,000
 * comparisons on every render).
 */
export function collapse(ips: readonly string[]): string[] {
  const cidrs = ips.map(toCidr).filter((c): c is Cidr => c !== null);
  cidrs.sort((a, b) => (a.version !== b.version ? a.version - b.version : a.network < b.network ? -1 : a.network > b.network ? 1 : a.prefixLen - b.prefixLen));
  const kept: Cidr[] = [];
  for (const c of cidrs) {
    const last = kept.at(-1);
    if (!last || !cidrCovers(last, c)) kept.push(c);
  }
  return kept.map((c) => (c.prefixLen === bits(c.version) ? formatAddress({ version: c.version, value: c.network }) : formatCidr(c)));
}
