// What the Kubernetes controller wants for each object, as pure functions.
import assert from "node:assert/strict";
import { it } from "node:test";
import { namespaceSubnet, placementOf, podPortOf, portAnnotation } from "../src/front/kubernetes/mapping.ts";
import { parseCidr } from "../src/net/address.ts";

it("places a namespace on the network its annotation names, on its own otherwise, and says why not when the annotation is wrong", () => {
  assert.deepEqual(placementOf({ metadata: { name: "seamless", annotations: { "seam.io/network": '{"project":"k8s","name":"seamless"}' } } }), { kind: "named", project: "k8s", network: "seamless" });
  assert.deepEqual(placementOf({ metadata: { name: "web" } }), { kind: "own", project: "k8s-web", network: "k8s-web" });
  assert.equal(placementOf({ metadata: { name: "x", annotations: { "seam.io/network": "seamless" } } }).kind, "invalid");
  assert.equal(placementOf({ metadata: { name: "x", annotations: { "seam.io/network": '{"name":"seamless"}' } } }).kind, "invalid");
  assert.equal(placementOf({ metadata: { name: "x", annotations: { "seam.io/network": "[1]" } } }).kind, "invalid");
});

it("wants a port for a pod once it is scheduled, and none for host-network, finished or unscheduled pods", () => {
  const base = { metadata: { name: "cont", namespace: "seamless", uid: "u-1" }, spec: { nodeName: "host-2" } };
  assert.deepEqual(podPortOf(base), { uid: "u-1", namespace: "seamless", name: "cont", node: "host-2" });
  assert.equal(podPortOf({ ...base, spec: {} }), null, "not scheduled yet");
  assert.equal(podPortOf({ ...base, spec: { nodeName: "h", hostNetwork: true } }), null);
  assert.equal(podPortOf({ ...base, status: { phase: "Succeeded" } }), null);
  assert.equal(podPortOf({ ...base, status: { phase: "Failed" } }), null);
  assert.notEqual(podPortOf({ ...base, status: { phase: "Running" } }), null);
  assert.equal(podPortOf({ spec: { nodeName: "h" } }), null);
});

it("hands each namespace its block of the pod pool, and none past its end", () => {
  const pool = parseCidr("10.244.0.0/16")!;
  const at = (i: number, prefix = 24) => namespaceSubnet({ base: pool.network, bits: pool.prefixLen, version: 4 }, prefix, i);
  assert.equal(at(0)!.cidr, parseCidr("10.244.0.0/24")!.network);
  assert.equal(at(255)!.cidr, parseCidr("10.244.255.0/24")!.network);
  assert.equal(at(256), null);
  assert.equal(at(0, 8), null, "a block larger than the pool");
  assert.equal(portAnnotation({ id: "p", network: "n", address: "10.0.0.4" }), '{"id":"p","network":"n","address":"10.0.0.4"}');
});

it("maps a ClusterIP Service and its Endpoints to a VIP with backends per port, naming each pod's port", async () => {
  const { wantedService } = await import("../src/front/kubernetes/services.ts");
  const svc = { metadata: { name: "web", namespace: "shop", uid: "u1" }, spec: { type: "ClusterIP", clusterIP: "10.96.0.20", ports: [{ name: "http", protocol: "TCP", port: 80 }, { name: "dns", protocol: "UDP", port: 53 }] } };
  const eps = {
    metadata: { name: "web", namespace: "shop" },
    subsets: [
      { addresses: [{ ip: "10.244.0.5", targetRef: { kind: "Pod", uid: "pod-b" } }, { ip: "10.244.0.4", targetRef: { kind: "Pod", uid: "pod-a" } }], ports: [{ name: "http", protocol: "TCP", port: 8080 }, { name: "dns", protocol: "UDP", port: 5353 }] },
      { addresses: [{ ip: "192.0.2.7" }], ports: [{ name: "http", protocol: "TCP", port: 80 }] },
    ],
  };
  const ports = new Map([["pod-a", "port-a"], ["pod-b", "port-b"]]);
  assert.deepEqual(wantedService(svc, eps, (uid) => ports.get(uid) ?? null), {
    uid: "u1", namespace: "shop", name: "web", vip: "10.96.0.20",
    ports: [
      { name: "http", protocol: "tcp", port: 80, targets: [{ ip: "10.244.0.4", port: 8080, portId: "port-a" }, { ip: "10.244.0.5", port: 8080, portId: "port-b" }, { ip: "192.0.2.7", port: 80, portId: null }] },
      { name: "dns", protocol: "udp", port: 53, targets: [{ ip: "10.244.0.4", port: 5353, portId: "port-a" }, { ip: "10.244.0.5", port: 5353, portId: "port-b" }] },
    ],
  });
  assert.deepEqual(wantedService(svc, undefined, () => null)?.ports.map((p) => p.targets.length), [0, 0], "no Endpoints yet: a VIP with no backend, which refuses");
  assert.equal(wantedService({ ...svc, spec: { ...svc.spec, clusterIP: "None" } }, eps, () => null), null, "a headless Service has no VIP");
  assert.equal(wantedService({ ...svc, spec: { type: "ExternalName" } }, eps, () => null), null);
});
