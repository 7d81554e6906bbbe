// The DHCP manager: per network this host serves, a namespace with the DHCP
// port's interface, a dnsmasq answering DHCP and DNS on it, the link-local
// veth to the agent's DNS relay and haproxy for metadata (spec.ts says what
// each holds). The helpers run detached, found again by their pid files
// (daemons.ts): they outlive an agent restart as the routers' namespaces do,
// so a restarting agent costs no VM its lease. A port's change rewrites
// dnsmasq's files and sends it SIGHUP (it re-reads them, cache cleared,
// nothing restarted); only a change of its command line (subnets, MTU,
// domain, relay, a port's extra_dhcp_opts) restarts it.
//
// It runs right after the routers in the dataplane: it makes a veth whose
// host side the links manager then plugs into the network's bridge.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { Exec } from "../../os/exec.ts";
import { namedNetns } from "../../os/netns.ts";
import type { Intent, Manager } from "../manager.ts";
import { isDhcpRelayDevice, parseNetns } from "../naming.ts";
import { observeRouter } from "../routers/observe.ts";
import { planRouter } from "../routers/plan.ts";
import { runningArgs, runningPid, stopDaemon } from "../../os/daemons.ts";
import { FILES } from "./dnsmasq.ts";
import { type DhcpSpec, dhcpSpecs, fingerprint, relayLinkLines } from "./spec.ts";

const RECHECK_MS = 30_000;
/** dnsmasq's log (a line per lease and per re-read) is cut back to nothing past this */
const LOG_MAX_BYTES = 1 << 20;

export interface DhcpPlan {
  readonly create: readonly DhcpSpec[];
  /** namespaces of networks this host no longer serves */
  readonly remove: readonly string[];
}

export class DhcpManager implements Manager<ReadonlySet<string>, DhcpPlan> {
  readonly name = "dhcp";
  /** namespace -> fingerprint of the spec last applied without error */
  private readonly applied = new Map<string, string>();
  /**
   * namespace -> its plumbing (link, relay) as last built and checked: a
   * change of its files alone (a port's host entry) does not read the
   * namespace again, which costs processes per port on a network host
   */
  private readonly wired = new Map<string, string>();
  /** whether the last create phase made or changed devices (the links manager must read the kernel again) */
  madeDevices = false;
  private checkedAt = 0;
  private specs = new Map<string, DhcpSpec>();
  /** the specs' fingerprints, computed once per plan (a spec holds dnsmasq's files: a line per port) */
  private prints = new Map<string, string>();
  private readonly told = new Set<string>();

  constructor(
    private readonly exec: Exec,
    /** dnsmasq's files go under here, a directory per namespace */
    private readonly baseDir: string,
    private readonly suffix: string,
    private readonly log: (msg: string) => void,
    /** the agent's DNS relay port; null: it has no upstreams, names outside the network's domain are refused */
    private readonly relayPort: number | null = null,
    /** the agent's metadata socket; null: no metadata (no haproxy here, or no socket) */
    private readonly metadataSocket: () => string | null = () => null,
    private readonly now: () => number = Date.now,
  ) {}

  owns(name: string): boolean {
    return parseNetns(name, this.suffix)?.kind === "dhcp" || isDhcpRelayDevice(name);
  }

  reset(): void {
    this.applied.clear();
    this.wired.clear();
  }

  async observe(): Promise<ReadonlySet<string>> {
    return new Set(namedNetns().filter((n) => this.owns(n)));
  }

  plan(intent: Intent, namespaces: ReadonlySet<string>): DhcpPlan {
    // Every so often, look again: a dnsmasq that died is started, a namespace someone deleted is rebuilt.
    if (this.now() - this.checkedAt > RECHECK_MS) {
      this.applied.clear();
      this.wired.clear();
      this.checkedAt = this.now();
    }
    this.specs = dhcpSpecs(intent, { baseDir: this.baseDir, suffix: this.suffix, relayPort: this.relayPort, metadataSocket: this.metadataSocket() });
    this.prints = new Map([...this.specs].map(([ns, spec]) => [ns, fingerprint(spec)]));
    const create = [...this.specs.values()].filter((s) => !namespaces.has(s.netns) || this.applied.get(s.netns) !== this.prints.get(s.netns));
    for (const ns of this.applied.keys()) if (!this.specs.has(ns)) this.applied.delete(ns);
    for (const ns of this.wired.keys()) if (!this.specs.has(ns)) this.wired.delete(ns);
    return { create, remove: [...namespaces].filter((n) => !this.specs.has(n)) };
  }

  async apply(plan: DhcpPlan, phase: "create" | "remove"): Promise<string[]> {
    const errors: string[] = [];
    if (phase === "create") {
      this.madeDevices = false;
      for (const spec of plan.create) {
        try {
          await this.build(spec);
          this.applied.set(spec.netns, this.prints.get(spec.netns) ?? fingerprint(spec));
        } catch (e) {
          this.applied.delete(spec.netns);
          this.wired.delete(spec.netns);
          errors.push(`dhcp ${spec.network}: ${(e as Error).message}`);
        }
      }
      return errors;
    }
    for (const ns of plan.remove) {
      const dir = `${this.baseDir}/${ns}`;
      await stopDnsmasq(dir);
      await stopMetadataProxy(dir);
      try {
        await this.exec.run("ip", ["netns", "del", ns]);
        rmSync(dir, { recursive: true, force: true });
        this.log(`dhcp: ${ns} removed`);
      } catch (e) {
        errors.push(`namespace ${ns}: ${(e as Error).message}`);
      }
    }
    return errors;
  }

  private async build(spec: DhcpSpec): Promise<void> {
    const exists = (await this.observe()).has(spec.netns);
    const plumbing = JSON.stringify([spec.link, spec.relay ?? null]);
    if (!exists || this.wired.get(spec.netns) !== plumbing) {
      this.wired.delete(spec.netns);
      this.madeDevices = true;
      const inside = Exec.in(spec.netns);
      const have = exists ? await observeRouter(inside) : null;
      const p = planRouter({ id: spec.network, netns: spec.netns, links: [spec.link], routes: [], nat: null, fipIds: new Map(), ra: [] }, have);
      if (p.addNetns) await this.exec.run("ip", ["netns", "add", spec.netns]);
      const relay = spec.relay && !have?.links.has(spec.relay.inside) ? relayLinkLines(spec.relay, spec.netns) : { host: [], inside: [] };
      const failed = [...(await this.exec.batch("ip", [...p.host, ...relay.host])), ...(await inside.batch("ip", [...p.inside, ...relay.inside]))];
      if (failed.length) throw new Error(failed.join("; "));
      this.wired.set(spec.netns, plumbing);
    }
    const changed = writeFiles(spec);
    trimLog(`${spec.dir}/log`);
    await this.ensureDnsmasq(spec, changed);
    if (spec.metadata) await this.ensureMetadataProxy(spec, spec.metadata);
  }

  private async ensureDnsmasq(spec: DhcpSpec, filesChanged: boolean): Promise<void> {
    const d = { program: "dnsmasq", pidFile: `${spec.dir}/pid`, args: spec.args };
    const pid = runningPid(d);
    if (pid !== null) {
      if (filesChanged) process.kill(pid, "SIGHUP");
      return;
    }
    const was = runningArgs("dnsmasq", d.pidFile);
    if (was) this.log(`dhcp: restarting dnsmasq for network ${spec.network}: its command line changed (was: ${was.join(" ")}; now: ${spec.args.join(" ")})`);
    await stopDnsmasq(spec.dir);
    await this.launch(spec, "dnsmasq", spec.args, "dnsmasq (Debian: dnsmasq-base): networks get no DHCP or DNS from this host");
    this.log(`dhcp: dnsmasq for network ${spec.network} started in ${spec.netns}`);
  }

  /** haproxy at 169.254.169.254:80 in the namespace, to the agent's metadata socket; restarted only when its configuration changes. */
  private async ensureMetadataProxy(spec: DhcpSpec, m: NonNullable<DhcpSpec["metadata"]>): Promise<void> {
    const cfg = `${spec.dir}/haproxy.cfg`;
    const d = { program: "haproxy", pidFile: `${spec.dir}/haproxy.pid`, args: ["-f", cfg] };
    if (writeIfChanged(cfg, m.config)) await stopMetadataProxy(spec.dir);
    if (runningPid(d) !== null) return;
    await this.launch(spec, "haproxy", d.args, "haproxy: VMs get no metadata (169.254.169.254) from this host");
    this.log(`dhcp: metadata proxy for network ${spec.network} started in ${spec.netns}`);
  }

  private async launch(spec: DhcpSpec, program: string, args: readonly string[], missing: string): Promise<void> {
    try {
      await Exec.in(spec.netns).run(program, args);
    } catch (e) {
      if (/ENOENT|not found/i.test((e as Error).message) && !this.told.has(program)) {
        this.told.add(program);
        this.log(`${program} is not installed: ${missing}`);
      }
      throw e;
    }
  }
}

/** Writes the files that differ (atomically: dnsmasq may be reading); whether any did. */
function writeFiles(spec: DhcpSpec): boolean {
  mkdirSync(spec.dir, { recursive: true, mode: 0o755 });
  let changed = false;
  for (const f of FILES) if (writeIfChanged(`${spec.dir}/${f}`, spec.files[f])) changed = true;
  return changed;
}

function writeIfChanged(path: string, text: string): boolean {
  let now: string | null = null;
  try {
    now = readFileSync(path, "utf8");
  } catch {
    /* not yet */
  }
  if (now === text) return false;
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return true;
}

function trimLog(path: string): void {
  try {
    if (statSync(path).size > LOG_MAX_BYTES) truncateSync(path, 0); // dnsmasq appends (O_APPEND): it goes on at 0
  } catch {
    /* not yet */
  }
}

/** Stops the dnsmasq whose pid file is in `dir`, if it is one. */
export const stopDnsmasq = (dir: string) => stopDaemon("dnsmasq", `${dir}/pid`, `--pid-file=${dir}/pid`);

/** Stops the metadata proxy (haproxy) whose pid file is in `dir`, if it is one. */
export const stopMetadataProxy = (dir: string) => stopDaemon("haproxy", `${dir}/haproxy.pid`, `${dir}/haproxy.cfg`);
