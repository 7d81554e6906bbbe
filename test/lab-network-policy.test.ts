// NetworkPolicy through a real Kubernetes (issue 11), checked by the traffic:
// a VM (qemu) and pods of two namespaces on one network of project k8s,
// whose default group admits them all to each other. A deny-all ingress
// policy blocks pod->pod and VM->pod; an allow policy for the server pod
// re-admits on port 8080 exactly a pod selector, a namespace selector and an
// ipBlock with the VM's address, and nothing else (another pod, another port,
// the pods the deny-all still isolates); with the policies deleted,
// everything is admitted again and nothing of them is left in the model.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { BUSYBOX_IMAGE, labKubectl } from "../src/lab/kubelet.ts";
import { kubernetesMissing } from "../src/lab/kubernetes.ts";
import { down, waitFor } from "../src/lab/lab.ts";
import { bootVm, vmExec } from "../src/lab/vm.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
const missing = !isRoot ? "needs root for namespaces" : kubernetesMissing();
const NETWORK = JSON.stringify({ project: "k8s", name: "pods" });

/** A pod answering its own name over HTTP on 8080 and 9090, pinned to a host. */
const pod = (ns: string, name: string, app: string, node: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: ns, labels: { app } },
  spec: {
    nodeName: node,
    terminationGracePeriodSeconds: 1,
    containers: [{
      name: "c", image: BUSYBOX_IMAGE, imagePullPolicy: "Never",
      command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -p 9090 -h /www && exec httpd -f -p 8080 -h /www"],
    }],
  },
});

describe("NetworkPolicy: pods and a VM, admitted by what the policies say and nothing else", { skip: missing ?? false, timeout: 900_000 }, () => {
  let dir: string;
  let k8s: string;
  let vmIp = "";
  const ip: Record<string, string> = {};
  const apply = async (name: string, manifest: object) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(manifest));
    await labKubectl(["apply", "-f", f]);
  };
  /** What `ns/name` gets from `to:port`: the answering pod's name, or "" when nothing answers within 2 s. */
  const fromPod = (ns: string, name: string, to: string, port = 8080) =>
    labKubectl(["exec", "-n", ns, name, "--", "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${to} ${port} | tail -n 1`], 30_000).then((o) => o.trim(), () => "");
  const fromVm = async (to: string, port = 8080) => {
    const r = await vmExec("vm1", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${to} ${port} > /tmp/body 2>&1; tail -n 1 /tmp/body`, 30_000);
    return /can't connect|timed out/.test(r.output) ? "" : r.output.trim();
  };
  /** Who reaches whom now, as one comparable table. */
  const reach = async () => ({
    "client->server": await fromPod("np", "client", ip.server!),
    "stranger->server": await fromPod("np", "stranger", ip.server!),
    "probe->server": await fromPod("np-probe", "probe", ip.server!),
    "vm->server": await fromVm(ip.server!),
    "vm->server:9090": await fromVm(ip.server!, 9090),
    "vm->client": await fromVm(ip.client!),
    "server->client": await fromPod("np", "server", ip.client!),
  });
  const everyone = { "client->server": "server", "stranger->server": "server", "probe->server": "server", "vm->server": "server", "vm->server:9090": "server", "vm->client": "client", "server->client": "client" };
  /** Waits until the table is `want` (the agents program a change within a second; this allows 30), saying the whole table if not. */
  const expectReach = async (what: string, want: Record<string, string>) => {
    let last: Record<string, string> = {};
    await waitFor(what, 30_000, async () => JSON.stringify((last = await reach())) === JSON.stringify(want), 200).catch(() => undefined);
    assert.deepEqual(last, want, what);
  };
  const policyGroups = async () => (await labApi<{ security_groups: { id: string; name: string }[] }>("GET", "/v2.0/security-groups?tags=seam-k8s")).security_groups;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "seam-lab-np-"));
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2", "--kubernetes"], { timeout: 300_000 });
    k8s = await projectId("k8s");
  });
  after(async () => {
    if (process.env.SEAM_KEEP_LAB) return;
    await down();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts with the project's default group admitting the VM and every pod to each other", async () => {
    const { network } = await labApi("POST", "/v2.0/networks", { network: { name: "pods", project_id: k8s } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: k8s, cidr: "192.168.100.0/24", ip_version: 4 } });
    const { port } = await labApi<{ port: { id: string; fixed_ips: { ip_address: string }[] } }>("POST", "/v2.0/ports", { port: { network_id: network.id, project_id: k8s, name: "vm1", device_owner: "compute:nova", device_id: "vm1", "binding:host_id": "host-1" } });
    vmIp = port.fixed_ips[0]!.ip_address;
    const vm = bootVm("vm1", "host-1", port.id);
    await apply("ns", { apiVersion: "v1", kind: "Namespace", metadata: { name: "np", annotations: { "seam.io/network": NETWORK } } });
    await apply("ns-probe", { apiVersion: "v1", kind: "Namespace", metadata: { name: "np-probe", labels: { team: "probe" }, annotations: { "seam.io/network": NETWORK } } });
    for (const ns of ["np", "np-probe"]) await waitFor(`namespace ${ns}'s service account`, 30_000, async () => (await labKubectl(["get", "serviceaccount", "default", "-n", ns, "-o", "name"]).catch(() => "")).trim());
    await apply("server", pod("np", "server", "server", "host-2"));
    await apply("stranger", pod("np", "stranger", "stranger", "host-2"));
    await apply("client", pod("np", "client", "client", "host-1"));
    await apply("probe", pod("np-probe", "probe", "probe", "host-1"));
    for (const [ns, name] of [["np", "server"], ["np", "stranger"], ["np", "client"], ["np-probe", "probe"]] as const) {
      ip[name] = await waitFor(`pod ${name} running`, 120_000, async () => {
        const o = JSON.parse(await labKubectl(["get", "pod", name, "-n", ns, "-o", "json"])) as { status?: { phase?: string; podIP?: string } };
        return o.status?.phase === "Running" ? o.status.podIP : null;
      }, 500);
    }
    await vm;
    await expectReach("everyone reaches everyone", everyone);
  });

  it("blocks pod->pod and VM->pod with a deny-all ingress policy, on the same host and across hosts", async () => {
    await apply("deny", { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "deny-all", namespace: "np" }, spec: { podSelector: {}, policyTypes: ["Ingress"] } });
    await expectReach("nothing reaches a pod of np", { "client->server": "", "stranger->server": "", "probe->server": "", "vm->server": "", "vm->server:9090": "", "vm->client": "", "server->client": "" });
    const groups = await policyGroups();
    assert.deepEqual(groups.map((g) => g.name), ["k8s-np-np-deny-all"]);
  });

  it("re-admits exactly a pod selector, a namespace selector and an ipBlock with the VM's address, on the port the policy names", async () => {
    await apply("allow", {
      apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "server-in", namespace: "np" },
      spec: {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [{
          from: [{ podSelector: { matchLabels: { app: "client" } } }, { namespaceSelector: { matchLabels: { team: "probe" } } }, { ipBlock: { cidr: `${vmIp}/32` } }],
          ports: [{ protocol: "TCP", port: 8080 }],
        }],
      },
    });
    await expectReach("the three peers reach the server on 8080, and nothing else changed", { ...everyone, "stranger->server": "", "vm->server:9090": "", "vm->client": "", "server->client": "" });
    // the server's own egress is not isolated: it still reaches what admits it (the VM, whose default group does)
    const probe = await labKubectl(["exec", "-n", "np", "server", "--", "sh", "-c", `ping -c 1 -W 2 ${vmIp} >/dev/null && echo ok`], 30_000).catch(() => "");
    assert.equal(probe.trim(), "ok");
  });

  it("admits everything again once the policies are deleted, and leaves none of their groups", async () => {
    await labKubectl(["delete", "networkpolicy", "-n", "np", "--all"]);
    await expectReach("everyone reaches everyone again", everyone);
    await waitFor("the policies' groups to go", 10_000, async () => (await policyGroups()).length === 0);
    const { ports } = await labApi<{ ports: { name: string; "seam:policy": unknown }[] }>("GET", `/v2.0/ports?device_owner=compute:kubernetes`);
    assert.deepEqual(ports.filter((p) => p["seam:policy"] !== null).map((p) => p.name), [], "no port is isolated or a peer member any more");
  });
});
