// Malformed requests get 400/404/405/409/413 with a NeutronError body, never a
// 500, and the server keeps serving after each.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
import { expectStatus, listen, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

for (const kind of ["sqlite", "postgres"] as const) describe(`bad input on ${kind}`, () => suite(kind));

function suite(kind: "sqlite" | "postgres"): void {
let store: Store;
let s: TestServer;
let netId = "";
let subnetId = "";
let portId = "";
before(async () => {
  store = await makeStore(kind);
  s = await startServer(store.url);
  netId = expectStatus(await s.admin.post("/v2.0/networks", { network: { name: "n" } }), 201).network.id;
  subnetId = expectStatus(await s.admin.post("/v2.0/subnets", { subnet: { network_id: netId, cidr: "10.0.0.0/24", ip_version: 4 } }), 201).subnet.id;
  portId = expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: netId } }), 201).port.id;
});
after(async () => {
  await s?.close();
  await store?.cleanup();
});

const missing = "6a8c6bb4-1b0e-4a40-8d0e-1d6a1a2b3c4d";
const cases: [string, string, string, unknown, number][] = [
  ["invalid JSON", "POST", "/v2.0/networks", "{not json", 400],
  ["body not an object", "POST", "/v2.0/networks", "[1,2]", 400],
  ["missing resource key", "POST", "/v2.0/networks", { net: {} }, 400],
  ["empty body", "POST", "/v2.0/networks", "", 400],
  ["unknown attribute", "POST", "/v2.0/networks", { network: { colour: "red" } }, 400],
  ["read-only attribute on create", "POST", "/v2.0/networks", { network: { status: "DOWN" } }, 400],
  ["wrong type: bool", "POST", "/v2.0/networks", { network: { admin_state_up: "perhaps" } }, 400],
  ["wrong type: name", "POST", "/v2.0/networks", { network: { name: 42 } }, 400],
  ["wrong type: mtu", "POST", "/v2.0/networks", { network: { mtu: "big" } }, 400],
  ["mtu too big for vxlan", "POST", "/v2.0/networks", { network: { mtu: 9000 } }, 400],
  ["unknown network type", "POST", "/v2.0/networks", { network: { "provider:network_type": "geneve" } }, 400],
  ["bad CIDR", "POST", "/v2.0/subnets", { subnet: { network_id: "NET", cidr: "10.0.0.0/33", ip_version: 4 } }, 400],
  ["CIDR not an address", "POST", "/v2.0/subnets", { subnet: { network_id: "NET", cidr: "banana", ip_version: 4 } }, 400],
  ["ip_version mismatch", "POST", "/v2.0/subnets", { subnet: { network_id: "NET", cidr: "10.1.0.0/24", ip_version: 6 } }, 400],
  ["missing cidr", "POST", "/v2.0/subnets", { subnet: { network_id: "NET", ip_version: 4 } }, 400],
  ["bad gateway", "POST", "/v2.0/subnets", { subnet: { network_id: "NET", cidr: "10.2.0.0/24", gateway_ip: "10.3.0.1", ip_version: 4 } }, 400],
  ["bad network id", "POST", "/v2.0/subnets", { subnet: { network_id: "not-a-uuid", cidr: "10.2.0.0/24", ip_version: 4 } }, 400],
  ["unknown network", "POST", "/v2.0/subnets", { subnet: { network_id: missing, cidr: "10.2.0.0/24", ip_version: 4 } }, 404],
  ["bad MAC", "POST", "/v2.0/ports", { port: { network_id: "NET", mac_address: "zz:16:3e:00:00:01" } }, 400],
  ["multicast MAC", "POST", "/v2.0/ports", { port: { network_id: "NET", mac_address: "01:00:5e:00:00:01" } }, 400],
  ["IP outside the subnet", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: [{ ip_address: "192.168.9.9" }] } }, 400],
  ["IP not an address", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: [{ ip_address: "10.0.0.300" }] } }, 400],
  ["fixed_ips not a list", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: "10.0.0.5" } }, 400],
  ["fixed_ips unknown key", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: [{ address: "10.0.0.5" }] } }, 400],
  ["subnet of another network", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: [{ subnet_id: missing }] } }, 400],
  ["unknown security group", "POST", "/v2.0/ports", { port: { network_id: "NET", security_groups: [missing] } }, 404],
  ["bad address pair", "POST", "/v2.0/ports", { port: { network_id: "NET", allowed_address_pairs: [{ ip_address: "x" }] } }, 400],
  ["bad dns_name", "POST", "/v2.0/ports", { port: { network_id: "NET", dns_name: "-bad-" } }, 400],
  ["unknown port network", "POST", "/v2.0/ports", { port: { network_id: missing } }, 404],
  ["taken IP", "POST", "/v2.0/ports", { port: { network_id: "NET", fixed_ips: [{ ip_address: "10.0.0.2" }] } }, 409],
  ["update read-only", "PUT", "/v2.0/ports/PORT", { port: { network_id: missing } }, 400],
  ["update unknown attr", "PUT", "/v2.0/ports/PORT", { port: { colour: 1 } }, 400],
  ["update unknown port", "PUT", `/v2.0/ports/${missing}`, { port: { name: "x" } }, 404],
  ["delete unknown network", "DELETE", `/v2.0/networks/${missing}`, undefined, 404],
  ["get unknown subnet", "GET", `/v2.0/subnets/${missing}`, undefined, 404],
  ["undecodable URL", "GET", "/v2.0/ports/%00%ff", undefined, 400],
  ["overlong id", "GET", `/v2.0/ports/${"a".repeat(300)}`, undefined, 414],
  ["unknown collection", "GET", "/v2.0/widgets", undefined, 404],
  ["unknown path", "GET", "/v2.1/networks", undefined, 404],
  ["rule bad direction", "POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: missing, direction: "sideways" } }, 400],
  ["rule unknown group", "POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: missing, direction: "ingress" } }, 404],
  ["bulk with a bad item", "POST", "/v2.0/networks", { networks: [{ name: "ok" }, { name: 5 }] }, 400],
  ["empty bulk", "POST", "/v2.0/networks", { networks: [] }, 400],
  ["router interface without ids", "PUT", `/v2.0/routers/${missing}/add_router_interface`, {}, 400],
  ["unknown router", "PUT", `/v2.0/routers/${missing}/add_router_interface`, { subnet_id: missing }, 404],
  ["floating IP on unknown network", "POST", "/v2.0/floatingips", { floatingip: { floating_network_id: missing } }, 404],
  ["trunk with bad VLAN", "POST", "/v2.0/trunks", { trunk: { port_id: missing, sub_ports: [{ port_id: missing, segmentation_type: "vlan", segmentation_id: 5000 }] } }, 400],
  ["bad tag", "PUT", "/v2.0/networks/NET/tags", { tags: ["a,b"] }, 400],
  ["bad If-Match", "PUT", "/v2.0/networks/NET", { network: { name: "y" } }, 412],
  ["changes since not a number", "GET", "/api/v1/changes?since=abc", undefined, 400],
  // body shapes on update (issue 14)
  ["update body a string", "PUT", "/v2.0/ports/PORT", '"port"', 400],
  ["update body a number", "PUT", "/v2.0/networks/NET", "42", 400],
  ["update body a boolean", "PUT", "/v2.0/networks/NET", "true", 400],
  ["update body null", "PUT", "/v2.0/networks/NET", "null", 400],
  ["update resource a string", "PUT", "/v2.0/networks/NET", { network: "x" }, 400],
  // NUL characters, which PostgreSQL cannot store
  ["NUL in a name", "POST", "/v2.0/networks", { network: { name: "a\u0000b" } }, 400],
  ["NUL in a filter", "GET", "/v2.0/networks?name=a%00b", undefined, 400],
  ["NUL in a path id", "GET", "/v2.0/networks/a%00b", undefined, 400],
  ["NUL in a quota project", "PUT", "/v2.0/quotas/a%00b", { quota: { network: 5 } }, 400],
  ["huge quota", "PUT", "/v2.0/quotas/p-huge", { quota: { network: 1e30 } }, 400],
  ["fractional quota", "PUT", "/v2.0/quotas/p-huge", { quota: { network: 1.5 } }, 400],
  ["registration roles not a list", "PUT", "/southbound/v1/hosts/h-bad", { roles: "network" }, 400],
  ["registration roles of numbers", "PUT", "/southbound/v1/hosts/h-bad", { roles: [1] }, 400],
];

it("answers every malformed request with a NeutronError and the right status", async () => {
  const wrong: string[] = [];
  for (const [what, method, rawUrl, body, status] of cases) {
    const url = rawUrl.replace("NET", netId).replace("PORT", portId);
    const b = typeof body === "object" && body !== null ? JSON.parse(JSON.stringify(body).replace(/"NET"/g, `"${netId}"`)) : body;
    const r = await s.admin.req(method, url, b, what === "bad If-Match" ? { "if-match": "revision_number=999" } : {});
    const e = r.body?.NeutronError;
    if (r.status !== status || typeof e?.type !== "string" || typeof e.message !== "string" || /\n\s+at /.test(e.message)) wrong.push(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  assert.deepEqual(wrong, [], "each answered with its status and a NeutronError, no stack trace");
  void subnetId;
});

it("refuses a huge body with 413 and keeps serving", async () => {
  const huge = JSON.stringify({ network: { name: "x".repeat(2 * 1024 * 1024) } });
  const r = await s.admin.req("POST", "/v2.0/networks", huge);
  assert.equal(r.status, 413);
  assert.equal(r.body.NeutronError.type, "HTTPRequestEntityTooLarge");
  expectStatus(await s.admin.get("/v2.0/networks"), 200);
});

it("answers malformed HTTP and oversized headers with a NeutronError too", async () => {
  const base = new URL(await listen(s));
  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      let out = "";
      const c = connect(Number(base.port), base.hostname, () => c.write(text));
      c.setEncoding("utf8").on("data", (d: string) => (out += d)).on("end", () => resolve(out)).on("error", reject);
    });
  for (const [text, status] of [["GARBAGE / HTTP/1.1\r\n\r\n", 400], [`GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431]] as const) {
    const reply = await raw(text);
    assert.match(reply, new RegExp(`^HTTP/1.1 ${status} `));
    const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4));
    assert.equal(typeof body.NeutronError.type, "string", reply);
  }
});

it("keeps serving after all of it", async () => {
  expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: netId } }), 201);
});
}
