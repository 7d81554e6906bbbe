// The database itself refuses a dangling reference, on both stores: the
// services' own checks are bypassed here (raw SQL in a write), so what is
// tested is the backstop a race meets, and the NeutronError it becomes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { NeutronError } from "../src/core/errors.ts";
import { asNeutronError } from "../src/core/service/violations.ts";
import { REFERENCES, violationOf } from "../src/core/store/references.ts";
import { expectStatus, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

const missing = "00000000-0000-4000-8000-000000000000";

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`references enforced by ${kind}`, () => {
    let store: Store;
    let s: TestServer;
    before(async () => {
      store = await makeStore(kind);
      s = await startServer(store.url);
    });
    after(async () => {
      await s?.close();
      await store?.cleanup();
    });

    const attempt = async (sql: string, params: (string | number)[]) => {
      try {
        await s.db.write((tx) => tx.run(sql, params));
      } catch (err) {
        return err;
      }
      return null;
    };
    const refused = async (sql: string, params: (string | number)[]) => asNeutronError(await attempt(sql, params));

    it("refuses a child whose parent is not there, for every reference", async () => {
      // Real parents for every reference but the one under test, so only that one can refuse the row.
      const a = s.admin;
      const net = expectStatus(await a.post("/v2.0/networks", { network: { name: "p" } }), 201).network;
      const sub = expectStatus(await a.post("/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.9.0.0/24", ip_version: 4 } }), 201).subnet;
      const port = expectStatus(await a.post("/v2.0/ports", { port: { network_id: net.id } }), 201).port;
      const router = expectStatus(await a.post("/v2.0/routers", { router: { name: "r" } }), 201).router;
      const sg = expectStatus(await a.post("/v2.0/security-groups", { security_group: { name: "g" } }), 201).security_group;
      const trunk = expectStatus(await a.post("/v2.0/trunks", { trunk: { port_id: port.id } }), 201).trunk;
      const parents: Record<string, string> = { networks: net.id, subnets: sub.id, ports: port.id, routers: router.id, security_groups: sg.id, trunks: trunk.id };
      const wrong: string[] = [];
      for (const r of REFERENCES) {
        const cols = await columnsOf(s, kind, r.table);
        const values = cols.map((c) => {
          if (c === r.column) return missing;
          const other = REFERENCES.find((o) => o.table === r.table && o.column === c);
          if (other) return parents[other.parent]!;
          return c === "body" ? "{}" : /revision|position|segmentation_id|ip_version|shared|external|hard_limit/.test(c) ? 7 : `x-${c}-${r.name}`;
        });
        const err = await attempt(`INSERT INTO ${r.table} (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`, values);
        const v = violationOf(err);
        const mapped = asNeutronError(err);
        if (v?.constraint !== r.name || v.side !== "child" || !(mapped instanceof NeutronError) || mapped.status !== 404) {
          wrong.push(`${r.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      assert.deepEqual(wrong, []);
    });

    it("refuses to delete a parent still named, and says it is in use", async () => {
      const net = expectStatus(await s.admin.post("/v2.0/networks", { network: { name: "n" } }), 201).network;
      expectStatus(await s.admin.post("/v2.0/ports", { port: { network_id: net.id } }), 201);
      const err = await refused("DELETE FROM networks WHERE id = ?", [net.id]);
      assert.ok(err instanceof NeutronError, String(err));
      assert.equal(err.status, 409);
      assert.equal(err.type, "NetworkInUse");
      const sg = expectStatus(await s.admin.post("/v2.0/security-groups", { security_group: { name: "g" } }), 201).security_group;
      const other = expectStatus(await s.admin.post("/v2.0/security-groups", { security_group: { name: "h" } }), 201).security_group;
      expectStatus(await s.admin.post("/v2.0/security-group-rules", { security_group_rule: { security_group_id: other.id, direction: "ingress", remote_group_id: sg.id } }), 201);
      const e2 = await refused("DELETE FROM security_groups WHERE id = ?", [sg.id]);
      assert.ok(e2 instanceof NeutronError && e2.type === "SecurityGroupInUse", String(e2));
      // Through the API the same delete cascades the rule that names it, as Neutron does.
      expectStatus(await s.admin.del(`/v2.0/security-groups/${sg.id}`), 204);
      const rules = expectStatus(await s.admin.get(`/v2.0/security-group-rules?security_group_id=${other.id}`), 200).security_group_rules;
      assert.equal(rules.filter((r: { remote_group_id: string | null }) => r.remote_group_id === sg.id).length, 0);
    });
  });
}

async function columnsOf(s: TestServer, kind: "sqlite" | "postgres", table: string): Promise<string[]> {
  if (kind === "sqlite") {
    const rows = await s.db.read((q) => q.all<{ name: string }>(`PRAGMA table_info(${table})`));
    return rows.map((r) => r.name);
  }
  const rows = await s.db.read((q) => q.all<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]));
  return rows.map((r) => r.column_name);
}
