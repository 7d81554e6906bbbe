// The routers manager: a namespace per router this host runs (spec.ts says
// what each holds, plan.ts how to get there). Reading a namespace costs a
// process, so a router is read and planned only when its spec differs from
// the one last applied, after a start, after an error, and every RECHECK_MS
// (drift repair); a reconcile that changes no router spawns nothing.
//
// Its create phase runs first in the dataplane: it makes the veths whose
// host side the links manager then plugs into the networks' bridges (the
// dataplane has the links manager look again after it). Its remove phase runs
// last: a router port leaves its bridge before its veth goes, and a router's
// namespace goes (with its veths) once nothing needs it.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { runningPid, stopDaemon } from "../../os/daemons.ts";
import { Exec } from "../../os/exec.ts";
import { namedNetns } from "../../os/netns.ts";
import type { Intent, Manager } from "../manager.ts";
import { parseNetns } from "../naming.ts";
import { observeRouter } from "./observe.ts";
import { type Neighbours, RouterNeighbours, wantedNeighbours } from "./neighbours.ts";
import { isNoop, planRouter, type RouterPlan } from "./plan.ts";
import { radvdConfig } from "./radvd.ts";
import { fingerprint, type RouterSpec, routerSpecs } from "./spec.ts";

const RECHECK_MS = 30_000;

export interface RoutersPlan {
  /** routers to read and bring to their spec */
  readonly create: readonly RouterSpec[];
  /** namespaces of routers this host no longer runs */
  readonly remove: readonly string[];
  /** the permanent neighbour entries of every router namespace here (neighbours.ts) */
  readonly neighbours: Neighbours;
}

export interface RouterStatus {
  /** built as their spec says */
  readonly up: readonly string[];
  readonly down: readonly string[];
}

export class RoutersManager implements Manager<ReadonlySet<string>, RoutersPlan> {
  readonly name = "routers";
  /** namespace -> the fingerprint of the spec last applied there without error */
  private readonly applied = new Map<string, string>();
  private checkedAt = 0;
  /** the specs of the last plan by namespace, with their fingerprints (computed once per plan) */
  private specs = new Map<string, RouterSpec>();
  private prints = new Map<string, string>();
  /** per router being applied: what its create phase leaves to the remove phase (stale links, announcements) */
  private readonly later = new Map<string, Pick<RouterPlan, "stale" | "announce">>();
  private readonly neighbours = new RouterNeighbours();

  constructor(
    private readonly exec: Exec,
    private readonly suffix: string,
    private readonly log: (msg: string) => void,
    private readonly now: () => number = Date.now,
    /** radvd's files go under here, a directory per router namespace */
    private readonly runDir = "/run/seam/routers",
  ) {}

  owns(name: string): boolean {
    const kind = parseNetns(name, this.suffix)?.kind;
    return kind === "router" || kind === "snat";
  }

  /** Forget what was applied: the next reconcile reads every router again. */
  reset(): void {
    this.applied.clear();
  }

  /** The namespaces of this agent's routers (a directory read, no process). */
  async observe(): Promise<ReadonlySet<string>> {
    return new Set(namedNetns().filter((n) => this.owns(n)));
  }

  plan(intent: Intent, namespaces: ReadonlySet<string>): RoutersPlan {
    if (this.now() - this.checkedAt > RECHECK_MS) {
      this.applied.clear();
      this.checkedAt = this.now();
    }
    this.specs = routerSpecs(intent, this.suffix);
    this.prints = new Map([...this.specs].map(([ns, spec]) => [ns, fingerprint(spec)]));
    const create: RouterSpec[] = [];
    for (const spec of this.specs.values()) {
      if (!namespaces.has(spec.netns) || !this.isBuilt(spec.netns)) create.push(spec);
    }
    for (const ns of this.applied.keys()) if (!this.specs.has(ns)) this.applied.delete(ns);
    return { create, remove: [...namespaces].filter((n) => !this.specs.has(n)), neighbours: wantedNeighbours(intent, new Set(this.specs.keys()), this.suffix) };
  }

  async apply(plan: RoutersPlan, phase: "create" | "remove"): Promise<string[]> {
    const errors: string[] = [];
    if (phase === "create") {
      for (const spec of plan.create) {
        let failed: string[];
        try {
          failed = await this.build(spec);
        } catch (e) {
          failed = [`router ${spec.id}: ${(e as Error).message}`];
        }
        if (failed.length) this.applied.delete(spec.netns); // read again next time, and reported down
        errors.push(...failed);
        this.neighbours.forget(spec.netns);
      }
      errors.push(...(await this.neighbours.sync(plan.neighbours)));
      return errors;
    }
    for (const spec of plan.create) {
      const left = this.later.get(spec.netns);
      this.later.delete(spec.netns);
      if (!left) continue;
      const inside = Exec.in(spec.netns);
      if (left.stale.length) errors.push(...(await inside.batch("ip", left.stale)));
      // Now that the links manager has plugged the veths: neighbours that knew an address at another
      // MAC (a re-added interface, a moved floating IP) learn the new one. Not on the reconcile's path.
      for (const a of left.announce) void inside.run("arping", ["-q", "-U", "-c", "1", "-I", a.dev, a.ip], undefined, { timeoutMs: 3000 }).catch((e: Error) => this.missing("arping", e));
    }
    for (const ns of plan.remove) {
      try {
        await stopRadvd(`${this.runDir}/${ns}`);
        rmSync(`${this.runDir}/${ns}`, { recursive: true, force: true });
        await this.exec.run("ip", ["netns", "del", ns]);
      } catch (e) {
        errors.push(`namespace ${ns}: ${(e as Error).message}`);
      }
    }
    return errors;
  }

  /** Reads one router's namespace and brings it to its spec; returns what the kernel refused. */
  private async build(spec: RouterSpec): Promise<string[]> {
    const inside = Exec.in(spec.netns);
    const have = (await this.namespaceExists(spec.netns)) ? await observeRouter(inside) : null;
    const p = planRouter(spec, have);
    // The name is a bind mount under /run/netns: it must be made where the host's other tools see it, so
    // the agent must share that mount (the lab starts agents so that it does; see lab.ts: startAgent).
    if (p.addNetns) await this.exec.run("ip", ["netns", "add", spec.netns]);
    const errors = await this.exec.batch("ip", p.host);
    if (p.forwarding) await inside.run("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    errors.push(...(await inside.batch("ip", p.inside)));
    if (p.nft.length) {
      try {
        await inside.nft(p.nft);
      } catch (e) {
        errors.push(`nat: ${(e as Error).message}`);
      }
    }
    // Flows tracked under a floating IP's old translation would keep it: forget them (conntrack may be missing: say so once).
    for (const ip of p.moved) for (const dir of ["--orig-dst", "--reply-dst"]) await inside.run("conntrack", ["-D", dir, ip]).catch((e: Error) => this.missing("conntrack", e));
    try {
      await this.ensureRadvd(spec);
    } catch (e) {
      errors.push(`router advertisements: ${(e as Error).message}`);
    }
    this.later.set(spec.netns, { stale: p.stale, announce: p.announce });
    if (!errors.length) this.applied.set(spec.netns, this.prints.get(spec.netns) ?? fingerprint(spec));
    if (!isNoop(p)) this.log(`router ${spec.id} (${spec.netns}): ${describe(p)}`);
    return errors.map((e) => `router ${spec.id}: ${e}`);
  }

  /** radvd in the router's namespace while it has prefixes to advertise; restarted when they change. */
  private async ensureRadvd(spec: RouterSpec): Promise<void> {
    const dir = `${this.runDir}/${spec.netns}`;
    const cfg = `${dir}/radvd.conf`;
    if (!spec.ra.length) return stopRadvd(dir);
    mkdirSync(dir, { recursive: true });
    const d = { program: "radvd", pidFile: `${dir}/radvd.pid`, args: ["-C", cfg, "-p", `${dir}/radvd.pid`, "-m", "logfile", "-l", `${dir}/radvd.log`] };
    let now: string | null = null;
    try {
      now = readFileSync(cfg, "utf8");
    } catch {
      /* not yet */
    }
    const text = radvdConfig(spec.ra);
    if (now !== text) {
      writeFileSync(cfg, text);
      await stopRadvd(dir);
    }
    if (runningPid(d) !== null) return;
    try {
      await Exec.in(spec.netns).run("radvd", d.args);
    } catch (e) {
      if (/ENOENT|not found/i.test((e as Error).message)) this.missingOnce("radvd", "IPv6 subnets with an ipv6_ra_mode get no router advertisements from this host");
      throw e;
    }
    this.log(`router ${spec.id}: radvd advertises ${spec.ra.map((a) => `${a.prefix} (${a.mode})`).join(", ")}`);
  }

  private missingOnce(tool: string, what: string): void {
    if (this.told.has(tool)) return;
    this.told.add(tool);
    this.log(`${tool} is not installed: ${what}`);
  }

  private async namespaceExists(name: string): Promise<boolean> {
    return (await this.observe()).has(name);
  }

  private readonly told = new Set<string>();
  private missing(tool: string, e: Error): void {
    if (!/ENOENT|not found|No such file/i.test(e.message) || this.told.has(tool)) return;
    this.told.add(tool);
    this.log(`${tool} is not installed: ${tool === "conntrack" ? "a moved floating IP's established flows keep their old translation until they time out" : "moved floating IPs are not announced"}`);
  }

  /** Which routers are built as their specs say (for the status report): up when every instance here is. */
  status(): RouterStatus {
    const built = new Map<string, boolean>();
    for (const [ns, spec] of this.specs) built.set(spec.id, (built.get(spec.id) ?? true) && this.isBuilt(ns));
    const up: string[] = [];
    const down: string[] = [];
    for (const [id, ok] of built) (ok ? up : down).push(id);
    return { up, down };
  }

  /** The floating IPs in the kernel: those of the instances built. */
  fipStatus(): string[] {
    const out: string[] = [];
    for (const [ns, spec] of this.specs) if (this.isBuilt(ns)) out.push(...spec.fipIds.keys());
    return out;
  }

  private isBuilt(ns: string): boolean {
    const print = this.prints.get(ns);
    return print !== undefined && this.applied.get(ns) === print;
  }
}

function describe(p: ReturnType<typeof planRouter>): string {
  const parts: string[] = [];
  if (p.addNetns) parts.push("namespace");
  if (p.host.length) parts.push(`${p.host.length} veth`);
  if (p.inside.length) parts.push(`${p.inside.length} link/addr/route ops`);
  if (p.nft.length) parts.push(`${p.nft.length} nat ops`);
  if (p.stale.length) parts.push(`${p.stale.length} stale links`);
  return parts.join(", ");
}

/** Stops the router's radvd whose files are in `dir`, if it runs. */
export const stopRadvd = (dir: string) => stopDaemon("radvd", `${dir}/radvd.pid`, `${dir}/radvd.conf`);
