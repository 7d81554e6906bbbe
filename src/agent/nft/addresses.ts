// Address lists for nft sets: nft refuses overlapping intervals in one set
// literal, so addresses covered by a listed prefix are dropped (pure).
import { bits, type Cidr, cidrCovers, formatAddress, formatCidr, toCidr } from "../../net/address.ts";

/** Distinct, non-overlapping, sorted: host addresses bare, prefixes as CIDR. Unparseable entries are dropped. */
export function collapse(ips: readonly string[]): string[] {
  const cidrs = ips.map(toCidr).filter((c): c is Cidr => c !== null);
  cidrs.sort((a, b) => a.prefixLen - b.prefixLen);
  const kept: Cidr[] = [];
  for (const c of cidrs) if (!kept.some((k) => cidrCovers(k, c))) kept.push(c);
  kept.sort((a, b) => (a.version !== b.version ? a.version - b.version : a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  return kept.map((c) => (c.prefixLen === bits(c.version) ? formatAddress({ version: c.version, value: c.network }) : formatCidr(c)));
}
