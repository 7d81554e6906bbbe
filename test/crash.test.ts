// The server SIGKILLed in the middle of a port-creation load restarts on the
// same SQLite file with no port lacking an address, no address held by no
// port, and free ranges that agree with the allocations.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import Database from "better-sqlite3";
import { keyToValue, parseAddress } from "../src/net/address.ts";
import { freePort } from "./support/postgres.ts";
import { call, pool, spawnServer, stopProcess } from "./support/http.ts";
import type { ChildProcess } from "node:child_process";

const dir = mkdtempSync(join(tmpdir(), "seam-crash-"));
const dbPath = join(dir, "seam.db");
let child: ChildProcess | undefined;
after(async () => {
  if (child) await stopProcess(child, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function checkInvariants(subnetId: string, pool: { start: string; end: string }, gateway: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    const orphanPorts = db.prepare("SELECT COUNT(*) AS n FROM ports p WHERE NOT EXISTS (SELECT 1 FROM ip_allocations a WHERE a.port_id = p.id)").get() as { n: number };
    const orphanIps = db.prepare("SELECT COUNT(*) AS n FROM ip_allocations a WHERE NOT EXISTS (SELECT 1 FROM ports p WHERE p.id = a.port_id)").get() as { n: number };
    assert.equal(orphanPorts.n, 0, "every port holds its address");
    assert.equal(orphanIps.n, 0, "every address is held by a port");
    const held = (db.prepare("SELECT ip_key FROM ip_allocations WHERE subnet_id = ?").all(subnetId) as { ip_key: string }[]).map((r) => keyToValue(r.ip_key));
    const ranges = db.prepare("SELECT first_key, last_key FROM ip_free_ranges WHERE subnet_id = ? ORDER BY first_key").all(subnetId) as { first_key: string; last_key: string }[];
    let free = 0n;
    for (const r of ranges) {
      const f = keyToValue(r.first_key);
      const l = keyToValue(r.last_key);
      free += l - f + 1n;
      assert.ok(!held.some((h) => h >= f && h <= l), "no held address is also free");
    }
    // The default pool excludes the gateway, so free and held addresses together are exactly the pool.
    const size = parseAddress(pool.end)!.value - parseAddress(pool.start)!.value + 1n;
    assert.ok(!held.includes(parseAddress(gateway)!.value), "the gateway is never allocated");
    assert.equal(free + BigInt(held.length), size, "free + held = pool");
    return held.length;
  } finally {
    db.close();
  }
}

it("survives SIGKILL during 32-client port creation with IPAM consistent", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  child = await spawnServer(["--db", `sqlite:${dbPath}`], port);
  const net = (await call(base, "POST", "/v2.0/networks", { network: { name: "crash" } })).body.network;
  const sub = (await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.9.0.0/21", ip_version: 4 } })).body.subnet;
  let ok = 0;
  let failed = 0;
  let killed = false;
  await pool(3000, 32, async (i) => {
    try {
      const r = await call(base, "POST", "/v2.0/ports", { port: { network_id: net.id, name: `c${i}`, device_owner: i % 2 ? "compute:kubernetes" : "compute:nova" } });
      assert.notEqual(r.status, 500);
      if (r.status === 201) ok++;
      if (ok >= 700 && !killed) {
        killed = true;
        child!.kill("SIGKILL");
      }
    } catch {
      failed++; // connection refused/reset after the kill
    }
  });
  assert.ok(killed && failed > 0, "the load was cut by the kill");
  if (child!.exitCode === null && child!.signalCode === null) await new Promise((r) => child!.once("exit", r));
  const held = checkInvariants(sub.id, sub.allocation_pools[0], sub.gateway_ip);
  assert.ok(held >= ok, `committed ports survive (${held} >= ${ok} acknowledged)`);

  child = await spawnServer(["--db", `sqlite:${dbPath}`], port);
  const listed = (await call(base, "GET", `/v2.0/ports?network_id=${net.id}`)).body.ports;
  assert.equal(listed.length, held);
  assert.ok(listed.every((p: { fixed_ips: unknown[] }) => p.fixed_ips.length === 1));
  const more = await pool(100, 16, () => call(base, "POST", "/v2.0/ports", { port: { network_id: net.id } }));
  assert.ok(more.every((r) => r.status === 201));
  const all = (await call(base, "GET", `/v2.0/ports?network_id=${net.id}&fields=fixed_ips`)).body.ports.map((p: { fixed_ips: { ip_address: string }[] }) => p.fixed_ips[0]!.ip_address);
  assert.equal(new Set(all).size, all.length, "no address handed out twice after the restart");
  await stopProcess(child);
  checkInvariants(sub.id, sub.allocation_pools[0], sub.gateway_ip);
});
