// Subnet pools' prefix allocation, pure: the first block of a given length,
// in the pool's prefixes taken in address order, that overlaps no subnet
// already cut from the pool. Walks the used blocks, not the candidates, so a
// /64 from a /16 of IPv6 costs the number of subnets, not 2^48 steps.
import { type Cidr, cidrCovers, firstAddress, hostMask, lastAddress, normalizeCidr } from "../../net/address.ts";

const byStart = (a: Cidr, b: Cidr) => (firstAddress(a) < firstAddress(b) ? -1 : firstAddress(a) > firstAddress(b) ? 1 : 0);

/** The first free aligned block of `prefixLen` in `prefixes` clear of `used`, or null when the pool is full. */
export function firstFreeBlock(prefixes: readonly Cidr[], used: readonly Cidr[], prefixLen: number): Cidr | null {
  const taken = used.map(normalizeCidr).sort(byStart);
  for (const prefix of [...prefixes].map(normalizeCidr).sort(byStart)) {
    if (prefixLen < prefix.prefixLen) continue;
    const size = hostMask({ version: prefix.version, prefixLen }) + 1n;
    let at = firstAddress(prefix);
    const end = lastAddress(prefix);
    for (const u of taken) {
      if (u.version !== prefix.version || lastAddress(u) < at) continue;
      if (firstAddress(u) > at + size - 1n) break; // the block at `at` ends before this used one starts
      // overlapping: the next aligned block after the used one
      const past = lastAddress(u) + 1n;
      at = ((past + size - 1n) / size) * size;
      if (at > end) break;
    }
    if (at + size - 1n <= end) return { version: prefix.version, network: at, prefixLen };
  }
  return null;
}

/** Whether `cidr` lies inside one of the pool's prefixes. */
export const withinPrefixes = (prefixes: readonly Cidr[], cidr: Cidr) => prefixes.some((p) => cidrCovers(p, cidr));

/**
 * The fewest CIDRs covering the prefixes (Neutron shows a pool's prefixes
 * merged: 10.0.0.0/25 and 10.0.0.128/25 are 10.0.0.0/24; one inside another is the outer).
 */
export function mergePrefixes(prefixes: readonly Cidr[]): Cidr[] {
  let out = [...new Map(prefixes.map(normalizeCidr).map((c) => [`${c.version}/${c.network}/${c.prefixLen}`, c])).values()];
  for (;;) {
    out = out.filter((c) => !out.some((o) => o !== c && cidrCovers(o, c) && !(o.prefixLen === c.prefixLen)));
    out.sort(byStart);
    let merged = false;
    for (let i = 0; i + 1 < out.length; i++) {
      const a = out[i]!;
      const b = out[i + 1]!;
      if (a.version === b.version && a.prefixLen === b.prefixLen && a.prefixLen > 0) {
        const parent = normalizeCidr({ ...a, prefixLen: a.prefixLen - 1 });
        if (parent.network === a.network && lastAddress(parent) === lastAddress(b)) {
          out.splice(i, 2, parent);
          merged = true;
          break;
        }
      }
    }
    if (!merged) return out;
  }
}
