// `seam lab ...`: the multi-host lab on one machine (see src/lab/).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { down, inNs, LAB, readState, startAgent, stopAgent, up, writeState } from "../lab/lab.ts";
import { containerExec, removeContainer, runContainer } from "../lab/container.ts";
import { labKubeconfig, labKubectl } from "../lab/kubelet.ts";
import { KUBERNETES_BIN } from "../lab/kubernetes.ts";
import { bootVm, stopVm, vmExec } from "../lab/vm.ts";
import { removeWorkload, workload } from "../lab/workload.ts";

const say = (msg: string) => process.stderr.write(`lab: ${msg}\n`);

function count(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 200) throw new InvalidArgumentError("expected 1..200");
  return Number(value);
}

export function registerLab(program: Command): void {
  const lab = program.command("lab").description(`a multi-host lab on this machine: host namespaces with agents, a controller, VMs, containers and workloads (state in ${LAB.stateDir})`);

  lab
    .command("up")
    .description("create the underlay, N host namespaces each with an agent (host-1 is also the network host), the external segment, and a controller on an embedded store")
    .option("--hosts <n>", "number of hosts", count, 2)
    .option("--server <url>", "use this controller instead of starting one")
    .option("--agent-down-time <seconds>", "the lab controller's agent down time", count, 6)
    .option("--dns-upstream <addr[:port]>", "a resolver the agents relay outside names to (repeatable)", (v: string, p: string[]) => [...p, v], [] as string[])
    .option("--kubernetes", "also a Kubernetes control plane (the controller pointed at it) and a kubelet node on every host; then: seam lab kubectl ...")
    .action(async (o) => {
      if (o.kubernetes && o.server) throw new InvalidArgumentError("--kubernetes starts the lab's own controller; it cannot be combined with --server");
      try {
        const s = await up({ hosts: o.hosts, server: o.server, agentDownTimeSec: o.agentDownTime, dnsUpstreams: o.dnsUpstream, kubernetes: Boolean(o.kubernetes), progress: say });
        say(`up: ${s.hosts.map((h) => `${h.name} (${h.vtep})`).join(", ")}; controller ${s.server.url} (admin/admin)${s.kubernetes ? `; Kubernetes ${s.kubernetes.url}` : ""}`);
        process.stdout.write(`export OS_AUTH_URL=${s.server.url}/v3 OS_USERNAME=admin OS_PASSWORD=admin OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3\n`);
        if (s.kubernetes) process.stdout.write(`export KUBECONFIG=${labKubeconfig()}\n`);
      } catch (e) {
        say(`up failed: ${(e as Error).message}; cleaning up`);
        await down(say);
        throw e;
      }
    });

  lab
    .command("down")
    .description("remove every namespace, link, process and file the lab made (also after a crash)")
    .action(async () => {
      await down(say);
      say("down");
    });

  lab
    .command("vm <name>")
    .description("boot a real VM (qemu; KVM when it works, TCG otherwise) on a port's tap on a host")
    .requiredOption("--host <host>", "lab host, e.g. host-1")
    .requiredOption("--port <port-id>", "the Neutron port (bound to the host) the VM plugs into")
    .option("--accel <mode>", "auto, kvm or tcg", "auto")
    .option("--memory <mb>", "guest memory", count, 128)
    .action(async (name: string, o) => {
      if (!["auto", "kvm", "tcg"].includes(o.accel)) throw new InvalidArgumentError("--accel must be auto, kvm or tcg");
      const r = await bootVm(name, o.host, o.port, { accel: o.accel, memoryMb: o.memory, progress: say });
      say(`${name} is up in ${(r.bootMs / 1000).toFixed(1)} s (${r.accel}): ${r.facts.address} on ${r.facts.device}`);
    });

  lab
    .command("workload <name>")
    .description("a plain namespace workload (wl-NAME) on a port, wired like a pod: veth, MAC, address, route, MTU")
    .requiredOption("--host <host>", "lab host")
    .requiredOption("--port <port-id>", "the Neutron port (bound to the host)")
    .action(async (name: string, o) => {
      const f = await workload(name, o.host, o.port);
      say(`${name}: ${f.address} (${f.mac}) on ${o.host}/${f.device}`);
    });

  lab
    .command("container <name>")
    .description("a real OCI container (podman, CNI backend) whose network the runtime gets from seam-cni through the host's agent")
    .requiredOption("--host <host>", "lab host whose agent wires the container")
    .requiredOption("--network <name-or-id>", "the Seam network")
    .option("--project <name-or-id>", "the network's project, when its name is not unique")
    .action(async (name: string, o) => {
      const { id } = await runContainer(name, o.host, o.network, o.project);
      const r = await containerExec(name, "ip -o -4 addr show dev eth0");
      say(`${name}: container ${id.slice(0, 12)} on ${o.host}: ${r.output.trim().split(/\s+/)[3] ?? "?"}`);
    });

  lab
    .command("rm <name>")
    .description("remove a VM, container or workload")
    .action(async (name: string) => {
      const s = readState();
      if (s.vms[name]) await stopVm(name);
      else if (s.containers?.[name]) await removeContainer(name);
      else await removeWorkload(name);
    });

  lab
    .command("exec <name> <command...>")
    .description("run a command in a VM (serial exec channel), a container (podman exec), a workload namespace, or a pod (NAMESPACE/POD: kubectl exec); exits with its code")
    .action(async (name: string, command: string[]) => {
      const s = readState();
      if (name.includes("/")) {
        const [ns, pod] = name.split("/", 2) as [string, string];
        if (!s.kubernetes) throw new Error("this lab has no Kubernetes (seam lab up --kubernetes)");
        try {
          process.stdout.write(await labKubectl(["exec", "-n", ns, pod, "--", "sh", "-c", command.join(" ")]));
        } catch (e) {
          process.stdout.write(((e as { stderr?: string }).stderr ?? "") as string);
          process.exitCode = 1;
        }
      } else if (s.vms[name]) {
        const r = await vmExec(name, command.join(" "));
        process.stdout.write(r.output);
        process.exitCode = r.code;
      } else if (s.workloads[name]) {
        try {
          process.stdout.write(await inNs(s.workloads[name].ns, "sh", "-c", command.join(" ")));
        } catch (e) {
          process.stdout.write(((e as { stderr?: string }).stderr ?? "") as string);
          process.exitCode = 1;
        }
      } else if (s.containers?.[name]) {
        const r = await containerExec(name, command.join(" "));
        process.stdout.write(r.output);
        process.exitCode = r.code;
      } else throw new Error(`no VM, workload or container named ${name} (a pod is NAMESPACE/POD)`);
    });

  lab
    .command("kubectl [args...]")
    .description("kubectl against the lab's Kubernetes, as its admin (seam lab up --kubernetes); e.g. seam lab kubectl get pods -A -o wide")
    .allowUnknownOption()
    .helpOption(false)
    .action((args: string[] = []) => {
      if (!readState().kubernetes) throw new Error("this lab has no Kubernetes (seam lab up --kubernetes)");
      const r = spawnSync(join(KUBERNETES_BIN, "kubectl"), ["--kubeconfig", labKubeconfig(), ...args], { stdio: "inherit" });
      process.exitCode = r.status ?? 1;
    });

  const agent = lab.command("agent").description("stop or start a lab host's agent");
  agent
    .command("stop")
    .description("stop a host's agent (the kernel keeps what it programmed; traffic goes on)")
    .requiredOption("--host <host>", "lab host")
    .option("--kill", "SIGKILL instead of SIGTERM")
    .action(async (o) => {
      const s = readState();
      await stopAgent(s, o.host, o.kill ? "SIGKILL" : "SIGTERM");
      writeState(s);
    });
  agent
    .command("start")
    .description("start a host's agent again (it reconciles the kernel to the controller's intent)")
    .requiredOption("--host <host>", "lab host")
    .action(async (o) => {
      const s = readState();
      startAgent(s, o.host);
      writeState(s);
    });

  lab
    .command("status")
    .description("what the lab has")
    .action(() => {
      process.stdout.write(`${JSON.stringify(readState(), null, 2)}\n`);
    });
}
