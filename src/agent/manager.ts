// What a dataplane manager is (Felix's *_mgr.go): one feature's kernel
// objects, behind one interface. A manager reads what it owns (observe),
// decides from the intent what to change (plan: two phases, create then
// remove), and applies a phase; dataplane.ts runs them in the one order
// written down there. Managers decide; the op renderers and Exec do the I/O.
import type { IntentItem } from "../contract/intent.ts";

export interface Phased {
  /** make and change what is wanted; runs in the dataplane's order */
  readonly create: readonly unknown[];
  /** take away what is not; runs after every create, in reverse order */
  readonly remove: readonly unknown[];
}

export type Intent = ReadonlyMap<string, IntentItem>;

export interface Manager<O, P extends Phased> {
  readonly name: string;
  /** whether a kernel object of this name (device, table) is this manager's */
  owns(name: string): boolean;
  observe(): Promise<O>;
  plan(intent: Intent, observed: O): P;
  /**
   * Applies one phase. Returns what the kernel refused (the next reconcile
   * retries it); throws when what follows must not run without it (filters:
   * no device goes on a bridge without its rules).
   */
  apply(plan: P, phase: "create" | "remove"): Promise<string[]>;
}
