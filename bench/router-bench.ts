// Routers benchmark (root), in a 3-host lab: host-1 is the network host and
// runs the router; the workloads sit on host-2 and host-3, so a routed packet
// takes the centralised detour through host-1. In the same run:
//   same network   - two workloads on one network, host-2 -> host-3 (the baseline)
//   routed         - the same hosts, two networks joined by the router (centralised)
//   distributed    - the same router made distributed (PUT distributed: true):
//                    host-2 -> host-3 directly (target >= 0.90 of same network)
//   floating IP    - the external segment to a workload by its floating IP (DNAT)
//   routed, no NAT - the external segment to the same workload by its own address (F3)
// TCP throughput (iperf3) and ping RTT, interleaved rounds, medians; then the
// time from `add_router_interface` on the API to the first routed ping that
// succeeds, over --reps repetitions (target p99 <= 1 s). Prints; asserts nothing.
//
//   node --import tsx bench/router-bench.ts [--seconds 3] [--rounds 3] [--reps 50]
import { spawn } from "node:child_process";
import { down, LAB, up, waitFor } from "../src/lab/lab.ts";
import { workload } from "../src/lab/workload.ts";
import { run } from "../src/os/exec.ts";
import { labApi, projectId } from "../test/support/lab.ts";
import { arg, median, pct } from "./support.ts";

const SECONDS = arg("seconds", 3);
const ROUNDS = arg("rounds", 3);
const REPS = arg("reps", 50);

const sh = (ns: string, ...cmd: string[]) => run("ip", ["netns", "exec", ns, ...cmd]);

async function iperf(serverNs: string, clientNs: string, address: string): Promise<number> {
  const server = spawn("ip", ["netns", "exec", serverNs, "iperf3", "-s", "-1"], { stdio: "ignore" });
  try {
    await waitFor("iperf3 server", 5000, async () => (await sh(serverNs, "ss", "-ltn")).includes(":5201"), 50);
    const out = await sh(clientNs, "iperf3", "-c", address, "-t", String(SECONDS), "-J");
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill();
  }
}

async function rtt(ns: string, address: string): Promise<number> {
  const out = await sh(ns, "ping", "-n", "-q", "-c", "50", "-i", "0.01", address);
  return Number(/= [\d.]+\/([\d.]+)\//.exec(out)![1]);
}

async function network(name: string, project: string, cidr: string) {
  const { network } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", { network: { name, project_id: project } });
  const { subnet } = await labApi<{ subnet: { id: string } }>("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: project, cidr, ip_version: 4 } });
  return { net: network.id, subnet: subnet.id };
}
async function port(net: string, project: string, host: string, group: string) {
  const { port } = await labApi<{ port: { id: string; fixed_ips: { ip_address: string }[] } }>("POST", "/v2.0/ports", {
    port: { network_id: net, project_id: project, "binding:host_id": host, device_owner: "compute:nova", security_groups: [group] },
  });
  return port;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the routers benchmark needs root (namespaces)");
  await down();
  await up({ hosts: 3 });
  try {
    const project = await projectId("demo");
    const { security_group: sg } = await labApi<{ security_group: { id: string } }>("POST", "/v2.0/security-groups", { security_group: { name: "bench", project_id: project } });
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: sg.id, direction: "ingress", ethertype: "IPv4", remote_ip_prefix: "0.0.0.0/0" } });
    const { network: ext } = await labApi<{ network: { id: string } }>("POST", "/v2.0/networks", {
      network: { name: "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "external" },
    });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: ext.id, cidr: LAB.externalCidr, ip_version: 4, gateway_ip: "203.0.113.254", enable_dhcp: false, allocation_pools: [{ start: "203.0.113.10", end: "203.0.113.99" }] } });
    const n1 = await network("net-1", project, "10.0.0.0/24");
    const n2 = await network("net-2", project, "10.1.0.0/24");
    const { router } = await labApi<{ router: { id: string; external_gateway_info: { external_fixed_ips: { ip_address: string }[] } } }>("POST", "/v2.0/routers", {
      router: { name: "router-1", project_id: project, external_gateway_info: { network_id: ext.id } },
    });
    for (const s of [n1.subnet, n2.subnet]) await labApi("PUT", `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: s });
    const a = await port(n1.net, project, "host-2", sg.id);
    const b = await port(n2.net, project, "host-3", sg.id);
    const c = await port(n1.net, project, "host-3", sg.id);
    await workload("a", "host-2", a.id);
    await workload("b", "host-3", b.id);
    await workload("c", "host-3", c.id);
    const { floatingip } = await labApi<{ floatingip: { id: string; floating_ip_address: string } }>("POST", "/v2.0/floatingips", { floatingip: { floating_network_id: ext.id, port_id: b.id, project_id: project } });
    const gw = router.external_gateway_info.external_fixed_ips[0]!.ip_address;
    const ipB = b.fixed_ips[0]!.ip_address;
    const ipC = c.fixed_ips[0]!.ip_address;
    await sh(LAB.external, "ip", "route", "replace", "10.1.0.0/24", "via", gw);
    await waitFor("routed and floating paths", 30_000, async () => {
      for (const [ns, ip] of [["wl-a", ipB], ["wl-a", ipC], [LAB.external, floatingip.floating_ip_address], [LAB.external, ipB]] as const) {
        if (!(await sh(ns, "ping", "-c", "1", "-W", "1", ip).then(() => true, () => false))) return false;
      }
      return true;
    }, 250);

    const configs = [
      ["same network (host-2 -> host-3)", "wl-c", "wl-a", ipC],
      ["routed, centralised (host-2 -> host-1 -> host-3)", "wl-b", "wl-a", ipB],
      ["external -> floating IP (DNAT)", "wl-b", LAB.external, floatingip.floating_ip_address],
      ["external -> fixed IP, routed (no NAT)", "wl-b", LAB.external, ipB],
    ] as const;
    const DISTRIBUTED = "routed, distributed (host-2 -> host-3)";
    const gbps = new Map<string, number[]>();
    const ms = new Map<string, number[]>();
    const measure = async (name: string, server: string, client: string, ip: string) => {
      (gbps.get(name) ?? gbps.set(name, []).get(name)!).push(await iperf(server, client, ip));
      (ms.get(name) ?? ms.set(name, []).get(name)!).push(await rtt(client, ip));
    };
    const mode = async (distributed: boolean) => {
      await labApi("PUT", `/v2.0/routers/${router.id}`, { router: { distributed } });
      await waitFor(`the router ${distributed ? "distributed" : "centralised"}`, 30_000, async () => {
        const here = await run("ip", ["netns", "list"]);
        const instance = here.includes(`seam-r-${router.id}@host-2`);
        return instance === distributed && (await sh("wl-a", "ping", "-c", "1", "-W", "1", ipB).then(() => true, () => false));
      }, 100);
    };
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, server, client, ip] of configs) await measure(name, server, client, ip);
      await mode(true);
      await measure(DISTRIBUTED, "wl-b", "wl-a", ipB);
      await mode(false);
      process.stderr.write(`round ${r + 1}/${ROUNDS}\n`);
    }
    const base = median(gbps.get(configs[0][0])!);
    const baseRtt = median(ms.get(configs[0][0])!);
    const noNat = median(gbps.get(configs[3][0])!);
    console.log(`\nTCP 1 stream, ${SECONDS} s x ${ROUNDS} rounds (medians), ping RTT over 50 pings at 10 ms`);
    for (const name of [...configs.map((c) => c[0]), DISTRIBUTED]) {
      const g = median(gbps.get(name)!);
      const t = median(ms.get(name)!);
      const ref = name.startsWith("external -> floating") ? noNat : base;
      console.log(`  ${name.padEnd(50)} ${g.toFixed(2).padStart(6)} Gbit/s  ratio ${(g / ref).toFixed(2)}   RTT ${t.toFixed(3)} ms (x${(t / baseRtt).toFixed(2)})`);
    }
    console.log(`  (target for distributed routing: >= 0.90 of the same network)`);
    console.log(`  (the floating IP's ratio is against the same path without NAT; every other ratio against the same network)`);

    // add_router_interface -> first routed ping (net-2's interface may go only once no floating IP needs it)
    await labApi("PUT", `/v2.0/floatingips/${floatingip.id}`, { floatingip: { port_id: null } });
    for (const distributed of [false, true]) {
      await mode(distributed);
      const samples: number[] = [];
      for (let i = 0; i < REPS; i++) {
        await labApi("PUT", `/v2.0/routers/${router.id}/remove_router_interface`, { subnet_id: n2.subnet });
        await waitFor("the path gone", 10_000, async () => !(await sh("wl-a", "ping", "-c", "1", "-W", "0.3", ipB).then(() => true, () => false)), 20);
        const t0 = performance.now();
        await labApi("PUT", `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: n2.subnet });
        await waitFor("the first routed ping", 10_000, () => sh("wl-a", "ping", "-c", "1", "-W", "0.2", ipB).then(() => true, () => false), 0);
        samples.push(performance.now() - t0);
      }
      console.log(`\nadd_router_interface -> first routed ping (${distributed ? "distributed" : "centralised"}), ${REPS} repetitions: p50 ${pct(samples, 50).toFixed(0)} ms, p99 ${pct(samples, 99).toFixed(0)} ms, max ${Math.max(...samples).toFixed(0)} ms (target p99 <= 1000 ms)`);
    }
  } finally {
    await down();
  }
}

await main();
