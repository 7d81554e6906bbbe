// One follower of the change log for many watchers (kube-apiserver's watch
// cache, in small): the log is read and decoded once into a window of recent
// changes, and every watcher is served from that window. A watcher behind the
// window reads its backlog through the feed itself until it catches up, then
// joins the others. So a commit costs one read however many watch, and a
// watch costs what it holds: a cursor and a waiter.
import { changesAfter, Compacted, type FollowOptions, follow, type LoggedChange } from "./change-feed.ts";
import type { Db } from "./db.ts";

const WAKE_SLICE = 50;

export class ChangeFanout {
  /** recent changes, consecutive revisions, oldest first */
  private window: LoggedChange[] = [];
  /** the revision the window runs to (the pump's cursor) */
  private head = -1;
  private readonly waiting = new Set<() => void>();
  private readonly stop = new AbortController();
  private pump: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private flush: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    /** how many changes the window keeps (a watcher further behind reads the log) */
    private readonly capacity = 4096,
    /** how long a change may wait for others to go out with it */
    private readonly flushMs = 50,
  ) {}

  private start(): Promise<void> {
    this.starting ??= (async () => {
      this.head = await this.db.currentRevision();
      this.pump = follow(this.db, {
        since: this.head,
        signal: this.stop.signal,
        onBatch: (batch) => {
          this.window.push(...batch);
          if (this.window.length > this.capacity * 1.25) this.window = this.window.slice(this.window.length - this.capacity);
          this.head = batch[batch.length - 1]!.revision;
          // Watchers are woken once per flush interval, not once per commit: at 100 commits/s
          // and 1,000 watches that is the difference between 100,000 socket writes a second and 20,000.
          this.flush ??= setTimeout(() => {
            this.flush = null;
            this.wake();
          }, this.flushMs);
        },
        // Compacted past the pump itself (it fell that far behind): start the window again at the oldest
        // change left; a watcher in the gap reads the log, meets the compaction and is told so (410).
        onCompacted: async (e) => {
          this.window = [];
          this.head = e.oldest - 1;
          return this.head;
        },
      });
    })();
    return this.starting;
  }

  /** The changes after `since` the window holds (at most `limit`), or null when `since` is behind it. */
  private fromWindow(since: number, limit: number): LoggedChange[] | null {
    const first = this.window[0]?.revision ?? this.head + 1;
    if (since < first - 1) return null;
    const at = since - first + 1;
    return this.window.slice(at, at + limit);
  }

  /** follow() with the same contract, served from the shared window. */
  async follow(o: FollowOptions): Promise<void> {
    await this.start();
    let since = o.since;
    const batchSize = o.batchSize ?? 2000;
    const idleMs = o.idleMs ?? 30_000;
    while (!o.signal.aborted && !this.stop.signal.aborted) {
      const cached = this.fromWindow(since, batchSize);
      if (cached === null) {
        // Behind the window: read the backlog from the log itself, as follow() would.
        try {
          const batch = await this.db.read((q) => changesAfter(q, since, batchSize));
          if (o.signal.aborted) return;
          if (batch.length) {
            await o.onBatch(batch);
            since = batch[batch.length - 1]!.revision;
          }
        } catch (err) {
          if (o.signal.aborted) return;
          try {
            if (!(err instanceof Compacted)) throw err;
            since = await o.onCompacted(err);
          } catch (e) {
            o.onError?.(e);
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
        continue;
      }
      if (cached.length) {
        await o.onBatch(cached);
        since = cached[cached.length - 1]!.revision;
        continue;
      }
      await this.waitPast(since, idleMs, o.signal);
      if (!o.signal.aborted && this.head <= since) o.onIdle?.(since);
    }
  }

  private waitPast(since: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.head > since || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Wakes the watchers a slice at a time, yielding between slices, so that a
   * thousand of them writing to their sockets never hold up a request for
   * longer than one slice does.
   */
  private wake(): void {
    const all = [...this.waiting];
    const slice = (from: number) => {
      for (const w of all.slice(from, from + WAKE_SLICE)) w();
      if (from + WAKE_SLICE < all.length) setImmediate(() => slice(from + WAKE_SLICE));
    };
    slice(0);
  }

  async close(): Promise<void> {
    this.stop.abort();
    if (this.flush) clearTimeout(this.flush);
    for (const w of [...this.waiting]) w();
    await this.pump;
  }
}
