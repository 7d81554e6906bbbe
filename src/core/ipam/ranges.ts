// Free-range bookkeeping for IPAM, pure. A subnet's free space is a sorted
// list of disjoint inclusive ranges: allocation pools minus the gateway minus
// allocated addresses. "First free" is then the start of the first range, an
// indexed O(log n) lookup in the store instead of a scan of allocations.

export interface Range {
  readonly first: bigint;
  readonly last: bigint;
}

/** Sorted, disjoint ranges covering `pools` except the `taken` addresses. */
export function freeRanges(pools: readonly Range[], taken: Iterable<bigint>): Range[] {
  const holes = [...new Set(taken)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sortedPools = [...pools].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: Range[] = [];
  let h = 0;
  for (const pool of sortedPools) {
    let start = pool.first;
    while (h < holes.length && holes[h]! < pool.first) h++;
    let k = h;
    while (k < holes.length && holes[k]! <= pool.last) {
      const hole = holes[k]!;
      if (hole > start) out.push({ first: start, last: hole - 1n });
      if (hole + 1n > start) start = hole + 1n;
      k++;
    }
    if (start <= pool.last) out.push({ first: start, last: pool.last });
  }
  return out;
}

/** Removes one address from the range that contains it; returns the pieces left. */
export function carve(range: Range, address: bigint): Range[] {
  const pieces: Range[] = [];
  if (range.first < address) pieces.push({ first: range.first, last: address - 1n });
  if (address < range.last) pieces.push({ first: address + 1n, last: range.last });
  return pieces;
}

export function rangeSize(ranges: readonly Range[]): bigint {
  return ranges.reduce((n, r) => n + (r.last - r.first + 1n), 0n);
}

export function inAnyRange(ranges: readonly Range[], value: bigint): boolean {
  return ranges.some((r) => r.first <= value && value <= r.last);
}

/**
 * Free space is handed out a stripe of this many addresses (aligned) at a
 * time: taking the first address of a range that runs past its stripe's edge
 * cuts the range there. Concurrent allocations on one subnet then take from
 * different rows (the lowest stripe nobody else is taking from), instead of
 * queueing for the single row a contiguous pool would be; and a /64 is cut
 * only as far as it is used.
 */
export const STRIPE = 32n;

export const stripeOf = (value: bigint) => value / STRIPE;

/** What is left of a free range once its first address is taken: the rest of its stripe, and beyond it. */
export function takeFirst(range: Range): Range[] {
  if (range.first === range.last) return [];
  const edge = (stripeOf(range.first) + 1n) * STRIPE - 1n;
  const rest = { first: range.first + 1n, last: range.last };
  if (range.first >= edge || range.last <= edge) return [rest];
  return [{ first: range.first + 1n, last: edge }, { first: edge + 1n, last: range.last }];
}
