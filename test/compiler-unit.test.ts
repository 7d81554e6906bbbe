// The compiler (model -> HostIntent) and the hub's incremental deltas, on a
// World fed with views as the change log carries them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileHost } from "../src/core/compiler/compile.ts";
import { type IntentItem, itemsOf, key, type NetItem, type SvcItem } from "../src/contract/intent.ts";
import type { View } from "../src/core/compiler/records.ts";
import { World } from "../src/core/compiler/world.ts";
import type { Model } from "../src/core/service/model.ts";
import { Hub } from "../src/southbound/hub.ts";
import type { IntentMessage } from "../src/contract/southbound.ts";

let rev = 0;
const uuid = (n: number) => `${String(n).padStart(8, "0")}-0000-4000-8000-000000000000`;

function put(w: World | Hub, kind: string, object: View) {
  const c = { revision: ++rev, kind, id: object.id as string, op: "update", object };
  if (w instanceof Hub) w.applyBatch([c]);
  else w.put(c);
}
function del(w: World | Hub, kind: string, id: string) {
  const c = { revision: ++rev, kind, id, op: "delete", object: null };
  if (w instanceof Hub) w.applyBatch([c]);
  else w.put(c);
}

const agent = (host: string, vtep: string, roles: string[] = ["compute"]) => ({ id: `agent-${host}`, host, configurations: { tunneling_ip: vtep, roles } });
const network = (id: string, vni: number) => ({ id, name: `net-${vni}`, "provider:network_type": "vxlan", "provider:segmentation_id": vni, "provider:physical_network": null, mtu: 1450 });
const subnet = (id: string, net: string, cidr: string, gw: string) => ({ id, network_id: net, cidr, gateway_ip: gw, ip_version: cidr.includes(":") ? 6 : 4 });
function port(id: string, net: string, host: string, ip: string, opts: Partial<Record<string, unknown>> = {}) {
  return {
    id,
    network_id: net,
    mac_address: `fa:16:3e:00:00:${id.slice(-2)}`,
    fixed_ips: [{ subnet_id: opts.subnet ?? "s1", ip_address: ip }],
    allowed_address_pairs: [],
    security_groups: ["sgA"],
    port_security_enabled: true,
    "binding:host_id": host,
    device_owner: "compute:nova",
    admin_state_up: true,
    ...opts,
  };
}
const rule = (id: string, group: string, r: Record<string, unknown>) => ({
  id,
  security_group_id: group,
  direction: "ingress",
  ethertype: "IPv4",
  protocol: null,
  port_range_min: null,
  port_range_max: null,
  remote_ip_prefix: null,
  remote_group_id: null,
  ...r,
});

function baseWorld(): World {
  const w = new World();
  put(w, "agent", agent("h1", "172.31.0.11"));
  put(w, "agent", agent("h2", "172.31.0.12"));
  put(w, "agent", agent("h3", "172.31.0.13"));
  put(w, "network", network("n1", 1001));
  put(w, "network", network("n2", 1002));
  put(w, "subnet", subnet("s1", "n1", "10.0.0.0/24", "10.0.0.1"));
  put(w, "subnet", subnet("s2", "n2", "10.0.0.0/24", "10.0.0.1"));
  put(w, "security_group", { id: "sgA" });
  put(w, "security_group", { id: "sgB" });
  return w;
}

describe("compiler", () => {
  it("gives a host nothing of a network it has no port on", () => {
    const w = baseWorld();
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3"));
    put(w, "port", port("p2", "n1", "h2", "10.0.0.4"));
    put(w, "port", port("p3", "n2", "h2", "10.0.0.3", { subnet: "s2" }));
    const h1 = compileHost(w, "h1");
    assert.deepEqual(itemsOf(h1, "net").map((n) => n.id), ["n1"]);
    assert.ok(![...h1.keys()].some((k) => k.includes("n2") || k.includes("p3")), "h1 must not see n2 or its ports");
    const h3 = compileHost(w, "h3");
    assert.equal(h3.size, 0, "a host without ports gets an empty intent");
  });

  it("describes local ports for the kernel: tap name, addresses with prefix, gateway, MTU, what they may send from", () => {
    const w = baseWorld();
    const id = "6f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    put(w, "port", port(id, "n1", "h1", "10.0.0.3", { allowed_address_pairs: [{ ip_address: "10.0.0.200" }, { ip_address: "10.9.0.0/16", mac_address: "fa:16:3e:aa:bb:cc" }] }));
    const item = compileHost(w, "h1").get(key.port(id));
    assert.ok(item && item.kind === "port");
    assert.equal(item.device, "tap6f0b1c2d-3e");
    assert.deepEqual(item.addresses, ["10.0.0.3/24"]);
    assert.deepEqual(item.gateways, ["10.0.0.1"]);
    assert.equal(item.mtu, 1450);
    assert.deepEqual(item.security, {
      ingress: ["sgA"],
      egress: ["sgA"],
      allowed: [
        { mac: "fa:16:3e:00:00:2d", ip: "10.0.0.3" },
        { mac: "fa:16:3e:00:00:2d", ip: "10.0.0.200" },
        { mac: "fa:16:3e:aa:bb:cc", ip: "10.9.0.0/16" },
      ],
    });
  });

  it("lists remote endpoints with MAC, addresses and VTEP, and the other hosts' VTEPs for flooding", () => {
    const w = baseWorld();
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3"));
    put(w, "port", port("p2", "n1", "h2", "10.0.0.4", { allowed_address_pairs: [{ ip_address: "10.0.0.50/32" }, { ip_address: "10.0.1.0/24" }] }));
    put(w, "port", port("p4", "n1", "h2", "10.0.0.5"));
    put(w, "port", port("p5", "n1", "nohost", "10.0.0.6")); // bound to a host without an agent: no VTEP known
    const h1 = compileHost(w, "h1");
    assert.deepEqual(h1.get(key.remote("n1", "p2")), { kind: "remote", network: "n1", port: "p2", mac: "fa:16:3e:00:00:p2", ips: ["10.0.0.4", "10.0.0.50"], vtep: "172.31.0.12", host: "h2" });
    assert.ok(h1.has(key.remote("n1", "p4")));
    assert.ok(!h1.has(key.remote("n1", "p5")), "no remote entry without a VTEP");
    assert.ok(!h1.has(key.remote("n1", "p1")), "a local port is not a remote");
    assert.deepEqual((h1.get(key.net("n1")) as NetItem).vteps, ["172.31.0.12"]);
    assert.equal((h1.get(key.net("n1")) as NetItem).segment, 1001);
  });

  it("compiles every rule shape, and the members of remote groups only", () => {
    const w = baseWorld();
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3"));
    put(w, "port", port("p2", "n1", "h2", "10.0.0.4", { security_groups: ["sgB"], allowed_address_pairs: [{ ip_address: "10.0.7.0/24" }] }));
    put(w, "port", port("p3", "n2", "h3", "10.0.0.9", { subnet: "s2", security_groups: ["sgB"] }));
    const shapes: Record<string, Record<string, unknown>> = {
      any: {},
      tcpRange: { protocol: "tcp", port_range_min: 8000, port_range_max: 8080 },
      udpOne: { protocol: "udp", port_range_min: 53, port_range_max: 53, direction: "egress" },
      icmpType: { protocol: "icmp", port_range_min: 8, port_range_max: 0 },
      v6: { ethertype: "IPv6", protocol: "ipv6-icmp" },
      number: { protocol: "132" },
      cidr: { remote_ip_prefix: "192.168.5.0/24", protocol: "tcp", port_range_min: 22, port_range_max: 22 },
      group: { remote_group_id: "sgB" },
    };
    let n = 0;
    for (const [name, r] of Object.entries(shapes)) put(w, "security_group_rule", rule(`r-${name}`, "sgA", r));
    put(w, "security_group_rule", rule("r-unused", "sgB", { remote_group_id: "sgA" }));
    n = Object.keys(shapes).length;
    const h1 = compileHost(w, "h1");
    const rules = itemsOf(h1, "rule");
    assert.equal(rules.length, n, "sgA's rules, and not sgB's (no local port uses sgB)");
    const byId = new Map(rules.map((r) => [r.id, r]));
    assert.deepEqual(byId.get("r-tcpRange"), { kind: "rule", id: "r-tcpRange", group: "sgA", direction: "ingress", ethertype: "IPv4", protocol: "tcp", portMin: 8000, portMax: 8080, remoteCidr: null, remoteGroup: null });
    assert.equal(byId.get("r-udpOne")!.direction, "egress");
    assert.equal(byId.get("r-icmpType")!.portMin, 8);
    assert.equal(byId.get("r-v6")!.ethertype, "IPv6");
    assert.equal(byId.get("r-number")!.protocol, "132");
    assert.equal(byId.get("r-cidr")!.remoteCidr, "192.168.5.0/24");
    assert.equal(byId.get("r-group")!.remoteGroup, "sgB");
    assert.deepEqual(itemsOf(h1, "sg").map((s) => s.id), ["sgA"]);
    const members = itemsOf(h1, "member").sort((a, b) => a.port.localeCompare(b.port));
    assert.deepEqual(members, [
      { kind: "member", group: "sgB", port: "p2", ips: ["10.0.0.4", "10.0.7.0/24"] },
      { kind: "member", group: "sgB", port: "p3", ips: ["10.0.0.9"] },
    ]);
  });

  it("filters a port isolated by seam:policy by the groups it names per direction, and counts it in member_of's groups without their rules", () => {
    const w = baseWorld();
    put(w, "security_group", { id: "sgA" });
    put(w, "security_group", { id: "sgB" });
    put(w, "security_group", { id: "sgC" });
    put(w, "security_group_rule", rule("rA", "sgA", { remote_group_id: "sgA" }));
    put(w, "security_group_rule", rule("rB", "sgB", { remote_group_id: "sgC" }));
    put(w, "security_group_rule", rule("rC", "sgC", { protocol: "tcp", port_range_min: 80, port_range_max: 80 }));
    // p1: ingress isolated, admitted by sgB only; egress still its security_groups (sgA)
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3", { "seam:policy": { ingress: ["sgB"], member_of: [] } }));
    // p2: another host, a member of sgC (which p1's ingress rule names) but not filtered by it
    put(w, "port", port("p2", "n1", "h2", "10.0.0.4", { "seam:policy": { ingress: [], egress: null, member_of: ["sgC"] } }));
    const h1 = compileHost(w, "h1");
    const p1 = h1.get(key.port("p1")) as unknown as { security: { ingress: string[]; egress: string[] } };
    assert.deepEqual(p1.security.ingress, ["sgB"]);
    assert.deepEqual(p1.security.egress, ["sgA"]);
    assert.deepEqual(itemsOf(h1, "sg").map((g) => g.id).sort(), ["sgA", "sgB"], "sgC filters nothing here: its rules stay away");
    assert.deepEqual(itemsOf(h1, "rule").map((r) => r.id).sort(), ["rA", "rB"]);
    const members = itemsOf(h1, "member").map((m) => `${m.group}/${m.port}`).sort();
    assert.deepEqual(members, ["sgA/p1", "sgA/p2", "sgC/p2"], "p2 still counts in sgA (its security_groups) and in sgC (member_of)");
    const h2 = compileHost(w, "h2");
    const p2 = h2.get(key.port("p2")) as unknown as { security: { ingress: string[]; egress: string[] } };
    assert.deepEqual(p2.security.ingress, [], "deny-all ingress: no group admits anything");
    assert.deepEqual(p2.security.egress, ["sgA"]);
    assert.ok(!itemsOf(h2, "rule").some((r) => r.id === "rC"));
  });

  it("gives a port without port security no filters", () => {
    const w = baseWorld();
    put(w, "security_group_rule", rule("r1", "sgA", {}));
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3", { port_security_enabled: false, security_groups: [] }));
    const h1 = compileHost(w, "h1");
    assert.equal((h1.get(key.port("p1")) as { security: unknown }).security, null);
    assert.equal(itemsOf(h1, "rule").length, 0);
  });

  it("puts service ports (router interfaces) on the network host", () => {
    const w = baseWorld();
    put(w, "agent", agent("h3", "172.31.0.13", ["compute", "network"]));
    put(w, "port", port("p1", "n1", "h1", "10.0.0.3"));
    put(w, "port", port("rtr", "n1", "", "10.0.0.1", { device_owner: "network:router_interface", security_groups: [], port_security_enabled: false }));
    const h1 = compileHost(w, "h1");
    assert.equal((h1.get(key.remote("n1", "rtr")) as { vtep: string }).vtep, "172.31.0.13");
    assert.deepEqual((h1.get(key.net("n1")) as NetItem).vteps, ["172.31.0.13"]);
    assert.ok(compileHost(w, "h3").has(key.net("n1")), "the network host takes part in networks with service ports");
    assert.ok(!compileHost(w, "h2").has(key.net("n1")));
  });
});

describe("services", () => {
  const svcView = (id: string, targets: { ip: string; port: string | null }[]) => ({
    id, network_id: "n3", subnet_id: "s3", vip_address: "10.96.0.10",
    ports: [{ name: "http", protocol: "tcp", port: 80, targets: targets.map((t) => ({ ip_address: t.ip, port: 8080, port_id: t.port })) }],
  });
  function servicesWorld(): World {
    const w = baseWorld();
    put(w, "network", network("n3", 1003));
    put(w, "subnet", subnet("s2", "n2", "10.0.1.0/24", "10.0.1.1"));
    put(w, "subnet", subnet("s3", "n3", "10.96.0.0/16", "10.96.255.254"));
    put(w, "port", port(uuid(1), "n1", "h1", "10.0.0.3", { mac_address: "fa:16:3e:00:00:01" })); // a VM, on n1
    put(w, "port", port(uuid(2), "n2", "h2", "10.0.1.4", { subnet: "s2", device_owner: "compute:kubernetes", mac_address: "fa:16:3e:00:00:02" })); // a pod, on n2
    put(w, "port", port(uuid(3), "n2", "h1", "10.0.1.5", { subnet: "s2", device_owner: "compute:kubernetes", mac_address: "fa:16:3e:00:00:03" })); // a pod, on n2, beside the VM
    return w;
  }
  const routerLeg = (id: number, net: string, sub: string, ip: string) =>
    port(uuid(id), net, "", ip, { subnet: sub, device_owner: "network:router_interface", device_id: "r1", security_groups: [], port_security_enabled: false, mac_address: `fa:16:3e:00:00:${id}` });

  it("translates on the backends' hosts, and on the hosts of networks a router joins to the service subnet", () => {
    const w = servicesWorld();
    put(w, "service", svcView("svc1", [{ ip: "10.0.1.4", port: uuid(2) }, { ip: "10.0.1.5", port: uuid(3) }]));
    const s = (h: string) => compileHost(w, h).get(key.svc("svc1")) as { clients: { network: string; nexthops: { ip: string; mac: string }[] }[] } | undefined;
    assert.deepEqual(s("h2")?.clients, [{ network: "n2", nexthops: [{ ip: "10.0.1.4", mac: "fa:16:3e:00:00:02" }, { ip: "10.0.1.5", mac: "fa:16:3e:00:00:03" }] }]);
    assert.deepEqual(s("h1")?.clients.map((c) => c.network), ["n2"], "the VM's network is no client until a router joins it");
    assert.equal(s("h3"), undefined, "a host with no client has nothing of it");
    put(w, "router", { id: "r1", admin_state_up: true, routes: [] });
    put(w, "port", routerLeg(11, "n1", "s1", "10.0.0.1"));
    put(w, "port", routerLeg(12, "n2", "s2", "10.0.1.1"));
    put(w, "port", routerLeg(13, "n3", "s3", "10.96.255.254"));
    assert.deepEqual(s("h1")?.clients, [
      { network: "n1", nexthops: [{ ip: "10.0.1.4", mac: "fa:16:3e:00:00:11" }, { ip: "10.0.1.5", mac: "fa:16:3e:00:00:11" }] },
      { network: "n2", nexthops: [{ ip: "10.0.1.4", mac: "fa:16:3e:00:00:02" }, { ip: "10.0.1.5", mac: "fa:16:3e:00:00:03" }] },
    ], "from the VM's network, backends are reached through the router's interface there");
  });

  it("keeps a backend no router reaches from a client network out of that network's next hops", () => {
    const w = servicesWorld();
    put(w, "router", { id: "r1", admin_state_up: true, routes: [] });
    put(w, "port", routerLeg(11, "n1", "s1", "10.0.0.1"));
    put(w, "port", routerLeg(13, "n3", "s3", "10.96.255.254")); // n1 joined to the service subnet, but not to n2
    put(w, "service", svcView("svc1", [{ ip: "10.0.1.4", port: uuid(2) }, { ip: "192.0.2.9", port: null }]));
    const item = compileHost(w, "h1").get(key.svc("svc1")) as SvcItem;
    assert.deepEqual(item.clients.find((c) => c.network === "n1")?.nexthops, []);
    assert.equal(item.ports[0]!.targets.length, 2, "the backends are all listed; the next hops say which a network reaches");
  });
});

describe("hub deltas", () => {
  /** Applies messages as an agent does and checks the result equals a full compile, after every change. */
  it("keeps every watcher equal to a full compile through random changes, and resumes from a revision", () => {
    const hub = new Hub({} as Model);
    const agents: Record<string, Map<string, IntentItem>> = {};
    const revisions: Record<string, number> = {};
    const apply = (host: string) => (msg: IntentMessage) => {
      const m = (agents[host] ??= new Map());
      if (msg.type === "SNAPSHOT") {
        m.clear();
        for (const [k, v] of Object.entries(msg.items)) m.set(k, v);
      } else if (msg.type === "DELTA") {
        for (const [k, v] of Object.entries(msg.set)) m.set(k, v);
        for (const k of msg.del) m.delete(k);
      }
      revisions[host] = msg.revision;
    };
    for (const [h, vtep] of [["h1", "172.31.0.11"], ["h2", "172.31.0.12"], ["h3", "172.31.0.13"]] as const) put(hub, "agent", agent(h, vtep));
    put(hub, "network", network("n1", 1001));
    put(hub, "network", network("n2", 1002));
    put(hub, "subnet", subnet("s1", "n1", "10.0.0.0/24", "10.0.0.1"));
    put(hub, "subnet", subnet("s2", "n2", "10.0.0.0/24", "10.0.0.1"));
    for (const g of ["sgA", "sgB"]) put(hub, "security_group", { id: g });
    const unwatch: Record<string, () => void> = {};
    for (const h of ["h1", "h2", "h3"]) unwatch[h] = hub.watch(h, undefined, apply(h));

    let seed = 7;
    // the high bits: an LCG's low bits have short periods (seed % 2 would just alternate)
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 12) % n);
    const hosts = ["h1", "h2", "h3", ""];
    // One arm per thing a resolver reads: l2 (ports, networks, subnets, agents), policy (ports, rules, groups),
    // routers (routers, floating IPs, router ports), DHCP (its port, subnets' options, every port's names).
    // Mostly plain rules: a remote group changes the host's scope and so hides the per-key path.
    const groupView = (g: string) => ({ id: g, security_group_rules: Array.from({ length: rnd(3) }, (_, j) => rule(`e${g}${j}`, g, rnd(5) ? { protocol: "udp", port_range_min: 1 + rnd(3), port_range_max: 9 } : { remote_group_id: rnd(2) ? "sgA" : "sgB" })) });
    // a NetworkPolicy's isolation: other groups filter one direction, or none (deny), and membership without filtering
    const someGroups = () => ["sgA", "sgB"].filter(() => rnd(2) === 0);
    const policyView = () => (rnd(3) ? null : { ingress: rnd(2) ? someGroups() : null, egress: rnd(3) ? null : someGroups(), member_of: someGroups() });
    for (let i = 0; i < 600; i++) {
      const what = rnd(20);
      const pid = uuid(rnd(12));
      if (what < 5) {
        const net = rnd(2) ? "n1" : "n2";
        const ip = `10.0.0.${10 + rnd(200)}`;
        const name = `vm${rnd(3)}`; // dns_name renamed, and extra_dhcp_opts: what the DHCP server's host items carry
        put(hub, "port", port(pid, net, hosts[rnd(4)]!, ip, { subnet: net === "n1" ? "s1" : "s2", security_groups: rnd(2) ? ["sgA"] : ["sgA", "sgB"], "seam:policy": policyView(), port_security_enabled: rnd(8) !== 0, dns_assignment: [{ hostname: name, ip_address: ip, fqdn: `${name}.openstack.local.` }], extra_dhcp_opts: rnd(4) ? [] : [{ opt_name: "ntp-server", opt_value: "10.0.0.123", ip_version: 4 }] }));
      } else if (what < 7) del(hub, "port", pid);
      else if (what < 9) put(hub, "security_group_rule", rule(`r${rnd(6)}`, rnd(2) ? "sgA" : "sgB", rnd(2) ? { remote_group_id: rnd(2) ? "sgA" : "sgB" } : { protocol: "tcp", port_range_min: 22, port_range_max: 22 }));
      else if (what < 10) del(hub, "security_group_rule", `r${rnd(6)}`);
      else if (what < 11) {
        const h = ["h1", "h2", "h3"][rnd(3)]!; // an agent re-registers, maybe with another VTEP or role
        put(hub, "agent", agent(h, `172.31.1.${rnd(3)}${h.slice(1)}`, rnd(4) ? ["compute"] : ["compute", "network"]));
      } else if (what < 12) put(hub, "network", { ...network(rnd(2) ? "n1" : "n2", 1001), mtu: [1450, 1400][rnd(2)] });
      else if (what < 13) {
        const n = 1 + rnd(2); // a subnet's network never changes (Neutron: network_id is immutable)
        put(hub, "subnet", { ...subnet(`s${n}`, `n${n}`, ["10.0.0.0/24", "10.0.0.0/16"][rnd(2)]!, ["10.0.0.1", "10.0.0.254"][rnd(2)]!), enable_dhcp: rnd(3) !== 0, dns_nameservers: rnd(2) ? [] : ["10.0.0.53"] });
      }
      else if (what < 15) put(hub, "security_group", groupView(rnd(2) ? "sgA" : "sgB")); // a group's view carries its rules
      else if (what < 16) {
        if (rnd(2) === 0) del(hub, "security_group", rnd(2) ? "sgA" : "sgB");
        else put(hub, "security_group", { id: rnd(2) ? "sgA" : "sgB" });
      } else if (what < 17) {
        const r = `r${rnd(2)}`;
        if (rnd(6) === 0) del(hub, "router", r);
        else put(hub, "router", { id: r, admin_state_up: rnd(5) !== 0, distributed: rnd(2) === 0, external_gateway_info: rnd(3) ? { network_id: "n2", enable_snat: rnd(2) === 0 } : null, routes: rnd(2) ? [] : [{ destination: "10.9.0.0/24", nexthop: "10.0.0.9" }] });
      } else if (what < 18) {
        const f = `f${rnd(3)}`;
        if (rnd(5) === 0) del(hub, "floatingip", f);
        else put(hub, "floatingip", { id: f, floating_ip_address: `203.0.113.${rnd(9)}`, ...(rnd(3) ? { router_id: `r${rnd(2)}`, port_id: pid, fixed_ip_address: `10.0.0.${rnd(9)}` } : { router_id: null, port_id: null, fixed_ip_address: null }) });
      } else if (what < 19) {
        // a service on n2's subnet: backends are ports or not, routers join it to n1 or not
        const sid = `svc${rnd(2)}`;
        if (rnd(5) === 0) del(hub, "service", sid);
        else put(hub, "service", { id: sid, network_id: "n2", subnet_id: "s2", vip_address: "10.0.0.250", ports: [{ name: "", protocol: rnd(2) ? "tcp" : "udp", port: 80, targets: Array.from({ length: rnd(3) }, () => ({ ip_address: `10.0.0.${10 + rnd(9)}`, port: 8080, port_id: rnd(4) ? uuid(rnd(12)) : null })) }] });
      } else {
        // a network's own port: a router's gateway on n2, an interface (centralised or distributed), a csnat port, or the DHCP port on n1 or n2
        const owner = ["network:router_gateway", "network:router_interface", "network:router_interface_distributed", "network:router_centralized_snat", "network:dhcp"][rnd(5)]!;
        const net = owner === "network:router_gateway" || rnd(2) ? "n2" : "n1";
        const id = uuid(200 + rnd(6));
        if (rnd(4) === 0) del(hub, "port", id);
        else put(hub, "port", port(id, net, "", `10.0.0.${50 + rnd(5)}`, { subnet: net === "n1" ? "s1" : "s2", device_owner: owner, device_id: `r${rnd(2)}`, security_groups: [], port_security_enabled: false }));
      }
      if (rnd(20) === 0) put(hub, "port", port(uuid(100 + rnd(3)), "n1", "", "10.0.0.1", { device_owner: "network:router_interface", security_groups: [], port_security_enabled: false }));
      if (i === 300) unwatch.h2!(); // h2's agent goes away for a while; the hub keeps its state
      if (i === 450) hub.watch("h2", revisions.h2, apply("h2"));
      for (const h of ["h1", "h2", "h3"]) {
        if (h === "h2" && i >= 300 && i < 450) continue;
        const want = compileHost(hub.world, h);
        assert.deepEqual(new Map([...agents[h]!].sort()), new Map([...want].sort()), `host ${h} after step ${i}`);
      }
    }
  });
});
