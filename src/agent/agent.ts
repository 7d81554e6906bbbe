// seam-agent: one per host. Registers, heartbeats, watches its HostIntent and
// reconciles the kernel to it: read what is there, change only what differs
// (filters first, then devices, FDB and neighbours), report which ports are
// plugged. It never tears down what is still wanted, so a restart is
// invisible to traffic; what it owns it recognises by name.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { IntentItem } from "../contract/intent.ts";
import { itemsOf } from "../contract/intent.ts";
import { type Credentials, SouthboundClient } from "./southbound-client.ts";
import type { IntentMessage } from "../contract/southbound.ts";
import { batch, run } from "../os/exec.ts";
import { describeFeatures, detectFeatures, type Features } from "./features.ts";
import { observe } from "./links/observe.ts";
import { applyPlan, bridgeName, type HostConfig, planLinks, pluggedPorts } from "./links/plan.ts";
import { CniService, type CniHost } from "./cni/service.ts";
import { Filters } from "./nft/apply.ts";

export interface AgentOptions {
  readonly host: string;
  readonly server: string;
  readonly vtep: string;
  readonly roles: readonly string[];
  readonly physicalInterfaces: Readonly<Record<string, string>>;
  readonly reportIntervalSec: number;
  readonly credentials: Credentials;
  /** the CNI service's unix socket; none: no CNI service */
  readonly cniSocket?: string;
  /** where the agent keeps what must survive its crashes (CNI attachment records) */
  readonly stateDir?: string;
  readonly log?: (msg: string) => void;
}

export const AGENT_VERSION = "0.1.0";

export class Agent implements CniHost {
  readonly client: SouthboundClient;
  private cni: CniService | undefined;
  private readonly desired = new Map<string, IntentItem>();
  private revision: number | undefined;
  private haveIntent = false;
  private readonly filters = new Filters();
  private readonly abort = new AbortController();
  private features: Features | undefined;
  private monitor: ChildProcess | undefined;
  private timers: NodeJS.Timeout[] = [];
  private syncing: Promise<void> | undefined;
  private again = false;
  private debounce: NodeJS.Timeout | undefined;
  private debounceAt = 0;
  /** port id -> last status the server acknowledged */
  private reported = new Map<string, "up" | "down">();
  private refusedSeen = new Set<string>();
  private plugged = new Set<string>();
  private filtering: Promise<void> = Promise.resolve();
  private reporting: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<string, Set<() => void>>();
  private syncs = 0;

  constructor(private readonly opts: AgentOptions) {
    this.client = new SouthboundClient(opts.server, opts.host, opts.credentials);
  }

  private log(msg: string): void {
    (this.opts.log ?? ((m) => process.stderr.write(`${new Date().toISOString()} seam-agent ${this.opts.host}: ${m}\n`)))(msg);
  }

  async start(): Promise<void> {
    this.features = await detectFeatures();
    this.log(`kernel: ${describeFeatures(this.features)}`);
    if (!this.features.vxlan) this.log("VXLAN devices cannot be created here: overlay networks will be refused");
    await this.registerUntilDone();
    this.timers.push(setInterval(() => void this.beat(), this.opts.reportIntervalSec * 1000));
    this.timers.push(setInterval(() => this.schedule(), 30_000)); // drift repair (someone else touched our devices)
    this.startMonitor();
    void this.watchLoop();
    if (this.opts.cniSocket) {
      this.cni = new CniService(this, this.opts.stateDir ?? `/var/lib/seam/${this.opts.host}`, (m) => this.log(m));
      await this.cni.listen(this.opts.cniSocket);
      this.log(`CNI service on ${this.opts.cniSocket}`);
    }
  }

  get host(): string {
    return this.opts.host;
  }


  async stop(): Promise<void> {
    this.abort.abort();
    this.cni?.close();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.debounce);
    this.monitor?.kill();
    await this.syncing;
  }

  private get hostConfig(): HostConfig {
    return { vtep: this.opts.vtep, physicalInterfaces: this.opts.physicalInterfaces, canVxlan: this.features?.vxlan ?? false };
  }

  private async registerUntilDone(): Promise<void> {
    for (let delay = 500; !this.abort.signal.aborted; delay = Math.min(delay * 2, 10_000)) {
      try {
        await this.client.register({
          vtep: this.opts.vtep,
          roles: [...this.opts.roles],
          version: AGENT_VERSION,
          capabilities: { ...(this.features ?? {}) } as Record<string, unknown>,
        });
        this.log(`registered with ${this.opts.server} (vtep ${this.opts.vtep}, roles ${this.opts.roles.join(",")})`);
        return;
      } catch (e) {
        this.log(`cannot register yet: ${(e as Error).message}; retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async beat(): Promise<void> {
    try {
      if (!(await this.client.heartbeat())) await this.registerUntilDone();
    } catch (e) {
      this.log(`heartbeat failed: ${(e as Error).message}`);
    }
  }

  private async watchLoop(): Promise<void> {
    let delay = 200;
    while (!this.abort.signal.aborted) {
      try {
        await this.client.watch(this.revision, (m) => this.onMessage(m), this.abort.signal);
        delay = 200;
      } catch (e) {
        this.log(`intent watch failed: ${(e as Error).message}; reconnecting in ${delay} ms`);
      }
      if (this.abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  private onMessage(m: IntentMessage): void {
    if (m.type === "SNAPSHOT") {
      this.desired.clear();
      for (const [k, v] of Object.entries(m.items)) this.desired.set(k, v);
      // A snapshot means the server lost track of what we have: re-read the kernel, report everything again.
      this.filters.reset();
      this.reported.clear();
      this.haveIntent = true;
    } else if (m.type === "DELTA") {
      for (const [k, v] of Object.entries(m.set)) this.desired.set(k, v);
      for (const k of m.del) this.desired.delete(k);
      this.haveIntent = true;
    }
    this.revision = m.revision;
    if (m.type !== "BOOKMARK") this.schedule(1); // a burst of deltas becomes one reconcile
  }

  /** Coalesces triggers: one reconcile runs at a time, and one more follows if anything arrived meanwhile. */
  private schedule(delayMs = 20): void {
    if (!this.haveIntent || this.abort.signal.aborted) return;
    const at = Date.now() + delayMs;
    // never postpone a reconcile already due sooner (a burst of link events must not delay a CNI ADD)
    if (this.debounce && this.debounceAt <= at) return;
    clearTimeout(this.debounce);
    this.debounceAt = at;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (this.syncing) {
        this.again = true;
        return;
      }
      this.syncing = this.sync()
        .catch((e: Error) => this.log(`reconcile failed: ${e.message}`))
        .finally(() => {
          this.syncing = undefined;
          if (this.again) {
            this.again = false;
            this.schedule(0);
          }
        });
    }, delayMs);
  }

  /** Kernel <- desired, then tell the server which ports are plugged. */
  async sync(): Promise<void> {
    const intent = new Map(this.desired);
    this.syncs++;
    const t0 = performance.now();
    const trace = process.env.SEAM_CNI_TRACE ? (what: string) => this.log(`sync ${this.syncs} ${what} +${(performance.now() - t0).toFixed(1)} ms`) : () => {};
    // Filters before devices (a port is never on a bridge without its rules); reading the kernel meanwhile.
    const filtering = this.filters.sync(intent);
    this.filtering = filtering.then(() => undefined, () => undefined);
    const [nftCommands, before] = await Promise.all([filtering, observe()]);
    trace(`filters (${nftCommands} nft commands) and kernel read`);
    const plan = planLinks(intent, before, this.hostConfig);
    for (const r of plan.refused) {
      if (!this.refusedSeen.has(r.network)) this.log(`network ${r.network} refused: ${r.reason}`);
      this.refusedSeen.add(r.network);
    }
    const errors = await batch("ip", plan.links);
    errors.push(...(await Promise.all([batch("bridge", plan.fdb), batch("ip", plan.neigh)])).flat());
    if (errors.length) this.log(`kernel refused: ${errors.slice(0, 5).join(" | ")}`);
    trace(`${plan.links.length + plan.fdb.length + plan.neigh.length} link/fdb/neigh commands`);
    // Without errors the plan is what the kernel now has; after one, read it again to report the truth.
    const after = errors.length ? await observe() : applyPlan(before, intent, plan);
    const status = pluggedPorts(intent, after);
    this.plugged = new Set(status.up);
    for (const [id, waiters] of this.waiters) {
      if (!this.plugged.has(id)) continue;
      for (const w of waiters) w();
      this.waiters.delete(id);
    }
    // The report is not on the reconcile's path: a CNI ADD waiting for the next one should not wait for HTTP.
    this.reporting = this.reporting.then(() => this.report(intent, status));
  }

  /** Resolves once a reconcile has the port's device attached, up and filtered (the CNI service waits on it). */
  waitPlugged(portId: string, timeoutMs: number): Promise<boolean> {
    if (this.plugged.has(portId) && this.desired.has(`port/${portId}`)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const list = this.waiters.get(portId);
        list?.delete(done);
        resolve(false);
      }, timeoutMs);
      let list = this.waiters.get(portId);
      if (!list) this.waiters.set(portId, (list = new Set()));
      list.add(done);
      this.schedule(0);
    });
  }

  /**
   * The CNI fast path: when the intent already has the port and the kernel its
   * filters and bridge, attach the device now instead of waiting for the next
   * reconcile (which then finds nothing to do). False: not ready, wait instead.
   */
  async attachNow(portId: string): Promise<boolean> {
    if (this.syncing) await this.filtering; // a reconcile may be installing this port's filters right now
    const item = this.desired.get(`port/${portId}`);
    if (item?.kind !== "port" || !this.filters.covers(item)) return false;
    const bridge = bridgeName(item.network);
    if (!existsSync(`/sys/class/net/${bridge}`)) return false;
    try {
      await run("ip", ["link", "set", "dev", item.device, "master", bridge, "mtu", String(item.mtu), item.adminUp ? "up" : "down"]);
    } catch {
      return false;
    }
    this.plugged.add(portId);
    // ACTIVE before the runtime hears back, as Kuryr waits for it: whoever looks at the port sees it up.
    try {
      await this.client.reportPorts([portId], []);
      this.reported.set(portId, "up");
    } catch (e) {
      this.log(`port status report failed: ${(e as Error).message}`);
      this.schedule(100);
    }
    return true;
  }

  /** Asks for a reconcile soon (a device appeared, a port is expected). */
  poke(): void {
    this.schedule(0);
  }

  private async report(intent: ReadonlyMap<string, IntentItem>, status: { up: string[]; down: string[] }): Promise<void> {
    const up = status.up.filter((id) => this.reported.get(id) !== "up");
    const down = status.down.filter((id) => this.reported.get(id) !== "down");
    const local = new Set(itemsOf(intent, "port").map((p) => p.id));
    for (const id of [...this.reported.keys()]) if (!local.has(id)) this.reported.delete(id);
    if (!up.length && !down.length) return;
    try {
      await this.client.reportPorts(up, down);
      for (const id of up) this.reported.set(id, "up");
      for (const id of down) this.reported.set(id, "down");
    } catch (e) {
      this.log(`port status report failed: ${(e as Error).message}`);
      this.timers.push(setTimeout(() => this.schedule(), 1000));
    }
  }

  /** Devices appearing or going (a VM's tap, a pod's veth) trigger a reconcile at once. */
  private startMonitor(): void {
    const child = spawn("ip", ["-o", "monitor", "link"], { stdio: ["ignore", "pipe", "ignore"] });
    this.monitor = child;
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (/\btap|vxlan-|brq/.test(d)) this.schedule(100);
    });
    child.on("exit", () => {
      if (!this.abort.signal.aborted) setTimeout(() => this.startMonitor(), 1000);
    });
  }
}
