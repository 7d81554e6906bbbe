// Planning a table's change (pure): what the kernel holds -> the typed nft
// operations (ops.ts) that turn it into what is wanted, in one atomic
// transaction, creating what a rule or element refers to before it and
// deleting it after the last reference.
import type { MapSpec, TableSpec } from "./ruleset.ts";
import { type NftOp, renderNft } from "./ops.ts";

/**
 * The table between a change's two phases: all `next` wants, and what `prev`
 * had that `next` drops (chains, sets, map elements of ports that are going).
 * Planning prev -> withStale -> next removes a port's filters only after the
 * links manager has taken its device off the bridge: never an unfiltered
 * device on a bridge, not even for the time between two commands.
 */
export function withStale(prev: TableSpec, next: TableSpec): TableSpec {
  // The common case (rules and ports added, nothing leaving): `next` itself, so no second plan is needed.
  const leaves = <V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, unknown>) => [...a.keys()].some((k) => !b.has(k));
  const leaving = leaves(prev.chains, next.chains) || leaves(prev.sets, next.sets) || [...prev.maps].some(([name, m]) => !next.maps.has(name) || leaves(m.elements, next.maps.get(name)!.elements));
  if (!leaving) return next;
  const union = <V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>) => new Map([...b, ...[...a].filter(([k]) => !b.has(k))]);
  const maps = new Map<string, MapSpec>();
  for (const [name, m] of union(prev.maps, next.maps)) {
    const before = prev.maps.get(name);
    maps.set(name, next.maps.has(name) && before ? { decl: m.decl, elements: union(before.elements, m.elements) } : m);
  }
  return { ...next, chains: union(prev.chains, next.chains), sets: union(prev.sets, next.sets), maps };
}

/** What exists in the kernel's table (names, and map keys -> values), for the first sync after a start. */
export interface Existing {
  readonly chains: ReadonlySet<string>;
  readonly sets: ReadonlySet<string>;
  readonly maps: ReadonlySet<string>;
}

/**
 * The nft script (one atomic transaction) that turns `prev` into `next`.
 * With no `prev` (agent start), everything desired is (re)written and
 * whatever else `existing` shows in our table is removed; in the same
 * transaction, so traffic never sees a half state. Order matters: objects a
 * rule or element refers to are created before it and deleted after it.
 */
export function planTable(prev: TableSpec | null, next: TableSpec, existing: Existing | null): NftOp[] {
  const out: NftOp[] = [{ op: "table" }];
  const prevChains = prev?.chains ?? new Map();
  const known = (m: ReadonlyMap<string, unknown> | undefined, s: ReadonlySet<string> | undefined, name: string) => (prev ? m!.has(name) : (s?.has(name) ?? false));

  for (const [name, s] of next.sets) if (!known(prev?.sets, existing?.sets, name)) out.push({ op: "add", what: "set", name, decl: s.decl });
  for (const [name, m] of next.maps) if (!known(prev?.maps, existing?.maps, name)) out.push({ op: "add", what: "map", name, decl: m.decl });
  for (const [name, c] of next.chains) if (!prevChains.has(name)) out.push({ op: "add", what: "chain", name, decl: c.decl });

  for (const [name, s] of next.sets) {
    const before = prev?.sets.get(name);
    if (before && before.elements.join() === s.elements.join()) continue;
    if (before && s.exact) {
      const had = new Set(before.elements);
      const has = new Set(s.elements);
      const gone = before.elements.filter((e) => !has.has(e));
      const added = s.elements.filter((e) => !had.has(e));
      if (gone.length) out.push({ op: "deleteElements", name, keys: gone });
      if (added.length) out.push({ op: "addElements", name, elements: added });
      continue;
    }
    // auto-merge folds overlapping members, so such a set is refilled whole (atomically) rather than edited
    out.push({ op: "flush", what: "set", name });
    if (s.elements.length) out.push({ op: "addElements", name, elements: s.elements });
  }
  for (const [name, m] of next.maps) {
    const before = prev?.maps.get(name);
    if (!before) {
      out.push({ op: "flush", what: "map", name });
      if (m.elements.size) out.push({ op: "addElements", name, elements: [...m.elements].map(([k, v]) => `${k} : ${v}`) });
      continue;
    }
    const gone = [...before.elements].filter(([k, v]) => m.elements.get(k) !== v).map(([k]) => k);
    const added = [...m.elements].filter(([k, v]) => before.elements.get(k) !== v);
    if (gone.length) out.push({ op: "deleteElements", name, keys: gone });
    if (added.length) out.push({ op: "addElements", name, elements: added.map(([k, v]) => `${k} : ${v}`) });
  }
  for (const [name, c] of next.chains) {
    const before = prevChains.get(name);
    // the same chain object is the same rules (ruleset.ts remembers unchanged ports' chains)
    if (before && (before === c || before.rules.join("\n") === c.rules.join("\n"))) continue;
    out.push({ op: "flush", what: "chain", name });
    for (const rule of c.rules) out.push({ op: "addRule", chain: name, rule });
  }
  const staleChains = prev ? [...prev.chains.keys()].filter((n) => !next.chains.has(n)) : [...(existing?.chains ?? [])].filter((n) => !next.chains.has(n));
  for (const name of staleChains) out.push({ op: "flush", what: "chain", name });
  for (const name of staleChains) out.push({ op: "delete", what: "chain", name });
  const staleSets = prev ? [...prev.sets.keys()].filter((n) => !next.sets.has(n)) : [...(existing?.sets ?? [])].filter((n) => !next.sets.has(n));
  for (const name of staleSets) out.push({ op: "delete", what: "set", name });
  const staleMaps = prev ? [...prev.maps.keys()].filter((n) => !next.maps.has(n)) : [...(existing?.maps ?? [])].filter((n) => !next.maps.has(n));
  for (const name of staleMaps) out.push({ op: "delete", what: "map", name });
  return out.length === 1 && prev ? [] : out;
}

/** The plan as `nft -f` lines for `next`'s table. */
export const planLines = (prev: TableSpec | null, next: TableSpec, existing: Existing | null): string[] => renderNft(planTable(prev, next, existing), next.family, next.name);
