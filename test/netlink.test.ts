// rtnetlink from the agent's process (os/netlink): the codec's requests read
// back by its own parser, and, as root in namespaces of the test's own, a
// pod's interface made, a bridge and a VXLAN device made and joined, the
// kernel's links read back as `ip -d link show` reads them, refusals in the
// kernel's words, and nothing left after unplumbing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { newAddress, newBridge, newDefaultRoute, newVxlan, parseLink } from "../src/os/netlink/messages.ts";
import { parseAttrs, splitMessages } from "../src/os/netlink/codec.ts";
import { ROOT } from "./support/http.ts";
import { isRoot } from "./support/lab.ts";

describe("rtnetlink codec", () => {
  it("reads back the links it asks for", () => {
    const [br] = splitMessages(newBridge(7, "brqtest"));
    assert.equal(br!.seq, 7);
    assert.deepEqual({ ...parseLink(br!.body) }, { index: 0, name: "brqtest", up: false, mtu: 0, mac: null, master: 0, alias: null, kind: "bridge" });
    for (const local of ["172.31.0.11", "fd00::11"]) {
      const [vx] = splitMessages(newVxlan(8, { name: "vxlan-1001", vni: 1001, local, port: 4789 }));
      assert.deepEqual(parseLink(vx!.body).vxlan, { id: 1001, local, port: 4789, learning: false, proxy: true });
    }
  });

  it("lays out addresses and routes as the kernel's structs say", () => {
    const [a4] = splitMessages(newAddress(1, 5, "10.0.0.4/24"));
    assert.deepEqual([...a4!.body.subarray(0, 8)], [2, 24, 0, 0, 5, 0, 0, 0], "AF_INET, /24, no flags, index 5");
    assert.deepEqual([...parseAttrs(a4!.body, 8).get(2)!], [10, 0, 0, 4], "IFA_LOCAL");
    const [a6] = splitMessages(newAddress(1, 5, "fd00:9::4/64"));
    assert.deepEqual([...a6!.body.subarray(0, 3)], [10, 64, 2], "AF_INET6, /64, IFA_F_NODAD");
    assert.equal(parseAttrs(a6!.body, 8).get(2)!.toString("hex"), "fd000009000000000000000000000004");
    const [r] = splitMessages(newDefaultRoute(1, 5, "10.0.0.1"));
    assert.deepEqual([...r!.body.subarray(0, 8)], [2, 0, 0, 0, 254, 3, 0, 1], "AF_INET, default, main table, boot, universe, unicast");
    assert.throws(() => newAddress(1, 5, "10.0.0.400/24"), /invalid/);
    assert.throws(() => newDefaultRoute(1, 5, "gateway"), /invalid IP address 'gateway'/);
  });
});

const HOST = `seam-nlh-${process.pid}`;
const POD = `seam-nlp-${process.pid}`;
const inHost = (...args: string[]) => execFileSync("ip", ["netns", "exec", HOST, ...args], { encoding: "utf8" });
const ipJson = <T>(ns: string, ...args: string[]) => JSON.parse(execFileSync("ip", ["-n", ns, "-j", ...args], { encoding: "utf8" })) as T;

/** Runs a module body inside the test's host namespace (where the agent would run); what it printed last, as JSON. */
function inAgent(body: string): any {
  const script = `
    import { plumb, unplumb } from "${ROOT}/src/agent/cni/plumbing.ts";
    import { applyLinkOps } from "${ROOT}/src/agent/links/kernel.ts";
    import { observeFdb, observeLinks } from "${ROOT}/src/agent/links/observe.ts";
    import { Exec } from "${ROOT}/src/os/exec.ts";
    import { Rtnl } from "${ROOT}/src/os/netlink/rtnl.ts";
    const out = await (async () => { ${body} })();
    console.log(JSON.stringify(out ?? null));`;
  return JSON.parse(inHost(process.execPath, "--import", "tsx", "--input-type=module", "-e", script).trim().split("\n").at(-1)!);
}

const PORT = { id: "p1", network: "n1", device: "tapnltest01", mac: "fa:16:3e:00:00:01", mtu: 1450, addresses: ["10.9.0.4/24", "fd00:9::4/64"], gateways: ["10.9.0.1", "fd00:9::1"] };

describe("rtnetlink in namespaces", { skip: isRoot ? false : "needs root for namespaces" }, () => {
  before(() => {
    execFileSync("ip", ["netns", "add", HOST]);
    execFileSync("ip", ["netns", "add", POD]);
  });
  after(() => {
    execFileSync("ip", ["netns", "del", HOST]);
    execFileSync("ip", ["netns", "del", POD]);
  });

  it("wires a pod's interface: MAC, MTU, both families' addresses and default routes, its host end", () => {
    const a = inAgent(`return plumb(${JSON.stringify(PORT)}, undefined, "/run/netns/${POD}", "eth0");`);
    assert.equal(a.hostDevice, PORT.device);
    const [eth0] = ipJson<{ address: string; mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number }[] }[]>(POD, "addr", "show", "dev", "eth0");
    assert.equal(eth0!.address, PORT.mac);
    assert.equal(eth0!.mtu, 1450);
    assert.ok(eth0!.flags.includes("UP"));
    assert.deepEqual(eth0!.addr_info.map((i) => `${i.local}/${i.prefixlen}`).filter((x) => !x.startsWith("fe80")), PORT.addresses);
    assert.equal(ipJson<{ gateway: string }[]>(POD, "route", "show", "default")[0]!.gateway, "10.9.0.1");
    assert.equal(ipJson<{ gateway: string }[]>(POD, "-6", "route", "show", "default")[0]!.gateway, "fd00:9::1");
    assert.ok(ipJson<{ flags: string[] }[]>(POD, "link", "show", "lo")[0]!.flags.includes("UP"));
    const [host] = ipJson<{ address: string; mtu: number }[]>(HOST, "link", "show", PORT.device);
    assert.deepEqual(host, { ...host, address: a.hostMac, mtu: 1450 });
  });

  it("makes bridges and VXLAN devices, joins them, and reads links back as ip does", () => {
    const errors = inAgent(`return applyLinkOps(null, [
      { op: "addBridge", dev: "brqnltest" },
      { op: "addVxlan", dev: "svx-4242", vni: 4242, local: "172.31.9.1", port: 4789 },
      { op: "set", dev: "brqnltest", mtu: 1450, up: true, alias: "seam test bridge" },
      { op: "set", dev: "svx-4242", master: "brqnltest", mtu: 1450, up: true, alias: null },
      { op: "set", dev: "${PORT.device}", master: "brqnltest", mtu: 1450, up: true, alias: "seam test port" },
    ]);`);
    assert.deepEqual(errors, []);
    const ours = inAgent(`return [...(await observeLinks(Exec.here)).links.values()];`) as { name: string }[];
    const ip = ipJson<{ ifname: string; flags: string[]; mtu: number; master?: string; ifalias?: string; linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> } }[]>(HOST, "-d", "link", "show");
    assert.deepEqual(
      ours.sort((a, b) => a.name.localeCompare(b.name)),
      ip
        .map((l) => ({
          name: l.ifname,
          kind: l.linkinfo?.info_kind ?? null,
          master: l.master ?? null,
          up: l.flags.includes("UP"),
          mtu: l.mtu,
          alias: l.ifalias ?? null,
          ...(l.linkinfo?.info_kind === "vxlan" ? { vxlan: { id: l.linkinfo.info_data!.id, local: l.linkinfo.info_data!.local, port: l.linkinfo.info_data!.port, learning: Boolean(l.linkinfo.info_data!.learning), proxy: Boolean(l.linkinfo.info_data!.proxy) } } : {}),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );
    assert.deepEqual(
      ours.filter((l: any) => l.master === "brqnltest").map((l) => l.name).sort(),
      ["svx-4242", PORT.device],
    );
  });

  it("keeps a VXLAN device's forwarding entries and neighbours, and reads them back as bridge and ip do", () => {
    const errors = inAgent(`return applyLinkOps(null, [
      { op: "fdbPut", dev: "svx-4242", mac: "00:00:00:00:00:00", dst: "172.31.9.2" },
      { op: "fdbPut", dev: "svx-4242", mac: "00:00:00:00:00:00", dst: "172.31.9.3" },
      { op: "fdbPut", dev: "svx-4242", mac: "fa:16:3e:00:00:09", dst: "172.31.9.2" },
      { op: "fdbPut", dev: "svx-4242", mac: "fa:16:3e:00:00:09", dst: "172.31.9.3" },
      { op: "neighPut", dev: "svx-4242", ip: "10.9.0.9", mac: "fa:16:3e:00:00:09" },
      { op: "neighPut", dev: "svx-4242", ip: "fd00:9::9", mac: "fa:16:3e:00:00:09" },
      { op: "neighPut", dev: "svx-4242", ip: "10.9.0.10", mac: "fa:16:3e:00:00:0a" },
      { op: "neighDel", dev: "svx-4242", ip: "10.9.0.10" },
    ]);`);
    assert.deepEqual(errors, []);
    const ours = inAgent(`return observeFdb(Exec.here);`) as { fdb: { dev: string; mac: string; dst: string }[]; neigh: { dev: string; ip: string; mac: string; permanent: boolean }[] };
    const byKey = (a: { dst?: string; ip?: string; mac?: string | null }, b: typeof a) => `${a.mac}${a.dst ?? a.ip}`.localeCompare(`${b.mac}${b.dst ?? b.ip}`);
    const fdb = JSON.parse(inHost("bridge", "-j", "fdb", "show", "dev", "svx-4242")) as { mac: string; dst?: string }[];
    assert.deepEqual(ours.fdb.sort(byKey), fdb.filter((e) => e.dst).map((e) => ({ dev: "svx-4242", mac: e.mac, dst: e.dst! })).sort(byKey));
    assert.deepEqual(ours.fdb.sort(byKey), [
      { dev: "svx-4242", mac: "00:00:00:00:00:00", dst: "172.31.9.2" },
      { dev: "svx-4242", mac: "00:00:00:00:00:00", dst: "172.31.9.3" },
      { dev: "svx-4242", mac: "fa:16:3e:00:00:09", dst: "172.31.9.3" },
    ], "the flood list has both VTEPs; a unicast entry was replaced, not doubled");
    assert.deepEqual(ours.neigh.sort(byKey), [
      { dev: "svx-4242", ip: "10.9.0.9", mac: "fa:16:3e:00:00:09", permanent: true },
      { dev: "svx-4242", ip: "fd00:9::9", mac: "fa:16:3e:00:00:09", permanent: true },
    ]);
    assert.deepEqual(inAgent(`return applyLinkOps(null, [{ op: "fdbDel", dev: "svx-4242", mac: "00:00:00:00:00:00", dst: "172.31.9.3" }]);`), []);
    assert.equal((inAgent(`return observeFdb(Exec.here);`) as typeof ours).fdb.filter((e) => e.mac === "00:00:00:00:00:00").length, 1);
  });

  it("says what the kernel refused, per op, and carries on with the rest", () => {
    const errors = inAgent(`return applyLinkOps(null, [
      { op: "addBridge", dev: "brqnltest" },
      { op: "set", dev: "nosuchdev", mtu: 1400, up: true, alias: null },
      { op: "set", dev: "svx-4242", master: "brqnope", mtu: null, up: true, alias: null },
      { op: "set", dev: "brqnltest", mtu: 1400, up: true, alias: null },
    ]);`) as string[];
    assert.equal(errors.length, 3);
    assert.match(errors[0]!, /^link add name brqnltest type bridge: create bridge brqnltest: File exists/);
    assert.match(errors[1]!, /^link set dev nosuchdev mtu 1400 up: set link nosuchdev: No such device/);
    assert.match(errors[2]!, /there is no device brqnope/);
    assert.equal(ipJson<{ mtu: number }[]>(HOST, "link", "show", "brqnltest")[0]!.mtu, 1400, "the op after the refused ones went in");
  });

  it("unplumbs the pod's interface and its host end; nothing there is fine", () => {
    inAgent(`await unplumb("/run/netns/${POD}", "eth0", ["${PORT.device}"]); await unplumb("/run/netns/${POD}", "eth0", ["${PORT.device}"]);`);
    assert.deepEqual(ipJson<{ ifname: string }[]>(POD, "link", "show").map((l) => l.ifname), ["lo"]);
    assert.ok(!ipJson<{ ifname: string }[]>(HOST, "link", "show").some((l) => l.ifname === PORT.device));
    assert.throws(() => inAgent(`return plumb(${JSON.stringify(PORT)}, undefined, "/run/netns/seam-no-such-ns", "eth0");`), /could not wire eth0 into \/run\/netns\/seam-no-such-ns/);
  });
});
