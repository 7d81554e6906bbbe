// Routers end to end in the lab, as root: scenario S2 (a pod of project k8s
// and a VM of project demo on two subnets, two hosts, joined by one router),
// SNAT, floating IPs and the physical segment (F3) from the `external`
// namespace, overlapping tenants behind their own routers, an agent restart
// under routed traffic, and a floating IP moved to another port.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { containerExec, runContainer } from "../src/lab/container.ts";
import { down, LAB, netnsSuffix, readState, startAgent, stopAgent, waitFor } from "../src/lab/lab.ts";
import { bootVm, vmExec } from "../src/lab/vm.ts";
import { workload } from "../src/lab/workload.ts";
import { run } from "../src/os/exec.ts";
import { SEAM } from "../src/lab/base.ts";
import { ROOT } from "./support/http.ts";
import { capture, isRoot, labApi, pingFromNs, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
type Port = { id: string; status: string; fixed_ips: { subnet_id: string; ip_address: string }[] };
const ipOf = (p: Port) => p.fixed_ips[0]!.ip_address;
const EXTERNAL_IP = "203.0.113.254";

async function network(name: string, project: string, cidr: string, extra: Record<string, unknown> = {}): Promise<{ net: string; subnet: string }> {
  const { network } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", { network: { name, project_id: project, ...extra } });
  const { subnet } = await labApi<{ subnet: { id: string } }>("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: project, cidr, ip_version: 4, name: `${name}-v4` } });
  return { net: network.id, subnet: subnet.id };
}
async function port(net: string, project: string, host: string): Promise<Port> {
  const { port } = await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: net, project_id: project, "binding:host_id": host, device_owner: "compute:nova" } });
  return port;
}
async function allowIcmp(project: string, from = "0.0.0.0/0"): Promise<string> {
  const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${project}`);
  const { security_group_rule } = await labApi<{ security_group_rule: { id: string } }>("POST", "/v2.0/security-group-rules", {
    security_group_rule: { security_group_id: security_groups[0]!.id, direction: "ingress", ethertype: "IPv4", protocol: "icmp", remote_ip_prefix: from },
  });
  return security_group_rule.id;
}
const status = async (path: string, kind: string) => (await labApi<Record<string, { status: string }>>("GET", path))[kind]!.status;
const routerNs = (router: string) => `seam-r-${router}${netnsSuffix("host-1")}`;

/** Pings from the external namespace (the physical segment). */
const pingFromExternal = (ip: string, count = 2) => pingFromNs(LAB.external, ip, { count });

describe("routers in the lab (2 hosts, a real VM and a real container)", { skip: !isRoot && "needs root for namespaces", timeout: 900_000 }, () => {
  let demo: string;
  let k8s: string;
  let vms: { net: string; subnet: string };
  let pods: { net: string; subnet: string };
  let publicNet: string;
  let router: string;
  let vmPort: Port;
  let podIp: string;
  let wPort: Port; // a demo workload on host-2, on the VM network

  before(async () => {
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2"], { timeout: 120_000 });
    demo = await projectId("demo");
    k8s = await projectId("k8s");
    ({ network: { id: publicNet } } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", {
      network: { name: "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "external", shared: false },
    }));
    await labApi("POST", "/v2.0/subnets", {
      subnet: { network_id: publicNet, cidr: LAB.externalCidr, ip_version: 4, gateway_ip: EXTERNAL_IP, enable_dhcp: false, allocation_pools: [{ start: "203.0.113.10", end: "203.0.113.99" }] },
    });
    vms = await network("vms", demo, "10.0.0.0/26");
    pods = await network("pods", k8s, "10.0.0.64/26");
    vmPort = await port(vms.net, demo, "host-1");
    wPort = await port(vms.net, demo, "host-2");
    await bootVm("vm1", "host-1", vmPort.id);
    await workload("w", "host-2", wPort.id);
    await runContainer("pod1", "host-2", pods.net, k8s);
    const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${pods.net}&device_owner=compute:kubernetes`);
    podIp = ipOf(ports[0]!);
    await allowIcmp(demo);
    await allowIcmp(k8s, "10.0.0.0/26");
  });

  after(async () => {
    if (!process.env.SEAM_KEEP_LAB) await down(); // SEAM_KEEP_LAB=1: leave the lab up to look at a failure
  });

  it("S2: joins a pod subnet and a VM subnet of two projects only while one router connects them", async () => {
    assert.equal((await vmExec("vm1", `ping -c 2 -W 1 ${podIp}`)).code !== 0, true, "no path before a router");
    ({ router: { id: router } } = await labApi<{ router: { id: string } }>("POST", "/v2.0/routers", { router: { name: "router-1" } }));
    assert.equal(await status(`/v2.0/routers/${router}`, "router"), "ALLOCATING");
    await labApi("PUT", `/v2.0/routers/${router}/add_router_interface`, { subnet_id: vms.subnet });
    await labApi("PUT", `/v2.0/routers/${router}/add_router_interface`, { subnet_id: pods.subnet });
    await waitFor("the router ACTIVE", 10_000, async () => (await status(`/v2.0/routers/${router}`, "router")) === "ACTIVE");
    const { ports: ifaces } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?device_id=${router}`);
    await waitFor("its interfaces ACTIVE", 10_000, async () => {
      const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?device_id=${router}`);
      return ports.length === 2 && ports.every((p) => p.status === "ACTIVE");
    });
    assert.equal(ifaces.length, 2);
    const vmToPod = await vmExec("vm1", `ping -c 2 -W 2 ${podIp}`);
    assert.equal(vmToPod.code, 0, `the VM reaches the pod through the router:\n${vmToPod.output}`);
    assert.match(vmToPod.output, /ttl=63/, "one router hop: TTL decremented by one");
    const podToVm = await containerExec("pod1", `ping -c 2 -W 2 ${ipOf(vmPort)}`);
    assert.equal(podToVm.code, 0, `the pod reaches the VM:\n${podToVm.output}`);
    assert.match(podToVm.output, /ttl=63/);
    const { agents } = await labApi<{ agents: { host: string }[] }>("GET", `/v2.0/routers/${router}/l3-agents`);
    assert.deepEqual(agents.map((a) => a.host), ["host-1"], "the network host runs it");

    await labApi("PUT", `/v2.0/routers/${router}/remove_router_interface`, { subnet_id: pods.subnet });
    await waitFor("the path gone", 10_000, async () => (await vmExec("vm1", `ping -c 1 -W 1 ${podIp}`)).code !== 0);
    // Re-added, the interface is a new port but keeps its MAC (routers.ts: gatewayMac): the pod's ARP
    // cache still holds it, and a gratuitous ARP could not cross the overlay to correct it.
    await labApi("PUT", `/v2.0/routers/${router}/add_router_interface`, { subnet_id: pods.subnet });
    await waitFor("the path back", 10_000, async () => (await containerExec("pod1", `ping -c 1 -W 1 ${ipOf(vmPort)}`)).code === 0);
  });

  it("translates outbound traffic to the gateway's address (SNAT), and to the fixed address when enable_snat is off", async () => {
    await labApi("PUT", `/v2.0/routers/${router}`, { router: { external_gateway_info: { network_id: publicNet } } });
    const { router: r } = await labApi<{ router: { external_gateway_info: { external_fixed_ips: { ip_address: string }[] } } }>("GET", `/v2.0/routers/${router}`);
    const gwIp = r.external_gateway_info.external_fixed_ips[0]!.ip_address;
    await waitFor("the gateway answering", 10_000, () => pingFromExternal(gwIp, 1));
    const seen = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", async () => {
      const out = await containerExec("pod1", `ping -c 2 -W 2 ${EXTERNAL_IP}`);
      assert.equal(out.code, 0, `the pod reaches the external segment:\n${out.output}`);
    });
    assert.ok(seen.some((l) => l.includes(`${gwIp} > ${EXTERNAL_IP}: ICMP echo request`)), `the outside sees the router's address:\n${seen.join("\n")}`);
    assert.ok(!seen.some((l) => l.includes(podIp)), "and never the pod's");

    await labApi("PUT", `/v2.0/routers/${router}`, { router: { external_gateway_info: { network_id: publicNet, enable_snat: false } } });
    await run("ip", ["netns", "exec", LAB.external, "ip", "route", "replace", "10.0.0.64/26", "via", gwIp]);
    try {
      await waitFor("no SNAT", 10_000, async () => {
        const lines = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", () => containerExec("pod1", `ping -c 1 -W 1 ${EXTERNAL_IP}`));
        return lines.some((l) => l.includes(`${podIp} > ${EXTERNAL_IP}: ICMP echo request`));
      });
    } finally {
      await run("ip", ["netns", "exec", LAB.external, "ip", "route", "del", "10.0.0.64/26"]).catch(() => {});
    }
    await labApi("PUT", `/v2.0/routers/${router}`, { router: { external_gateway_info: { network_id: publicNet, enable_snat: true } } });
  });

  it("F3: a segment with only a route to the router reaches the pod by its own address, security groups still applied", async () => {
    const { router: r } = await labApi<{ router: { external_gateway_info: { external_fixed_ips: { ip_address: string }[] } } }>("GET", `/v2.0/routers/${router}`);
    const gwIp = r.external_gateway_info.external_fixed_ips[0]!.ip_address;
    await run("ip", ["netns", "exec", LAB.external, "ip", "route", "replace", "10.0.0.64/26", "via", gwIp]);
    try {
      assert.equal(await pingFromExternal(podIp), false, "the pod's group admits ICMP only from the VM subnet");
      const rule = await allowIcmp(k8s, LAB.externalCidr);
      await waitFor("the segment reaching the pod", 10_000, () => pingFromExternal(podIp, 1));
      const seen = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", () => pingFromExternal(podIp));
      assert.ok(seen.some((l) => l.includes(`${podIp} > ${EXTERNAL_IP}: ICMP echo reply`)), `replies come from the pod's own address, not translated:\n${seen.join("\n")}`);
      await labApi("DELETE", `/v2.0/security-group-rules/${rule}`);
      await waitFor("the group closing again", 10_000, async () => !(await pingFromExternal(podIp, 1)));
    } finally {
      await run("ip", ["netns", "exec", LAB.external, "ip", "route", "del", "10.0.0.64/26"]).catch(() => {});
    }
  });

  it("a floating IP: the outside reaches the VM at it and sees it as the VM's source; it moves with its port", async () => {
    const { floatingip: fip } = await labApi<{ floatingip: { id: string; floating_ip_address: string; status: string } }>("POST", "/v2.0/floatingips", {
      floatingip: { floating_network_id: publicNet, port_id: vmPort.id, project_id: demo },
    });
    const fipIp = fip.floating_ip_address;
    await waitFor("the floating IP ACTIVE", 10_000, async () => (await status(`/v2.0/floatingips/${fip.id}`, "floatingip")) === "ACTIVE");
    assert.ok(await pingFromExternal(fipIp), "the outside reaches the VM at its floating IP");
    const atVm = await capture({ ns: "host-1", dev: `tap${vmPort.id.slice(0, 11)}` }, "icmp", () => pingFromExternal(fipIp));
    assert.ok(atVm.some((l) => l.includes(`${EXTERNAL_IP} > ${ipOf(vmPort)}: ICMP echo request`)), `the VM sees the outside's address:\n${atVm.join("\n")}`);
    const outside = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", async () => {
      const out = await vmExec("vm1", `ping -c 2 -W 2 ${EXTERNAL_IP}`);
      assert.equal(out.code, 0, out.output);
    });
    assert.ok(outside.some((l) => l.includes(`${fipIp} > ${EXTERNAL_IP}: ICMP echo request`)), `the outside sees the floating IP as the VM's source:\n${outside.join("\n")}`);

    // moved to the workload's port: its traffic moves, the VM's goes back to SNAT
    await labApi("PUT", `/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: wPort.id } });
    // the update makes it DOWN; ACTIVE again means the router's host has the new translation
    await waitFor("ACTIVE again", 10_000, async () => (await status(`/v2.0/floatingips/${fip.id}`, "floatingip")) === "ACTIVE");
    const atW = await capture({ ns: "host-2", dev: `tap${wPort.id.slice(0, 11)}` }, "icmp", async () => {
      assert.ok(await pingFromExternal(fipIp), "the floating IP answers from its new port");
    });
    assert.ok(atW.some((l) => l.includes(`${EXTERNAL_IP} > ${ipOf(wPort)}: ICMP echo request`)), `the workload now gets the floating IP's traffic:\n${atW.join("\n")}`);
    const atVmNow = await capture({ ns: "host-1", dev: `tap${vmPort.id.slice(0, 11)}` }, "icmp", () => pingFromExternal(fipIp));
    assert.ok(!atVmNow.some((l) => l.includes(`${EXTERNAL_IP} > ${ipOf(vmPort)}`)), "and the VM no longer does");

    await labApi("PUT", `/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: null } });
    assert.equal(await status(`/v2.0/floatingips/${fip.id}`, "floatingip"), "DOWN", "a floating IP with no port is DOWN");
    await waitFor("the floating IP released", 10_000, async () => !(await pingFromExternal(fipIp, 1)));
  });

  it("keeps overlapping tenants apart: each reaches the outside through its own router and address", async () => {
    const sources: string[] = [];
    const fixed: string[] = [];
    for (const [i, project] of [demo, k8s].entries()) {
      const n = await network(`overlap-${i}`, project, "10.1.0.0/24");
      const { router: r } = await labApi<{ router: { id: string; external_gateway_info: { external_fixed_ips: { ip_address: string }[] } } }>("POST", "/v2.0/routers", {
        router: { name: `overlap-${i}`, project_id: project, external_gateway_info: { network_id: publicNet } },
      });
      await labApi("PUT", `/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: n.subnet });
      const p = await port(n.net, project, "host-2");
      await workload(`ov${i}`, "host-2", p.id);
      sources.push(r.external_gateway_info.external_fixed_ips[0]!.ip_address);
      fixed.push(ipOf(p));
    }
    assert.equal(fixed[0], fixed[1], "both tenants' workloads hold the same address");
    for (const [i, src] of sources.entries()) {
      await waitFor(`tenant ${i} reaching the outside`, 10_000, () => pingFromNs(`wl-ov${i}`, EXTERNAL_IP, { count: 1 }));
      const seen = await capture({ ns: LAB.external, dev: "eth0" }, "icmp", () => pingFromNs(`wl-ov${i}`, EXTERNAL_IP));
      assert.ok(seen.some((l) => l.includes(`${src} > ${EXTERNAL_IP}: ICMP echo request`)), `tenant ${i} leaves as ${src}:\n${seen.join("\n")}`);
      assert.ok(!seen.some((l) => l.includes(`${sources[1 - i]} >`)), "and never as the other tenant");
    }
  });

  it("loses no routed packet while the network host's agent restarts (200 pings at 10 ms)", async () => {
    const state = readState();
    const pinging = run("ip", ["netns", "exec", "wl-w", "ping", "-n", "-q", "-c", "200", "-i", "0.01", "-W", "1", podIp]).catch((e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 300));
    await stopAgent(state, "host-1");
    startAgent(state, "host-1");
    const out = await pinging;
    assert.match(out, /200 packets transmitted, 200 received/, out);
    await waitFor("the agent back", 20_000, async () => {
      const { agents } = await labApi<{ agents: { host: string; alive: boolean }[] }>("GET", "/v2.0/agents?host=host-1");
      return agents[0]?.alive;
    });
    const after = await run("ip", ["netns", "exec", routerNs(router), "ip", "-j", "addr", "show"]);
    assert.ok(after.includes("10.0.0.1") && after.includes("10.0.0.65"), "the router's interfaces are still there after the restart");
  });

  it("shows the routed entries, and with --kernel how the kernel differs from the intent", async () => {
    const routes = (...extra: string[]) => run(SEAM, ["routes", "--host", "host-1", "--network", "pods", ...extra]);
    const plain = await routes();
    assert.match(plain, /routed \(routers this host runs\):/);
    assert.match(plain, /10\.0\.0\.0\/26\s+10\.0\.0\.65\s+\S+\s+connected/, plain);
    assert.match(plain, /default\s+10\.0\.0\.65\s+\S+\s+external gateway .*next hop 203\.0\.113\.254, SNAT/, plain);
    assert.match(await routes("--kernel"), /kernel \(namespace host-1\): in step with the intent/);
    await run("ip", ["netns", "exec", routerNs(router), "ip", "route", "del", "default"]);
    try {
      const drift = await routes("--kernel");
      assert.match(drift, /kernel \(namespace host-1\): differs; the agent would run:\n\s+ip -n seam-r-\S+ route replace default via 203\.0\.113\.254 proto static/, drift);
    } finally {
      await run("ip", ["netns", "exec", routerNs(router), "ip", "route", "replace", "default", "via", EXTERNAL_IP, "proto", "static"]).catch(() => {});
    }
  });
});
