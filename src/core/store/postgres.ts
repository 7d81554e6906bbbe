// PostgreSQL store, for several controllers over one database (HA) or a model
// larger than one machine. READ COMMITTED plus advisory locks on the scopes a
// transaction touches (a network's IPAM, the change log) keeps the same
// invariants as SQLite's single writer without serialising unrelated writes.
// Commits wake waiters in every controller through LISTEN/NOTIFY.
import pg from "pg";
import { type ChangeRecord, CommitHooks, type Db, lockKey, type Param, type Queryable, RevisionSignal, type Tx } from "./db.ts";
import { type Migration, statements } from "./schema.ts";
import { type AppliedMigration, type MigrationProgress, migrationsToApply, schemaStatus } from "./schema-version.ts";

pg.types.setTypeParser(20, (v) => Number(v)); // BIGINT -> number (revisions, VNIs fit in 2^53)

/**
 * The statement for a query: `?` renumbered to `$n`, and a name, so that each
 * connection parses and plans it once (a port create is ~25 statements; on
 * two cores PostgreSQL's parsing them every time was a fifth of its work).
 * Statements whose text varies without bound (IN lists of any length) are
 * left unnamed, so a connection's cache holds a bounded set.
 */
const prepared = new Map<string, { name?: string; text: string }>();
function statement(sql: string): { name?: string; text: string } {
  let s = prepared.get(sql);
  if (!s) {
    let i = 0;
    const text = sql.replace(/\?/g, () => `$${++i}`);
    const bounded = !(i > 12 && / IN \(/.test(sql)) && prepared.size < 5000;
    s = bounded ? { name: `s${prepared.size}`, text } : { text };
    if (bounded) prepared.set(sql, s);
  }
  return s;
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  const query = (sql: string, params: readonly Param[]) => client.query({ ...statement(sql), values: params as unknown[] });
  return {
    async all<T>(sql: string, params: readonly Param[] = []) {
      return (await query(sql, params)).rows as T[];
    },
    async get<T>(sql: string, params: readonly Param[] = []) {
      return (await query(sql, params)).rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly Param[] = []) {
      return (await query(sql, params)).rowCount ?? 0;
    },
  };
}

const RETRYABLE = new Set(["40001", "40P01"]); // serialization failure, deadlock

/**
 * The change log's tail in one statement: the revision counter's row is
 * updated first, and its row lock, held to commit, hands revisions out in
 * commit order (a second writer waits for the first to commit, then reads its
 * counter); the entries and the NOTIFY go with it. One round trip where there
 * were five, in the one stretch every write in the cloud queues for.
 */
async function appendChangesOnce(client: pg.PoolClient, changes: readonly ChangeRecord[]): Promise<number> {
  const r = await client.query<{ last: number }>({
    name: "append-changes",
    text: `WITH r AS (UPDATE meta SET value = (value::bigint + $1)::text WHERE key = 'revision' RETURNING value::bigint AS last),
      c AS (INSERT INTO changes (revision, kind, resource_id, op, project_id, object, at)
        SELECT r.last - $1 + x.n, x.kind, x.id, x.op, x.project, x.object, $7
        FROM r, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS x(kind, id, op, project, object, n))
      SELECT last, pg_notify('seam_changes', last::text) FROM r`,
    values: [
      changes.length,
      changes.map((c) => c.kind),
      changes.map((c) => c.id),
      changes.map((c) => c.op),
      changes.map((c) => c.projectId),
      changes.map((c) => (c.object === null ? null : JSON.stringify(c.object))),
      new Date().toISOString(),
    ],
  });
  return Number(r.rows[0]!.last);
}

export class PostgresDb implements Db {
  readonly dialect = "postgres" as const;
  private readonly signal = new RevisionSignal();
  private listener: pg.Client | null = null;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string, opts: { readonly onMigration?: MigrationProgress } = {}): Promise<PostgresDb> {
    const pool = new pg.Pool({ connectionString: url, max: 16 });
    pool.on("error", () => undefined); // an idle client's broken socket; the next checkout reconnects
    const db = new PostgresDb(pool);
    try {
      await db.migrate(opts.onMigration);
    } catch (err) {
      await pool.end();
      throw err;
    }
    db.signal.bump(await db.readRevision());
    const listener = new pg.Client({ connectionString: url });
    listener.on("error", () => undefined);
    await listener.connect();
    await listener.query("LISTEN seam_changes");
    listener.on("notification", (n) => db.signal.bump(Number(n.payload)));
    db.listener = listener;
    return db;
  }

  private async readRevision(): Promise<number> {
    const r = await this.pool.query("SELECT value FROM meta WHERE key = 'revision'");
    return Number(r.rows[0]?.value ?? 0);
  }

  private async migrate(progress?: MigrationProgress): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // Controllers starting together must not both run a migration.
      await client.query("SELECT pg_advisory_xact_lock($1)", [lockKey("schema")]);
      await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
      const applied: { m: Migration; ms: number }[] = [];
      const pending = migrationsToApply(schemaStatus(await appliedIn(client)));
      for (const m of pending) {
        const t0 = performance.now();
        for (const s of statements(m, "postgres")) await client.query(s);
        await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [m.version, m.name, new Date().toISOString()]);
        applied.push({ m, ms: performance.now() - t0 });
      }
      await client.query("COMMIT");
      // reported once committed: PostgreSQL applies them all or none
      for (const a of applied) progress?.(a.m, a.ms);
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The migrations the database at URL holds, read without changing it. */
  static async migrations(url: string): Promise<AppliedMigration[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await appliedIn(client);
    } catch (err) {
      if ((err as { code?: string }).code === "42P01") return []; // no schema_migrations: nothing applied yet
      throw err;
    } finally {
      await client.end();
    }
  }

  read<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return fn(queryable(this.pool));
  }

  async write<T>(fn: (tx: Tx) => Promise<T>): Promise<{ value: T; revision: number }> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      const q = queryable(client);
      const queued: ChangeRecord[] = [];
      const hooks = new CommitHooks();
      const held = new Map<number, "exclusive" | "shared">();
      const tx: Tx = {
        ...q,
        dialect: "postgres",
        async lock(scope: string, mode: "exclusive" | "shared" = "exclusive") {
          const key = lockKey(scope);
          const had = held.get(key);
          if (had === "exclusive" || had === mode) return;
          held.set(key, mode);
          await client.query(mode === "shared" ? "SELECT pg_advisory_xact_lock_shared($1)" : "SELECT pg_advisory_xact_lock($1)", [key]);
        },
        change: (c) => void queued.push(c),
        beforeCommit: (key, fn) => hooks.add(key, fn),
      };
      try {
        await client.query("BEGIN");
        const value = await fn(tx);
        await hooks.run();
        let revision = 0;
        if (queued.length) revision = await appendChangesOnce(client, queued);
        await client.query("COMMIT");
        client.release();
        if (revision) this.signal.bump(revision);
        return { value, revision };
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        client.release();
        const code = (err as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < 8) continue;
        throw err;
      }
    }
  }

  waitForRevision(after: number, ms: number, signal?: AbortSignal): Promise<void> {
    return this.signal.wait(after, ms, signal);
  }

  async currentRevision(): Promise<number> {
    return Math.max(this.signal.revision, await this.readRevision());
  }

  async close(): Promise<void> {
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}

async function appliedIn(client: pg.ClientBase): Promise<AppliedMigration[]> {
  const r = await client.query<{ version: number; name: string; applied_at: string }>("SELECT version, name, applied_at FROM schema_migrations");
  return r.rows.map((x) => ({ version: Number(x.version), name: x.name, appliedAt: x.applied_at }));
}
