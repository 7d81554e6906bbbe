// List queries as Neutron defines them: filters on any attribute (a repeated
// key is OR, different keys AND, `?x=` matches the empty value), tag filters,
// fields, sorting and marker pagination. Parsing validates against the
// resource's attribute map (filter-validation: an unknown key is 400); the
// rest is pure list processing over views.
import { badRequest } from "../errors.ts";
import { canonicalAddress } from "../../net/address.ts";
import { checkFilterValue, type ResourceDef } from "./attributes.ts";

export type Raw = Record<string, string | string[] | undefined>;
type View = Record<string, unknown>;

export interface ListQuery {
  readonly filters: ReadonlyMap<string, readonly unknown[]>;
  readonly fixedIps: { ip_address: string[]; subnet_id: string[]; ip_address_substr: string[] } | null;
  readonly tags: { all: string[]; any: string[]; notAll: string[]; notAny: string[] };
  readonly fields: readonly string[] | null;
  readonly sort: readonly { key: string; dir: 1 | -1 }[];
  readonly limit: number | null;
  readonly marker: string | null;
  readonly pageReverse: boolean;
}

const RESERVED = new Set(["fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir", "tags", "tags-any", "not-tags", "not-tags-any", "verbose"]);

const asList = (x: string | string[] | undefined): string[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const commaList = (x: string | string[] | undefined) => asList(x).flatMap((s) => s.split(",")).filter((s) => s !== "");

export function parseListQuery(def: ResourceDef, raw: Raw): ListQuery {
  const filters = new Map<string, unknown[]>();
  let fixedIps: ListQuery["fixedIps"] = null;
  for (const [key, value] of Object.entries(raw)) {
    if (RESERVED.has(key) || value === undefined) continue;
    if (def.singular === "port" && key === "fixed_ips") {
      fixedIps = { ip_address: [], subnet_id: [], ip_address_substr: [] };
      for (const item of asList(value)) {
        const eq = item.indexOf("=");
        const k = item.slice(0, eq);
        if (eq < 0 || !(k in fixedIps)) throw badRequest(`Invalid fixed_ips filter '${item}': use ip_address=, subnet_id= or ip_address_substr=`);
        fixedIps[k as keyof typeof fixedIps].push(item.slice(eq + 1));
      }
      continue;
    }
    const name = key === "tenant_id" ? "project_id" : key;
    const attr = def.attrs[name];
    if (!attr || attr.filter === "none") throw badRequest(`[${key}] is invalid attribute for filtering`);
    filters.set(name, asList(value).map((x) => checkFilterValue(def, name, x)));
  }
  const sortKeys = asList(raw.sort_key);
  const sortDirs = asList(raw.sort_dir);
  if (sortDirs.length > sortKeys.length) throw badRequest("The number of sort_keys and sort_dirs must be same");
  const sort = sortKeys.map((key, i) => {
    const attr = def.attrs[key === "tenant_id" ? "project_id" : key];
    if (!attr || attr.sort === false) throw badRequest(`${key} is an invalid attribute for sort_keys`);
    const dir = sortDirs[i] ?? "asc";
    if (dir !== "asc" && dir !== "desc") throw badRequest(`${dir} is an invalid value for sort_dirs, valid values are 'asc' and 'desc'`);
    return { key: key === "tenant_id" ? "project_id" : key, dir: dir === "asc" ? (1 as const) : (-1 as const) };
  });
  let limit: number | null = null;
  if (raw.limit !== undefined) {
    const l = asList(raw.limit)[0]!;
    if (!/^\d+$/.test(l)) throw badRequest(`Bad limit request: Limit must be an integer 0 or greater and not '${l}'.`);
    limit = Number(l) === 0 ? null : Number(l);
  }
  const fields = raw.fields === undefined ? null : commaList(raw.fields);
  return {
    filters,
    fixedIps,
    tags: { all: commaList(raw.tags), any: commaList(raw["tags-any"]), notAll: commaList(raw["not-tags"]), notAny: commaList(raw["not-tags-any"]) },
    fields,
    sort,
    limit,
    marker: asList(raw.marker)[0] ?? null,
    pageReverse: /^(true|1)$/i.test(asList(raw.page_reverse)[0] ?? ""),
  };
}

function matches(def: ResourceDef, view: View, key: string, wanted: readonly unknown[]): boolean {
  const actual = view[key];
  if (def.attrs[key]?.filter === "contains") {
    return Array.isArray(actual) && wanted.some((w) => actual.includes(w));
  }
  return wanted.some((w) => {
    if (w === "" || w === null) return actual === "" || actual === null || actual === undefined;
    if (typeof actual === "string" && typeof w === "string" && key.endsWith("ip_address")) {
      return canonicalAddress(w) === actual || w === actual;
    }
    return actual === w || (typeof actual === "string" && actual.toLowerCase() === String(w).toLowerCase() && key === "mac_address");
  });
}

function matchesFixedIps(view: View, f: NonNullable<ListQuery["fixedIps"]>): boolean {
  const ips = (view.fixed_ips as { ip_address: string; subnet_id: string }[] | undefined) ?? [];
  return ips.some(
    (ip) =>
      (f.ip_address.length === 0 || f.ip_address.some((a) => canonicalAddress(a) === ip.ip_address || a === ip.ip_address)) &&
      (f.subnet_id.length === 0 || f.subnet_id.includes(ip.subnet_id)) &&
      (f.ip_address_substr.length === 0 || f.ip_address_substr.some((s) => ip.ip_address.includes(s))),
  );
}

function matchesTags(view: View, t: ListQuery["tags"]): boolean {
  const tags = new Set((view.tags as string[] | undefined) ?? []);
  if (t.all.length && !t.all.every((x) => tags.has(x))) return false;
  if (t.any.length && !t.any.some((x) => tags.has(x))) return false;
  if (t.notAll.length && t.notAll.every((x) => tags.has(x))) return false;
  if (t.notAny.length && t.notAny.some((x) => tags.has(x))) return false;
  return true;
}

export function filterViews(def: ResourceDef, views: readonly View[], q: ListQuery): View[] {
  return views.filter((view) => {
    for (const [key, wanted] of q.filters) if (!matches(def, view, key, wanted)) return false;
    if (q.fixedIps && !matchesFixedIps(view, q.fixedIps)) return false;
    return matchesTags(view, q.tags);
  });
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return a ? 1 : -1;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export interface Page {
  readonly items: View[];
  readonly next: string | null;
  readonly previous: string | null;
}

/** Sorts (id breaks ties, so pages are stable) and cuts one page at the marker. */
export function paginate(views: View[], q: ListQuery, markerMissing: (id: string) => Error): Page {
  const keys = [...q.sort, { key: "id", dir: 1 as const }];
  const sorted = [...views].sort((x, y) => {
    for (const k of keys) {
      const c = compare(x[k.key], y[k.key]) * k.dir;
      if (c !== 0) return c;
    }
    return 0;
  });
  if (q.limit === null && q.marker === null) return { items: sorted, next: null, previous: null };
  let start = 0;
  let end = sorted.length;
  if (q.marker !== null) {
    const at = sorted.findIndex((x) => x.id === q.marker);
    if (at < 0) throw markerMissing(q.marker);
    if (q.pageReverse) end = at;
    else start = at + 1;
  }
  if (q.limit !== null) {
    if (q.pageReverse) start = Math.max(0, end - q.limit);
    else end = Math.min(sorted.length, start + q.limit);
  }
  const items = sorted.slice(start, end);
  const moreAfter = end < sorted.length;
  const moreBefore = start > 0;
  const lastId = items.length ? (items[items.length - 1]!.id as string) : null;
  const firstId = items.length ? (items[0]!.id as string) : null;
  return {
    items,
    next: q.limit !== null && moreAfter && lastId ? lastId : null,
    previous: (q.marker !== null || q.pageReverse) && moreBefore && firstId ? firstId : null,
  };
}

export function selectFields(view: View, fields: readonly string[] | null): View {
  if (!fields || fields.length === 0) return view;
  const out: View = {};
  for (const f of fields) if (f in view) out[f] = view[f];
  return out;
}
