// Convergence benchmark: how long from a port create on the API until the
// other hosts can reach it.
//   A. Real kernel (root): 2 lab hosts; a port bound to host-2 is created; the
//      time until host-1's kernel has its FDB entry and its neighbour entry
//      (seen by `bridge monitor fdb` / `ip monitor neigh`), over N ports.
//   B. 1,000 simulated hosts: lightweight southbound clients that only read
//      their intent streams, each with a port on one network (every new port
//      concerns all of them); the time until the first and until the last of
//      them has the new port, and the controller's CPU per change.
// Baseline in the same run: the API's own port-create round trip. Prints
// figures and ratios; asserts nothing.
//
//   node --import tsx bench/convergence-bench.ts [--ports 200] [--hosts 1000] [--skip-kernel]
import { spawn } from "node:child_process";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../src/os/exec.ts";
import { down, up } from "../src/lab/lab.ts";
import { labApi, projectId } from "../test/support/lab.ts";
import { call, spawnServer, stopProcess } from "../test/support/http.ts";
import { freePort } from "../test/support/postgres.ts";
import { arg, pct } from "./support.ts";

const PORTS = arg("ports", 200);
const HOSTS = arg("hosts", 1000);

const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;

/** Lines of a long-running monitor command, with their arrival time. */
function monitor(args: string[], onLine: (line: string, at: number) => void): () => void {
  const child = spawn("ip", args, { stdio: ["ignore", "pipe", "ignore"] });
  let buf = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    const at = performance.now();
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, nl), at);
      buf = buf.slice(nl + 1);
    }
  });
  return () => child.kill();
}

async function kernelConvergence(): Promise<void> {
  await down();
  await up({ hosts: 2 });
  try {
    const project = await projectId("demo");
    const { network } = await labApi("POST", "/v2.0/networks", { network: { name: "conv", project_id: project } });
    await labApi("POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: project, cidr: "10.30.0.0/20", ip_version: 4 } });
    await labApi("POST", "/v2.0/ports", { port: { network_id: network.id, project_id: project, "binding:host_id": "host-1" } });
    const fdbSeen = new Map<string, number>();
    const neighSeen = new Map<string, number>();
    const stops = [
      monitor(["netns", "exec", "host-1", "bridge", "monitor", "fdb"], (l, at) => {
        const m = /^([0-9a-f:]{17}) dev svx-\d+ dst 172\.31\.0\.12/.exec(l);
        if (m && !fdbSeen.has(m[1]!)) fdbSeen.set(m[1]!, at);
      }),
      monitor(["netns", "exec", "host-1", "ip", "monitor", "neigh"], (l, at) => {
        const m = /lladdr ([0-9a-f:]{17}) PERMANENT/.exec(l);
        if (m && !neighSeen.has(m[1]!)) neighSeen.set(m[1]!, at);
      }),
    ];
    await new Promise((r) => setTimeout(r, 1500)); // host-1 joins the network
    const api: number[] = [];
    const fdb: number[] = [];
    const both: number[] = [];
    for (let i = 0; i < PORTS; i++) {
      const t0 = performance.now();
      const { port } = await labApi("POST", "/v2.0/ports", { port: { network_id: network.id, project_id: project, "binding:host_id": "host-2" } });
      api.push(performance.now() - t0);
      const until = performance.now() + 10_000;
      while ((!fdbSeen.has(port.mac_address) || !neighSeen.has(port.mac_address)) && performance.now() < until) await new Promise((r) => setTimeout(r, 1));
      if (!fdbSeen.has(port.mac_address)) throw new Error(`port ${port.id} never reached host-1's FDB`);
      fdb.push(fdbSeen.get(port.mac_address)! - t0);
      both.push(Math.max(fdbSeen.get(port.mac_address)!, neighSeen.get(port.mac_address) ?? Infinity) - t0);
    }
    for (const s of stops) s();
    console.log(`A. real kernel, 2 hosts, ${PORTS} ports created one after another (bound to host-2, observed on host-1):`);
    console.log(`   API port create (baseline)         ${fmt(api)}`);
    console.log(`   create -> host-1 FDB entry         ${fmt(fdb)}`);
    console.log(`   create -> FDB and neighbour entry  ${fmt(both)}   ratio to the create's p50: ${(pct(both, 50) / pct(api, 50)).toFixed(2)}`);
    const pids = (await run("ip", ["netns", "pids", "host-1"])).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("\0agent\0")) continue;
      const rss = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024;
      console.log(`   host-1 agent RSS with ${PORTS + 2} ports on the network: ${rss.toFixed(0)} MiB`);
    }
  } finally {
    await down();
  }
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

async function simulatedHosts(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "seam-conv-"));
  const portNo = await freePort();
  const server = await spawnServer(["--db", `sqlite:${join(dir, "seam.db")}`], portNo);
  const base = `http://127.0.0.1:${portNo}`;
  const admin = { "x-project-id": "admin", "x-roles": "admin" };
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const streams: (() => void)[] = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < HOSTS; i++) {
      const r = await call(base, "PUT", `/southbound/v1/hosts/sim-${i}`, { vtep: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` }, admin);
      if (r.status !== 200) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "wide" } }, admin)).body.network.id;
    await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net, cidr: "10.64.0.0/16", ip_version: 4 } }, admin);
    const initial = new Set<string>();
    for (let i = 0; i < HOSTS; i += 500) {
      const bulk = Array.from({ length: Math.min(500, HOSTS - i) }, (_, j) => ({ network_id: net, "binding:host_id": `sim-${i + j}` }));
      const r = await call(base, "POST", "/v2.0/ports", { ports: bulk }, admin);
      if (r.status !== 201) throw new Error(`ports: ${r.status}`);
      for (const p of r.body.ports) initial.add(p.id);
    }
    console.log(`B. ${HOSTS} simulated hosts, each with a port on one network (setup ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

    // Every host watches; arrival of a port id on a host's stream = that host converged for it.
    const arrivals = new Map<string, number[]>();
    let snapshots = 0;
    const watching = Array.from({ length: HOSTS }, (_, i) => new Promise<void>((ready, fail) => {
      const req = request(`${base}/southbound/v1/hosts/sim-${i}/intent?watch=1`, { agent, headers: admin }, (res) => {
        res.setEncoding("utf8");
        let first = true;
        res.on("data", (chunk: string) => {
          const at = performance.now();
          if (first) {
            first = false;
            snapshots++;
            ready();
            return;
          }
          for (const m of chunk.matchAll(/"remote\/[0-9a-f-]{36}\/([0-9a-f-]{36})"/g)) {
            if (initial.has(m[1]!)) continue;
            const list = arrivals.get(m[1]!);
            if (list) list.push(at);
            else arrivals.set(m[1]!, [at]); // may arrive before the create's response
          }
        });
      });
      req.on("error", fail);
      req.end();
      streams.push(() => req.destroy());
    }));
    const t1 = performance.now();
    await Promise.all(watching);
    console.log(`   ${snapshots} watchers connected with their snapshots in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

    const api: number[] = [];
    const first: number[] = [];
    const last: number[] = [];
    const cpu0 = cpuMs(server.pid!);
    for (let i = 0; i < PORTS; i++) {
      const t = performance.now();
      const r = await call(base, "POST", "/v2.0/ports", { port: { network_id: net, "binding:host_id": `sim-${i % HOSTS}` } }, admin);
      if (r.status !== 201) throw new Error(`port: ${r.status} ${JSON.stringify(r.body)}`);
      api.push(performance.now() - t);
      const id = r.body.port.id as string;
      if (!arrivals.has(id)) arrivals.set(id, []);
      const until = performance.now() + 10_000;
      while (arrivals.get(id)!.length < HOSTS - 1 && performance.now() < until) await new Promise((res) => setTimeout(res, 1));
      const got = arrivals.get(id)!;
      if (got.length < HOSTS - 1) throw new Error(`port ${id} reached only ${got.length} of ${HOSTS - 1} hosts`);
      first.push(Math.min(...got) - t);
      last.push(Math.max(...got) - t);
    }
    const cpu = cpuMs(server.pid!) - cpu0;
    console.log(`   API port create (baseline)         ${fmt(api)}`);
    console.log(`   create -> first host has it        ${fmt(first)}`);
    console.log(`   create -> all ${HOSTS - 1} other hosts   ${fmt(last)}   ratio to the create's p50: ${(pct(last, 50) / pct(api, 50)).toFixed(2)}`);
    console.log(`   controller CPU: ${(cpu / PORTS).toFixed(1)} ms per port create (API + change log + ${HOSTS - 1} host deltas), RSS ${(Number(readFileSync(`/proc/${server.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024).toFixed(0)} MiB`);
  } finally {
    for (const s of streams) s();
    agent.destroy();
    await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!process.argv.includes("--skip-kernel")) {
    if (process.getuid?.() !== 0) throw new Error("part A needs root (namespaces); pass --skip-kernel to run only part B");
    await kernelConvergence();
  }
  await simulatedHosts();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
