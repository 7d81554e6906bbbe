// The compiler: logical model -> one host's desired dataplane (HostIntent).
// Start reading here. Pure functions of a World; the southbound hub calls them
// for the hosts a change concerns and sends the difference.
//
//   change log ──> World.decode (typed records, group views -> rule changes)
//                    │
//                    ├── l2-resolver       networks, local ports, remote endpoints (FDB/neighbours)
//                    ├── policy-resolver   security groups, rules, remote-group members
//                    ├── router-resolver   routers (interfaces, gateway, routes, SNAT), floating IPs
//                    ├── dhcp-resolver     DHCP and DNS servers: per network, and a static assignment per port
//                    └── service-resolver  services' VIPs and backends, on the hosts of their clients
//                    │
//                    v
//   per host: scope (what it takes part in) ──> items by key ──> hub (fingerprints, deltas)
//
// Each resolver declares what it reads, a host's scope for it, its items and
// which hosts and keys a change touches (resolver.ts). Every item kind has one
// function that computes it, used both by the full compile and by the per-key
// recompute, so the two cannot disagree.
import { type HostIntent, type IntentItem, type ItemKind, type ItemOf, parseKey } from "../../contract/intent.ts";
import { dhcpResolver } from "./dhcp-resolver.ts";
import { type L2Scope, l2Resolver } from "./l2-resolver.ts";
import { type PolicyScope, policyResolver } from "./policy-resolver.ts";
import type { ModelKind } from "./records.ts";
import { type RouterScope, routerResolver } from "./router-resolver.ts";
import { serviceResolver } from "./service-resolver.ts";
import type { HostSet, KeyOf } from "./resolver.ts";
import type { Applied, World } from "./world.ts";

/** In the order they run; a new role is one more line here (and its scope in Scope). */
export const RESOLVERS = [l2Resolver, policyResolver, routerResolver, dhcpResolver, serviceResolver] as const;

/** What a host takes part in; when it changes, the host is compiled whole. */
export type Scope = L2Scope & PolicyScope & RouterScope;

type ItemFn<K extends ItemKind> = (w: World, host: string, scope: Scope, key: KeyOf<K>) => ItemOf<K> | undefined;

// Every item kind is made by exactly one resolver: a kind added to IntentItem
// that no resolver makes does not compile here.
const ITEMS: { readonly [K in ItemKind]: ItemFn<K> } = { ...l2Resolver.items, ...policyResolver.items, ...routerResolver.items, ...dhcpResolver.items, ...serviceResolver.items };

export function scopeOf(w: World, host: string): Scope {
  const l2 = l2Resolver.scope(w, host);
  const policy = policyResolver.scope(w, host);
  // the distributed routers a host runs decide its networks too: L2 computes them, routers read them
  return { networks: l2.networks, dvrRouters: l2.dvrRouters, groups: policy.groups, remoteGroups: policy.remoteGroups };
}

const sorted = (ids: ReadonlySet<string>) => (ids.size < 2 ? [...ids].join(",") : [...ids].sort().join(","));

/**
 * Equal for equal scopes. Computed for every concerned host on every change:
 * the parts in the order scopeOf's literal (which the compiler checks for
 * every field of Scope) puts them, with no sorting of names.
 */
export const scopeSignature = (s: Scope) => Object.values(s).map(sorted).join("|");

/** The item a key names for this host, or undefined when the host should not have it. */
export function itemFor(w: World, host: string, scope: Scope, k: string): IntentItem | undefined {
  const parts = parseKey(k);
  if (!parts) return undefined;
  return (ITEMS[parts.kind] as ItemFn<typeof parts.kind>)(w, host, scope, parts as never);
}

/** The whole HostIntent of one host. */
export function compileHost(w: World, host: string, scope: Scope = scopeOf(w, host)): HostIntent {
  const out: HostIntent = new Map();
  const put = (k: string, item: IntentItem | undefined) => {
    if (item) out.set(k, item);
  };
  for (const r of RESOLVERS) r.compile(w, host, scope, put);
  return out;
}

/** Hosts, and the keys to recompute on them ("whole": all of it). */
export interface Concern {
  readonly hosts: HostSet;
  readonly keys: readonly string[] | "whole";
}

const READERS = new Map<ModelKind, (typeof RESOLVERS)[number][]>();
for (const r of RESOLVERS) for (const k of r.reads) READERS.set(k, [...(READERS.get(k) ?? []), r]);

/**
 * Applies one decoded change to the World and says which hosts and keys it
 * concerns, resolver by resolver: the hosts that depended on the record
 * before, those that depend on it after, and those to compile whole.
 */
export function applyChange(w: World, a: Applied): Concern[] {
  const readers = READERS.get(a.kind) ?? [];
  const before = readers.map((r) => r.hosts(w, a, "before"));
  w.apply(a);
  const out: Concern[] = [];
  readers.forEach((r, i) => {
    const keys = r.keys(w, a);
    out.push({ hosts: before[i]!, keys }, { hosts: r.hosts(w, a, "after"), keys });
    const whole = new Set(r.wholeHosts?.(w, a) ?? []);
    if (whole.size) out.push({ hosts: whole, keys: "whole" });
  });
  return out;
}
