// The agent's dataplane: its managers in the one order they apply. Start
// reading the agent here.
//
//   intent ──> routers (namespaces, veths, NAT) ──> dhcp (namespaces, dnsmasq) ──> filters (nft) ──> links (bridges, VXLAN, ports) ──> fdb (FDB, neighbours) ──> services (DNAT, policy routes)
//              create phases in this order ...                                                                              ... remove phases in reverse
//
// Filters come first: nft matches devices by name, so a port's rules can be
// in before its device exists, and a device is never on a bridge without
// them. Removal runs backwards for the same reason: a port's device leaves
// the bridge before its rules go. Routers and DHCP servers come first because
// they make devices (their veths' host sides) that the links manager plugs:
// when they made any, the managers after them look at the kernel again.
// Services come last: their routes and neighbours are on the bridges.
import type { ItemKind } from "../contract/intent.ts";
import type { Exec } from "../os/exec.ts";
import { FdbManager } from "./links/fdb-manager.ts";
import { LinksManager } from "./links/links-manager.ts";
import type { HostConfig } from "./links/plan.ts";
import type { Intent, Manager, Phased } from "./manager.ts";
import { FiltersManager } from "./nft/filters-manager.ts";
import { DhcpManager } from "./dhcp/dhcp-manager.ts";
import { RoutersManager } from "./routers/routers-manager.ts";
import { ServicesManager } from "./services/services-manager.ts";
import { dvrMac } from "./naming.ts";

// Which managers act on each item kind: a kind the compiler may send that no
// manager handles does not compile here.
export type ManagerName = "routers" | "dhcp" | "filters" | "links" | "fdb" | "services";
export const ACTS_ON: { readonly [K in ItemKind]: readonly ManagerName[] } = {
  net: ["links", "fdb"],
  port: ["routers", "dhcp", "filters", "links"],
  remote: ["fdb"],
  sg: ["filters"],
  rule: ["filters"],
  member: ["filters"],
  router: ["routers"],
  snat: ["routers"],
  fip: ["routers"],
  dhcp: ["dhcp"],
  dhcphost: ["dhcp"],
  svc: ["services"],
};

export const isKnownKind = (kind: string): kind is ItemKind => Object.hasOwn(ACTS_ON, kind);

export interface SyncResult {
  /** what the kernel refused, per manager (the next reconcile tries again) */
  readonly errors: readonly string[];
  /** networks this kernel cannot carry, with why */
  readonly refused: readonly { readonly network: string; readonly reason: string }[];
  /** operations per manager and phase, and when (ms since the sync began) its read was in and its create phase done, for traces and benchmarks */
  readonly counts: Readonly<Record<string, { create: number; remove: number; read: number; created: number }>>;
}

// What each manager observes is its own business: the list only needs the phases.
type AnyManager = Manager<any, Phased>;

export interface DataplaneOptions {
  /** what this agent's namespace names end with, where hosts share /run/netns (the lab) */
  readonly netnsSuffix?: string;
  /** where the DHCP servers' files go (a directory per namespace) */
  readonly dhcpDir?: string;
  /** where the routers' radvd files go (a directory per namespace) */
  readonly routersDir?: string;
  /** the agent's DNS relay port, when it relays to upstream resolvers */
  readonly dnsRelayPort?: number | null;
  /** the agent's metadata socket, once it serves one */
  readonly metadataSocket?: () => string | null;
  readonly log?: (msg: string) => void;
}

export class Dataplane {
  readonly routers: RoutersManager;
  readonly dhcp: DhcpManager;
  readonly filters: FiltersManager;
  readonly links: LinksManager;
  readonly fdb: FdbManager;
  readonly services: ServicesManager;
  /** in apply order */
  private readonly managers: readonly AnyManager[];

  constructor(exec: Exec, cfg: () => HostConfig, opts: DataplaneOptions = {}) {
    this.routers = new RoutersManager(exec, opts.netnsSuffix ?? "", opts.log ?? (() => {}), Date.now, opts.routersDir ?? "/run/seam/routers");
    this.dhcp = new DhcpManager(exec, opts.dhcpDir ?? "/run/seam/dhcp", opts.netnsSuffix ?? "", opts.log ?? (() => {}), opts.dnsRelayPort ?? null, opts.metadataSocket);
    this.filters = new FiltersManager(exec, () => dvrMac(cfg().vtep));
    this.links = new LinksManager(exec, cfg);
    this.fdb = new FdbManager(exec, cfg);
    this.services = new ServicesManager(exec, opts.log ?? (() => {}));
    this.managers = [this.routers, this.dhcp, this.filters, this.links, this.fdb, this.services];
  }

  /** Whether a kernel object of this name is one of ours (the ownership test checks every name). */
  owns(name: string): boolean {
    return this.managers.some((m) => m.owns(name));
  }

  /**
   * Kernel <- intent. Every manager reads the kernel at once; each applies
   * its create phase as soon as it has read and the one before it is done
   * (so nft runs while the links are still being read), then the remove
   * phases run in reverse. A manager that throws stops what follows it.
   * `onFiltered` is told when the filters' create phase is in.
   * `only`: the managers whose items changed (the agent knows from the
   * deltas: ACTS_ON); the others neither read nor touch the kernel. Without
   * it (a start, a snapshot, a device event, drift repair, a retry) all run.
   */
  async sync(intent: Intent, onFiltered?: () => void, only?: ReadonlySet<ManagerName>): Promise<SyncResult> {
    const runs = new Set<string>(only ?? this.managers.map((m) => m.name));
    const observing = this.managers.map((m) => (runs.has(m.name) ? m.observe() : Promise.resolve(undefined)));
    observing.forEach((p) => p.catch(() => {})); // awaited below; a failure there is reported once
    const plans: (Phased | null)[] = [];
    const errors: string[] = [];
    const counts: Record<string, { create: number; remove: number; read: number; created: number }> = {};
    const t0 = performance.now();
    const at = () => Math.round(performance.now() - t0);
    for (const [i, m] of this.managers.entries()) {
      if (!runs.has(m.name)) {
        plans.push(null);
        if (m === this.filters) onFiltered?.();
        continue;
      }
      const observed = await observing[i];
      const read = at();
      const plan = m.plan(intent, observed);
      plans.push(plan);
      errors.push(...(await m.apply(plan, "create")));
      counts[m.name] = { create: plan.create.length, remove: plan.remove.length, read, created: at() };
      if (m === this.filters) onFiltered?.();
      // the routers' and DHCP servers' veths are new devices: what follows must see them (and the links manager plug them)
      if ((m === this.routers || (m === this.dhcp && this.dhcp.madeDevices)) && plan.create.length) {
        runs.add(this.links.name);
        this.links.forget();
        for (let j = i + 1; j < this.managers.length; j++) observing[j] = runs.has(this.managers[j]!.name) ? this.managers[j]!.observe() : Promise.resolve(undefined);
        observing.forEach((p) => p.catch(() => {}));
      }
    }
    for (let i = this.managers.length - 1; i >= 0; i--) {
      const plan = plans[i];
      if (plan) errors.push(...(await this.managers[i]!.apply(plan, "remove")));
    }
    return { errors, refused: this.links.refused, counts };
  }
}
