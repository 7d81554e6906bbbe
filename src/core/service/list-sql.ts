// A list query as SQL: who may see what (the kind's scope), the filters the
// table's columns can decide, and the order and page cut as a keyset over the
// sort columns with the id last, so a page costs what it returns (an index
// seek and `limit + 1` rows) instead of the table's size.
//
// The SQL only ever narrows: every row a filter would keep is among the rows
// it returns, and the views are filtered again in memory (query.ts), which
// stays the one definition of what a filter means. What SQL cannot decide
// (tags, body attributes) is then filtered in memory while the keyset scan
// goes on in chunks, so a page is still cut in the database's order.
import { canonicalAddress } from "../../net/address.ts";
import type { ListQuery } from "../model/query.ts";
import type { ResourceDef } from "../model/attributes.ts";
import type { Dialect, Param } from "../store/db.ts";
import { STANDARD_COLUMNS, TABLE_COLUMNS } from "./repo.ts";

export interface Sql {
  readonly sql: string;
  readonly params: readonly Param[];
}

export const sql = (text: string, params: readonly Param[] = []): Sql => ({ sql: text, params });

/** Conditions ANDed; an empty list is TRUE. */
export function and(parts: readonly Sql[]): Sql {
  if (parts.length === 0) return sql("1 = 1");
  return sql(parts.map((p) => `(${p.sql})`).join(" AND "), parts.flatMap((p) => p.params));
}

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** `column IN (...)`, or `= ?` for one value. */
export function oneOf(column: string, values: readonly Param[]): Sql {
  return values.length === 1 ? sql(`${column} = ?`, values) : sql(`${column} IN (${placeholders(values.length)})`, values);
}

interface Column {
  readonly column: string;
  readonly kind: "text" | "int" | "bool";
  /** NULL in some rows: such a column is not a keyset column (NULL ordering differs between the dialects) */
  readonly nullable: boolean;
}

function columnsOf(table: string): Map<string, Column> {
  const out = new Map<string, Column>();
  for (const c of STANDARD_COLUMNS) out.set(c, { column: c, kind: c === "revision_number" ? "int" : "text", nullable: false });
  for (const c of TABLE_COLUMNS[table] ?? []) out.set(c.attr, { column: c.column, kind: c.kind, nullable: c.nullable });
  return out;
}

/** The values a filter on a text attribute may find stored, as query.ts matches them. */
function storedForms(attr: string, wanted: string): string[] {
  if (attr === "mac_address") return [wanted, wanted.toLowerCase()];
  if (attr.endsWith("ip_address")) return [wanted, canonicalAddress(wanted) ?? wanted];
  return [wanted];
}

/** The filter of one column as a narrowing, or null where SQL cannot narrow it (an empty value matches NULL and ''). */
function columnFilter(c: Column, attr: string, wanted: readonly unknown[]): Sql | null {
  const values: Param[] = [];
  for (const w of wanted) {
    if (w === null || w === "") return null;
    if (c.kind === "bool") values.push(w ? 1 : 0);
    else if (c.kind === "int") values.push(Number(w));
    else values.push(...storedForms(attr, String(w)));
  }
  return values.length ? oneOf(c.column, [...new Set(values)]) : null;
}

export interface SortColumn {
  /** the SQL expression ordered and compared on */
  readonly expr: string;
  /** the row's column holding the value a cursor carries */
  readonly column: string;
  readonly dir: 1 | -1;
}

export interface ListPlan {
  readonly table: string;
  /** scope AND what the columns decide */
  readonly where: Sql;
  /** the keyset, id last; null when a sort key is not a column (the page is then cut in memory) */
  readonly order: readonly SortColumn[] | null;
}

export interface PlanInput {
  readonly def: ResourceDef;
  readonly query: ListQuery;
  /** the rows the caller may see; undefined: all of them */
  readonly scope: Sql | undefined;
  /** conditions only the kind knows how to write (derived attributes: a port's fixed IPs, groups) */
  readonly narrow: readonly Sql[];
  /** attributes whose column is not what the caller sees (a network's `shared`: to everyone, not to the caller) */
  readonly ownFilters?: ReadonlySet<string> | undefined;
  readonly dialect: Dialect;
  readonly isAdmin: boolean;
}

export function planList(input: PlanInput): ListPlan {
  const { def, query, dialect } = input;
  const columns = columnsOf(def.table);
  const where: Sql[] = input.scope ? [input.scope] : [];
  for (const [attr, wanted] of query.filters) {
    const c = input.ownFilters?.has(attr) ? undefined : columns.get(attr);
    const f = c ? columnFilter(c, attr, wanted) : null;
    if (f) where.push(f);
  }
  where.push(...input.narrow);

  let order: SortColumn[] | null = [];
  for (const s of query.sort) {
    const c = columns.get(s.key);
    // An attribute the caller cannot see sorts as absent in memory; a column would leak its order.
    if (!c || c.nullable || input.ownFilters?.has(s.key) || (def.attrs[s.key]?.adminView && !input.isAdmin)) {
      order = null;
      break;
    }
    if (c.column === "id") {
      // ids are unique: keys after it never decide, and it is the tie-breaker
      order.push({ expr: "id", column: "id", dir: s.dir });
      return { table: def.table, where: and(where), order };
    }
    // PostgreSQL orders text by the database's collation; "C" is byte order, as SQLite and query.ts compare.
    const expr = dialect === "postgres" && c.kind === "text" ? `${c.column} COLLATE "C"` : c.column;
    order.push({ expr, column: c.column, dir: s.dir });
  }
  // ids are UUIDs: every collation orders them alike, so the primary key's index serves.
  order?.push({ expr: "id", column: "id", dir: 1 });
  return { table: def.table, where: and(where), order };
}

/**
 * One chunk of the keyset scan: rows after `cursor` (the sort values of the
 * last row seen, or of the marker) in the plan's order, reversed for
 * page_reverse; all of them when `limit` is null.
 */
export function chunkSql(plan: ListPlan, cursor: readonly Param[] | null, reverse: boolean, limit: number | null): Sql {
  const order = plan.order!;
  const dirOf = (s: SortColumn) => (reverse ? -s.dir : s.dir);
  const parts: Sql[] = [plan.where];
  if (cursor) {
    // (k1 > c1) OR (k1 = c1 AND k2 > c2) OR ...: directions may differ per key, so no row-value comparison.
    const ors: Sql[] = order.map((s, i) =>
      and([...order.slice(0, i).map((p, j) => sql(`${p.expr} = ?`, [cursor[j]!])), sql(`${s.expr} ${dirOf(s) > 0 ? ">" : "<"} ?`, [cursor[i]!])]),
    );
    parts.push(sql(ors.map((o) => `(${o.sql})`).join(" OR "), ors.flatMap((o) => o.params)));
  }
  const by = order.map((s) => `${s.expr} ${dirOf(s) > 0 ? "ASC" : "DESC"}`).join(", ");
  const w = and(parts);
  return sql(`SELECT * FROM ${plan.table} WHERE ${w.sql} ORDER BY ${by}${limit === null ? "" : ` LIMIT ${limit}`}`, w.params);
}

/** The values a cursor carries for a row, in the plan's order. */
export function cursorOf(plan: ListPlan, row: Record<string, unknown>): Param[] {
  return plan.order!.map((s) => row[s.column] as Param);
}
