// The lab (B1): several "hosts" on one machine. An underlay bridge in the
// root namespace, one namespace per host with an agent in it, an `external`
// namespace standing for a physical segment on the network host, and the
// controller on an embedded store. Everything it makes is found again by
// name (namespaces host-N, external, wl-*; links seam-ul, ul-*) and by the
// state directory, so `lab down` cleans up after a crash too.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../os/exec.ts";
import type { Credentials } from "../client/api-client.ts";
import { api, cniSocket, daemon, inNs, ip, isAlive, LAB, type LabState, namespaces, ROOT, SEAM, statePath, waitFor, writeState } from "./base.ts";
import { removeAllContainers } from "./container.ts";
import { cleanNodes, drainNodes, kubernetesDir, startNode, waitForNodes } from "./kubelet.ts";
import { kubeconfigIn, SERVICE_SUBNET, startControlPlane, stopControlPlaneIn } from "./kubernetes.ts";

export { api, apiClient, cniSocket, daemon, inNs, ip, isAlive, LAB, type LabState, namespaces, readState, ROOT, SEAM, sleep, waitFor, writeState } from "./base.ts";

// ---- up ---------------------------------------------------------------------

export interface UpOptions {
  readonly hosts: number;
  /** an existing controller; default: start one on an embedded store in the state directory */
  readonly server?: string;
  readonly agentDownTimeSec?: number;
  readonly reportIntervalSec?: number;
  /** resolvers for outside names, handed to every agent (`seam agent --dns-upstream`) */
  readonly dnsUpstreams?: readonly string[];
  /** a Kubernetes control plane, the controller pointed at it, and a kubelet node on every host */
  readonly kubernetes?: boolean;
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

  const state: LabState = { server: { url: "", pid: null, external: Boolean(o.server) }, hosts: [], vms: {}, workloads: {}, dnsUpstreams: [...(o.dnsUpstreams ?? [])] };
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
  // and a leg on the underlay: the physical segment's machines ask the controller's DNS listener for names
  await ip("link", "add", "ul-external", "type", "veth", "peer", "name", "ul0", "netns", LAB.external);
  await ip("link", "set", "ul-external", "master", LAB.underlay, "up");
  await inNs(LAB.external, "ip", "addr", "add", `${LAB.externalUnderlayAddress}/${LAB.prefix}`, "dev", "ul0");
  await inNs(LAB.external, "ip", "link", "set", "ul0", "up");
  writeState(state);

  if (o.kubernetes) {
    say("Kubernetes control plane (etcd, apiserver, scheduler, controller-manager) on the underlay");
    const cp = await startControlPlane({ dir: kubernetesDir(), address: LAB.serverAddress, nodes: state.hosts.map((h) => h.name), detached: true });
    state.kubernetes = { url: cp.url };
    writeState(state);
  }
  if (o.server) state.server.url = o.server.replace(/\/$/, "");
  else {
    state.server.url = `http://${LAB.serverAddress}:${LAB.port}`;
    say(`controller on ${state.server.url} (store sqlite:${join(LAB.stateDir, "seam.db")})`);
    await startServer(state, o.agentDownTimeSec ?? 6);
  }
  for (const h of state.hosts) await issueAgentCredential(state, h.name);
  for (const h of state.hosts) h.agentPid = startAgent(state, h.name, o.reportIntervalSec ?? 2);
  writeState(state);
  say(`waiting for ${state.hosts.length} agents to report alive`);
  await waitFor("all agents alive", 60_000, async () => {
    const { agents } = await api<{ agents: { host: string; alive: boolean }[] }>(state, "GET", "/v2.0/agents");
    return state.hosts.every((h) => agents.some((a) => a.host === h.name && a.alive));
  }, 250);
  if (state.kubernetes) {
    for (const h of state.hosts) {
      say(`Kubernetes node ${h.name}: containerd and kubelet, seam-cni through its agent`);
      await startNode(state, h.name);
    }
    say("waiting for the nodes to be Ready");
    await waitForNodes(state);
  }
  return state;
}

/** Starts the lab's own controller (on its embedded store) and waits until it answers. */
export async function startServer(state: LabState, agentDownTimeSec = 6): Promise<void> {
  const db = join(LAB.stateDir, "seam.db");
  state.server.pid = daemon(
    SEAM,
    [
      "server", "--listen", `${LAB.serverAddress}:${LAB.port}`, "--dns-listen", `${LAB.serverAddress}:53`, "--db", `sqlite:${db}`, "--auth", "local",
      "--identity", join(ROOT, "etc/identity.yaml"), "--agent-down-time", String(agentDownTimeSec), "--log-level", "warn",
      ...(state.kubernetes ? ["--kubeconfig", kubeconfigIn(kubernetesDir(), "seam"), "--service-subnet", SERVICE_SUBNET] : []),
    ],
    join(LAB.stateDir, "server.log"),
  );
  writeState(state);
  await waitFor("the controller to answer", 30_000, async () => (await fetch(`${state.server.url}/`)).ok);
}

/** Stops the lab's own controller (SIGTERM, then SIGKILL); agents and the kernel go on without it. */
export async function stopServer(state: LabState): Promise<void> {
  const pid = state.server.pid;
  if (!pid || state.server.external) return;
  killQuietly(pid, "SIGTERM");
  await waitFor("the controller to stop", 10_000, async () => !isAlive(pid)).catch(() => killQuietly(pid, "SIGKILL"));
  state.server.pid = null;
  writeState(state);
}

const agentCredentialFile = (host: string) => join(LAB.stateDir, `${host}.credential`);

/** Each agent acts with its own host's credential (it may act for that host only), kept for its restarts. */
async function issueAgentCredential(state: LabState, host: string): Promise<void> {
  const { credential } = await api<{ credential: string }>(state, "POST", `/api/v1/hosts/${host}/credential`);
  writeFileSync(agentCredentialFile(host), `${credential}\n`, { mode: 0o600 });
}

/** The lab's hosts share /run/netns: each agent's namespaces carry its host's name. */
export const netnsSuffix = (host: string) => `@${host}`;

export function startAgent(state: LabState, host: string, reportIntervalSec = 2): number {
  const h = state.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in the lab`);
  // In the host's network namespace, with /sys showing that namespace's devices (as `ip netns exec`
  // gives), but sharing the mount of /run/netns with everyone: the names of the routers' namespaces the
  // agent makes are bind mounts there, and under `ip netns exec` (a slave mount namespace) they would be
  // seen by no one else and die with the agent, routers and all.
  const inHost = 'mount --make-rprivate /sys && mount -t sysfs none /sys && exec "$0" "$@"';
  const args = [`--net=/run/netns/${h.name}`, "unshare", "--mount", "--propagation", "unchanged", "sh", "-c", inHost];
  args.push(SEAM, "agent", "--host", h.name, "--server", state.server.url, "--vtep", h.vtep, "--report-interval", String(reportIntervalSec));
  args.push("--cni-socket", cniSocket(h.name), "--state-dir", join(LAB.stateDir, h.name), "--netns-suffix", netnsSuffix(h.name));
  for (const r of h.roles) args.push("--role", r);
  for (const u of state.dnsUpstreams ?? []) args.push("--dns-upstream", u);
  if (h.roles.includes("network")) args.push("--physical-interface", "external:ex0");
  if (existsSync(agentCredentialFile(h.name))) args.push("--credential-file", agentCredentialFile(h.name));
  else {
    const c = LAB.credentials as Extract<Credentials, { kind: "password" }>;
    args.push("--os-username", c.username, "--os-password", c.password, "--os-project-name", c.project);
  }
  h.agentPid = daemon("nsenter", args, join(LAB.stateDir, `agent-${h.name}.log`));
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

const OWNED_NS = /^(host-\d+|external|wl-[A-Za-z0-9_.-]+|seam-[rsd]-[0-9a-f-]{36}@host-\d+)$/;

export async function down(progress: (msg: string) => void = () => {}): Promise<void> {
  // Containers first, while their agents still run: podman's CNI DEL releases their ports.
  const removed = await removeAllContainers().catch(() => 0);
  if (removed) progress(`removed ${removed} containers`);
  const nss = (await namespaces()).filter((n) => OWNED_NS.test(n));
  const hosts = nss.filter((n) => /^host-\d+$/.test(n));
  // Kubernetes pods next, the same way: their kubelets run CNI DEL through the agents.
  await drainNodes(hosts, progress);
  // Everything running inside our namespaces: agents, VMs, workload processes.
  const pids = (await Promise.all(nss.map(nsPids))).flat();
  // The controller (and anything else) started on our state directory.
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(`sqlite:${LAB.stateDir}/`) || cmd.includes(`${LAB.stateDir}/vm-`) || cmd.includes(`${kubernetesDir()}/`)) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  if (pids.length) progress(`stopping ${pids.length} processes`);
  for (const pid of pids) killQuietly(pid, "SIGTERM");
  await waitFor("lab processes to stop", 5000, async () => pids.every((p) => !isAlive(p))).catch(() => {
    for (const pid of pids) killQuietly(pid, "SIGKILL");
  });
  await stopControlPlaneIn(kubernetesDir());
  await cleanNodes(hosts);
  for (const ns of nss) {
    progress(`namespace ${ns}`);
    await ip("netns", "del", ns).catch(() => {});
  }
  const links = (JSON.parse((await run("ip", ["-j", "link", "show"])) || "[]") as { ifname: string }[]).map((l) => l.ifname);
  for (const l of links) if (l === LAB.underlay || /^ul-(host-\d+|external)$/.test(l)) await ip("link", "del", l).catch(() => {});
  rmSync(LAB.stateDir, { recursive: true, force: true });
}
