// What Tempest's tempest.api.network found Seam doing differently from Neutron,
// each pinned here as the behaviour Neutron has, so it stays fixed without
// running Tempest (test/tempest.test.ts runs the suite itself).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, expectStatus, type Json, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`Neutron behaviours Tempest checks, on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    let admin: Client;
    const member = () => s.as("p-tempest");
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

    it("words a security-group rule's bad port as Neutron does", async () => {
      const sg = await make(member(), "security-groups", "security_group", { name: "ports" });
      const rule = (protocol: string, min: number | null, max: number | null) =>
        member().post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: sg.id, direction: "ingress", protocol, port_range_min: min, port_range_max: max } });
      const cases: [string, number | null, number | null, string][] = [
        ["tcp", -16, 80, "Invalid value for port -16"],
        ["tcp", 80, 79, "port_range_min must be <= port_range_max"],
        ["tcp", 80, 65536, "Invalid value for port 65536"],
        ["tcp", null, 6, "port_range_min must be <= port_range_max"],
        ["tcp", 0, 10, "Invalid value for port 0"],
        ["icmp", 1, 256, "Invalid value for ICMP code"],
        ["icmp", -1, 25, "Invalid value"],
        ["icmp", null, 6, "ICMP type (port-range-min) is missing"],
        ["icmp", 300, 1, "Invalid value for ICMP type"],
      ];
      for (const [protocol, min, max, words] of cases) {
        const body = expectStatus(await rule(protocol, min, max), 400, `${protocol} ${min}-${max}`);
        assert.ok(body.NeutronError.message.includes(words), `${protocol} ${min}-${max}: ${body.NeutronError.message}`);
      }
      expectStatus(await rule("tcp", 1, 65535), 201, "the whole range");
    });

    it("answers a remote group that names no group with 404, UUID or not", async () => {
      const sg = await make(member(), "security-groups", "security_group", { name: "remote" });
      for (const remote of ["bad_group_id", "5ec3d3c4-0000-4000-8000-000000000000"]) {
        const r = await member().post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: sg.id, direction: "ingress", remote_group_id: remote } });
        assert.equal(expectStatus(r, 404, remote).NeutronError.type, "SecurityGroupNotFound");
      }
    });

    it("refuses to rename a group to default (409), and keeps the default group's name", async () => {
      const sg = await make(member(), "security-groups", "security_group", { name: "plain" });
      expectStatus(await member().put(`/v2.0/security-groups/${sg.id}`, { security_group: { name: "default" } }), 409);
      expectStatus(await member().put(`/v2.0/security-groups/${sg.id}`, { security_group: { name: "renamed" } }), 200);
      const [dflt] = expectStatus(await member().get("/v2.0/security-groups?name=default"), 200).security_groups;
      expectStatus(await member().put(`/v2.0/security-groups/${dflt.id}`, { security_group: { name: "mine" } }), 409);
    });

    it("takes Neutron's .json format suffix on every path, query string kept", async () => {
      const n = await make(member(), "networks", "network", { name: "suffixed" });
      assert.equal(expectStatus(await member().get(`/v2.0/networks/${n.id}.json`), 200).network.id, n.id);
      assert.ok(expectStatus(await member().get("/v2.0/networks.json?name=suffixed"), 200).networks.every((x: Json) => x.name === "suffixed"));
      assert.ok("network" in expectStatus(await member().get("/v2.0/quotas/p-tempest/details.json"), 200).quota);
      expectStatus(await member().del(`/v2.0/networks/${n.id}.json`), 204);
    });

    it("gives a port an address on each SLAAC subnet and one stateful address, in either order", async () => {
      for (const order of ["slaac first", "stateful first"]) {
        const n = await make(member(), "networks", "network", { name: order });
        const slaacBody = { network_id: n.id, ip_version: 6, cidr: "2001:db8:1::/64", ipv6_ra_mode: "slaac", ipv6_address_mode: "slaac" };
        const statefulBody = { network_id: n.id, ip_version: 6, cidr: "2001:db8:2::/64", ipv6_address_mode: "dhcpv6-stateful" };
        const [first, second] = order === "slaac first" ? [slaacBody, statefulBody] : [statefulBody, slaacBody];
        const a = await make(member(), "subnets", "subnet", first);
        const b = await make(member(), "subnets", "subnet", second);
        const [slaac, stateful] = order === "slaac first" ? [a, b] : [b, a];
        const p = await make(member(), "ports", "port", { network_id: n.id, mac_address: "fa:16:3e:00:00:01" });
        const bySubnet = new Map(p.fixed_ips.map((f: Json) => [f.subnet_id, f.ip_address]));
        assert.equal(bySubnet.get(slaac.id), "2001:db8:1:0:f816:3eff:fe00:1", order);
        assert.match(bySubnet.get(stateful.id) as string, /^2001:db8:2::/, order);
      }
    });

    it("takes a SLAAC subnet's addresses off its ports when it is deleted; a router interface still holds it", async () => {
      const n = await make(member(), "networks", "network", { name: "slaac-delete" });
      const v4 = await make(member(), "subnets", "subnet", { network_id: n.id, ip_version: 4, cidr: "10.9.0.0/24" });
      const slaac = await make(member(), "subnets", "subnet", { network_id: n.id, ip_version: 6, cidr: "2001:db8:9::/64", ipv6_ra_mode: "slaac", ipv6_address_mode: "slaac" });
      const p = await make(member(), "ports", "port", { network_id: n.id });
      assert.equal(p.fixed_ips.length, 2);
      expectStatus(await member().del(`/v2.0/subnets/${slaac.id}`), 204);
      const after = expectStatus(await member().get(`/v2.0/ports/${p.id}`), 200).port;
      assert.deepEqual(after.fixed_ips.map((f: Json) => f.subnet_id), [v4.id]);
      assert.ok(after.revision_number > p.revision_number, "the port changed, so agents hear of it");
      // a stateful subnet's address is still the port's to give up
      expectStatus(await member().del(`/v2.0/subnets/${v4.id}`), 409);

      const slaac2 = await make(member(), "subnets", "subnet", { network_id: n.id, ip_version: 6, cidr: "2001:db8:a::/64", ipv6_ra_mode: "slaac", ipv6_address_mode: "slaac" });
      const r = await make(member(), "routers", "router", { name: "r" });
      expectStatus(await member().put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: slaac2.id }), 200);
      assert.equal(expectStatus(await member().del(`/v2.0/subnets/${slaac2.id}`), 409).NeutronError.type, "SubnetInUse");
    });

    it("deletes an external network's floating IPs with it", async () => {
      const ext = await make(admin, "networks", "network", { name: "ext", "router:external": true });
      await make(admin, "subnets", "subnet", { network_id: ext.id, ip_version: 4, cidr: "172.30.0.0/24" });
      const fip = await make(admin, "floatingips", "floatingip", { floating_network_id: ext.id });
      expectStatus(await admin.del(`/v2.0/networks/${ext.id}`), 204);
      expectStatus(await admin.get(`/v2.0/floatingips/${fip.id}`), 404);
      const ports = expectStatus(await admin.get(`/v2.0/ports?device_id=${fip.id}`), 200).ports;
      assert.deepEqual(ports, []);
    });
  });
}
