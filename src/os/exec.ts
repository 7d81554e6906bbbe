// Running the kernel's tools: iproute2 and nft, with batches on stdin.
import { spawn } from "node:child_process";

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

export async function json<T>(cmd: string, args: readonly string[]): Promise<T> {
  const out = await run(cmd, args);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/**
 * `ip -batch` / `bridge -batch` with -force: every line is tried, and the
 * failures come back (the next reconcile sees what is still missing).
 */
export async function batch(tool: "ip" | "bridge", lines: readonly string[]): Promise<string[]> {
  if (lines.length === 0) return [];
  try {
    await run(tool, ["-force", "-batch", "-"], `${lines.join("\n")}\n`);
    return [];
  } catch (e) {
    if (e instanceof CommandError) return e.stderr.split("\n").filter((l) => l.trim());
    throw e;
  }
}

/** One atomic nftables transaction. */
export async function nft(lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await run("nft", ["-f", "-"], `${lines.join("\n")}\n`);
}
