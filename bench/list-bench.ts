// List benchmark: filtered and paged port lists as the ports grow to 100,000,
// through real HTTP, with a baseline (GET / of the same server, same client)
// measured in the same run. Prints figures, never asserts on time.
//
//   node --import tsx bench/list-bench.ts [--ports 100000] [--samples 200] [--postgres 1]
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPostgres } from "../test/support/postgres.ts";
import type { Json } from "../test/support/api.ts";
import { call, pool, spawnServer, stopProcess } from "../test/support/http.ts";
import { arg, pct } from "./support.ts";

const TOTAL = arg("ports", 100_000);
const SAMPLES = arg("samples", 200);
const POSTGRES = arg("postgres", 0) === 1;
/** pages walked at most (0: all), for code whose walk is quadratic */
const WALK_PAGES = arg("walk-pages", 0);
const STEPS = [TOTAL / 4, TOTAL / 2, TOTAL].map(Math.round);

const f = (x: number, d = 2) => x.toFixed(d);

/**
 * GETs `path` `n` times, one at a time, timing each to the last byte of the
 * answer; the JSON is parsed and checked after the clock stops (parsing 100
 * ports is the client's cost, not the server's).
 */
async function sample(base: string, n: number, path: (i: number) => string, ok: (body: Json) => boolean) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(base);
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = path(i);
    const t0 = performance.now();
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) =>
      http
        .get({ host: url.hostname, port: url.port, path: p, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d: Buffer) => chunks.push(d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        })
        .on("error", reject),
    );
    lat.push(performance.now() - t0);
    if (status !== 200 || !ok(JSON.parse(text))) throw new Error(`GET ${p}: ${status} ${text.slice(0, 300)}`);
  }
  agent.destroy();
  return { p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "seam-list-bench-"));
  const pg = POSTGRES ? await startPostgres() : null;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await spawnServer(["--db", pg ? pg.url : `sqlite:${join(dir, "seam.db")}`], port);
  const get = async (path: string) => {
    const r = await call(base, "GET", path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  try {
    const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "bench" } })).body.network;
    await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.128.0.0/14", ip_version: 4 } });
    const extra = (await get("/v2.0/ports")).ports.length; // the subnet's DHCP port
    const ids: string[] = [];
    const addresses: string[] = [];
    const fill = async (upTo: number) => {
      const from = ids.length;
      const made = await pool(Math.ceil((upTo - from) / 100), 4, async (b) => {
        const ports = Array.from({ length: Math.min(100, upTo - from - b * 100) }, (_, k) => ({
          network_id: net.id,
          name: `p${from + b * 100 + k}`,
          device_owner: "compute:nova",
          device_id: `d${from + b * 100 + k}`,
        }));
        const r = await call(base, "POST", "/v2.0/ports", { ports });
        if (r.status !== 201) throw new Error(`bulk create: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body.ports as { id: string; fixed_ips: { ip_address: string }[] }[];
      });
      for (const p of made.flat()) {
        ids.push(p.id);
        addresses.push(p.fixed_ips[0]!.ip_address);
      }
    };
    const pick = (xs: readonly string[], i: number) => xs[(i * 7919) % xs.length]!;
    await sample(base, 300, () => "/", () => true);

    console.log(`port lists, one client, ${POSTGRES ? "PostgreSQL" : "embedded store (SQLite)"}; p50 / p99 in ms to the answer's last byte (target at ${TOTAL}: each <= 5 ms p99)`);
    for (const n of STEPS) {
      await fill(n);
      const baseline = await sample(base, SAMPLES, () => "/", () => true);
      const byIp = await sample(base, SAMPLES, (i) => `/v2.0/ports?fixed_ips=ip_address%3D${pick(addresses, i)}`, (b) => b.ports.length === 1);
      const byDevice = await sample(base, SAMPLES, (i) => `/v2.0/ports?device_id=d${(i * 7919) % n}`, (b) => b.ports.length === 1);
      const firstPage = await sample(base, SAMPLES, () => "/v2.0/ports?limit=100", (b) => b.ports.length === 100);
      const atMarker = await sample(base, SAMPLES, (i) => `/v2.0/ports?limit=100&marker=${pick(ids, i)}`, (b) => b.ports.length <= 100);
      const byName = await sample(base, Math.min(SAMPLES, 50), () => "/v2.0/ports?limit=100&sort_key=name&sort_dir=desc", (b) => b.ports.length === 100);
      // the whole walk, as openstacksdk pages: follow the next link until there is none
      const t0 = performance.now();
      let seen = 0;
      let pages = 0;
      for (let path: string | null = "/v2.0/ports?limit=100"; path && (WALK_PAGES === 0 || pages < WALK_PAGES); pages++) {
        const body = await get(path);
        seen += body.ports.length;
        const next = (body.ports_links as { rel: string; href: string }[] | undefined)?.find((l) => l.rel === "next");
        path = next ? new URL(next.href).pathname + new URL(next.href).search : null;
      }
      const walk = performance.now() - t0;
      if (WALK_PAGES === 0 && seen !== n + extra) throw new Error(`walk saw ${seen} of ${n + extra} ports`);
      console.log(`${n} ports`);
      console.log(`  baseline GET /                 ${f(baseline.p50)} / ${f(baseline.p99)}`);
      console.log(`  ?fixed_ips=ip_address=X        ${f(byIp.p50)} / ${f(byIp.p99)}   ratio p99/baseline ${f(byIp.p99 / baseline.p99, 1)}`);
      console.log(`  ?device_id=X                   ${f(byDevice.p50)} / ${f(byDevice.p99)}   ratio ${f(byDevice.p99 / baseline.p99, 1)}`);
      console.log(`  ?limit=100 (first page)        ${f(firstPage.p50)} / ${f(firstPage.p99)}   ratio ${f(firstPage.p99 / baseline.p99, 1)}`);
      console.log(`  ?limit=100&marker=X            ${f(atMarker.p50)} / ${f(atMarker.p99)}   ratio ${f(atMarker.p99 / baseline.p99, 1)}`);
      console.log(`  ?limit=100&sort_key=name       ${f(byName.p50)} / ${f(byName.p99)}   (index ports_name)`);
      console.log(`  walk ${WALK_PAGES ? `first ${pages}` : "all"} pages of 100${" ".repeat(WALK_PAGES ? 6 : 10)}${f(walk / 1000)} s, ${f((walk * 1000) / seen)} us per port`);
    }
  } finally {
    await stopProcess(server);
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
