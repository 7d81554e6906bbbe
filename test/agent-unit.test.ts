// The agent's pure parts: nft rendering and plans, security-group rules as
// set elements, and the iproute2 plan against an observed kernel.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IntentItem, RuleItem } from "../src/contract/intent.ts";
import { collapse } from "../src/agent/nft/addresses.ts";
import { groupRuleSets } from "../src/agent/nft/group-rules.ts";
import { planTable, renderTables, ruleText } from "../src/agent/nft/ruleset.ts";
import { type Observed, planLinks, pluggedPorts } from "../src/agent/links/plan.ts";

const PORT = "6f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const NET = "c31878ca-38e7-4ccd-9fc7-c45211be3546";

function intent(extra: [string, IntentItem][] = []): Map<string, IntentItem> {
  return new Map<string, IntentItem>([
    [`net/${NET}`, { kind: "net", id: NET, name: "blue", type: "vxlan", segment: 1001, physnet: null, mtu: 1450, vteps: ["172.31.0.12"] }],
    [`port/${PORT}`, { kind: "port", id: PORT, network: NET, device: "tap6f0b1c2d-3e", mac: "fa:16:3e:00:00:01", addresses: ["10.0.0.3/24"], gateways: ["10.0.0.1"], mtu: 1450, owner: "compute:nova", adminUp: true, security: { groups: ["sgA"], allowed: [{ mac: "fa:16:3e:00:00:01", ip: "10.0.0.3" }, { mac: "fa:16:3e:00:00:01", ip: "10.0.0.0/24" }] } }],
    ["sg/sgA", { kind: "sg", id: "sgA" }],
    [`remote/${NET}/p2`, { kind: "remote", network: NET, port: "p2", mac: "fa:16:3e:00:00:02", ips: ["10.0.0.4"], vtep: "172.31.0.12", host: "h2" }],
    ...extra,
  ]);
}
const rule = (id: string, r: Partial<RuleItem>): RuleItem => ({ kind: "rule", id, group: "sgA", direction: "ingress", ethertype: "IPv4", protocol: null, portMin: null, portMax: null, remoteCidr: null, remoteGroup: null, ...r });

describe("nft rendering", () => {
  it("collapses addresses covered by a listed prefix (nft refuses overlapping intervals)", () => {
    assert.deepEqual(collapse(["10.0.0.3", "10.0.0.0/24", "10.0.1.9/32", "10.0.1.9", "fe80::1", "::/0", "bogus"]), ["10.0.0.0/24", "10.0.1.9", "::/0"]);
  });

  it("renders one rule per shape, with ICMP type/code and ICMP on IPv6 as ICMPv6", () => {
    assert.equal(ruleText(rule("a", { protocol: "tcp", portMin: 22, portMax: 22, remoteCidr: "192.168.5.0/24" })), "meta nfproto ipv4 ip saddr 192.168.5.0/24 meta l4proto 6 th dport 22 accept");
    assert.equal(ruleText(rule("b", { protocol: "icmp", portMin: 8, portMax: 0 })), "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept");
    assert.equal(ruleText(rule("c", { ethertype: "IPv6", protocol: "icmp", portMin: 128 })), "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept");
    assert.equal(ruleText(rule("d", { direction: "egress", remoteGroup: "sgB", protocol: "udp", portMin: 53, portMax: 54 })), "meta nfproto ipv4 ip daddr @m-sgB-v4 meta l4proto 17 th dport 53-54 accept");
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

  it("renders ports, groups and maps, and plans only the difference after a change", () => {
    const index = new Map([[PORT, 3]]);
    const a = renderTables(intent([["rule/r1", rule("r1", { protocol: "tcp", portMin: 80, remoteCidr: "0.0.0.0/0" })]]), index);
    const [bridge, inet] = a;
    assert.deepEqual(bridge.chains.get(`from-${PORT}`)!.rules.slice(0, 4), [
      "meta mark set meta mark | 0x00030000",
      "ether saddr != { fa:16:3e:00:00:01 } drop",
      "ether type arp arp saddr ip != { 10.0.0.0/24, 0.0.0.0 } drop",
      "ether type arp return",
    ]);
    assert.equal(bridge.maps.get("port_in")!.elements.get('"tap6f0b1c2d-3e"'), `jump from-${PORT}`);
    assert.equal(inet.maps.get("egress")!.elements.get("0x00030000"), `jump eg-${PORT}`);
    assert.equal(inet.maps.get("ingress")!.elements.get("0x00000003"), `jump in-${PORT}`);
    assert.deepEqual(inet.sets.get("r-sgA-in-v4-ports")!.elements, ["6 . 80 . 0.0.0.0/0"]);
    // first sync: everything is written, and what the kernel had that is not wanted goes
    const first = planTable(null, inet, { chains: new Set(["eg-gone"]), sets: new Set(["m-gone-v4"]), maps: new Set() });
    assert.ok(first.includes("flush chain inet seam eg-gone") && first.includes("delete chain inet seam eg-gone") && first.includes("delete set inet seam m-gone-v4"));
    assert.ok(first.indexOf("flush chain inet seam eg-gone") < first.indexOf("delete chain inet seam eg-gone"));
    // a second rule: one element, nothing else
    const b = renderTables(intent([["rule/r1", rule("r1", { protocol: "tcp", portMin: 80, remoteCidr: "0.0.0.0/0" })], ["rule/r2", rule("r2", { protocol: "tcp", portMin: 443, remoteCidr: "0.0.0.0/0" })]]), index);
    assert.deepEqual(planTable(inet, b[1], null), ["add table inet seam", "add element inet seam r-sgA-in-v4-ports { 6 . 443 . 0.0.0.0/0 }"]);
    assert.deepEqual(planTable(bridge, b[0], null), [], "nothing changes in the bridge table");
    // the port goes: its map elements before its chains, chains flushed before deleted
    const c = renderTables(new Map([...intent()].filter(([k]) => !k.startsWith("port/"))), new Map());
    const plan = planTable(inet, c[1], null);
    const delElem = plan.findIndex((l) => l.startsWith("delete element inet seam egress"));
    const delChain = plan.indexOf(`delete chain inet seam eg-${PORT}`);
    assert.ok(delElem >= 0 && delChain > delElem, plan.join("\n"));
  });
});

describe("link plan", () => {
  const cfg = { vtep: "172.31.0.11", physicalInterfaces: {}, canVxlan: true };
  const empty: Observed = { links: new Map(), fdb: [], neigh: [] };

  it("creates the bridge and the VXLAN device, attaches an existing tap, and adds FDB and neighbour entries", () => {
    const kernel: Observed = { ...empty, links: new Map([["tap6f0b1c2d-3e", { name: "tap6f0b1c2d-3e", kind: "tun", master: null, up: false, mtu: 1500 }]]) };
    const p = planLinks(intent(), kernel, cfg);
    assert.deepEqual(p.links, [
      "link add name brqc31878ca-38 type bridge",
      "link set dev brqc31878ca-38 mtu 1450 up",
      "link add name vxlan-1001 type vxlan id 1001 local 172.31.0.11 dstport 4789 nolearning proxy",
      "link set dev vxlan-1001 master brqc31878ca-38 mtu 1450 up",
      "link set dev tap6f0b1c2d-3e master brqc31878ca-38 mtu 1450 up",
    ]);
    assert.deepEqual(p.fdb.sort(), ["fdb append 00:00:00:00:00:00 dev vxlan-1001 dst 172.31.0.12 self permanent", "fdb replace fa:16:3e:00:00:02 dev vxlan-1001 dst 172.31.0.12 self permanent"]);
    assert.deepEqual(p.neigh, ["neigh replace 10.0.0.4 lladdr fa:16:3e:00:00:02 dev vxlan-1001 nud permanent"]);
  });

  it("changes nothing when the kernel already matches, and removes only stale things it owns", () => {
    const links: Observed["links"] = new Map([
      ["brqc31878ca-38", { name: "brqc31878ca-38", kind: "bridge", master: null, up: true, mtu: 1450 }],
      ["vxlan-1001", { name: "vxlan-1001", kind: "vxlan", master: "brqc31878ca-38", up: true, mtu: 1450, vxlan: { id: 1001, local: "172.31.0.11", port: 4789, learning: false, proxy: true } }],
      ["tap6f0b1c2d-3e", { name: "tap6f0b1c2d-3e", kind: "tun", master: "brqc31878ca-38", up: true, mtu: 1450 }],
      ["tapdeadbeef-00", { name: "tapdeadbeef-00", kind: "veth", master: "brqc31878ca-38", up: true, mtu: 1450 }],
      ["vxlan-2002", { name: "vxlan-2002", kind: "vxlan", master: null, up: true, mtu: 1450, vxlan: { id: 2002, local: "172.31.0.11", port: 4789, learning: false, proxy: true } }],
      ["eth0", { name: "eth0", kind: "veth", master: null, up: true, mtu: 1500 }],
    ]);
    const kernel: Observed = {
      links,
      fdb: [
        { dev: "vxlan-1001", mac: "00:00:00:00:00:00", dst: "172.31.0.12" },
        { dev: "vxlan-1001", mac: "fa:16:3e:00:00:02", dst: "172.31.0.12" },
        { dev: "vxlan-1001", mac: "fa:16:3e:00:00:99", dst: "172.31.0.13" },
      ],
      neigh: [{ dev: "vxlan-1001", ip: "10.0.0.4", mac: "fa:16:3e:00:00:02", permanent: true }],
    };
    const p = planLinks(intent(), kernel, cfg);
    assert.deepEqual(p.links, ["link set dev tapdeadbeef-00 nomaster down", "link del dev vxlan-2002"], "eth0 is not ours; the wanted devices are left alone");
    assert.deepEqual(p.fdb, ["fdb del fa:16:3e:00:00:99 dev vxlan-1001 dst 172.31.0.13 self"]);
    assert.deepEqual(p.neigh, []);
    assert.deepEqual(pluggedPorts(intent(), kernel), { up: [PORT], down: [] });
  });

  it("refuses what this kernel cannot carry, with the reason", () => {
    const vlan = new Map<string, IntentItem>([["net/n", { kind: "net", id: "n", name: "", type: "vlan", segment: 10, physnet: "p", mtu: 1500, vteps: [] }]]);
    assert.match(planLinks(vlan, empty, cfg).refused[0]!.reason, /802\.1Q/);
    assert.match(planLinks(intent(), empty, { ...cfg, canVxlan: false }).refused[0]!.reason, /VXLAN/);
  });
});
