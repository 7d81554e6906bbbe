// Small helpers shared by the kind modules.
import type { RequestContext } from "../model/context.ts";
import type { Param, Queryable } from "../store/db.ts";
import { findRecs, type Rec } from "./repo.ts";

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

/** Narrows a pushdown for a caller that only sees its own project. */
export function ownOnly(ctx: RequestContext, where: Record<string, readonly string[]>): Record<string, readonly string[]> | null {
  if (ctx.isAdmin) return where;
  const wanted = where.project_id;
  if (wanted && !wanted.includes(ctx.projectId)) return null;
  return { ...where, project_id: [ctx.projectId] };
}

export const isOwner = (ctx: RequestContext, rec: Rec) => ctx.isAdmin || rec.project_id === ctx.projectId;


/** `load` for kinds only their project (or an admin) sees. */
export const loadOwn =
  (table: string) =>
  async (_m: unknown, q: Queryable, ctx: RequestContext, where: Record<string, readonly string[]>): Promise<Rec[]> => {
    const w = ownOnly(ctx, where);
    return w ? findRecs(q, table, w) : [];
  };

export const canSeeOwn = async (_m: unknown, _q: unknown, rec: Rec, ctx: RequestContext): Promise<boolean> => isOwner(ctx, rec);

/** The standard attributes every tagged, timestamped, revisioned view ends with. */
export const standardTail = (r: Rec) => ({ tags: (r.tags as string[] | undefined) ?? [], created_at: r.created_at, updated_at: r.updated_at, revision_number: r.revision_number });
