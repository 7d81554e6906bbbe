// The southbound over real HTTP: registration and liveness as Neutron's agent
// list shows them, port status from agent reports, Nova's external events, and
// the intent watch resuming after a disconnect.
import assert from "node:assert/strict";
import { createServer, type Server as HttpServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { defaultConfig } from "../src/core/service/model.ts";
import type { IntentMessage } from "../src/contract/southbound.ts";
import { SouthboundClient } from "../src/agent/southbound-client.ts";
import { NovaNotifier } from "../src/front/neutron/nova-notifier.ts";
import { expectStatus, listen, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

describe("southbound", () => {
  let store: Store;
  let s: TestServer;
  let base: string;
  let nova: HttpServer;
  const novaEvents: { name: string; server_uuid: string; tag: string; status: string }[] = [];
  let novaToken = "";
  let net: string;

  before(async () => {
    nova = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        novaToken = String(req.headers["x-auth-token"] ?? "");
        if (req.url === "/v2.1/os-server-external-events") novaEvents.push(...JSON.parse(body).events);
        res.writeHead(200, { "content-type": "application/json" }).end(body);
      });
    });
    await new Promise<void>((r) => nova.listen(0, "127.0.0.1", r));
    const novaUrl = `http://127.0.0.1:${(nova.address() as { port: number }).port}/v2.1`;
    store = await makeStore("sqlite");
    s = await startServer(store.url, { modelConfig: { ...defaultConfig, agentDownTimeSec: 1, podPortWaitSec: 0.5 }, novaUrl, novaToken: "nova-secret" });
    base = await listen(s);
    net = expectStatus(await s.admin.post("/v2.0/networks", { network: { name: "n" } }), 201).network.id;
    expectStatus(await s.admin.post("/v2.0/subnets", { subnet: { network_id: net, cidr: "10.1.0.0/24", ip_version: 4 } }), 201);
  });
  after(async () => {
    await s.close();
    await store.cleanup();
    await new Promise((r) => nova.close(r));
  });

  const agent = (host: string) => new SouthboundClient(base, host, { kind: "noauth" });

  it("registers agents and lists them alive, then not alive without heartbeats", async () => {
    await agent("h1").register({ vtep: "192.0.2.1", roles: ["compute"] });
    await agent("h2").register({ vtep: "192.0.2.2", roles: ["compute", "network"] });
    const { agents } = expectStatus(await s.admin.get("/v2.0/agents"), 200);
    assert.deepEqual(agents.map((a: { host: string; alive: boolean }) => [a.host, a.alive]).sort(), [["h1", true], ["h2", true]]);
    const h2 = agents.find((a: { host: string }) => a.host === "h2");
    assert.equal(h2.agent_type, "Seam agent");
    assert.deepEqual(h2.configurations.roles, ["compute", "network"]);
    assert.equal(h2.configurations.tunneling_ip, "192.0.2.2");
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(await agent("h1").heartbeat(), true);
    const later = expectStatus(await s.admin.get("/v2.0/agents?host=h2"), 200).agents;
    assert.equal(later[0].alive, false, "no heartbeat for longer than the down time");
    assert.equal(expectStatus(await s.admin.get("/v2.0/agents?host=h1"), 200).agents[0].alive, true, "h1 just beat");
    assert.equal(await agent("nobody").heartbeat(), false, "an unknown host is told to register");
  });

  it("refuses bad registrations and non-admin callers", async () => {
    await assert.rejects(agent("h3").register({ vtep: "not-an-ip" }), /400/);
    await assert.rejects(agent("h3").register({ vtep: "192.0.2.1" }), /409.*already used by the agent of host h1/);
    await assert.rejects(agent("h3").register({ vtep: "192.0.2.3", roles: ["router"] }), /400/);
    const res = await fetch(`${base}/southbound/v1/hosts/h1/intent`, { headers: { "x-project-id": "p", "x-roles": "member" } });
    assert.equal(res.status, 403);
    assert.deepEqual(expectStatus(await s.as("p").get("/v2.0/agents"), 200).agents, [], "members see no agents");
  });

  it("turns a port ACTIVE when its host reports it plugged, and tells Nova", async () => {
    const port = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net, device_owner: "compute:nova", device_id: "server-1", "binding:host_id": "h1" } }), 201).port;
    assert.equal(port.status, "DOWN");
    assert.equal(port["binding:vif_type"], "tap");
    assert.equal(port["binding:vif_details"].port_filter, true);
    await agent("h2").reportPorts([port.id], []);
    assert.equal(expectStatus(await s.admin.get(`/v2.0/ports/${port.id}`), 200).port.status, "DOWN", "another host cannot plug it");
    await agent("h1").reportPorts([port.id], []);
    assert.equal(expectStatus(await s.admin.get(`/v2.0/ports/${port.id}`), 200).port.status, "ACTIVE");
    await agent("h1").reportPorts([], [port.id]);
    assert.equal(expectStatus(await s.admin.get(`/v2.0/ports/${port.id}`), 200).port.status, "DOWN");
    await agent("h1").reportPorts([port.id], []);
    expectStatus(await s.admin.put(`/v2.0/ports/${port.id}`, { port: { "binding:host_id": "h2" } }), 200);
    assert.equal(expectStatus(await s.admin.get(`/v2.0/ports/${port.id}`), 200).port.status, "DOWN", "moved: down until the new host plugs it");
    expectStatus(await s.admin.del(`/v2.0/ports/${port.id}`), 204);
    const k8s = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net, device_owner: "compute:kubernetes", device_id: "pod-uid", "binding:host_id": "h1" } }), 201).port;
    await agent("h1").reportPorts([k8s.id], []);
    const want = [
      ["network-vif-plugged", "server-1", port.id],
      ["network-vif-unplugged", "server-1", port.id],
      ["network-vif-plugged", "server-1", port.id],
      ["network-vif-unplugged", "server-1", port.id],
      ["network-vif-deleted", "server-1", port.id],
    ];
    const deadline = Date.now() + 5000;
    while (novaEvents.length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(novaEvents.map((e) => [e.name, e.server_uuid, e.tag]), want, "pods (compute:kubernetes) are not Nova's business");
    assert.ok(novaEvents.every((e) => e.status === "completed"));
    assert.equal(novaToken, "nova-secret");
  });

  it("hands a pod the port the Kubernetes controller made, when the node's CNI config names no network", async () => {
    const other = expectStatus(await s.admin.post("/v2.0/networks", { network: { name: "pods" } }), 201).network.id;
    expectStatus(await s.admin.post("/v2.0/subnets", { subnet: { network_id: other, cidr: "10.2.0.0/24", ip_version: 4 } }), 201);
    const made = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: other, name: "p1", device_owner: "compute:kubernetes", device_id: "uid-p1" } }), 201).port;
    const got = await agent("h1").attach({ containerId: "sandbox-1", pod: { namespace: "ns", name: "p1", uid: "uid-p1" } });
    assert.deepEqual(got, { port: made.id, network: other }, "the controller's port, on the network it chose");
    assert.equal(expectStatus(await s.admin.get(`/v2.0/ports/${made.id}`), 200).port["binding:host_id"], "h1", "bound to the host that asked");
    const t0 = Date.now();
    await assert.rejects(agent("h1").attach({ containerId: "sandbox-2", pod: { namespace: "ns", name: "p2", uid: "uid-p2" } }), /503 pod ns\/p2 has no port/);
    assert.ok(Date.now() - t0 >= 450, "it waited for the controller first");
    await assert.rejects(agent("h1").attach({ containerId: "sandbox-3" }), /400/, "a container that is not a pod must name its network");
  });

  it("streams the intent, and resumes after a disconnect with only what changed", async () => {
    const p1 = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net, "binding:host_id": "h1" } }), 201).port;
    const got: IntentMessage[] = [];
    const abort = new AbortController();
    const c = agent("h1");
    const watching = c.watch(undefined, (m) => got.push(m), abort.signal);
    const waitFor = async (pred: () => boolean) => {
      const until = Date.now() + 5000;
      while (!pred() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(pred(), JSON.stringify(got));
    };
    await waitFor(() => got.length > 0);
    assert.equal(got[0]!.type, "SNAPSHOT");
    assert.ok(Object.keys((got[0] as { items: object }).items).includes(`port/${p1.id}`));
    const p2 = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net, "binding:host_id": "h2" } }), 201).port;
    await waitFor(() => got.some((m) => m.type === "DELTA" && `remote/${net}/${p2.id}` in m.set));
    const lastRevision = got[got.length - 1]!.revision;
    abort.abort();
    await watching;
    expectStatus(await s.admin.del(`/v2.0/ports/${p2.id}`), 204);
    const p3 = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net, "binding:host_id": "h1" } }), 201).port;
    const resumed: IntentMessage[] = [];
    const abort2 = new AbortController();
    const watching2 = c.watch(lastRevision, (m) => resumed.push(m), abort2.signal);
    const until = Date.now() + 5000;
    while (!resumed.some((m) => m.type === "DELTA" && `port/${p3.id}` in m.set) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    abort2.abort();
    await watching2;
    assert.equal(resumed[0]!.type, "DELTA", "a resume is a delta, not a snapshot");
    const merged = resumed.filter((m) => m.type === "DELTA") as Extract<IntentMessage, { type: "DELTA" }>[];
    assert.ok(merged.some((m) => m.del.includes(`remote/${net}/${p2.id}`)), "the port deleted meanwhile is removed");
    assert.ok(merged.some((m) => `port/${p3.id}` in m.set), "the port created meanwhile is added");
    assert.ok(!merged.some((m) => `port/${p1.id}` in m.set), "what did not change is not sent again");
  });

  it("keeps a port's events in order when Nova is slow to answer a batch", async () => {
    const seen: string[] = [];
    let first = true;
    const slow = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const delay = first ? 300 : 0;
        first = false;
        setTimeout(() => {
          seen.push(...JSON.parse(body).events.map((e: { name: string }) => e.name));
          res.writeHead(200).end("{}");
        }, delay);
      });
    });
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
    const notifier = new NovaNotifier(`http://127.0.0.1:${(slow.address() as { port: number }).port}`, undefined, { warn() {}, error() {} });
    const change = (status: string | null, revision: number) => ({
      revision, kind: "port", id: "p1", projectId: "p", at: "", op: status ? ("update" as const) : ("delete" as const),
      object: status ? { device_owner: "compute:nova", device_id: "vm-1", status } : null,
    });
    try {
      notifier.onChange(change("DOWN", 1));
      notifier.onChange(change("ACTIVE", 2));
      await new Promise((r) => setTimeout(r, 50)); // the first batch is now waiting on Nova
      notifier.onChange(change("DOWN", 3));
      notifier.onChange(change(null, 4));
      await notifier.close();
      assert.deepEqual(seen, ["network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"]);
    } finally {
      slow.close();
    }
  });
});
