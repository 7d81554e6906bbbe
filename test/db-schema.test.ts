// `seam db status|upgrade` and the server's refusal of a newer store, run as
// the real CLI on a real SQLite file and a real PostgreSQL server: a store
// holding the first migrations only is shown so and upgraded to the rest with
// its data kept; status changes nothing; a store a newer Seam upgraded is
// refused by upgrade and by the server, and left as it was.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import pg from "pg";
import { migrations, statements } from "../src/core/store/schema.ts";
import { schemaStatus, SchemaTooNew, migrationsToApply } from "../src/core/store/schema-version.ts";
import { freePort } from "../src/os/ports.ts";
import { ROOT } from "./support/http.ts";
import { type PgServer, startPostgres } from "./support/postgres.ts";

const run = promisify(execFile);
const SEAM = join(ROOT, "bin", "seam");
const latest = migrations.at(-1)!.version;

async function seam(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(SEAM, args, { timeout: 60_000, env: { ...process.env, SEAM_DB: "" } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** A store's raw SQL, to set up what an older or newer Seam would have left. */
interface Raw {
  exec(sql: string, params?: unknown[]): Promise<void>;
  one<T>(sql: string): Promise<T>;
  close(): Promise<void>;
}

function rawSqlite(path: string): Raw {
  const db = new Database(path);
  return {
    async exec(sql, params = []) {
      if (params.length) db.prepare(sql).run(...params);
      else db.exec(sql);
    },
    async one<T>(sql: string) {
      return db.prepare(sql).get() as T;
    },
    async close() {
      db.close();
    },
  };
}

async function rawPostgres(url: string): Promise<Raw> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    async exec(sql, params = []) {
      let i = 0;
      await c.query(sql.replace(/\?/g, () => `$${++i}`), params);
    },
    async one<T>(sql: string) {
      return (await c.query(sql)).rows[0] as T;
    },
    async close() {
      await c.end();
    },
  };
}

/** What an older Seam that knew migrations 1..UPTO would have left. */
async function olderStore(raw: Raw, dialect: "sqlite" | "postgres", upTo: number): Promise<void> {
  await raw.exec("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  for (const m of migrations.filter((x) => x.version <= upTo)) {
    for (const s of statements(m, dialect)) await raw.exec(s);
    await raw.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [m.version, m.name, "2026-01-01T00:00:00Z"]);
  }
}

describe("schema status (pure)", () => {
  it("names what is pending in order and what a newer Seam applied", () => {
    const known = migrations.slice(0, 4);
    const s = schemaStatus([{ version: 2, name: "b", appliedAt: "t" }, { version: 1, name: "a", appliedAt: "t" }], known);
    assert.deepEqual(s.pending.map((m) => m.version), [3, 4]);
    assert.equal(s.current, 2);
    assert.equal(s.latest, 4);
    assert.deepEqual(migrationsToApply(s).map((m) => m.version), [3, 4]);
    const newer = schemaStatus([...known.map((m) => ({ version: m.version, name: m.name, appliedAt: "t" })), { version: 9, name: "later", appliedAt: "t" }], known);
    assert.deepEqual(newer.unknown.map((u) => u.version), [9]);
    assert.throws(() => migrationsToApply(newer), (e: Error) => e instanceof SchemaTooNew && /migration 9 "later", newer than this Seam knows \(its latest is 4\)/.test(e.message));
  });
});

for (const dialect of ["sqlite", "postgres"] as const) {
  describe(`seam db on ${dialect}`, () => {
    let dir = "";
    let pgServer: PgServer | null = null;
    let url = "";
    let raw: Raw;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "seam-db-"));
      if (dialect === "postgres") {
        pgServer = await startPostgres();
        url = pgServer.url;
        raw = await rawPostgres(url);
      } else {
        url = `sqlite:${join(dir, "seam.db")}`;
        raw = rawSqlite(join(dir, "seam.db"));
      }
    });
    after(async () => {
      await raw?.close();
      await pgServer?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    if (dialect === "sqlite") {
      it("status of a file that is not there says so and creates nothing", async () => {
        const path = join(dir, "absent", "seam.db");
        const r = await seam("db", "status", "--db", `sqlite:${path}`);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /no database yet/);
        assert.match(r.stdout, new RegExp(`schema: 0 of ${latest}, ${latest} pending`));
        assert.equal(existsSync(path), false);
      });
    }

    it("shows an older store's pending migrations without applying them, then upgrade applies exactly those and keeps the data", async () => {
      await olderStore(raw, dialect, 3);
      await raw.exec("UPDATE meta SET value = '42' WHERE key = 'revision'");
      const status = await seam("db", "status", "--db", url, "-o", "json");
      assert.equal(status.code, 1, status.stderr);
      const s = JSON.parse(status.stdout);
      assert.equal(s.current, 3);
      assert.equal(s.up_to_date, false);
      assert.deepEqual(s.pending.map((m: { version: number }) => m.version), migrations.filter((m) => m.version > 3).map((m) => m.version));
      assert.equal(Number((await raw.one<{ n: number }>("SELECT count(*) AS n FROM schema_migrations")).n), 3, "status applied nothing");

      const up = await seam("db", "upgrade", "--db", url);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, new RegExp(`applying ${latest - 3} migration\\(s\\), 3 -> ${latest}`));
      for (const m of migrations) assert.equal(up.stderr.includes(`  ${m.version}  ${m.name}  (`), m.version > 3, `migration ${m.version} reported iff applied`);
      assert.equal((await raw.one<{ value: string }>("SELECT value FROM meta WHERE key = 'revision'")).value, "42", "the change log's revision is kept");

      const again = await seam("db", "status", "--db", url);
      assert.equal(again.code, 0);
      assert.match(again.stdout, new RegExp(`schema: ${latest} of ${latest}, up to date`));
      const noop = await seam("db", "upgrade", "--db", url);
      assert.equal(noop.code, 0);
      assert.match(noop.stderr, /nothing to do/);
    });

    it("refuses a store a newer Seam upgraded, in upgrade and in the server, and leaves it as it was", async () => {
      await raw.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [latest + 1, "from a newer seam", "2027-01-01T00:00:00Z"]);
      const status = await seam("db", "status", "--db", url);
      assert.equal(status.code, 1);
      assert.match(status.stdout, new RegExp(`newer than this Seam \\(holds ${latest + 1}; this Seam knows up to ${latest}\\)`));
      assert.match(status.stdout, /from a newer seam {2}\(unknown to this Seam\)/);
      const up = await seam("db", "upgrade", "--db", url);
      assert.equal(up.code, 2);
      assert.match(up.stderr, new RegExp(`^seam: the database holds schema migration ${latest + 1} "from a newer seam", newer than this Seam knows`));
      const server = await seam("server", "--db", url, "--listen", `127.0.0.1:${await freePort()}`);
      assert.equal(server.code, 2, "the server does not start");
      assert.match(server.stderr, /newer than this Seam knows/);
      assert.doesNotMatch(server.stderr, /\n\s+at /, "no stack trace");
      assert.equal(Number((await raw.one<{ n: number }>("SELECT count(*) AS n FROM schema_migrations")).n), latest + 1);
    });
  });
}
