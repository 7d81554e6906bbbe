// Reading one of our nftables tables back from the kernel (after a start,
// when a manager does not yet know what it applied).
import type { Exec } from "../../os/exec.ts";
import type { Existing } from "./plan.ts";

export interface NftObject {
  chain?: { name: string };
  set?: { name: string };
  map?: { name: string; elem?: [number | string, { jump?: { target: string } }][] };
}

/** The table's objects; none when it does not exist yet. */
export async function readTable(exec: Exec, family: string, name: string): Promise<NftObject[]> {
  try {
    const out = await exec.run("nft", ["-j", "list", "table", family, name]);
    return ((JSON.parse(out) as { nftables: NftObject[] }).nftables ?? []).filter((o) => !("metainfo" in o));
  } catch {
    return []; // no table yet
  }
}

/** The names a table holds. */
export function existingOf(objs: readonly NftObject[]): Existing {
  return {
    chains: new Set(objs.filter((o) => o.chain).map((o) => o.chain!.name)),
    sets: new Set(objs.filter((o) => o.set).map((o) => o.set!.name)),
    maps: new Set(objs.filter((o) => o.map).map((o) => o.map!.name)),
  };
}
