// The services manager: a host's translation of service VIPs for the clients
// on its bridges (render.ts says what the kernel holds and why). Like the
// filters, it remembers what it applied and writes only what differs: the
// nft table in one transaction, rules, routes and neighbours in one `ip
// -batch`. After a start it reads what the kernel has once, so stale entries
// go and a bridge keeps its routing table. It runs after the links manager:
// its routes and neighbours need the bridges to exist.
import { readFileSync } from "node:fs";
import type { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { isOwnedDevice, svc } from "../naming.ts";
import { existingOf, readTable } from "../nft/observe.ts";
import { type Existing, planLines } from "../nft/plan.ts";
import { renderServices, type ServicesState } from "./render.ts";

/**
 * Rules, routes and neighbours as flat sets, so a plan is a difference of
 * sets whatever the history: a rule left by a failed delete, or a bridge
 * whose table moved, is just an entry one side has and the other has not.
 */
interface Flat {
  /** `<bridge> <table>` */
  readonly rules: ReadonlySet<string>;
  /** `<table> <ip>` -> bridge */
  readonly routes: ReadonlyMap<string, string>;
  /** `<bridge> <ip>` -> MAC */
  readonly neigh: ReadonlyMap<string, string>;
  readonly subnets: ReadonlySet<string>;
}

function flatten(s: Pick<ServicesState, "bridges" | "subnets">): Flat {
  const rules = new Set<string>();
  const routes = new Map<string, string>();
  const neigh = new Map<string, string>();
  for (const [b, r] of s.bridges) {
    rules.add(`${b} ${r.table}`);
    for (const [ip, mac] of r.nexthops) {
      routes.set(`${r.table} ${ip}`, b);
      neigh.set(`${b} ${ip}`, mac);
    }
  }
  return { rules, routes, neigh, subnets: s.subnets };
}

/** What the kernel had at start, or (once something is applied) the bridges' ifindexes, to see one made again under us. */
export type ServicesObserved =
  | { readonly kind: "kernel"; readonly nft: Existing; readonly flat: Flat; readonly ifindex: ReadonlyMap<string, number> }
  | { readonly kind: "ifindex"; readonly ifindex: ReadonlyMap<string, number> }
  | { readonly kind: "none" };

export interface ServicesPlan {
  readonly nft: readonly string[];
  readonly create: readonly string[];
  readonly remove: readonly string[];
  /** bridges to set forwarding=1 and rp_filter=0 on */
  readonly sysctl: readonly string[];
  readonly next: ServicesState;
  readonly ifindex: ReadonlyMap<string, number>;
}

interface IpRule { priority?: number; iif?: string; src?: string; srclen?: number; table?: string }
interface IpRoute { dst?: string; dev?: string; table?: string }
interface IpNeigh { dst: string; dev?: string; lladdr?: string }

export class ServicesManager implements Manager<ServicesObserved, ServicesPlan> {
  readonly name = "services";
  private applied: { readonly state: ServicesState; readonly flat: Flat } | null = null;
  private appliedIfindex: ReadonlyMap<string, number> = new Map();
  private createFailed = false;
  /** what was said once about services this host cannot translate */
  private readonly told = new Set<string>();

  constructor(
    private readonly exec: Exec,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  owns(name: string): boolean {
    return name === svc.table;
  }

  private async bridgeIndexes(): Promise<Map<string, number>> {
    const links = await this.exec.json<{ ifname: string; ifindex: number }[]>("ip", ["-j", "link", "show", "type", "bridge"]);
    return new Map(links.filter((l) => isOwnedDevice(l.ifname)).map((l) => [l.ifname, l.ifindex]));
  }

  /**
   * The client bridges' ifindexes on every reconcile (a CNI ADD waits for
   * one): read from /sys where the agent's namespace is the kernel's view
   * there (no process), else from `ip link`.
   */
  private async appliedIndexes(bridges: Iterable<string>): Promise<Map<string, number>> {
    if (this.exec.netns !== null) return this.bridgeIndexes();
    const out = new Map<string, number>();
    for (const b of bridges) {
      try {
        out.set(b, Number(readFileSync(`/sys/class/net/${b}/ifindex`, "utf8")));
      } catch {
        /* gone: the links manager makes it again, and the next reconcile sees a new index */
      }
    }
    return out;
  }

  async observe(): Promise<ServicesObserved> {
    if (this.applied) return this.applied.state.bridges.size ? { kind: "ifindex", ifindex: await this.appliedIndexes(this.applied.state.bridges.keys()) } : { kind: "none" };
    const [objs, rules, routes, neigh, ifindex] = await Promise.all([
      readTable(this.exec, "ip", svc.table),
      this.exec.json<IpRule[]>("ip", ["-j", "rule", "show"]),
      this.exec.json<IpRoute[]>("ip", ["-j", "route", "show", "table", "all"]),
      this.exec.json<IpNeigh[]>("ip", ["-j", "neigh", "show", "nud", "permanent"]),
      this.bridgeIndexes(),
    ]);
    const flat = { rules: new Set<string>(), routes: new Map<string, string>(), neigh: new Map<string, string>(), subnets: new Set<string>() };
    const ourTable = (t: number) => t >= svc.firstTable;
    for (const r of rules) {
      const table = Number(r.table);
      if (r.priority === svc.bridgePref && r.iif && isOwnedDevice(r.iif) && ourTable(table)) flat.rules.add(`${r.iif} ${table}`);
      if (r.priority === svc.refusePref && r.src && table === svc.refuseTable) flat.subnets.add(`${r.src}/${r.srclen ?? 32}`);
    }
    for (const r of routes) if (ourTable(Number(r.table)) && r.dst && r.dev) flat.routes.set(`${Number(r.table)} ${r.dst}`, r.dev);
    // permanent neighbours on our bridges are only ever ours: nothing else puts any there
    for (const n of neigh) if (n.dev && n.lladdr && isOwnedDevice(n.dev) && !n.dev.startsWith("svx-")) flat.neigh.set(`${n.dev} ${n.dst}`, n.lladdr);
    return { kind: "kernel", nft: existingOf(objs), flat, ifindex };
  }

  plan(intent: Intent, observed: ServicesObserved): ServicesPlan {
    let prev: Flat = this.applied?.flat ?? { rules: new Set(), routes: new Map(), neigh: new Map(), subnets: new Set() };
    let prevNft = this.applied?.state.nft ?? null;
    let existing: Existing | null = null;
    let ifindex = this.appliedIfindex;
    if (observed.kind === "kernel") {
      ({ flat: prev, ifindex } = observed);
      prevNft = null;
      existing = observed.nft;
    }
    // A bridge made again (another ifindex) lost its routes, neighbours and settings; its rule (by name) stays.
    const recreated = new Set<string>();
    if (observed.kind === "ifindex") {
      for (const [b, i] of observed.ifindex) if (ifindex.has(b) && ifindex.get(b) !== i) recreated.add(b);
      ifindex = observed.ifindex;
      if (recreated.size) {
        prev = {
          ...prev,
          routes: new Map([...prev.routes].filter(([, b]) => !recreated.has(b))),
          neigh: new Map([...prev.neigh].filter(([k]) => !recreated.has(k.split(" ")[0]!))),
        };
      }
    }
    // a bridge keeps the table its rule names (the first, if a failed delete left two)
    const tables = new Map<string, number>();
    for (const r of prev.rules) {
      const [b, t] = r.split(" ");
      if (!tables.has(b!)) tables.set(b!, Number(t));
    }
    const next = renderServices(intent, tables);
    for (const why of next.skipped) {
      if (this.told.has(why)) continue;
      this.told.add(why);
      this.log(why);
    }
    const want = flatten(next);

    const create: string[] = [];
    const remove: string[] = [];
    // after a start, every client bridge's settings are written again: one made while the agent was down has lost them
    const sysctl = new Set<string>(observed.kind === "kernel" ? next.bridges.keys() : recreated);
    for (const r of want.rules) {
      const [b, t] = r.split(" ");
      if (!prev.rules.has(r)) {
        create.push(`rule add iif ${b} lookup ${t} pref ${svc.bridgePref}`);
        sysctl.add(b!);
      }
    }
    for (const [k, b] of want.routes) {
      const [t, ip] = k.split(" ");
      if (prev.routes.get(k) !== b) create.push(`route replace ${ip}/32 dev ${b} table ${t}`);
    }
    for (const [k, mac] of want.neigh) {
      const [b, ip] = k.split(" ");
      if (prev.neigh.get(k) !== mac) create.push(`neigh replace ${ip} lladdr ${mac} dev ${b} nud permanent`);
    }
    for (const s of want.subnets) if (!prev.subnets.has(s)) create.push(`rule add from ${s} lookup ${svc.refuseTable} pref ${svc.refusePref}`);
    if (want.subnets.size && (!prev.subnets.size || observed.kind === "kernel")) create.push(`route replace default dev lo table ${svc.refuseTable}`);

    for (const [k] of prev.neigh) if (!want.neigh.has(k)) remove.push(`neigh del ${k.split(" ")[1]} dev ${k.split(" ")[0]}`);
    for (const [k, b] of prev.routes) if (!want.routes.has(k)) remove.push(`route del ${k.split(" ")[1]}/32 dev ${b} table ${k.split(" ")[0]}`);
    for (const r of prev.rules) if (!want.rules.has(r)) remove.push(`rule del iif ${r.split(" ")[0]} lookup ${r.split(" ")[1]} pref ${svc.bridgePref}`);
    for (const s of prev.subnets) if (!want.subnets.has(s)) remove.push(`rule del from ${s} lookup ${svc.refuseTable} pref ${svc.refusePref}`);
    if (!want.subnets.size && prev.subnets.size) remove.push(`route del default dev lo table ${svc.refuseTable}`);

    return { nft: planLines(prevNft, next.nft, existing), create, remove, sysctl: [...sysctl].sort(), next, ifindex };
  }

  async apply(plan: ServicesPlan, phase: "create" | "remove"): Promise<string[]> {
    const errors: string[] = [];
    if (phase === "create") {
      try {
        await this.exec.nft(plan.nft);
      } catch (e) {
        errors.push(`services: nft: ${(e as Error).message}`);
      }
      errors.push(...(await this.exec.batch("ip", plan.create)));
      if (plan.sysctl.length) {
        const settings = plan.sysctl.flatMap((b) => [`net.ipv4.conf.${b}.forwarding=1`, `net.ipv4.conf.${b}.rp_filter=0`]);
        await this.exec.run("sysctl", ["-q", "-w", ...settings]).catch((e: Error) => errors.push(`services: sysctl: ${e.message}`));
      }
      this.createFailed = errors.length > 0;
      return errors;
    }
    errors.push(...(await this.exec.batch("ip", plan.remove)));
    // What failed is read back from the kernel next time rather than guessed.
    this.applied = this.createFailed || errors.length ? null : { state: plan.next, flat: flatten(plan.next) };
    this.appliedIfindex = plan.ifindex;
    return errors;
  }
}
