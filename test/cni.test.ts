// seam-cni against a lab host's agent, as a runtime calls it: every verb with
// good and bad input, results checked against the CNI spec's shape, and
// nothing left behind by failures, DEL, GC or an agent killed during ADD.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../src/os/exec.ts";
import { cniSocket, down, LAB, readState, startAgent, stopAgent, up, waitFor, writeState } from "../src/lab/lab.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, projectId } from "./support/lab.ts";

interface CniReply {
  code: number;
  out: Record<string, any> | null;
  ms: number;
}

function cni(env: Record<string, string>, stdin: string): Promise<CniReply> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(join(ROOT, "bin/seam-cni"), [], { env: { PATH: process.env.PATH!, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("close", (code) => resolve({ code: code ?? -1, out: out.trim() ? JSON.parse(out) : null, ms: performance.now() - t0 }));
    child.stdin.end(stdin);
  });
}

const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: "1.1.0", name: "seam-test", type: "seam", network: "pods", agentSocket: cniSocket("host-2"), ...extra });
const envFor = (command: string, id: string, extra: Record<string, string> = {}) => ({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${nsOf(id)}`, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", ...extra });
const nsOf = (id: string) => `cnitest-${id.slice(0, 8)}`;

/** The error shape of the spec: code, msg, details, and a non-zero exit. */
function assertError(r: CniReply, code: number, msg: RegExp): void {
  assert.notEqual(r.code, 0, "a failure exits non-zero");
  assert.equal(r.out?.code, code, JSON.stringify(r.out));
  assert.match(String(r.out?.msg), msg);
  assert.equal(typeof r.out?.details, "string");
  assert.equal(typeof r.out?.cniVersion, "string");
}

async function leftovers(): Promise<{ ports: string[]; taps: string[]; records: string[]; elements: number }> {
  const { ports } = await labApi<{ ports: { id: string }[] }>("GET", "/v2.0/ports?tags=seam-cni");
  const links = JSON.parse(await run("ip", ["-n", "host-2", "-j", "link", "show"])) as { ifname: string }[];
  const dir = join(LAB.stateDir, "host-2", "cni");
  const map = JSON.parse(await run("ip", ["netns", "exec", "host-2", "nft", "-j", "list", "map", "bridge", "seam", "port_in"]).catch(() => '{"nftables":[]}')).nftables as { map?: { elem?: unknown[] } }[];
  return {
    ports: ports.map((p) => p.id),
    taps: links.map((l) => l.ifname).filter((n) => n.startsWith("tap")),
    records: existsSync(dir) ? readdirSync(dir) : [],
    elements: map.find((o) => o.map)?.map?.elem?.length ?? 0,
  };
}

describe("seam-cni (CNI 1.1) against a lab agent", { skip: !isRoot && "needs root for namespaces", timeout: 300_000 }, () => {
  const namespaces: string[] = [];
  const newNs = async (id: string) => {
    await run("ip", ["netns", "add", nsOf(id)]);
    namespaces.push(nsOf(id));
  };

  before(async () => {
    await down();
    await up({ hosts: 2 });
    const k8s = await projectId("k8s");
    const { network } = await labApi("POST", "/v2.0/networks", { network: { name: "pods", project_id: k8s } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: k8s, cidr: "10.50.0.0/24", ip_version: 4 } });
    // dual stack: an IPv4 and an IPv6 subnet on one network
    const { network: dual } = await labApi("POST", "/v2.0/networks", { network: { name: "dual", project_id: k8s } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: dual.id, project_id: k8s, cidr: "10.52.0.0/24", ip_version: 4 } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: dual.id, project_id: k8s, cidr: "fd00:52::/64", ip_version: 6 } });
    // a tiny network to run out of addresses: a /29 has .2-.6 (no DHCP port takes one)
    const { network: tiny } = await labApi("POST", "/v2.0/networks", { network: { name: "tiny", project_id: k8s } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: tiny.id, project_id: k8s, cidr: "10.51.0.0/29", ip_version: 4, enable_dhcp: false } });
  });
  after(async () => {
    for (const ns of namespaces) await run("ip", ["netns", "del", ns]).catch(() => {});
    await down();
  });

  it("answers VERSION without the agent", async () => {
    const r = await cni({ CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: "1.0.0" }));
    assert.equal(r.code, 0);
    assert.deepEqual(r.out, { cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  it("ADDs with a result of the spec's shape, the same result again for a repeated ADD, and a working interface", async () => {
    const id = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
    await newNs(id);
    const r = await cni(envFor("ADD", id, { CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=7d8e9f00-1111-2222-3333-444455556666" }), conf());
    assert.equal(r.code, 0, JSON.stringify(r.out));
    const res = r.out!;
    assert.equal(res.cniVersion, "1.1.0");
    assert.equal(res.interfaces.length, 2);
    assert.match(res.interfaces[0].name, /^tap[0-9a-f-]{11}$/);
    assert.match(res.interfaces[0].mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.deepEqual(Object.keys(res.interfaces[1]).sort(), ["mac", "mtu", "name", "sandbox"]);
    assert.equal(res.interfaces[1].name, "eth0");
    assert.equal(res.interfaces[1].sandbox, `/run/netns/${nsOf(id)}`);
    assert.equal(res.interfaces[1].mtu, 1450, "the network's MTU (VXLAN)");
    assert.equal(res.ips.length, 1);
    assert.match(res.ips[0].address, /^10\.50\.0\.\d+\/24$/);
    assert.equal(res.ips[0].gateway, "10.50.0.1");
    assert.equal(res.ips[0].interface, 1, "index of the container interface in interfaces");
    assert.deepEqual(res.routes, [{ dst: "0.0.0.0/0", gw: "10.50.0.1" }]);
    assert.deepEqual(res.dns, { nameservers: ["10.50.0.2"] }, "the network's resolver: its DHCP port");
    // the port is an ordinary port: named after the pod, owned by Kubernetes, bound here, ACTIVE
    const { ports } = await labApi<{ ports: Record<string, any>[] }>("GET", `/v2.0/ports?device_id=7d8e9f00-1111-2222-3333-444455556666`);
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.name, "default/web-0");
    assert.equal(ports[0]!.device_owner, "compute:kubernetes");
    assert.equal(ports[0]!["binding:host_id"], "host-2");
    assert.equal(ports[0]!.status, "ACTIVE");
    assert.equal(ports[0]!.mac_address, res.interfaces[1].mac);
    // inside the container: address, MAC, MTU, default route
    const inside = JSON.parse(await run("ip", ["-n", nsOf(id), "-j", "addr", "show", "eth0"]))[0];
    assert.equal(inside.address, res.interfaces[1].mac);
    assert.equal(inside.mtu, 1450);
    assert.ok(inside.addr_info.some((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}` === res.ips[0].address));
    assert.match(await run("ip", ["-n", nsOf(id), "route", "show", "default"]), /default via 10\.50\.0\.1 dev eth0/);
    const again = await cni(envFor("ADD", id), conf());
    assert.equal(again.code, 0);
    assert.deepEqual(again.out, res, "a repeated ADD returns the same result");
    assert.equal((await labApi<{ ports: unknown[] }>("GET", "/v2.0/ports?tags=seam-cni")).ports.length, 1, "and makes no second port");
    // older versions get their own shape (ips with version)
    const legacy = await cni(envFor("ADD", id), conf({ cniVersion: "0.4.0" }));
    assert.equal(legacy.out!.ips[0].version, "4");
  });

  it("gives a pod on a dual-stack network both of its port's addresses and a default route per family", async () => {
    const id = "d0a1".padEnd(64, "0");
    await newNs(id);
    const elementsBefore = (await leftovers()).elements;
    const r = await cni(envFor("ADD", id), conf({ network: "dual" }));
    assert.equal(r.code, 0, JSON.stringify(r.out));
    const ips = (r.out!.ips as { address: string; gateway?: string }[]).map((i) => [i.address.replace(/\d+\//, "N/").replace(/::[0-9a-f]+\//, "::N/"), i.gateway]);
    assert.deepEqual(ips, [["10.52.0.N/24", "10.52.0.1"], ["fd00:52::N/64", "fd00:52::1"]]);
    assert.deepEqual(r.out!.routes, [{ dst: "0.0.0.0/0", gw: "10.52.0.1" }, { dst: "::/0", gw: "fd00:52::1" }]);
    const inside = JSON.parse(await run("ip", ["-n", nsOf(id), "-j", "addr", "show", "eth0"]))[0] as { addr_info: { local: string; prefixlen: number }[] };
    for (const ip of r.out!.ips as { address: string }[]) assert.ok(inside.addr_info.some((a) => `${a.local}/${a.prefixlen}` === ip.address), `${ip.address} inside the container`);
    assert.match(await run("ip", ["-n", nsOf(id), "-6", "route", "show", "default"]), /default via fd00:52::1 dev eth0/);
    assert.equal((await cni(envFor("CHECK", id), conf({ network: "dual" }))).code, 0, "CHECK sees both families as ADD left them");
    assert.equal((await cni(envFor("DEL", id), conf({ network: "dual" }))).code, 0);
    await waitFor("the agent to drop the port's filters", 5000, async () => (await leftovers()).elements === elementsBefore);
  });

  it("CHECKs the interface, address and route, and fails when one is gone", async () => {
    const id = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
    const ok = await cni(envFor("CHECK", id), conf());
    assert.equal(ok.code, 0, JSON.stringify(ok.out));
    assert.equal(ok.out, null, "CHECK prints nothing on success");
    await run("ip", ["-n", nsOf(id), "route", "del", "default"]);
    assertError(await cni(envFor("CHECK", id), conf()), 101, /not as ADD left it/);
    assertError(await cni(envFor("CHECK", "never-added"), conf()), 3, /no attachment/);
  });

  it("DELs everything and succeeds again when nothing is left", async () => {
    const id = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
    const r = await cni(envFor("DEL", id), conf());
    assert.equal(r.code, 0, JSON.stringify(r.out));
    await waitFor("the agent to drop the port's filters", 5000, async () => (await leftovers()).elements === 0);
    assert.deepEqual(await leftovers(), { ports: [], taps: [], records: [], elements: 0 });
    assert.equal((await run("ip", ["-n", nsOf(id), "-j", "link", "show"])).includes("eth0"), false, "eth0 is gone from the container");
    assert.equal((await cni(envFor("DEL", id), conf())).code, 0, "a second DEL succeeds");
    assert.equal((await cni(envFor("DEL", id, { CNI_NETNS: "" }), conf())).code, 0, "so does a DEL without a netns (containerd sends one)");
  });

  it("answers bad input with CNI errors and leaves nothing behind", async () => {
    const id = "bad0000000000000000000000000000000000000000000000000000000000001";
    await newNs(id);
    assertError(await cni(envFor("ADD", id), "{not json"), 6, /decode/);
    assertError(await cni(envFor("ADD", id), JSON.stringify({ cniVersion: "9.9.9", type: "seam" })), 1, /incompatible CNI version/);
    assertError(await cni({ ...envFor("ADD", id), CNI_CONTAINERID: "" }, conf()), 4, /CNI_CONTAINERID/);
    assertError(await cni({ CNI_CONTAINERID: id }, conf()), 4, /CNI_COMMAND/);
    assertError(await cni(envFor("ADD", id, { CNI_NETNS: "/run/netns/does-not-exist" }), conf()), 3, /does not exist/);
    assertError(await cni(envFor("ADD", id), conf({ network: "no-such-network" })), 7, /unknown network 'no-such-network'/);
    assertError(await cni(envFor("ADD", id), conf({ network: undefined })), 7, /needs 'network'/);
    assertError(await cni(envFor("ADD", id), conf({ agentSocket: "/run/seam-lab/nowhere.sock" })), 11, /not reachable/);
    assertError(await cni(envFor("STATUS", id), conf({ agentSocket: "/run/seam-lab/nowhere.sock" })), 50, /not reachable/);
    assert.equal((await cni(envFor("STATUS", id), conf())).code, 0, "STATUS: agent and controller reachable");
    assert.deepEqual(await leftovers(), { ports: [], taps: [], records: [], elements: 0 });
  });

  it("reports address exhaustion as an error and cleans up the attempt", async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `ex${i}`.padEnd(64, "0"));
    for (const id of ids) await newNs(id);
    for (const id of ids.slice(0, 5)) assert.equal((await cni(envFor("ADD", id), conf({ network: "tiny" }))).code, 0);
    const r = await cni(envFor("ADD", ids[5]!), conf({ network: "tiny" }));
    assertError(r, 100, /no free address/);
    assert.equal((await run("ip", ["-n", nsOf(ids[5]!), "-j", "link", "show"])).includes("eth0"), false, "no interface in the failed container");
    assert.equal((await leftovers()).ports.length, 5);
    for (const id of ids.slice(0, 5)) assert.equal((await cni(envFor("DEL", id), conf({ network: "tiny" }))).code, 0);
    await waitFor("filters gone", 5000, async () => (await leftovers()).elements === 0);
    assert.deepEqual(await leftovers(), { ports: [], taps: [], records: [], elements: 0 });
  });

  it("GC removes attachments the runtime no longer lists, and what an agent killed during ADD left", async () => {
    const keep = "gc-keep".padEnd(64, "0");
    const gone = "gc-gone".padEnd(64, "0");
    const crash = "gc-crash".padEnd(64, "0");
    for (const id of [keep, gone, crash]) await newNs(id);
    assert.equal((await cni(envFor("ADD", keep), conf())).code, 0);
    assert.equal((await cni(envFor("ADD", gone), conf())).code, 0);
    // kill the agent in the middle of an ADD: once its record names the port it created (the agent
    // waits there when armed: os/failpoints.ts)
    const state = readState();
    await stopAgent(state, "host-2");
    process.env.SEAM_FAILPOINTS = "cni-add-after-port";
    try {
      startAgent(state, "host-2");
    } finally {
      delete process.env.SEAM_FAILPOINTS;
    }
    writeState(state);
    await waitFor("the agent back", 20_000, async () => (await cni(envFor("STATUS", keep), conf())).code === 0, 200);
    const dir = join(LAB.stateDir, "host-2", "cni");
    const adding = cni(envFor("ADD", crash), conf());
    const midway = () => readdirSync(dir).some((f) => {
      try {
        const r = JSON.parse(readFileSync(join(dir, f), "utf8"));
        return r.containerId === crash && r.portId;
      } catch {
        return false;
      }
    });
    const until = Date.now() + 10_000;
    while (!midway() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok(midway(), "the ADD got as far as creating the port");
    await stopAgent(state, "host-2", "SIGKILL");
    const crashed = await adding;
    assert.notEqual(crashed.code, 0, "the runtime sees the ADD fail");
    const before = await leftovers();
    assert.equal(before.ports.length, 3, "the crash left the port behind (now GC's job)");
    startAgent(state, "host-2");
    writeState(state);
    await waitFor("the agent back", 20_000, async () => (await cni(envFor("STATUS", keep), conf())).code === 0, 200);
    const gc = await cni({ CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" }, conf({ "cni.dev/attachments": [{ containerID: keep, ifname: "eth0" }] }));
    assert.equal(gc.code, 0, JSON.stringify(gc.out));
    await waitFor("filters of removed attachments gone", 5000, async () => (await leftovers()).elements === 1);
    const left = await leftovers();
    assert.equal(left.ports.length, 1, "only the kept container's port");
    assert.equal(left.taps.length, 1, "only its veth");
    assert.equal(left.records.length, 1, "only its record");
    assert.equal((await cni(envFor("CHECK", keep), conf())).code, 0, "the kept one still checks out");
    assert.equal((await cni(envFor("DEL", keep), conf())).code, 0);
  });
});
