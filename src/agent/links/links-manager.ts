// The links manager: the bridges and VXLAN devices of this host's networks,
// and its ports' devices on them (plan.ts decides, ops.ts renders). It
// remembers what the kernel holds after its last plan, so that port status
// and the CNI fast path need no second read.
import type { PortItem } from "../../contract/intent.ts";
import type { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { alias, device, isOwnedDevice } from "../naming.ts";
import { observeLinks } from "./observe.ts";
import { assumeApplied, type LinkOp, linesFor, type Observed } from "./ops.ts";
import { type HostConfig, type LinkPlan, planLinks, pluggedPorts } from "./plan.ts";

type Links = Pick<Observed, "links">;

export class LinksManager implements Manager<Links, LinkPlan & { readonly observed: Links }> {
  readonly name = "links";
  /** the kernel's links as of the last apply; null: unknown (after an error), read again */
  private kernel: Links | null = null;
  /** networks the last plan could not carry, with why */
  refused: LinkPlan["refused"] = [];

  constructor(
    private readonly exec: Exec,
    private readonly cfg: () => HostConfig,
  ) {}

  owns(name: string): boolean {
    return isOwnedDevice(name);
  }

  observe(): Promise<Links> {
    return observeLinks(this.exec);
  }

  plan(intent: Intent, observed: Links): LinkPlan & { readonly observed: Links } {
    this.kernel = observed;
    const plan = planLinks(intent, observed, this.cfg());
    this.refused = plan.refused;
    return { ...plan, observed };
  }

  async apply(plan: LinkPlan, phase: "create" | "remove"): Promise<string[]> {
    const ops = phase === "create" ? plan.create : plan.remove;
    const errors = await this.exec.batch("ip", linesFor(ops, "ip"));
    // Without errors the plan is what the kernel now has; after one, read it again to report the truth.
    this.kernel = errors.length || !this.kernel ? null : assumeApplied({ ...this.kernel, fdb: [], neigh: [] }, ops);
    return errors;
  }

  /** Which of the intent's ports are plugged (device on its bridge, up). */
  async plugged(intent: Intent): Promise<{ up: string[]; down: string[] }> {
    this.kernel ??= await this.observe();
    return pluggedPorts(intent, this.kernel);
  }

  /** Attaches one port's device now (the CNI fast path), with the same op a plan would use. */
  async attach(port: PortItem): Promise<boolean> {
    const bridge = device.bridge(port.network);
    const op: LinkOp = { op: "set", dev: port.device, master: bridge, mtu: port.mtu, up: port.adminUp, alias: alias.port(port.id) };
    const errors = await this.exec.batch("ip", linesFor([op], "ip"));
    if (errors.length) return false;
    if (this.kernel) this.kernel = assumeApplied({ ...this.kernel, fdb: [], neigh: [] }, [op]);
    return true;
  }
}
