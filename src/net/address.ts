// Address arithmetic for IPv4 and IPv6 on BigInt. Pure; used by validation,
// IPAM and (later) the compiler. Every address has a fixed-width hex "key"
// (32 hex digits, v4 in the low 32 bits) so that string order is numeric
// order in both SQLite and PostgreSQL.

export type IpVersion = 4 | 6;

export interface Address {
  readonly version: IpVersion;
  readonly value: bigint;
}

export interface Cidr {
  readonly version: IpVersion;
  readonly network: bigint;
  readonly prefixLen: number;
}

const V4_BITS = 32;
const V6_BITS = 128;

export function bits(version: IpVersion): number {
  return version === 4 ? V4_BITS : V6_BITS;
}

function parseV4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    // Leading zeros are ambiguous (octal in some libcs): refuse them like Neutron's netaddr does.
    if (part.length > 1 && part.startsWith("0")) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseV6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45) return null;
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const doubles = head.split("::");
  if (doubles.length > 2) return null;
  const toGroups = (s: string): string[] | null => (s === "" ? [] : s.split(":"));
  const left = toGroups(doubles[0]!);
  const right = doubles.length === 2 ? toGroups(doubles[1]!) : [];
  if (left === null || right === null) return null;
  const missing = 8 - left.length - right.length;
  if (doubles.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...left, ...Array<string>(doubles.length === 2 ? missing : 0).fill("0"), ...right];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

export function parseAddress(text: unknown): Address | null {
  if (typeof text !== "string") return null;
  if (text.includes(":")) {
    const v = parseV6(text);
    return v === null ? null : { version: 6, value: v };
  }
  const v = parseV4(text);
  return v === null ? null : { version: 4, value: v };
}

export function formatAddress(a: Address): string {
  if (a.version === 4) {
    const v = a.value;
    return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 255n).toString()).join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}

/** Canonical text of an address, or null when it is not one. */
export function canonicalAddress(text: unknown): string | null {
  const a = parseAddress(text);
  return a ? formatAddress(a) : null;
}

export function parseCidr(text: unknown): Cidr | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const a = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!a || !/^\d{1,3}$/.test(lenText)) return null;
  const prefixLen = Number(lenText);
  if (prefixLen > bits(a.version)) return null;
  return { version: a.version, network: a.value, prefixLen };
}

/** An address (as a /32 or /128) or a CIDR, normalised; null when it is neither. */
export function toCidr(text: string): Cidr | null {
  if (text.includes("/")) {
    const c = parseCidr(text);
    return c ? normalizeCidr(c) : null;
  }
  const a = parseAddress(text);
  return a ? { version: a.version, network: a.value, prefixLen: bits(a.version) } : null;
}

/** Whether `outer` holds all of `inner` (same family, a prefix at least as short). */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.version === inner.version && outer.prefixLen <= inner.prefixLen && cidrContains(outer, { version: inner.version, value: inner.network });
}

export function hostMask(c: { version: IpVersion; prefixLen: number }): bigint {
  return (1n << BigInt(bits(c.version) - c.prefixLen)) - 1n;
}

/** The CIDR with host bits cleared. */
export function normalizeCidr(c: Cidr): Cidr {
  return { ...c, network: c.network & ~hostMask(c) };
}

export function cidrHasHostBits(c: Cidr): boolean {
  return (c.network & hostMask(c)) !== 0n;
}

export function formatCidr(c: Cidr): string {
  return `${formatAddress({ version: c.version, value: c.network })}/${c.prefixLen}`;
}

export function firstAddress(c: Cidr): bigint {
  return c.network & ~hostMask(c);
}

export function lastAddress(c: Cidr): bigint {
  return firstAddress(c) | hostMask(c);
}

export function cidrContains(c: Cidr, a: Address): boolean {
  return c.version === a.version && a.value >= firstAddress(c) && a.value <= lastAddress(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && firstAddress(a) <= lastAddress(b) && firstAddress(b) <= lastAddress(a);
}

/**
 * The usable host range of a subnet: IPv4 excludes the network and broadcast
 * addresses (except /31 and /32, RFC 3021); IPv6 excludes only the
 * subnet-router anycast address (the first one).
 */
export function usableRange(c: Cidr): { first: bigint; last: bigint } | null {
  const first = firstAddress(c);
  const last = lastAddress(c);
  if (c.version === 4) {
    if (c.prefixLen >= 31) return { first, last };
    return { first: first + 1n, last: last - 1n };
  }
  if (c.prefixLen === 128) return { first, last };
  return { first: first + 1n, last };
}

export function addressKey(a: Address): string {
  return a.value.toString(16).padStart(32, "0");
}

export function keyToValue(key: string): bigint {
  return BigInt("0x" + key);
}

export function valueKey(value: bigint): string {
  return value.toString(16).padStart(32, "0");
}

/** EUI-64 interface identifier from a MAC, for SLAAC addresses (RFC 4291 appendix A). */
export function eui64Address(prefix: Cidr, mac: string): bigint {
  const b = mac.split(":").map((h) => parseInt(h, 16));
  const iid = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  let id = 0n;
  for (const x of iid) id = (id << 8n) | BigInt(x);
  return firstAddress(prefix) | id;
}

/**
 * `from` with every CIDR of `cut` taken out, as the fewest CIDRs covering
 * exactly what is left (NetworkPolicy's ipBlock `except`: rules only admit,
 * so an exception becomes the blocks around it). Split in halves down to the
 * cuts: at most (prefix difference) blocks per cut.
 */
export function cidrMinus(from: Cidr, cut: readonly Cidr[]): Cidr[] {
  const whole = normalizeCidr(from);
  const cuts = cut.filter((c) => c.version === whole.version).map(normalizeCidr).filter((c) => cidrsOverlap(c, whole));
  if (cuts.some((c) => cidrCovers(c, whole))) return [];
  if (!cuts.length) return [whole];
  const half = whole.prefixLen + 1;
  const low: Cidr = { version: whole.version, network: whole.network, prefixLen: half };
  const high: Cidr = { version: whole.version, network: whole.network | (1n << BigInt(bits(whole.version) - half)), prefixLen: half };
  return [...cidrMinus(low, cuts), ...cidrMinus(high, cuts)];
}
