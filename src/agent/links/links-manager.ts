// The links manager: the bridges and VXLAN devices of this host's networks,
// and its ports' devices on them (plan.ts decides, ops.ts renders). It
// remembers what the kernel holds after its last plan, so that port status
// and the CNI fast path need no second read, and it keeps that view between
// reconciles: the devices the link monitor names are read again one by one,
// and the whole table only after a start, an error, a change it did not see
// coming (a router's or DHCP server's new veths: `forget`) or every 30 s.
// Why: the dump of every device, ~250 with 200 pods, was read at every
// reconcile, and a burst of pod starts makes about one per pod.
import type { PortItem } from "../../contract/intent.ts";
import type { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { alias, device, isOwnedDevice } from "../naming.ts";
import { applyLinkOps } from "./kernel.ts";
import { Rtnl } from "../../os/netlink/rtnl.ts";
import { observeLinks, toObserved } from "./observe.ts";
import { assumeApplied, type LinkOp, type Observed, type ObservedLink } from "./ops.ts";
import { type HostConfig, type LinkPlan, planLinks, pluggedPorts } from "./plan.ts";

type Links = Pick<Observed, "links">;

/** how long a kept view of the links is trusted before the whole table is read again */
const FULL_READ_MS = 30_000;

export class LinksManager implements Manager<Links, LinkPlan & { readonly observed: Links }> {
  readonly name = "links";
  /** the kernel's links as of the last apply; null: unknown (after an error), read again */
  private kernel: Links | null = null;
  /** networks the last plan could not carry, with why */
  refused: LinkPlan["refused"] = [];
  /** devices named by the link monitor since the view was last brought up to date */
  private readonly dirty = new Set<string>();
  private readAt = -Infinity;

  constructor(
    private readonly exec: Exec,
    private readonly cfg: () => HostConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** A device appeared, changed or went (the link monitor): the next observe reads it again. */
  touch(name: string): void {
    this.dirty.add(name);
  }

  /** The next observe reads every device (something made devices this manager was not told about). */
  forget(): void {
    this.kernel = null;
  }

  owns(name: string): boolean {
    return isOwnedDevice(name);
  }

  async observe(): Promise<Links> {
    if (!this.kernel || this.now() - this.readAt > FULL_READ_MS) {
      this.dirty.clear();
      const all = await observeLinks(this.exec);
      this.readAt = this.now();
      return all;
    }
    const links = new Map(this.kernel.links);
    const names = [...this.dirty];
    this.dirty.clear();
    if (names.length) refresh(this.exec.netns, links, names);
    return { links };
  }

  plan(intent: Intent, observed: Links): LinkPlan & { readonly observed: Links } {
    this.kernel = observed;
    const plan = planLinks(intent, observed, this.cfg());
    this.refused = plan.refused;
    return { ...plan, observed };
  }

  async apply(plan: LinkPlan, phase: "create" | "remove"): Promise<string[]> {
    const ops = phase === "create" ? plan.create : plan.remove;
    const errors = applyLinkOps(this.exec.netns, ops);
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
    if (applyLinkOps(this.exec.netns, [op]).length) return false;
    if (this.kernel) {
      const links = new Map(assumeApplied({ ...this.kernel, fdb: [], neigh: [] }, [op]).links);
      // a device new to the view (made by the CNI service a moment ago) is read, as plugged now
      if (!links.has(port.device)) refresh(this.exec.netns, links, [port.device]);
      this.kernel = { links };
    }
    return true;
  }
}

/** Reads these devices again into the view (those gone leave it). */
function refresh(netns: string | null, links: Map<string, ObservedLink>, names: readonly string[]): void {
  Rtnl.with(netns, (nl) => {
    for (const name of names) {
      const l = nl.link(name);
      if (!l) {
        links.delete(name);
        continue;
      }
      const master = l.master ? nl.link(l.master) : null;
      const [seen] = toObserved(master ? [l, master] : [l]).values();
      links.set(name, seen!);
    }
  });
}
