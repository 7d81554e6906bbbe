// Project B against project A's objects, private and shared, for every kind
// and every reference a request can make, on both stores (issue 14, item 2).
// Each row is Neutron's answer under its default policy: 404 where B may not
// see the object, 403 where it may see it but not do this, 409/400 where
// Neutron's plugins refuse the reference. Afterwards A still owns all of it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, expectStatus, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

type Ids = Record<string, string>;
type Case = [what: string, method: string, path: string, body: ((ids: Ids) => unknown) | undefined, status: number, type?: string];

const cases: Case[] = [
  // networks and subnets
  ["show A's private network", "GET", "/v2.0/networks/{netA}", undefined, 404, "NetworkNotFound"],
  ["update A's private network", "PUT", "/v2.0/networks/{netA}", () => ({ network: { name: "x" } }), 404, "NetworkNotFound"],
  ["delete A's private network", "DELETE", "/v2.0/networks/{netA}", undefined, 404, "NetworkNotFound"],
  ["update A's shared network", "PUT", "/v2.0/networks/{shared}", () => ({ network: { name: "x" } }), 403],
  ["delete A's shared network", "DELETE", "/v2.0/networks/{shared}", undefined, 403],
  ["subnet on A's private network", "POST", "/v2.0/subnets", (i) => ({ subnet: { network_id: i.netA, cidr: "10.200.0.0/24", ip_version: 4 } }), 404, "NetworkNotFound"],
  ["subnet on A's shared network", "POST", "/v2.0/subnets", (i) => ({ subnet: { network_id: i.shared, cidr: "10.201.0.0/24", ip_version: 4 } }), 403],
  ["update A's shared subnet", "PUT", "/v2.0/subnets/{sharedSub}", () => ({ subnet: { name: "x" } }), 403],
  ["delete A's private subnet", "DELETE", "/v2.0/subnets/{subA}", undefined, 404, "SubnetNotFound"],
  // ports on A's networks
  ["port on A's private network", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netA } }), 404, "NetworkNotFound"],
  ["port on A's shared network", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared } }), 201],
  ["port on A's shared network, subnet chosen", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, fixed_ips: [{ subnet_id: i.sharedSub }] } }), 201],
  ["port on A's shared network, address chosen", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, fixed_ips: [{ ip_address: "10.30.0.50" }] } }), 403],
  ["port on A's shared network, the gateway's address", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, fixed_ips: [{ ip_address: "10.30.0.1" }] } }), 403],
  ["port on A's shared network, address pairs", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, allowed_address_pairs: [{ ip_address: "0.0.0.0/0" }] } }), 403],
  ["port on A's shared network, port security off", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, port_security_enabled: false } }), 403],
  ["port on A's shared network, network:dhcp", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, device_owner: "network:dhcp" } }), 403],
  ["port on A's shared network, router interface", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, device_owner: "network:router_interface" } }), 403],
  ["port on A's shared network, MAC chosen", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.shared, mac_address: "fa:16:3e:00:00:77" } }), 403],
  ["B's port on A's shared network gets an address chosen", "PUT", "/v2.0/ports/{bOnShared}", () => ({ port: { fixed_ips: [{ ip_address: "10.30.0.60" }] } }), 403],
  ["B's port on A's shared network gets address pairs", "PUT", "/v2.0/ports/{bOnShared}", () => ({ port: { allowed_address_pairs: [{ ip_address: "10.30.0.1" }] } }), 403],
  ["B's port on A's shared network turns port security off", "PUT", "/v2.0/ports/{bOnShared}", () => ({ port: { port_security_enabled: false, security_groups: [] } }), 403],
  ["B's port on A's shared network renamed", "PUT", "/v2.0/ports/{bOnShared}", () => ({ port: { name: "mine" } }), 200],
  // router-owned ports naming A's router
  ["port as A's router's interface", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netB, device_owner: "network:router_interface", device_id: i.routerA } }), 409, "DeviceIDNotOwnedByTenant"],
  ["port as A's router's gateway", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netB, device_owner: "network:router_gateway", device_id: i.routerA } }), 409, "DeviceIDNotOwnedByTenant"],
  ["port as A's distributed interface", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netB, device_owner: "network:router_interface_distributed", device_id: i.routerA } }), 409, "DeviceIDNotOwnedByTenant"],
  ["B's port turned into A's router's interface", "PUT", "/v2.0/ports/{portB}", (i) => ({ port: { device_owner: "network:router_interface", device_id: i.routerA } }), 409, "DeviceIDNotOwnedByTenant"],
  ["B's interface port moved to A's router", "PUT", "/v2.0/ports/{ifaceB}", (i) => ({ port: { device_id: i.routerA } }), 409, "DeviceIDNotOwnedByTenant"],
  ["port as B's own router's interface", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netB, device_owner: "network:router_interface", device_id: i.routerB } }), 201],
  // A's ports
  ["show A's port", "GET", "/v2.0/ports/{portA}", undefined, 404, "PortNotFound"],
  ["update A's port", "PUT", "/v2.0/ports/{portA}", () => ({ port: { name: "x" } }), 404, "PortNotFound"],
  ["delete A's port", "DELETE", "/v2.0/ports/{portA}", undefined, 404, "PortNotFound"],
  ["A's group on a port", "POST", "/v2.0/ports", (i) => ({ port: { network_id: i.netB, security_groups: [i.sgA] } }), 404, "SecurityGroupNotFound"],
  ["A's group on B's port", "PUT", "/v2.0/ports/{portB}", (i) => ({ port: { security_groups: [i.sgA] } }), 404, "SecurityGroupNotFound"],
  // routers
  ["A's private subnet on B's router", "PUT", "/v2.0/routers/{routerB}/add_router_interface", (i) => ({ subnet_id: i.subA }), 404, "SubnetNotFound"],
  ["A's shared subnet on B's router", "PUT", "/v2.0/routers/{routerB}/add_router_interface", (i) => ({ subnet_id: i.sharedSub }), 400],
  ["A's port on B's router", "PUT", "/v2.0/routers/{routerB}/add_router_interface", (i) => ({ port_id: i.portA }), 404, "PortNotFound"],
  ["B's subnet on A's router", "PUT", "/v2.0/routers/{routerA}/add_router_interface", (i) => ({ subnet_id: i.subB }), 404, "RouterNotFound"],
  ["remove A's router's interface", "PUT", "/v2.0/routers/{routerA}/remove_router_interface", (i) => ({ subnet_id: i.subA }), 404, "RouterNotFound"],
  ["update A's router", "PUT", "/v2.0/routers/{routerA}", () => ({ router: { name: "x" } }), 404, "RouterNotFound"],
  ["delete A's router", "DELETE", "/v2.0/routers/{routerA}", undefined, 404, "RouterNotFound"],
  // security groups
  ["show A's group", "GET", "/v2.0/security-groups/{sgA}", undefined, 404, "SecurityGroupNotFound"],
  ["rename A's group", "PUT", "/v2.0/security-groups/{sgA}", () => ({ security_group: { name: "x" } }), 404, "SecurityGroupNotFound"],
  ["delete A's group", "DELETE", "/v2.0/security-groups/{sgA}", undefined, 404, "SecurityGroupNotFound"],
  ["rule in A's group", "POST", "/v2.0/security-group-rules", (i) => ({ security_group_rule: { security_group_id: i.sgA, direction: "ingress" } }), 404, "SecurityGroupNotFound"],
  ["rule admitting A's group", "POST", "/v2.0/security-group-rules", (i) => ({ security_group_rule: { security_group_id: i.sgB, direction: "ingress", remote_group_id: i.sgA } }), 404, "SecurityGroupNotFound"],
  ["delete A's rule", "DELETE", "/v2.0/security-group-rules/{ruleA}", undefined, 404, "SecurityGroupRuleNotFound"],
  // floating IPs
  ["floating IP on A's port", "POST", "/v2.0/floatingips", (i) => ({ floatingip: { floating_network_id: i.ext, port_id: i.portA } }), 404, "PortNotFound"],
  ["B's floating IP moved to A's port", "PUT", "/v2.0/floatingips/{fipB}", (i) => ({ floatingip: { port_id: i.portA } }), 404, "PortNotFound"],
  ["A's floating IP moved to B's port", "PUT", "/v2.0/floatingips/{fipA}", (i) => ({ floatingip: { port_id: i.portB } }), 404, "FloatingIPNotFound"],
  ["delete A's floating IP", "DELETE", "/v2.0/floatingips/{fipA}", undefined, 404, "FloatingIPNotFound"],
  // trunks
  ["trunk on A's port", "POST", "/v2.0/trunks", (i) => ({ trunk: { port_id: i.portA } }), 404, "PortNotFound"],
  ["A's port as B's subport", "PUT", "/v2.0/trunks/{trunkB}/add_subports", (i) => ({ sub_ports: [{ port_id: i.portA, segmentation_type: "vlan", segmentation_id: 7 }] }), 404, "PortNotFound"],
  ["B's port as A's subport", "PUT", "/v2.0/trunks/{trunkA}/add_subports", (i) => ({ sub_ports: [{ port_id: i.portB2, segmentation_type: "vlan", segmentation_id: 7 }] }), 404, "TrunkNotFound"],
  ["delete A's trunk", "DELETE", "/v2.0/trunks/{trunkA}", undefined, 404, "TrunkNotFound"],
  // quotas
  ["read A's quotas", "GET", "/v2.0/quotas/proj-a", undefined, 403],
  ["set A's quotas", "PUT", "/v2.0/quotas/proj-a", () => ({ quota: { port: 1 } }), 403],
];

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`project B against project A's objects on ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    const ids: Ids = {};
    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
      const a = s.as("proj-a");
      const b = s.as("proj-b");
      const admin = s.admin;
      const make = async (c: Client, path: string, key: string, body: unknown) => expectStatus(await c.post(path, body), 201)[key];
      ids.ext = (await make(admin, "/v2.0/networks", "network", { network: { name: "ext", "router:external": true } })).id;
      ids.extSub = (await make(admin, "/v2.0/subnets", "subnet", { subnet: { network_id: ids.ext, cidr: "198.51.100.0/24", ip_version: 4, enable_dhcp: false } })).id;
      ids.netA = (await make(a, "/v2.0/networks", "network", { network: { name: "a" } })).id;
      ids.subA = (await make(a, "/v2.0/subnets", "subnet", { subnet: { network_id: ids.netA, cidr: "10.10.0.0/24", ip_version: 4 } })).id;
      ids.shared = (await make(admin, "/v2.0/networks", "network", { network: { name: "a-shared", shared: true, project_id: "proj-a" } })).id;
      ids.sharedSub = (await make(a, "/v2.0/subnets", "subnet", { subnet: { network_id: ids.shared, cidr: "10.30.0.0/24", ip_version: 4 } })).id;
      ids.portA = (await make(a, "/v2.0/ports", "port", { port: { network_id: ids.netA } })).id;
      ids.routerA = (await make(a, "/v2.0/routers", "router", { router: { name: "ra", external_gateway_info: { network_id: ids.ext } } })).id;
      expectStatus(await a.put(`/v2.0/routers/${ids.routerA}/add_router_interface`, { subnet_id: ids.subA }), 200);
      ids.sgA = (await make(a, "/v2.0/security-groups", "security_group", { security_group: { name: "ga" } })).id;
      ids.ruleA = (await make(a, "/v2.0/security-group-rules", "security_group_rule", { security_group_rule: { security_group_id: ids.sgA, direction: "ingress", protocol: "tcp" } })).id;
      ids.fipA = (await make(a, "/v2.0/floatingips", "floatingip", { floatingip: { floating_network_id: ids.ext, port_id: ids.portA } })).id;
      const trunkPortA = (await make(a, "/v2.0/ports", "port", { port: { network_id: ids.netA } })).id;
      ids.trunkA = (await make(a, "/v2.0/trunks", "trunk", { trunk: { port_id: trunkPortA } })).id;

      ids.netB = (await make(b, "/v2.0/networks", "network", { network: { name: "b" } })).id;
      ids.subB = (await make(b, "/v2.0/subnets", "subnet", { subnet: { network_id: ids.netB, cidr: "10.10.0.0/24", ip_version: 4 } })).id;
      ids.portB = (await make(b, "/v2.0/ports", "port", { port: { network_id: ids.netB } })).id;
      ids.portB2 = (await make(b, "/v2.0/ports", "port", { port: { network_id: ids.netB } })).id;
      ids.bOnShared = (await make(b, "/v2.0/ports", "port", { port: { network_id: ids.shared } })).id;
      ids.routerB = (await make(b, "/v2.0/routers", "router", { router: { name: "rb", external_gateway_info: { network_id: ids.ext } } })).id;
      ids.ifaceB = (await make(b, "/v2.0/ports", "port", { port: { network_id: ids.netB, device_owner: "network:router_interface", device_id: ids.routerB } })).id;
      ids.sgB = (await make(b, "/v2.0/security-groups", "security_group", { security_group: { name: "gb" } })).id;
      ids.fipB = (await make(b, "/v2.0/floatingips", "floatingip", { floatingip: { floating_network_id: ids.ext } })).id;
      const trunkPortB = (await make(b, "/v2.0/ports", "port", { port: { network_id: ids.netB } })).id;
      ids.trunkB = (await make(b, "/v2.0/trunks", "trunk", { trunk: { port_id: trunkPortB } })).id;
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });

    it(`answers each of ${cases.length} cross-project requests as Neutron does`, async () => {
      const b = s.as("proj-b");
      const wrong: string[] = [];
      for (const [what, method, path, body, status, type] of cases) {
        const url = path.replace(/\{(\w+)\}/g, (_, k: string) => ids[k] ?? `missing-${k}`);
        const r = await b.req(method, url, body?.(ids));
        const gotType = r.body?.NeutronError?.type;
        if (r.status !== status || (type && gotType !== type) || (status >= 400 && typeof gotType !== "string")) wrong.push(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }
      assert.deepEqual(wrong, []);
    });

    it("shows B the subnets it owns and those of shared networks, not the external network's (Neutron's get_subnet)", async () => {
      const b = s.as("proj-b");
      const listed = expectStatus(await b.get("/v2.0/subnets"), 200).subnets.map((x: { id: string }) => x.id).sort();
      assert.deepEqual(listed, [ids.subB, ids.sharedSub].sort());
      expectStatus(await b.get(`/v2.0/subnets/${ids.extSub}`), 404);
      assert.deepEqual(expectStatus(await b.get(`/v2.0/subnets?network_id=${ids.ext}`), 200).subnets, []);
      // the external network itself stays visible, and its addresses usable: a floating IP from that subnet
      expectStatus(await b.get(`/v2.0/networks/${ids.ext}`), 200);
      const fip = expectStatus(await b.post("/v2.0/floatingips", { floatingip: { floating_network_id: ids.ext, subnet_id: ids.extSub } }), 201).floatingip;
      expectStatus(await b.del(`/v2.0/floatingips/${fip.id}`), 204);
    });

    it("leaves A's objects A's: its router has only its own interface and can be taken apart", async () => {
      const a = s.as("proj-a");
      const onRouter = expectStatus(await s.admin.get(`/v2.0/ports?device_id=${ids.routerA}`), 200).ports;
      assert.deepEqual([...new Set(onRouter.map((p: { project_id: string }) => p.project_id))].sort(), ["", "proj-a"], "A's interface and the gateway only");
      const fip = expectStatus(await a.get(`/v2.0/floatingips/${ids.fipA}`), 200).floatingip;
      assert.equal(fip.port_id, ids.portA);
      expectStatus(await a.put(`/v2.0/floatingips/${ids.fipA}`, { floatingip: { port_id: null } }), 200);
      expectStatus(await a.put(`/v2.0/routers/${ids.routerA}/remove_router_interface`, { subnet_id: ids.subA }), 200);
      expectStatus(await a.put(`/v2.0/routers/${ids.routerA}`, { router: { external_gateway_info: {} } }), 200);
      expectStatus(await a.del(`/v2.0/routers/${ids.routerA}`), 204);
    });
  });
}
