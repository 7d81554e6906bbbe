// The FDB manager: forwarding entries (remote MAC -> VTEP, and the flood list)
// and neighbour entries on this host's VXLAN devices, so that unicast goes
// straight to the right host and ARP is answered here (plan.ts decides).
import type { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { isOwnedVxlan } from "../naming.ts";
import { observeFdb } from "./observe.ts";
import { applyLinkOps } from "./kernel.ts";
import type { LinkOp, Observed } from "./ops.ts";
import { type HostConfig, type Phased, planFdb } from "./plan.ts";

export class FdbManager implements Manager<Pick<Observed, "fdb" | "neigh">, Phased<LinkOp>> {
  readonly name = "fdb";

  constructor(
    private readonly exec: Exec,
    private readonly cfg: () => HostConfig,
  ) {}

  /** the entries of our VXLAN devices */
  owns(name: string): boolean {
    return isOwnedVxlan(name);
  }

  observe(): Promise<Pick<Observed, "fdb" | "neigh">> {
    return observeFdb(this.exec);
  }

  plan(intent: Intent, observed: Pick<Observed, "fdb" | "neigh">): Phased<LinkOp> {
    return planFdb(intent, observed, this.cfg());
  }

  async apply(plan: Phased<LinkOp>, phase: "create" | "remove"): Promise<string[]> {
    const ops = phase === "create" ? plan.create : plan.remove;
    return applyLinkOps(this.exec.netns, ops);
  }
}
