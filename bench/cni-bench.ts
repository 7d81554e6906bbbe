// CNI benchmark (root): pod network ready, no pre-created ports.
//   (a) the agent's own handling: an ADD sent straight to its socket, answered
//       once the address is configured and the filters are in place;
//   (b) the whole plugin invocation as a runtime sees it (seam-cni started per ADD);
// each 200 sequential and 200 with 20 in parallel. Baselines in the same run:
// `node -e 0` and `seam-cni VERSION` (process starts) and one veth into a
// namespace with plain `ip`; the whole plugin is also set against the agent's own handling.
// The CPU the controller and the host's agent spent per ADD, in the agent's phases, says
// where a burst's time goes (Little's law: in flight / throughput).
// Then a real runtime: `podman run --rm` with Seam against Debian's reference
// bridge + host-local plugins. Prints figures and ratios; asserts nothing.
//
//   node --import tsx bench/cni-bench.ts [--adds 200] [--parallel 20] [--podman 10]
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { run } from "../src/os/exec.ts";
import { podman, podmanEnv, ROOTFS, writeCniConfig } from "../src/lab/container.ts";
import { cniSocket, down, LAB, ROOT, up } from "../src/lab/lab.ts";
import { labApi, projectId } from "../test/support/lab.ts";
import { pool } from "../test/support/http.ts";
import { arg, pct } from "./support.ts";

const ADDS = arg("adds", 200);
const PARALLEL = arg("parallel", 20);
const PODMAN = arg("podman", 10);

const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms  p99 ${pct(xs, 99).toFixed(1)} ms`;

/** CPU (user + system, ms) used so far by the processes whose command line holds every one of `words`. */
function cpuMs(...words: string[]): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!words.every((w) => argv.includes(w))) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Runs a phase of `n` ADDs and says how much CPU the controller and the host's agent spent per ADD. */
async function withCpu<T>(cpu: Record<string, string>, name: string, n: number, phase: () => Promise<T>): Promise<T> {
  const [s0, a0] = [cpuMs("server"), cpuMs("agent", "host-2")];
  const out = await phase();
  cpu[name] = `controller ${((cpuMs("server") - s0) / n).toFixed(1)} ms, agent ${((cpuMs("agent", "host-2") - a0) / n).toFixed(1)} ms`;
  return out;
}

function timedSpawn(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin: string): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code: code ?? -1, out }));
    child.stdin.end(stdin);
  });
}

function viaSocket(socket: string, env: Record<string, string>, config: string): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = connect(socket);
    let buf = "";
    c.setEncoding("utf8");
    c.on("connect", () => c.end(`${JSON.stringify({ env, config: JSON.parse(config) })}\n`));
    c.on("data", (d: string) => (buf += d));
    c.on("end", () => resolve({ ms: performance.now() - t0, reply: buf }));
    c.on("error", reject);
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the CNI benchmark needs root (namespaces)");
  await down();
  await up({ hosts: 2 });
  const namespaces: string[] = [];
  try {
    const k8s = await projectId("k8s");
    const { network } = await labApi("POST", "/v2.0/networks", { network: { name: "bench-pods", project_id: k8s } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: k8s, cidr: "10.96.0.0/16", ip_version: 4 } });
    const socket = cniSocket("host-2");
    const config = JSON.stringify({ cniVersion: "1.1.0", name: "bench", type: "seam", network: "bench-pods", agentSocket: socket });
    const total = ADDS * 4;
    for (let i = 0; i < total; i++) {
      namespaces.push(`cnib-${i}`);
      await run("ip", ["netns", "add", `cnib-${i}`]);
    }
    const env = (cmd: string, i: number) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `bench${String(i).padStart(4, "0")}`.padEnd(64, "0"), CNI_NETNS: `/run/netns/cnib-${i}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" });
    const delAll = async (from: number, n: number) => {
      await pool(n, 4, async (j) => viaSocket(socket, env("DEL", from + j), config));
    };

    // Baselines
    const shim = join(ROOT, "bin/seam-cni");
    const nodeStart: number[] = [];
    for (let i = 0; i < 20; i++) nodeStart.push((await timedSpawn(process.execPath, ["-e", "0"], process.env, "")).ms);
    const pluginStart: number[] = [];
    for (let i = 0; i < 20; i++) pluginStart.push((await timedSpawn(shim, [], { CNI_COMMAND: "VERSION" }, "{}")).ms);
    const plainVeth: number[] = [];
    await run("ip", ["netns", "add", "cnib-plain"]);
    namespaces.push("cnib-plain");
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      await run("ip", ["-n", "host-2", "link", "add", "vbench", "type", "veth", "peer", "name", "eth0", "netns", "cnib-plain"]);
      await run("ip", ["-n", "cnib-plain", "-batch", "-"], "link set eth0 up\naddr add 10.97.0.2/24 dev eth0\nroute add default via 10.97.0.1 dev eth0\n");
      plainVeth.push(performance.now() - t0);
      await run("ip", ["-n", "host-2", "link", "del", "vbench"]);
    }

    const results: Record<string, number[]> = {};
    const check = (r: string, what: string) => {
      if (!r.includes('"ips"')) throw new Error(`${what} failed: ${r.slice(0, 300)}`);
    };
    // (a) agent handling, sequential and parallel
    const cpu: Record<string, string> = {};
    results["agent, sequential"] = [];
    await withCpu(cpu, "agent, sequential", ADDS, async () => {
      for (let i = 0; i < ADDS; i++) {
        const r = await viaSocket(socket, env("ADD", i), config);
        check(r.reply, "ADD");
        results["agent, sequential"]!.push(r.ms);
      }
    });
    await delAll(0, ADDS);
    results[`agent, ${PARALLEL} in parallel`] = await withCpu(cpu, `agent, ${PARALLEL} in parallel`, ADDS, () =>
      pool(ADDS, PARALLEL, async (j) => {
        const r = await viaSocket(socket, env("ADD", ADDS + j), config);
        check(r.reply, "ADD");
        return r.ms;
      }),
    );
    await delAll(ADDS, ADDS);
    // (b) the whole plugin invocation
    results["seam-cni, sequential"] = [];
    for (let i = 0; i < ADDS; i++) {
      const r = await timedSpawn(shim, [], { PATH: process.env.PATH, ...env("ADD", 2 * ADDS + i) }, config);
      check(r.out, "seam-cni ADD");
      results["seam-cni, sequential"]!.push(r.ms);
    }
    await delAll(2 * ADDS, ADDS);
    results[`seam-cni, ${PARALLEL} in parallel`] = await pool(ADDS, PARALLEL, async (j) => {
      const r = await timedSpawn(shim, [], { PATH: process.env.PATH, ...env("ADD", 3 * ADDS + j) }, config);
      check(r.out, "seam-cni ADD");
      return r.ms;
    });
    await delAll(3 * ADDS, ADDS);

    console.log(`Pod network ready, no pre-created ports, ${ADDS} ADDs each (2 cores shared by everything):`);
    console.log(`  baseline: node -e 0                 ${fmt(nodeStart)}   (what a plugin written for Node pays to start)`);
    console.log(`  baseline: seam-cni VERSION          ${fmt(pluginStart)}   (what seam-cni pays to start)`);
    console.log(`  baseline: veth into a netns (ip)    ${fmt(plainVeth)}`);
    for (const [name, xs] of Object.entries(results)) {
      // the agent against a bare veth; the whole plugin against the agent's own handling (the plugin's overhead)
      const [base, label] = name.startsWith("agent") ? [plainVeth, "plain veth"] : [results[name.replace("seam-cni", "agent")]!, "agent"];
      console.log(`  ${name.padEnd(34)} ${fmt(xs)}   p50 / ${label} p50: ${(pct(xs, 50) / pct(base, 50)).toFixed(2)}`);
    }
    console.log("CPU per ADD (where a burst's time goes: 2 cores for everything):");
    for (const [name, c] of Object.entries(cpu)) console.log(`  ${name.padEnd(34)} ${c}`);

    // A real runtime: podman run --rm, Seam vs the reference bridge + host-local plugins.
    const seamNet = writeCniConfig("host-2", "bench-pods", "k8s");
    const refDir = join(LAB.stateDir, "cni", "net.d");
    writeFileSync(join(refDir, "ref-bridge.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "ref-bridge", plugins: [{ type: "bridge", bridge: "cni-ref0", isGateway: true, ipMasq: false, ipam: { type: "host-local", ranges: [[{ subnet: "10.88.77.0/24" }]], dataDir: join(LAB.stateDir, "cni", "host-local") } }] }));
    podmanEnv();
    const podmanRun = async (net: string) => {
      const t0 = performance.now();
      await podman(["run", "--rm", "--network", net, "--rootfs", ROOTFS, "/bin/true"]);
      return performance.now() - t0;
    };
    await podmanRun("ref-bridge");
    await podmanRun(seamNet); // warm both
    const ref: number[] = [];
    const seam: number[] = [];
    for (let i = 0; i < PODMAN; i++) {
      ref.push(await podmanRun("ref-bridge"));
      seam.push(await podmanRun(seamNet));
    }
    console.log(`podman run --rm (${PODMAN} each, interleaved):`);
    console.log(`  reference bridge + host-local       ${fmt(ref)}`);
    console.log(`  Seam (seam-cni -> agent -> port)    ${fmt(seam)}   ratio p50: ${(pct(seam, 50) / pct(ref, 50)).toFixed(2)}`);
  } finally {
    for (const ns of namespaces) await run("ip", ["netns", "del", ns]).catch(() => {});
    await run("ip", ["link", "del", "cni-ref0"]).catch(() => {});
    rmSync(join(LAB.stateDir, "cni", "host-local"), { recursive: true, force: true });
    await down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
