// DHCP and DNS end to end in the lab, as root: a real VM with no address on
// its command line gets its port's address (.3, after the DHCP port's .2),
// MTU, route and resolver by DHCP from the network host across VXLAN, and
// the same again after every part restarts; names resolve from the VM and
// from a real container; a renamed port resolves anew at once.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { containerExec, runContainer } from "../src/lab/container.ts";
import { down, LAB, netnsSuffix, readState, startAgent, startServer, stopAgent, stopServer, waitFor } from "../src/lab/lab.ts";
import { bootVm, stopVm, vmExec, vmLease } from "../src/lab/vm.ts";
import { stopDnsmasq } from "../src/agent/dhcp/dhcp-manager.ts";
import { run } from "../src/os/exec.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
const VM1_INSTANCE = "9a1c7a52-0b6e-4a8e-9d0c-5d2b5c1f0a01";
type Port = { id: string; status: string; fixed_ips: { subnet_id: string; ip_address: string }[] };
const ipOf = (p: Port) => p.fixed_ips[0]!.ip_address;

async function port(net: string, project: string, extra: Record<string, unknown> = {}): Promise<Port> {
  const { port } = await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: net, project_id: project, device_owner: "compute:nova", ...extra } });
  return port;
}

/** What busybox nslookup in the VM answers for a name: its addresses, or null (NXDOMAIN / no answer). */
async function resolveInVm(vm: string, name: string): Promise<string[] | null> {
  const r = await vmExec(vm, `nslookup ${name}`, 20_000);
  if (r.code !== 0) return null;
  const answers = r.output.split(/\n\s*\n/).slice(1).join("\n");
  const found = [...answers.matchAll(/Address:\s*(\S+)/g)].map((m) => m[1]!);
  const ptr = [...answers.matchAll(/name = (\S+)/g)].map((m) => m[1]!);
  return [...found, ...ptr];
}

function dnsmasqPid(network: string): number {
  const dir = `${LAB.stateDir}/host-1/dhcp/seam-d-${network}${netnsSuffix("host-1")}`;
  return Number(readFileSync(`${dir}/pid`, "utf8").trim());
}

// An outside resolver for the test: a namespace on the lab's underlay with a dnsmasq that knows one name.
const UPSTREAM_NS = "seamtest-upstream";
const UPSTREAM_IP = "172.31.0.253";
const OUTSIDE = { name: "www.outside.test", ip: "198.51.100.7", ip6: "2001:db8::7" };
async function upstreamUp(): Promise<void> {
  await run("ip", ["netns", "add", UPSTREAM_NS]);
  await run("ip", ["link", "add", "ul-upstream", "type", "veth", "peer", "name", "eth0", "netns", UPSTREAM_NS]);
  await run("ip", ["link", "set", "ul-upstream", "master", LAB.underlay, "up"]);
  await run("ip", ["-n", UPSTREAM_NS, "addr", "add", `${UPSTREAM_IP}/24`, "dev", "eth0"]);
  await run("ip", ["-n", UPSTREAM_NS, "link", "set", "eth0", "up"]);
  mkdirSync("/tmp/seamtest-upstream", { recursive: true });
  await run("ip", ["netns", "exec", UPSTREAM_NS, "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", `--address=/${OUTSIDE.name}/${OUTSIDE.ip}`, `--address=/${OUTSIDE.name}/${OUTSIDE.ip6}`, "--local=/outside.test/", "--pid-file=/tmp/seamtest-upstream/pid", "--log-facility=/tmp/seamtest-upstream/log", "--log-queries"]);
}
async function upstreamDown(): Promise<void> {
  await stopDnsmasq("/tmp/seamtest-upstream");
  await run("ip", ["netns", "del", UPSTREAM_NS]).catch(() => {});
  await run("ip", ["link", "del", "ul-upstream"]).catch(() => {});
  rmSync("/tmp/seamtest-upstream", { recursive: true, force: true });
}

describe("DHCP and DNS in the lab (2 hosts, real VMs and a real container)", { skip: !isRoot && "needs root for namespaces", timeout: 900_000 }, () => {
  let k8s: string;
  let net: string;
  let subnet: string;
  let vmPort: Port;
  let hello: Port;

  before(async () => {
    await down();
    await upstreamDown();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2", "--dns-upstream", `${UPSTREAM_IP}`], { timeout: 120_000 });
    await upstreamUp();
    k8s = await projectId("k8s");
    const { network } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", { network: { name: "seamless", project_id: k8s, dns_domain: "openstack.local." } });
    net = network.id;
    ({ subnet: { id: subnet } } = await labApi<{ subnet: { id: string } }>("POST", "/v2.0/subnets", { subnet: { network_id: net, project_id: k8s, cidr: "192.168.100.0/24", ip_version: 4 } }));
    vmPort = await port(net, k8s, { "binding:host_id": "host-2", name: "vm1", device_id: VM1_INSTANCE, "binding:profile": { public_keys: { mykey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx9 test@seam" } } });
    hello = await port(net, k8s, { dns_name: "hello", name: "hello" });
  });
  after(async () => {
    if (process.env.SEAM_KEEP_LAB) return;
    await down();
    await upstreamDown();
  });

  it("gives a VM with no address on its command line its port's address (.3, after the DHCP port's .2), MTU 1450, its route and resolver", async () => {
    assert.equal(ipOf(vmPort), "192.168.100.3");
    const vm = await bootVm("vm1", "host-2", vmPort.id);
    const lease = vm.lease!;
    assert.equal(lease.ip, "192.168.100.3/24");
    assert.equal(lease.mtu, "1450");
    assert.equal(lease.router, "192.168.100.1");
    assert.equal(lease.dns, "192.168.100.2", "the network's resolver: its DHCP port");
    assert.equal(lease.domain, "openstack.local");
    const link = await vmExec("vm1", "ip link show eth0; ip route; cat /etc/resolv.conf");
    assert.match(link.output, /mtu 1450/);
    assert.match(link.output, /default via 192\.168\.100\.1/);
    assert.match(link.output, /nameserver 192\.168\.100\.2/);
    process.stdout.write(`# lease ${lease.uptime.toFixed(2)} s after the guest's kernel started (${vm.accel})\n`);
    const { ports } = await labApi<{ ports: (Port & { device_owner: string })[] }>("GET", `/v2.0/ports?network_id=${net}&device_owner=network:dhcp`);
    assert.equal(ipOf(ports[0]!), "192.168.100.2");
    await waitFor("the DHCP port ACTIVE", 10_000, async () => (await labApi<{ port: Port }>("GET", `/v2.0/ports/${ports[0]!.id}`)).port.status === "ACTIVE");
    const agents = await labApi<{ agents: { host: string }[] }>("GET", `/v2.0/networks/${net}/dhcp-agents`);
    assert.deepEqual(agents.agents.map((a) => a.host), ["host-1"]);
  });

  it("resolves a port's dns_name and its PTR from the VM; an unknown name of the domain is NXDOMAIN", async () => {
    assert.deepEqual(await resolveInVm("vm1", "hello.openstack.local"), [ipOf(hello)]);
    assert.deepEqual(await resolveInVm("vm1", ipOf(hello)), ["hello.openstack.local"]);
    assert.deepEqual(await resolveInVm("vm1", "hello"), [ipOf(hello)], "the search domain from DHCP");
    const r = await vmExec("vm1", "nslookup nobody.openstack.local");
    assert.notEqual(r.code, 0);
    assert.match(r.output, /NXDOMAIN/);
    assert.doesNotMatch(readFileSync("/tmp/seamtest-upstream/log", "utf8"), /nobody/, "the network's own domain is never forwarded");
  });

  it("forwards an outside name through the agent's relay to the configured upstream", async () => {
    assert.deepEqual(await resolveInVm("vm1", OUTSIDE.name), [OUTSIDE.ip, OUTSIDE.ip6]);
    assert.match(readFileSync("/tmp/seamtest-upstream/log", "utf8"), new RegExp(`query\\[A\\] ${OUTSIDE.name.replace(/\./g, "\\.")} from 172\\.31\\.0\\.11`), "asked by host-1, the network host");
    const r = await vmExec("vm1", "nslookup nowhere.outside.test");
    assert.notEqual(r.code, 0, "what the upstream does not know stays unknown");
  });

  it("resolves the ports' names from the physical segment through the controller's listener", async () => {
    const ask = (name: string) => run("ip", ["netns", "exec", LAB.external, "busybox", "nslookup", name, LAB.serverAddress]).catch((e: { stdout?: string; message: string }) => `failed: ${e.message}`);
    assert.match(await ask("hello.openstack.local"), new RegExp(`Address:\\s*${ipOf(hello).replace(/\./g, "\\.")}`));
    assert.match(await ask(ipOf(hello)), /name = hello\.openstack\.local/);
    assert.match(await ask("nobody.openstack.local"), /NXDOMAIN/);
  });

  it("resolves the same from a real container, whose resolver comes in the CNI result", async () => {
    await runContainer("pod1", "host-2", "seamless", "k8s");
    const conf = (await containerExec("pod1", "cat /etc/resolv.conf")).output;
    assert.match(conf, /nameserver 192\.168\.100\.2/);
    const r = await containerExec("pod1", "nslookup hello.openstack.local");
    assert.match(r.output, new RegExp(`Address:\\s*${ipOf(hello).replace(/\./g, "\\.")}`));
  });

  it("resolves a renamed port by its new name at once, and the old name no more", async () => {
    const pid = dnsmasqPid(net);
    const t0 = Date.now();
    await labApi("PUT", `/v2.0/ports/${hello.id}`, { port: { dns_name: "world" } });
    // in the VM, so no exec round trip per try
    const r = await vmExec("vm1", "i=0; while ! nslookup world.openstack.local >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 500 ] && exit 1; done; echo tries=$i", 30_000);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, r.output);
    process.stdout.write(`# dns_name changed on the API -> resolvable from the VM: ${ms} ms (${r.output.trim()})\n`);
    assert.ok(ms < 5000, `took ${ms} ms`);
    assert.equal(await resolveInVm("vm1", "hello.openstack.local"), null);
    assert.equal(dnsmasqPid(net), pid, "re-read, not restarted");
    const outside = await run("ip", ["netns", "exec", LAB.external, "busybox", "nslookup", "world.openstack.local", LAB.serverAddress]);
    assert.match(outside, /Address:\s*192\.168\.100\.4/, "the controller's listener follows the rename too");
  });

  it("serves the VM its own metadata at 169.254.169.254: network_data.json, meta_data.json and the EC2 tree", async () => {
    // (busybox 1.35's wget dies of SIGSEGV when given -T: none here)
    const get = async (vm: string, path: string) => {
      const r = await vmExec(vm, `wget -q -O - http://169.254.169.254${path}`, 30_000);
      assert.equal(r.code, 0, `${path}: ${r.output}`);
      return r.output;
    };
    const nd = JSON.parse(await get("vm1", "/openstack/latest/network_data.json"));
    const { port: p } = await labApi<{ port: Port & { mac_address: string } }>("GET", `/v2.0/ports/${vmPort.id}`);
    assert.deepEqual(nd.links, [{ id: `tap${vmPort.id.slice(0, 11)}`, vif_id: vmPort.id, type: "bridge", mtu: 1450, ethernet_mac_address: p.mac_address }]);
    assert.equal(nd.networks[0].ip_address, "192.168.100.3");
    assert.equal(nd.networks[0].netmask, "255.255.255.0");
    assert.deepEqual(nd.networks[0].routes, [{ network: "0.0.0.0", netmask: "0.0.0.0", gateway: "192.168.100.1" }]);
    assert.deepEqual(nd.services, [{ type: "dns", address: "192.168.100.2" }]);
    const md = JSON.parse(await get("vm1", "/openstack/latest/meta_data.json"));
    assert.equal(md.uuid, VM1_INSTANCE);
    assert.equal(md.hostname, "host-192-168-100-3");
    assert.deepEqual(md.public_keys, { mykey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx9 test@seam" });
    assert.equal((await get("vm1", "/latest/meta-data/instance-id")).trim(), VM1_INSTANCE);
    assert.equal((await get("vm1", "/2009-04-04/meta-data/local-ipv4")).trim(), "192.168.100.3");
    assert.equal((await get("vm1", "/latest/meta-data/public-keys/")).trim(), "0=mykey");
    const missing = await vmExec("vm1", "wget -q -O - http://169.254.169.254/openstack/latest/user_data", 30_000);
    assert.notEqual(missing.code, 0, "user data comes from Nova only (none configured here)");
    // a header the VM sends is not believed: the source address decides
    const forged = await vmExec("vm1", "wget -q -O - --header 'X-Forwarded-For: 192.168.100.2' http://169.254.169.254/latest/meta-data/local-ipv4", 30_000);
    assert.equal(forged.output.trim(), "192.168.100.3");
  });

  it("gives the VM the same address after it, every agent and the controller restart; dnsmasq outlives its agent", async () => {
    const pid = dnsmasqPid(net);
    await stopVm("vm1");
    const state = readState();
    for (const h of state.hosts) await stopAgent(state, h.name);
    await stopServer(state);
    await startServer(state);
    for (const h of state.hosts) startAgent(state, h.name);
    await waitFor("agents back", 60_000, async () => {
      const { agents } = await labApi<{ agents: { host: string; alive: boolean }[] }>("GET", "/v2.0/agents");
      return agents.filter((a) => a.alive).length === 2;
    }, 250);
    const vm = await bootVm("vm1", "host-2", vmPort.id);
    assert.equal(vm.lease!.ip, "192.168.100.3/24");
    assert.equal(dnsmasqPid(net), pid, "the agent's restart left dnsmasq serving");
  });

  it("gives a VM on a freed address exactly what the IPAM gave its port", async () => {
    await labApi("DELETE", `/v2.0/ports/${hello.id}`);
    const second = await port(net, k8s, { "binding:host_id": "host-1", name: "vm2" });
    assert.equal(ipOf(second), ipOf(hello), "the IPAM reuses the freed address");
    const vm = await bootVm("vm2", "host-1", second.id);
    assert.equal(vm.lease!.ip, `${ipOf(second)}/24`);
    // the other VM's metadata is its own, not vm1's
    const r = await vmExec("vm2", "wget -q -O - http://169.254.169.254/latest/meta-data/local-ipv4", 30_000);
    assert.equal(r.output.trim(), ipOf(second));
    // and a port the model moves to another address gets that one at its next lease
    const moved = (await labApi<{ port: Port }>("PUT", `/v2.0/ports/${second.id}`, { port: { fixed_ips: [{ subnet_id: subnet, ip_address: "192.168.100.50" }] } })).port;
    assert.equal(ipOf(moved), "192.168.100.50");
    // Renew now (a cloud image waits for T1), and again until the lease moves: a renewal that reaches
    // dnsmasq before the agent has rewritten its hosts file is answered with the old address, as it should be.
    await waitFor("the new lease", 20_000, async () => {
      if ((await vmLease("vm2"))?.ip === "192.168.100.50/24") return true;
      await vmExec("vm2", "kill -USR1 $(pidof udhcpc)");
      return false;
    }, 1000);
  });
});
