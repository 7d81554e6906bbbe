// `seam demo`, part 1: the lab of B1 on the embedded store. Two hosts with
// agents, a real VM (qemu) on host-1 and a pod on host-2 on one VXLAN network
// (seeds/001's "seamless" 192.168.100.0/24 in project k8s): scenario S1
// through a real Kubernetes (`kubectl apply` in the annotated namespace; the
// kubelet's containerd calls seam-cni), or, where Kubernetes is not built, a
// podman container that calls seam-cni itself. The agents and ports as
// `openstack` shows them, each host's forwarding table, and pings both ways;
// then a router to the external segment and a floating IP the outside
// reaches the VM at.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { down, LAB, readState, SEAM, up, waitFor } from "../lab/lab.ts";
import { bootVm, vmExec } from "../lab/vm.ts";
import { containerExec, runContainer } from "../lab/container.ts";
import { BUSYBOX_IMAGE, labKubectl } from "../lab/kubelet.ts";
import { kubernetesMissing } from "../lab/kubernetes.ts";
import { CommandError, run } from "../os/exec.ts";

const exec = promisify(execFile);

export async function runLabDemo(keep: boolean): Promise<number> {
  const say = (text: string) => process.stdout.write(`\n\x1b[1m# ${text}\x1b[0m\n`);
  const env = () => ({
    ...process.env,
    OS_AUTH_URL: `${readState().server.url}/v3`,
    OS_IDENTITY_API_VERSION: "3",
    OS_USERNAME: "admin",
    OS_PASSWORD: "admin",
    OS_PROJECT_NAME: "admin",
    OS_USER_DOMAIN_NAME: "Default",
    OS_PROJECT_DOMAIN_NAME: "Default",
  });
  const os = async (args: string[]) => {
    process.stdout.write(`$ openstack ${args.join(" ")}\n`);
    const { stdout } = await exec("openstack", args, { env: env(), timeout: 60_000 });
    process.stdout.write(stdout);
    return stdout.trim();
  };
  const shell = async (show: string, cmd: () => Promise<string>) => {
    process.stdout.write(`$ ${show}\n`);
    process.stdout.write(await cmd());
  };
  const withKubernetes = kubernetesMissing() === null;
  const kubectl = async (args: string[]) => {
    process.stdout.write(`$ seam lab kubectl ${args.join(" ")}\n`);
    process.stdout.write(await labKubectl(args));
  };
  // a command in the pod: through the kubelet (kubectl exec), or podman's
  const podExec = async (cmd: string): Promise<string> => {
    if (!withKubernetes) return (await containerExec("pod1", cmd)).output;
    try {
      return await labKubectl(["exec", "-n", "seamless", "pod1", "--", "sh", "-c", cmd]);
    } catch (e) {
      return e instanceof CommandError ? e.stderr : String(e);
    }
  };
  try {
    await down();
    say(`The lab: an underlay bridge, host-1 (compute + network host) and host-2, an agent in each, a controller on an embedded store${withKubernetes ? ", and a real Kubernetes: its control plane, Seam's controller pointed at it, a kubelet with containerd on each host" : ""}`);
    await up({ hosts: 2, kubernetes: withKubernetes, progress: (m) => process.stdout.write(`lab: ${m}\n`) });
    await os(["network", "agent", "list"]);
    if (withKubernetes) await kubectl(["get", "nodes", "-o", "wide"]);
    say(`One network for the VM and the ${withKubernetes ? "pod" : "container"} side (project k8s), VXLAN with its own VNI`);
    await os(["network", "create", "seamless", "--project", "k8s", "--dns-domain", "openstack.local.", "-c", "id", "-c", "provider:network_type", "-c", "provider:segmentation_id", "-c", "mtu", "-c", "dns_domain"]);
    await os(["subnet", "create", "--network", "seamless", "--project", "k8s", "--subnet-range", "192.168.100.0/24", "seamless-v4", "-c", "cidr", "-c", "gateway_ip"]);
    say("With the subnet, Seam made the network's DHCP port: it holds .2 (seeds/001), and serves DHCP, DNS and metadata from host-1");
    await os(["port", "list", "--network", "seamless", "--device-owner", "network:dhcp", "-c", "Fixed IP Addresses", "-c", "Status"]);
    const vmPort = await os(["port", "create", "--network", "seamless", "--project", "k8s", "--device-owner", "compute:nova", "--host", "host-1", "--dns-name", "vm1", "vm1", "-f", "value", "-c", "id"]);
    say("A real VM (qemu) on host-1 on its port's tap; no address on its command line: it asks DHCP");
    const vm = await bootVm("vm1", "host-1", vmPort, { progress: (m) => process.stdout.write(`lab: ${m}\n`) });
    await shell("seam lab exec vm1 -- cat /run/lease", async () => (await vmExec("vm1", "cat /run/lease")).output);
    let wlAddr: string;
    if (withKubernetes) {
      say("A pod on host-2: the namespace's annotation names the network (seeds/001); the controller makes the pod's port when it is scheduled, the kubelet's seam-cni plugs it");
      const manifest = join(LAB.stateDir, "demo-pod.yaml");
      writeFileSync(manifest, `apiVersion: v1
kind: Namespace
metadata:
  name: seamless
  annotations: {seam.io/network: '{"project":"k8s","name":"seamless"}'}
---
apiVersion: v1
kind: Pod
metadata: {name: pod1, namespace: seamless}
spec:
  nodeSelector: {kubernetes.io/hostname: host-2}
  terminationGracePeriodSeconds: 1
  # the network's resolver (its DHCP port), as DHCP tells the VM: Seam's one DNS for VMs and pods
  dnsPolicy: None
  dnsConfig: {nameservers: [192.168.100.2], searches: [openstack.local]}
  containers: [{name: main, image: "${BUSYBOX_IMAGE}", imagePullPolicy: Never, command: [sleep, "1000000"]}]
`);
      process.stdout.write(await run("cat", [manifest]));
      await waitFor("the default service account", 30_000, async () => {
        await labKubectl(["apply", "-f", manifest]);
        return true;
      }, 1000);
      await waitFor("pod1 Running", 120_000, async () => (await labKubectl(["get", "pod", "pod1", "-n", "seamless", "-o", "jsonpath={.status.phase}"])) === "Running", 500);
      await kubectl(["get", "pod", "pod1", "-n", "seamless", "-o", "wide"]);
      wlAddr = await podExec("ip -o -4 addr show dev eth0");
    } else {
      say("A real container on host-2: podman runs it and calls seam-cni, whose agent gets the port from the controller and wires eth0 from it");
      process.stdout.write("$ seam lab container pod1 --host host-2 --network seamless --project k8s\n");
      await runContainer("pod1", "host-2", "seamless", "k8s");
      wlAddr = await podExec("ip -o -4 addr show dev eth0");
    }
    process.stdout.write(wlAddr);
    const wl = { address: /inet (\S+)/.exec(wlAddr)![1]! };
    process.stdout.write(`vm1: ${vm.facts.address} (${vm.accel}), pod1: ${wl.address}\n`);
    await new Promise((r) => setTimeout(r, 1000));
    await os(["port", "list", "--network", "seamless", "-c", "Name", "-c", "MAC Address", "-c", "Fixed IP Addresses", "-c", "Status"]);
    say("Each host's forwarding table for the network: local taps, remote VTEPs with the VNI (seeds/001's rt --get)");
    for (const host of ["host-1", "host-2"]) {
      await shell(`seam routes --host ${host} --network seamless`, async () => (await exec(SEAM, ["routes", "--host", host, "--network", "seamless", "--server", readState().server.url, "--os-username", "admin", "--os-password", "admin"])).stdout);
    }
    say("What the kernel on host-1 holds: bridge, VXLAN device, FDB entries to host-2's VTEP");
    await shell("ip netns exec host-1 bridge fdb show | grep dst", async () => (await run("ip", ["netns", "exec", "host-1", "bridge", "fdb", "show"])).split("\n").filter((l) => l.includes(" dst ")).join("\n") + "\n");
    say(`The VM pings the ${withKubernetes ? "pod" : "container"} across hosts, and the ${withKubernetes ? "pod" : "container"} pings the VM (one project: its default group admits its own members)`);
    const vmIp = vm.facts.address.split("/")[0]!;
    const wlIp = wl.address.split("/")[0]!;
    await shell(`seam lab exec vm1 -- ping -c 3 ${wlIp}`, async () => (await vmExec("vm1", `ping -c 3 ${wlIp}`)).output);
    const pod = withKubernetes ? "seamless/pod1" : "pod1";
    await shell(`seam lab exec ${pod} -- ping -c 3 ${vmIp}`, () => podExec(`ping -c 3 ${vmIp}`));
    say(`Names: the ${withKubernetes ? "pod" : "container"} finds the VM by its dns_name, the VM finds the ${withKubernetes ? "pod" : "container"}, and the outside asks the controller (F4)`);
    const podName = `host-${wlIp.replace(/\./g, "-")}.openstack.local`;
    await shell(`seam lab exec ${pod} -- nslookup vm1.openstack.local`, () => podExec("nslookup vm1.openstack.local"));
    await shell(`seam lab exec vm1 -- nslookup ${podName}`, async () => (await vmExec("vm1", `nslookup ${podName}`)).output);
    await shell(`ip netns exec external nslookup vm1.openstack.local ${LAB.serverAddress}`, () => run("ip", ["netns", "exec", LAB.external, "busybox", "nslookup", "vm1.openstack.local", LAB.serverAddress]));
    say("The VM's metadata (F17), as Nova's metadata API lays it out, from the model");
    await shell("seam lab exec vm1 -- wget -qO- http://169.254.169.254/openstack/latest/network_data.json", async () => `${(await vmExec("vm1", "wget -qO- http://169.254.169.254/openstack/latest/network_data.json")).output}\n`);
    say("A router to the external segment (the lab's `external` namespace, on host-1's ex0), and a floating IP for the VM (F14, F15)");
    await os(["network", "create", "public", "--external", "--provider-network-type", "flat", "--provider-physical-network", "external", "-c", "id"]);
    await os(["subnet", "create", "--network", "public", "--subnet-range", LAB.externalCidr, "--gateway", "203.0.113.254", "--allocation-pool", "start=203.0.113.10,end=203.0.113.99", "--no-dhcp", "public-v4", "-c", "cidr"]);
    await os(["router", "create", "router1", "--project", "k8s", "-c", "id"]);
    await os(["router", "add", "subnet", "router1", "seamless-v4"]);
    await os(["router", "set", "--external-gateway", "public", "router1"]);
    const fip = await os(["floating", "ip", "create", "public", "--project", "k8s", "--port", vmPort, "-f", "value", "-c", "floating_ip_address"]);
    const group = (await os(["security", "group", "list", "--project", "k8s", "-f", "value", "-c", "ID"])).split("\n")[0]!;
    await os(["security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--remote-ip", LAB.externalCidr, group, "-c", "remote_ip_prefix"]);
    await waitFor("the floating IP in the kernel", 20_000, async () => (await exec("openstack", ["floating", "ip", "show", fip, "-f", "value", "-c", "status"], { env: env() })).stdout.trim() === "ACTIVE", 250);
    await os(["router", "show", "router1", "-c", "status", "-c", "external_gateway_info"]);
    await os(["floating", "ip", "show", fip, "-c", "fixed_ip_address", "-c", "status"]);
    say("On host-1 the router is a namespace: an interface per subnet, the gateway with the floating IP, NAT in its own nftables table");
    await shell("ip netns | grep seam-r", async () => (await run("ip", ["netns", "list"])).split("\n").filter((l) => l.startsWith("seam-r-")).join("\n") + "\n");
    say("The outside reaches the VM at its floating IP, and the VM reaches the outside");
    await shell(`ip netns exec external ping -c 3 ${fip}`, () => run("ip", ["netns", "exec", LAB.external, "ping", "-c", "3", fip]));
    await shell("seam lab exec vm1 -- ping -c 3 203.0.113.254", async () => (await vmExec("vm1", "ping -c 3 203.0.113.254")).output);
    if (keep) {
      process.stdout.write(`\nseam demo: the lab stays up (state in ${LAB.stateDir}); remove it with: seam lab down\n`);
      return 0;
    }
    return 0;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    process.stderr.write(`seam demo (lab): ${e.stderr || e.message}\n`);
    return 1;
  } finally {
    if (!keep) await down();
  }
}
