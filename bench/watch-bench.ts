// What open watch streams cost (issue 14, item 5): an ordinary GET's latency
// with N watches of the change log open while ports are written, against the
// same server with none open, measured in one run; and the server's memory,
// as RSS and as live heap (after a forced GC, so garbage V8 has not yet
// collected does not count), before, while open, and once they have closed.
// The server runs in this process (to force that GC); the watchers in another.
//
//   node --expose-gc --import tsx bench/watch-bench.ts [--watches 900] [--writes 400] [--postgres 1]
import { fork } from "node:child_process";
import { request, Agent, type ClientRequest } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "../src/core/store/open.ts";
import { buildServer } from "../src/server.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { call, pool } from "../test/support/http.ts";
import { arg, pct } from "./support.ts";

const WATCHES = arg("watches", 900);
const WRITES = arg("writes", 400);
const POSTGRES = arg("postgres", 0) === 1;
const ADMIN = { "x-project-id": "admin", "x-roles": "admin" };

const gc = (globalThis as { gc?: () => void }).gc;
/** RSS and live heap in MiB (the heap after a full collection). */
function memory() {
  gc!();
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, live: m.heapUsed / 2 ** 20 };
}
const f = (x: number, d = 1) => x.toFixed(d);

/** GET latencies while `WRITES` ports are created by 4 writers, and how many change events each watch saw. */
async function phase(base: string, netId: string, tag: string) {
  const lat: number[] = [];
  let writing = true;
  const writers = pool(WRITES, 4, async (i) => {
    const r = await call(base, "POST", "/v2.0/ports", { port: { network_id: netId, name: `${tag}${i}` } });
    if (r.status !== 201) throw new Error(`port create: ${r.status}`);
  }).finally(() => (writing = false));
  while (writing) {
    const t = performance.now();
    const r = await call(base, "GET", `/v2.0/networks/${netId}`);
    if (r.status !== 200) throw new Error(`GET: ${r.status}`);
    lat.push(performance.now() - t);
    await new Promise((res) => setTimeout(res, 5));
  }
  await writers;
  return { p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length };
}

/** The watchers run in a process of their own, so their work does not slow the GETs measured here. */
function openWatches(port: number, n: number, since: number) {
  const child = fork(import.meta.filename, ["--watcher-role", String(port), String(n), String(since)], { execArgv: process.execArgv });
  const opened = new Promise<void>((resolve, reject) => {
    child.once("message", (m) => ((m as { opened?: boolean }).opened ? resolve() : reject(new Error(String((m as { error?: string }).error)))));
  });
  const close = () =>
    new Promise<number>((resolve) => {
      child.once("message", (m) => resolve((m as { minEvents: number }).minEvents));
      child.send("close");
    });
  return { opened, close, kill: () => child.kill() };
}

function watcherRole(port: number, n: number, since: number): void {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const reqs: ClientRequest[] = [];
  const events = new Array<number>(n).fill(0);
  const opened = Array.from(
    { length: n },
    (_, i) =>
      new Promise<void>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: `/api/v1/changes?watch=1&since=${since}`, headers: ADMIN, agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`watch: ${res.statusCode}`));
          res.setEncoding("utf8");
          res.on("data", (d: string) => (events[i]! += d.split('"CHANGE"').length - 1));
          res.on("error", () => undefined);
          resolve();
        });
        req.on("error", () => undefined);
        req.end();
        reqs.push(req);
      }),
  );
  Promise.all(opened).then(
    () => process.send!({ opened: true }),
    (err: Error) => process.send!({ error: err.message }),
  );
  process.on("message", () => {
    reqs.forEach((r) => r.destroy());
    process.send!({ minEvents: Math.min(...events) }, () => process.exit(0));
  });
}

async function main() {
  if (!gc) throw new Error("run with node --expose-gc");
  const dir = mkdtempSync(join(tmpdir(), "seam-watch-bench-"));
  const pg = POSTGRES ? await startPostgres() : null;
  const db = await openDb(pg ? pg.url : `sqlite:${join(dir, "seam.db")}`);
  const server = await buildServer({ db, auth: "noauth", logLevel: "fatal" });
  await server.app.listen({ host: "127.0.0.1", port: 0 });
  const port = (server.app.server.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}`;
  try {
    const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "w" } })).body.network;
    await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.64.0.0/16", ip_version: 4, enable_dhcp: false } });
    await phase(base, net.id, "warm"); // JIT and caches, so neither side of the ratio pays for them
    const before = memory();
    const quiet = await phase(base, net.id, "a");
    const since = (await call(base, "GET", "/api/v1/changes?limit=10000&timeout=0", undefined, ADMIN)).body.revision as number;
    const w = openWatches(port, WATCHES, since);
    await w.opened;
    const open = memory();
    const busy = await phase(base, net.id, "b");
    await new Promise((r) => setTimeout(r, 500));
    const during = memory();
    const delivered = await w.close();
    await new Promise((r) => setTimeout(r, 3000));
    const afterClose = memory();
    console.log(`${WATCHES} watches of the change log, ${WRITES} port creates per phase, ${pg ? "PostgreSQL" : "SQLite"}`);
    console.log(`  GET /v2.0/networks/{id}, no watch   p50 ${f(quiet.p50, 2)} ms  p99 ${f(quiet.p99, 2)} ms  (${quiet.n} samples)`);
    console.log(`  GET /v2.0/networks/{id}, ${WATCHES} open p50 ${f(busy.p50, 2)} ms  p99 ${f(busy.p99, 2)} ms  (${busy.n} samples)`);
    console.log(`  ratio p99 with/without            ${f(busy.p99 / quiet.p99, 2)}`);
    console.log(`  every watch saw at least ${delivered} of ${WRITES} port changes`);
    const row = (what: string, k: "rss" | "live") => `  ${what} before ${f(before[k], 0)} MiB, watches open ${f(open[k], 0)}, after the writes ${f(during[k], 0)}, 3 s after they closed ${f(afterClose[k], 0)} MiB`;
    console.log(row("RSS      ", "rss"));
    console.log(row("live heap", "live"));
    console.log(`  live heap per open watch ${f(((during.live - before.live) * 1024) / WATCHES, 1)} KiB; kept after close: live heap ${f(afterClose.live - before.live, 1)} MiB, RSS ${f(afterClose.rss - before.rss, 0)} MiB`);
  } finally {
    await server.app.close();
    await db.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const role = process.argv.indexOf("--watcher-role");
if (role > 0) watcherRole(...(process.argv.slice(role + 1, role + 4).map(Number) as [number, number, number]));
else main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
