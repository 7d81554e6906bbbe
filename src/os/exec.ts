// Running processes, and the kernel's tools (iproute2, nft) with batches on
// stdin, in this network namespace or bound to another (Exec).
import { spawn } from "node:child_process";
import { nftables } from "./nftables.ts";

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${code}): ${stderr.trim().split("\n").slice(0, 5).join("; ")}`);
  }
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** killed (SIGKILL) after this long */
  readonly timeoutMs?: number;
}

export function run(cmd: string, args: readonly string[], input?: string, opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    child.on("close", () => clearTimeout(timer));
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => reject(new CommandError(`${cmd} ${args.join(" ")}`, null, e.message)));
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new CommandError(`${cmd} ${args.join(" ")}`, code, err || out))));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

/**
 * The kernel's tools bound to one network namespace: the agent's own (null),
 * a router's or a DHCP server's, or a container's (CNI gives a path). One
 * process per call either way: nsenter enters the namespace and execs the tool.
 */
export class Exec {
  private constructor(readonly netns: string | null) {}

  static readonly here = new Exec(null);

  /** Bound to a named namespace (`ip netns add NAME`) or to a namespace file (CNI_NETNS). */
  static in(nameOrPath: string): Exec {
    return new Exec(nameOrPath.includes("/") ? nameOrPath : `/run/netns/${nameOrPath}`);
  }

  private argv(cmd: string, args: readonly string[]): [string, readonly string[]] {
    return this.netns ? ["nsenter", [`--net=${this.netns}`, cmd, ...args]] : [cmd, args];
  }

  run(cmd: string, args: readonly string[], input?: string, opts?: RunOptions): Promise<string> {
    const [c, a] = this.argv(cmd, args);
    return run(c, a, input, opts);
  }

  async json<T>(cmd: string, args: readonly string[]): Promise<T> {
    const out = await this.run(cmd, args);
    return (out.trim() ? JSON.parse(out) : []) as T;
  }

  /** `ip -batch` / `bridge -batch` with -force: every line is tried, and the failures come back. */
  async batch(tool: "ip" | "bridge", lines: readonly string[]): Promise<string[]> {
    if (lines.length === 0) return [];
    try {
      await this.run(tool, ["-force", "-batch", "-"], `${lines.join("\n")}\n`);
      return [];
    } catch (e) {
      if (e instanceof CommandError) return e.stderr.split("\n").filter((l) => l.trim());
      throw e;
    }
  }

  /** One atomic nftables transaction: through libnftables in this process's own namespace (os/nftables.ts), else `nft -f`. */
  async nft(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const text = `${lines.join("\n")}\n`;
    const lib = this.netns ? null : nftables().binding;
    if (!lib) {
      await this.run("nft", ["-f", "-"], text);
      return;
    }
    const r = await lib.run(text);
    if (!r.ok) throw new CommandError("nft -f - (libnftables)", 1, r.error);
  }
}
