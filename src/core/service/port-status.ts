// Port status as the agents report it: a port is ACTIVE when the agent of its
// bound host has its device attached and filtered, DOWN otherwise. Apart from
// the port rules (ports.ts) because it is the southbound's to write, not the API's.
import { port as def } from "../model/resources.ts";
import type { Model } from "./model.ts";
import { ports } from "./ports.ts";
import { getRec, updateRec } from "./repo.ts";

/**
 * The agent of `host` reports which of its ports are plugged (device attached,
 * filters in place). Only ports bound to that host change; each change is
 * logged, so watchers (and Nova notifications) see ACTIVE/DOWN in order.
 */
export async function reportPortStatus(m: Model, host: string, up: readonly string[], down: readonly string[]): Promise<number> {
  const { value } = await m.db.write(async (tx) => {
    let changed = 0;
    for (const [ids, status] of [[up, "ACTIVE"], [down, "DOWN"]] as const) {
      for (const id of ids) {
        const rec = await getRec(tx, def.table, id);
        if (!rec || rec["binding:host_id"] !== host || rec.status === status) continue;
        await updateRec(tx, def.table, { ...rec, status });
        await m.emit(tx, ports, id, "update");
        changed++;
      }
    }
    return changed;
  });
  return value;
}
