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
import type { Json } from "./support/api.ts";
import { freePort, startPostgres } from "./support/postgres.ts";
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

// Mixed writes (networks, subnets, ports, groups, rules, routers and their
// interfaces, deletes and updates) cut by SIGKILL, on both stores: after a
// restart every acknowledged write is there, every acknowledged delete is
// gone, and no object names one that is not.
for (const kind of ["sqlite", "postgres"] as const) {
  it(`survives SIGKILL during mixed writes on ${kind}: every acknowledged write kept, nothing dangling`, async () => {
    const pg = kind === "postgres" ? await startPostgres() : null;
    const url = pg ? pg.url : `sqlite:${join(dir, "mixed.db")}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    try {
      child = await spawnServer(["--db", url], port);
      const live = new Map<string, Set<string>>([["networks", new Set()], ["subnets", new Set()], ["ports", new Set()], ["security-groups", new Set()], ["security-group-rules", new Set()], ["routers", new Set()]]);
      const gone = new Set<string>();
      const ruleGroup = new Map<string, string>();
      // a delete in flight when the kill came may or may not have committed: what it names may be gone
      const doomed = new Set<string>();
      const pick = (k: string, i: number) => [...live.get(k)!][i % Math.max(1, live.get(k)!.size)];
      const made = (k: string, r: { status: number; body: Json }, key: string) => {
        if (r.status === 201) live.get(k)!.add(r.body[key].id);
        return r;
      };
      let acked = 0;
      let killed = false;
      let cut = 0;
      const op = async (i: number) => {
        switch (i % 10) {
          case 0: {
            const n = made("networks", await call(base, "POST", "/v2.0/networks", { network: { name: `m${i}` } }), "network");
            if (n.status !== 201) return n;
            return made("subnets", await call(base, "POST", "/v2.0/subnets", { subnet: { network_id: n.body.network.id, cidr: `10.${i % 250}.${(i / 250) | 0}.0/24`, ip_version: 4 } }), "subnet");
          }
          case 1:
            return made("security-groups", await call(base, "POST", "/v2.0/security-groups", { security_group: { name: `g${i}` } }), "security_group");
          case 2: {
            const g = pick("security-groups", i);
            if (!g) return { status: 0, body: null };
            const r = made("security-group-rules", await call(base, "POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: g, direction: "ingress", protocol: "tcp", port_range_min: i, port_range_max: i } }), "security_group_rule");
            if (r.status === 201) ruleGroup.set(r.body.security_group_rule.id, g);
            return r;
          }
          case 3:
          case 4:
          case 5: {
            const n = pick("networks", i);
            if (!n) return { status: 0, body: null };
            const g = i % 3 === 0 ? pick("security-groups", i) : undefined;
            return made("ports", await call(base, "POST", "/v2.0/ports", { port: { network_id: n, ...(g ? { security_groups: [g] } : {}) } }), "port");
          }
          case 6: {
            const p = pick("ports", i);
            if (!p) return { status: 0, body: null };
            doomed.add(p);
            const r = await call(base, "DELETE", `/v2.0/ports/${p}`);
            if (r.status === 204) {
              live.get("ports")!.delete(p);
              gone.add(p);
            }
            return r;
          }
          case 7: {
            const p = pick("ports", i);
            return p ? call(base, "PUT", `/v2.0/ports/${p}`, { port: { name: `renamed${i}` } }) : { status: 0, body: null };
          }
          case 8: {
            const g = pick("security-groups", i + 3);
            if (!g) return { status: 0, body: null };
            doomed.add(g);
            for (const [rule, group] of ruleGroup) if (group === g) doomed.add(rule);
            const r = await call(base, "DELETE", `/v2.0/security-groups/${g}`);
            if (r.status === 204) {
              live.get("security-groups")!.delete(g);
              gone.add(g);
              // its rules went with it
              for (const [rule, group] of ruleGroup) if (group === g) live.get("security-group-rules")!.delete(rule);
            }
            return r;
          }
          default: {
            const r = made("routers", await call(base, "POST", "/v2.0/routers", { router: { name: `r${i}` } }), "router");
            const s = pick("subnets", i);
            if (r.status !== 201 || !s) return r;
            return call(base, "PUT", `/v2.0/routers/${r.body.router.id}/add_router_interface`, { subnet_id: s });
          }
        }
      };
      await pool(1500, 16, async (i) => {
        try {
          const r = await op(i);
          assert.ok(r.status < 500, `op ${i % 10}: ${r.status} ${JSON.stringify(r.body)}`);
          if (r.status >= 200 && r.status < 300) acked++;
          if (acked >= 500 && !killed) {
            killed = true;
            child!.kill("SIGKILL");
          }
        } catch (err) {
          if (!killed) throw err;
          cut++; // refused or reset after the kill
        }
      });
      assert.ok(killed && cut > 0, "the load was cut by the kill");
      if (child!.exitCode === null && child!.signalCode === null) await new Promise((r) => child!.once("exit", r));

      child = await spawnServer(["--db", url], port);
      const listed = new Map<string, Json[]>();
      for (const k of live.keys()) listed.set(k, (await call(base, "GET", `/v2.0/${k}`)).body[k.replace(/-/g, "_")]);
      const ids = (k: string) => new Set(listed.get(k)!.map((x: { id: string }) => x.id));
      const lost: string[] = [];
      for (const [k, want] of live) {
        const have = ids(k);
        // (a rule goes with its group, even one whose create was answered after the group's delete)
        for (const id of want) if (!have.has(id) && !doomed.has(id) && !doomed.has(ruleGroup.get(id) ?? "")) lost.push(`${k}/${id}`);
      }
      assert.deepEqual(lost, [], "every acknowledged create is there after the restart");
      const resurrected = [...gone].filter((id) => ids("ports").has(id) || ids("security-groups").has(id));
      assert.deepEqual(resurrected, [], "no acknowledged delete undone");
      const nets = ids("networks");
      const groups = ids("security-groups");
      const routers = ids("routers");
      const ports = listed.get("ports")!;
      assert.deepEqual(ports.filter((p: Json) => !nets.has(p.network_id)).map((p: Json) => p.id), [], "no port on a missing network");
      assert.deepEqual(ports.filter((p: Json) => p.security_groups.some((g: string) => !groups.has(g))).map((p: Json) => p.id), [], "no port in a missing group");
      assert.deepEqual(listed.get("subnets")!.filter((s: Json) => !nets.has(s.network_id)).map((s: Json) => s.id), [], "no subnet on a missing network");
      assert.deepEqual(listed.get("security-group-rules")!.filter((r: Json) => !groups.has(r.security_group_id) || (r.remote_group_id && !groups.has(r.remote_group_id))).map((r: Json) => r.id), [], "no rule of a missing group");
      assert.deepEqual(ports.filter((p: Json) => p.device_owner === "network:router_interface" && !routers.has(p.device_id)).map((p: Json) => p.id), [], "no interface of a missing router");
      assert.ok(acked >= 500, `${acked} writes acknowledged before the kill`);
    } finally {
      if (child) await stopProcess(child, "SIGKILL");
      child = undefined;
      await pg?.stop();
    }
  });
}
