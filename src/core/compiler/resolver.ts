// What a resolver is: one role of the compiler (L2, policy; routers, DHCP and
// services add theirs), declaring what it reads, what a host takes part in for
// it (its scope), the items it makes, and which hosts and keys a change of
// what it reads may alter. compile.ts wires them in order.
import type { IntentItem, ItemKind, ItemOf, KeyParts } from "../../contract/intent.ts";
import type { ModelKind } from "./records.ts";
import type { Applied, World } from "./world.ts";

/** A scope part: named sets of ids; when any set of a host's scope changes, the host is compiled whole. */
export type ScopePart = Readonly<Record<string, ReadonlySet<string>>>;

export type HostSet = ReadonlySet<string> | "all";

export type KeyOf<K extends ItemKind> = Extract<KeyParts, { kind: K }>;

export interface Resolver<S extends ScopePart, K extends ItemKind> {
  readonly name: string;
  /** the model kinds whose changes can alter its items */
  readonly reads: readonly ModelKind[];
  scope(w: World, host: string): S;
  /** every item of its kinds the host should have */
  compile(w: World, host: string, scope: S, put: (key: string, item: IntentItem | undefined) => void): void;
  /** the item a key names for the host, per kind; undefined: the host should not have it */
  readonly items: { readonly [P in K]: (w: World, host: string, scope: S, key: KeyOf<P>) => ItemOf<P> | undefined };
  /**
   * Hosts whose items of this resolver may depend on the record on one side
   * of a change: called with "before" on the World before the change is
   * applied and with "after" on the World after it.
   */
  hosts(w: World, a: Applied, side: "before" | "after"): HostSet;
  /** Keys the change may alter on those hosts ("whole": compile them whole); called after it is applied. */
  keys(w: World, a: Applied): readonly string[] | "whole";
  /** Hosts to compile whole after the change, whatever their scope says. */
  wholeHosts?(w: World, a: Applied): Iterable<string>;
}

