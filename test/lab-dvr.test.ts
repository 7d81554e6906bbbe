// Distributed routing end to end in the lab, as root (scenario S4 with a
// distributed router-1): three hosts, host-1 the network host; a real VM and
// a workload on host-2, two workloads on host-3; net-1 and net-2 joined by a
// distributed router. Routed traffic goes from the source host straight to
// the destination host (captured on the underlay: the network host sees
// none of it), same-host routed traffic never leaves the host, north-south
// still leaves through the network host's SNAT instance, and an agent
// restart on the source host loses no routed packet.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { down, LAB, readState, startAgent, stopAgent, waitFor } from "../src/lab/lab.ts";
import { bootVm, vmExec } from "../src/lab/vm.ts";
import { workload } from "../src/lab/workload.ts";
import { run } from "../src/os/exec.ts";
import { ROOT } from "./support/http.ts";
import { capture, isRoot, labApi, pingFromNs, projectId, vxlanPackets } from "./support/lab.ts";

const exec = promisify(execFile);
type Port = { id: string; fixed_ips: { ip_address: string }[] };
const ipOf = (p: Port) => p.fixed_ips[0]!.ip_address;
const EXTERNAL_IP = "203.0.113.254";
const VTEP = { "host-1": "172.31.0.11", "host-2": "172.31.0.12", "host-3": "172.31.0.13" };

describe("distributed routing in the lab (3 hosts, a real VM)", { skip: !isRoot && "needs root for namespaces", timeout: 900_000 }, () => {
  let router: string;
  let gwIp: string;
  let vm: Port; // host-2, net-1
  let a: Port; // host-2, net-2
  let b: Port; // host-3, net-2
  let c: Port; // host-3, net-1
  const vni: Record<string, number> = {};

  before(async () => {
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "3"], { timeout: 120_000 });
    const demo = await projectId("demo");
    const { security_group: sg } = await labApi<{ security_group: { id: string } }>("POST", "/v2.0/security-groups", { security_group: { name: "open", project_id: demo } });
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: sg.id, direction: "ingress", ethertype: "IPv4", remote_ip_prefix: "0.0.0.0/0" } });
    const { network: ext } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", {
      network: { name: "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "external" },
    });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: ext.id, cidr: LAB.externalCidr, ip_version: 4, gateway_ip: EXTERNAL_IP, enable_dhcp: false, allocation_pools: [{ start: "203.0.113.10", end: "203.0.113.99" }] } });
    const subnets: string[] = [];
    const nets: string[] = [];
    for (const [name, cidr] of [["net-1", "10.2.0.0/24"], ["net-2", "10.3.0.0/24"]] as const) {
      const { network } = await labApi<{ network: { id: string; "provider:segmentation_id": number } }>("POST", "/v2.0/networks", { network: { name, project_id: demo } });
      vni[name] = network["provider:segmentation_id"];
      const { subnet } = await labApi<{ subnet: { id: string } }>("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: demo, cidr, ip_version: 4 } });
      nets.push(network.id);
      subnets.push(subnet.id);
    }
    const r = await labApi<{ router: { id: string; distributed: boolean; external_gateway_info: { external_fixed_ips: { ip_address: string }[] } } }>("POST", "/v2.0/routers", {
      router: { name: "router-1", project_id: demo, distributed: true, external_gateway_info: { network_id: ext.id } },
    });
    assert.equal(r.router.distributed, true);
    router = r.router.id;
    gwIp = r.router.external_gateway_info.external_fixed_ips[0]!.ip_address;
    for (const s of subnets) await labApi("PUT", `/v2.0/routers/${router}/add_router_interface`, { subnet_id: s });
    const port = async (net: string, host: string) =>
      (await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: net, project_id: demo, "binding:host_id": host, device_owner: "compute:nova", security_groups: [sg.id] } })).port;
    vm = await port(nets[0]!, "host-2");
    a = await port(nets[1]!, "host-2");
    b = await port(nets[1]!, "host-3");
    c = await port(nets[0]!, "host-3");
    await bootVm("vm1", "host-2", vm.id);
    await workload("a", "host-2", a.id);
    await workload("b", "host-3", b.id);
    await workload("c", "host-3", c.id);
    await waitFor("the router ACTIVE", 20_000, async () => (await labApi<{ router: { status: string } }>("GET", `/v2.0/routers/${router}`)).router.status === "ACTIVE");
    await waitFor("its interfaces ACTIVE (wired on the hosts that run it)", 20_000, async () => {
      const { ports } = await labApi<{ ports: { status: string }[] }>("GET", `/v2.0/ports?device_id=${router}&device_owner=network:router_interface_distributed`);
      return ports.length === 2 && ports.every((p) => p.status === "ACTIVE");
    });
  });

  after(async () => {
    if (!process.env.SEAM_KEEP_LAB) await down();
  });

  it("routes host to host directly: the network host carries none of it, each leg on its network's VNI", async () => {
    await waitFor("c reaching a", 10_000, () => pingFromNs("wl-c", ipOf(a), { count: 1 }));
    const lines = await capture({ dev: LAB.underlay }, "udp port 4789", async () => {
      assert.ok(await pingFromNs("wl-c", ipOf(a), { count: 3 }), "host-3 net-1 -> host-2 net-2, routed");
    });
    // the routed pings only (IPv6 router solicitations flood to every host on a network, the network host too)
    const packets = vxlanPackets(lines).filter((p) => p.inner.includes(`${ipOf(c)} > ${ipOf(a)}`) || p.inner.includes(`${ipOf(a)} > ${ipOf(c)}`));
    assert.ok(packets.length >= 6, `requests and replies on the underlay:\n${lines.slice(0, 8).join("\n")}`);
    assert.ok(packets.every((p) => !p.outer.includes(VTEP["host-1"])), `nothing through the network host:\n${packets.map((p) => p.outer).join("\n")}`);
    const request = packets.find((p) => p.inner.includes(`${ipOf(c)} > ${ipOf(a)}: ICMP echo request`));
    assert.ok(request && request.outer.includes(`vni ${vni["net-2"]}`), `routed on host-3, the request travels on net-2's VNI:\n${request?.outer}`);
    const reply = packets.find((p) => p.inner.includes(`${ipOf(a)} > ${ipOf(c)}: ICMP echo reply`));
    assert.ok(reply && reply.outer.includes(`vni ${vni["net-1"]}`), `and the reply, routed on host-2, on net-1's:\n${reply?.outer}`);
    // Every host has the gateways' MACs on its own bridge; routed frames enter the overlay with the host's
    // DVR MAC instead, so no bridge learns a gateway MAC behind its VXLAN device.
    const { ports: gateways } = await labApi<{ ports: { mac_address: string }[] }>("GET", `/v2.0/ports?device_id=${router}&device_owner=network:router_interface_distributed`);
    assert.equal(gateways.length, 2);
    for (const host of ["host-2", "host-3"]) {
      const fdb = await run("ip", ["netns", "exec", host, "bridge", "fdb", "show"]);
      for (const g of gateways) {
        const learned = fdb.split("\n").filter((l) => l.startsWith(g.mac_address) && l.includes("svx-") && l.includes("master"));
        assert.deepEqual(learned, [], `${host} has not learned gateway ${g.mac_address} behind a VXLAN device`);
      }
    }
  });

  it("keeps routed traffic between two workloads of one host on that host, from the VM too (TTL - 1)", async () => {
    const lines = await capture({ dev: LAB.underlay }, "udp port 4789", async () => {
      const out = await vmExec("vm1", `ping -c 3 -W 2 ${ipOf(a)}`);
      assert.equal(out.code, 0, out.output);
      assert.match(out.output, /ttl=63/, "one router hop");
    });
    assert.ok(!vxlanPackets(lines).some((p) => p.inner.includes(ipOf(a))), `nothing on the underlay:\n${lines.slice(0, 6).join("\n")}`);
  });

  it("leaves for the outside through the network host's SNAT instance", async () => {
    await waitFor("b reaching the outside", 10_000, () => pingFromNs("wl-b", EXTERNAL_IP, { count: 1 }));
    const seen = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", () => pingFromNs("wl-b", EXTERNAL_IP));
    assert.ok(seen.some((l) => l.includes(`${gwIp} > ${EXTERNAL_IP}: ICMP echo request`)), `the outside sees the router's address:\n${seen.join("\n")}`);
    const { floatingip } = await labApi<{ floatingip: { id: string; floating_ip_address: string } }>("POST", "/v2.0/floatingips", {
      floatingip: { floating_network_id: (await labApi<{ networks: { id: string }[] }>("GET", "/v2.0/networks?name=public")).networks[0]!.id, port_id: vm.id },
    });
    await waitFor("the VM at its floating IP", 15_000, () => pingFromNs(LAB.external, floatingip.floating_ip_address, { count: 1 }));
  });

  it("loses no routed packet while the source host's agent restarts (200 pings at 10 ms)", async () => {
    const state = readState();
    const pinging = run("ip", ["netns", "exec", "wl-c", "ping", "-n", "-q", "-c", "200", "-i", "0.01", "-W", "1", ipOf(a)]).catch((e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 300));
    await stopAgent(state, "host-3");
    startAgent(state, "host-3");
    const out = await pinging;
    assert.match(out, /200 packets transmitted, 200 received/, out);
  });
});
