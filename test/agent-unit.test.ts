// The agent's pure parts: nft rendering and plans, security-group rules as
// set elements, and the iproute2 plan against an observed kernel.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type IntentItem, itemsOf, type RuleItem } from "../src/contract/intent.ts";
import { collapse } from "../src/agent/nft/addresses.ts";
import { Dataplane } from "../src/agent/dataplane.ts";
import * as naming from "../src/agent/naming.ts";
import { groupRuleSets } from "../src/agent/nft/group-rules.ts";
import { type Cidr, cidrCovers, formatCidr, toCidr } from "../src/net/address.ts";
import { protocolNumber } from "../src/net/protocols.ts";
import { Exec } from "../src/os/exec.ts";
import { planLines, withStale } from "../src/agent/nft/plan.ts";
import { renderTables, ruleText } from "../src/agent/nft/ruleset.ts";
import { assertGolden } from "./support/golden.ts";
import { NftModel } from "./support/nft-model.ts";
import { assumeApplied, linesFor, type Observed, type ObservedLink } from "../src/agent/links/ops.ts";
import { planFdb, planLinks, pluggedPorts } from "../src/agent/links/plan.ts";

const PORT = "6f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const NET = "c31878ca-38e7-4ccd-9fc7-c45211be3546";

function intent(extra: [string, IntentItem][] = []): Map<string, IntentItem> {
  return new Map<string, IntentItem>([
    [`net/${NET}`, { kind: "net", id: NET, name: "blue", type: "vxlan", segment: 1001, physnet: null, mtu: 1450, dnsDomain: null, resolvers: [], vteps: ["172.31.0.12"] }],
    [`port/${PORT}`, { kind: "port", id: PORT, network: NET, device: "tap6f0b1c2d-3e", mac: "fa:16:3e:00:00:01", addresses: ["10.0.0.3/24"], gateways: ["10.0.0.1"], mtu: 1450, owner: "compute:nova", adminUp: true, security: { ingress: ["sgA"], egress: ["sgA"], allowed: [{ mac: "fa:16:3e:00:00:01", ip: "10.0.0.3" }, { mac: "fa:16:3e:00:00:01", ip: "10.0.0.0/24" }] } }],
    ["sg/sgA", { kind: "sg", id: "sgA" }],
    [`remote/${NET}/p2`, { kind: "remote", network: NET, port: "p2", mac: "fa:16:3e:00:00:02", ips: ["10.0.0.4"], vtep: "172.31.0.12", host: "h2" }],
    ...extra,
  ]);
}
const rule = (id: string, r: Partial<RuleItem>): RuleItem => ({ kind: "rule", id, group: "sgA", direction: "ingress", ethertype: "IPv4", protocol: null, portMin: null, portMax: null, remoteCidr: null, remoteGroup: null, ...r });

describe("nft rendering", () => {
  it("collapses as the pairwise definition does: what no other listed prefix covers, sorted (random lists)", () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 12) % n);
    for (let round = 0; round < 300; round++) {
      const ips = Array.from({ length: 1 + rnd(12) }, () => (rnd(6) ? `10.${rnd(2)}.${rnd(4)}.${rnd(8)}${rnd(3) ? "" : `/${[8, 16, 24, 30, 31, 32][rnd(6)]}`}` : `fd00::${rnd(4).toString(16)}${rnd(2) ? "" : "/126"}`));
      const cidrs = [...new Map(ips.map((t) => toCidr(t)!).map((c) => [formatCidr(c), c])).values()];
      const want = cidrs
        .filter((c) => !cidrs.some((o) => o !== c && cidrCovers(o, c)))
        .sort((a, b) => (a.version !== b.version ? a.version - b.version : a.network < b.network ? -1 : 1))
        .map((c) => (c.prefixLen === (c.version === 4 ? 32 : 128) ? formatCidr(c).split("/")[0] : formatCidr(c)));
      assert.deepEqual(collapse(ips), want, ips.join(" "));
    }
  });

  it("collapses addresses covered by a listed prefix (nft refuses overlapping intervals)", () => {
    assert.deepEqual(collapse(["10.0.0.3", "10.0.0.0/24", "10.0.1.9/32", "10.0.1.9", "fe80::1", "::/0", "bogus"]), ["10.0.0.0/24", "10.0.1.9", "::/0"]);
  });

  it("renders one rule per shape, with ICMP type/code and ICMP on IPv6 as ICMPv6", () => {
    assert.equal(ruleText(rule("a", { protocol: "tcp", portMin: 22, portMax: 22, remoteCidr: "192.168.5.0/24" })), 'meta nfproto ipv4 ip saddr 192.168.5.0/24 meta l4proto 6 th dport 22 accept comment "rule:a"');
    assert.equal(ruleText(rule("b", { protocol: "icmp", portMin: 8, portMax: 0 })), 'meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept comment "rule:b"');
    assert.equal(ruleText(rule("c", { ethertype: "IPv6", protocol: "icmp", portMin: 128 })), 'meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept comment "rule:c"');
    assert.equal(ruleText(rule("d", { direction: "egress", remoteGroup: "sgB", protocol: "udp", portMin: 53, portMax: 54 })), 'meta nfproto ipv4 ip daddr @m-sgB-v4 meta l4proto 17 th dport 53-54 accept comment "rule:d"');
    assert.equal(ruleText(rule("e", { ethertype: "IPv6", remoteCidr: "10.0.0.0/8" })), null, "an IPv4 CIDR never matches IPv6");
  });

  it("turns CIDR rules into set elements, drops covered ones and keeps partial overlaps linear", () => {
    const split = groupRuleSets(
      [
        rule("any", { remoteCidr: "10.0.0.0/8" }),
        rule("any-covered", { remoteCidr: "10.1.0.0/16" }),
        rule("udp", { protocol: "udp" }),
        rule("ssh", { protocol: "tcp", portMin: 22, portMax: 22, remoteCidr: "192.168.0.0/16" }),
        rule("ssh-covered", { protocol: "tcp", portMin: 22, portMax: 22, remoteCidr: "192.168.5.0/24" }),
        rule("wide", { protocol: "tcp", portMin: 20, portMax: 30, remoteCidr: "192.168.5.7/32" }),
        rule("grp", { remoteGroup: "sgB" }),
        rule("ping", { protocol: "icmp", portMin: 8 }),
        rule("v6", { remoteCidr: "fd00::/8", ethertype: "IPv6" }),
      ],
      false,
    );
    assert.deepEqual(split.any, ["10.0.0.0/8"]);
    assert.deepEqual(split.proto, ["17 . 0.0.0.0/0"]);
    assert.deepEqual(split.ports, ["6 . 22 . 192.168.0.0/16"], "ssh-covered is inside ssh");
    assert.deepEqual(split.linear.map((r) => r.id).sort(), ["grp", "ping", "wide"], "wide overlaps ssh only partly: it stays a rule");
  });

  it("renders a port, its group and the maps as the whole ruleset in the golden file", () => {
    const [bridge, inet] = renderTables(intent([["rule/r1", rule("r1", { protocol: "tcp", portMin: 80, remoteCidr: "0.0.0.0/0" })]]), new Map([[PORT, 3]]));
    const dump = (t: typeof bridge) => {
      const m = new NftModel();
      m.run(planLines(null, t, null));
      return m.dump();
    };
    assertGolden("one-port.nft", dump(bridge) + dump(inet));
  });

  it("removes what the kernel had that is not wanted, at the first sync after a start", () => {
    const [, inet] = renderTables(intent(), new Map([[PORT, 3]]));
    const first = planLines(null, inet, { chains: new Set(["eg-gone"]), sets: new Set(["m-gone-v4"]), maps: new Set() });
    assert.ok(first.includes("flush chain inet seam eg-gone") && first.includes("delete chain inet seam eg-gone") && first.includes("delete set inet seam m-gone-v4"));
    assert.ok(first.indexOf("flush chain inet seam eg-gone") < first.indexOf("delete chain inet seam eg-gone"));
  });

  it("adds a rule to a group as one set element and nothing else", () => {
    const index = new Map([[PORT, 3]]);
    const a = renderTables(intent([["rule/r1", rule("r1", { protocol: "tcp", portMin: 80, remoteCidr: "0.0.0.0/0" })]]), index);
    const b = renderTables(intent([["rule/r1", rule("r1", { protocol: "tcp", portMin: 80, remoteCidr: "0.0.0.0/0" })], ["rule/r2", rule("r2", { protocol: "tcp", portMin: 443, remoteCidr: "0.0.0.0/0" })]]), index);
    assert.deepEqual(planLines(a[1], b[1], null), ["add table inet seam", "add element inet seam r-sgA-in-v4-ports { 6 . 443 . 0.0.0.0/0 }"]);
    assert.deepEqual(planLines(a[0], b[0], null), [], "nothing changes in the bridge table");
  });

  it("keeps a leaving port's filters through the create phase and removes them in the remove phase", () => {
    const index = new Map([[PORT, 3]]);
    const [pb, pi] = renderTables(intent(), index);
    const [nb, ni] = renderTables(new Map([...intent()].filter(([k]) => !k.startsWith("port/"))), new Map());
    for (const [prev, next] of [[pb, nb], [pi, ni]] as const) {
      const m = new NftModel();
      m.run(planLines(null, prev, null));
      const between = withStale(prev, next);
      m.run(planLines(prev, between, null));
      const [map, key, target] = prev.family === "bridge" ? ["port_in", '"tap6f0b1c2d-3e"', `from-${PORT}`] : ["egress", "0x00030000", `eg-${PORT}`];
      assert.equal(m.maps.get(map)!.elements!.get(key), `jump ${target}`, "still filtered while its device may be on the bridge");
      m.run(planLines(between, next, null)); // the model refuses a chain deleted while a map element still jumps to it
      const fresh = new NftModel();
      fresh.run(planLines(null, next, null));
      assert.equal(m.dump(), fresh.dump());
    }
  });
});

describe("nft plans, incremental against fresh", () => {
  it("reaches through create and remove phases, from random intents, exactly what a fresh plan makes", () => {
    let seed = 3;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 12) % n);
    const ports = ["p0", "p1", "p2", "p3"].map((p, i) => `${p}${"0".repeat(8)}-0000-4000-8000-00000000000${i}`);
    const groups = ["sgA", "sgB", "sgC"];
    const randomIntent = () => {
      const items = new Map<string, IntentItem>();
      for (const [i, id] of ports.entries()) {
        if (rnd(3) === 0) continue;
        const gs = groups.filter(() => rnd(2) === 0);
        // a NetworkPolicy may filter one direction by other groups than the other
        const eg = rnd(3) ? gs : groups.filter(() => rnd(2) === 0);
        items.set(`port/${id}`, { kind: "port", id, network: NET, device: `tap${id.slice(0, 11)}`, mac: `fa:16:3e:00:00:0${i}`, addresses: [`10.0.0.${10 + i}/24`], gateways: [], mtu: 1450, owner: "compute:nova", adminUp: true, security: rnd(5) ? { ingress: gs, egress: eg, allowed: [{ mac: `fa:16:3e:00:00:0${i}`, ip: `10.0.0.${10 + i}` }] } : null });
        for (const g of new Set([...gs, ...eg])) items.set(`sg/${g}`, { kind: "sg", id: g });
      }
      for (let r = 0; r < 6; r++) {
        if (rnd(2)) continue;
        const g = groups[rnd(3)]!;
        items.set(`rule/r${r}`, rule(`r${r}`, { group: g, direction: rnd(2) ? "ingress" : "egress", protocol: ["tcp", "udp", null][rnd(3)]!, portMin: rnd(2) ? 20 + rnd(5) : null, portMax: null, remoteCidr: rnd(2) ? `10.${rnd(3)}.0.0/16` : null, remoteGroup: rnd(3) === 0 ? groups[rnd(3)]! : null }));
      }
      for (const [i, id] of ports.entries()) for (const g of groups) if (rnd(3) === 0) items.set(`member/${g}/${id}`, { kind: "member", group: g, port: id, ips: [`10.0.0.${10 + i}`] });
      return items;
    };
    const index = new Map<string, number>();
    const indexFor = (items: Map<string, IntentItem>) => {
      for (const p of itemsOf(items, "port")) if (!index.has(p.id)) index.set(p.id, index.size + 1);
      return index;
    };
    let prev = renderTables(new Map(), index);
    const kernel = [new NftModel(), new NftModel()];
    kernel.forEach((k, f) => k.run(planLines(null, prev[f]!, null)));
    for (let step = 0; step < 150; step++) {
      const want = randomIntent();
      const next = renderTables(want, indexFor(want));
      for (const f of [0, 1]) {
        const between = withStale(prev[f]!, next[f]!);
        kernel[f]!.run(planLines(prev[f]!, between, null));
        // between the phases, whatever was dispatched (a port's device may still be on a bridge) still is
        for (const [name, m] of prev[f]!.maps) for (const [k, v] of m.elements) if (!next[f]!.maps.get(name)?.elements.has(k)) assert.equal(kernel[f]!.maps.get(name)?.elements!.get(k), v, `${name} ${k} after step ${step}`);
        kernel[f]!.run(planLines(between, next[f]!, null));
        const fresh = new NftModel();
        fresh.run(planLines(null, next[f]!, null));
        assert.equal(kernel[f]!.dump(), fresh.dump(), `family ${next[f]!.family} after step ${step}`);
      }
      prev = next;
    }
  });
});

describe("link plan", () => {
  const cfg = { vtep: "172.31.0.11", physicalInterfaces: {}, canVxlan: true };
  const empty: Observed = { links: new Map(), fdb: [], neigh: [] };
  const BR = "sbr-c31878ca-38";
  const link = (name: string, l: Partial<ObservedLink>): [string, ObservedLink] => [name, { name, kind: null, master: null, up: true, mtu: 1450, alias: null, ...l }];

  it("creates the bridge and the VXLAN device, marks them with the network's id, attaches an existing tap, and adds FDB and neighbour entries", () => {
    const kernel: Observed = { ...empty, links: new Map([link("tap6f0b1c2d-3e", { kind: "tun", up: false, mtu: 1500 })]) };
    const p = planLinks(intent(), kernel, cfg);
    assert.deepEqual(linesFor(p.create, "ip"), [
      `link add name ${BR} type bridge`,
      `link set dev ${BR} mtu 1450 up alias seam:net:${NET}`,
      "link add name svx-1001 type vxlan id 1001 local 172.31.0.11 dstport 4789 nolearning proxy",
      `link set dev svx-1001 master ${BR} mtu 1450 up alias seam:net:${NET}`,
      `link set dev tap6f0b1c2d-3e master ${BR} mtu 1450 up alias seam:port:${PORT}`,
    ]);
    assert.deepEqual(p.remove, []);
    const f = planFdb(intent(), empty, cfg);
    assert.deepEqual(linesFor(f.create, "bridge").sort(), ["fdb append 00:00:00:00:00:00 dev svx-1001 dst 172.31.0.12 self permanent", "fdb replace fa:16:3e:00:00:02 dev svx-1001 dst 172.31.0.12 self permanent"]);
    assert.deepEqual(linesFor(f.create, "ip"), ["neigh replace 10.0.0.4 lladdr fa:16:3e:00:00:02 dev svx-1001 nud permanent"]);
  });

  it("changes nothing when the kernel already matches, and removes only stale things it owns, after the rest", () => {
    const links: Observed["links"] = new Map([
      link(BR, { kind: "bridge", alias: `seam:net:${NET}` }),
      link("svx-1001", { kind: "vxlan", master: BR, alias: `seam:net:${NET}`, vxlan: { id: 1001, local: "172.31.0.11", port: 4789, learning: false, proxy: true } }),
      link("tap6f0b1c2d-3e", { kind: "tun", master: BR, alias: `seam:port:${PORT}` }),
      link("tapdeadbeef-00", { kind: "veth", master: BR }),
      link("svx-2002", { kind: "vxlan", vxlan: { id: 2002, local: "172.31.0.11", port: 4789, learning: false, proxy: true } }),
      link("brq2002abcd-ef", { kind: "bridge" }), // Neutron linuxbridge's, on the same host: not ours
      link("vxlan-2002", { kind: "vxlan" }),
      link("eth0", { kind: "veth", mtu: 1500 }),
    ]);
    const kernel: Observed = {
      links,
      fdb: [
        { dev: "svx-1001", mac: "00:00:00:00:00:00", dst: "172.31.0.12" },
        { dev: "svx-1001", mac: "fa:16:3e:00:00:02", dst: "172.31.0.12" },
        { dev: "svx-1001", mac: "fa:16:3e:00:00:99", dst: "172.31.0.13" },
        { dev: "vxlan-2002", mac: "fa:16:3e:00:00:98", dst: "172.31.0.13" },
      ],
      neigh: [{ dev: "svx-1001", ip: "10.0.0.4", mac: "fa:16:3e:00:00:02", permanent: true }],
    };
    const p = planLinks(intent(), kernel, cfg);
    assert.deepEqual(p.create, [], "the wanted devices are left alone");
    assert.deepEqual(linesFor(p.remove, "ip"), ["link set dev tapdeadbeef-00 nomaster down", "link del dev svx-2002"], "eth0 and linuxbridge's devices are not ours");
    const f = planFdb(intent(), kernel, cfg);
    assert.deepEqual(f.create, []);
    assert.deepEqual(linesFor(f.remove, "bridge"), ["fdb del fa:16:3e:00:00:99 dev svx-1001 dst 172.31.0.13 self"]);
    assert.deepEqual(pluggedPorts(intent(), kernel), { up: [PORT], down: [] });
  });

  it("refuses what this kernel cannot carry, with the reason", () => {
    const vlan = new Map<string, IntentItem>([["net/n", { kind: "net", id: "n", name: "", type: "vlan", segment: 10, physnet: "p", mtu: 1500, dnsDomain: null, resolvers: [], vteps: [] }]]);
    assert.match(planLinks(vlan, empty, cfg).refused[0]!.reason, /802\.1Q/);
    assert.match(planLinks(intent(), empty, { ...cfg, canVxlan: false }).refused[0]!.reason, /VXLAN/);
  });
});

describe("link and FDB plans, incremental against fresh", () => {
  it("reach from random intents, through both phases, what a fresh plan makes, and then have nothing left to do", () => {
    let seed = 5;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 12) % n);
    const cfg = { vtep: "172.31.0.11", physicalInterfaces: { phys: "eth1" }, canVxlan: true };
    const nets = ["a1000000-0000-4000-8000-000000000001", "a2000000-0000-4000-8000-000000000002", "a3000000-0000-4000-8000-000000000003"];
    const ports = Array.from({ length: 6 }, (_, i) => `b${i}000000-0000-4000-8000-00000000000${i}`);
    const device = (p: string) => `tap${p.slice(0, 11)}`;
    // the workloads' devices exist whatever the intent (their launchers made them), and so does the uplink
    const launched = (): Map<string, ObservedLink> =>
      new Map<string, ObservedLink>([...ports.map((p): [string, ObservedLink] => [device(p), { name: device(p), kind: "tun", master: null, up: false, mtu: 1500, alias: null }]), ["eth1", { name: "eth1", kind: "veth", master: null, up: true, mtu: 1500, alias: null }]]);
    const randomIntent = () => {
      const items = new Map<string, IntentItem>();
      for (const [i, id] of nets.entries()) {
        if (rnd(4) === 0) continue;
        items.set(`net/${id}`, { kind: "net", id, name: "", type: i === 2 ? "flat" : "vxlan", segment: i === 2 ? null : 1000 + i * (1 + rnd(2)), physnet: i === 2 ? "phys" : null, mtu: [1450, 1400][rnd(2)]!, dnsDomain: null, resolvers: [], vteps: ["172.31.0.12", "172.31.0.13"].filter(() => rnd(2) === 0) });
      }
      const present = itemsOf(items, "net");
      for (const [i, id] of ports.entries()) {
        if (!present.length || rnd(3) === 0) continue;
        const net = present[rnd(present.length)]!;
        if (rnd(2)) items.set(`port/${id}`, { kind: "port", id, network: net.id, device: device(id), mac: "fa:16:3e:00:00:01", addresses: [], gateways: [], mtu: net.mtu, owner: "compute:nova", adminUp: rnd(4) !== 0, security: null });
        else items.set(`remote/${net.id}/${id}`, { kind: "remote", network: net.id, port: id, mac: `fa:16:3e:00:01:0${i}`, ips: [`10.0.0.${rnd(4)}`], vtep: ["172.31.0.12", "172.31.0.13"][rnd(2)]!, host: "h2" });
      }
      return items;
    };
    const applyBoth = (kernel: Observed, want: Map<string, IntentItem>) => {
      const l = planLinks(want, kernel, cfg);
      const afterLinks = assumeApplied(kernel, l.create);
      const f = planFdb(want, afterLinks, cfg);
      return assumeApplied(assumeApplied(assumeApplied(afterLinks, f.create), f.remove), l.remove);
    };
    // the agent's own devices whole; of the others, what it decides: where they are attached, up or down, and its mark
    const canonical = (k: Observed) => ({
      links: [...k.links.values()].sort((a, b) => a.name.localeCompare(b.name)).map((l) => (l.name.startsWith("tap") || l.name === "eth1" ? { name: l.name, master: l.master, up: l.up, alias: l.alias } : l)),
      fdb: k.fdb.map((e) => `${e.dev}|${e.mac}|${e.dst}`).sort(),
      neigh: k.neigh.map((n) => `${n.dev}|${n.ip}|${n.mac}|${n.permanent}`).sort(),
    });
    let kernel: Observed = { links: launched(), fdb: [], neigh: [] };
    for (let step = 0; step < 300; step++) {
      const want = randomIntent();
      kernel = applyBoth(kernel, want);
      const fresh = applyBoth({ links: launched(), fdb: [], neigh: [] }, want);
      assert.deepEqual(canonical(kernel), canonical(fresh), `after step ${step}`);
      const again = planLinks(want, kernel, cfg);
      const againFdb = planFdb(want, kernel, cfg);
      assert.deepEqual([again.create, again.remove, againFdb.create, againFdb.remove], [[], [], [], []], `a second plan at step ${step} does nothing`);
    }
  });
});

describe("ownership", () => {
  it("recognises every kernel name it makes as its own, and nothing of Neutron's linuxbridge agent or the host", () => {
    const net = "c31878ca-38e7-4ccd-9fc7-c45211be3546";
    const dp = new Dataplane(Exec.here, () => ({ vtep: "172.31.0.11", physicalInterfaces: {}, canVxlan: true }));
    for (const name of [naming.device.bridge(net), naming.device.vxlan(1001), naming.device.vxlan(16_000_000)]) {
      assert.ok(name.length <= 15, `${name} fits IFNAMSIZ`);
      assert.ok(dp.owns(name), `${name} is ours`);
    }
    assert.ok(dp.owns(naming.NFT_TABLE));
    for (const name of ["brqc31878ca-38", "vxlan-1001", "tapc31878ca-38", "eth0", "lo", "virbr0", "docker0", "cni0"]) assert.ok(!dp.owns(name), `${name} is not ours`);
    for (const ns of [naming.netns.router(net), naming.netns.dhcp(net)]) assert.ok(naming.isOwnedNetns(ns), `${ns} is ours`);
    for (const ns of [`qrouter-${net}`, `qdhcp-${net}`, "host-1", "cni-1234"]) assert.ok(!naming.isOwnedNetns(ns), `${ns} is not ours`);
    assert.deepEqual(naming.parseAlias(naming.alias.network(net)), { kind: "net", id: net });
    assert.deepEqual(naming.parseAlias(naming.alias.port(PORT)), { kind: "port", id: PORT });
    assert.equal(naming.parseAlias("uplink to rack 4"), null);
    assert.equal(naming.monitoredDevice(`5: ${naming.device.bridge(net)}: <BROADCAST> mtu 1450`), naming.device.bridge(net));
    assert.equal(naming.monitoredDevice("9: tap6f0b1c2d-3e@if3: <BROADCAST>"), "tap6f0b1c2d-3e");
    assert.equal(naming.monitoredDevice("Deleted 9: tap6f0b1c2d-3e: <BROADCAST>"), "tap6f0b1c2d-3e");
    assert.equal(naming.monitoredDevice("3: brqc31878ca-38: <BROADCAST>"), null, "linuxbridge's devices changing is none of our business");
    assert.equal(naming.monitoredDevice("4: eth0: <BROADCAST> master sbr-c31878ca-38"), null, "a device that is not ours, even on our bridge");
  });
});

describe("group rules as set elements, indexed against scanned", () => {
  // The reference: every new element checked against every kept one (what the index replaces).
  function scanned(rules: readonly RuleItem[], v6: boolean) {
    type El = { proto: number | null; min: number; max: number; cidr: Cidr; rule: RuleItem };
    const meet = (a: Cidr, b: Cidr) => cidrCovers(a, b) || cidrCovers(b, a);
    const covers = (a: El, b: El) => a.proto === b.proto && a.min <= b.min && a.max >= b.max && cidrCovers(a.cidr, b.cidr);
    const meets = (a: El, b: El) => a.proto === b.proto && a.min <= b.max && b.min <= a.max && meet(a.cidr, b.cidr);
    const els: El[] = rules.map((r) => ({ proto: protocolNumber(r.protocol, v6), min: r.portMin ?? 0, max: r.portMax ?? r.portMin ?? 65535, cidr: toCidr(r.remoteCidr ?? "0.0.0.0/0")!, rule: r }));
    els.sort((a, b) => a.cidr.prefixLen - b.cidr.prefixLen || b.max - b.min - (a.max - a.min) || (a.rule.id < b.rule.id ? -1 : 1));
    const kept: El[] = [];
    const linear: string[] = [];
    for (const e of els) {
      if (kept.some((k) => covers(k, e))) continue;
      if (kept.some((k) => meets(k, e))) linear.push(e.rule.id);
      else kept.push(e);
    }
    return { kept: kept.map((e) => e.rule.id).sort(), linear: linear.sort() };
  }

  it("keeps and linearises exactly the rules a scan of every kept element would", () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), (seed >>> 12) % n);
    for (let round = 0; round < 200; round++) {
      const rules = Array.from({ length: 1 + rnd(40) }, (_, i) => {
        const min = 1 + rnd(30);
        return rule(`r${String(i).padStart(3, "0")}`, { protocol: ["tcp", "udp"][rnd(2)]!, portMin: min, portMax: min + rnd(6), remoteCidr: ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16"][rnd(5)]! });
      });
      const got = groupRuleSets(rules, false);
      const want = scanned(rules, false);
      const byId = new Map(rules.map((r) => [r.id, r]));
      const element = (r: RuleItem) => `${protocolNumber(r.protocol)} . ${r.portMin === r.portMax ? r.portMin : `${r.portMin}-${r.portMax}`} . ${r.remoteCidr}`;
      assert.deepEqual(got.linear.map((r) => r.id).sort(), want.linear, `round ${round}: the same rules stay linear`);
      assert.deepEqual(got.ports, want.kept.map((id) => element(byId.get(id)!)), `round ${round}: the same set elements`);
    }
  });
});

describe("services: translation and policy routes", () => {
  const CLIENT = "0a1b2c3d-0000-4000-8000-000000000001";
  const svcItem = (targets: { ip: string; port: number }[], nexthops: { ip: string; mac: string }[]): [string, IntentItem] => [
    "svc/s1",
    { kind: "svc", id: "s1", vip: "10.96.0.10", subnet: "10.96.0.0/16", ports: [{ protocol: "tcp", port: 80, targets }], clients: [{ network: CLIENT, nexthops }] },
  ];
  const bridge = naming.device.bridge(CLIENT);
  /** An Exec that records what it is told and answers reads from a fixed kernel. */
  const recorder = (kernel: { rules?: unknown[]; routes?: unknown[]; neigh?: unknown[] } = {}) => {
    const lines: string[] = [];
    const exec = {
      nft: async (l: string[]) => void lines.push(...l.map((x) => `nft ${x}`)),
      batch: async (_tool: string, l: string[]) => (lines.push(...l), []),
      run: async (cmd: string, args: string[]) => {
        if (cmd === "nft") throw new Error("no table");
        lines.push(`${cmd} ${args.join(" ")}`);
        return "";
      },
      json: async (_cmd: string, args: string[]) => (args.includes("rule") ? (kernel.rules ?? []) : args.includes("route") ? (kernel.routes ?? []) : args.includes("neigh") ? (kernel.neigh ?? []) : [{ ifname: bridge, ifindex: 7 }]),
    };
    return { exec: exec as unknown as Exec, lines };
  };

  it("picks among the backends a client network reaches, and refuses where it reaches none", async () => {
    const { renderServices } = await import("../src/agent/services/render.ts");
    const two = renderServices(new Map([svcItem([{ ip: "10.0.1.4", port: 8080 }, { ip: "10.0.1.5", port: 8080 }, { ip: "192.0.2.9", port: 8080 }], [{ ip: "10.0.1.4", mac: "fa:16:3e:00:00:11" }, { ip: "10.0.1.5", mac: "fa:16:3e:00:00:12" }])]), new Map());
    const chain = naming.svc.chain("s1", CLIENT, "tcp", 80);
    assert.deepEqual(two.nft.chains.get(chain)?.rules, [`numgen random mod 2 vmap { 0 : goto ep-tcp-10.0.1.4-8080, 1 : goto ep-tcp-10.0.1.5-8080 }`], "192.0.2.9 is not reached from this network");
    assert.equal(two.nft.maps.get(naming.svc.dispatch)?.elements.get(`"${bridge}" . 10.96.0.10 . tcp . 80`), `goto ${chain}`);
    assert.deepEqual([...two.bridges.get(bridge)!.nexthops], [["10.0.1.4", "fa:16:3e:00:00:11"], ["10.0.1.5", "fa:16:3e:00:00:12"]]);
    const none = renderServices(new Map([svcItem([], [])]), new Map());
    assert.deepEqual(none.nft.sets.get(naming.svc.empty)?.elements, [`"${bridge}" . 10.96.0.10 . tcp . 80`]);
    assert.equal(none.nft.maps.get(naming.svc.dispatch)?.elements.size, 0);
  });

  it("routes a client bridge's backends in its own table, and removes what the kernel had from before, a stale rule included", async () => {
    const { ServicesManager } = await import("../src/agent/services/services-manager.ts");
    // what a failed delete leaves: the bridge's rule twice, to two tables, and a route and a neighbour no longer wanted
    const kernel = {
      rules: [{ priority: 1000, iif: bridge, table: "100000" }, { priority: 1000, iif: bridge, table: "100003" }, { priority: 32766, src: "all", table: "main" }],
      routes: [{ dst: "10.0.1.9", dev: bridge, table: "100003" }, { dst: "172.31.0.0/24", dev: "eth0" }],
      neigh: [{ dst: "10.0.1.9", dev: bridge, lladdr: "fa:16:3e:00:00:99" }, { dst: "10.0.1.4", dev: "svx-1001", lladdr: "fa:16:3e:00:00:11" }],
    };
    const { exec, lines } = recorder(kernel);
    const m = new ServicesManager(exec);
    const want = new Map([svcItem([{ ip: "10.0.1.4", port: 8080 }], [{ ip: "10.0.1.4", mac: "fa:16:3e:00:00:11" }])]);
    const plan = m.plan(want, await m.observe());
    await m.apply(plan, "create");
    await m.apply(plan, "remove");
    const ip = lines.filter((l) => !l.startsWith("nft"));
    assert.deepEqual(ip, [
      `route replace 10.0.1.4/32 dev ${bridge} table 100000`,
      `neigh replace 10.0.1.4 lladdr fa:16:3e:00:00:11 dev ${bridge} nud permanent`,
      "rule add from 10.96.0.0/16 lookup 99999 pref 1001",
      "route replace default dev lo table 99999",
      `sysctl -q -w net.ipv4.conf.${bridge}.forwarding=1 net.ipv4.conf.${bridge}.rp_filter=0`,
      `neigh del 10.0.1.9 dev ${bridge}`,
      `route del 10.0.1.9/32 dev ${bridge} table 100003`,
      `rule del iif ${bridge} lookup 100003 pref 1000`,
    ], "the bridge keeps its first table; the second rule, the old route and neighbour go; the VXLAN device's neighbours are not ours here; after a start the bridge's settings are written again");
    lines.length = 0;
    const again = m.plan(want, await m.observe());
    assert.deepEqual([...again.create, ...again.remove, ...again.nft], [], "a second pass over the same intent changes nothing");
    const gone = m.plan(new Map(), await m.observe());
    assert.deepEqual(gone.remove, [
      `neigh del 10.0.1.4 dev ${bridge}`,
      `route del 10.0.1.4/32 dev ${bridge} table 100000`,
      `rule del iif ${bridge} lookup 100000 pref 1000`,
      "rule del from 10.96.0.0/16 lookup 99999 pref 1001",
      "route del default dev lo table 99999",
    ]);
  });
});
