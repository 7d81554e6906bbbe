// Kubernetes nodes in the lab: on every lab host, a private containerd (its
// CRI plugin) and a kubelet, both in the host's network namespace beside its
// agent, with seam-cni as the node's only CNI plugin. The kubelet reaches the
// apiserver on the underlay, registers the node under the host's name with
// the host's underlay address, and its pods get their network from Seam: the
// controller made the port when the pod was scheduled, and the CNI ADD that
// containerd runs plugs it (../shared/kubernetes/README.md, step 4, is the
// recipe this follows).
//
// What two kubelets on one machine must not share is kept apart: each has its
// own root directory, containerd (socket, root, state), CNI directories and
// cgroup root (`seam-lab-<host>` in every hierarchy). /var/log/pods is the
// one path the kubelet does not let us move; pod UIDs keep the logs apart.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../os/exec.ts";
import { cniPlugin, cniSocket, daemon, LAB, type LabState, sleep, waitFor } from "./base.ts";
import { kubeconfigIn, KUBERNETES_BIN } from "./kubernetes.ts";

const IMAGES = join(KUBERNETES_BIN, "..", "images");
export const PAUSE_IMAGE = "localhost/pause:3.4.1";
/** the image pods run here (scripts/kubernetes-images.py makes it from busybox-static; no registry) */
export const BUSYBOX_IMAGE = "localhost/busybox:1.35";
const CGROUPS = "/sys/fs/cgroup";

const nodeDir = (host: string) => join(LAB.stateDir, host, "node");
const containerdSocket = (host: string) => join(nodeDir(host), "containerd.sock");
const cgroupRoot = (host: string) => `seam-lab-${host}`;

/** Where the lab keeps its control plane, and what its clients need. */
export const kubernetesDir = () => join(LAB.stateDir, "kubernetes");
export const labKubeconfig = () => kubeconfigIn(kubernetesDir(), "admin");

/** kubectl against the lab's cluster, as its admin. */
export function labKubectl(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return run(join(KUBERNETES_BIN, "kubectl"), ["--kubeconfig", labKubeconfig(), ...args], undefined, { timeoutMs });
}

/** The node's CNI config: seam-cni, talking to this host's agent; no network (the pod's namespace decides). */
function nodeCniConfig(host: string): object {
  return { cniVersion: "1.0.0", name: "seam", plugins: [{ type: "seam", agentSocket: cniSocket(host) }] };
}

/** The reference plugins on a node (bridge + host-local), for comparing with: what the recipe's node ran. */
function referenceCniConfig(host: string): object {
  return {
    cniVersion: "0.4.0", name: "reference",
    plugins: [{ type: "bridge", bridge: "cniref0", isGateway: true, ipMasq: false, ipam: { type: "host-local", ranges: [[{ subnet: "10.250.0.0/24" }]], dataDir: join(nodeDir(host), "cni-ipam") } }],
  };
}

/** Which CNI the node's containerd uses for new pods (it reloads its config directory when a file changes). */
export function useCni(host: string, which: "seam" | "reference"): void {
  const f = join(nodeDir(host), "cni", "10-pods.conflist");
  writeFileSync(`${f}.tmp`, JSON.stringify(which === "seam" ? nodeCniConfig(host) : referenceCniConfig(host), null, 2));
  renameSync(`${f}.tmp`, f);
}

function containerdConfig(host: string): string {
  const d = nodeDir(host);
  return `version = 2
root = "${d}/containerd-root"
state = "${d}/containerd-state"
[grpc]
  address = "${containerdSocket(host)}"
[ttrpc]
  address = "${containerdSocket(host)}.ttrpc"
[debug]
  address = "${d}/containerd-debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # without CAP_SYS_RESOURCE here runc cannot lower oom_score_adj to the sandbox's -998
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${d}/cni-bin"
    conf_dir = "${d}/cni"
    max_conf_num = 1
`;
}

function kubeletConfig(host: string, vtep: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${vtep}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "${join(kubernetesDir(), "pki", "ca.crt")}"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /${cgroupRoot(host)}
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
`;
}

/** The cgroup v1 hierarchies (and the unified one) this machine mounts. */
function hierarchies(): string[] {
  return existsSync(CGROUPS) ? readdirSync(CGROUPS).map((h) => join(CGROUPS, h)).filter((h) => existsSync(join(h, "cgroup.procs"))) : [];
}

/** The kubelet insists that its cgroup root exists in every hierarchy; a cpuset one needs CPUs and memory nodes to hold tasks. */
function makeCgroupRoot(host: string): void {
  for (const h of hierarchies()) {
    const dir = join(h, cgroupRoot(host));
    mkdirSync(dir, { recursive: true });
    for (const f of ["cpuset.cpus", "cpuset.mems"]) if (existsSync(join(h, f))) writeFileSync(join(dir, f), readFileSync(join(h, f), "utf8").trim() || "0");
  }
}

/** Removes a host's cgroup tree, leaves first (only empty cgroups can go). */
function removeCgroupRoot(host: string): void {
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      /* busy or gone */
    }
  };
  for (const h of hierarchies()) if (existsSync(join(h, cgroupRoot(host)))) walk(join(h, cgroupRoot(host)));
}

/** Starts containerd and the kubelet on a lab host; the node registers itself (see waitForNodes). */
export async function startNode(state: LabState, host: string): Promise<void> {
  const h = state.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in the lab`);
  const d = nodeDir(host);
  for (const sub of ["cni", "cni-bin", "kubelet", "containerd-root"]) mkdirSync(join(d, sub), { recursive: true });
  makeCgroupRoot(host);
  // containerd takes one CNI bin directory: seam-cni beside the reference plugins (loopback, which it
  // runs for every pod's lo, and bridge and host-local, which the benchmarks compare with)
  const bin = join(d, "cni-bin");
  if (!existsSync(join(bin, "seam"))) symlinkSync(cniPlugin(), join(bin, "seam"));
  for (const p of existsSync("/usr/lib/cni") ? readdirSync("/usr/lib/cni") : []) if (!existsSync(join(bin, p))) symlinkSync(join("/usr/lib/cni", p), join(bin, p));
  useCni(host, "seam");
  writeFileSync(join(d, "containerd.toml"), containerdConfig(host));
  const inHost = [`--net=/run/netns/${host}`];
  daemon("nsenter", [...inHost, "containerd", "--config", join(d, "containerd.toml")], join(d, "containerd.log"));
  await waitFor(`containerd on ${host}`, 20_000, async () => existsSync(containerdSocket(host)), 100);
  for (const img of ["pause", "busybox"]) await run("ctr", ["-a", containerdSocket(host), "-n", "k8s.io", "images", "import", join(IMAGES, `${img}.tar`)], undefined, { timeoutMs: 60_000 });
  writeFileSync(join(d, "kubelet.yaml"), kubeletConfig(host, h.vtep));
  daemon(
    "nsenter",
    [
      ...inHost, join(KUBERNETES_BIN, "kubelet"), "--config", join(d, "kubelet.yaml"), "--kubeconfig", kubeconfigIn(kubernetesDir(), `node-${host}`),
      "--container-runtime", "remote", "--container-runtime-endpoint", `unix://${containerdSocket(host)}`,
      "--root-dir", join(d, "kubelet"), "--hostname-override", host, "--node-ip", h.vtep,
      "--pod-infra-container-image", PAUSE_IMAGE, "--v", "1",
    ],
    join(d, "kubelet.log"),
  );
}

/** Waits until every lab host is a Ready node. */
export async function waitForNodes(state: LabState, timeoutMs = 120_000): Promise<void> {
  await waitFor(`nodes ${state.hosts.map((h) => h.name).join(", ")} Ready`, timeoutMs, async () => {
    const nodes = JSON.parse(await labKubectl(["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[] };
    return state.hosts.every((h) => nodes.items.some((n) => n.metadata.name === h.name && n.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")));
  }, 500);
}

/**
 * Removes the nodes' pods while kubelets and agents still run (so CNI DEL
 * releases their interfaces), then whatever containerd still holds; the
 * processes themselves go with the lab's others.
 */
export async function drainNodes(hosts: readonly string[], progress: (msg: string) => void = () => {}): Promise<void> {
  if (existsSync(labKubeconfig())) {
    try {
      // the workload controllers first: a Deployment's ReplicaSet would start new pods while these go,
      // and a sandbox caught half made when containerd is killed keeps its network namespace
      await labKubectl(["delete", "deployments,replicasets,statefulsets,daemonsets,jobs", "--all", "-A", "--timeout=60s"], 90_000).catch(() => "");
      const pods = (await labKubectl(["get", "pods", "-A", "-o", "name"], 15_000)).split("\n").filter(Boolean).length;
      if (pods) {
        progress(`deleting ${pods} pods through their kubelets`);
        await labKubectl(["delete", "pods", "--all", "-A", "--grace-period=1", "--timeout=60s"], 90_000);
      }
    } catch {
      /* the apiserver is gone: containerd's leftovers below */
    }
  }
  for (const host of hosts) {
    const sock = containerdSocket(host);
    if (!existsSync(sock)) continue;
    const ctr = (...a: string[]) => run("ctr", ["-a", sock, "-n", "k8s.io", ...a], undefined, { timeoutMs: 20_000 });
    const tasks = (await ctr("tasks", "ls", "-q").catch(() => "")).split("\n").filter(Boolean);
    for (const t of tasks) await ctr("tasks", "kill", "-s", "SIGKILL", t).catch(() => {});
    if (tasks.length) await sleep(500);
    for (const c of (await ctr("containers", "ls", "-q").catch(() => "")).split("\n").filter(Boolean)) {
      // a sandbox killed behind CRI's back keeps its network namespace: find it in the spec
      const info = await ctr("containers", "info", c).catch(() => "{}");
      const netns = /"type":\s*"network",\s*"path":\s*"\/var\/run\/netns\/(cni-[0-9a-f-]+)"/.exec(info)?.[1];
      await ctr("tasks", "delete", "-f", c).catch(() => {});
      await ctr("containers", "delete", c).catch(() => {});
      if (netns) await run("ip", ["netns", "del", netns]).catch(() => {});
    }
  }
}

/** After the processes are gone: the kubelets' mounts (their root directory, pod volumes) and cgroups. */
export async function cleanNodes(hosts: readonly string[]): Promise<void> {
  const prefix = `${LAB.stateDir}/`;
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(prefix));
  for (const m of mounts.sort((a, b) => b.length - a.length)) await run("umount", ["-l", m]).catch(() => {});
  for (const h of hosts) removeCgroupRoot(h);
}
