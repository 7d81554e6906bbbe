// Real-HTTP helpers for load tests: a server listening on loopback and a
// keep-alive JSON client (fetch), so tests see what a real client sees.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { Json } from "./api.ts";

export interface HttpReply {
  status: number;
  body: Json;
}

export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Runs `worker(i)` for i in [0, total) on `concurrency` parallel lanes. */
export async function pool<T>(total: number, concurrency: number, worker: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(total);
  let next = 0;
  const lanes = Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      out[i] = await worker(i);
    }
  });
  await Promise.all(lanes);
  return out;
}

export const ROOT = join(import.meta.dirname, "..", "..");

/** A Keystone v3 password login scoped to PROJECT at V3 (…/v3), as the openstack CLI sends it; the raw answer. */
export function passwordLogin(v3: string, user: string, password: string, project: string): Promise<Response> {
  return fetch(`${v3}/auth/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["password"], password: { user: { name: user, domain: { id: "default" }, password } } }, scope: { project: { name: project, domain: { id: "default" } } } } }),
  });
}

/** Starts ./bin/seam server as a child process and waits until it answers. */
export async function spawnServer(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(join(ROOT, "bin", "seam"), ["server", "--listen", `127.0.0.1:${port}`, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`seam server exited ${child.exitCode}: ${stderr}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      if (r.ok) return child;
    } catch {
      /* not yet listening */
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`seam server did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}
