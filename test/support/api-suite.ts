// The Neutron API behaviour suite, run once per store (SQLite file, PostgreSQL server).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EXTENSIONS } from "../../src/front/neutron/extensions.ts";
import { type Client, expectStatus, type Json, makeStore, startServer, type Store, type TestServer } from "./api.ts";

export function apiSuite(kind: "sqlite" | "postgres"): void {
  describe(`Neutron API on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    let admin: Client;
    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
      admin = s.admin;
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });

    async function net(c: Client, body: Json = {}): Promise<Json> {
      return expectStatus(await c.post("/v2.0/networks", { network: { name: "n", ...body } }), 201, "network create").network;
    }
    async function subnet(c: Client, networkId: string, cidr: string, extra: Json = {}): Promise<Json> {
      return expectStatus(await c.post("/v2.0/subnets", { subnet: { network_id: networkId, cidr, ip_version: cidr.includes(":") ? 6 : 4, ...extra } }), 201, "subnet create").subnet;
    }
    async function port(c: Client, networkId: string, extra: Json = {}): Promise<Json> {
      return expectStatus(await c.post("/v2.0/ports", { port: { network_id: networkId, ...extra } }), 201, "port create").port;
    }

    it("discovers versions and lists exactly the implemented extensions", async () => {
      const root = expectStatus(await admin.get("/"), 200);
      assert.equal(root.versions[0].id, "v2.0");
      const ext = expectStatus(await admin.get("/v2.0/extensions"), 200);
      const aliases = ext.extensions.map((e: Json) => e.alias);
      for (const a of ["binding", "dns-integration", "security-group", "router", "external-net", "trunk", "trunk-details", "allowed-address-pairs", "port-security", "standard-attr-tag", "quotas", "pagination", "sorting", "project-id", "revision-if-match", "filter-validation", "empty-string-filtering", "ip-substring-filtering"]) {
        assert.ok(aliases.includes(a), `extension ${a} listed`);
      }
      assert.equal(aliases.length, EXTENSIONS.length);
      expectStatus(await admin.get("/v2.0/extensions/trunk"), 200);
      assert.equal(expectStatus(await admin.get("/v2.0/extensions/qos"), 404).NeutronError.type, "ExtensionNotFound");
    });

    it("gives overlay networks distinct VNIs from the range and MTU 1450; refuses VLAN here", async () => {
      const a = await net(admin);
      const b = await net(admin);
      assert.equal(a["provider:network_type"], "vxlan");
      assert.equal(a.mtu, 1450);
      assert.ok(a["provider:segmentation_id"] >= 1001);
      assert.notEqual(a["provider:segmentation_id"], b["provider:segmentation_id"]);
      const dup = await admin.post("/v2.0/networks", { network: { "provider:network_type": "vxlan", "provider:segmentation_id": a["provider:segmentation_id"] } });
      assert.equal(expectStatus(dup, 409).NeutronError.type, "TunnelIdInUse");
      const vlan = await admin.post("/v2.0/networks", { network: { "provider:network_type": "vlan", "provider:physical_network": "physnet1" } });
      assert.match(expectStatus(vlan, 400).NeutronError.message, /vlan/);
      const flat = await net(admin, { "provider:network_type": "flat", "provider:physical_network": "phys-a" });
      assert.equal(flat.mtu, 1500);
      assert.equal(flat["provider:segmentation_id"], null);
      const flat2 = await admin.post("/v2.0/networks", { network: { "provider:network_type": "flat", "provider:physical_network": "phys-a" } });
      assert.equal(expectStatus(flat2, 409).NeutronError.type, "FlatNetworkInUse");
      const local = await net(admin, { "provider:network_type": "local" });
      assert.equal(local["provider:segmentation_id"], null);
      // Members neither see nor set provider attributes.
      const member = s.as("p-provider");
      const mine = await net(member);
      assert.ok(!("provider:segmentation_id" in mine));
      assert.equal(expectStatus(await member.post("/v2.0/networks", { network: { shared: true } }), 403).NeutronError.type, "PolicyNotAuthorized");
    });

    it("validates subnets: defaults, IPv6, overlaps, pools and gateway", async () => {
      const n = await net(admin);
      const v4 = await subnet(admin, n.id, "10.10.0.0/24");
      assert.equal(v4.gateway_ip, "10.10.0.1");
      assert.deepEqual(v4.allocation_pools, [{ start: "10.10.0.2", end: "10.10.0.254" }]);
      const v6 = await subnet(admin, n.id, "fd00:10::/64");
      assert.equal(v6.gateway_ip, "fd00:10::1");
      assert.deepEqual(v6.allocation_pools, [{ start: "fd00:10::2", end: "fd00:10::ffff:ffff:ffff:ffff" }]);
      const shown = expectStatus(await admin.get(`/v2.0/networks/${n.id}`), 200).network;
      assert.deepEqual(shown.subnets, [v4.id, v6.id].sort());
      assert.equal(expectStatus(await admin.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.10.0.128/25", ip_version: 4 } }), 400).NeutronError.type, "InvalidInput");
      const gwInPool = await admin.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.11.0.0/24", ip_version: 4, gateway_ip: "10.11.0.5", allocation_pools: [{ start: "10.11.0.2", end: "10.11.0.10" }] } });
      assert.equal(expectStatus(gwInPool, 409).NeutronError.type, "GatewayConflictWithAllocationPools");
      const outside = await admin.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.12.0.0/24", ip_version: 4, allocation_pools: [{ start: "10.12.0.2", end: "10.12.1.10" }] } });
      assert.equal(expectStatus(outside, 400).NeutronError.type, "OutOfBoundsAllocationPool");
      const hostBits = await admin.post("/v2.0/subnets", { subnet: { network_id: n.id, cidr: "10.13.0.1/24", ip_version: 4 } });
      assert.match(expectStatus(hostBits, 400).NeutronError.message, /10\.13\.0\.0\/24/);
    });

    it("refuses subnets Neutron refuses: no room or no unicast for DHCP, EUI-64 modes off /64, disagreeing IPv6 modes", async () => {
      const n = await net(admin);
      const refused = async (body: Json, why: RegExp) => {
        const r = await admin.post("/v2.0/subnets", { subnet: { network_id: n.id, ip_version: String(body.cidr).includes(":") ? 6 : 4, ...body } });
        assert.match(expectStatus(r, 400, JSON.stringify(body)).NeutronError.message, why);
      };
      for (const cidr of ["10.14.0.0/31", "10.14.0.8/32", "fd00:14::/127", "fd00:15::1/128"]) await refused({ cidr }, /incompatible with DHCP/);
      await refused({ cidr: "224.0.0.0/24" }, /Multicast/);
      await refused({ cidr: "127.0.0.0/24" }, /Loopback/);
      await refused({ cidr: "0.0.0.0/0", enable_dhcp: false }, /not allowed/);
      await refused({ cidr: "fd00:16::/80", ipv6_ra_mode: "slaac", ipv6_address_mode: "slaac" }, /requires the prefix to be \/64/);
      await refused({ cidr: "fd00:17::/64", ipv6_ra_mode: "slaac", ipv6_address_mode: "dhcpv6-stateful" }, /must be the same value/);
      // without DHCP a point-to-point /31 is fine, as in Neutron; turning DHCP on is then refused
      const p2p = await subnet(admin, n.id, "10.14.1.0/31", { enable_dhcp: false, gateway_ip: null });
      assert.match(expectStatus(await admin.put(`/v2.0/subnets/${p2p.id}`, { subnet: { enable_dhcp: true } }), 400).NeutronError.message, /incompatible with DHCP/);
      await subnet(admin, n.id, "fd00:18::/64", { ipv6_ra_mode: "dhcpv6-stateless", ipv6_address_mode: "dhcpv6-stateless" });
    });

    it("allocates first-free addresses in pool order, never the gateway, and reuses released ones", async () => {
      const n = await net(admin);
      const sn = await subnet(admin, n.id, "192.168.100.0/29", { enable_dhcp: false }); // usable .1-.6, gateway .1; no DHCP port
      const p1 = await port(admin, n.id);
      const p2 = await port(admin, n.id);
      assert.equal(p1.fixed_ips[0].ip_address, "192.168.100.2");
      assert.equal(p2.fixed_ips[0].ip_address, "192.168.100.3");
      const taken = await admin.post("/v2.0/ports", { port: { network_id: n.id, fixed_ips: [{ ip_address: "192.168.100.3" }] } });
      assert.equal(expectStatus(taken, 409).NeutronError.type, "IpAddressAlreadyAllocated");
      const gw = await admin.post("/v2.0/ports", { port: { network_id: n.id, fixed_ips: [{ ip_address: "192.168.100.1" }] } });
      assert.equal(expectStatus(gw, 409).NeutronError.type, "GatewayIpInUse");
      const foreign = await admin.post("/v2.0/ports", { port: { network_id: n.id, fixed_ips: [{ ip_address: "10.99.0.5" }] } });
      expectStatus(foreign, 400);
      const bcast = await admin.post("/v2.0/ports", { port: { network_id: n.id, fixed_ips: [{ ip_address: "192.168.100.7" }] } });
      expectStatus(bcast, 400);
      const p6 = await port(admin, n.id, { fixed_ips: [{ subnet_id: sn.id, ip_address: "192.168.100.6" }] });
      assert.equal(p6.fixed_ips[0].ip_address, "192.168.100.6");
      await port(admin, n.id); // .4
      await port(admin, n.id); // .5
      const full = await admin.post("/v2.0/ports", { port: { network_id: n.id } });
      assert.equal(expectStatus(full, 409).NeutronError.type, "IpAddressGenerationFailure");
      expectStatus(await admin.del(`/v2.0/ports/${p2.id}`), 204);
      const again = await port(admin, n.id);
      assert.equal(again.fixed_ips[0].ip_address, "192.168.100.3");
      // Moving a port to another address frees the old one in the same change.
      const moved = expectStatus(await admin.put(`/v2.0/ports/${again.id}`, { port: { fixed_ips: [{ subnet_id: sn.id }] } }), 200).port;
      assert.equal(moved.fixed_ips[0].ip_address, "192.168.100.3", "keeps its address when the subnet is asked again");
    });

    it("makes the network's DHCP port with its first DHCP subnet (.2), follows the subnets, and drops it with the last", async () => {
      const n = await net(admin);
      const dhcpPorts = async () => expectStatus(await admin.get(`/v2.0/ports?network_id=${n.id}&device_owner=network:dhcp`), 200).ports as Json[];
      const v4 = await subnet(admin, n.id, "10.77.0.0/24");
      const [d] = await dhcpPorts();
      assert.deepEqual(d.fixed_ips, [{ subnet_id: v4.id, ip_address: "10.77.0.2" }]);
      assert.equal(d.device_id, `dhcp-${n.id}`);
      assert.equal(d.port_security_enabled, false);
      assert.deepEqual(d.security_groups, []);
      assert.equal((await port(admin, n.id)).fixed_ips[0].ip_address, "10.77.0.3", "a VM made after it gets .3 (seeds/001)");
      const off = await subnet(admin, n.id, "10.78.0.0/24", { enable_dhcp: false });
      assert.equal((await dhcpPorts())[0].fixed_ips.length, 1, "no address on a subnet without DHCP");
      expectStatus(await admin.put(`/v2.0/subnets/${off.id}`, { subnet: { enable_dhcp: true } }), 200);
      assert.deepEqual((await dhcpPorts())[0].fixed_ips.map((f: Json) => f.ip_address), ["10.77.0.2", "10.78.0.2"]);
      expectStatus(await admin.put(`/v2.0/subnets/${v4.id}`, { subnet: { enable_dhcp: false } }), 200);
      const [after] = await dhcpPorts();
      assert.equal(after.id, d.id, "the same port, one address fewer");
      assert.deepEqual(after.fixed_ips.map((f: Json) => f.ip_address), ["10.78.0.2"]);
      expectStatus(await admin.del(`/v2.0/subnets/${off.id}`), 204);
      assert.deepEqual(await dhcpPorts(), [], "gone with the last DHCP subnet");
      const dhcpAgents = expectStatus(await admin.get(`/v2.0/networks/${n.id}/dhcp-agents`), 200);
      assert.deepEqual(dhcpAgents.agents, []);
    });

    it("generates fa:16:3e MACs unique per network, and refuses a taken one", async () => {
      const n = await net(admin);
      await subnet(admin, n.id, "10.20.0.0/24");
      const a = await port(admin, n.id);
      assert.match(a.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
      const dup = await admin.post("/v2.0/ports", { port: { network_id: n.id, mac_address: a.mac_address } });
      assert.equal(expectStatus(dup, 409).NeutronError.type, "MacAddressInUse");
      const other = await net(admin);
      const same = await port(admin, other.id, { mac_address: a.mac_address.toUpperCase() });
      assert.equal(same.mac_address, a.mac_address);
    });

    it("assigns DNS names, default security groups, bindings and port security as Neutron does", async () => {
      const n = await net(admin, { dns_domain: "openstack.local." });
      await subnet(admin, n.id, "10.42.0.0/24");
      const hello = await port(admin, n.id, { name: "hello", dns_name: "hello", "binding:host_id": "host-1", device_owner: "compute:nova" });
      assert.deepEqual(hello.dns_assignment, [{ hostname: "hello", ip_address: hello.fixed_ips[0].ip_address, fqdn: "hello.openstack.local." }]);
      assert.equal(hello["binding:vif_type"], "binding_failed", "no agent lives on host-1 here: Neutron says binding_failed");
      assert.equal(hello.status, "DOWN");
      const anon = await port(admin, n.id);
      assert.equal(anon.dns_assignment[0].hostname, `host-${anon.fixed_ips[0].ip_address.replace(/\./g, "-")}`);
      const groups = expectStatus(await admin.get("/v2.0/security-groups?name=default&project_id=admin"), 200).security_groups;
      assert.equal(groups.length, 1);
      assert.deepEqual(hello.security_groups, [groups[0].id]);
      const rules = groups[0].security_group_rules;
      assert.equal(rules.length, 4);
      assert.equal(rules.filter((r: Json) => r.direction === "ingress" && r.remote_group_id === groups[0].id).length, 2);
      assert.equal(rules.filter((r: Json) => r.direction === "egress" && r.remote_group_id === null && r.remote_ip_prefix === null).length, 2);
      const noSec = await admin.post("/v2.0/ports", { port: { network_id: n.id, port_security_enabled: false, security_groups: [groups[0].id] } });
      expectStatus(noSec, 400);
      const plain = await port(admin, n.id, { port_security_enabled: false });
      assert.deepEqual(plain.security_groups, []);
      const pairs = await port(admin, n.id, { allowed_address_pairs: [{ ip_address: "10.42.0.200" }, { ip_address: "10.42.1.0/24", mac_address: "fa:16:3e:00:00:01" }] });
      assert.deepEqual(pairs.allowed_address_pairs, [
        { ip_address: "10.42.0.200", mac_address: pairs.mac_address },
        { ip_address: "10.42.1.0/24", mac_address: "fa:16:3e:00:00:01" },
      ], "a pair without a MAC shows the port's, as Neutron stores it");
      const member = s.as("p-binding");
      const mn = await net(member);
      const mp = await port(member, mn.id);
      assert.ok(!("binding:host_id" in mp), "binding details are admin-only");
      expectStatus(await member.post("/v2.0/ports", { port: { network_id: mn.id, "binding:host_id": "h" } }), 403);
    });

    it("filters, selects fields, sorts and paginates like Neutron", async () => {
      const n = await net(admin, { name: "filters" });
      const sn = await subnet(admin, n.id, "10.30.0.0/24", { enable_dhcp: false });
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await port(admin, n.id, { name: `p${i}`, device_owner: i % 2 ? "compute:nova" : "compute:kubernetes", device_id: i === 4 ? "" : `dev${i}` }));
      const list = async (q: string) => expectStatus(await admin.get(`/v2.0/ports?network_id=${n.id}&${q}`), 200).ports as Json[];
      assert.equal((await list("device_owner=compute:nova")).length, 2);
      assert.equal((await list("name=p0&name=p1")).length, 2, "a repeated key is OR");
      assert.deepEqual((await list("device_id=")).map((p) => p.name), ["p4"], "?device_id= matches the empty value");
      assert.equal((await list(`fixed_ips=ip_address=${made[2].fixed_ips[0].ip_address}`))[0].id, made[2].id);
      assert.equal((await list(`fixed_ips=subnet_id=${sn.id}`)).length, 5);
      assert.equal((await list("fixed_ips=ip_address_substr=10.30.0.")).length, 5);
      const sparse = await list("fields=id&fields=name");
      assert.deepEqual(Object.keys(sparse[0]).sort(), ["id", "name"]);
      const sorted = await list("sort_key=name&sort_dir=desc");
      assert.deepEqual(sorted.map((p) => p.name), ["p4", "p3", "p2", "p1", "p0"]);
      const page1 = expectStatus(await admin.get(`/v2.0/ports?network_id=${n.id}&sort_key=name&limit=2`), 200);
      assert.deepEqual(page1.ports.map((p: Json) => p.name), ["p0", "p1"]);
      const next = page1.ports_links.find((l: Json) => l.rel === "next").href as string;
      const page2 = expectStatus(await admin.get(next.replace(/^https?:\/\/[^/]+/, "")), 200);
      assert.deepEqual(page2.ports.map((p: Json) => p.name), ["p2", "p3"]);
      assert.ok(page2.ports_links.some((l: Json) => l.rel === "previous"));
      assert.equal(expectStatus(await admin.get("/v2.0/ports?bogus=1"), 400).NeutronError.type, "HTTPBadRequest");
      expectStatus(await admin.get("/v2.0/ports?sort_key=bogus"), 400);
      expectStatus(await admin.get("/v2.0/ports?limit=-1"), 400);
      expectStatus(await admin.get(`/v2.0/ports?admin_state_up=maybe`), 400);
      assert.equal((await list("admin_state_up=True")).length, 5);
    });

    it("supports tags and the four tag filters", async () => {
      const a = await net(admin, { name: "tag-a" });
      const b = await net(admin, { name: "tag-b" });
      expectStatus(await admin.put(`/v2.0/networks/${a.id}/tags`, { tags: ["red", "blue"] }), 200);
      expectStatus(await admin.req("PUT", `/v2.0/networks/${b.id}/tags/red`), 201);
      expectStatus(await admin.req("GET", `/v2.0/networks/${b.id}/tags/red`), 204);
      expectStatus(await admin.req("GET", `/v2.0/networks/${b.id}/tags/blue`), 404);
      const names = async (q: string) => (expectStatus(await admin.get(`/v2.0/networks?${q}`), 200).networks as Json[]).map((x) => x.name).filter((x: string) => x.startsWith("tag-")).sort();
      assert.deepEqual(await names("tags=red,blue"), ["tag-a"]);
      assert.deepEqual(await names("tags-any=red,blue"), ["tag-a", "tag-b"]);
      assert.deepEqual(await names("not-tags=red,blue"), ["tag-b"]);
      assert.deepEqual(await names("not-tags-any=blue"), ["tag-b"]);
      expectStatus(await admin.req("DELETE", `/v2.0/networks/${a.id}/tags/red`), 204);
      assert.deepEqual(expectStatus(await admin.get(`/v2.0/networks/${a.id}/tags`), 200).tags, ["blue"]);
      const rev = expectStatus(await admin.get(`/v2.0/networks/${a.id}`), 200).network.revision_number;
      assert.ok(rev >= 3, "tag changes bump the revision");
    });

    it("creates in bulk atomically", async () => {
      const n = await net(admin, { name: "bulk" });
      await subnet(admin, n.id, "10.40.0.0/24", { enable_dhcp: false });
      const ok = expectStatus(await admin.post("/v2.0/ports", { ports: [{ network_id: n.id, name: "b1" }, { network_id: n.id, name: "b2" }] }), 201);
      assert.equal(ok.ports.length, 2);
      const bad = await admin.post("/v2.0/ports", { ports: [{ network_id: n.id, name: "b3" }, { network_id: n.id, fixed_ips: [{ ip_address: ok.ports[0].fixed_ips[0].ip_address }] }] });
      expectStatus(bad, 409);
      const names = (expectStatus(await admin.get(`/v2.0/ports?network_id=${n.id}`), 200).ports as Json[]).map((p) => p.name).sort();
      assert.deepEqual(names, ["b1", "b2"], "nothing of a failed bulk request remains");
    });

    it("honours If-Match: revision_number", async () => {
      const n = await net(admin);
      const stale = await admin.put(`/v2.0/networks/${n.id}`, { network: { name: "x" } }, { "if-match": `revision_number=${n.revision_number + 5}` });
      assert.equal(expectStatus(stale, 412).NeutronError.type, "RevisionNumberConstraintFailed");
      const fresh = await admin.put(`/v2.0/networks/${n.id}`, { network: { name: "x" } }, { "if-match": `revision_number=${n.revision_number}` });
      assert.equal(expectStatus(fresh, 200).network.revision_number, n.revision_number + 1);
      expectStatus(await admin.del(`/v2.0/networks/${n.id}`, { "if-match": "revision_number=1" }), 412);
      expectStatus(await admin.del(`/v2.0/networks/${n.id}`), 204);
    });

    describe("routers and floating IPs", () => {
      const p = () => s.as("p-router");
      let ext: Json;
      before(async () => {
        ext = await net(admin, { "router:external": true, name: "public" });
        await subnet(admin, ext.id, "172.24.4.0/24");
      });
      /** A project network with a subnet and a VM port, and a router (with an interface on it, and a gateway, when asked). */
      async function fixture(o: { itf?: boolean; gateway?: boolean } = {}) {
        const n = await net(p());
        const sn = await subnet(p(), n.id, "10.0.0.0/24");
        const vm = await port(p(), n.id, { device_owner: "compute:nova" });
        const r = expectStatus(await p().post("/v2.0/routers", { router: { name: "r" } }), 201).router;
        const itf = o.itf ? expectStatus(await p().put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: sn.id }), 200) : null;
        if (o.gateway) expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.id } } }), 200);
        return { n, sn, vm, r, itf };
      }
      const floatingIp = async () => expectStatus(await p().post("/v2.0/floatingips", { floatingip: { floating_network_id: ext.id } }), 201).floatingip;

      it("gives a subnet's router interface the subnet's gateway address", async () => {
        const { sn, r } = await fixture();
        const itf = expectStatus(await p().put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: sn.id }), 200);
        assert.equal(itf.subnet_id, sn.id);
        const rport = expectStatus(await p().get(`/v2.0/ports/${itf.port_id}`), 200).port;
        assert.equal(rport.fixed_ips[0].ip_address, "10.0.0.1");
        assert.equal(rport.device_owner, "network:router_interface");
      });

      it("refuses to delete a router interface through the port API", async () => {
        const { itf } = await fixture({ itf: true });
        expectStatus(await p().del(`/v2.0/ports/${itf!.port_id}`), 409);
      });

      it("gives a router's external gateway an external address, with SNAT on by default", async () => {
        const { r } = await fixture({ itf: true });
        const gw = expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.id } } }), 200).router;
        assert.equal(gw.external_gateway_info.enable_snat, true);
        assert.equal(gw.external_gateway_info.external_fixed_ips.length, 1);
      });

      it("allocates a floating IP from the external network's subnet", async () => {
        assert.match((await floatingIp()).floating_ip_address, /^172\.24\.4\./);
      });

      it("refuses a floating IP from a network that is not external", async () => {
        const { n } = await fixture();
        expectStatus(await p().post("/v2.0/floatingips", { floatingip: { floating_network_id: n.id } }), 400);
      });

      it("refuses to associate a floating IP with a port no router with a gateway reaches", async () => {
        const { vm } = await fixture({ itf: true });
        const early = await p().put(`/v2.0/floatingips/${(await floatingIp()).id}`, { floatingip: { port_id: vm.id } });
        assert.equal(expectStatus(early, 404).NeutronError.type, "ExternalGatewayForFloatingIPNotFound");
      });

      it("associates a floating IP with the port's fixed IP and the router that reaches it, and disassociates it", async () => {
        const { vm, r } = await fixture({ itf: true, gateway: true });
        const fip = await floatingIp();
        const assoc = expectStatus(await p().put(`/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: vm.id } }), 200).floatingip;
        assert.equal(assoc.fixed_ip_address, vm.fixed_ips[0].ip_address);
        assert.equal(assoc.router_id, r.id);
        const free = expectStatus(await p().put(`/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: null } }), 200).floatingip;
        assert.equal(free.port_id, null);
      });

      it("accepts a static route only with a next hop on one of the router's subnets", async () => {
        const { r } = await fixture({ itf: true });
        expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { routes: [{ destination: "10.9.0.0/16", nexthop: "192.0.2.1" }] } }), 400);
        const routed = expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { routes: [{ destination: "10.9.0.0/16", nexthop: "10.0.0.50" }] } }), 200).router;
        assert.equal(routed.routes.length, 1);
      });

      it("refuses to remove an interface a static route's next hop is on (409), until the route goes", async () => {
        const { r, sn } = await fixture({ itf: true });
        expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { routes: [{ destination: "10.9.0.0/16", nexthop: "10.0.0.50" }] } }), 200);
        const refused = expectStatus(await p().put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id }), 409);
        assert.equal(refused.NeutronError.type, "RouterInterfaceInUseByRoute");
        expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { routes: [] } }), 200);
        expectStatus(await p().put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id }), 200);
      });

      it("refuses to remove an interface a floating IP is reached through, until it is disassociated", async () => {
        const { sn, vm, r } = await fixture({ itf: true, gateway: true });
        const fip = await floatingIp();
        expectStatus(await p().put(`/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: vm.id } }), 200);
        expectStatus(await p().put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id }), 409);
        expectStatus(await p().put(`/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: null } }), 200);
        expectStatus(await p().put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id }), 200);
        expectStatus(await p().del(`/v2.0/floatingips/${fip.id}`), 204);
      });

      it("refuses to delete a router that has interfaces, and deletes it once they are gone", async () => {
        const { sn, r } = await fixture({ itf: true });
        expectStatus(await p().del(`/v2.0/routers/${r.id}`), 409);
        expectStatus(await p().put(`/v2.0/routers/${r.id}/remove_router_interface`, { subnet_id: sn.id }), 200);
        expectStatus(await p().del(`/v2.0/routers/${r.id}`), 204);
      });

      it("keeps a distributed router's interface owners and csnat ports in step with its mode and gateway", async () => {
        const { r, sn } = await fixture({ itf: true });
        const ports = async (owner: string) => expectStatus(await admin.get(`/v2.0/ports?device_id=${r.id}&device_owner=${owner}`), 200).ports as Json[];
        expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { distributed: true } }), 403);
        expectStatus(await admin.put(`/v2.0/routers/${r.id}`, { router: { distributed: true } }), 200);
        assert.equal((await ports("network:router_interface_distributed")).length, 1, "its interface becomes a distributed one");
        assert.equal((await ports("network:router_centralized_snat")).length, 0, "no gateway, no SNAT instance");
        expectStatus(await p().put(`/v2.0/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.id } } }), 200);
        const snat = await ports("network:router_centralized_snat");
        assert.equal(snat.length, 1, "with a gateway, an address of its SNAT instance on each internal subnet");
        assert.equal(snat[0].fixed_ips[0].subnet_id, sn.id);
        expectStatus(await admin.put(`/v2.0/routers/${r.id}`, { router: { distributed: false } }), 200);
        assert.equal((await ports("network:router_interface")).length, 1);
        assert.equal((await ports("network:router_centralized_snat")).length, 0, "centralised again: the csnat port goes");
      });

      it("makes a port given as an interface the router's, refuses it twice, and deletes it on removal", async () => {
        const r2 = expectStatus(await p().post("/v2.0/routers", { router: { name: "r2" } }), 201).router;
        const n2 = await net(p());
        await subnet(p(), n2.id, "10.1.0.0/24");
        const own = await port(p(), n2.id, { fixed_ips: [{ ip_address: "10.1.0.254" }] });
        const byPort = expectStatus(await p().put(`/v2.0/routers/${r2.id}/add_router_interface`, { port_id: own.id }), 200);
        assert.equal(byPort.port_id, own.id);
        const owned = expectStatus(await p().get(`/v2.0/ports/${own.id}`), 200).port;
        assert.equal(owned.device_owner, "network:router_interface");
        assert.equal(owned.device_id, r2.id);
        expectStatus(await p().put(`/v2.0/routers/${r2.id}/add_router_interface`, { port_id: own.id }), 409);
        expectStatus(await p().put(`/v2.0/routers/${r2.id}/remove_router_interface`, { port_id: own.id }), 200);
        expectStatus(await p().get(`/v2.0/ports/${own.id}`), 404);
        expectStatus(await p().del(`/v2.0/routers/${r2.id}`), 204);
      });
    });

    describe("security groups", () => {
      const p = () => s.as("p-sg");
      const group = async (name = "web") => expectStatus(await p().post("/v2.0/security-groups", { security_group: { name } }), 201).security_group;
      const addRule = (c: Client, r: Json) => c.post("/v2.0/security-group-rules", { security_group_rule: r });
      const ssh = (sg: string) => ({ security_group_id: sg, direction: "ingress", protocol: "tcp", port_range_min: 22, port_range_max: 22, remote_ip_prefix: "10.0.0.0/8" });

      it("gives a new group Neutron's two egress rules, one per family", async () => {
        const sg = await group();
        assert.deepEqual(sg.security_group_rules.map((r: Json) => `${r.direction}/${r.ethertype}`).sort(), ["egress/IPv4", "egress/IPv6"]);
      });

      it("refuses the same rule twice", async () => {
        const sg = await group();
        expectStatus(await addRule(p(), ssh(sg.id)), 201);
        assert.equal(expectStatus(await addRule(p(), ssh(sg.id)), 409).NeutronError.type, "SecurityGroupRuleExists");
      });

      it("refuses an inverted port range, ports without a protocol, a prefix of the other family and an unknown protocol", async () => {
        const sg = await group();
        for (const bad of [{ port_range_min: 30, port_range_max: 20 }, { protocol: null }, { remote_ip_prefix: "fd00::/8" }, { protocol: "bogus" }]) {
          expectStatus(await addRule(p(), { ...ssh(sg.id), ...bad }), 400, JSON.stringify(bad));
        }
      });

      it("accepts the group itself as a rule's remote group", async () => {
        const sg = await group();
        const icmp = expectStatus(await addRule(p(), { security_group_id: sg.id, direction: "ingress", protocol: "icmp", remote_group_id: sg.id }), 201);
        assert.equal(icmp.security_group_rule.remote_group_id, sg.id);
      });

      it("hides another project's group as a remote group from a member, and lets an admin name it (F10)", async () => {
        const sg = await group();
        const foreign = expectStatus(await s.as("p-sg-other").post("/v2.0/security-groups", { security_group: { name: "theirs" } }), 201).security_group;
        expectStatus(await addRule(p(), { security_group_id: sg.id, direction: "ingress", remote_group_id: foreign.id }), 404);
        expectStatus(await addRule(admin, { security_group_id: sg.id, direction: "ingress", remote_group_id: foreign.id }), 201);
      });

      it("refuses to delete the default group, or to make a second group named default", async () => {
        const def = expectStatus(await p().get("/v2.0/security-groups?name=default"), 200).security_groups[0];
        assert.equal(expectStatus(await p().del(`/v2.0/security-groups/${def.id}`), 409).NeutronError.type, "SecurityGroupCannotRemoveDefault");
        assert.equal(expectStatus(await p().post("/v2.0/security-groups", { security_group: { name: "default" } }), 409).NeutronError.type, "SecurityGroupDefaultAlreadyExists");
      });

      it("refuses to delete a group a port uses, and deletes it once the port is gone", async () => {
        const sg = await group();
        const n = await net(p());
        await subnet(p(), n.id, "10.50.0.0/24");
        const used = await port(p(), n.id, { security_groups: [sg.id] });
        assert.equal(expectStatus(await p().del(`/v2.0/security-groups/${sg.id}`), 409).NeutronError.type, "SecurityGroupInUse");
        expectStatus(await p().del(`/v2.0/ports/${used.id}`), 204);
        expectStatus(await p().del(`/v2.0/security-groups/${sg.id}`), 204);
      });
    });

    describe("trunks", () => {
      /** A trunk on a fresh parent port with one subport (VLAN 100), and a spare port. */
      async function trunk() {
        const n = await net(admin);
        await subnet(admin, n.id, "10.60.0.0/24");
        const [parent, c1, c2] = [await port(admin, n.id), await port(admin, n.id), await port(admin, n.id)];
        const t = expectStatus(await admin.post("/v2.0/trunks", { trunk: { port_id: parent.id, sub_ports: [{ port_id: c1.id, segmentation_type: "vlan", segmentation_id: 100 }] } }), 201).trunk;
        return { t, parent, c1, c2 };
      }
      const add = (id: string, port: string, vlan: number) => admin.put(`/v2.0/trunks/${id}/add_subports`, { sub_ports: [{ port_id: port, segmentation_type: "vlan", segmentation_id: vlan }] });

      it("makes a subport's port a trunk:subport and lists it in the parent's trunk_details", async () => {
        const { t, parent, c1, c2 } = await trunk();
        assert.equal(t.sub_ports.length, 1);
        expectStatus(await add(t.id, c2.id, 101), 200);
        assert.deepEqual(expectStatus(await admin.get(`/v2.0/ports/${parent.id}`), 200).port.trunk_details.sub_ports.map((x: Json) => x.segmentation_id), [100, 101]);
        assert.equal(expectStatus(await admin.get(`/v2.0/ports/${c1.id}`), 200).port.device_owner, "trunk:subport");
      });

      it("refuses a VLAN id the trunk already uses", async () => {
        const { t, c2 } = await trunk();
        assert.equal(expectStatus(await add(t.id, c2.id, 100), 409).NeutronError.type, "DuplicateSubPort");
      });

      it("refuses to delete a trunk's parent port, or to make it the parent of a second trunk", async () => {
        const { parent } = await trunk();
        assert.equal(expectStatus(await admin.del(`/v2.0/ports/${parent.id}`), 409).NeutronError.type, "PortInUseAsTrunkParent");
        assert.equal(expectStatus(await admin.post("/v2.0/trunks", { trunk: { port_id: parent.id } }), 409).NeutronError.type, "TrunkPortInUse");
      });

      it("removes subports, and frees the parent once the trunk is deleted", async () => {
        const { t, parent, c1 } = await trunk();
        expectStatus(await admin.put(`/v2.0/trunks/${t.id}/remove_subports`, { sub_ports: [{ port_id: c1.id }] }), 200);
        assert.equal(expectStatus(await admin.get(`/v2.0/trunks/${t.id}/get_subports`), 200).sub_ports.length, 0);
        expectStatus(await admin.del(`/v2.0/trunks/${t.id}`), 204);
        expectStatus(await admin.del(`/v2.0/ports/${parent.id}`), 204);
      });
    });

    describe("quotas", () => {
      it("shows a project its own quota, unlimited by default, and nobody else's", async () => {
        const p = s.as("p-quota-read");
        assert.equal(expectStatus(await p.get("/v2.0/quotas/p-quota-read"), 200).quota.network, -1);
        expectStatus(await p.get("/v2.0/quotas/someone-else"), 403);
      });

      it("lets only an admin set a quota", async () => {
        expectStatus(await s.as("p-quota-set").put("/v2.0/quotas/p-quota-set", { quota: { network: 1 } }), 403);
        expectStatus(await admin.put("/v2.0/quotas/p-quota-set", { quota: { network: 1 } }), 200);
        expectStatus(await admin.put("/v2.0/quotas/p-quota-set", { quota: { bogus: 1 } }), 400);
      });

      it("refuses a create over the quota, and counts what is used in the details", async () => {
        const p = s.as("p-quota");
        expectStatus(await admin.put("/v2.0/quotas/p-quota", { quota: { network: 1 } }), 200);
        await net(p);
        assert.equal(expectStatus(await p.post("/v2.0/networks", { network: {} }), 409).NeutronError.type, "OverQuota");
        assert.deepEqual(expectStatus(await p.get("/v2.0/quotas/p-quota/details"), 200).quota.network, { limit: 1, used: 1, reserved: 0 });
      });

      it("goes back to the defaults when an admin deletes a project's quota", async () => {
        expectStatus(await admin.put("/v2.0/quotas/p-quota-reset", { quota: { network: 3 } }), 200);
        expectStatus(await admin.del("/v2.0/quotas/p-quota-reset"), 204);
        assert.equal(expectStatus(await admin.get("/v2.0/quotas/p-quota-reset"), 200).quota.network, -1);
      });
    });

    it("lists agents (none until agents register)", async () => {
      assert.deepEqual(expectStatus(await admin.get("/v2.0/agents"), 200).agents, []);
    });

    it("appends every write to the change log with monotonic revisions, and long-polls", async () => {
      const first = expectStatus(await admin.get("/api/v1/changes?since=0&limit=10000"), 200);
      const revs = first.changes.map((c: Json) => c.revision);
      assert.ok(revs.length > 10);
      assert.deepEqual(revs, [...revs].sort((a: number, b: number) => a - b));
      assert.equal(new Set(revs).size, revs.length);
      const since = first.revision;
      const waiting = admin.get(`/api/v1/changes?since=${since}&timeout=10`);
      await new Promise((r) => setTimeout(r, 100));
      const n = await net(admin, { name: "watched" });
      const got = expectStatus(await waiting, 200);
      assert.equal(got.changes[0].id, n.id);
      assert.equal(got.changes[0].op, "create");
      assert.equal(got.changes[0].object.name, "watched");
      expectStatus(await s.as("p-x").get("/api/v1/changes?since=0"), 403);
    });

    it("isolates tenants: another project's resources are 404, and address spaces may overlap (F13)", async () => {
      const a = s.as("tenant-a");
      const b = s.as("tenant-b");
      const na = await net(a, { name: "a-private" });
      const nb = await net(b, { name: "b-private" });
      const sa = await subnet(a, na.id, "10.0.0.0/24");
      const sb = await subnet(b, nb.id, "10.0.0.0/24");
      const pa = await port(a, na.id);
      const pb = await port(b, nb.id);
      assert.equal(pa.fixed_ips[0].ip_address, pb.fixed_ips[0].ip_address, "both get the same first address");
      const ga = expectStatus(await a.get("/v2.0/security-groups"), 200).security_groups[0];
      const listed = expectStatus(await b.get("/v2.0/networks"), 200).networks.map((x: Json) => x.id);
      assert.ok(!listed.includes(na.id));
      assert.ok(!expectStatus(await b.get("/v2.0/ports"), 200).ports.some((x: Json) => x.id === pa.id));
      assert.ok(!expectStatus(await b.get("/v2.0/subnets"), 200).subnets.some((x: Json) => x.id === sa.id));
      assert.equal(expectStatus(await b.get(`/v2.0/networks/${na.id}`), 404).NeutronError.type, "NetworkNotFound");
      assert.equal(expectStatus(await b.get(`/v2.0/ports/${pa.id}`), 404).NeutronError.type, "PortNotFound");
      assert.equal(expectStatus(await b.get(`/v2.0/security-groups/${ga.id}`), 404).NeutronError.type, "SecurityGroupNotFound");
      expectStatus(await b.put(`/v2.0/networks/${na.id}`, { network: { name: "mine" } }), 404);
      expectStatus(await b.del(`/v2.0/ports/${pa.id}`), 404);
      expectStatus(await b.put(`/v2.0/security-groups/${ga.id}`, { security_group: { description: "x" } }), 404);
      expectStatus(await b.post("/v2.0/ports", { port: { network_id: na.id } }), 404);
      expectStatus(await b.post("/v2.0/subnets", { subnet: { network_id: na.id, cidr: "10.1.0.0/24", ip_version: 4 } }), 404);
      expectStatus(await b.post("/v2.0/ports", { port: { network_id: nb.id, security_groups: [ga.id] } }), 404);
      expectStatus(await b.post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: ga.id, direction: "ingress" } }), 404);
      // A shared network is visible and attachable, but still not another project's to change.
      const shared = await net(admin, { name: "shared", shared: true });
      await subnet(admin, shared.id, "10.77.0.0/24");
      expectStatus(await b.get(`/v2.0/networks/${shared.id}`), 200);
      expectStatus(await b.post("/v2.0/ports", { port: { network_id: shared.id } }), 201);
      expectStatus(await b.put(`/v2.0/networks/${shared.id}`, { network: { name: "taken" } }), 403);
      // A reader reads but does not write.
      const reader = s.as("tenant-a", "reader");
      expectStatus(await reader.get(`/v2.0/networks/${na.id}`), 200);
      expectStatus(await reader.post("/v2.0/networks", { network: {} }), 403);
      void sb;
    });
  });
}
