// A real Kubernetes control plane for the tests and the lab: etcd, the
// apiserver, the scheduler and the controller-manager, on loopback (the
// lab's apiserver on its underlay, where the hosts' kubelets reach it), from
// the binaries scripts/build-kubernetes.sh builds from Debian's source
// package (var/kubernetes/current/bin). Everything it starts and writes is
// under one directory, removed by stop(); the processes' ids are kept there
// too, so a lab's control plane (detached: it outlives the CLI that started
// it) is stopped from another process by stopControlPlaneIn(dir).
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../os/ports.ts";
import { isAlive } from "./base.ts";

const ROOT = join(import.meta.dirname, "..", "..");
export const KUBERNETES_BIN = join(ROOT, "var", "kubernetes", "current", "bin");

export interface ControlPlane {
  readonly dir: string;
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** cluster-admin, for tests and `kubectl` */
  readonly adminKubeconfig: string;
  /** what Seam's controller runs with */
  readonly seamKubeconfig: string;
  /** a kubelet's credential for each node asked for */
  readonly nodeKubeconfig: (node: string) => string;
  kubectl(...args: string[]): string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  readonly withControllerManager?: boolean;
  /** where everything goes (default: a new directory under the system's temporary directory) */
  readonly dir?: string;
  /** the apiserver's address (default 127.0.0.1); a lab uses its underlay address, which its hosts reach */
  readonly address?: string;
  /** nodes that will join: a kubelet credential each */
  readonly nodes?: readonly string[];
  /** start the processes in their own session, so they outlive this one (the lab CLI) */
  readonly detached?: boolean;
}

const PIDS = "pids.json";

/**
 * The apiserver's ClusterIP range: the lower half of Seam's service subnet
 * (SERVICE_SUBNET), so the subnet's last address, which routers take, is
 * never a ClusterIP (Kuryr splits its service subnet the same way).
 */
export const SERVICE_CLUSTER_RANGE = "10.96.0.0/17";
export const SERVICE_SUBNET = "10.96.0.0/16";

/** The kubeconfig scripts/kubernetes-pki.sh writes for a user (admin, seam, node-<name>) in a control plane's directory. */
export const kubeconfigIn = (dir: string, user: string) => join(dir, `${user}.kubeconfig`);

/** Stops what was started in `pids` (last first: SIGTERM, then SIGKILL after 5 s). */
async function stopPids(pids: readonly number[]): Promise<void> {
  for (const pid of [...pids].reverse()) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      continue;
    }
    const until = Date.now() + 5000;
    while (isAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(pid)) process.kill(pid, "SIGKILL");
  }
}

/** Stops a control plane another process started in `dir`, and removes `dir`. */
export async function stopControlPlaneIn(dir: string): Promise<void> {
  let pids: number[] = [];
  try {
    pids = JSON.parse(readFileSync(join(dir, PIDS), "utf8")) as number[];
  } catch {
    /* nothing started */
  }
  await stopPids(pids);
  rmSync(dir, { recursive: true, force: true });
}

/** Why this machine cannot run the control plane, or null when it can. */
export function kubernetesMissing(): string | null {
  for (const b of ["kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubectl"]) {
    if (!existsSync(join(KUBERNETES_BIN, b))) return `${join(KUBERNETES_BIN, b)} is missing: run bash scripts/build-kubernetes.sh (scripts/setup.sh does)`;
  }
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore" });
  } catch {
    return "etcd is missing: apt-get install etcd-server (scripts/build-kubernetes.sh does)";
  }
  return null;
}

export async function startControlPlane(o: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const missing = kubernetesMissing();
  if (missing) throw new Error(missing);
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "seam-k8s-"));
  mkdirSync(dir, { recursive: true });
  const address = o.address ?? "127.0.0.1";
  const pids: number[] = [];
  const stop = async () => {
    await stopPids(pids);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdClient, etcdPeer, apiPort, schedPort, kcmPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const url = `https://${address}:${apiPort}`;
    execFileSync("bash", [join(ROOT, "scripts", "kubernetes-pki.sh"), dir, url, ...(o.nodes ?? [])], { stdio: ["ignore", "ignore", "pipe"] });
    const pki = join(dir, "pki");
    mkdirSync(join(dir, "log"), { recursive: true });
    const start = (name: string, cmd: string, args: string[]) => {
      const log = openSync(join(dir, "log", `${name}.log`), "a");
      const p = spawn(cmd, args, { stdio: ["ignore", log, log], detached: Boolean(o.detached) });
      closeSync(log);
      if (o.detached) p.unref();
      if (!p.pid) throw new Error(`could not start ${cmd}`);
      pids.push(p.pid);
      writeFileSync(join(dir, PIDS), JSON.stringify(pids));
      return p;
    };
    start("etcd", "etcd", [
      "--name", "seam-lab", "--data-dir", join(dir, "etcd"),
      "--listen-client-urls", `http://127.0.0.1:${etcdClient}`, "--advertise-client-urls", `http://127.0.0.1:${etcdClient}`,
      "--listen-peer-urls", `http://127.0.0.1:${etcdPeer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeer}`,
      "--initial-cluster", `seam-lab=http://127.0.0.1:${etcdPeer}`, "--quota-backend-bytes", String(1 << 30),
    ]);
    start("kube-apiserver", join(KUBERNETES_BIN, "kube-apiserver"), [
      "--etcd-servers", `http://127.0.0.1:${etcdClient}`,
      "--bind-address", address, "--advertise-address", address, "--secure-port", String(apiPort), "--insecure-port", "0",
      "--tls-cert-file", join(pki, "apiserver.crt"), "--tls-private-key-file", join(pki, "apiserver.key"),
      "--client-ca-file", join(pki, "ca.crt"),
      "--kubelet-client-certificate", join(pki, "apiserver-kubelet-client.crt"), "--kubelet-client-key", join(pki, "apiserver-kubelet-client.key"),
      "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
      "--service-account-key-file", join(pki, "sa.pub"), "--service-account-signing-key-file", join(pki, "sa.key"),
      "--api-audiences", "https://kubernetes.default.svc.cluster.local",
      "--service-cluster-ip-range", SERVICE_CLUSTER_RANGE, "--authorization-mode", "Node,RBAC",
      "--kubelet-preferred-address-types", "InternalIP,Hostname,ExternalIP", "--allow-privileged=true",
    ]);
    const cp: ControlPlane = {
      dir,
      url,
      adminKubeconfig: kubeconfigIn(dir, "admin"),
      seamKubeconfig: kubeconfigIn(dir, "seam"),
      nodeKubeconfig: (node) => kubeconfigIn(dir, `node-${node}`),
      kubectl: (...args) => execFileSync(join(KUBERNETES_BIN, "kubectl"), ["--kubeconfig", kubeconfigIn(dir, "admin"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
      stop,
    };
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if (cp.kubectl("get", "--raw", "/readyz").trim() === "ok") break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`the apiserver was not ready in 60 s: ${tail(join(dir, "log", "kube-apiserver.log"))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    start("kube-scheduler", join(KUBERNETES_BIN, "kube-scheduler"), [
      "--kubeconfig", join(dir, "scheduler.kubeconfig"), "--authentication-kubeconfig", join(dir, "scheduler.kubeconfig"),
      "--authorization-kubeconfig", join(dir, "scheduler.kubeconfig"), "--bind-address", "127.0.0.1", "--secure-port", String(schedPort), "--port", "0", "--leader-elect=false",
    ]);
    if (o.withControllerManager !== false) {
      const kc = join(dir, "controller-manager.kubeconfig");
      start("kube-controller-manager", join(KUBERNETES_BIN, "kube-controller-manager"), [
        "--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
        "--bind-address", "127.0.0.1", "--secure-port", String(kcmPort), "--port", "0", "--leader-elect=false",
        "--service-account-private-key-file", join(pki, "sa.key"), "--root-ca-file", join(pki, "ca.crt"),
        "--use-service-account-credentials=true", "--cluster-signing-cert-file", join(pki, "ca.crt"), "--cluster-signing-key-file", join(pki, "ca.key"),
        "--service-cluster-ip-range", SERVICE_CLUSTER_RANGE, "--controllers", "*,-nodeipam", "--allocate-node-cidrs=false",
      ]);
    }
    return cp;
  } catch (err) {
    await stop();
    throw err;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}
