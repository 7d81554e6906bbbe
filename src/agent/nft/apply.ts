// Applies the planned tables and remembers what was applied, so the next
// change writes only what differs. After a start it reads the kernel's
// tables once: names to remove if stale, and port indexes to keep (a port's
// mark must not change under established traffic across an agent restart).
import { run, nft } from "../../os/exec.ts";
import { type Existing, planTable, renderTables, TABLE, type TableSpec } from "./ruleset.ts";
import type { IntentItem } from "../../contract/intent.ts";
import { itemsOf } from "../../contract/intent.ts";

interface NftObject {
  chain?: { name: string };
  set?: { name: string };
  map?: { name: string; elem?: [number | string, { jump?: { target: string } }][] };
}

async function readTable(family: string): Promise<NftObject[]> {
  try {
    const out = await run("nft", ["-j", "list", "table", family, TABLE]);
    return ((JSON.parse(out) as { nftables: NftObject[] }).nftables ?? []).filter((o) => !("metainfo" in o));
  } catch {
    return []; // no table yet
  }
}

function existingOf(objs: NftObject[]): Existing {
  return {
    chains: new Set(objs.filter((o) => o.chain).map((o) => o.chain!.name)),
    sets: new Set(objs.filter((o) => o.set).map((o) => o.set!.name)),
    maps: new Set(objs.filter((o) => o.map).map((o) => o.map!.name)),
  };
}

export class Filters {
  private applied: [TableSpec, TableSpec] | null = null;
  private existing: [Existing, Existing] | null = null;
  private readonly index = new Map<string, number>();

  /** Reads the kernel (first sync only). */
  private async recover(): Promise<void> {
    const [b, i] = [await readTable("bridge"), await readTable("inet")];
    this.existing = [existingOf(b), existingOf(i)];
    for (const o of i) {
      if (o.map?.name !== "egress") continue;
      for (const [k, v] of o.map.elem ?? []) {
        const target = v.jump?.target;
        if (target?.startsWith("eg-")) this.index.set(target.slice(3), Number(k) >>> 16);
      }
    }
  }

  private assignIndexes(intent: ReadonlyMap<string, IntentItem>): void {
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

  /** Makes the kernel's tables match the intent; returns the number of nft commands sent. */
  async sync(intent: ReadonlyMap<string, IntentItem>): Promise<number> {
    if (!this.applied) await this.recover();
    this.assignIndexes(intent);
    const next = renderTables(intent, this.index);
    const lines = [
      ...planTable(this.applied?.[0] ?? null, next[0], this.existing?.[0] ?? null),
      ...planTable(this.applied?.[1] ?? null, next[1], this.existing?.[1] ?? null),
    ];
    try {
      await nft(lines);
    } catch (e) {
      // The kernel is as before (one transaction); start over from a fresh read next time.
      this.applied = null;
      throw e;
    }
    this.applied = next;
    this.existing = null;
    return lines.length;
  }

  /** Whether the kernel already has this port's filters (or it needs none). */
  covers(port: { id: string; security: unknown }): boolean {
    if (!port.security) return true;
    return Boolean(this.applied?.[0].chains.has(`from-${port.id}`) && this.applied[1].chains.has(`in-${port.id}`));
  }

  /** Forget what was applied: the next sync re-reads the kernel and rewrites everything (atomically). */
  reset(): void {
    this.applied = null;
  }
}
