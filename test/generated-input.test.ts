// Generated bad input, on both stores (issue 14, item 3): for every resource,
// every attribute of a valid body replaced by each of a set of odd values, or
// dropped, or joined by an unknown one; every verb on odd ids; every list
// parameter with odd values. No answer may be a 5xx, and every error must be
// a NeutronError without a stack trace. Thousands of requests, through the
// server's real handlers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { expectStatus, makeStore, type Reply, startServer, type Store, type TestServer } from "./support/api.ts";

const ODD: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1e30,
  1.5,
  "",
  "x".repeat(300),
  "a\u0000b",
  "\u202eevil",
  "😀",
  "../../etc/passwd",
  "' OR 1=1 --",
  [],
  [null],
  {},
  { nested: { deeper: [1, { x: null }] } },
];

type Ids = Record<string, string>;
/** A valid create body per collection, given the ids of what it may name. */
const templates: Record<string, [string, (ids: Ids) => Record<string, unknown>]> = {
  networks: ["network", () => ({ name: "n", admin_state_up: true, mtu: 1400, shared: false, "router:external": false, dns_domain: "a.example.", description: "d" })],
  subnets: ["subnet", (i) => ({ network_id: i.net, cidr: "10.77.0.0/24", ip_version: 4, gateway_ip: "10.77.0.1", enable_dhcp: true, dns_nameservers: ["192.0.2.53"], host_routes: [{ destination: "10.1.0.0/16", nexthop: "10.77.0.9" }], allocation_pools: [{ start: "10.77.0.10", end: "10.77.0.20" }], name: "s" })],
  ports: ["port", (i) => ({ network_id: i.net, name: "p", fixed_ips: [{ subnet_id: i.subnet }], mac_address: "fa:16:3e:11:22:33", security_groups: [i.sg], allowed_address_pairs: [{ ip_address: "10.0.0.0/24" }], device_owner: "compute:nova", device_id: "vm", dns_name: "vm1", "binding:host_id": "h", extra_dhcp_opts: [{ opt_name: "mtu", opt_value: "1400" }], port_security_enabled: true })],
  routers: ["router", (i) => ({ name: "r", admin_state_up: true, external_gateway_info: { network_id: i.ext, enable_snat: true }, distributed: false, routes: [] })],
  floatingips: ["floatingip", (i) => ({ floating_network_id: i.ext, port_id: i.port, description: "f" })],
  "security-groups": ["security_group", () => ({ name: "g", description: "d", stateful: true })],
  "security-group-rules": ["security_group_rule", (i) => ({ security_group_id: i.sg, direction: "ingress", ethertype: "IPv4", protocol: "tcp", port_range_min: 22, port_range_max: 22, remote_ip_prefix: "10.0.0.0/8" })],
  trunks: ["trunk", (i) => ({ port_id: i.trunkParent, name: "t", sub_ports: [{ port_id: i.subport, segmentation_type: "vlan", segmentation_id: 100 }] })],
};

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`generated bad input on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    const ids: Ids = {};
    const wrong: string[] = [];
    let sent = 0;
    const statusCounts: Record<number, number> = {};
    const check = (what: string, r: Reply) => {
      sent++;
      statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
      const e = r.body?.NeutronError;
      const trace = JSON.stringify(r.body ?? "").match(/\\n\s+at |node_modules|\.ts:\d+/);
      if (r.status >= 500 || (r.status >= 400 && (typeof e?.type !== "string" || typeof e?.message !== "string")) || trace) {
        wrong.push(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      }
    };

    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
      const a = s.admin;
      ids.ext = expectStatus(await a.post("/v2.0/networks", { network: { name: "ext", "router:external": true } }), 201).network.id;
      expectStatus(await a.post("/v2.0/subnets", { subnet: { network_id: ids.ext, cidr: "198.51.100.0/24", ip_version: 4 } }), 201);
      ids.net = expectStatus(await a.post("/v2.0/networks", { network: { name: "n" } }), 201).network.id;
      ids.subnet = expectStatus(await a.post("/v2.0/subnets", { subnet: { network_id: ids.net, cidr: "10.0.0.0/24", ip_version: 4 } }), 201).subnet.id;
      ids.sg = expectStatus(await a.post("/v2.0/security-groups", { security_group: { name: "g" } }), 201).security_group.id;
      ids.port = expectStatus(await a.post("/v2.0/ports", { port: { network_id: ids.net } }), 201).port.id;
      ids.trunkParent = expectStatus(await a.post("/v2.0/ports", { port: { network_id: ids.net } }), 201).port.id;
      ids.subport = expectStatus(await a.post("/v2.0/ports", { port: { network_id: ids.net } }), 201).port.id;
      ids.router = expectStatus(await a.post("/v2.0/routers", { router: { name: "r", external_gateway_info: { network_id: ids.ext } } }), 201).router.id;
      expectStatus(await a.put(`/v2.0/routers/${ids.router}/add_router_interface`, { subnet_id: ids.subnet }), 200);
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });

    it("answers every mutated create and update with a 2xx or a NeutronError, never a 5xx", async () => {
      for (const [collection, [singular, template]] of Object.entries(templates)) {
        const valid = template(ids);
        const target = collection === "ports" ? ids.port : collection === "routers" ? ids.router : collection === "networks" ? ids.net : collection === "subnets" ? ids.subnet : collection === "security-groups" ? ids.sg : undefined;
        const bodies: [string, unknown][] = [];
        for (const attr of Object.keys(valid)) {
          for (const odd of ODD) bodies.push([`${attr}=${JSON.stringify(odd).slice(0, 20)}`, { ...valid, [attr]: odd }]);
          const { [attr]: _dropped, ...rest } = valid;
          bodies.push([`without ${attr}`, rest]);
        }
        bodies.push(["unknown attribute", { ...valid, "x-unknown": 1 }]);
        for (const [what, body] of bodies) {
          check(`POST ${collection} ${what}`, await s.admin.post(`/v2.0/${collection}`, { [singular]: body }));
          check(`POST ${collection} as member ${what}`, await s.as("member-p").post(`/v2.0/${collection}`, { [singular]: body }));
          if (target) check(`PUT ${collection} ${what}`, await s.admin.put(`/v2.0/${collection}/${target}`, { [singular]: body }));
        }
        // the wrapper itself
        for (const odd of ODD) {
          check(`POST ${collection} wrapper ${JSON.stringify(odd).slice(0, 20)}`, await s.admin.post(`/v2.0/${collection}`, { [singular]: odd }));
          check(`POST ${collection} bulk of ${JSON.stringify(odd).slice(0, 20)}`, await s.admin.post(`/v2.0/${collection}`, { [`${singular}s`]: [odd] }));
          if (target) check(`PUT ${collection} wrapper ${JSON.stringify(odd).slice(0, 20)}`, await s.admin.put(`/v2.0/${collection}/${target}`, { [singular]: odd }));
        }
      }
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} of ${sent} wrong`);
    });

    it("answers odd ids, filters, sorts and pages on every collection without a 5xx", async () => {
      const oddText = ["", "%00", "%ff%fe", "a%2Fb", "..", "x".repeat(200), "%27%20OR%201%3D1", "%F0%9F%98%80", "-1", "1e30", "null", "[]"];
      for (const collection of [...Object.keys(templates), "quotas", "agents", "extensions", "availability_zones"]) {
        for (const t of oddText) {
          for (const method of ["GET", "PUT", "DELETE"]) check(`${method} ${collection}/${t}`, await s.admin.req(method, `/v2.0/${collection}/${t}`, method === "PUT" ? { x: 1 } : undefined));
          for (const param of ["id", "name", "tenant_id", "tags", "not-tags-any", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "fields", "fixed_ips", "revision_number"]) {
            check(`GET ${collection}?${param}=${t}`, await s.admin.get(`/v2.0/${collection}?${param}=${t}`));
          }
        }
        for (const action of ["add_router_interface", "remove_router_interface", "add_subports", "remove_subports", "tags"]) {
          for (const odd of ODD) check(`PUT ${collection} ${action} ${JSON.stringify(odd).slice(0, 20)}`, await s.admin.put(`/v2.0/${collection}/${ids.router}/${action}`, odd));
        }
      }
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} of ${sent} wrong`);
      assert.ok(sent > 3000, `${sent} generated requests`);
      console.log(`${sent} generated requests, statuses ${JSON.stringify(statusCounts)}`);
    });

    it("still serves after all of it", async () => {
      expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: ids.net } }), 201);
    });
  });
}
