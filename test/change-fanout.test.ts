// The shared follower of the change log: every watcher, whether it starts
// behind the shared window, inside it or at its head, gets every change after
// its revision exactly once and in order, while changes keep committing; and
// the log is read once for all of them, not once per watcher.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChangeFanout } from "../src/core/store/change-fanout.ts";
import type { Db } from "../src/core/store/db.ts";
import { openDb } from "../src/core/store/open.ts";
import { makeStore, type Store } from "./support/api.ts";

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`the change fan-out on ${kind}`, () => {
    let store: Store;
    let db: Db;
    before(async () => {
      store = await makeStore(kind);
      db = await openDb(store.url);
    });
    after(async () => {
      await db?.close();
      await store?.cleanup();
    });

    const commit = (i: number) => db.write(async (tx) => tx.change({ kind: "network", id: `n${i}`, op: "create", projectId: "p", object: { i } }));

    it("gives 40 watchers from four starting points every change once, in order", async () => {
      for (let i = 0; i < 30; i++) await commit(i);
      // A window of 8: watchers from 0 and 5 start behind it and must read their backlog from the log.
      const fanout = new ChangeFanout(db, 8, 5);
      const starts = [0, 5, 25, 30];
      const stop = new AbortController();
      const seen = starts.flatMap((since) => Array.from({ length: 10 }, () => ({ since, revisions: [] as number[] })));
      const followers = seen.map((w) =>
        fanout.follow({
          since: w.since,
          signal: stop.signal,
          batchSize: 7,
          onBatch: (changes) => void w.revisions.push(...changes.map((c) => c.revision)),
          onCompacted: async () => {
            throw new Error("not compacted here");
          },
        }),
      );
      await Promise.all(Array.from({ length: 120 }, (_, i) => commit(30 + i)));
      const last = await db.currentRevision();
      const deadline = Date.now() + 10_000;
      while (seen.some((w) => w.revisions.at(-1) !== last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      stop.abort();
      await Promise.all(followers);
      await fanout.close();
      for (const w of seen) {
        const want = Array.from({ length: last - w.since }, (_, k) => w.since + 1 + k);
        assert.deepEqual(w.revisions, want, `watcher from ${w.since}`);
      }
    });

    it("reads the log once per batch for all watchers at the head", async () => {
      let reads = 0;
      const counting = Object.create(db) as Db;
      counting.read = (fn) => {
        reads++;
        return db.read(fn);
      };
      const fanout = new ChangeFanout(counting, 4096, 5);
      const since = await db.currentRevision();
      const stop = new AbortController();
      let delivered = 0;
      const followers = Array.from({ length: 200 }, () =>
        fanout.follow({ since, signal: stop.signal, onBatch: (c) => void (delivered += c.length), onCompacted: async () => since }),
      );
      for (let i = 0; i < 20; i++) {
        await commit(1000 + i);
        await new Promise((r) => setTimeout(r, 10));
      }
      const deadline = Date.now() + 10_000;
      while (delivered < 200 * 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      stop.abort();
      await Promise.all(followers);
      await fanout.close();
      assert.equal(delivered, 200 * 20, "every watcher got the 20 changes");
      assert.ok(reads <= 60, `${reads} reads of the log for 200 watchers and 20 commits`);
    });
  });
}
