// Real OCI containers in the lab: podman (CNI network backend, runc) runs a
// busybox rootfs, and podman itself calls seam-cni through a CNI config file;
// seam-cni talks to the chosen host's agent, which wires the container to the
// network. Podman's own files live under the lab's state directory, so a
// private CONTAINERS_CONF carries what this machine needs (MACHINE-NOTES.md:
// runc, ulimits root cannot raise here, the CNI backend).
import { CommandError, run } from "../os/exec.ts";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cniPlugin, cniSocket, LAB, readState, ROOT, writeState } from "./base.ts";
import { checkName } from "./workload.ts";

export const ROOTFS = process.env.SEAM_ROOTFS ?? join(ROOT, "var/rootfs");
const LABEL = "seam-lab=1";

const paths = () => ({
  conf: join(LAB.stateDir, "podman", "containers.conf"),
  netDir: join(LAB.stateDir, "cni", "net.d"),
  binDir: join(LAB.stateDir, "cni", "bin"),
});

/** The network name podman knows for (host, Seam network). */
export const cniNetworkName = (host: string, network: string) => `seam-${host}-${network}`.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 60);

export function podmanEnv(): NodeJS.ProcessEnv {
  const p = paths();
  if (!existsSync(p.conf)) {
    mkdirSync(join(p.conf, ".."), { recursive: true });
    mkdirSync(p.netDir, { recursive: true });
    mkdirSync(p.binDir, { recursive: true });
    if (!existsSync(join(p.binDir, "seam"))) symlinkSync(cniPlugin(), join(p.binDir, "seam"));
    writeFileSync(
      p.conf,
      [
        "[containers]",
        'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
        "[engine]",
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        "[network]",
        'network_backend = "cni"',
        `network_config_dir = "${p.netDir}"`,
        `cni_plugin_dirs = ["${p.binDir}", "/usr/lib/cni"]`,
        "",
      ].join("\n"),
    );
  }
  return { ...process.env, CONTAINERS_CONF: p.conf };
}

/** A CNI network config for a host's agent and a Seam network (what a cluster admin writes once per node). */
export function writeCniConfig(host: string, network: string, project?: string): string {
  podmanEnv();
  const name = cniNetworkName(host, network);
  const conf = {
    cniVersion: "1.0.0",
    name,
    plugins: [{ type: "seam", network, ...(project ? { project } : {}), agentSocket: cniSocket(host) }],
  };
  writeFileSync(join(paths().netDir, `${name}.conflist`), JSON.stringify(conf, null, 2));
  return name;
}

export function podman(args: string[], timeoutMs = 60_000): Promise<string> {
  return run("podman", args, undefined, { env: podmanEnv(), timeoutMs });
}

export async function runContainer(name: string, host: string, network: string, project?: string): Promise<{ id: string }> {
  checkName(name);
  if (!existsSync(join(ROOTFS, "bin/busybox"))) throw new Error(`no container rootfs in ${ROOTFS}: run scripts/build-rootfs.sh (scripts/setup.sh does)`);
  const state = readState();
  if (!state.hosts.some((h) => h.name === host)) throw new Error(`no host ${host} in the lab`);
  if (state.vms[name] || state.workloads[name] || state.containers?.[name]) throw new Error(`${name} already exists in the lab`);
  const net = writeCniConfig(host, network, project);
  let id: string;
  try {
    id = (await podman(["run", "-d", "--name", name, "--label", LABEL, "--network", net, "--rootfs", ROOTFS, "/bin/sleep", "1000000"])).trim();
  } catch (e) {
    await podman(["rm", "-f", "-t", "0", name]).catch(() => {}); // podman keeps a container whose network failed
    throw e;
  }
  state.containers = { ...(state.containers ?? {}), [name]: { host, network, id } };
  writeState(state);
  return { id };
}

export async function containerExec(name: string, command: string): Promise<{ code: number; output: string }> {
  try {
    return { code: 0, output: await podman(["exec", name, "/bin/sh", "-c", command]) };
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    return { code: e.code ?? 1, output: e.stderr };
  }
}

export async function removeContainer(name: string): Promise<void> {
  await podman(["rm", "-f", "-t", "0", name]);
  const state = readState();
  if (state.containers) delete state.containers[name];
  writeState(state);
}

/** Every container the lab started (by label, so also after a crash); podman runs CNI DEL for each. */
export async function removeAllContainers(): Promise<number> {
  if (!existsSync(paths().conf)) return 0;
  const ids = (await podman(["ps", "-a", "-q", "--filter", `label=${LABEL}`]).catch(() => "")).split(/\s+/).filter(Boolean);
  if (ids.length) await podman(["rm", "-f", "-t", "0", ...ids]).catch(() => {});
  return ids.length;
}
