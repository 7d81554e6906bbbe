// End to end in the lab, as root: two hosts with agents, a real qemu VM on
// host-1 and namespace workloads, VXLAN on the underlay, security groups,
// anti-spoofing, overlapping tenants, agent restarts and liveness.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { run } from "../src/os/exec.ts";
import { down, readState, startAgent, stopAgent, up, waitFor, writeState } from "../src/lab/lab.ts";
import { bootVm } from "../src/lab/vm.ts";
import { workload } from "../src/lab/workload.ts";
import { capture, isRoot, memberApi, vxlanPackets, labApi, pingFromNs, pingFromVm, projectId } from "./support/lab.ts";
import { ROOT } from "./support/http.ts";

const exec = promisify(execFile);
type Port = { id: string; mac_address: string; fixed_ips: { ip_address: string }[]; security_groups: string[] };

async function port(network: string, host: string, project: string, extra: Record<string, unknown> = {}): Promise<Port> {
  const { port } = await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: network, project_id: project, "binding:host_id": host, device_owner: "compute:nova", ...extra } });
  return port;
}
const ipOf = (p: Port) => p.fixed_ips[0]!.ip_address;
async function defaultGroup(project: string): Promise<string> {
  const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${project}`);
  return security_groups[0]!.id;
}
async function rule(group: string, r: Record<string, unknown>): Promise<string> {
  const { security_group_rule } = await labApi<{ security_group_rule: { id: string } }>("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: group, direction: "ingress", ethertype: "IPv4", ...r } });
  return security_group_rule.id;
}
/** Lets the agents converge (the change went through the API; the kernel follows within milliseconds). */
const settle = () => new Promise((r) => setTimeout(r, 700));

describe("lab dataplane (2 hosts, real VM)", { skip: !isRoot && "needs root for namespaces", timeout: 600_000 }, () => {
  let net: { id: string; "provider:segmentation_id": number };
  let demo: string;
  let k8s: string;
  let vmPort: Port;
  let wPort: Port; // k8s workload on host-2
  let w2Port: Port; // demo workload on host-2
  let w3Port: Port; // demo workload on host-2

  before(async () => {
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2"], { timeout: 120_000 });
    demo = await projectId("demo");
    k8s = await projectId("k8s");
    ({ network: net } = await labApi("POST", "/v2.0/networks", { network: { name: "seamless", project_id: demo, shared: true } }));
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: net.id, project_id: demo, cidr: "10.10.0.0/24", ip_version: 4 } });
    vmPort = await port(net.id, "host-1", demo, { device_id: "vm-1" });
    wPort = await port(net.id, "host-2", k8s, { device_owner: "compute:kubernetes" });
    w2Port = await port(net.id, "host-2", demo);
    w3Port = await port(net.id, "host-2", demo);
    await bootVm("vm1", "host-1", vmPort.id);
    await workload("w", "host-2", wPort.id);
    await workload("w2", "host-2", w2Port.id);
    await workload("w3", "host-2", w3Port.id);
    await waitFor("ports ACTIVE", 20_000, async () => {
      const { ports } = await labApi<{ ports: { status: string }[] }>("GET", `/v2.0/ports?network_id=${net.id}`);
      return ports.every((p) => p.status === "ACTIVE");
    });
  });

  after(async () => {
    await down();
  });

  it("carries VM <-> workload traffic across hosts as VXLAN with the network's VNI", async () => {
    const vni = net["provider:segmentation_id"];
    const lines = await capture({ dev: "seam-ul" }, "udp port 4789", async () => {
      assert.ok(await pingFromVm("vm1", ipOf(w2Port)), "VM on host-1 pings the workload on host-2");
      assert.ok(await pingFromNs("wl-w2", ipOf(vmPort)), "workload on host-2 pings the VM");
    });
    const packets = vxlanPackets(lines).filter((p) => p.outer.includes(`vni ${vni}`));
    const request = packets.find((p) => p.inner.includes(`${ipOf(vmPort)} > ${ipOf(w2Port)}: ICMP echo request`));
    assert.ok(request, `VXLAN vni ${vni} carries the VM's echo request:\n${lines.slice(0, 6).join("\n")}`);
    assert.match(request.outer, /172\.31\.0\.11\.\d+ > 172\.31\.0\.12\.4789/, "outer addresses are the hosts' VTEPs, UDP 4789");
    assert.ok(packets.some((p) => p.inner.includes(`${ipOf(w2Port)} > ${ipOf(vmPort)}: ICMP echo request`)), "and the workload's echo request back");
  });

  it("keeps traffic between two workloads on one host off the underlay", async () => {
    const lines = await capture({ dev: "seam-ul" }, "udp port 4789", async () => {
      assert.ok(await pingFromNs("wl-w2", ipOf(w3Port), { count: 5 }));
    });
    assert.deepEqual(lines.filter((l) => l.includes(ipOf(w3Port))), [], "nothing between w2 and w3 crosses the underlay");
  });

  it("blocks traffic between different default groups until a remote-group rule allows it", async () => {
    assert.equal(await pingFromVm("vm1", ipOf(wPort)), false, "demo VM -> k8s workload is blocked");
    assert.equal(await pingFromNs("wl-w", ipOf(vmPort)), false, "k8s workload -> demo VM is blocked");
    const r = await rule(await defaultGroup(k8s), { protocol: "icmp", remote_group_id: await defaultGroup(demo) });
    await settle();
    assert.ok(await pingFromVm("vm1", ipOf(wPort)), "the k8s group now admits the demo group's members");
    assert.equal(await pingFromNs("wl-w", ipOf(vmPort)), false, "the demo group still does not admit k8s");
    await labApi("DELETE", `/v2.0/security-group-rules/${r}`);
  });

  it("lets k8s's member admit demo's group once demo's member shares it (RBAC, seeds/001)", async () => {
    const asDemo = memberApi("demo", "demo", "demo");
    const asK8s = memberApi("k8s", "k8s", "k8s");
    const demoSg = await defaultGroup(demo);
    const body = { security_group_rule: { security_group_id: await defaultGroup(k8s), direction: "ingress", ethertype: "IPv4", protocol: "icmp", remote_group_id: demoSg } };
    assert.equal((await asK8s("POST", "/v2.0/security-group-rules", body)).status, 404, "demo's group is not k8s's to name");
    const shared = await asDemo("POST", "/v2.0/rbac-policies", { rbac_policy: { object_type: "security_group", object_id: demoSg, action: "access_as_shared", target_tenant: k8s } });
    assert.equal(shared.status, 201, JSON.stringify(shared.body));
    const created = await asK8s("POST", "/v2.0/security-group-rules", body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await settle();
    assert.ok(await pingFromVm("vm1", ipOf(wPort)), "k8s's rule admits the demo VM");
    assert.equal(await pingFromNs("wl-w", ipOf(vmPort)), false, "demo's group still does not admit k8s");
    assert.equal((await asDemo("DELETE", `/v2.0/rbac-policies/${shared.body.rbac_policy.id}`)).status, 409, "k8s's rule holds the entry");
    assert.equal((await asK8s("DELETE", `/v2.0/security-group-rules/${created.body.security_group_rule.id}`)).status, 204);
    assert.equal((await asDemo("DELETE", `/v2.0/rbac-policies/${shared.body.rbac_policy.id}`)).status, 204);
    await settle();
    assert.equal(await pingFromVm("vm1", ipOf(wPort)), false, "blocked again once the rule is gone");
  });

  it("admits only the CIDR a rule names, and stops admitting new flows when the rule goes", async () => {
    const demoSg = await defaultGroup(demo);
    const r = await rule(demoSg, { protocol: "icmp", remote_ip_prefix: `${ipOf(wPort)}/32` });
    await settle();
    assert.ok(await pingFromNs("wl-w", ipOf(vmPort)), "the named address gets in");
    // Another k8s workload, another address: not in the CIDR.
    const other = await port(net.id, "host-2", k8s, { device_owner: "compute:kubernetes" });
    await workload("w-other", "host-2", other.id);
    await settle();
    assert.equal(await pingFromNs("wl-w-other", ipOf(vmPort)), false, "an address outside the CIDR is refused");
    await labApi("DELETE", `/v2.0/security-group-rules/${r}`);
    await settle();
    assert.equal(await pingFromNs("wl-w", ipOf(vmPort)), false, "a new flow after the rule's removal is refused");
  });

  it("drops spoofed source addresses and MACs unless listed in allowed_address_pairs", async () => {
    const spoofIp = "10.10.0.200";
    await run("ip", ["netns", "exec", "wl-w2", "ip", "addr", "add", `${spoofIp}/32`, "dev", "eth0"]);
    assert.ok(await pingFromNs("wl-w2", ipOf(w3Port)), "its own address works");
    assert.equal(await pingFromNs("wl-w2", ipOf(w3Port), { source: spoofIp }), false, "a spoofed source IP is dropped");
    await labApi("PUT", `/v2.0/ports/${w2Port.id}`, { port: { allowed_address_pairs: [{ ip_address: spoofIp }] } });
    await settle();
    assert.ok(await pingFromNs("wl-w2", ipOf(w3Port), { source: spoofIp }), "an allowed address pair may be used");
    // A spoofed MAC: the frames leave with a MAC that is not the port's.
    await run("ip", ["netns", "exec", "wl-w3", "ip", "link", "set", "eth0", "address", "fa:16:3e:de:ad:01"]);
    assert.equal(await pingFromNs("wl-w3", ipOf(w2Port)), false, "a spoofed MAC is dropped");
    await run("ip", ["netns", "exec", "wl-w3", "ip", "link", "set", "eth0", "address", w3Port.mac_address]);
    await run("ip", ["netns", "exec", "wl-w3", "ip", "neigh", "flush", "all"]);
    assert.ok(await pingFromNs("wl-w3", ipOf(w2Port)), "with its own MAC again it works");
  });

  it("shows the agents alive, and a stopped agent not alive within the down time", async () => {
    const env = { ...process.env, OS_AUTH_URL: `${readState().server.url}/v3`, OS_USERNAME: "admin", OS_PASSWORD: "admin", OS_PROJECT_NAME: "admin", OS_USER_DOMAIN_NAME: "Default", OS_PROJECT_DOMAIN_NAME: "Default", OS_IDENTITY_API_VERSION: "3" };
    const list = async () => (await exec("openstack", ["network", "agent", "list", "-f", "value", "-c", "Host", "-c", "Alive"], { env })).stdout;
    const before = await list();
    assert.match(before, /host-1 True/);
    assert.match(before, /host-2 True/);
    const state = readState();
    await stopAgent(state, "host-2");
    writeState(state);
    const t0 = Date.now();
    await waitFor("host-2 not alive", 15_000, async () => /host-2 False/.test(await list()), 500);
    assert.ok(Date.now() - t0 < 12_000, "within the 6 s down time plus one listing");
    startAgent(state, "host-2");
    writeState(state);
    await waitFor("host-2 alive again", 15_000, async () => /host-2 True/.test(await list()), 500);
  });

  it("prints the forwarding table with local ports and remote VTEPs (seam routes)", async () => {
    const { stdout } = await exec(`${ROOT}/bin/seam`, ["routes", "--host", "host-1", "--network", "seamless", "--server", readState().server.url, "--os-username", "admin", "--os-password", "admin"]);
    assert.match(stdout, new RegExp(`${ipOf(vmPort).replace(/\./g, "\\.")}\\s+${vmPort.mac_address}\\s+local tap${vmPort.id.slice(0, 11)}`));
    assert.match(stdout, new RegExp(`${ipOf(w2Port).replace(/\./g, "\\.")}\\s+${w2Port.mac_address}\\s+vtep 172\\.31\\.0\\.12 vni ${net["provider:segmentation_id"]} \\(host-2\\)`));
    assert.match(stdout, /flood \(broadcast, unknown unicast\) to: 172\.31\.0\.12/);
  });

  it("loses no ping across a restart of both agents", async () => {
    const ping = run("ip", ["netns", "exec", "wl-w2", "ping", "-n", "-q", "-c", "200", "-i", "0.01", "-W", "1", ipOf(vmPort)]).catch((e) => String(e.stderr ?? e));
    await new Promise((r) => setTimeout(r, 300));
    const state = readState();
    for (const h of ["host-1", "host-2"]) await stopAgent(state, h);
    for (const h of ["host-1", "host-2"]) startAgent(state, h);
    writeState(state);
    const out = await ping;
    assert.match(out, /200 packets transmitted, 200 received/, out);
  });

  it("removes a port deleted while its agent was down once the agent returns", async () => {
    const state = readState();
    await stopAgent(state, "host-2");
    await labApi("DELETE", `/v2.0/ports/${w3Port.id}`);
    const dev = `tap${w3Port.id.slice(0, 11)}`;
    const ruleset = async () => (await run("ip", ["netns", "exec", "host-2", "nft", "list", "ruleset"])).includes(w3Port.id);
    assert.ok(await ruleset(), "the stopped agent did not touch the kernel");
    startAgent(state, "host-2");
    writeState(state);
    await waitFor("host-2 to forget the port", 20_000, async () => {
      const link = JSON.parse(await run("ip", ["-n", "host-2", "-j", "link", "show", "dev", dev]))[0] as { master?: string };
      return !link.master && !(await ruleset());
    }, 200);
    const fdb = await run("bridge", ["-n", "host-1", "fdb", "show", "dev", `svx-${net["provider:segmentation_id"]}`]);
    assert.ok(fdb.includes(`${w2Port.mac_address} dst 172.31.0.12`), "host-1 still sends w2's MAC to host-2");
    assert.ok(!fdb.includes(`${w3Port.mac_address} dst`), "and no longer the deleted port's");
  });
});

describe("overlapping tenants (F13)", { skip: !isRoot && "needs root for namespaces", timeout: 300_000 }, () => {
  before(async () => {
    await down();
    await up({ hosts: 2 });
  });
  after(async () => {
    await down();
  });

  it("keeps two projects with the same 10.0.0.0/24 and the same addresses apart", async () => {
    const ws: Record<string, Port> = {};
    const vnis: number[] = [];
    for (const project of ["demo", "k8s"]) {
      const pid = await projectId(project);
      const { network } = await labApi("POST", "/v2.0/networks", { network: { name: `net-${project}`, project_id: pid } });
      vnis.push(network["provider:segmentation_id"]);
      await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: pid, cidr: "10.0.0.0/24", ip_version: 4 } });
      for (const host of ["host-1", "host-2"]) {
        const p = await port(network.id, host, pid);
        ws[`${project}-${host}`] = p;
        await workload(`${project}-${host}`, host, p.id);
      }
    }
    assert.equal(ipOf(ws["demo-host-1"]!), ipOf(ws["k8s-host-1"]!), "the same address in both projects");
    assert.equal(ipOf(ws["demo-host-2"]!), ipOf(ws["k8s-host-2"]!));
    await settle();
    const target = ipOf(ws["demo-host-2"]!);
    const seenByK8s = await capture({ ns: "wl-k8s-host-2", dev: "eth0" }, "icmp", async () => {
      assert.ok(await pingFromNs("wl-demo-host-1", target), "demo reaches demo across hosts");
    });
    assert.deepEqual(seenByK8s, [], "k8s's workload with the same address saw none of it");
    assert.ok(await pingFromNs("wl-k8s-host-1", target), "k8s reaches k8s");
    const neigh = await run("ip", ["netns", "exec", "wl-k8s-host-1", "ip", "neigh", "show", target]);
    assert.ok(neigh.includes(ws["k8s-host-2"]!.mac_address), `k8s resolved its own peer's MAC: ${neigh}`);
    assert.notEqual(vnis[0], vnis[1]);
  });
});
