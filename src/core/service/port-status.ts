// Status as the agents report it, which is the southbound's to write, not the
// API's (apart from the resources' rules for that reason):
// - a port is ACTIVE when the agent of its bound host has its device attached
//   and filtered, DOWN otherwise; router ports (bound to no host) are the
//   network host's to report;
// - a router is ACTIVE when the network host (or, distributed, any host that
//   runs an instance) reports it built as the model says, ALLOCATING until it
//   first is, ERROR when a host could not build it;
// - a floating IP is ACTIVE when associated and in its router's kernel, DOWN otherwise.
import { isNetworkHostPort, OWNER } from "../model/owners.ts";
import { NETWORK_ROLE } from "../model/placement.ts";
import { floatingip as fipDef, port as def, router as routerDef } from "../model/resources.ts";
import type { Tx } from "../store/db.ts";
import type { Model } from "./model.ts";
import { findRecs, getRec, updateRec } from "./repo.ts";

export interface StatusLists {
  readonly up: readonly string[];
  readonly down: readonly string[];
}

async function isNetworkHost(tx: Tx, host: string): Promise<boolean> {
  const [agent] = await findRecs(tx, "agents", { host: [host] });
  const roles = ((agent?.configurations as { roles?: string[] } | undefined)?.roles ?? []) as string[];
  return roles.includes(NETWORK_ROLE);
}

/** Sets `status` on each record the reporter may speak for; each change is logged. */
async function setStatus(m: Model, tx: Tx, singular: string, table: string, ids: readonly string[], status: string, may: (rec: Record<string, unknown>) => boolean): Promise<number> {
  let changed = 0;
  for (const id of ids) {
    const rec = await getRec(tx, table, id);
    if (!rec || !may(rec) || rec.status === status) continue;
    await updateRec(tx, table, { ...rec, status });
    await m.emit(tx, m.kindOf(singular), id, "update");
    changed++;
  }
  return changed;
}

/**
 * The agent of `host` reports which of its ports are plugged (device attached,
 * filters in place) and, on a network host, which routers are built and which
 * floating IPs are in the kernel. Watchers (and Nova notifications) see the
 * changes in order.
 */
export async function reportStatus(m: Model, host: string, ports: StatusLists, routers?: StatusLists, floatingips?: StatusLists): Promise<number> {
  const { value } = await m.write(async (tx) => {
    const network = await isNetworkHost(tx, host);
    const mayPort = (rec: Record<string, unknown>) => {
      const bound = (rec["binding:host_id"] as string) ?? "";
      const owner = rec.device_owner as string;
      // a distributed interface is wired on every host that runs the router: any of them may say so
      return bound === host || (network && isNetworkHostPort(owner, bound)) || (!bound && owner === OWNER.routerInterfaceDistributed);
    };
    let changed = 0;
    changed += await setStatus(m, tx, "port", def.table, ports.up, "ACTIVE", mayPort);
    changed += await setStatus(m, tx, "port", def.table, ports.down, "DOWN", mayPort);
    if (routers) {
      // a distributed router has instances on compute hosts too (and none on the network host without a gateway)
      const mayRouter = (rec: Record<string, unknown>) => network || rec.distributed === true;
      changed += await setStatus(m, tx, "router", routerDef.table, routers.up, "ACTIVE", mayRouter);
      changed += await setStatus(m, tx, "router", routerDef.table, routers.down, "ERROR", mayRouter);
    }
    if (network && floatingips) {
      changed += await setStatus(m, tx, "floatingip", fipDef.table, floatingips.up, "ACTIVE", (rec) => Boolean(rec.port_id));
      changed += await setStatus(m, tx, "floatingip", fipDef.table, floatingips.down, "DOWN", () => true);
    }
    return changed;
  });
  return value;
}
