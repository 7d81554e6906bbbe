// Dataplane benchmark (root): TCP throughput across two lab hosts, workload
// to workload through Seam (bridge, VXLAN, br_netfilter + nftables), against
// baselines built in the same run between the same two host namespaces:
//   bare VXLAN     - a VXLAN device in each host namespace, static FDB, no bridge
//   overlay only   - bridge + VXLAN + veth workloads like Seam's, no filtering
// then Seam with 10 and with 10,000 security-group rules in use. Interleaved
// rounds, median per configuration. Prints ratios; asserts nothing.
//
//   node --import tsx bench/dataplane-bench.ts [--seconds 4] [--rounds 3] [--rules 10000]
import { spawn } from "node:child_process";
import { run } from "../src/os/exec.ts";
import { down, up, waitFor } from "../src/lab/lab.ts";
import { workload } from "../src/lab/workload.ts";
import { labApi, projectId } from "../test/support/lab.ts";
import { arg, median } from "./support.ts";

const SECONDS = arg("seconds", 4);
const ROUNDS = arg("rounds", 3);
const RULES = arg("rules", 10_000);

const sh = (ns: string, ...cmd: string[]) => run("ip", ["netns", "exec", ns, ...cmd]);

async function iperf(serverNs: string, clientNs: string, address: string): Promise<number> {
  const server = spawn("ip", ["netns", "exec", serverNs, "iperf3", "-s", "-1", "-B", address], { stdio: "ignore" });
  try {
    await waitFor("iperf3 server", 5000, async () => (await sh(serverNs, "ss", "-ltn")).includes(`${address}:5201`), 50);
    const out = await sh(clientNs, "iperf3", "-c", address, "-t", String(SECONDS), "-J");
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the dataplane benchmark needs root (namespaces)");
  await down();
  await up({ hosts: 2 });
  try {
    // Baseline 1: bare VXLAN between the host namespaces (VNI 4000, addresses on the VXLAN devices).
    for (const [ns, me, peer, ip] of [["host-1", "172.31.0.11", "172.31.0.12", "192.168.250.1"], ["host-2", "172.31.0.12", "172.31.0.11", "192.168.250.2"]] as const) {
      await sh(ns, "ip", "link", "add", "vxbare", "type", "vxlan", "id", "4000", "local", me, "dstport", "4789", "nolearning");
      await sh(ns, "ip", "link", "set", "vxbare", "mtu", "1450", "up");
      await sh(ns, "ip", "addr", "add", `${ip}/24`, "dev", "vxbare");
      await sh(ns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxbare", "dst", peer);
    }
    // Baseline 2: the same overlay shape as Seam's (bridge + VXLAN + veth into a namespace), no filtering.
    for (const [ns, me, peer, ip, wl] of [["host-1", "172.31.0.11", "172.31.0.12", "192.168.251.1", "wl-plain1"], ["host-2", "172.31.0.12", "172.31.0.11", "192.168.251.2", "wl-plain2"]] as const) {
      await sh(ns, "ip", "link", "add", "brplain", "type", "bridge");
      await sh(ns, "ip", "link", "add", "vxplain", "type", "vxlan", "id", "4001", "local", me, "dstport", "4789", "nolearning");
      await sh(ns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxplain", "dst", peer);
      await run("ip", ["netns", "add", wl]);
      await sh(ns, "ip", "link", "add", "vplain", "mtu", "1450", "type", "veth", "peer", "name", "eth0", "netns", wl);
      for (const d of ["brplain", "vxplain", "vplain"]) await sh(ns, "ip", "link", "set", d, "mtu", "1450", "up");
      await sh(ns, "ip", "link", "set", "vxplain", "master", "brplain");
      await sh(ns, "ip", "link", "set", "vplain", "master", "brplain");
      await sh(wl, "ip", "addr", "add", `${ip}/24`, "dev", "eth0");
      await sh(wl, "ip", "link", "set", "eth0", "mtu", "1450", "up");
    }
    // Seam: two workloads on one network, one per host, in one project's default group.
    const project = await projectId("demo");
    const { network } = await labApi("POST", "/v2.0/networks", { network: { name: "bench", project_id: project } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: project, cidr: "10.20.0.0/24", ip_version: 4 } });
    const ports = [];
    for (const host of ["host-1", "host-2"]) {
      const { port } = await labApi("POST", "/v2.0/ports", { port: { network_id: network.id, project_id: project, "binding:host_id": host } });
      ports.push(port);
      await workload(`bench-${host}`, host, port.id);
    }
    const seamIp = ports[1].fixed_ips[0].ip_address as string;
    const group = ports[1].security_groups[0] as string;
    await waitFor("Seam path", 20_000, async () => {
      await sh("wl-bench-host-1", "ping", "-c", "1", "-W", "1", seamIp);
      return true;
    });
    // TCP rules with a port become elements of the group's ingress port set (see src/agent/nft/group-rules.ts)
    const rulesInUse = async () => {
      const out = await run("ip", ["netns", "exec", "host-2", "nft", "-j", "list", "set", "inet", "seam", `r-${group}-in-v4-ports`]);
      return ((JSON.parse(out).nftables as { set?: { elem?: unknown[] } }[]).find((o) => o.set)?.set?.elem ?? []).length;
    };

    const results: Record<string, number[]> = { "bare VXLAN (host ns <-> host ns)": [], "overlay, no filtering": [], "Seam, 10 rules": [], [`Seam, ${RULES} rules`]: [] };
    const addRules = async (n: number, from: number) => {
      for (let i = 0; i < n; i += 1000) {
        const chunk = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ security_group_id: group, direction: "ingress", ethertype: "IPv4", protocol: "tcp", port_range_min: 20_000 + from + i + j, port_range_max: 20_000 + from + i + j }));
        await labApi("POST", "/v2.0/security-group-rules", { security_group_rules: chunk });
      }
    };
    // the default group has 4 rules (2 ingress); 8 more TCP rules on other ports + the iperf port allowed by the group rule
    await addRules(8, 0);
    await waitFor("8 rules in the kernel", 20_000, async () => (await rulesInUse()) >= 8, 100);
    const tenRules = await rulesInUse();
    for (let round = 0; round < ROUNDS; round++) {
      results["bare VXLAN (host ns <-> host ns)"]!.push(await iperf("host-2", "host-1", "192.168.250.2"));
      results["overlay, no filtering"]!.push(await iperf("wl-plain2", "wl-plain1", "192.168.251.2"));
      results["Seam, 10 rules"]!.push(await iperf("wl-bench-host-2", "wl-bench-host-1", seamIp));
    }
    const t0 = performance.now();
    await addRules(RULES - 8, 8);
    await waitFor(`${RULES} rules in the kernel`, 120_000, async () => (await rulesInUse()) >= RULES, 500);
    const applyMs = performance.now() - t0;
    const manyRules = await rulesInUse();
    for (let round = 0; round < ROUNDS; round++) {
      results["bare VXLAN (host ns <-> host ns)"]!.push(await iperf("host-2", "host-1", "192.168.250.2"));
      results[`Seam, ${RULES} rules`]!.push(await iperf("wl-bench-host-2", "wl-bench-host-1", seamIp));
    }
    const base = median(results["bare VXLAN (host ns <-> host ns)"]!);
    console.log(`TCP throughput, 1 stream, ${SECONDS} s x ${ROUNDS} rounds, median (Gbit/s) and ratio to bare VXLAN:`);
    for (const [name, xs] of Object.entries(results)) console.log(`  ${name.padEnd(36)} ${median(xs).toFixed(2).padStart(6)}  ${(median(xs) / base).toFixed(2)}  [${xs.map((x) => x.toFixed(2)).join(" ")}]`);
    const seam10 = median(results["Seam, 10 rules"]!);
    console.log(`  Seam ${RULES} rules / Seam 10 rules: ${(median(results[`Seam, ${RULES} rules`]!) / seam10).toFixed(2)} (TCP port rules in the host's set: ${tenRules} then ${manyRules}; reaching the kernel took ${(applyMs / 1000).toFixed(1)} s)`);
    console.log(`  Seam 10 rules / overlay without filtering: ${(seam10 / median(results["overlay, no filtering"]!)).toFixed(2)} (the cost of br_netfilter + conntrack + nftables)`);
  } finally {
    await run("ip", ["netns", "del", "wl-plain1"]).catch(() => {});
    await run("ip", ["netns", "del", "wl-plain2"]).catch(() => {});
    await down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
