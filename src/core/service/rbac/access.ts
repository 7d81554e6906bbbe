// Who beyond its project may see and use a network or a security group: the
// rbac_policies entries that name the object, for one target project or for
// "*" (everyone). The kinds that share ask here, as SQL for their lists and
// per object for their checks, so "shared with" is written once. Neutron keeps
// a shared or external network's "everyone" as an entry too, and so do we: a
// network's `shared` and `router:external` columns mirror its entries.
import type { RequestContext } from "../../model/context.ts";
import type { Param, Queryable, Tx } from "../../store/db.ts";
import { type Sql, oneOf, sql } from "../list-sql.ts";
import { deleteRec, findRecs, insertRec, newRec, type Rec } from "../repo.ts";

export type ObjectType = "network" | "security_group";
export const SHARED = "access_as_shared";
export const EXTERNAL = "access_as_external";
export const EVERYONE = "*";
const ALL_ACTIONS = [SHARED, EXTERNAL];

const TABLE = "rbac_policies";

/** `column` is an object shared with the project by one of `actions` (to it, or to everyone). */
export function sharedWithSql(column: string, type: ObjectType, projectId: string, actions: readonly string[] = ALL_ACTIONS): Sql {
  const a = oneOf("action", actions);
  return sql(`${column} IN (SELECT object_id FROM ${TABLE} WHERE object_type = ? AND target_tenant IN ('*', ?) AND ${a.sql})`, [type, projectId, ...a.params]);
}

/** A kind's scope: its project's rows and those `column` names an object shared with the caller's project. */
export function ownOrShared(ctx: RequestContext, type: ObjectType, column = "id", actions: readonly string[] = ALL_ACTIONS): Sql | undefined {
  if (ctx.isAdmin) return undefined;
  const shared = sharedWithSql(column, type, ctx.projectId, actions);
  return sql(`project_id = ? OR ${shared.sql}`, [ctx.projectId, ...shared.params]);
}

/** Views whose `shared` ("with everyone") becomes true where an entry shares them with the caller's project (Neutron's `shared`). */
export async function sharedToCaller<V extends Record<string, unknown>>(q: Queryable, type: ObjectType, views: V[], ctx: RequestContext): Promise<V[]> {
  const toCaller = await entriesFor(q, type, views.filter((v) => !v.shared).map((v) => v.id as string), SHARED, ctx.projectId);
  return toCaller.size ? views.map((v) => (toCaller.has(v.id as string) ? { ...v, shared: true } : v)) : views;
}

export async function isSharedWith(q: Queryable, type: ObjectType, objectId: string, projectId: string, actions: readonly string[] = ALL_ACTIONS): Promise<boolean> {
  const a = oneOf("action", actions);
  const row = await q.get(`SELECT 1 AS x FROM ${TABLE} WHERE object_type = ? AND object_id = ? AND target_tenant IN ('*', ?) AND ${a.sql} LIMIT 1`, [type, objectId, projectId, ...a.params]);
  return Boolean(row);
}

/** Which of the objects an `action` entry names for exactly `target` (a project, or "*"). */
export async function entriesFor(q: Queryable, type: ObjectType, ids: readonly string[], action: string, target: string): Promise<Set<string>> {
  const out = new Set<string>();
  // In chunks: a list of every group may name more objects than a statement takes parameters.
  for (let i = 0; i < ids.length; i += 500) {
    const w = oneOf("object_id", ids.slice(i, i + 500) as Param[]);
    const rows = await q.all<{ object_id: string }>(`SELECT object_id FROM ${TABLE} WHERE object_type = ? AND action = ? AND target_tenant = ? AND ${w.sql}`, [type, action, target, ...w.params]);
    for (const r of rows) out.add(r.object_id);
  }
  return out;
}

/** The API's view of an entry (Neutron's: no name, tags or timestamps). */
export function policyView(r: Rec): Record<string, unknown> {
  return { id: r.id, project_id: r.project_id, object_type: r.object_type, object_id: r.object_id, action: r.action, target_tenant: r.target_tenant };
}

/** Adds an entry (and logs it) unless one with the same values exists; the inserted record, or null. */
export async function grant(tx: Tx, type: ObjectType, objectId: string, owner: string, action: string, target = EVERYONE): Promise<Rec | null> {
  const rec = newRec({ object_type: type, object_id: objectId, action, target_tenant: target }, { project_id: owner, name: "" });
  if (!(await insertRec(tx, TABLE, rec, true))) return null;
  tx.change({ kind: "rbac_policy", id: rec.id, op: "create", projectId: owner, object: policyView(rec) });
  return rec;
}

/** Removes (and logs) the object's entries: all of them, or those of one action and target. */
export async function revoke(tx: Tx, type: ObjectType, objectId: string, only?: { action: string; target?: string }): Promise<void> {
  const where: Record<string, Param[]> = { object_type: [type], object_id: [objectId] };
  if (only) where.action = [only.action];
  if (only?.target !== undefined) where.target_tenant = [only.target];
  for (const r of await findRecs(tx, TABLE, where)) {
    await deleteRec(tx, TABLE, r.id);
    tx.change({ kind: "rbac_policy", id: r.id, op: "delete", projectId: r.project_id, object: null });
  }
}

/**
 * Projects that hold something which depends on reaching the object through
 * an entry of `action`: ports on a shared network; routers' gateways and
 * floating IPs on an external one; ports in a shared group, and rules of
 * other projects that admit its members (Neutron counts only the ports: a rule
 * naming a group its project can no longer see is a state no request could make).
 */
async function boundProjects(q: Queryable, type: ObjectType, action: string, objectId: string): Promise<Set<string>> {
  const queries: string[] =
    type === "security_group"
      ? [
          "SELECT DISTINCT p.project_id AS p FROM port_security_groups s JOIN ports p ON p.id = s.port_id WHERE s.security_group_id = ?",
          "SELECT DISTINCT project_id AS p FROM security_group_rules WHERE remote_group_id = ?",
        ]
      : action === SHARED
        ? ["SELECT DISTINCT project_id AS p FROM ports WHERE network_id = ?"]
        : [
            "SELECT DISTINCT r.project_id AS p FROM ports g JOIN routers r ON r.id = g.device_id WHERE g.network_id = ? AND g.device_owner = 'network:router_gateway'",
            "SELECT DISTINCT project_id AS p FROM floatingips WHERE floating_network_id = ?",
          ];
  const out = new Set<string>();
  for (const text of queries) for (const r of await q.all<{ p: string }>(text, [objectId])) out.add(r.p);
  return out;
}

export interface Entry {
  readonly object_type: ObjectType;
  readonly object_id: string;
  readonly action: string;
  readonly target_tenant: string;
}

/**
 * The projects that would lose what they hold if `entry` went (or, with
 * `replacement`, if its target became that one): those it alone admits.
 * Empty: the entry may go.
 */
export async function dependents(q: Queryable, entry: Entry, owner: string, replacement?: string): Promise<string[]> {
  if (entry.target_tenant === owner) return [];
  const others = await q.all<{ t: string }>(
    `SELECT target_tenant AS t FROM ${TABLE} WHERE object_type = ? AND object_id = ? AND action = ? AND target_tenant <> ?`,
    [entry.object_type, entry.object_id, entry.action, entry.target_tenant],
  );
  const covered = new Set([owner, "", ...others.map((o) => o.t), ...(replacement === undefined ? [] : [replacement])]);
  if (covered.has(EVERYONE)) return [];
  const bound = await boundProjects(q, entry.object_type, entry.action, entry.object_id);
  if (entry.target_tenant !== EVERYONE) return bound.has(entry.target_tenant) && !covered.has(entry.target_tenant) ? [entry.target_tenant] : [];
  return [...bound].filter((p) => !covered.has(p)).sort();
}

/** A network's `shared` column says whether an entry shares it with everyone (its `router:external` is the network's own). */
export async function syncNetworkShared(tx: Tx, networkId: string): Promise<void> {
  await tx.run(
    `UPDATE networks SET shared = CASE WHEN EXISTS (SELECT 1 FROM ${TABLE} WHERE object_type = 'network' AND object_id = ? AND action = ? AND target_tenant = '*') THEN 1 ELSE 0 END WHERE id = ?`,
    [networkId, SHARED, networkId],
  );
}
