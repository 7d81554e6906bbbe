// Pure address arithmetic and free-range bookkeeping.
import assert from "node:assert/strict";
import { it } from "node:test";
import { canonicalAddress, cidrsOverlap, eui64Address, formatAddress, formatCidr, parseAddress, parseCidr, usableRange } from "../src/net/address.ts";
import { firstFreeBlock, mergePrefixes } from "../src/core/ipam/prefixes.ts";
import { carve, freeRanges, rangeSize, STRIPE, takeFirst } from "../src/core/ipam/ranges.ts";
import { defaultPools } from "../src/core/service/ipam.ts";

it("parses and formats IPv4 and IPv6 canonically (RFC 5952)", () => {
  assert.equal(canonicalAddress("10.0.0.1"), "10.0.0.1");
  assert.equal(canonicalAddress("010.0.0.1"), null, "leading zeros are ambiguous");
  assert.equal(canonicalAddress("256.0.0.1"), null);
  assert.equal(canonicalAddress("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  assert.equal(canonicalAddress("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
  assert.equal(canonicalAddress("::ffff:10.0.0.1"), "::ffff:a00:1");
  assert.equal(canonicalAddress("1::2::3"), null);
  assert.equal(canonicalAddress("::"), "::");
  assert.equal(formatAddress(parseAddress("fe80:0:0:0:1:0:0:0")!), "fe80::1:0:0:0", "ties compress the first run");
  assert.equal(formatAddress(parseAddress("fe80:0:0:1:0:0:0:0")!), "fe80:0:0:1::", "the longest run wins");
});

it("computes usable ranges, overlaps and EUI-64 addresses", () => {
  const r = usableRange(parseCidr("192.168.100.0/24")!)!;
  assert.equal(formatAddress({ version: 4, value: r.first }), "192.168.100.1");
  assert.equal(formatAddress({ version: 4, value: r.last }), "192.168.100.254");
  assert.equal(rangeSize([usableRange(parseCidr("10.0.0.0/31")!)!]), 2n, "RFC 3021 /31 uses both");
  assert.ok(cidrsOverlap(parseCidr("10.0.0.0/16")!, parseCidr("10.0.5.0/24")!));
  assert.ok(!cidrsOverlap(parseCidr("10.0.0.0/24")!, parseCidr("10.0.1.0/24")!));
  assert.ok(!cidrsOverlap(parseCidr("10.0.0.0/8")!, parseCidr("::/0")!));
  const a = eui64Address(parseCidr("2001:db8::/64")!, "fa:16:3e:12:34:56");
  assert.equal(formatAddress({ version: 6, value: a }), "2001:db8::f816:3eff:fe12:3456");
});

it("derives default pools around the gateway", () => {
  assert.deepEqual(defaultPools(parseCidr("10.0.0.0/24")!, "10.0.0.1"), [{ start: "10.0.0.2", end: "10.0.0.254" }]);
  assert.deepEqual(defaultPools(parseCidr("10.0.0.0/24")!, "10.0.0.100"), [
    { start: "10.0.0.1", end: "10.0.0.99" },
    { start: "10.0.0.101", end: "10.0.0.254" },
  ]);
  assert.deepEqual(defaultPools(parseCidr("10.0.0.0/24")!, null), [{ start: "10.0.0.1", end: "10.0.0.254" }]);
});

it("keeps free ranges disjoint and exact", () => {
  const pools = [{ first: 10n, last: 20n }, { first: 30n, last: 31n }];
  assert.deepEqual(freeRanges(pools, [10n, 15n, 20n, 31n, 99n]), [
    { first: 11n, last: 14n },
    { first: 16n, last: 19n },
    { first: 30n, last: 30n },
  ]);
  assert.deepEqual(carve({ first: 1n, last: 3n }, 2n), [{ first: 1n, last: 1n }, { first: 3n, last: 3n }]);
  assert.deepEqual(carve({ first: 5n, last: 5n }, 5n), []);
});

it("takes a range's first address and cuts the rest at its stripe's edge, however large the range", () => {
  const s = STRIPE;
  assert.deepEqual(takeFirst({ first: 0n, last: 100n }), [{ first: 1n, last: s - 1n }, { first: s, last: 100n }]);
  assert.deepEqual(takeFirst({ first: s - 1n, last: 100n }), [{ first: s, last: 100n }], "the stripe's last address: nothing to cut");
  assert.deepEqual(takeFirst({ first: 5n, last: 10n }), [{ first: 6n, last: 10n }], "inside one stripe");
  assert.deepEqual(takeFirst({ first: 7n, last: 7n }), []);
  const v6 = parseCidr("fd00::/64")!;
  const pool = usableRange(v6)!;
  const [rest, beyond] = takeFirst(pool);
  assert.equal(rest!.last - rest!.first + 1n, s - 1n - (pool.first % s), "a /64 is cut once, at the first stripe");
  assert.equal(beyond!.last, pool.last);
});

const cidrs = (...xs: string[]) => xs.map((x) => parseCidr(x)!);
const text = (c: ReturnType<typeof firstFreeBlock>) => (c ? formatCidr(c) : null);

it("cuts a subnet pool's first free block of a length, around what is used, in address order", () => {
  assert.equal(text(firstFreeBlock(cidrs("10.10.0.0/16"), [], 24)), "10.10.0.0/24");
  assert.equal(text(firstFreeBlock(cidrs("10.10.0.0/16"), cidrs("10.10.0.0/24", "10.10.1.0/26"), 24)), "10.10.2.0/24");
  // a hole big enough is reused; one too small is stepped over
  assert.equal(text(firstFreeBlock(cidrs("10.10.0.0/16"), cidrs("10.10.1.0/24"), 24)), "10.10.0.0/24");
  assert.equal(text(firstFreeBlock(cidrs("10.10.0.0/16"), cidrs("10.10.0.0/25", "10.10.1.0/24"), 25)), "10.10.0.128/25");
  // a used block wider than the asked length covers several candidates at once
  assert.equal(text(firstFreeBlock(cidrs("10.10.0.0/16"), cidrs("10.10.0.0/20"), 28)), "10.10.16.0/28");
  // next prefix when the first is full; null when all are
  assert.equal(text(firstFreeBlock(cidrs("192.168.0.0/24", "10.0.0.0/24"), cidrs("10.0.0.0/24"), 25)), "192.168.0.0/25");
  assert.equal(firstFreeBlock(cidrs("10.0.0.0/24"), cidrs("10.0.0.0/25", "10.0.0.128/25"), 26), null);
  // longer than the prefix allows: not from it
  assert.equal(firstFreeBlock(cidrs("10.0.0.0/24"), [], 16), null);
  // IPv6 from a /16: the walk is over used blocks, not 2^48 candidates
  const used = Array.from({ length: 1000 }, (_, i) => `2001:db8:0:${i.toString(16)}::/64`);
  assert.equal(text(firstFreeBlock(cidrs("2001:db8::/32"), cidrs(...used), 64)), "2001:db8:0:3e8::/64");
});

it("shows a pool's prefixes merged: adjacent halves are one, a prefix inside another is the outer", () => {
  assert.deepEqual(mergePrefixes(cidrs("10.0.0.128/25", "10.0.0.0/25")).map(formatCidr), ["10.0.0.0/24"]);
  assert.deepEqual(mergePrefixes(cidrs("10.0.0.0/16", "10.0.5.0/24", "10.0.0.0/16")).map(formatCidr), ["10.0.0.0/16"]);
  assert.deepEqual(mergePrefixes(cidrs("10.0.1.0/24", "10.0.2.0/24")).map(formatCidr), ["10.0.1.0/24", "10.0.2.0/24"], "not halves of one /23");
  assert.deepEqual(mergePrefixes(cidrs("10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/25")).map(formatCidr), ["10.0.0.0/24"]);
});
