// RBAC benchmark: what sharing costs a member's reads and writes. One project
// owns --networks networks; --shared of them are shared with a member project
// by an entry each, a tenth as many with everyone. Through real HTTP, with a
// baseline (GET / of the same server) in the same run; prints, never asserts.
//
//   node --import tsx bench/rbac-bench.ts [--networks 10000] [--shared 1000] [--samples 200] [--ports 2000] [--postgres 1]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Json } from "../test/support/api.ts";
import { call, pool, spawnServer, stopProcess } from "../test/support/http.ts";
import { freePort, startPostgres } from "../test/support/postgres.ts";
import { arg, pct, timed } from "./support.ts";

const NETWORKS = arg("networks", 10_000);
const SHARED = arg("shared", 1_000);
const SAMPLES = arg("samples", 200);
const PORTS = arg("ports", 2_000);
const POSTGRES = arg("postgres", 0) === 1;
const f = (x: number, d = 2) => x.toFixed(d);

const OWNER = { "x-project-id": "proj-owner", "x-roles": "member" };
const MEMBER = { "x-project-id": "proj-member", "x-roles": "member" };
const ADMIN = { "x-project-id": "admin", "x-roles": "admin" };

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "seam-rbac-bench-"));
  const pg = POSTGRES ? await startPostgres() : null;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await spawnServer(["--db", pg ? pg.url : `sqlite:${join(dir, "seam.db")}`], port);
  const must = async (method: string, path: string, body: unknown, headers: Record<string, string>, status: number): Promise<Json> => {
    const r = await call(base, method, path, body, headers);
    if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  };
  const sample = async (n: number, path: (i: number) => string, headers: Record<string, string>, ok: (b: Json) => boolean) => {
    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await call(base, "GET", path(i), undefined, headers);
      lat.push(performance.now() - t0);
      if (r.status !== 200 || !ok(r.body)) throw new Error(`GET ${path(i)}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    return { p50: pct(lat, 50), p99: pct(lat, 99) };
  };
  try {
    const nets: string[] = (
      await pool(Math.ceil(NETWORKS / 100), 4, async (b) =>
        (await must("POST", "/v2.0/networks", { networks: Array.from({ length: Math.min(100, NETWORKS - b * 100) }, (_, k) => ({ name: `n${b * 100 + k}` })) }, OWNER, 201)).networks.map((n: Json) => n.id as string),
      )
    ).flat();
    await must("PUT", "/v2.0/quotas/proj-owner", { quota: { rbac_policy: -1 } }, ADMIN, 200);
    const shared = nets.slice(0, SHARED);
    await pool(shared.length, 4, (i) => must("POST", "/v2.0/rbac-policies", { rbac_policy: { object_type: "network", object_id: shared[i], action: "access_as_shared", target_tenant: "proj-member" } }, OWNER, 201));
    const everyone = nets.slice(SHARED, SHARED + Math.round(SHARED / 10));
    await pool(everyone.length, 4, (i) => must("PUT", `/v2.0/networks/${everyone[i]}`, { network: { shared: true } }, ADMIN, 200));
    const visible = shared.length + everyone.length;
    const target = shared[0]!;
    await must("POST", "/v2.0/subnets", { subnet: { network_id: target, cidr: "10.64.0.0/16", ip_version: 4 } }, OWNER, 201);

    await sample(300, () => "/", MEMBER, () => true);
    const baseline = await sample(SAMPLES, () => "/", MEMBER, () => true);
    const page = await sample(SAMPLES, () => "/v2.0/networks?limit=100", MEMBER, (b) => b.networks.length === 100);
    const sharedPage = await sample(SAMPLES, () => "/v2.0/networks?limit=100&shared=true", MEMBER, (b) => b.networks.length === 100 && b.networks.every((n: Json) => n.shared));
    const show = await sample(SAMPLES, (i) => `/v2.0/networks/${shared[(i * 7919) % shared.length]}`, MEMBER, (b) => b.network.shared === true);
    const all = await sample(Math.min(SAMPLES, 20), () => "/v2.0/networks", MEMBER, (b) => b.networks.length === visible);
    const ownerPage = await sample(SAMPLES, () => "/v2.0/networks?limit=100", OWNER, (b) => b.networks.length === 100);

    const create = (headers: Record<string, string>) => (i: number) => call(base, "POST", "/v2.0/ports", { port: { network_id: target, name: `p${i}` } }, headers).then((r) => (r.status === 201 ? 201 : 500));
    const byOwner = await timed(PORTS, 16, create(OWNER));
    const byMember = await timed(PORTS, 16, create(MEMBER));

    console.log(`rbac: ${NETWORKS} networks, ${shared.length} shared with the member by an entry each, ${everyone.length} with everyone; ${POSTGRES ? "PostgreSQL" : "embedded store (SQLite)"}`);
    console.log("reads, one client, p50 / p99 ms");
    console.log(`  baseline GET /                           ${f(baseline.p50)} / ${f(baseline.p99)}`);
    console.log(`  member ?limit=100                        ${f(page.p50)} / ${f(page.p99)}   ratio p99/baseline ${f(page.p99 / baseline.p99, 1)}`);
    console.log(`  member ?limit=100&shared=true            ${f(sharedPage.p50)} / ${f(sharedPage.p99)}   ratio ${f(sharedPage.p99 / baseline.p99, 1)}`);
    console.log(`  member show a shared network             ${f(show.p50)} / ${f(show.p99)}   ratio ${f(show.p99 / baseline.p99, 1)}`);
    console.log(`  member all ${visible} it sees${" ".repeat(Math.max(0, 22 - String(visible).length))}${f(all.p50)} / ${f(all.p99)}`);
    console.log(`  owner ?limit=100 (of ${NETWORKS})${" ".repeat(Math.max(0, 19 - String(NETWORKS).length))}${f(ownerPage.p50)} / ${f(ownerPage.p99)}`);
    console.log(`port create on the shared network, 16 clients, ${PORTS} ports`);
    console.log(`  by its owner                             ${f(byOwner.rate, 0)}/s, p50 ${f(byOwner.p50)} p99 ${f(byOwner.p99)} ms`);
    console.log(`  by the member it is shared with          ${f(byMember.rate, 0)}/s, p50 ${f(byMember.p50)} p99 ${f(byMember.p99)} ms   ratio ${f(byMember.rate / byOwner.rate)}`);
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
