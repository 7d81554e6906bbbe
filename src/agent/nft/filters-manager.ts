// The filters manager: the two nftables tables Seam owns in one network
// namespace (ruleset.ts has their contract). It remembers what it applied, so
// a change writes only what differs, in one atomic transaction per phase;
// after a start it reads the kernel's tables once: names to remove if stale,
// and port indexes to keep (a port's mark must not change under established
// traffic across an agent restart).
import type { PortItem } from "../../contract/intent.ts";
import { itemsOf } from "../../contract/intent.ts";
import type { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { chain, NFT_TABLE, portOfEgressChain } from "../naming.ts";
import { existingOf, readTable } from "./observe.ts";
import { type Existing, planLines, withStale } from "./plan.ts";
import { renderTables, type TableSpec } from "./ruleset.ts";

type Tables = readonly [TableSpec, TableSpec];

export interface FilterPlan {
  readonly create: readonly string[];
  readonly remove: readonly string[];
  /** the tables after each phase */
  readonly between: Tables;
  readonly next: Tables;
}

/** What the kernel had at start (first sync only). */
type Recovered = { readonly existing: readonly [Existing, Existing]; readonly index: ReadonlyMap<string, number> } | null;

export class FiltersManager implements Manager<Recovered, FilterPlan> {
  readonly name = "filters";
  private applied: Tables | null = null;
  private readonly index = new Map<string, number>();

  constructor(
    private readonly exec: Exec,
    /** the host's DVR MAC, once its VTEP is known */
    private readonly dvrMac: () => string | null = () => null,
  ) {}

  owns(name: string): boolean {
    return name === NFT_TABLE;
  }

  async observe(): Promise<Recovered> {
    if (this.applied) return null; // it knows what it applied
    const [b, i] = await Promise.all([readTable(this.exec, "bridge", NFT_TABLE), readTable(this.exec, "inet", NFT_TABLE)]);
    const index = new Map<string, number>();
    for (const o of i) {
      if (o.map?.name !== "egress") continue;
      for (const [k, v] of o.map.elem ?? []) {
        const port = portOfEgressChain(v.jump?.target ?? "");
        if (port) index.set(port, Number(k) >>> 16);
      }
    }
    return { existing: [existingOf(b), existingOf(i)], index };
  }

  private assignIndexes(intent: Intent, recovered: ReadonlyMap<string, number> | undefined): void {
    for (const [id, idx] of recovered ?? []) this.index.set(id, idx); // the kernel's marks win: traffic uses them
    const ports = itemsOf(intent, "port").filter((p) => p.security);
    const wanted = new Set(ports.map((p) => p.id));
    for (const id of [...this.index.keys()]) if (!wanted.has(id)) this.index.delete(id);
    const used = new Set(this.index.values());
    let next = 1;
    for (const p of ports) {
      if (this.index.has(p.id)) continue;
      while (used.has(next)) next++;
      if (next > 0xffff) throw new Error("more than 65535 filtered ports on one host");
      this.index.set(p.id, next);
      used.add(next);
    }
  }

  plan(intent: Intent, recovered: Recovered): FilterPlan {
    this.assignIndexes(intent, recovered?.index);
    const next = renderTables(intent, this.index, this.dvrMac());
    const prev = this.applied;
    if (!prev) {
      // after a start: one transaction rewrites everything and removes what the kernel had that is not wanted
      const create = [...planLines(null, next[0], recovered?.existing[0] ?? null), ...planLines(null, next[1], recovered?.existing[1] ?? null)];
      return { create, remove: [], between: next, next };
    }
    const between: Tables = [withStale(prev[0], next[0]), withStale(prev[1], next[1])];
    // a table nothing leaves is already what is wanted after the create phase
    const removing = (i: 0 | 1) => (between[i] === next[i] ? [] : planLines(between[i], next[i], null));
    return {
      create: [...planLines(prev[0], between[0], null), ...planLines(prev[1], between[1], null)],
      remove: [...removing(0), ...removing(1)],
      between,
      next,
    };
  }

  async apply(plan: FilterPlan, phase: "create" | "remove"): Promise<string[]> {
    try {
      await this.exec.nft(phase === "create" ? plan.create : plan.remove);
    } catch (e) {
      // The kernel is as before (one transaction); start over from a fresh read next time.
      this.applied = null;
      throw e;
    }
    this.applied = phase === "create" ? plan.between : plan.next;
    return [];
  }

  /** Whether the kernel already has this port's filters (or it needs none). */
  covers(port: Pick<PortItem, "id" | "security">): boolean {
    if (!port.security) return true;
    return Boolean(this.applied?.[0].chains.has(chain.from(port.id)) && this.applied[1].chains.has(chain.ingress(port.id)));
  }

  /** Forget what was applied: the next sync re-reads the kernel and rewrites everything (atomically). */
  reset(): void {
    this.applied = null;
  }
}
