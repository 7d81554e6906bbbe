// Port create with 16 clients on both stores in one run (issue 14: PostgreSQL
// >= 500 ports/s, SQLite's figure unchanged), each against a baseline taken on
// the same server by the same client (GET /, no store), and a mixed write load
// (networks, subnets, groups and rules beside the ports) on each.
//
//   node --import tsx bench/store-bench.ts [--ports 2000] [--concurrency 16]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPostgres } from "../test/support/postgres.ts";
import { Agent, request } from "node:http";
import { spawnServer, stopProcess } from "../test/support/http.ts";
import { arg, timed } from "./support.ts";

const PORTS = arg("ports", 2000);
const CONCURRENCY = arg("concurrency", 16);


const f = (x: number, d = 1) => x.toFixed(d);

// node:http with keep-alive rather than fetch: the client shares the server's two cores,
// and fetch spends about twice the CPU per request.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const url = new URL(base + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, agent, headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}
const get = async (base: string) => (await call(base, "GET", "/")).status;

async function measure(store: string, url: string) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await spawnServer(["--db", url], port);
  try {
    const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "bench" } })).body.network;
    await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.128.0.0/16", ip_version: 4 } });
    await timed(300, CONCURRENCY, () => get(base));
    await timed(200, CONCURRENCY, async (i) => (await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `w${i}` } })).status);
    const baseline = await timed(3000, CONCURRENCY, () => get(base));
    const create = await timed(PORTS, CONCURRENCY, async (i) =>
      (await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `p${i}`, device_owner: i % 2 ? "compute:kubernetes" : "compute:nova", device_id: `d${i}` } })).status,
      300,
    );
    // Mixed: each op is one of five writes, on its own objects, as a busy cloud's API sees.
    const groups: string[] = [];
    const mixed = await timed(1000, CONCURRENCY, async (i) => {
      switch (i % 5) {
        case 0:
          return (await call(base, "POST", "/v2.0/networks", { network: { name: `m${i}` } })).status;
        case 1: {
          const r = await call(base, "POST", "/v2.0/security-groups", { security_group: { name: `g${i}` } });
          groups.push(r.body.security_group.id);
          return r.status;
        }
        case 2:
          return groups.length
            ? (await call(base, "POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: groups[groups.length - 1], direction: "ingress", protocol: "tcp", port_range_min: 1000 + i, port_range_max: 1000 + i } })).status
            : 201;
        default:
          return (await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `x${i}` } })).status;
      }
    }, 300);
    console.log(`${store}: port create, ${CONCURRENCY} clients, ${PORTS} ports in one network`);
    console.log(`  baseline GET /        ${f(baseline.rate, 0)} req/s  p50 ${f(baseline.p50, 2)} ms  p99 ${f(baseline.p99, 2)} ms`);
    console.log(`  POST /v2.0/ports      ${f(create.rate, 0)} ports/s  p50 ${f(create.p50, 2)} ms  p99 ${f(create.p99, 2)} ms`);
    console.log(`  ratio create/baseline ${f(create.rate / baseline.rate, 3)}`);
    console.log(`  mixed writes          ${f(mixed.rate, 0)} writes/s  p50 ${f(mixed.p50, 2)} ms  p99 ${f(mixed.p99, 2)} ms`);
    return create.rate;
  } finally {
    await stopProcess(server);
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "seam-store-bench-"));
  const pg = await startPostgres();
  try {
    const sqlite = await measure("SQLite", `sqlite:${join(dir, "seam.db")}`);
    const postgres = await measure("PostgreSQL", pg.url);
    console.log(`PostgreSQL ${f(postgres, 0)} ports/s (target >= 500), SQLite ${f(sqlite, 0)} ports/s; PostgreSQL/SQLite ${f(postgres / sqlite, 2)}`);
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
