// RBAC policies (issue 13, part 2), on both stores: a project shares its
// network or its security group with one other project, an admin with every
// project; what the target may then see and use, what it may not, and the
// entries that cannot go while something depends on them. The cases follow
// neutron-tempest-plugin's RBACSharedNetworksTest and RbacSharedSecurityGroupTest.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, expectStatus, type Json, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

const policy = (object_type: string, object_id: string, target_tenant: unknown, action = "access_as_shared") => ({ rbac_policy: { object_type, object_id, action, target_tenant } });
const ids = (r: Json, key: string): string[] => r[key].map((x: { id: string }) => x.id);

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`rbac policies on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    let a: Client;
    let b: Client;
    let c: Client;
    const make = async (who: Client, path: string, key: string, body: unknown): Promise<Json> => expectStatus(await who.post(path, body), 201, `POST ${path}`)[key];
    const network = async (who: Client, cidr: string): Promise<{ net: Json; sub: Json }> => {
      const net = await make(who, "/v2.0/networks", "network", { network: { name: "n" } });
      const sub = await make(who, "/v2.0/subnets", "subnet", { subnet: { network_id: net.id, cidr, ip_version: 4 } });
      return { net, sub };
    };

    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
      a = s.as("proj-a");
      b = s.as("proj-b");
      c = s.as("proj-c");
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });

    it("shares a network with one project: it sees the network and its subnet, makes ports; others still do not", async () => {
      const { net, sub } = await network(a, "10.1.0.0/24");
      expectStatus(await b.get(`/v2.0/networks/${net.id}`), 404);
      const pol = await make(a, "/v2.0/rbac-policies", "rbac_policy", policy("network", net.id, "proj-b"));
      assert.deepEqual(pol, { id: pol.id, project_id: "proj-a", tenant_id: "proj-a", object_type: "network", object_id: net.id, action: "access_as_shared", target_tenant: "proj-b" });
      assert.equal(expectStatus(await b.get(`/v2.0/networks/${net.id}`), 200).network.shared, true, "shared with B, as B sees it");
      assert.equal(expectStatus(await a.get(`/v2.0/networks/${net.id}`), 200).network.shared, false, "not with everyone, as A sees it");
      assert.ok(ids(expectStatus(await b.get("/v2.0/networks"), 200), "networks").includes(net.id));
      assert.ok(ids(expectStatus(await b.get("/v2.0/networks?shared=true"), 200), "networks").includes(net.id), "B's shared=true filter finds it");
      assert.ok(!ids(expectStatus(await b.get("/v2.0/networks?shared=false"), 200), "networks").includes(net.id));
      assert.ok(!ids(expectStatus(await a.get("/v2.0/networks?shared=true"), 200), "networks").includes(net.id), "A's does not");
      expectStatus(await b.get(`/v2.0/subnets/${sub.id}`), 200);
      const port = await make(b, "/v2.0/ports", "port", { port: { network_id: net.id } });
      assert.equal(port.project_id, "proj-b");
      expectStatus(await c.get(`/v2.0/networks/${net.id}`), 404);
      expectStatus(await c.get(`/v2.0/subnets/${sub.id}`), 404);
      expectStatus(await c.post("/v2.0/ports", { port: { network_id: net.id } }), 404);
      // The entry is A's: B, whom it names, does not see it.
      assert.deepEqual(ids(expectStatus(await a.get("/v2.0/rbac-policies"), 200), "rbac_policies"), [pol.id]);
      assert.deepEqual(ids(expectStatus(await b.get("/v2.0/rbac-policies"), 200), "rbac_policies"), []);
      expectStatus(await b.get(`/v2.0/rbac-policies/${pol.id}`), 404);
      assert.deepEqual(expectStatus(await a.get(`/v2.0/rbac-policies/${pol.id}?fields=id&fields=action`), 200).rbac_policy, { id: pol.id, action: "access_as_shared" });

      // B's port holds the entry: it can neither go nor move to C.
      const del = await a.del(`/v2.0/rbac-policies/${pol.id}`);
      assert.equal(del.status, 409);
      assert.equal(del.body.NeutronError.type, "RbacPolicyInUse");
      expectStatus(await a.put(`/v2.0/rbac-policies/${pol.id}`, { rbac_policy: { target_tenant: "proj-c" } }), 409);
      expectStatus(await b.del(`/v2.0/ports/${port.id}`), 204);
      const moved = expectStatus(await a.put(`/v2.0/rbac-policies/${pol.id}`, { rbac_policy: { target_tenant: "proj-c" } }), 200).rbac_policy;
      assert.deepEqual({ ...moved, target_tenant: "proj-b" }, pol, "only the target changed");
      expectStatus(await c.get(`/v2.0/networks/${net.id}`), 200);
      expectStatus(await b.get(`/v2.0/networks/${net.id}`), 404);
      expectStatus(await a.del(`/v2.0/rbac-policies/${pol.id}`), 204);
      expectStatus(await c.get(`/v2.0/networks/${net.id}`), 404);
    });

    it("refuses what Neutron refuses: a member's wildcard, another's object, duplicates, bad input", async () => {
      const { net } = await network(a, "10.2.0.0/24");
      const refused = async (who: Client, body: unknown, status: number, type?: string) => {
        const r = await who.post("/v2.0/rbac-policies", body);
        assert.equal(r.status, status, JSON.stringify(r.body));
        if (type) assert.equal(r.body.NeutronError.type, type);
      };
      await refused(a, policy("network", net.id, "*"), 403);
      await refused(a, policy("network", net.id, null), 400);
      await refused(a, policy("network", net.id, "1234".repeat(100)), 400);
      await refused(a, policy("port", net.id, "proj-b"), 400);
      await refused(a, policy("network", "not-a-uuid", "proj-b"), 400);
      await refused(a, { rbac_policy: { object_type: "network", object_id: net.id, action: "access_as_shared" } }, 400);
      await refused(c, policy("network", net.id, "proj-c"), 404, "NetworkNotFound");
      const pol = await make(a, "/v2.0/rbac-policies", "rbac_policy", policy("network", net.id, "proj-b"));
      await refused(a, policy("network", net.id, "proj-b"), 409, "DuplicateRbacPolicy");
      // B sees the network now, but it is A's to share.
      await refused(b, policy("network", net.id, "proj-c"), 400);
      expectStatus(await a.put(`/v2.0/rbac-policies/${pol.id}`, { rbac_policy: { target_tenant: "*" } }), 403);
      expectStatus(await a.put(`/v2.0/rbac-policies/${pol.id}`, { rbac_policy: { object_id: net.id } }), 400);
      expectStatus(await b.del(`/v2.0/rbac-policies/${pol.id}`), 404);
      const sg = await make(a, "/v2.0/security-groups", "security_group", { security_group: { name: "g" } });
      await refused(a, policy("security_group", sg.id, "proj-b", "access_as_external"), 400, "InvalidActionForType");
    });

    it("keeps to the quota of entries per project (Neutron's default: 10)", async () => {
      const { net } = await network(c, "10.3.0.0/24");
      for (let i = 0; i < 10; i++) await make(c, "/v2.0/rbac-policies", "rbac_policy", policy("network", net.id, `proj-q${i}`));
      const r = await c.post("/v2.0/rbac-policies", policy("network", net.id, "proj-q10"));
      assert.equal(r.status, 409);
      assert.equal(r.body.NeutronError.type, "OverQuota");
      expectStatus(await c.del(`/v2.0/networks/${net.id}`), 204);
      assert.deepEqual(ids(expectStatus(await c.get(`/v2.0/rbac-policies?object_id=${net.id}`), 200), "rbac_policies"), [], "a network's entries go with it");
    });

    it("keeps `shared` and the wildcard entry one fact, and bumps the network's revision", async () => {
      const net = await make(s.admin, "/v2.0/networks", "network", { network: { name: "pub", shared: true } });
      const entries = expectStatus(await s.admin.get(`/v2.0/rbac-policies?object_id=${net.id}`), 200).rbac_policies;
      assert.deepEqual(entries.map((e: Json) => [e.action, e.target_tenant]), [["access_as_shared", "*"]]);
      expectStatus(await s.admin.post("/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.4.0.0/24", ip_version: 4 } }), 201);
      const port = await make(b, "/v2.0/ports", "port", { port: { network_id: net.id } });
      const refused = await s.admin.put(`/v2.0/networks/${net.id}`, { network: { shared: false } });
      assert.equal(refused.body.NeutronError?.type, "InvalidSharedSetting", JSON.stringify(refused.body));
      expectStatus(await s.admin.del(`/v2.0/rbac-policies/${entries[0].id}`), 409, "nor as the entry");
      // A second entry naming B covers B's port: now the wildcard may go.
      await make(s.admin, "/v2.0/rbac-policies", "rbac_policy", policy("network", net.id, "proj-b"));
      const rev = expectStatus(await b.get(`/v2.0/networks/${net.id}`), 200).network.revision_number;
      const off = expectStatus(await s.admin.put(`/v2.0/networks/${net.id}`, { network: { shared: false } }), 200).network;
      assert.equal(off.shared, false);
      assert.ok(expectStatus(await b.get(`/v2.0/networks/${net.id}`), 200).network.revision_number > rev);
      assert.equal(expectStatus(await b.get(`/v2.0/networks/${net.id}`), 200).network.shared, true, "still shared with B");
      expectStatus(await c.get(`/v2.0/networks/${net.id}`), 404);
      const wild = await make(s.admin, "/v2.0/rbac-policies", "rbac_policy", policy("network", net.id, "*"));
      assert.equal(expectStatus(await c.get(`/v2.0/networks/${net.id}`), 200).network.shared, true, "a wildcard entry shares it with every project");
      assert.equal(expectStatus(await s.admin.get(`/v2.0/networks/${net.id}`), 200).network.shared, true, "and is the network's shared");
      assert.ok(ids(expectStatus(await s.admin.get("/v2.0/networks?shared=true"), 200), "networks").includes(net.id));
      expectStatus(await s.admin.del(`/v2.0/rbac-policies/${wild.id}`), 204);
      assert.equal(expectStatus(await s.admin.get(`/v2.0/networks/${net.id}`), 200).network.shared, false);
      expectStatus(await b.del(`/v2.0/ports/${port.id}`), 204);
    });

    it("shares an external network with one project: its router's gateway holds the entry", async () => {
      const ext = await make(s.admin, "/v2.0/networks", "network", { network: { name: "ext-b" } });
      await make(s.admin, "/v2.0/subnets", "subnet", { subnet: { network_id: ext.id, cidr: "203.0.113.0/24", ip_version: 4, enable_dhcp: false } });
      expectStatus(await b.get(`/v2.0/networks/${ext.id}`), 404);
      const pol = await make(s.admin, "/v2.0/rbac-policies", "rbac_policy", policy("network", ext.id, "proj-b", "access_as_external"));
      const seen = expectStatus(await b.get(`/v2.0/networks/${ext.id}`), 200).network;
      assert.equal(seen["router:external"], true, "an external entry makes the network external");
      assert.equal(seen.shared, false);
      expectStatus(await c.get(`/v2.0/networks/${ext.id}`), 404);
      expectStatus(await b.post("/v2.0/ports", { port: { network_id: ext.id } }), 403, "external is not shared: no ports");
      const router = await make(b, "/v2.0/routers", "router", { router: { name: "rb", external_gateway_info: { network_id: ext.id } } });
      expectStatus(await s.admin.del(`/v2.0/rbac-policies/${pol.id}`), 409);
      expectStatus(await b.put(`/v2.0/routers/${router.id}`, { router: { external_gateway_info: {} } }), 200);
      expectStatus(await s.admin.del(`/v2.0/rbac-policies/${pol.id}`), 204);
      expectStatus(await b.get(`/v2.0/networks/${ext.id}`), 404);
    });

    it("shares a security group: the target uses it on its ports and names it as a remote group (seeds/001)", async () => {
      const sgA = await make(a, "/v2.0/security-groups", "security_group", { security_group: { name: "web" } });
      const sgB = await make(b, "/v2.0/security-groups", "security_group", { security_group: { name: "db" } });
      const { net } = await network(b, "10.5.0.0/24");
      const ruleBody = { security_group_rule: { security_group_id: sgB.id, direction: "ingress", protocol: "tcp", port_range_min: 5432, remote_group_id: sgA.id } };
      expectStatus(await b.post("/v2.0/security-group-rules", ruleBody), 404, "before: A's group is not B's to name");
      expectStatus(await b.post("/v2.0/ports", { port: { network_id: net.id, security_groups: [sgA.id] } }), 404);
      expectStatus(await b.get(`/v2.0/security-groups/${sgA.id}`), 404);

      const pol = await make(a, "/v2.0/rbac-policies", "rbac_policy", policy("security_group", sgA.id, "proj-b"));
      const shown = expectStatus(await b.get(`/v2.0/security-groups/${sgA.id}`), 200).security_group;
      assert.equal(shown.shared, true);
      assert.equal(expectStatus(await a.get(`/v2.0/security-groups/${sgA.id}`), 200).security_group.shared, false);
      assert.ok(ids(expectStatus(await b.get("/v2.0/security-groups?shared=true"), 200), "security_groups").includes(sgA.id));
      expectStatus(await c.get(`/v2.0/security-groups/${sgA.id}`), 404);
      expectStatus(await c.post("/v2.0/security-group-rules", { security_group_rule: { ...ruleBody.security_group_rule, security_group_id: (await make(c, "/v2.0/security-groups", "security_group", { security_group: { name: "x" } })).id } }), 404, "C still may not name it");
      expectStatus(await b.post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: sgA.id, direction: "ingress" } }), 404, "B may not change A's group");
      expectStatus(await b.put(`/v2.0/security-groups/${sgA.id}`, { security_group: { name: "mine" } }), 403);

      const rule = await make(b, "/v2.0/security-group-rules", "security_group_rule", ruleBody);
      assert.equal(rule.remote_group_id, sgA.id);
      const del = await a.del(`/v2.0/rbac-policies/${pol.id}`);
      assert.equal(del.body?.NeutronError?.type, "RbacPolicyInUse", "B's rule depends on the entry");
      expectStatus(await b.del(`/v2.0/security-group-rules/${rule.id}`), 204);

      const port = await make(b, "/v2.0/ports", "port", { port: { network_id: net.id, security_groups: [sgA.id, sgB.id] } });
      assert.deepEqual([...port.security_groups].sort(), [sgA.id, sgB.id].sort());
      expectStatus(await a.del(`/v2.0/rbac-policies/${pol.id}`), 409, "B's port depends on the entry");
      expectStatus(await b.del(`/v2.0/ports/${port.id}`), 204);
      expectStatus(await a.del(`/v2.0/rbac-policies/${pol.id}`), 204);
      expectStatus(await b.get(`/v2.0/security-groups/${sgA.id}`), 404);
      expectStatus(await b.post("/v2.0/security-group-rules", ruleBody), 404, "after: not B's to name again");

      // A group's entries go with it.
      await make(a, "/v2.0/rbac-policies", "rbac_policy", policy("security_group", sgA.id, "proj-c"));
      expectStatus(await a.del(`/v2.0/security-groups/${sgA.id}`), 204);
      assert.deepEqual(ids(expectStatus(await a.get(`/v2.0/rbac-policies?object_id=${sgA.id}`), 200), "rbac_policies"), []);
    });

    it("gives the networks shared or external before migration 6 their wildcard entries", async () => {
      const shared = await make(s.admin, "/v2.0/networks", "network", { network: { name: "old-shared", shared: true } });
      const ext = await make(s.admin, "/v2.0/networks", "network", { network: { name: "old-ext", "router:external": true } });
      const plain = await make(s.admin, "/v2.0/networks", "network", { network: { name: "old-plain" } });
      // Back to the schema before it: no entries table, migration 6 not applied.
      await s.db.write(async (tx) => {
        await tx.run("DROP TABLE rbac_policies");
        await tx.run("DELETE FROM schema_migrations WHERE version = 6");
      });
      await s.close();
      s = await startServer(store.url);
      [a, b, c] = ["proj-a", "proj-b", "proj-c"].map((p) => s.as(p)) as [Client, Client, Client];
      const entries = expectStatus(await s.admin.get("/v2.0/rbac-policies"), 200).rbac_policies;
      const of = (id: string) => entries.filter((e: Json) => e.object_id === id).map((e: Json) => `${e.action} ${e.target_tenant}`);
      assert.deepEqual(of(shared.id), ["access_as_shared *"]);
      assert.deepEqual(of(ext.id), ["access_as_external *"]);
      assert.deepEqual(of(plain.id), []);
      assert.ok(entries.every((e: Json) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(e.id)), "entries have UUIDs");
      expectStatus(await b.get(`/v2.0/networks/${shared.id}`), 200);
      expectStatus(await b.get(`/v2.0/networks/${ext.id}`), 200);
      expectStatus(await b.get(`/v2.0/networks/${plain.id}`), 404);
    });

    it("lists the extensions a client probes for", async () => {
      const aliases = expectStatus(await a.get("/v2.0/extensions"), 200).extensions.map((e: Json) => e.alias);
      for (const x of ["rbac-policies", "rbac-security-groups", "security-groups-shared-filtering"]) assert.ok(aliases.includes(x), x);
    });
  });
}
