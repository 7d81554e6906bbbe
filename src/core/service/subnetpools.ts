// Subnet pools (Neutron's subnet_allocation): address space from which a
// subnet takes a block by length instead of naming a CIDR, each block unique
// across the pool whichever project cut it. A shared pool (admin only) is
// every project's to cut from; Kuryr-style "a subnet per namespace" is one
// pool and a prefix length. The allocation itself is core/ipam/prefixes.ts.
import { badRequest, conflict, invalidOperation } from "../errors.ts";
import { bits, type Cidr, formatCidr, parseCidr } from "../../net/address.ts";
import type { RequestContext } from "../model/context.ts";
import { subnetpool as def } from "../model/resources.ts";
import type { Tx } from "../store/db.ts";
import { firstFreeBlock, mergePrefixes, withinPrefixes } from "../ipam/prefixes.ts";
import { isOwner, standardTail } from "./common.ts";
import { sql } from "./list-sql.ts";
import type { Kind, Model, View } from "./model.ts";
import { deleteRec, findRecs, insertRec, newRec, type Rec, updateRec } from "./repo.ts";

const prefixesOf = (rec: Rec): Cidr[] => (rec.prefixes as string[]).map((p) => parseCidr(p)!);

/** Neutron's defaults and checks: min <= default <= max, all within the family, no prefix longer than the minimum allows. */
function lengths(version: 4 | 6, prefixes: Cidr[], input: Record<string, unknown>, current?: Rec) {
  const widest = Math.min(...prefixes.map((p) => p.prefixLen));
  const min = (input.min_prefixlen ?? current?.min_prefixlen ?? widest) as number;
  const max = (input.max_prefixlen ?? current?.max_prefixlen ?? bits(version)) as number;
  const dflt = (input.default_prefixlen ?? current?.default_prefixlen ?? min) as number;
  if (max > bits(version) || min > bits(version)) throw invalidOperation(`Illegal prefix bounds: prefix lengths of IPv${version} are at most ${bits(version)}`, "IllegalSubnetPoolPrefixBounds");
  if (!(min <= dflt && dflt <= max)) {
    throw badRequest(`Illegal prefix bounds: min_prefixlen=${min}, default_prefixlen=${dflt}, max_prefixlen=${max}.`, "IllegalSubnetPoolPrefixBounds");
  }
  return { min_prefixlen: min, default_prefixlen: dflt, max_prefixlen: max };
}

function checkedPrefixes(input: unknown): { version: 4 | 6; prefixes: Cidr[] } {
  const prefixes = (input as string[]).map((p) => parseCidr(p)!);
  if (prefixes.length === 0) throw badRequest("Invalid input for prefixes. Reason: a subnet pool needs at least one prefix.");
  const versions = new Set(prefixes.map((p) => p.version));
  if (versions.size > 1) throw badRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", "PrefixVersionMismatch");
  return { version: prefixes[0]!.version, prefixes: mergePrefixes(prefixes) };
}

const poolView = (r: Rec): View => ({
  id: r.id,
  name: r.name,
  description: r.description ?? "",
  project_id: r.project_id,
  ip_version: r.ip_version,
  prefixes: r.prefixes,
  default_prefixlen: r.default_prefixlen,
  min_prefixlen: r.min_prefixlen,
  max_prefixlen: r.max_prefixlen,
  shared: r.shared === true,
  is_default: r.is_default === true,
  default_quota: r.default_quota ?? null,
  address_scope_id: null,
  ...standardTail(r),
});

export const subnetpools: Kind = {
  def,
  scope: (ctx) => (ctx.isAdmin ? undefined : sql("(project_id = ? OR shared = 1)", [ctx.projectId])),
  async hydrate(_m, _q, recs) {
    return recs.map(poolView);
  },
  async canSee(_m, _q, rec, ctx) {
    return isOwner(ctx, rec) || rec.shared === true;
  },

  async create(_m, tx, _ctx, input) {
    const { version, prefixes } = checkedPrefixes(input.prefixes);
    const rec = newRec({ ...input, prefixes: prefixes.map(formatCidr), ip_version: version, ...lengths(version, prefixes, input) });
    await insertRec(tx, def.table, rec);
    return rec;
  },

  async update(_m, tx, _ctx, rec, input) {
    await tx.lock(`subnetpool:${rec.id}`);
    let prefixes = prefixesOf(rec);
    if (input.prefixes !== undefined) {
      const next = checkedPrefixes(input.prefixes);
      if (next.version !== rec.ip_version) throw badRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", "PrefixVersionMismatch");
      // A pool only grows: its subnets must stay inside it (Neutron: "Illegal update to prefixes").
      const lost = prefixes.filter((p) => !withinPrefixes(next.prefixes, p));
      if (lost.length) throw badRequest(`Illegal update to prefixes: ${lost.map(formatCidr).join(", ")} would be removed; a subnet pool's prefixes can only be extended.`, "IllegalSubnetPoolPrefixUpdate");
      prefixes = next.prefixes;
    }
    return updateRec(tx, def.table, { ...rec, ...input, prefixes: prefixes.map(formatCidr), ...lengths(rec.ip_version as 4 | 6, prefixes, input, rec) });
  },

  async remove(_m, tx, _ctx, rec) {
    await tx.lock(`subnetpool:${rec.id}`);
    const used = await tx.get("SELECT 1 AS x FROM subnets WHERE subnetpool_id = ? LIMIT 1", [rec.id]);
    if (used) throw conflict("SubnetPoolInUse", `Subnet pool ${rec.id} could not be deleted: subnets are allocated from it.`);
    await deleteRec(tx, def.table, rec.id);
  },
};

/**
 * The CIDR a subnet of `pool` gets, under the pool's lock (two subnets cut at
 * once get different blocks): the one asked for if it lies in the pool, is
 * within its length bounds and overlaps none of the pool's subnets; else the
 * first free block of `prefixlen` (the pool's default when not given).
 */
export async function cutFromPool(m: Model, tx: Tx, ctx: RequestContext, poolId: string, asked: { cidr?: string; prefixlen?: number }): Promise<{ cidr: string; version: 4 | 6 }> {
  const pool = await m.referenced(tx, subnetpools, ctx, poolId);
  const version = pool.ip_version as 4 | 6;
  const prefixes = prefixesOf(pool);
  const used = (await findRecs(tx, "subnets", { subnetpool_id: [pool.id] })).map((s) => parseCidr(s.cidr)!);
  const bounds = (len: number) => {
    if (len < (pool.min_prefixlen as number) || len > (pool.max_prefixlen as number)) {
      throw badRequest(`Unable to allocate subnet with prefix length ${len}: the subnet pool allows ${pool.min_prefixlen} through ${pool.max_prefixlen}.`, "IllegalSubnetPoolPrefixLength");
    }
  };
  if (asked.cidr !== undefined) {
    const c = parseCidr(asked.cidr)!;
    if (c.version !== version) throw badRequest(`Subnet pool ${pool.id} is IPv${version}; ${asked.cidr} is not.`, "SubnetPoolVersionMismatch");
    bounds(c.prefixLen);
    if (!withinPrefixes(prefixes, c)) throw badRequest(`Cidr ${asked.cidr} is not within the prefixes of subnet pool ${pool.id}.`, "CidrNotInSubnetPool");
    if (firstFreeBlock([c], used, c.prefixLen) === null) throw conflict("SubnetAllocationFailed", `Cidr ${asked.cidr} overlaps a subnet already allocated from subnet pool ${pool.id}.`);
    return { cidr: formatCidr(c), version };
  }
  const len = asked.prefixlen ?? (pool.default_prefixlen as number);
  bounds(len);
  const block = firstFreeBlock(prefixes, used, len);
  if (!block) throw conflict("SubnetAllocationFailed", `Insufficient prefix space to allocate a /${len} subnet from subnet pool ${pool.id}.`);
  return { cidr: formatCidr(block), version };
}
