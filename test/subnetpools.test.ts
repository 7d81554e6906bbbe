// Subnet pools (subnet_allocation, default-subnetpools): subnets cut by length
// from a pool, each block unique across the pool, on both stores; a shared pool
// is every project's to cut from, a private one nobody else's.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, expectStatus, type Json, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`subnet pools on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    let admin: Client;
    const alice = () => s.as("p-alice");
    const bob = () => s.as("p-bob");
    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
      admin = s.admin;
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });
    const make = async (c: Client, plural: string, singular: string, body: Json) => expectStatus(await c.post(`/v2.0/${plural}`, { [singular]: body }), 201, `${singular} create`)[singular];
    const network = (c: Client) => make(c, "networks", "network", { name: "n" });
    const cut = (c: Client, networkId: string, body: Json) => c.post("/v2.0/subnets", { subnet: { network_id: networkId, ...body } });

    it("cuts subnets by length from a pool: the default length, a given one, then the next free block", async () => {
      const pool = await make(alice(), "subnetpools", "subnetpool", { name: "pods", prefixes: ["10.40.0.0/16"], default_prefixlen: 24 });
      assert.deepEqual([pool.ip_version, pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen, pool.shared], [4, 16, 24, 32, false]);
      const n = await network(alice());
      const a = expectStatus(await cut(alice(), n.id, { subnetpool_id: pool.id, ip_version: 4 }), 201).subnet;
      assert.deepEqual([a.cidr, a.subnetpool_id, a.gateway_ip], ["10.40.0.0/24", pool.id, "10.40.0.1"]);
      const n2 = await network(alice());
      const b = expectStatus(await cut(alice(), n2.id, { subnetpool_id: pool.id, prefixlen: 26 }), 201).subnet;
      assert.equal(b.cidr, "10.40.1.0/26");
      // named CIDRs: inside and free is taken; overlapping one of the pool's subnets (on any network) is 409; outside is 400
      const n3 = await network(alice());
      assert.equal(expectStatus(await cut(alice(), n3.id, { subnetpool_id: pool.id, cidr: "10.40.0.128/25" }), 409).NeutronError.type, "SubnetAllocationFailed");
      assert.equal(expectStatus(await cut(alice(), n3.id, { subnetpool_id: pool.id, cidr: "10.41.0.0/24" }), 400).NeutronError.type, "CidrNotInSubnetPool");
      assert.equal(expectStatus(await cut(alice(), n3.id, { subnetpool_id: pool.id, cidr: "10.40.7.0/24" }), 201).subnet.cidr, "10.40.7.0/24");
      assert.equal(expectStatus(await cut(alice(), n3.id, { subnetpool_id: pool.id, prefixlen: 8 }), 400).NeutronError.type, "IllegalSubnetPoolPrefixLength");
      // a freed block is cut again
      expectStatus(await alice().del(`/v2.0/subnets/${a.id}`), 204);
      assert.equal(expectStatus(await cut(alice(), n.id, { subnetpool_id: pool.id }), 201).subnet.cidr, "10.40.0.0/24");
    });

    it("gives concurrent cuts different blocks", async () => {
      const pool = await make(alice(), "subnetpools", "subnetpool", { name: "race", prefixes: ["10.50.0.0/20"], default_prefixlen: 28 });
      const nets = await Promise.all(Array.from({ length: 12 }, () => network(alice())));
      const replies = await Promise.all(nets.map((n) => cut(alice(), n.id, { subnetpool_id: pool.id })));
      const got = replies.map((r) => expectStatus(r, 201).subnet.cidr);
      assert.equal(new Set(got).size, 12, got.join(" "));
    });

    it("refuses what Neutron refuses: no cidr and no pool, mixed families, a pool that would shrink, a pool in use", async () => {
      const n = await network(alice());
      assert.match(expectStatus(await cut(alice(), n.id, { ip_version: 4 }), 400).NeutronError.message, /subnetpool must be specified in the absence of a cidr/);
      expectStatus(await alice().post("/v2.0/subnetpools", { subnetpool: { name: "x", prefixes: ["10.0.0.0/8", "2001:db8::/32"] } }), 400);
      expectStatus(await alice().post("/v2.0/subnetpools", { subnetpool: { name: "x", prefixes: ["10.0.0.0/8"], min_prefixlen: 24, default_prefixlen: 16 } }), 400);
      const pool = await make(alice(), "subnetpools", "subnetpool", { name: "grow", prefixes: ["10.60.0.0/24", "10.60.1.0/24"] });
      assert.deepEqual(pool.prefixes, ["10.60.0.0/23"], "merged as Neutron shows them");
      expectStatus(await alice().put(`/v2.0/subnetpools/${pool.id}`, { subnetpool: { prefixes: ["10.60.0.0/24"] } }), 400);
      assert.deepEqual(expectStatus(await alice().put(`/v2.0/subnetpools/${pool.id}`, { subnetpool: { prefixes: ["10.60.0.0/23", "10.70.0.0/24"] } }), 200).subnetpool.prefixes, ["10.60.0.0/23", "10.70.0.0/24"]);
      const sub = expectStatus(await cut(alice(), n.id, { subnetpool_id: pool.id, prefixlen: 24 }), 201).subnet;
      assert.equal(expectStatus(await alice().del(`/v2.0/subnetpools/${pool.id}`), 409).NeutronError.type, "SubnetPoolInUse");
      expectStatus(await alice().del(`/v2.0/subnets/${sub.id}`), 204);
      expectStatus(await alice().del(`/v2.0/subnetpools/${pool.id}`), 204);
    });

    it("shares a pool only when an admin makes it shared, and cuts from the admin's default one on request", async () => {
      const mine = await make(alice(), "subnetpools", "subnetpool", { name: "private", prefixes: ["10.80.0.0/16"], default_prefixlen: 24 });
      const bn = await network(bob());
      expectStatus(await bob().get(`/v2.0/subnetpools/${mine.id}`), 404);
      expectStatus(await cut(bob(), bn.id, { subnetpool_id: mine.id }), 404);
      expectStatus(await alice().post("/v2.0/subnetpools", { subnetpool: { name: "s", prefixes: ["10.81.0.0/16"], shared: true } }), 403);
      const pub = await make(admin, "subnetpools", "subnetpool", { name: "cloud", prefixes: ["10.90.0.0/16"], default_prefixlen: 26, shared: true, is_default: true });
      assert.ok(expectStatus(await bob().get("/v2.0/subnetpools"), 200).subnetpools.some((p: Json) => p.id === pub.id));
      assert.ok(!expectStatus(await bob().get("/v2.0/subnetpools"), 200).subnetpools.some((p: Json) => p.id === mine.id));
      const got = expectStatus(await cut(bob(), bn.id, { use_default_subnetpool: true, ip_version: 4 }), 201).subnet;
      assert.deepEqual([got.cidr, got.subnetpool_id, got.project_id], ["10.90.0.0/26", pub.id, "p-bob"]);
      // the pool's tags (standard-attr-tag names subnetpool)
      expectStatus(await admin.put(`/v2.0/subnetpools/${pub.id}/tags/blue`, {}), 201);
      assert.deepEqual(expectStatus(await admin.get(`/v2.0/subnetpools/${pub.id}/tags`), 200).tags, ["blue"]);
    });
  });
}
