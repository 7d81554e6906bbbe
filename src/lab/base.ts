// What every lab module shares: where the lab keeps its state and its
// credentials, and how it runs commands, daemons and API calls. Kept apart
// from lab.ts (up, down, agents) so that the modules lab.ts uses (containers,
// workloads, VMs) need not import it back.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ApiClient, type Credentials } from "../client/api-client.ts";
import { run } from "../os/exec.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const SEAM = join(ROOT, "bin/seam");

/** The CNI plugin runtimes execute (a static binary scripts/build-cni.sh makes); the error says how to get it. */
export function cniPlugin(): string {
  const p = join(ROOT, "var/bin/seam-cni");
  if (!existsSync(p)) throw new Error(`${p} is missing: run bash scripts/build-cni.sh (scripts/setup.sh does)`);
  return p;
}

export const LAB = {
  stateDir: process.env.SEAM_LAB_DIR ?? "/run/seam-lab",
  underlay: "seam-ul",
  /** the controller's address on the underlay */
  serverAddress: "172.31.0.1",
  port: 9696,
  prefix: 24,
  hostAddress: (i: number) => `172.31.0.${10 + i}`,
  hostName: (i: number) => `host-${i}`,
  external: "external",
  /** the physical segment the external namespace stands for, seen from the network host */
  externalCidr: "203.0.113.0/24",
  /** the external namespace's leg on the underlay, where it reaches the controller's DNS listener */
  externalUnderlayAddress: "172.31.0.250",
  credentials: { kind: "password", username: "admin", password: "admin", project: "admin" } as Credentials,
};

export interface LabState {
  server: { url: string; pid: number | null; external: boolean };
  hosts: { name: string; vtep: string; roles: string[]; agentPid: number | null }[];
  vms: Record<string, { host: string; port: string; pid: number; exec: string; console: string; accel: string }>;
  workloads: Record<string, { host: string; port: string; ns: string }>;
  containers?: Record<string, { host: string; network: string; id: string }>;
  /** the resolvers the agents relay outside names to (`seam agent --dns-upstream`) */
  dnsUpstreams?: string[];
  /** `lab up --kubernetes`: the apiserver every host's kubelet and the controller talk to */
  kubernetes?: { url: string };
}

export const statePath = () => join(LAB.stateDir, "state.json");

export function readState(): LabState {
  if (!existsSync(statePath())) throw new Error("no lab is up (run: seam lab up)");
  return JSON.parse(readFileSync(statePath(), "utf8")) as LabState;
}
export function writeState(s: LabState): void {
  mkdirSync(LAB.stateDir, { recursive: true });
  writeFileSync(statePath() + ".tmp", JSON.stringify(s, null, 2));
  // rename is atomic: a crash never leaves half a state file
  renameSync(statePath() + ".tmp", statePath());
}

export const ip = (...args: string[]) => run("ip", args);
export const inNs = (ns: string, cmd: string, ...args: string[]) => run("ip", ["netns", "exec", ns, cmd, ...args]);

export async function namespaces(): Promise<string[]> {
  const out = await run("ip", ["-j", "netns", "list"]).catch(() => "[]");
  return ((out.trim() ? JSON.parse(out) : []) as { name: string }[]).map((n) => n.name);
}

/** Starts a process detached from us (it outlives the CLI), output to a log file; returns its pid. */
export function daemon(cmd: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env): number {
  mkdirSync(LAB.stateDir, { recursive: true });
  const fd = openSync(log, "a");
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${cmd}`);
  return child.pid;
}

/** The lab's controller, as an operator's client (admin). */
export const apiClient = (state: LabState) => new ApiClient(state.server.url, LAB.credentials, "lab");

export async function api<T>(state: LabState, method: string, path: string, body?: unknown): Promise<T> {
  const res = await apiClient(state).call(method, path, body);
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : null) as T;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

export function isAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const cniSocket = (host: string) => join(LAB.stateDir, host, "cni.sock");
