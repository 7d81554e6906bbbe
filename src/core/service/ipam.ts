// The one IP allocator for VMs, pods, router and floating-IP ports. Inside the
// caller's transaction: the free-range table gives the first free address in
// O(log n); ip_allocations' primary key (subnet, address) is the guarantee
// that two allocations can never share an address, whatever the code does.
//
// Concurrency (PostgreSQL): allocations and releases hold their network's
// lock shared (every caller already does: ports.ts) and the free-range rows
// they change locked to commit; a rebuild of the ranges holds it exclusive.
// An allocation skips the rows other transactions hold and cuts the range it
// takes from at its stripe's edge (ranges.ts: takeFirst), so
// sixteen port creates on one subnet take sixteen addresses side by side: the
// lowest free address of the lowest stripe nobody else is taking from.
import { conflict, invalidOperation } from "../errors.ts";
import { addressKey, type Cidr, formatAddress, keyToValue, parseAddress, parseCidr, usableRange, valueKey } from "../../net/address.ts";
import { carve, freeRanges, inAnyRange, type Range, stripeOf, takeFirst } from "../ipam/ranges.ts";
import type { Tx } from "../store/db.ts";
import { isUniqueViolation } from "../store/db.ts";
import type { Rec } from "./repo.ts";

export interface SubnetRec extends Rec {
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  allocation_pools: { start: string; end: string }[];
  ipv6_address_mode: string | null;
}

export function poolRanges(subnet: SubnetRec): Range[] {
  return subnet.allocation_pools.map((p) => ({ first: parseAddress(p.start)!.value, last: parseAddress(p.end)!.value }));
}

/** Pools minus the gateway: the default allocation pools of a CIDR. */
export function defaultPools(cidr: Cidr, gateway: string | null): { start: string; end: string }[] {
  const usable = usableRange(cidr);
  if (!usable) return [];
  const gw = gateway ? parseAddress(gateway)!.value : null;
  const v = cidr.version;
  return freeRanges([usable], gw === null ? [] : [gw]).map((r) => ({
    start: formatAddress({ version: v, value: r.first }),
    end: formatAddress({ version: v, value: r.last }),
  }));
}

/** The network's lock, which callers hold already (so it costs nothing here); taken again to make sure. */
async function lockNetwork(tx: Tx, subnet: SubnetRec, mode: "exclusive" | "shared" = "shared") {
  await tx.lock(`network:${subnet.network_id}`, mode);
}

/** Row locks to commit, where the store has them (SQLite's single writer needs none). */
const forUpdate = (tx: Tx, skipLocked = false) => (tx.dialect === "postgres" ? (skipLocked ? " FOR UPDATE SKIP LOCKED" : " FOR UPDATE") : "");

/** (Re)builds a subnet's free ranges from its pools, gateway and current allocations. */
export async function rebuildFreeRanges(tx: Tx, subnet: SubnetRec): Promise<void> {
  await lockNetwork(tx, subnet, "exclusive");
  const taken = (await tx.all<{ ip_key: string }>("SELECT ip_key FROM ip_allocations WHERE subnet_id = ?", [subnet.id])).map((r) =>
    keyToValue(r.ip_key),
  );
  if (subnet.gateway_ip) taken.push(parseAddress(subnet.gateway_ip)!.value);
  await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ?", [subnet.id]);
  for (const r of freeRanges(poolRanges(subnet), taken)) {
    await tx.run("INSERT INTO ip_free_ranges (subnet_id, first_key, last_key) VALUES (?, ?, ?)", [subnet.id, valueKey(r.first), valueKey(r.last)]);
  }
}

async function record(tx: Tx, subnet: SubnetRec, value: bigint, portId: string, position: number): Promise<string> {
  const address = formatAddress({ version: subnet.ip_version as 4 | 6, value });
  try {
    await tx.run(
      "INSERT INTO ip_allocations (subnet_id, ip_key, ip_address, network_id, port_id, position) VALUES (?, ?, ?, ?, ?, ?)",
      [subnet.id, valueKey(value), address, subnet.network_id, portId, position],
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw alreadyAllocated(address, subnet);
    throw err;
  }
  return address;
}

const alreadyAllocated = (address: string, subnet: SubnetRec) =>
  conflict("IpAddressAlreadyAllocated", `IP address ${address} already allocated in subnet ${subnet.id}`);

/**
 * The lowest range nobody holds; if every one is held, the lowest, once its holder commits.
 * That row may be gone by then (its holder took the last address of its stripe), and
 * PostgreSQL then answers no row at all, not the next one, while the holder inserted the
 * range beyond: so look again, with a statement that sees what has committed since, and
 * say full only when no range is left.
 */
async function lowestFree<R>(tx: Tx, subnet: SubnetRec, first: (skipLocked: boolean) => Promise<R | undefined>): Promise<R | undefined> {
  for (;;) {
    const free = await first(true);
    if (free || tx.dialect !== "postgres") return free;
    const waited = await first(false);
    if (waited) return waited;
    if (!(await tx.get("SELECT 1 AS x FROM ip_free_ranges WHERE subnet_id = ? LIMIT 1", [subnet.id]))) return undefined;
  }
}

/** Takes the lowest free address of the pools; null when the subnet is full. */
export async function allocateNext(tx: Tx, subnet: SubnetRec, portId: string, position: number): Promise<string | null> {
  await lockNetwork(tx, subnet);
  const first = (skip: boolean) =>
    tx.get<{ first_key: string; last_key: string }>(`SELECT first_key, last_key FROM ip_free_ranges WHERE subnet_id = ? ORDER BY first_key LIMIT 1${forUpdate(tx, skip)}`, [subnet.id]);
  const r = await lowestFree(tx, subnet, first);
  if (!r) return null;
  const value = keyToValue(r.first_key);
  const [rest, beyond] = takeFirst({ first: value, last: keyToValue(r.last_key) });
  if (!rest) {
    await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ? AND first_key = ?", [subnet.id, r.first_key]);
  } else {
    await tx.run("UPDATE ip_free_ranges SET first_key = ?, last_key = ? WHERE subnet_id = ? AND first_key = ?", [valueKey(rest.first), valueKey(rest.last), subnet.id, r.first_key]);
    // the next stripe on becomes a row of its own, for the next allocation to take side by side with this one
    if (beyond) await tx.run("INSERT INTO ip_free_ranges (subnet_id, first_key, last_key) VALUES (?, ?, ?)", [subnet.id, valueKey(beyond.first), valueKey(beyond.last)]);
  }
  return record(tx, subnet, value, portId, position);
}

/** Takes a given address of the subnet, in or outside its pools. */
export async function allocateAddress(tx: Tx, subnet: SubnetRec, address: string, portId: string, position: number, mayUseGateway: boolean): Promise<string> {
  await lockNetwork(tx, subnet);
  const a = parseAddress(address)!;
  const cidr = parseCidr(subnet.cidr)!;
  const usable = usableRange(cidr);
  if (!usable || a.value < usable.first || a.value > usable.last) {
    throw invalidOperation(`IP address ${address} is not a valid IP for the specified subnet`);
  }
  if (subnet.gateway_ip === formatAddress(a) && !mayUseGateway) {
    throw conflict("GatewayIpInUse", `Gateway IP address ${address} is reserved for the router of subnet ${subnet.id}.`);
  }
  const key = addressKey(a);
  const r = await tx.get<{ first_key: string; last_key: string }>(
    `SELECT first_key, last_key FROM ip_free_ranges WHERE subnet_id = ? AND first_key <= ? ORDER BY first_key DESC LIMIT 1${forUpdate(tx)}`,
    [subnet.id, key],
  );
  if (r && r.last_key >= key) {
    await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ? AND first_key = ?", [subnet.id, r.first_key]);
    for (const piece of carve({ first: keyToValue(r.first_key), last: keyToValue(r.last_key) }, a.value)) {
      await tx.run("INSERT INTO ip_free_ranges (subnet_id, first_key, last_key) VALUES (?, ?, ?)", [subnet.id, valueKey(piece.first), valueKey(piece.last)]);
    }
  } else {
    const held = await tx.get("SELECT 1 AS x FROM ip_allocations WHERE subnet_id = ? AND ip_key = ?", [subnet.id, key]);
    if (held) throw alreadyAllocated(formatAddress(a), subnet);
  }
  return record(tx, subnet, a.value, portId, position);
}

/** Frees a port's address on a subnet and returns it to the free ranges (merging neighbours). */
export async function release(tx: Tx, subnet: SubnetRec, address: string): Promise<void> {
  await lockNetwork(tx, subnet);
  const a = parseAddress(address)!;
  const key = addressKey(a);
  await tx.run("DELETE FROM ip_allocations WHERE subnet_id = ? AND ip_key = ?", [subnet.id, key]);
  const isGateway = subnet.gateway_ip !== null && parseAddress(subnet.gateway_ip)!.value === a.value;
  if (isGateway || !inAnyRange(poolRanges(subnet), a.value)) return;
  let first = a.value;
  let last = a.value;
  // Merged with its neighbours within its stripe only, so the rows allocations take side by side stay apart.
  const stripe = stripeOf(a.value);
  const before =
    stripeOf(a.value - 1n) === stripe
      ? await tx.get<{ first_key: string }>(`SELECT first_key FROM ip_free_ranges WHERE subnet_id = ? AND last_key = ?${forUpdate(tx)}`, [subnet.id, valueKey(a.value - 1n)])
      : undefined;
  if (before) {
    first = keyToValue(before.first_key);
    await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ? AND first_key = ?", [subnet.id, before.first_key]);
  }
  const after =
    stripeOf(a.value + 1n) === stripe
      ? await tx.get<{ last_key: string }>(`SELECT last_key FROM ip_free_ranges WHERE subnet_id = ? AND first_key = ?${forUpdate(tx)}`, [subnet.id, valueKey(a.value + 1n)])
      : undefined;
  if (after) {
    last = keyToValue(after.last_key);
    await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ? AND first_key = ?", [subnet.id, valueKey(a.value + 1n)]);
  }
  // Pools are disjoint from each other, but merging across two adjacent pools is harmless:
  // the merged range is still inside their union.
  await tx.run("INSERT INTO ip_free_ranges (subnet_id, first_key, last_key) VALUES (?, ?, ?)", [subnet.id, valueKey(first), valueKey(last)]);
}

/** SLAAC and DHCPv6-stateless subnets: a port's address there is its EUI-64 one, not the allocator's. */
export const isAutoAddress = (s: { ipv6_address_mode: string | null }) => s.ipv6_address_mode === "slaac" || s.ipv6_address_mode === "dhcpv6-stateless";
