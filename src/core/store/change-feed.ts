// The change feed: the one reader of the `changes` table. Everything that
// follows the model (the southbound hub, /api/v1/changes, the Nova notifier;
// the UI, DNS and the Kubernetes status writer next) lists, then follows from
// the list's revision in batches, and relists when the log was compacted past
// it: the informer's list-then-watch, with 410 Gone as its signal.
import type { Db, Queryable } from "./db.ts";

export interface LoggedChange {
  readonly revision: number;
  readonly kind: string;
  readonly id: string;
  readonly op: "create" | "update" | "delete";
  readonly projectId: string;
  readonly at: string;
  /** the resource's admin view after the change; null for a delete */
  readonly object: Readonly<Record<string, unknown>> | null;
}

/** `since` is older than the oldest revision the log still holds. */
export class Compacted extends Error {
  constructor(
    readonly since: number,
    readonly oldest: number,
  ) {
    super(`Revision ${since} has been compacted; the oldest available is ${oldest}. List again and watch from the list's revision.`);
  }
}

interface ChangeRow {
  revision: number | string;
  kind: string;
  resource_id: string;
  op: string;
  project_id: string;
  object: string | null;
  at: string;
}

const decodeRow = (r: ChangeRow): LoggedChange => ({
  revision: Number(r.revision),
  kind: r.kind,
  id: r.resource_id,
  op: r.op as LoggedChange["op"],
  projectId: r.project_id,
  at: r.at,
  object: r.object === null ? null : (JSON.parse(r.object) as Record<string, unknown>),
});

async function oldestRevision(q: Queryable): Promise<number | null> {
  const row = await q.get<{ r: number | string | null }>("SELECT MIN(revision) AS r FROM changes");
  return row?.r === null || row?.r === undefined ? null : Number(row.r);
}

/** Throws Compacted when the log no longer holds every change after `since`. */
export async function checkNotCompacted(q: Queryable, since: number): Promise<void> {
  const oldest = await oldestRevision(q);
  if (oldest !== null && since < oldest - 1) throw new Compacted(since, oldest);
}

/** Up to `limit` changes after `since`, in revision order; Compacted when some after it are gone. */
export async function changesAfter(q: Queryable, since: number, limit: number): Promise<LoggedChange[]> {
  const rows = await q.all<ChangeRow>("SELECT revision, kind, resource_id, op, project_id, object, at FROM changes WHERE revision > ? ORDER BY revision LIMIT ?", [since, limit]);
  // Revisions are consecutive: a first row past since+1 means the ones between were compacted.
  if (rows.length && Number(rows[0]!.revision) > since + 1) await checkNotCompacted(q, since);
  return rows.map(decodeRow);
}

export interface FollowOptions {
  /** follow from after this revision */
  readonly since: number;
  readonly signal: AbortSignal;
  /** each batch, in revision order; the next waits for it */
  onBatch(changes: readonly LoggedChange[]): void | Promise<void>;
  /** the log was compacted past the follower: list again, and return the revision to follow from */
  onCompacted(e: Compacted): Promise<number>;
  /** nothing new for `idleMs`: the revision followed so far (for bookmarks) */
  onIdle?(revision: number): void;
  readonly idleMs?: number;
  readonly batchSize?: number;
  /** a read failed; the feed retries after a second */
  onError?(err: unknown): void;
}

/** Follows the log until the signal aborts. Resolves then; never rejects. */
export async function follow(db: Db, o: FollowOptions): Promise<void> {
  let since = o.since;
  const idleMs = o.idleMs ?? 30_000;
  while (!o.signal.aborted) {
    try {
      const batch = await db.read((q) => changesAfter(q, since, o.batchSize ?? 2000));
      if (o.signal.aborted) return;
      if (batch.length) {
        await o.onBatch(batch);
        since = batch[batch.length - 1]!.revision;
        continue;
      }
      const waited = Date.now();
      await db.waitForRevision(since, idleMs, o.signal);
      // One turn of the event loop before reading: commits landing together are read as one batch.
      await new Promise((r) => setImmediate(r));
      // Only a wait that ran its course can be idle: asking the store on every wake is a query per commit per follower.
      if (!o.signal.aborted && Date.now() - waited >= idleMs && (await db.currentRevision()) <= since) o.onIdle?.(since);
    } catch (err) {
      if (o.signal.aborted) return;
      if (err instanceof Compacted) {
        try {
          since = await o.onCompacted(err);
          continue;
        } catch (relist) {
          err = relist;
        }
      }
      o.onError?.(err);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
