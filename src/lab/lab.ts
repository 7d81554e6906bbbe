// The lab (B1): several "hosts" on one machine. An underlay bridge in the
// root namespace, one namespace per host with an agent in it, an `external`
// namespace standing for a physical segment on the network host, and the
// controller on an embedded store. Everything it makes is found again by
// name (namespaces host-N, external, wl-*; links seam-ul, ul-*) and by the
// state directory, so `lab down` cleans up after a crash too.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ApiClient, type Credentials } from "../client/api-client.ts";
import { run } from "../os/exec.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const SEAM = join(ROOT, "bin/seam");

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
  credentials: { kind: "password", username: "admin", password: "admin", project: "admin" } as Credentials,
};

export interface LabState {
  server: { url: string; pid: number | null; external: boolean };
  hosts: { name: string; vtep: string; roles: string[]; agentPid: number | null }[];
  vms: Record<string, { host: string; port: string; pid: number; exec: string; console: string; accel: string }>;
  workloads: Record<string, { host: string; port: string; ns: string }>;
  containers?: Record<string, { host: string; network: string; id: string }>;
}

const statePath = () => join(LAB.stateDir, "state.json");

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

function isAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---- up ---------------------------------------------------------------------

export interface UpOptions {
  readonly hosts: number;
  /** an existing controller; default: start one on an embedded store in the state directory */
  readonly server?: string;
  readonly agentDownTimeSec?: number;
  readonly reportIntervalSec?: number;
  readonly progress?: (msg: string) => void;
}

export async function up(o: UpOptions): Promise<LabState> {
  const say = o.progress ?? (() => {});
  if (existsSync(statePath())) throw new Error(`a lab is already up (${LAB.stateDir}); run: seam lab down`);
  if (o.hosts < 1 || o.hosts > 200) throw new Error("--hosts must be between 1 and 200");
  mkdirSync(LAB.stateDir, { recursive: true });
  await run("modprobe", ["-q", "br_netfilter"]).catch(() => {});
  say(`underlay bridge ${LAB.underlay} ${LAB.serverAddress}/${LAB.prefix}`);
  await ip("link", "add", LAB.underlay, "type", "bridge");
  await ip("addr", "add", `${LAB.serverAddress}/${LAB.prefix}`, "dev", LAB.underlay);
  await ip("link", "set", LAB.underlay, "up");

  const state: LabState = { server: { url: "", pid: null, external: Boolean(o.server) }, hosts: [], vms: {}, workloads: {} };
  for (let i = 1; i <= o.hosts; i++) {
    const name = LAB.hostName(i);
    const vtep = LAB.hostAddress(i);
    say(`host ${name} (vtep ${vtep}${i === 1 ? ", network host" : ""})`);
    await ip("netns", "add", name);
    await ip("link", "add", `ul-${name}`, "type", "veth", "peer", "name", "eth0", "netns", name);
    await ip("link", "set", `ul-${name}`, "master", LAB.underlay, "up");
    await inNs(name, "ip", "addr", "add", `${vtep}/${LAB.prefix}`, "dev", "eth0");
    await inNs(name, "ip", "link", "set", "eth0", "up");
    await inNs(name, "ip", "link", "set", "lo", "up");
    state.hosts.push({ name, vtep, roles: i === 1 ? ["compute", "network"] : ["compute"], agentPid: null });
  }
  say(`external segment: namespace ${LAB.external} on ${LAB.hostName(1)}'s ex0`);
  await ip("netns", "add", LAB.external);
  await ip("link", "add", "ex0", "netns", LAB.hostName(1), "type", "veth", "peer", "name", "eth0", "netns", LAB.external);
  await inNs(LAB.external, "ip", "addr", "add", "203.0.113.254/24", "dev", "eth0");
  await inNs(LAB.external, "ip", "link", "set", "eth0", "up");
  await inNs(LAB.hostName(1), "ip", "link", "set", "ex0", "up");
  writeState(state);

  if (o.server) state.server.url = o.server.replace(/\/$/, "");
  else {
    state.server.url = `http://${LAB.serverAddress}:${LAB.port}`;
    const db = join(LAB.stateDir, "seam.db");
    say(`controller on ${state.server.url} (store sqlite:${db})`);
    state.server.pid = daemon(
      SEAM,
      ["server", "--listen", `${LAB.serverAddress}:${LAB.port}`, "--db", `sqlite:${db}`, "--auth", "local", "--identity", join(ROOT, "etc/identity.yaml"), "--agent-down-time", String(o.agentDownTimeSec ?? 6), "--log-level", "warn"],
      join(LAB.stateDir, "server.log"),
    );
    writeState(state);
    await waitFor("the controller to answer", 30_000, async () => (await fetch(`${state.server.url}/`)).ok);
  }
  for (const h of state.hosts) h.agentPid = startAgent(state, h.name, o.reportIntervalSec ?? 2);
  writeState(state);
  say(`waiting for ${state.hosts.length} agents to report alive`);
  await waitFor("all agents alive", 60_000, async () => {
    const { agents } = await api<{ agents: { host: string; alive: boolean }[] }>(state, "GET", "/v2.0/agents");
    return state.hosts.every((h) => agents.some((a) => a.host === h.name && a.alive));
  }, 250);
  return state;
}

/** Where a lab host's agent serves seam-cni. */
export const cniSocket = (host: string) => join(LAB.stateDir, host, "cni.sock");

export function startAgent(state: LabState, host: string, reportIntervalSec = 2): number {
  const h = state.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in the lab`);
  const args = ["netns", "exec", h.name, SEAM, "agent", "--host", h.name, "--server", state.server.url, "--vtep", h.vtep, "--report-interval", String(reportIntervalSec)];
  args.push("--cni-socket", cniSocket(h.name), "--state-dir", join(LAB.stateDir, h.name));
  for (const r of h.roles) args.push("--role", r);
  if (h.roles.includes("network")) args.push("--physical-interface", "external:ex0");
  const c = LAB.credentials as Extract<Credentials, { kind: "password" }>;
  args.push("--os-username", c.username, "--os-password", c.password, "--os-project-name", c.project);
  h.agentPid = daemon("ip", args, join(LAB.stateDir, `agent-${h.name}.log`));
  return h.agentPid;
}

/** Stops a host's agent (SIGTERM, then SIGKILL); the kernel keeps what it programmed. */
export async function stopAgent(state: LabState, host: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const h = state.hosts.find((x) => x.name === host);
  if (!h?.agentPid) return;
  const pids = await agentPids(h.name);
  for (const pid of pids) killQuietly(pid, signal);
  await waitFor(`agent of ${host} to stop`, 10_000, async () => (await agentPids(h.name)).length === 0).catch(async () => {
    for (const pid of await agentPids(h.name)) killQuietly(pid, "SIGKILL");
  });
  h.agentPid = null;
}

/** Agent processes in a host namespace (found by command line, so also after a crash of the lab CLI). */
async function agentPids(ns: string): Promise<number[]> {
  return (await nsPids(ns)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("\0agent\0");
    } catch {
      return false;
    }
  });
}

async function nsPids(ns: string): Promise<number[]> {
  const out = await run("ip", ["netns", "pids", ns]).catch(() => "");
  return out.split(/\s+/).filter(Boolean).map(Number);
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

// ---- down -------------------------------------------------------------------

const OWNED_NS = /^(host-\d+|external|wl-[A-Za-z0-9_.-]+)$/;

export async function down(progress: (msg: string) => void = () => {}): Promise<void> {
  // Containers first, while their agents still run: podman's CNI DEL releases their ports.
  const { removeAllContainers } = await import("./container.ts");
  const removed = await removeAllContainers().catch(() => 0);
  if (removed) progress(`removed ${removed} containers`);
  const nss = (await namespaces()).filter((n) => OWNED_NS.test(n));
  // Everything running inside our namespaces: agents, VMs, workload processes.
  const pids = (await Promise.all(nss.map(nsPids))).flat();
  // The controller (and anything else) started on our state directory.
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(`sqlite:${LAB.stateDir}/`) || cmd.includes(`${LAB.stateDir}/vm-`)) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  if (pids.length) progress(`stopping ${pids.length} processes`);
  for (const pid of pids) killQuietly(pid, "SIGTERM");
  await waitFor("lab processes to stop", 5000, async () => pids.every((p) => !isAlive(p))).catch(() => {
    for (const pid of pids) killQuietly(pid, "SIGKILL");
  });
  for (const ns of nss) {
    progress(`namespace ${ns}`);
    await ip("netns", "del", ns).catch(() => {});
  }
  const links = (JSON.parse((await run("ip", ["-j", "link", "show"])) || "[]") as { ifname: string }[]).map((l) => l.ifname);
  for (const l of links) if (l === LAB.underlay || /^ul-host-\d+$/.test(l)) await ip("link", "del", l).catch(() => {});
  rmSync(LAB.stateDir, { recursive: true, force: true });
}
