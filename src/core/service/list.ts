// Runs a list query: the page cut in SQL along the plan's keyset (list-sql.ts)
// where the sort keys are columns, in memory over every narrowed row where
// they are not. Only the rows of the page (and of what the memory filters
// drop on the way) are hydrated.
import { notFound } from "../errors.ts";
import type { RequestContext } from "../model/context.ts";
import { filterViews, type ListQuery, type Page, paginate } from "../model/query.ts";
import { present, type ResourceDef } from "../model/attributes.ts";
import type { Dialect, Param, Queryable } from "../store/db.ts";
import { and, chunkSql, cursorOf, planList, type Sql, sql } from "./list-sql.ts";
import { fromRow, type Rec } from "./repo.ts";

type View = Record<string, unknown>;

/** What a list needs of a kind (model.ts's Kind is one; this module does not import it). */
export interface Listable {
  readonly def: ResourceDef;
  scope(ctx: RequestContext): Sql | undefined | null;
  narrow?(query: ListQuery, dialect: Dialect, ctx: RequestContext): Sql[];
  readonly ownFilters?: ReadonlySet<string>;
}

/** Rows per chunk once the first chunk (the page and one more) came back short of matches. */
const MAX_CHUNK = 1000;

const markerMissing = (id: string) => notFound("MarkerNotFound", `Marker ${id} could not be found.`);

/** `hydrate` makes the views of records as the caller sees them (the kind's, bound to its model). */
export async function runList(
  q: Queryable,
  dialect: Dialect,
  kind: Listable,
  hydrate: (q: Queryable, recs: Rec[]) => Promise<View[]>,
  ctx: RequestContext,
  query: ListQuery,
): Promise<Page> {
  const views = async (rows: Record<string, unknown>[]) =>
    (await hydrate(q, rows.map((r) => fromRow(kind.def.table, r)))).map((v) => present(kind.def, v, ctx));
  const scope = kind.scope(ctx);
  if (scope === null) return { items: [], next: null, previous: null };
  const plan = planList({ def: kind.def, query, scope, narrow: kind.narrow?.(query, dialect, ctx) ?? [], ownFilters: kind.ownFilters, dialect, isAdmin: ctx.isAdmin });
  if (!plan.order) {
    const rows = await q.all<Record<string, unknown>>(`SELECT * FROM ${plan.table} WHERE ${plan.where.sql}`, plan.where.params);
    return paginate(filterViews(kind.def, await views(rows), query), query, markerMissing);
  }

  let cursor: Param[] | null = null;
  if (query.marker !== null) {
    // The marker is any row the caller may see (as Neutron fetches it by id), matching the filters or not.
    const at = and([...(scope ? [scope] : []), sql("id = ?", [query.marker])]);
    const row = await q.get<Record<string, unknown>>(`SELECT * FROM ${plan.table} WHERE ${at.sql}`, at.params);
    if (!row) throw markerMissing(query.marker);
    cursor = cursorOf(plan, row);
  }
  const reverse = query.pageReverse;
  const wanted = query.limit === null ? Infinity : query.limit + 1;
  const found: View[] = [];
  let chunk = query.limit === null ? null : query.limit + 1;
  for (;;) {
    const c = chunkSql(plan, cursor, reverse, chunk);
    const rows = await q.all<Record<string, unknown>>(c.sql, c.params);
    found.push(...filterViews(kind.def, await views(rows), query));
    if (chunk === null || rows.length < chunk || found.length >= wanted) break;
    cursor = cursorOf(plan, rows[rows.length - 1]!);
    chunk = Math.min(chunk * 4, Math.max(MAX_CHUNK, chunk));
  }

  const more = query.limit !== null && found.length > query.limit;
  const items = query.limit === null ? found : found.slice(0, query.limit);
  if (reverse) items.reverse();
  const first = (items[0]?.id as string | undefined) ?? null;
  const last = (items[items.length - 1]?.id as string | undefined) ?? null;
  if (!reverse) return { items, next: more ? last : null, previous: query.marker !== null ? first : null };
  return { items, previous: more ? first : null, next: query.limit !== null && query.marker !== null ? last : null };
}
