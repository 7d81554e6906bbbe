// The Kubernetes controller against a REAL Kubernetes 1.20 control plane
// (etcd, kube-apiserver, kube-scheduler, kube-controller-manager built from
// Debian's source package by scripts/build-kubernetes.sh), issue 11 part 1:
// namespaces get their network (the seam.io/network annotation, or their own
// from the pod pool), scheduled pods get their port before any kubelet asks,
// named after the pod and written back on it; a port deleted by hand, a
// missed event or a controller restart is repaired; what Seam made for a
// namespace goes with it, and nothing it did not make.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BUSYBOX_IMAGE } from "../src/lab/kubelet.ts";
import { kubernetesMissing, startControlPlane, type ControlPlane } from "../src/lab/kubernetes.ts";
import { PORT_ANNOTATION } from "../src/front/kubernetes/mapping.ts";
import { expectStatus, makeStore, startServer, type Json, type Store, type TestServer } from "./support/api.ts";

describe("the Kubernetes controller against a real Kubernetes", () => {
  let cp: ControlPlane;
  let store: Store;
  let s: TestServer | null = null;
  let subnetId = "";
  const LEASE = { leaseMs: 3000, renewDeadlineMs: 2000, retryMs: 300 };
  const serve = () => startServer(store.url, { kubernetes: { kubeconfig: cp.seamKubeconfig, podPool: "10.244.0.0/16", podPrefix: 24, resyncMs: 1000, leader: LEASE } });
  const boot = async () => {
    s = await serve();
  };
  // kubectl 1.20 reads a manifest from a file: a temp file keeps the test's manifests inline
  const applyYaml = (yaml: string) => {
    const d = mkdtempSync(join(tmpdir(), "seam-k8s-manifest-"));
    try {
      writeFileSync(join(d, "m.yaml"), yaml);
      return cp.kubectl("apply", "-f", join(d, "m.yaml"));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  };
  const pod = (ns: string, name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  nodeName: ${node}
  automountServiceAccountToken: false
  containers: [{name: c, image: ${BUSYBOX_IMAGE}, command: [sleep, "3600"], imagePullPolicy: Never}]
`;
  // A new namespace's default service account comes from the controller-manager a moment later; pods wait for it.
  const applyPod = async (ns: string, name: string, node: string) => {
    await waitFor(`namespace ${ns}'s service account`, 20_000, async () => {
      try {
        return cp.kubectl("get", "serviceaccount", "-n", ns, "default", "-o", "name").includes("default");
      } catch {
        return false;
      }
    });
    applyYaml(pod(ns, name, node));
  };
  const podUid = (ns: string, name: string) => JSON.parse(cp.kubectl("get", "pod", "-n", ns, name, "-o", "json")).metadata.uid as string;
  const podAnnotation = (ns: string, name: string) => JSON.parse(cp.kubectl("get", "pod", "-n", ns, name, "-o", "json")).metadata.annotations?.[PORT_ANNOTATION] as string | undefined;
  const portsOf = async (filter: string) => expectStatus(await s!.admin.get(`/v2.0/ports?${filter}`), 200).ports as Json[];
  const waitFor = async <T>(what: string, ms: number, probe: () => Promise<T | undefined | null | false>): Promise<T> => {
    const until = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v) return v;
      if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    const missing = kubernetesMissing();
    if (missing) throw new Error(`cannot run a real Kubernetes here: ${missing}`);
    cp = await startControlPlane();
    store = await makeStore("sqlite");
    // The network of seeds/001, in project k8s, with a VM on it first (.2 is the DHCP port's, .3 the VM's).
    const pre = await startServer(store.url);
    const net = expectStatus(await pre.as("k8s").post("/v2.0/networks", { network: { name: "seamless" } }), 201).network;
    subnetId = expectStatus(await pre.as("k8s").post("/v2.0/subnets", { subnet: { network_id: net.id, cidr: "192.168.100.0/24", ip_version: 4 } }), 201).subnet.id;
    const vm = expectStatus(await pre.admin.post("/v2.0/ports", { port: { network_id: net.id, project_id: "k8s", name: "vm", device_owner: "compute:nova", "binding:host_id": "host-1" } }), 201).port;
    assert.equal(vm.fixed_ips[0].ip_address, "192.168.100.3");
    await pre.close();
    await boot();
  });
  after(async () => {
    await s?.close();
    await cp?.stop();
    await store?.cleanup();
  });

  it("gives a pod scheduled in the annotated namespace its port on that network, before any kubelet asks: .4, named after the pod", async () => {
    applyYaml(`apiVersion: v1
kind: Namespace
metadata:
  name: seamless
  annotations: {seam.io/network: '{"project":"k8s","name":"seamless"}'}
`);
    await applyPod("seamless", "cont", "host-2");
    const uid = podUid("seamless", "cont");
    const [port] = await waitFor("the pod's port", 20_000, async () => {
      const found = await portsOf(`device_id=${uid}`);
      return found.length ? found : null;
    });
    assert.equal(port.name, "cont");
    assert.equal(port.device_owner, "compute:kubernetes");
    assert.equal(port["binding:host_id"], "host-2");
    assert.equal(port.project_id, "k8s");
    assert.deepEqual(port.fixed_ips, [{ subnet_id: subnetId, ip_address: "192.168.100.4" }], "the VM holds .3, the pod gets .4 (seeds/001)");
    const written = await waitFor("the pod's annotation", 10_000, async () => podAnnotation("seamless", "cont"));
    assert.deepEqual(JSON.parse(written), { id: port.id, network: port.network_id, address: "192.168.100.4" });
  });

  it("gives a namespace without the annotation a network of its own from the pod pool", async () => {
    applyYaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: plain}\n");
    await applyPod("plain", "p1", "host-1");
    const uid = podUid("plain", "p1");
    const [port] = await waitFor("p1's port", 20_000, async () => {
      const found = await portsOf(`device_id=${uid}`);
      return found.length ? found : null;
    });
    const net = expectStatus(await s!.admin.get(`/v2.0/networks/${port.network_id}`), 200).network;
    assert.equal(net.name, "k8s-plain");
    assert.equal(net.project_id, "k8s-plain");
    const [sub] = expectStatus(await s!.admin.get(`/v2.0/subnets?network_id=${net.id}`), 200).subnets;
    assert.equal(sub.cidr, "10.244.0.0/24");
    assert.match(port.fixed_ips[0].ip_address, /^10\.244\.0\./);
  });

  it("repairs a port deleted by hand, and removes the port of a deleted pod", async () => {
    const uid = podUid("seamless", "cont");
    const [before] = await portsOf(`device_id=${uid}`);
    expectStatus(await s!.admin.del(`/v2.0/ports/${before.id}`), 204);
    const [again] = await waitFor("the port made again", 10_000, async () => {
      const found = await portsOf(`device_id=${uid}`);
      return found.length ? found : null;
    });
    assert.notEqual(again.id, before.id);
    await waitFor("the annotation following it", 10_000, async () => podAnnotation("seamless", "cont")?.includes(again.id));
    // no kubelet runs here to confirm termination: delete at once, as a kubelet's confirmation would
    cp.kubectl("delete", "pod", "-n", "seamless", "cont", "--grace-period=0", "--force");
    await waitFor("the port gone with its pod", 10_000, async () => (await portsOf(`device_id=${uid}`)).length === 0);
  });

  it("catches up after a restart with pods created and deleted while it was down: ports equal pods", async () => {
    await s!.close();
    s = null;
    await applyPod("plain", "p2", "host-2");
    await applyPod("seamless", "cont2", "host-1");
    cp.kubectl("delete", "pod", "-n", "plain", "p1", "--grace-period=0", "--force");
    await boot();
    const pods = JSON.parse(cp.kubectl("get", "pods", "-A", "-o", "json")).items as Json[];
    const uids = pods.map((p) => p.metadata.uid as string).sort();
    await waitFor("ports equal to pods", 20_000, async () => {
      const ports = await portsOf("device_owner=compute:kubernetes");
      return JSON.stringify(ports.map((p) => p.device_id).sort()) === JSON.stringify(uids);
    });
  });

  it("runs on two servers with one leading: a holder that stops renewing is replaced, and a leader that stops hands over", async () => {
    const servers = [s!, await serve()];
    try {
      const leaders = () => servers.filter((x) => x.kubernetes!.elector.isLeader);
      await waitFor("exactly one leader", 10_000, async () => leaders().length === 1);
      // Another holder takes the Lease and goes silent: both stop acting, then one takes it back once it expires.
      const lease = JSON.parse(cp.kubectl("get", "lease", "-n", "kube-system", "seam-controller", "-o", "json"));
      delete lease.metadata.resourceVersion;
      delete lease.metadata.managedFields;
      lease.spec.holderIdentity = "ghost";
      lease.spec.renewTime = new Date().toISOString().replace("Z", "000Z"); // a MicroTime
      const d = mkdtempSync(join(tmpdir(), "seam-k8s-lease-"));
      try {
        writeFileSync(join(d, "lease.json"), JSON.stringify(lease));
        cp.kubectl("replace", "-f", join(d, "lease.json"));
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
      await waitFor("no leader while the ghost holds it", 5_000, async () => leaders().length === 0);
      const t0 = Date.now();
      await waitFor("a leader again once the ghost's lease expired", 10_000, async () => leaders().length === 1);
      assert.ok(Date.now() - t0 < 6000, `taken back ${Date.now() - t0} ms after the leaders stopped`);
      assert.notEqual(JSON.parse(cp.kubectl("get", "lease", "-n", "kube-system", "seam-controller", "-o", "json")).spec.holderIdentity, "ghost");
      // The leader stops: the other leads at once (the Lease is given up), and makes the next pod's port.
      const [leader] = leaders();
      const other = servers.find((x) => x !== leader)!;
      await leader!.close();
      await waitFor("the other server leading", 5_000, async () => other.kubernetes!.elector.isLeader);
      await applyPod("seamless", "after-handover", "host-1");
      const uid = podUid("seamless", "after-handover");
      await waitFor("its port, from the new leader", 10_000, async () => (await other.admin.get(`/v2.0/ports?device_id=${uid}`)).body.ports.length === 1);
      s = other; // the next case goes on with the one still running
    } finally {
      for (const x of servers) if (x !== s) await x.close().catch(() => undefined);
    }
  });

  it("removes what it made for a namespace with it, and nothing it did not make", async () => {
    const [own] = expectStatus(await s!.admin.get("/v2.0/networks?name=k8s-plain"), 200).networks;
    cp.kubectl("delete", "pod", "-n", "plain", "--all", "--grace-period=0", "--force");
    cp.kubectl("delete", "namespace", "plain", "--wait=true", "--timeout=60s");
    await waitFor("the namespace's network gone", 20_000, async () => (await s!.admin.get(`/v2.0/networks/${own.id}`)).status === 404);
    cp.kubectl("delete", "pod", "-n", "seamless", "--all", "--grace-period=0", "--force");
    cp.kubectl("delete", "namespace", "seamless", "--wait=true", "--timeout=60s");
    await waitFor("the pods' ports gone", 20_000, async () => (await portsOf("device_owner=compute:kubernetes")).length === 0);
    const kept = expectStatus(await s!.admin.get("/v2.0/networks?name=seamless"), 200).networks;
    assert.equal(kept.length, 1, "the annotated namespace's network is not the controller's to remove");
    assert.equal((await portsOf("name=vm")).length, 1, "nor is the VM's port");
  });
});
