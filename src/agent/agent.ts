// seam-agent: one per host. Registers, heartbeats, watches its HostIntent
// (intent-watcher.ts) and reconciles the kernel to it (dataplane.ts: read what
// is there, change only what differs), then reports which ports are plugged
// (status-reporter.ts). It never tears down what is still wanted, so a restart
// is invisible to traffic; what it owns it recognises by name (naming.ts).
import { existsSync } from "node:fs";
import { itemsOf, key, type NetItem, type PortItem } from "../contract/intent.ts";
import { Exec } from "../os/exec.ts";
import { Supervisor } from "../os/supervisor.ts";
import { CniService, type CniHost } from "./cni/service.ts";
import { ACTS_ON, Dataplane, type ManagerName } from "./dataplane.ts";
import { nftables } from "../os/nftables.ts";
import { describeFeatures, detectFeatures, type Features } from "./features.ts";
import { IntentWatcher } from "./intent-watcher.ts";
import type { HostConfig } from "./links/plan.ts";
import { device, monitoredDevice } from "./naming.ts";
import { DnsRelay, RELAY_PORT, type Upstream } from "./dhcp/dns-relay.ts";
import { MetadataSocket } from "./dhcp/metadata-proxy.ts";
import { type Credentials, SouthboundClient } from "./southbound-client.ts";
import { StatusReporter } from "./status-reporter.ts";
import { Waiters } from "./waiters.ts";

export interface AgentOptions {
  readonly host: string;
  readonly server: string;
  readonly vtep: string;
  readonly roles: readonly string[];
  readonly physicalInterfaces: Readonly<Record<string, string>>;
  readonly reportIntervalSec: number;
  readonly credentials: Credentials;
  /** over https: the CA file the server's certificate is checked against (none: the system's CAs) */
  readonly caFile?: string;
  /** the CNI service's unix socket; none: no CNI service */
  readonly cniSocket?: string;
  /** where the agent keeps what must survive its crashes (CNI attachment records) */
  readonly stateDir?: string;
  /** appended to the names of its namespaces where hosts share one /run/netns (the lab: `@host-1`) */
  readonly netnsSuffix?: string;
  /** resolvers the networks' DNS servers forward outside names to, through the agent (dhcp/dns-relay.ts) */
  readonly dnsUpstreams?: readonly Upstream[];
  readonly log?: (msg: string) => void;
}

export const AGENT_VERSION = "0.1.0";

/** drift repair: someone else touched our devices */
const RESYNC_MS = 30_000;
/**
 * While CNI ADDs are waiting for the controller to attach their ports, a
 * reconcile for the ports already here waits this long for theirs: a burst of
 * pod starts becomes a few reconciles of several ports each instead of one
 * per pod (each reconcile has a fixed cost: an nftables commit, reading
 * back). The last attach to come back starts it at once.
 */
const BATCH_MS = 10;
/** what a device event concerns */
const DEVICE_MANAGERS: readonly ManagerName[] = ["links", "fdb", "services"];
/** after a failed reconcile, the next one waits this long, doubling up to RESYNC_MS */
const RETRY_MIN_MS = 250;

export class Agent implements CniHost {
  readonly client: SouthboundClient;
  private cni: CniService | undefined;
  private readonly relay: DnsRelay;
  private metadata: MetadataSocket | undefined;
  private readonly watcher: IntentWatcher;
  private readonly reporter: StatusReporter;
  private readonly dataplane: Dataplane;
  private readonly helpers: Supervisor;
  private readonly abort = new AbortController();
  private features: Features | undefined;
  /** heartbeat and drift repair */
  private readonly timers: NodeJS.Timeout[] = [];
  private syncing: Promise<void> | undefined;
  private again = false;
  private debounce: NodeJS.Timeout | undefined;
  private debounceAt = 0;
  private retryMs = RETRY_MIN_MS;
  /** the one pending retry (a failed reconcile or status report) */
  private later: NodeJS.Timeout | undefined;
  private readonly refusedSeen = new Set<string>();
  private plugged = new Set<string>();
  /** settles when the running reconcile's filters are in (the CNI fast path waits for it) */
  private filtering: Promise<void> = Promise.resolve();
  /** port id -> who waits for it to be plugged (a CNI ADD) */
  private readonly pluggedWaiters = new Waiters<true>();
  /** CNI ADDs whose attach call to the controller is in flight */
  private attaching = 0;
  /** port id -> who waits for its intent item (a CNI ADD, between attach and plumbing) */
  private readonly portWaiters = new Waiters<PortItem>();
  private syncs = 0;
  /** the managers the next reconcile runs: those whose items changed since the last, or all */
  private pending: "all" | Set<ManagerName> = "all";

  constructor(private readonly opts: AgentOptions) {
    const log = (m: string) => this.log(m);
    this.client = new SouthboundClient(opts.server, opts.host, opts.credentials, { caFile: opts.caFile });
    const dhcpDir = opts.stateDir ? `${opts.stateDir}/dhcp` : "/run/seam/dhcp";
    this.relay = new DnsRelay(opts.dnsUpstreams ?? [], log);
    this.dataplane = new Dataplane(Exec.here, () => this.hostConfig, {
      netnsSuffix: opts.netnsSuffix ?? "",
      dhcpDir,
      routersDir: opts.stateDir ? `${opts.stateDir}/routers` : "/run/seam/routers",
      dnsRelayPort: this.relay.enabled ? RELAY_PORT : null,
      metadataSocket: () => this.metadata?.path ?? null,
      log,
    });
    this.reporter = new StatusReporter(this.client, log, (ms) => this.scheduleLater(ms));
    this.watcher = new IntentWatcher(
      this.client,
      (snapshot, kinds) => {
        if (snapshot) {
          // The server lost track of what we have: re-read the kernel, report everything again.
          this.dataplane.filters.reset();
          this.dataplane.routers.reset();
          this.dataplane.dhcp.reset();
          this.reporter.reset();
        }
        // a delta concerns the managers acting on its items' kinds; the rest need not read the kernel for it
        this.schedule(this.batchMs(1), snapshot ? "all" : [...kinds].flatMap((k) => ACTS_ON[k])); // a burst of deltas becomes one reconcile
        this.portWaiters.wake((id) => this.portItem(id));
      },
      log,
    );
    this.helpers = new Supervisor(log);
  }

  private log(msg: string): void {
    (this.opts.log ?? ((m) => process.stderr.write(`${new Date().toISOString()} seam-agent ${this.opts.host}: ${m}\n`)))(msg);
  }

  async start(): Promise<void> {
    this.features = await detectFeatures();
    this.log(`kernel: ${describeFeatures(this.features)}`);
    const nft = nftables();
    this.log(nft.binding ? "nftables: libnftables in this process" : `nftables: the nft tool per change (libnftables not usable here: ${nft.why})`);
    if (!this.features.vxlan) this.log("VXLAN devices cannot be created here: overlay networks will be refused");
    await this.relay.start();
    await this.serveMetadata();
    await this.registerUntilDone();
    this.timers.push(setInterval(() => void this.beat(), this.opts.reportIntervalSec * 1000));
    this.timers.push(setInterval(() => this.schedule(), RESYNC_MS));
    // Devices appearing or going (a VM's tap, a pod's veth) trigger a reconcile at once, of the managers
    // that act on devices: filters match by name and need no event, and the routers' and DHCP servers'
    // own devices are checked by the drift repair.
    this.helpers.ensure("link-monitor", { cmd: "ip", args: ["-o", "monitor", "link"], onLine: (l) => this.deviceEvent(l) });
    void this.watcher.run(this.abort.signal);
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
    this.relay.stop();
    this.metadata?.close();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.debounce);
    clearTimeout(this.later);
    await this.helpers.stopAll();
    await this.syncing;
  }

  /** The metadata socket the DHCP namespaces' haproxy hands VMs' requests to (a network host's duty; needs haproxy). */
  private async serveMetadata(): Promise<void> {
    if (!this.opts.roles.includes("network")) return;
    try {
      await Exec.here.run("haproxy", ["-v"]);
    } catch {
      this.log("haproxy is not installed: VMs get no metadata (169.254.169.254) from this host");
      return;
    }
    const socket = new MetadataSocket(this.client, `${this.opts.stateDir ?? "/run/seam"}/metadata.sock`, (m) => this.log(m));
    await socket.listen();
    this.metadata = socket;
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

  /**
   * Coalesces triggers: one reconcile runs at a time, and one more follows if
   * anything arrived meanwhile. `scope`: which managers the trigger concerns
   * (they add up until a reconcile takes them); "all" for anything that is
   * not a delta of the intent (devices, drift repair, retries, waiters).
   */
  private schedule(delayMs = 20, scope: "all" | readonly ManagerName[] = "all"): void {
    if (scope === "all") this.pending = "all";
    else if (this.pending !== "all") for (const m of scope) this.pending.add(m);
    if (!this.watcher.synced || this.abort.signal.aborted) return;
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
        .then(() => {
          this.retryMs = RETRY_MIN_MS;
        })
        .catch((e: Error) => {
          // kube-proxy's RetryAfter: a failed reconcile is tried again soon, backing off while it keeps failing
          this.log(`reconcile failed: ${e.message}; retrying in ${this.retryMs} ms`);
          this.scheduleLater(this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, RESYNC_MS);
        })
        .finally(() => {
          this.syncing = undefined;
          if (this.again) {
            this.again = false;
            this.schedule(0, []);
          }
        });
    }, delayMs);
  }

  /** A reconcile after `ms`; one pending retry at a time is enough. */
  private scheduleLater(ms: number): void {
    if (this.later) return;
    this.later = setTimeout(() => {
      this.later = undefined;
      this.schedule(0);
    }, ms);
  }

  /** Kernel <- desired, then tell the server which ports are plugged. */
  async sync(): Promise<void> {
    const intent = new Map(this.watcher.desired);
    const only = this.pending === "all" ? undefined : this.pending;
    this.pending = new Set();
    this.syncs++;
    const t0 = performance.now();
    const trace = process.env.SEAM_CNI_TRACE ? (what: string) => this.log(`sync ${this.syncs} ${what} +${(performance.now() - t0).toFixed(1)} ms`) : () => {};
    let filtered!: () => void;
    this.filtering = new Promise((r) => (filtered = r));
    let result;
    try {
      result = await this.dataplane.sync(intent, filtered, only);
    } catch (e) {
      this.pending = "all"; // the retry reads everything again
      throw e;
    } finally {
      filtered();
    }
    if (result.errors.length) this.pending = "all"; // what the kernel refused is tried again by the next, whole, reconcile
    trace(`dataplane ${JSON.stringify(result.counts)}`);
    for (const r of result.refused) {
      if (!this.refusedSeen.has(r.network)) this.log(`network ${r.network} refused: ${r.reason}`);
      this.refusedSeen.add(r.network);
    }
    if (result.errors.length) this.log(`kernel refused: ${result.errors.slice(0, 5).join(" | ")}`);
    const status = await this.dataplane.links.plugged(intent);
    this.plugged = new Set(status.up);
    this.pluggedWaiters.wake((id) => (this.plugged.has(id) ? true : undefined));
    // The report is not on the reconcile's path: a CNI ADD waiting for the next one should not wait for HTTP.
    const routers = this.dataplane.routers.status();
    const fipsUp = new Set(this.dataplane.routers.fipStatus());
    const fips = itemsOf(intent, "fip");
    const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);
    const unversioned = (xs: Iterable<string>) => new Map([...xs].map((id) => [id, ""]));
    this.reporter.report({
      ports: { ...status, local: unversioned(ids(itemsOf(intent, "port"))) },
      routers: { ...routers, local: unversioned([...routers.up, ...routers.down]) },
      // a floating IP moved is a new translation: the server marked it DOWN until this host reports it in
      floatingips: { up: ids(fips.filter((f) => fipsUp.has(f.id))), down: ids(fips.filter((f) => !fipsUp.has(f.id))), local: new Map(fips.map((f) => [f.id, `${f.port}|${f.fixed}`])) },
    });
  }

  private portItem(portId: string): PortItem | undefined {
    const item = this.watcher.desired.get(key.port(portId));
    return item?.kind === "port" ? item : undefined;
  }

  waitPort(portId: string, timeoutMs: number): Promise<PortItem | null> {
    const now = this.portItem(portId);
    return now ? Promise.resolve(now) : this.portWaiters.wait(portId, timeoutMs);
  }

  net(networkId: string): NetItem | undefined {
    const item = this.watcher.desired.get(key.net(networkId));
    return item?.kind === "net" ? item : undefined;
  }

  hasPort(portId: string): boolean {
    return this.portItem(portId) !== undefined;
  }

  /** Resolves once a reconcile has the port's device attached, up and filtered (the CNI service waits on it). */
  async waitPlugged(portId: string, timeoutMs: number): Promise<boolean> {
    if (this.plugged.has(portId) && this.watcher.desired.has(key.port(portId))) return true;
    const plugged = this.pluggedWaiters.wait(portId, timeoutMs);
    this.schedule(this.batchMs(0), ["filters", "links"]); // what plugs a port: its filters, its device on the bridge
    return (await plugged) === true;
  }

  /**
   * The CNI fast path: when the intent already has the port and the kernel its
   * filters and bridge, attach the device now instead of waiting for the next
   * reconcile (which then finds nothing to do). False: not ready, wait instead.
   */
  async attachNow(portId: string): Promise<boolean> {
    const made = this.portItem(portId);
    // the device was made a moment ago: a reconcile before the link monitor says so must see it
    if (made) this.dataplane.links.touch(made.device);
    if (this.syncing) await this.filtering; // a reconcile may be installing this port's filters right now
    const item = this.portItem(portId);
    if (!item || !this.dataplane.filters.covers(item)) return false;
    if (!existsSync(`/sys/class/net/${device.bridge(item.network)}`)) return false;
    if (!(await this.dataplane.links.attach(item))) return false;
    this.plugged.add(portId);
    await this.reporter.upNow(portId);
    return true;
  }

  /** A CNI ADD is asking the controller for its port; the returned function says it has its answer. */
  attachStarted(): () => void {
    this.attaching++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.attaching === 0) this.schedule(0, []); // the batch is complete: the reconcile it waited for runs now
    };
  }

  /** How long a reconcile a port is waiting for should wait for others' (BATCH_MS while ADDs are attaching). */
  private batchMs(ms: number): number {
    return this.attaching > 0 ? BATCH_MS : ms;
  }

  /** A line of the link monitor: the links manager reads that device again, and a reconcile follows. */
  private deviceEvent(line: string): void {
    const dev = monitoredDevice(line);
    if (!dev) return;
    this.dataplane.links.touch(dev);
    this.schedule(100, DEVICE_MANAGERS);
  }

  /** Asks for a reconcile soon (a device appeared, a port is expected). */
  poke(): void {
    this.schedule(0);
  }
}
