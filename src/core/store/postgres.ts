// PostgreSQL store, for several controllers over one database (HA) or a model
// larger than one machine. READ COMMITTED plus advisory locks on the scopes a
// transaction touches (a network's IPAM, the change log) keeps the same
// invariants as SQLite's single writer without serialising unrelated writes.
// Commits wake waiters in every controller through LISTEN/NOTIFY.
import pg from "pg";
import { appendChanges, type ChangeRecord, CommitHooks, type Db, lockKey, type Param, type Queryable, RevisionSignal, type Tx } from "./db.ts";
import { migrations, statements } from "./schema.ts";

pg.types.setTypeParser(20, (v) => Number(v)); // BIGINT -> number (revisions, VNIs fit in 2^53)

function renumber(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async all<T>(sql: string, params: readonly Param[] = []) {
      return (await client.query(renumber(sql), params as unknown[])).rows as T[];
    },
    async get<T>(sql: string, params: readonly Param[] = []) {
      return (await client.query(renumber(sql), params as unknown[])).rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly Param[] = []) {
      return (await client.query(renumber(sql), params as unknown[])).rowCount ?? 0;
    },
  };
}

const RETRYABLE = new Set(["40001", "40P01"]); // serialization failure, deadlock

export class PostgresDb implements Db {
  readonly dialect = "postgres" as const;
  private readonly signal = new RevisionSignal();
  private listener: pg.Client | null = null;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string): Promise<PostgresDb> {
    const pool = new pg.Pool({ connectionString: url, max: 16 });
    pool.on("error", () => undefined); // an idle client's broken socket; the next checkout reconnects
    const db = new PostgresDb(pool);
    await db.migrate();
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

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // Controllers starting together must not both run a migration.
      await client.query("SELECT pg_advisory_xact_lock($1)", [lockKey("schema")]);
      await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
      const done = new Set((await client.query("SELECT version FROM schema_migrations")).rows.map((r) => Number(r.version)));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        for (const s of statements(m, "postgres")) await client.query(s);
        await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [m.version, m.name, new Date().toISOString()]);
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
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
      const held = new Set<number>();
      const tx: Tx = {
        ...q,
        async lock(scope: string) {
          const key = lockKey(scope);
          if (held.has(key)) return;
          held.add(key);
          await client.query("SELECT pg_advisory_xact_lock($1)", [key]);
        },
        change: (c) => void queued.push(c),
        beforeCommit: (key, fn) => hooks.add(key, fn),
      };
      try {
        await client.query("BEGIN");
        const value = await fn(tx);
        await hooks.run();
        let revision = 0;
        if (queued.length) {
          // Taken last and held to commit: revisions are handed out in commit order.
          await tx.lock("changes");
          revision = await appendChanges(q, queued, new Date().toISOString());
          await client.query("SELECT pg_notify('seam_changes', $1)", [String(revision)]);
        }
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
