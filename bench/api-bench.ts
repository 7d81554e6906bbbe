// API benchmark on the embedded store. Prints figures and ratios against a
// baseline measured in the same run (a trivial endpoint of the same server,
// driven by the same client), never asserts on time.
//
//   node --import tsx bench/api-bench.ts [--ports 100000] [--concurrency 16]
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../test/support/postgres.ts";
import { call, pool, spawnServer, stopProcess } from "../test/support/http.ts";
import { arg, timed } from "./support.ts";

const TOTAL = arg("ports", 100_000);
const CONCURRENCY = arg("concurrency", 16);
const SAMPLE = arg("sample", 5000);


function rssMiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)![1]) / 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

const f = (x: number, d = 1) => x.toFixed(d);

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "seam-bench-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await spawnServer(["--db", `sqlite:${join(dir, "seam.db")}`], port);
  try {
    const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "bench" } })).body.network;
    await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.128.0.0/14", ip_version: 4 } });
    // Warm up both paths (JIT, statement cache) so neither side of the ratio pays for it.
    await timed(500, CONCURRENCY, async () => (await fetch(`${base}/`).then((r) => r.arrayBuffer().then(() => r.status))));
    await timed(200, CONCURRENCY, async (i) => (await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `w${i}` } })).status);

    const baseline = await timed(SAMPLE, CONCURRENCY, async () => (await fetch(`${base}/`).then((r) => r.arrayBuffer().then(() => r.status))));
    const create = await timed(SAMPLE, CONCURRENCY, async (i) =>
      (await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `p${i}`, device_owner: i % 2 ? "compute:kubernetes" : "compute:nova", device_id: `d${i}` } })).status,
    );
    console.log(`port create, ${CONCURRENCY} clients, ${SAMPLE} ports, embedded store`);
    console.log(`  baseline GET /        ${f(baseline.rate, 0)} req/s  p50 ${f(baseline.p50, 2)} ms  p99 ${f(baseline.p99, 2)} ms`);
    console.log(`  POST /v2.0/ports      ${f(create.rate, 0)} ports/s  p50 ${f(create.p50, 2)} ms  p99 ${f(create.p99, 2)} ms   (target >= 1000/s, p99 <= 30 ms)`);
    console.log(`  ratio create/baseline ${f(create.rate / baseline.rate, 3)}`);

    // Rules into one group from every client (the group's lock and its growing rule list on
    // every write), then each client into a group of its own.
    const rulePorts = Math.min(SAMPLE, 60_000);
    const oneGroup = (await call(base, "POST", "/v2.0/security-groups", { security_group: { name: "bench-one" } })).body.security_group.id;
    const lanes = await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, i) => (await call(base, "POST", "/v2.0/security-groups", { security_group: { name: `bench-${i}` } })).body.security_group.id as string),
    );
    const rule = (group: string, port: number) => ({ security_group_rule: { security_group_id: group, direction: "ingress", protocol: "tcp", port_range_min: port, port_range_max: port } });
    const rulesOne = await timed(rulePorts, CONCURRENCY, async (i) => (await call(base, "POST", "/v2.0/security-group-rules", rule(oneGroup, i + 1))).status);
    const rulesMany = await timed(rulePorts, CONCURRENCY, async (i) => (await call(base, "POST", "/v2.0/security-group-rules", rule(lanes[i % CONCURRENCY]!, Math.floor(i / CONCURRENCY) + 1))).status);
    console.log(`security-group rule create, ${CONCURRENCY} clients, ${rulePorts} rules`);
    console.log(`  into one group        ${f(rulesOne.rate, 0)} rules/s  p50 ${f(rulesOne.p50, 2)} ms  p99 ${f(rulesOne.p99, 2)} ms   (target >= 1000/s)`);
    console.log(`  into ${CONCURRENCY} groups        ${f(rulesMany.rate, 0)} rules/s  p50 ${f(rulesMany.p50, 2)} ms  p99 ${f(rulesMany.p99, 2)} ms`);
    console.log(`  ratio one group/baseline ${f(rulesOne.rate / baseline.rate, 3)}`);

    let have = 200 + SAMPLE;
    const fill = async (upTo: number) => {
      const bulks = Math.ceil((upTo - have) / 100);
      await pool(bulks, 4, async (b) => {
        const ports = Array.from({ length: Math.min(100, upTo - have - b * 100) }, (_, k) => ({ network_id: net.id, name: `f${b}-${k}`, device_owner: "compute:nova" }));
        if (ports.length === 0) return;
        const r = await call(base, "POST", "/v2.0/ports", { ports });
        if (r.status !== 201) throw new Error(`bulk create: ${r.status} ${JSON.stringify(r.body)}`);
      });
      have = upTo;
    };
    await fill(10_000);
    const listAll = await timed(20, 1, async () => (await call(base, "GET", "/v2.0/ports")).status);
    const listFiltered = await timed(50, 1, async (i) => (await call(base, "GET", `/v2.0/ports?device_id=d${i}`)).status);
    const listOwner = await timed(20, 1, async () => (await call(base, "GET", `/v2.0/ports?device_owner=compute:kubernetes&network_id=${net.id}`)).status);
    console.log(`list with 10,000 ports`);
    console.log(`  all ports             p50 ${f(listAll.p50)} ms  p99 ${f(listAll.p99)} ms`);
    console.log(`  ?device_id= (1 hit)   p50 ${f(listFiltered.p50)} ms  p99 ${f(listFiltered.p99)} ms   (an index)`);
    console.log(`  ?device_owner= (half) p50 ${f(listOwner.p50)} ms  p99 ${f(listOwner.p99)} ms   (5,000 hits: the cost is the answer)`);

    if (TOTAL > 10_000) {
      const t0 = performance.now();
      await fill(TOTAL);
      console.log(`filled to ${TOTAL} ports in ${f((performance.now() - t0) / 1000)} s (bulk requests of 100)`);
    }
    const idle = rssMiB(server.pid!);
    await call(base, "GET", `/v2.0/ports?device_id=d1`);
    console.log(`server memory with ${have} ports: RSS ${f(idle.rss, 0)} MiB, peak ${f(idle.hwm, 0)} MiB (target <= 1024 MiB)`);
  } finally {
    await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
