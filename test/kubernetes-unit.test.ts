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
