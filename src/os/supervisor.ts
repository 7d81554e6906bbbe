// Supervision of long-running helper processes (the agent's `ip monitor`
// today; dnsmasq per network and metadata proxies next): start, restart after
// an exit with a backoff that grows while the helper keeps dying and resets
// once it has stayed up, and stop for good. A helper is known by a name, so a
// manager can ask for "the DHCP server of network N" to be running with these
// arguments and get a restart only when the arguments change.
import { type ChildProcess, spawn } from "node:child_process";

export interface HelperSpec {
  readonly cmd: string;
  readonly args: readonly string[];
  /** stdout lines, when the helper's output is wanted */
  readonly onLine?: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

interface Helper {
  spec: HelperSpec;
  child: ChildProcess | undefined;
  timer: NodeJS.Timeout | undefined;
  delayMs: number;
  startedAt: number;
  restarts: number;
  stopped: boolean;
}

const MIN_DELAY_MS = 200;
const MAX_DELAY_MS = 30_000;
/** a helper up this long is healthy again: its next restart is quick */
const HEALTHY_MS = 10_000;

const sameSpec = (a: HelperSpec, b: HelperSpec) => a.cmd === b.cmd && a.args.join("\0") === b.args.join("\0");

export class Supervisor {
  private readonly helpers = new Map<string, Helper>();

  constructor(private readonly log: (msg: string) => void = () => {}) {}

  /** Makes `name` run as `spec`: started if absent, restarted if its command changed, left alone otherwise. */
  ensure(name: string, spec: HelperSpec): void {
    const h = this.helpers.get(name);
    if (h && !h.stopped && sameSpec(h.spec, spec)) {
      h.spec = spec;
      return;
    }
    if (h) this.stop(name);
    const helper: Helper = { spec, child: undefined, timer: undefined, delayMs: MIN_DELAY_MS, startedAt: 0, restarts: 0, stopped: false };
    this.helpers.set(name, helper);
    this.start(name, helper);
  }

  private start(name: string, h: Helper): void {
    h.timer = undefined;
    if (h.stopped) return;
    h.startedAt = Date.now();
    const child = spawn(h.spec.cmd, [...h.spec.args], { stdio: ["ignore", h.spec.onLine ? "pipe" : "ignore", "pipe"], env: h.spec.env ?? process.env });
    h.child = child;
    let err = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-500)));
    if (h.spec.onLine) {
      let buf = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          h.spec.onLine!(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    child.on("error", (e) => (err = e.message));
    child.on("close", (code, signal) => {
      if (h.child === child) h.child = undefined;
      if (h.stopped) return;
      if (Date.now() - h.startedAt >= HEALTHY_MS) h.delayMs = MIN_DELAY_MS;
      h.restarts++;
      this.log(`${name} exited (${signal ?? `code ${code}`})${err.trim() ? `: ${err.trim().split("\n").pop()}` : ""}; restarting in ${h.delayMs} ms`);
      h.timer = setTimeout(() => this.start(name, h), h.delayMs);
      h.delayMs = Math.min(h.delayMs * 2, MAX_DELAY_MS);
    });
  }

  /** Stops `name` for good (SIGTERM); resolves when it has exited. */
  stop(name: string): Promise<void> {
    const h = this.helpers.get(name);
    if (!h) return Promise.resolve();
    h.stopped = true;
    this.helpers.delete(name);
    clearTimeout(h.timer);
    const child = h.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once("close", () => resolve());
      child.kill("SIGTERM");
    });
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.helpers.keys()].map((n) => this.stop(n)));
  }

  /** What runs now: name -> pid (undefined while waiting to restart) and restart count. */
  status(): Map<string, { pid: number | undefined; restarts: number }> {
    return new Map([...this.helpers].map(([n, h]) => [n, { pid: h.child?.pid, restarts: h.restarts }]));
  }
}
