// Scenario S1 through a real Kubernetes (issue 11): `lab up --kubernetes`
// runs the control plane, Seam's controller pointed at it, and on every lab
// host a kubelet with containerd whose only CNI plugin is seam-cni. A VM
// (qemu) on host-1 gets .3; `kubectl apply` of pod `cont` in the annotated
// namespace, scheduled on host-2, gets .4 and shows in the port list as
// `cont`; default groups keep VM and pod apart until remote-group rules admit
// each other; deleting the pod takes its port, interface and namespace away.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { run } from "../src/os/exec.ts";
import { BUSYBOX_IMAGE, labKubectl } from "../src/lab/kubelet.ts";
import { kubernetesMissing } from "../src/lab/kubernetes.ts";
import { down, namespaces, readState, startServer, stopServer, waitFor } from "../src/lab/lab.ts";
import { bootVm } from "../src/lab/vm.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, pingFromVm, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
type Port = { id: string; name: string; status: string; device_id: string; device_owner: string; "binding:host_id": string; fixed_ips: { ip_address: string }[] };
type Pod = { metadata: { uid: string; annotations?: Record<string, string> }; spec: { nodeName?: string }; status: { phase: string; podIP?: string } };

const missing = !isRoot ? "needs root for namespaces" : kubernetesMissing();

describe("scenario S1 through Kubernetes: a VM and a kubelet's pod on one network", { skip: missing ?? false, timeout: 900_000 }, () => {
  let dir: string;
  let net: string;
  let k8s: string;
  let vmSg: string;
  let pod: Pod;
  const podExec = (cmd: string) => exec(`${ROOT}/bin/seam`, ["lab", "exec", "seamless/cont", "--", cmd], { timeout: 60_000 }).then(() => true, () => false);
  const apply = async (name: string, manifest: object) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(manifest));
    await labKubectl(["apply", "-f", f]);
  };

  const podSpec = (name: string, namespace: string, host?: string) => ({
    apiVersion: "v1", kind: "Pod", metadata: { name, namespace },
    spec: {
      ...(host ? { nodeSelector: { "kubernetes.io/hostname": host } } : {}), terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image: BUSYBOX_IMAGE, imagePullPolicy: "Never", command: ["sleep", "1000000"] }],
    },
  });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "seam-lab-k8s-"));
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2", "--kubernetes"], { timeout: 300_000 });
    k8s = await projectId("k8s");
    ({ network: { id: net } } = await labApi("POST", "/v2.0/networks", { network: { name: "seamless", project_id: k8s } }));
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: net, project_id: k8s, cidr: "192.168.100.0/24", ip_version: 4 } });
  });
  after(async () => {
    await down();
    rmSync(dir, { recursive: true, force: true });
  });

  it("has a Ready node on every lab host, named as the host, at its underlay address", async () => {
    const { stdout } = await exec(`${ROOT}/bin/seam`, ["lab", "kubectl", "get", "nodes", "-o", "json"]);
    const nodes = (JSON.parse(stdout) as { items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } }[] }).items;
    assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), ["host-1", "host-2"]);
    assert.deepEqual(nodes.map((n) => n.status.addresses.find((a) => a.type === "InternalIP")?.address).sort(), ["172.31.0.11", "172.31.0.12"]);
  });

  it("gives the VM on host-1 .3 (.1 the gateway, .2 the DHCP port)", async () => {
    ({ security_group: { id: vmSg } } = await labApi("POST", "/v2.0/security-groups", { security_group: { name: "vms", project_id: k8s } }));
    const { port } = await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: net, project_id: k8s, name: "vm1", device_owner: "compute:nova", device_id: "vm1", "binding:host_id": "host-1", security_groups: [vmSg] } });
    assert.equal(port.fixed_ips[0]!.ip_address, "192.168.100.3");
    await bootVm("vm1", "host-1", port.id);
  });

  it("gives pod cont, applied with kubectl and scheduled on host-2, .4 and a port named cont", async () => {
    await apply("ns", { apiVersion: "v1", kind: "Namespace", metadata: { name: "seamless", annotations: { "seam.io/network": JSON.stringify({ project: "k8s", name: "seamless" }) } } });
    await waitFor("the namespace's default service account", 30_000, async () => (await labKubectl(["get", "serviceaccount", "default", "-n", "seamless", "-o", "name"]).catch(() => "")).trim());
    await apply("cont", podSpec("cont", "seamless", "host-2"));
    pod = await waitFor("pod cont Running", 120_000, async () => {
      const p = JSON.parse(await labKubectl(["get", "pod", "cont", "-n", "seamless", "-o", "json"])) as Pod;
      return p.status.phase === "Running" && p.status.podIP ? p : null;
    }, 500);
    assert.equal(pod.spec.nodeName, "host-2");
    assert.equal(pod.status.podIP, "192.168.100.4", "the VM holds .3");
    assert.match(await labKubectl(["get", "pod", "cont", "-n", "seamless", "-o", "wide"]), /cont\s+1\/1\s+Running\s+\d+\s+\S+\s+192\.168\.100\.4\s+host-2/);
    const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net}&name=cont`);
    assert.equal(ports.length, 1, "one port, the controller's, which the CNI ADD plugged");
    const [port] = ports;
    assert.deepEqual([port!.fixed_ips[0]!.ip_address, port!.device_owner, port!.device_id, port!["binding:host_id"], port!.status], ["192.168.100.4", "compute:kubernetes", pod.metadata.uid, "host-2", "ACTIVE"]);
    const annotation = JSON.parse(pod.metadata.annotations?.["seam.io/port"] ?? "{}") as { id?: string };
    assert.equal(annotation.id, port!.id);
    const { stdout: mtu } = await exec(`${ROOT}/bin/seam`, ["lab", "exec", "seamless/cont", "--", "cat /sys/class/net/eth0/mtu"]);
    assert.equal(mtu.trim(), "1450");
  });

  it("keeps the VM and the pod apart under the default groups, and lets them talk after remote-group rules", async () => {
    assert.equal(await podExec("ping -c 2 -W 1 192.168.100.3"), false, "the VM's group admits nobody yet");
    assert.equal(await pingFromVm("vm1", "192.168.100.4"), false, "the pod's default group admits only its own members");
    const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${k8s}`);
    const dflt = security_groups[0]!.id;
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: vmSg, direction: "ingress", ethertype: "IPv4", remote_group_id: dflt } });
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: dflt, direction: "ingress", ethertype: "IPv4", remote_group_id: vmSg } });
    await waitFor("the pod to ping the VM", 10_000, () => podExec("ping -c 1 -W 1 192.168.100.3"), 300);
    assert.ok(await podExec("ping -c 3 -W 1 192.168.100.3"), "the pod pings the VM");
    assert.ok(await pingFromVm("vm1", "192.168.100.4", 3), "the VM pings the pod");
  });

  it("takes the pod's port, interface and network namespace away when the pod is deleted", async () => {
    const netnsBefore = (await namespaces()).filter((n) => n.startsWith("cni-"));
    assert.equal(netnsBefore.length, 1, "containerd made one network namespace, the pod's");
    await labKubectl(["delete", "pod", "cont", "-n", "seamless", "--timeout=60s"]);
    await waitFor("the pod's port to go", 20_000, async () => (await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net}&name=cont`)).ports.length === 0);
    const links = (JSON.parse(await run("ip", ["-n", "host-2", "-j", "link", "show"])) as { ifname: string }[]).map((l) => l.ifname);
    assert.deepEqual(links.filter((n) => n.startsWith("tap")), [], "no veth left on host-2");
    assert.deepEqual((await namespaces()).filter((n) => n.startsWith("cni-")), [], "no pod network namespace left");
  });

  const namespace = async (name: string) => {
    await apply(`ns-${name}`, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    await waitFor(`namespace ${name}'s default service account`, 30_000, async () => (await labKubectl(["get", "serviceaccount", "default", "-n", name, "-o", "name"]).catch(() => "")).trim());
  };
  const running = (ns: string, names: readonly string[], timeoutMs = 120_000) =>
    waitFor(`pods ${names.join(", ")} in ${ns} Running`, timeoutMs, async () => {
      const pods = (JSON.parse(await labKubectl(["get", "pods", "-n", ns, "-o", "json"])) as { items: (Pod & { metadata: { name: string } })[] }).items;
      const want = pods.filter((p) => names.includes(p.metadata.name));
      return want.length === names.length && want.every((p) => p.status.phase === "Running" && p.status.podIP) ? want : null;
    }, 500);
  const pingFromPod = (ns: string, pod: string, ip: string) =>
    labKubectl(["exec", "-n", ns, pod, "--", "ping", "-c", "2", "-W", "1", ip], 30_000).then(() => true, () => false);

  it("F21: puts namespaces in their own projects and networks, isolated until a router and a rule say otherwise", async () => {
    await namespace("team-a");
    await namespace("team-b");
    await apply("a1", podSpec("a1", "team-a", "host-1"));
    await apply("b1", podSpec("b1", "team-b", "host-2"));
    const [a1] = await running("team-a", ["a1"]);
    const [b1] = await running("team-b", ["b1"]);
    const [aNet] = (await labApi<{ networks: { id: string; project_id: string; subnets: string[] }[] }>("GET", "/v2.0/networks?name=k8s-team-a")).networks;
    const [bNet] = (await labApi<{ networks: { id: string; project_id: string; subnets: string[] }[] }>("GET", "/v2.0/networks?name=k8s-team-b")).networks;
    assert.ok(aNet && bNet, "each namespace has its own network");
    assert.notEqual(aNet.project_id, bNet.project_id, "in its own project");
    assert.equal(await pingFromPod("team-a", "a1", b1!.status.podIP!), false, "no route between the namespaces");
    assert.equal(await pingFromVm("vm1", a1!.status.podIP!), false, "nor from another project's VM");
    const { router } = await labApi("POST", "/v2.0/routers", { router: { name: "teams" } });
    for (const n of [aNet, bNet]) await labApi("PUT", `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: n.subnets[0] });
    assert.equal(await pingFromPod("team-a", "a1", b1!.status.podIP!), false, "routed now, but team-b's default group admits only its own");
    const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${bNet.project_id}`);
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: security_groups[0]!.id, direction: "ingress", ethertype: "IPv4", remote_ip_prefix: `${a1!.status.podIP}/32` } });
    await waitFor("a1 to reach b1 through the router", 15_000, () => pingFromPod("team-a", "a1", b1!.status.podIP!), 300);
    assert.equal(await pingFromPod("team-b", "b1", a1!.status.podIP!), false, "team-a's group still admits only its own");
  });

  it("keeps ports equal to pods across a controller restart while pods come and go, and leaves nothing of a deleted namespace", async () => {
    await namespace("churn");
    const names = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `p${from + i}`);
    await apply("churn-1", { apiVersion: "v1", kind: "List", items: names(0, 6).map((n) => podSpec(n, "churn")) });
    const state = readState();
    await stopServer(state);
    await labKubectl(["delete", "pod", "-n", "churn", "p0", "p1", "--grace-period=1", "--wait=false"]);
    await apply("churn-2", { apiVersion: "v1", kind: "List", items: names(6, 8).map((n) => podSpec(n, "churn")) });
    await startServer(state);
    const pods = await running("churn", names(2, 8), 240_000);
    await waitFor("p0 and p1 gone", 60_000, async () => !/\bp[01]\b/.test(await labKubectl(["get", "pods", "-n", "churn", "-o", "name"])));
    const [net] = (await labApi<{ networks: { id: string }[] }>("GET", "/v2.0/networks?name=k8s-churn")).networks;
    const ports = () => labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net!.id}&device_owner=compute:kubernetes`).then((r) => r.ports);
    const byPod = (ps: Port[]) => ps.map((p) => `${p.name} ${p.device_id} ${p.fixed_ips[0]!.ip_address}`).sort();
    await waitFor("a port for each pod and no other", 30_000, async () => byPod(await ports()).join() === byPod(pods.map((p) => ({ name: (p.metadata as { name: string }).name, device_id: p.metadata.uid, fixed_ips: [{ ip_address: p.status.podIP! }] }) as Port)).join());
    assert.ok((await ports()).every((p) => p.status === "ACTIVE"));
    await labKubectl(["delete", "namespace", "churn", "--timeout=120s"], 150_000);
    await waitFor("the namespace's network to go", 30_000, async () => (await labApi<{ networks: unknown[] }>("GET", "/v2.0/networks?name=k8s-churn")).networks.length === 0);
    const left = (await labApi<{ ports: Port[] }>("GET", "/v2.0/ports?device_owner=compute:kubernetes")).ports.filter((p) => names(0, 8).includes(p.name));
    assert.deepEqual(left, [], "no port of the namespace's pods is left");
  });
});
