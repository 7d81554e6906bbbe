// Routers below the lab: the compiler's router items, the NAT a router's
// namespace gets (rendered, then applied to a real kernel and planned again),
// and the routers manager building a router in scratch namespaces, then doing
// nothing at all after a restart.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { compileHost } from "../src/core/compiler/compile.ts";
import { type IntentItem, itemsOf, key } from "../src/contract/intent.ts";
import { World } from "../src/core/compiler/world.ts";
import { RoutersManager, stopRadvd } from "../src/agent/routers/routers-manager.ts";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { observeRouter } from "../src/agent/routers/observe.ts";
import { planNat, parseNat } from "../src/agent/routers/nat.ts";
import { isNoop, planRouter } from "../src/agent/routers/plan.ts";
import { routerSpecs } from "../src/agent/routers/spec.ts";
import { Exec, run } from "../src/os/exec.ts";
import { assertGolden } from "./support/golden.ts";
import { routedEntries } from "../src/cli/routes.ts";

const isRoot = process.getuid?.() === 0;
let rev = 0;
const put = (w: World, kind: string, object: Record<string, unknown>) => w.put({ revision: ++rev, kind, id: object.id as string, op: "update", object });

const R = "0000000a-0000-4000-8000-000000000000";
const uuid = (n: number) => `${String(n).padStart(8, "0")}-0000-4000-8000-000000000000`;

function routerPort(id: string, net: string, subnet: string, ip: string, owner: string, mac: string) {
  return { id, network_id: net, mac_address: mac, fixed_ips: [{ subnet_id: subnet, ip_address: ip }], allowed_address_pairs: [], security_groups: [], port_security_enabled: false, "binding:host_id": "", device_owner: owner, device_id: R, admin_state_up: true };
}

/** h1 (network host) and h2; networks a and b joined by router R, its gateway on ext, one floating IP for a VM on h2. */
function world(): World {
  const w = new World();
  put(w, "agent", { id: "a1", host: "h1", configurations: { tunneling_ip: "172.31.0.11", roles: ["compute", "network"] } });
  put(w, "agent", { id: "a2", host: "h2", configurations: { tunneling_ip: "172.31.0.12", roles: ["compute"] } });
  for (const [id, vni] of [["na", 1001], ["nb", 1002]] as const) put(w, "network", { id, name: id, "provider:network_type": "vxlan", "provider:segmentation_id": vni, mtu: 1450 });
  put(w, "network", { id: "ext", name: "public", "provider:network_type": "flat", "provider:physical_network": "external", mtu: 1500 });
  put(w, "subnet", { id: "sa", network_id: "na", cidr: "10.0.0.0/26", gateway_ip: "10.0.0.1" });
  put(w, "subnet", { id: "sa6", network_id: "na", cidr: "fd00:a::/64", gateway_ip: "fd00:a::1", ipv6_ra_mode: "slaac", ipv6_address_mode: "slaac" });
  put(w, "subnet", { id: "sb", network_id: "nb", cidr: "10.0.0.64/26", gateway_ip: "10.0.0.65" });
  put(w, "subnet", { id: "sx", network_id: "ext", cidr: "203.0.113.0/24", gateway_ip: "203.0.113.254" });
  put(w, "router", { id: R, admin_state_up: true, external_gateway_info: { network_id: "ext", enable_snat: true }, routes: [{ destination: "192.168.5.0/24", nexthop: "10.0.0.9" }] });
  put(w, "port", routerPort(uuid(2), "nb", "sb", "10.0.0.65", "network:router_interface", "fa:16:3e:00:00:02"));
  put(w, "port", { ...routerPort(uuid(1), "na", "sa", "10.0.0.1", "network:router_interface", "fa:16:3e:00:00:01"), fixed_ips: [{ subnet_id: "sa", ip_address: "10.0.0.1" }, { subnet_id: "sa6", ip_address: "fd00:a::1" }] });
  put(w, "port", routerPort(uuid(3), "ext", "sx", "203.0.113.10", "network:router_gateway", "fa:16:3e:00:00:03"));
  put(w, "port", { ...routerPort(uuid(4), "ext", "sx", "203.0.113.11", "network:floatingip", "fa:16:3e:00:00:04"), device_id: "fip1" });
  put(w, "port", { ...routerPort(uuid(5), "na", "sa", "10.0.0.5", "compute:nova", "fa:16:3e:00:00:05"), device_id: "vm", "binding:host_id": "h2", security_groups: ["sg"], port_security_enabled: true });
  put(w, "floatingip", { id: "fip1", floating_ip_address: "203.0.113.11", router_id: R, port_id: uuid(5), fixed_ip_address: "10.0.0.5" });
  return w;
}

describe("the compiler's router items", () => {
  it("gives the network host the router, its ports to plug and its floating IPs, and no one else", () => {
    const w = world();
    const h1 = compileHost(w, "h1");
    const r = h1.get(key.router(R));
    assert.deepEqual(r, {
      kind: "router",
      id: R,
      adminUp: true,
      distributed: false,
      interfaces: [uuid(1), uuid(2)],
      gateway: { port: uuid(3), network: "ext", nexthops: ["203.0.113.254"], snat: true },
      routes: [{ destination: "192.168.5.0/24", nexthop: "10.0.0.9" }],
      advertise: [{ port: uuid(1), prefix: "fd00:a::/64", mode: "slaac" }],
    });
    assert.deepEqual(h1.get(key.fip("fip1")), { kind: "fip", id: "fip1", router: R, floating: "203.0.113.11", fixed: "10.0.0.5", port: uuid(5) });
    const plugged = itemsOf(h1, "port").map((p) => [p.id, p.device]);
    assert.deepEqual(plugged.sort(), [uuid(1), uuid(2), uuid(3)].map((id) => [id, `srp-${id.slice(0, 11)}`]), "router ports are plugged on the network host as srp- devices; the floating IP's port is not");
    const h2 = compileHost(w, "h2");
    assert.equal(itemsOf(h2, "router").length + itemsOf(h2, "fip").length, 0, "a compute host runs no centralised router");
    assert.ok(h2.has(key.remote("na", uuid(1))), "it reaches the gateway over VXLAN");
  });

  it("lets `seam routes` show what the router reaches from a network, on the host that runs it", () => {
    const w = world();
    const rows = routedEntries(compileHost(w, "h1"), "na").map((r) => [r.destination, r.gateway, r.how]);
    assert.deepEqual(rows, [
      ["10.0.0.64/26", "10.0.0.1", "connected, srp-00000002-00"],
      ["192.168.5.0/24", "10.0.0.1", "static, next hop 10.0.0.9"],
      ["default", "10.0.0.1", "external gateway srp-00000003-00, next hop 203.0.113.254, SNAT"],
    ]);
    assert.deepEqual(routedEntries(compileHost(w, "h2"), "na"), [], "a host that runs no router shows none");
  });

  it("drops a floating IP's item when it is disassociated, and moves routers when the network host changes", () => {
    const w = world();
    put(w, "floatingip", { id: "fip1", floating_ip_address: "203.0.113.11", router_id: null, port_id: null, fixed_ip_address: null });
    assert.equal(compileHost(w, "h1").has(key.fip("fip1")), false);
    put(w, "agent", { id: "a0", host: "h0", configurations: { tunneling_ip: "172.31.0.10", roles: ["network"] } });
    assert.ok(compileHost(w, "h0").has(key.router(R)), "the first network host by name serves");
    assert.equal(compileHost(w, "h1").has(key.router(R)), false);
  });
});

describe("a distributed router's items", () => {
  /** The same world with R distributed: its interfaces owned as Neutron's DVR does, and a csnat port on each subnet. */
  function dvrWorld(): World {
    const w = world();
    put(w, "router", { id: R, admin_state_up: true, distributed: true, external_gateway_info: { network_id: "ext", enable_snat: true }, routes: [] });
    put(w, "port", routerPort(uuid(1), "na", "sa", "10.0.0.1", "network:router_interface_distributed", "fa:16:3e:00:00:01"));
    put(w, "port", routerPort(uuid(2), "nb", "sb", "10.0.0.65", "network:router_interface_distributed", "fa:16:3e:00:00:02"));
    put(w, "port", routerPort(uuid(6), "na", "sa", "10.0.0.3", "network:router_centralized_snat", "fa:16:3e:00:00:06"));
    put(w, "port", routerPort(uuid(7), "nb", "sb", "10.0.0.66", "network:router_centralized_snat", "fa:16:3e:00:00:07"));
    return w;
  }

  it("runs an instance on each host with ports on its networks, and its SNAT instance on the network host", () => {
    const w = dvrWorld();
    const h2 = compileHost(w, "h2");
    assert.deepEqual(h2.get(key.router(R)), {
      kind: "router",
      id: R,
      adminUp: true,
      distributed: true,
      interfaces: [uuid(1), uuid(2)],
      gateway: null,
      routes: [{ destination: "0.0.0.0/0", nexthop: "10.0.0.3" }],
      advertise: [], // IPv6 advertisements come from centralised routers only
    });
    assert.deepEqual(itemsOf(h2, "port").map((p) => p.id).sort(), [uuid(1), uuid(2), uuid(5)], "h2 plugs both interfaces next to its VM");
    assert.ok(h2.has(key.net("nb")), "and takes part in the network it routes into");
    assert.ok(!h2.has(key.remote("na", uuid(1))), "the gateway is local on every host: no remote entry for it");
    assert.ok(h2.has(key.remote("na", uuid(6))), "the SNAT instance's address is remote");
    const h1 = compileHost(w, "h1");
    assert.equal(h1.has(key.router(R)), false, "the network host has no port on the networks: no instance");
    assert.deepEqual((h1.get(key.snat(R)) as unknown as { interfaces: string[] }).interfaces, [uuid(6), uuid(7)]);
    assert.ok(h1.has(key.fip("fip1")), "floating IPs are served centrally");
    assert.equal(compileHost(w, "h3").size, 0, "a host with nothing on its networks runs nothing");
  });

  it("starts and stops an instance on a host as its first port comes and its last goes, watched through the hub", () => {
    const w = dvrWorld();
    put(w, "port", { ...routerPort(uuid(8), "nb", "sb", "10.0.0.70", "compute:nova", "fa:16:3e:00:00:08"), device_id: "vm2", "binding:host_id": "h3", security_groups: [], port_security_enabled: true });
    assert.ok(compileHost(w, "h3").has(key.router(R)));
    assert.ok(compileHost(w, "h3").has(key.port(uuid(1))), "with the interface on the other network too");
    w.put({ revision: ++rev, kind: "port", id: uuid(8), op: "delete", object: null });
    assert.equal(compileHost(w, "h3").size, 0);
  });
});

describe("a router's NAT", () => {
  const spec = () => [...routerSpecs(compileHost(world(), "h1")).values()].find((x) => x.id === R)!;

  it("renders SNAT, floating IPs and hairpin as one table (golden)", () => {
    const p = planNat(spec().nat, null);
    assert.deepEqual(p.added, ["203.0.113.11"]);
    assertGolden("router-nat.nft", p.lines.join("\n") + "\n");
  });

  it("with enable_snat off, translates floating IPs only", () => {
    const s = spec();
    const lines = planNat({ ...s.nat!, snat: null }, null).lines.join("\n");
    assert.ok(!lines.includes("snat to 203.0.113.10"), lines);
    assert.ok(lines.includes("snat to ip saddr map @fip_snat"));
  });

  describe("in a real namespace", { skip: !isRoot && "needs root" }, () => {
    const ns = `seamtest-nat-${process.pid}`;
    after(() => run("ip", ["netns", "del", ns]).catch(() => {}));

    it("is planned to nothing once applied, and a moved floating IP is two element changes", async () => {
      await run("ip", ["netns", "add", ns]);
      const exec = Exec.in(ns);
      const read = async () => parseNat(await exec.run("nft", ["-j", "list", "table", "ip", "seam"]));
      const s = spec();
      await exec.nft(planNat(s.nat, null).lines);
      assert.deepEqual(planNat(s.nat, await read()).lines, [], "what the kernel holds is what was wanted");
      const moved = { ...s.nat!, fips: new Map([["203.0.113.11", "10.0.0.6"]]) };
      const p = planNat(moved, await read());
      assert.deepEqual(p.moved, ["203.0.113.11"]);
      assert.ok(p.lines.every((l) => /^(delete|add) element /.test(l)), `only elements change:\n${p.lines.join("\n")}`);
      await exec.nft(p.lines);
      assert.deepEqual(planNat(moved, await read()).lines, []);
    });
  });
});

describe("the routers manager", { skip: !isRoot && "needs root" }, () => {
  const host = `seamtest-host-${process.pid}`;
  const suffix = `@seamtest-${process.pid}`;
  const runDir = `/tmp/seamtest-routers-${process.pid}`;
  after(async () => {
    for (const d of existsSync(runDir) ? readdirSync(runDir) : []) await stopRadvd(`${runDir}/${d}`);
    rmSync(runDir, { recursive: true, force: true });
    for (const n of (await run("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0]!)) if (n === host || n.endsWith(suffix)) await run("ip", ["netns", "del", n]).catch(() => {});
  });

  it("builds a router from its items, and a restarted manager finds nothing to do", async () => {
    await run("ip", ["netns", "add", host]);
    const intent: Map<string, IntentItem> = compileHost(world(), "h1");
    const logs: string[] = [];
    const m = new RoutersManager(Exec.in(host), suffix, (l) => logs.push(l), Date.now, runDir);
    const plan = m.plan(intent, await m.observe());
    assert.equal(plan.create.length, 1);
    assert.deepEqual([...(await m.apply(plan, "create")), ...(await m.apply(plan, "remove"))], []);
    const spec = [...routerSpecs(intent, suffix).values()].find((x) => x.id === R)!;
    const inside = Exec.in(spec.netns);
    const addrs = await inside.run("ip", ["-br", "addr"]);
    for (const a of ["10.0.0.1/26", "10.0.0.65/26", "203.0.113.10/24", "203.0.113.11/32"]) assert.ok(addrs.includes(a), `${a} in the router:\n${addrs}`);
    const routes = await inside.run("ip", ["route", "show", "proto", "static"]);
    assert.match(routes, /default via 203\.0\.113\.254 dev srg-00000003-00/);
    assert.match(routes, /192\.168\.5\.0\/24 via 10\.0\.0\.9 dev sri-00000001-00/);
    // the IPv6 SLAAC subnet's advertisements, received on the far end of the interface's veth
    await Exec.in(host).run("sysctl", ["-q", "-w", "net.ipv6.conf.srp-00000001-00.accept_dad=0"]); // its link-local address at once
    await Exec.in(host).run("ip", ["link", "set", "srp-00000001-00", "up"]);
    for (let i = 0; i < 50 && !(await Exec.in(host).run("ip", ["-6", "addr", "show", "dev", "srp-00000001-00"])).includes("fe80"); i++) await new Promise((r) => setTimeout(r, 50));
    const ra = await Exec.in(host).run("rdisc6", ["-1", "-w", "3000", "-r", "5", "srp-00000001-00"], undefined, { timeoutMs: 30_000 });
    assert.match(ra, /Prefix\s+:\s+fd00:a::\/64/);
    assert.match(ra, /Stateful address conf\.\s+:\s+No/);
    assert.match(ra, /Autonomous address conf\.:\s+Yes/);
    assert.match(ra, /Stateful other conf\.\s+:\s+No/);
    assert.ok(isNoop(planRouter(spec, await observeRouter(inside))), "read back, the router is as planned");
    assert.deepEqual(m.status(), { up: [R], down: [] });

    const again = new RoutersManager(Exec.in(host), suffix, (l) => logs.push(`again: ${l}`), Date.now, runDir);
    const p2 = again.plan(intent, await again.observe());
    await again.apply(p2, "create");
    await again.apply(p2, "remove");
    assert.deepEqual(logs.filter((l) => l.startsWith("again")), [], "a restart changes nothing");

    const p3 = again.plan(new Map(), await again.observe());
    assert.deepEqual(p3.remove, [spec.netns], "a router no longer wanted loses its namespace");
    await again.apply(p3, "remove");
    assert.equal((await again.observe()).size, 0);
  });
});
