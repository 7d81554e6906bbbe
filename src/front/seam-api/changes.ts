// GET /api/v1/changes?since=REV: the change log, for the UI and operators.
// Long-poll by default (waits up to `timeout` seconds for the first change
// after `since`); `watch=1` streams NDJSON, with BOOKMARK lines while idle so
// clients can tell a quiet stream from a dead one. A `since` older than the log
// holds is 410 Gone: list again, and watch from the list's revision.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { badRequest, NeutronError, policyDenied } from "../../core/errors.ts";
import type { Model } from "../../core/service/model.ts";
import { changesAfter, checkNotCompacted, Compacted, type LoggedChange } from "../../core/store/change-feed.ts";
import { ChangeFanout } from "../../core/store/change-fanout.ts";
import type { Authenticator } from "../auth.ts";
import { Streams } from "../stream.ts";

const toEvent = (c: LoggedChange) => ({ revision: c.revision, kind: c.kind, id: c.id, op: c.op, project_id: c.projectId, at: c.at, object: c.object });

/**
 * The NDJSON lines of a batch, made once for every watch that is sent the
 * same batch (in the steady state, all of them: they wait at the same revision).
 */
function linesOf(): (batch: readonly LoggedChange[]) => Buffer {
  // One Buffer written to every socket: the kernel copies it, the heap holds it once.
  let last: { batch: readonly LoggedChange[]; bytes: Buffer } | null = null;
  return (batch) => {
    if (last?.batch[0] !== batch[0] || last.batch.length !== batch.length || last.batch[batch.length - 1] !== batch[batch.length - 1]) {
      last = { batch, bytes: Buffer.from(batch.map((c) => `${JSON.stringify({ type: "CHANGE", ...toEvent(c) })}\n`).join("")) };
    }
    return last.bytes;
  };
}

const gone = (e: Compacted) => new NeutronError(410, "RevisionCompacted", e.message);

function intParam(raw: unknown, name: string, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  if (typeof raw !== "string" || !/^\d+$/.test(raw)) throw badRequest(`Invalid input for ${name}. Reason: '${String(raw)}' is not a non-negative integer.`);
  return Math.min(Number(raw), max);
}

export function registerChanges(app: FastifyInstance, model: Model, auth: Authenticator): void {
  const streams = new Streams(app);
  const fanout = new ChangeFanout(model.db);
  const lines = linesOf();
  app.addHook("onClose", () => fanout.close());
  app.get("/api/v1/changes", async (req: FastifyRequest, reply) => {
    const ctx = await auth.contextFor(req);
    if (!ctx) return reply.code(401).send({ error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
    if (!ctx.isAdmin) throw policyDenied("get_changes");
    const query = req.query as Record<string, string | undefined>;
    const since = intParam(query.since, "since", 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(query.limit, "limit", 1000, 10000) || 1000;
    const timeoutMs = intParam(query.timeout, "timeout", 30, 300) * 1000;
    const db = model.db;
    const read = () =>
      db.read(async (q) => {
        await checkNotCompacted(q, since);
        return changesAfter(q, since, limit);
      }).catch((e) => {
        throw e instanceof Compacted ? gone(e) : e;
      });

    if (query.watch !== "1" && query.watch !== "true") {
      let changes = await read();
      if (changes.length === 0 && timeoutMs > 0) {
        const abort = streams.track(req);
        await db.waitForRevision(since, timeoutMs, abort.signal);
        abort.abort();
        changes = await read();
      }
      const revision = changes.length ? changes[changes.length - 1]!.revision : Math.max(since, await db.currentRevision());
      return { revision, changes: changes.map(toEvent) };
    }

    await read(); // a 410 is still a plain answer, before the stream starts
    let last = since;
    const stream = streams.open(req, reply, { bookmarkMs: 15_000, bookmark: () => ({ type: "BOOKMARK", revision: last }) });
    await fanout.follow({
      since,
      signal: stream.signal,
      batchSize: limit,
      onBatch: (changes) => {
        stream.sendLines(lines(changes));
        last = changes[changes.length - 1]!.revision;
      },
      onCompacted: async (e) => {
        // compacted under a live watch: say so and end; the client lists again
        stream.send({ type: "ERROR", code: 410, message: e.message });
        stream.end();
        return last;
      },
      onError: (err) => req.log.warn({ err }, "change watch: reading the log failed; retrying"),
    });
    stream.end();
  });
}
