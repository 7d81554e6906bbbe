// The store contract shared by the SQLite and PostgreSQL dialects. SQL is
// written once with `?` placeholders in the common subset of both dialects;
// the PostgreSQL driver renumbers them. Every write runs in `write()`, one
// transaction that also appends its changes to the change log, serialised at
// that point (SQLite's one writer; PostgreSQL's revision row lock), so
// revisions are assigned in commit order on both dialects.

export type Param = string | number | bigint | null;

export type Dialect = "sqlite" | "postgres";

export interface Queryable {
  all<T = Record<string, unknown>>(sql: string, params?: readonly Param[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly Param[]): Promise<T | undefined>;
  run(sql: string, params?: readonly Param[]): Promise<number>;
}

export interface ChangeRecord {
  readonly kind: string;
  readonly id: string;
  readonly op: "create" | "update" | "delete";
  readonly projectId: string;
  readonly object: unknown;
}

export interface Tx extends Queryable {
  /** for the few statements the dialects cannot share (row locks) */
  readonly dialect: Dialect;
  /**
   * Serialises this transaction against others taking the same scope until
   * commit. SQLite already serialises writers, so it is free there; on
   * PostgreSQL it is a transaction-scoped advisory lock. `shared` holders
   * exclude only exclusive ones (many port creates on a network, against the
   * one write that changes the network itself).
   */
  lock(scope: string, mode?: "exclusive" | "shared"): Promise<void>;
  /** Queues a change-log entry; they are written, in order, just before commit. */
  change(record: ChangeRecord): void;
  /**
   * Runs `fn` once per `key` after the transaction's work and before its
   * changes are written (e.g. bump a parent's revision once for a bulk of children).
   */
  beforeCommit(key: string, fn: () => Promise<void>): void;
}

/** The deduplicated before-commit queue both stores use. */
export class CommitHooks {
  private readonly hooks = new Map<string, () => Promise<void>>();
  add(key: string, fn: () => Promise<void>): void {
    if (!this.hooks.has(key)) this.hooks.set(key, fn);
  }
  async run(): Promise<void> {
    // hooks may add hooks (a touch that touches): run until none is left
    while (this.hooks.size) {
      const [key, fn] = this.hooks.entries().next().value as [string, () => Promise<void>];
      await fn();
      this.hooks.delete(key);
    }
  }
}

export interface Db {
  readonly dialect: Dialect;
  /** Reads committed data (never sees another request's open transaction). */
  read<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` in one transaction; returns its value and the revision it committed (0 if none). */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<{ value: T; revision: number }>;
  /** Resolves when a revision greater than `after` is committed, or after `ms`. */
  waitForRevision(after: number, ms: number, signal?: AbortSignal): Promise<void>;
  currentRevision(): Promise<number>;
  close(): Promise<void>;
}

export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** A 31-bit key for PostgreSQL advisory locks (FNV-1a). */
export function lockKey(scope: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < scope.length; i++) {
    h ^= scope.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h & 0x7fffffff;
}

/** Waiters keyed by nothing: any commit wakes all of them, and each re-checks. */
export class RevisionSignal {
  private latest = 0;
  private waiters = new Set<() => void>();

  bump(revision: number): void {
    if (revision <= this.latest) return;
    this.latest = revision;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  get revision(): number {
    return this.latest;
  }

  wait(after: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.latest > after || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
