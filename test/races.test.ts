// Invariants under concurrency, on both stores (issue 14). Each race runs a
// few hundred requests at once through the model's real write path (the
// PostgreSQL pool gives real parallel transactions; SQLite serialises them),
// then checks through the API what must hold whatever the interleaving: no
// reference to a deleted object, no quota exceeded, no overlapping subnets on
// one router, and no 5xx at any point.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, expectStatus, makeStore, type Reply, startServer, type Store, type TestServer } from "./support/api.ts";

const ROUNDS = 12;

for (const kind of ["sqlite", "postgres"] as const) describe(`races on ${kind}`, () => suite(kind));

function suite(kind: "sqlite" | "postgres"): void {
  let store: Store;
  let s: TestServer;
  let admin: Client;
  const statuses: Reply[] = [];
  const track = async (p: Promise<Reply>): Promise<Reply> => {
    const r = await p;
    statuses.push(r);
    return r;
  };
  const all = (ps: Promise<Reply>[]) => Promise.all(ps.map(track));

  before(async () => {
    store = await makeStore(kind);
    s = await startServer(store.url);
    admin = s.admin;
  });
  after(async () => {
    await s?.close();
    await store?.cleanup();
  });

  const ids = async (path: string, key: string) => new Set<string>(expectStatus(await admin.get(path), 200)[key].map((x: { id: string }) => x.id));
  const net = async (c: Client, name: string) => expectStatus(await c.post("/v2.0/networks", { network: { name } }), 201).network;
  const subnet = async (c: Client, networkId: string, cidr: string) =>
    expectStatus(await c.post("/v2.0/subnets", { subnet: { network_id: networkId, cidr, ip_version: 4, enable_dhcp: false } }), 201).subnet;

  it("a network deleted while ports are created on it leaves no port behind", async () => {
    const a = s.as("race-a");
    for (let round = 0; round < ROUNDS; round++) {
      const n = await net(a, `doomed-${round}`);
      await subnet(a, n.id, "10.50.0.0/24");
      const creates = Array.from({ length: 16 }, (_, i) => a.post("/v2.0/ports", { port: { network_id: n.id, name: `p${i}` } }));
      const results = await all([...creates.slice(0, 8), a.del(`/v2.0/networks/${n.id}`), ...creates.slice(8)]);
      // Whatever won, the network either still exists with its ports, or is gone with none.
      if (results[8]!.status !== 204) {
        for (const p of expectStatus(await a.get(`/v2.0/ports?network_id=${n.id}`), 200).ports) expectStatus(await a.del(`/v2.0/ports/${p.id}`), 204);
        expectStatus(await a.del(`/v2.0/networks/${n.id}`), 204);
      }
    }
    const networks = await ids("/v2.0/networks", "networks");
    const orphans = expectStatus(await admin.get("/v2.0/ports"), 200).ports.filter((p: { network_id: string }) => !networks.has(p.network_id));
    assert.deepEqual(orphans, [], "no port on a network that no longer exists");
    const subnets = expectStatus(await admin.get("/v2.0/subnets"), 200).subnets.filter((x: { network_id: string }) => !networks.has(x.network_id));
    assert.deepEqual(subnets, [], "no subnet on a network that no longer exists");
  });

  it("a subnet created while its network is deleted is never left behind", async () => {
    const a = s.as("race-a");
    for (let round = 0; round < ROUNDS; round++) {
      const n = await net(a, `doomed-sub-${round}`);
      const results = await all([
        a.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.51.0.0/24", ip_version: 4 } }),
        a.del(`/v2.0/networks/${n.id}`),
        a.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.52.0.0/24", ip_version: 4 } }),
      ]);
      if (results[1]!.status !== 204) {
        for (const p of expectStatus(await a.get(`/v2.0/ports?network_id=${n.id}`), 200).ports) if (p.device_owner !== "network:dhcp") expectStatus(await a.del(`/v2.0/ports/${p.id}`), 204);
        expectStatus(await a.del(`/v2.0/networks/${n.id}`), 204);
      }
    }
    const networks = await ids("/v2.0/networks", "networks");
    for (const [path, key] of [["/v2.0/subnets", "subnets"], ["/v2.0/ports", "ports"]] as const) {
      const orphans = expectStatus(await admin.get(path), 200)[key].filter((x: { network_id: string }) => !networks.has(x.network_id));
      assert.deepEqual(orphans, [], `no ${key} on a deleted network`);
    }
  });

  for (const [resource, path, body] of [
    ["port", "/v2.0/ports", (netId: string, i: number) => ({ port: { network_id: netId, name: `q${i}` } })],
    ["network", "/v2.0/networks", (_n: string, i: number) => ({ network: { name: `q${i}` } })],
    ["router", "/v2.0/routers", (_n: string, i: number) => ({ router: { name: `q${i}` } })],
    ["security_group", "/v2.0/security-groups", (_n: string, i: number) => ({ security_group: { name: `q${i}` } })],
  ] as const) {
    it(`a quota of 10 ${resource}s holds against 50 concurrent creates`, async () => {
      const project = `quota-${resource}`;
      const c = s.as(project);
      const n = resource === "port" ? await net(admin, `quota-net-${resource}`) : null;
      if (n) {
        await subnet(admin, n.id, "10.60.0.0/24");
        expectStatus(await admin.put(`/v2.0/networks/${n.id}`, { network: { shared: true } }), 200);
      }
      // The default group counts against the group quota, as in Neutron: make it before the race.
      expectStatus(await c.get("/v2.0/security-groups"), 200);
      expectStatus(await admin.put(`/v2.0/quotas/${project}`, { quota: { [resource]: 10 } }), 200);
      const results = await all(Array.from({ length: 50 }, (_, i) => c.post(path, body(n?.id ?? "", i))));
      const plural = path.split("/").pop()!.replace(/-/g, "_");
      const held = expectStatus(await admin.get(`${path}?project_id=${project}`), 200)[plural].length;
      assert.equal(held, 10, `${resource}s held by the project (statuses ${results.map((r) => r.status).join(",")})`);
      for (const r of results.filter((x) => x.status !== 201)) assert.equal(r.body.NeutronError.type, "OverQuota");
    });
  }

  it("a security group deleted while rules and ports name it leaves no reference to it", async () => {
    const a = s.as("race-sg");
    const n = await net(a, "sg-net");
    await subnet(a, n.id, "10.70.0.0/22");
    const other = expectStatus(await a.post("/v2.0/security-groups", { security_group: { name: "other" } }), 201).security_group;
    const spare = expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port;
    for (let round = 0; round < ROUNDS; round++) {
      const g = expectStatus(await a.post("/v2.0/security-groups", { security_group: { name: `g${round}` } }), 201).security_group;
      const rule = (group: string, port: number, remote?: string) =>
        a.post("/v2.0/security-group-rules", {
          security_group_rule: { security_group_id: group, direction: "ingress", protocol: "tcp", port_range_min: port, port_range_max: port, ...(remote ? { remote_group_id: remote } : {}) },
        });
      const ops = [
        ...Array.from({ length: 4 }, (_, i) => rule(g.id, 1000 + round * 10 + i)),
        ...Array.from({ length: 4 }, (_, i) => rule(other.id, 2000 + round * 10 + i, g.id)),
        ...Array.from({ length: 3 }, () => a.post("/v2.0/ports", { port: { network_id: n.id, security_groups: [g.id] } })),
        a.put(`/v2.0/ports/${spare.id}`, { port: { security_groups: [g.id] } }),
      ];
      const results = await all([...ops.slice(0, 6), a.del(`/v2.0/security-groups/${g.id}`), ...ops.slice(6)]);
      if (results[6]!.status !== 204) {
        for (const p of expectStatus(await a.get(`/v2.0/ports?network_id=${n.id}`), 200).ports) {
          if (p.security_groups.includes(g.id)) expectStatus(await a.put(`/v2.0/ports/${p.id}`, { port: { security_groups: [] } }), 200);
        }
        expectStatus(await a.del(`/v2.0/security-groups/${g.id}`), 204);
      }
    }
    const groups = await ids("/v2.0/security-groups", "security_groups");
    const rules = expectStatus(await admin.get("/v2.0/security-group-rules"), 200).security_group_rules;
    assert.deepEqual(rules.filter((r: { security_group_id: string }) => !groups.has(r.security_group_id)), [], "no rule of a deleted group");
    assert.deepEqual(rules.filter((r: { remote_group_id: string | null }) => r.remote_group_id && !groups.has(r.remote_group_id)), [], "no rule naming a deleted remote group");
    const ports = expectStatus(await admin.get("/v2.0/ports"), 200).ports;
    assert.deepEqual(ports.filter((p: { security_groups: string[] }) => p.security_groups.some((id) => !groups.has(id))), [], "no port in a deleted group");
  });

  it("a port deleted while floating IPs and trunks name it leaves none pointing at it", async () => {
    const ext = expectStatus(await admin.post("/v2.0/networks", { network: { name: "race-ext", "router:external": true } }), 201).network;
    expectStatus(await admin.post("/v2.0/subnets", { subnet: { network_id: ext.id, cidr: "198.51.100.0/24", ip_version: 4, enable_dhcp: false } }), 201);
    const a = s.as("race-fip");
    const n = await net(a, "fip-net");
    const sn = await subnet(a, n.id, "10.80.0.0/22");
    const r = expectStatus(await a.post("/v2.0/routers", { router: { name: "r", external_gateway_info: { network_id: ext.id } } }), 201).router;
    expectStatus(await a.put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: sn.id }), 200);
    const fips = await Promise.all(Array.from({ length: 3 }, async () => expectStatus(await a.post("/v2.0/floatingips", { floatingip: { floating_network_id: ext.id } }), 201).floatingip));
    for (let round = 0; round < ROUNDS; round++) {
      const p = expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port;
      const parent = expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port;
      const trunk = expectStatus(await a.post("/v2.0/trunks", { trunk: { port_id: parent.id } }), 201).trunk;
      const results = await all([
        a.post("/v2.0/floatingips", { floatingip: { floating_network_id: ext.id, port_id: p.id } }),
        a.put(`/v2.0/floatingips/${fips[0].id}`, { floatingip: { port_id: p.id } }),
        a.post("/v2.0/trunks", { trunk: { port_id: p.id } }),
        a.del(`/v2.0/ports/${p.id}`),
        a.put(`/v2.0/trunks/${trunk.id}/add_subports`, { sub_ports: [{ port_id: p.id, segmentation_type: "vlan", segmentation_id: 100 + round }] }),
        a.put(`/v2.0/floatingips/${fips[1].id}`, { floatingip: { port_id: p.id } }),
      ]);
      void results;
    }
    const ports = await ids("/v2.0/ports", "ports");
    const dangling = expectStatus(await admin.get("/v2.0/floatingips"), 200).floatingips.filter((f: { port_id: string | null }) => f.port_id && !ports.has(f.port_id));
    assert.deepEqual(dangling, [], "no floating IP on a deleted port");
    const trunks = expectStatus(await admin.get("/v2.0/trunks"), 200).trunks;
    assert.deepEqual(trunks.filter((t: { port_id: string }) => !ports.has(t.port_id)), [], "no trunk on a deleted parent");
    const subs = trunks.flatMap((t: { sub_ports: { port_id: string }[] }) => t.sub_ports).filter((sp: { port_id: string }) => !ports.has(sp.port_id));
    assert.deepEqual(subs, [], "no deleted subport");
  });

  it("two overlapping subnets added to one router at once: one wins", async () => {
    const a = s.as("race-router");
    let wins = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const r = expectStatus(await a.post("/v2.0/routers", { router: { name: `o${round}` } }), 201).router;
      const cidrs = [`10.90.${round}.0/24`, `10.90.${round}.0/25`, `10.90.${round}.128/25`];
      const subnets = [];
      for (const [i, cidr] of cidrs.entries()) subnets.push(await subnet(a, (await net(a, `o${round}-${i}`)).id, cidr));
      const results = await all(subnets.map((sn) => a.put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: sn.id })));
      wins += results.filter((x) => x.status === 200).length;
      const held = expectStatus(await a.get(`/v2.0/ports?device_id=${r.id}`), 200).ports.flatMap((p: { fixed_ips: { subnet_id: string }[] }) => p.fixed_ips.map((f) => f.subnet_id));
      const heldCidrs = subnets.filter((sn) => held.includes(sn.id)).map((sn) => sn.cidr);
      // The /24 overlaps both /25s; the two /25s do not overlap each other.
      assert.ok(heldCidrs.length === 1 ? true : heldCidrs.length === 2 && !heldCidrs.includes(cidrs[0]), `router ${r.id} holds ${heldCidrs.join(", ")}`);
    }
    assert.ok(wins >= ROUNDS, `at least one interface per round (${wins})`);
  });

  it("a router deleted while interfaces are added leaves no interface behind", async () => {
    const a = s.as("race-router");
    for (let round = 0; round < ROUNDS; round++) {
      const r = expectStatus(await a.post("/v2.0/routers", { router: { name: `d${round}` } }), 201).router;
      const subnets = [];
      for (let i = 0; i < 3; i++) subnets.push(await subnet(a, (await net(a, `d${round}-${i}`)).id, `10.91.${round * 4 + i}.0/24`));
      const adds = subnets.map((sn) => a.put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: sn.id }));
      const results = await all([adds[0]!, a.del(`/v2.0/routers/${r.id}`), adds[1]!, adds[2]!]);
      if (results[1]!.status !== 204) {
        for (const sn of subnets) await a.put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id });
        expectStatus(await a.del(`/v2.0/routers/${r.id}`), 204);
      }
    }
    const routers = await ids("/v2.0/routers", "routers");
    const orphans = expectStatus(await admin.get("/v2.0/ports?device_owner=network:router_interface"), 200).ports.filter((p: { device_id: string }) => !routers.has(p.device_id));
    assert.deepEqual(orphans, [], "no interface of a deleted router");
  });

  it("one port gets one floating IP and one trunk, however many ask at once", async () => {
    const ext = expectStatus(await admin.get("/v2.0/networks?name=race-ext"), 200).networks[0];
    const a = s.as("race-fip");
    const n = expectStatus(await a.get("/v2.0/networks?name=fip-net"), 200).networks[0];
    for (let round = 0; round < ROUNDS; round++) {
      const p = expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port;
      const fipResults = await all(Array.from({ length: 6 }, () => a.post("/v2.0/floatingips", { floatingip: { floating_network_id: ext.id, port_id: p.id } })));
      assert.equal(fipResults.filter((x) => x.status === 201).length, 1, `one floating IP: ${fipResults.map((x) => x.status).join(",")}`);
      for (const x of fipResults.filter((y) => y.status !== 201)) assert.equal(x.status, 409);
      const trunkResults = await all(Array.from({ length: 6 }, () => a.post("/v2.0/trunks", { trunk: { port_id: p.id } })));
      assert.equal(trunkResults.filter((x) => x.status === 201).length, 1, `one trunk: ${trunkResults.map((x) => x.status).join(",")}`);
      for (const x of trunkResults.filter((y) => y.status !== 201)) assert.equal(x.status, 409);
      const sub = expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port;
      const parents = await Promise.all([0, 1].map(async () => expectStatus(await a.post("/v2.0/ports", { port: { network_id: n.id } }), 201).port));
      const tks = await Promise.all(parents.map(async (pp) => expectStatus(await a.post("/v2.0/trunks", { trunk: { port_id: pp.id } }), 201).trunk));
      const subResults = await all(tks.map((t) => a.put(`/v2.0/trunks/${t.id}/add_subports`, { sub_ports: [{ port_id: sub.id, segmentation_type: "vlan", segmentation_id: 10 }] })));
      assert.equal(subResults.filter((x) => x.status === 200).length, 1, `one port in one trunk: ${subResults.map((x) => x.status).join(",")}`);
    }
  });

  it("an entry withdrawn while its target makes ports and rules through it leaves none that it admitted", async () => {
    const a = s.as("race-owner");
    const b = s.as("race-target");
    const bGroup = expectStatus(await b.post("/v2.0/security-groups", { security_group: { name: "b" } }), 201).security_group;
    expectStatus(await admin.put("/v2.0/quotas/race-owner", { quota: { rbac_policy: -1 } }), 200);
    for (let round = 0; round < ROUNDS; round++) {
      const n = await net(a, `lent-${round}`);
      await subnet(a, n.id, "10.60.0.0/24");
      const g = expectStatus(await a.post("/v2.0/security-groups", { security_group: { name: `lent-${round}` } }), 201).security_group;
      const share = async (type: string, id: string) =>
        expectStatus(await a.post("/v2.0/rbac-policies", { rbac_policy: { object_type: type, object_id: id, action: "access_as_shared", target_tenant: "race-target" } }), 201).rbac_policy;
      const [pn, pg] = [await share("network", n.id), await share("security_group", g.id)];
      const uses = [
        ...Array.from({ length: 6 }, (_, i) => b.post("/v2.0/ports", { port: { network_id: n.id, name: `b${i}` } })),
        ...Array.from({ length: 3 }, (_, i) => b.post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: bGroup.id, direction: "ingress", protocol: "tcp", port_range_min: 1000 + round * 10 + i, remote_group_id: g.id } })),
      ];
      const results = await all([...uses.slice(0, 4), a.del(`/v2.0/rbac-policies/${pn.id}`), a.del(`/v2.0/rbac-policies/${pg.id}`), ...uses.slice(4)]);
      const [netGone, groupGone] = [results[4]!.status === 204, results[5]!.status === 204];
      for (const r of [results[4]!, results[5]!]) assert.ok(r.status === 204 || r.status === 409, `withdraw: ${r.status} ${JSON.stringify(r.body)}`);
      const ports = expectStatus(await admin.get(`/v2.0/ports?network_id=${n.id}&project_id=race-target`), 200).ports;
      const rules = expectStatus(await admin.get(`/v2.0/security-group-rules?remote_group_id=${g.id}&project_id=race-target`), 200).security_group_rules;
      // Withdrawn means nothing of the target's rests on it; kept means something did when it was asked to go.
      if (netGone) assert.deepEqual(ports, [], "no port of the target on a network no longer shared with it");
      else assert.ok(ports.length > 0, "the network's entry stayed only for the target's ports");
      if (groupGone) assert.deepEqual(rules, [], "no rule of the target naming a group no longer shared with it");
      else assert.ok(rules.length > 0, "the group's entry stayed only for the target's rules");
    }
  });

  it("answered no request with a 5xx", () => {
    const bad = statuses.filter((r) => r.status >= 500).map((r) => `${r.status} ${JSON.stringify(r.body)}`);
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${statuses.length} answers were 5xx`);
    assert.ok(statuses.length > 500, `${statuses.length} racing requests`);
  });
}
