// Small helpers shared by the kind modules.
import type { RequestContext } from "../model/context.ts";
import type { Param, Queryable } from "../store/db.ts";
import { type Sql, sql } from "./list-sql.ts";
import type { Rec } from "./repo.ts";

/** Runs `SELECT ... WHERE column IN (...)` in chunks, or without the IN when the list is large (one scan beats many lookups). */
export async function rowsFor<T>(q: Queryable, sql: string, column: string, ids: readonly string[]): Promise<T[]> {
  if (ids.length === 0) return [];
  if (ids.length > 2000) return q.all<T>(sql);
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const where = `${sql.includes(" WHERE ") ? " AND" : " WHERE"} ${column} IN (${chunk.map(() => "?").join(", ")})`;
    out.push(...(await q.all<T>(sql + where, chunk as Param[])));
  }
  return out;
}

export function groupBy<T, K>(items: readonly T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

export const isOwner = (ctx: RequestContext, rec: Rec) => ctx.isAdmin || rec.project_id === ctx.projectId;

/** `scope` for kinds only their project (or an admin) sees. */
export const scopeOwn = (ctx: RequestContext): Sql | undefined => (ctx.isAdmin ? undefined : sql("project_id = ?", [ctx.projectId]));

export const canSeeOwn = async (_m: unknown, _q: unknown, rec: Rec, ctx: RequestContext): Promise<boolean> => isOwner(ctx, rec);

/** The standard attributes every tagged, timestamped, revisioned view ends with. */
export const standardTail = (r: Rec) => ({ tags: (r.tags as string[] | undefined) ?? [], created_at: r.created_at, updated_at: r.updated_at, revision_number: r.revision_number });
