// The DHCP manager: per network this host serves, a namespace with the DHCP
// port's interface and a dnsmasq answering on it (spec.ts says what each
// holds). dnsmasq runs detached, found again by its pid file: it outlives an
// agent restart as the routers' namespaces do, so a restarting agent costs
// no VM its lease. A port's change rewrites dnsmasq's files and sends it
// SIGHUP (it re-reads them, cache cleared, nothing restarted); only a change
// of its command line (subnets, MTU, domain) restarts it.
//
// It runs right after the routers in the dataplane: it makes a veth whose
// host side the links manager then plugs into the network's bridge.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { Exec } from "../../os/exec.ts";
import type { Intent, Manager } from "../manager.ts";
import { isDhcpRelayDevice, parseNetns } from "../naming.ts";
import { observeRouter } from "../routers/observe.ts";
import { planRouter } from "../routers/plan.ts";
import { FILES } from "./dnsmasq.ts";
import { type DhcpSpec, dhcpSpecs, fingerprint, relayLinkLines } from "./spec.ts";

const RECHECK_MS = 30_000;
/** dnsmasq's log (a line per lease and per re-read) is cut back to nothing past this */
const LOG_MAX_BYTES = 1 << 20;
const NETNS_DIR = "/run/netns";

export interface DhcpPlan {
  readonly create: readonly DhcpSpec[];
  /** namespaces of networks this host no longer serves */
  readonly remove: readonly string[];
}

export class DhcpManager implements Manager<ReadonlySet<string>, DhcpPlan> {
  readonly name = "dhcp";
  /** namespace -> fingerprint of the spec last applied without error */
  private readonly applied = new Map<string, string>();
  private checkedAt = 0;
  private specs = new Map<string, DhcpSpec>();
  private told = false;

  constructor(
    private readonly exec: Exec,
    /** dnsmasq's files go under here, a directory per namespace */
    private readonly baseDir: string,
    private readonly suffix: string,
    private readonly log: (msg: string) => void,
    /** the agent's DNS relay port; null: it has no upstreams, names outside the network's domain are refused */
    private readonly relayPort: number | null = null,
    private readonly now: () => number = Date.now,
  ) {}

  owns(name: string): boolean {
    return parseNetns(name, this.suffix)?.kind === "dhcp" || isDhcpRelayDevice(name);
  }

  reset(): void {
    this.applied.clear();
  }

  async observe(): Promise<ReadonlySet<string>> {
    let names: string[] = [];
    try {
      names = readdirSync(NETNS_DIR);
    } catch {
      /* no namespaces yet */
    }
    return new Set(names.filter((n) => this.owns(n)));
  }

  plan(intent: Intent, namespaces: ReadonlySet<string>): DhcpPlan {
    // Every so often, look again: a dnsmasq that died is started, a namespace someone deleted is rebuilt.
    if (this.now() - this.checkedAt > RECHECK_MS) {
      this.applied.clear();
      this.checkedAt = this.now();
    }
    this.specs = dhcpSpecs(intent, { baseDir: this.baseDir, suffix: this.suffix, relayPort: this.relayPort });
    const create = [...this.specs.values()].filter((s) => !namespaces.has(s.netns) || this.applied.get(s.netns) !== fingerprint(s));
    for (const ns of this.applied.keys()) if (!this.specs.has(ns)) this.applied.delete(ns);
    return { create, remove: [...namespaces].filter((n) => !this.specs.has(n)) };
  }

  async apply(plan: DhcpPlan, phase: "create" | "remove"): Promise<string[]> {
    const errors: string[] = [];
    if (phase === "create") {
      for (const spec of plan.create) {
        try {
          await this.build(spec);
          this.applied.set(spec.netns, fingerprint(spec));
        } catch (e) {
          this.applied.delete(spec.netns);
          errors.push(`dhcp ${spec.network}: ${(e as Error).message}`);
        }
      }
      return errors;
    }
    for (const ns of plan.remove) {
      const dir = `${this.baseDir}/${ns}`;
      await stopDnsmasq(dir);
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
    const inside = Exec.in(spec.netns);
    const exists = (await this.observe()).has(spec.netns);
    const have = exists ? await observeRouter(inside) : null;
    const p = planRouter({ id: spec.network, netns: spec.netns, links: [spec.link], routes: [], nat: null, fipIds: new Map() }, have);
    if (p.addNetns) await this.exec.run("ip", ["netns", "add", spec.netns]);
    const relay = spec.relay && !have?.links.has(spec.relay.inside) ? relayLinkLines(spec.relay, spec.netns) : { host: [], inside: [] };
    const failed = [...(await this.exec.batch("ip", [...p.host, ...relay.host])), ...(await inside.batch("ip", [...p.inside, ...relay.inside]))];
    if (failed.length) throw new Error(failed.join("; "));
    const changed = writeFiles(spec);
    trimLog(`${spec.dir}/log`);
    const pid = runningPid(spec);
    if (pid !== null) {
      if (changed) process.kill(pid, "SIGHUP");
      return;
    }
    const old = pidIn(spec.dir);
    const was = old === null ? null : cmdline(old);
    if (was?.[0]?.endsWith("dnsmasq")) this.log(`dhcp: restarting dnsmasq for network ${spec.network}: its command line changed (was: ${was.slice(1).join(" ")}; now: ${spec.args.join(" ")})`);
    await stopDnsmasq(spec.dir); // one with another command line
    try {
      await inside.run("dnsmasq", spec.args);
    } catch (e) {
      if (/ENOENT|not found/i.test((e as Error).message) && !this.told) {
        this.told = true;
        this.log("dnsmasq is not installed (Debian: dnsmasq-base): networks get no DHCP or DNS from this host");
      }
      throw e;
    }
    this.log(`dhcp: dnsmasq for network ${spec.network} started in ${spec.netns}`);
  }

  /** The networks whose DHCP server runs as specified (for the status report). */
  served(): string[] {
    return [...this.specs.values()].filter((s) => this.applied.get(s.netns) === fingerprint(s)).map((s) => s.network);
  }
}

/** Writes the files that differ (atomically: dnsmasq may be reading); whether any did. */
function writeFiles(spec: DhcpSpec): boolean {
  mkdirSync(spec.dir, { recursive: true, mode: 0o755 });
  let changed = false;
  for (const f of FILES) {
    const path = `${spec.dir}/${f}`;
    let now: string | null = null;
    try {
      now = readFileSync(path, "utf8");
    } catch {
      /* not yet */
    }
    if (now === spec.files[f]) continue;
    writeFileSync(`${path}.tmp`, spec.files[f], { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
    changed = true;
  }
  return changed;
}

function trimLog(path: string): void {
  try {
    if (statSync(path).size > LOG_MAX_BYTES) truncateSync(path, 0); // dnsmasq appends (O_APPEND): it goes on at 0
  } catch {
    /* not yet */
  }
}

function pidIn(dir: string): number | null {
  try {
    const pid = Number(readFileSync(`${dir}/pid`, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/** The pid of the dnsmasq running for this spec with exactly its command line; null if none does. */
function runningPid(spec: DhcpSpec): number | null {
  const pid = pidIn(spec.dir);
  const argv = pid === null ? null : cmdline(pid);
  if (!argv || !argv[0]?.endsWith("dnsmasq")) return null;
  return argv.slice(1).join("\0") === spec.args.join("\0") ? pid : null;
}

/** Stops the dnsmasq whose pid file is in `dir`, if it is one (a recycled pid is left alone). */
export async function stopDnsmasq(dir: string): Promise<void> {
  const pid = pidIn(dir);
  const argv = pid === null ? null : cmdline(pid);
  if (pid === null || !argv?.[0]?.endsWith("dnsmasq") || !argv.includes(`--pid-file=${dir}/pid`)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 50 && cmdline(pid) !== null; i++) await new Promise((r) => setTimeout(r, 20));
  if (cmdline(pid) !== null) process.kill(pid, "SIGKILL");
}
