// GET /api/v1/changes?since=REV: the change log, for the southbound, the UI
// and operators. Long-poll by default (waits up to `timeout` seconds for the
// first change after `since`); `watch=1` streams NDJSON forever, with
// BOOKMARK lines while idle so clients can tell a quiet stream from a dead one.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { badRequest, NeutronError, policyDenied } from "../../core/errors.ts";
import type { Queryable } from "../../core/store/db.ts";
import type { Model } from "../../core/service/model.ts";
import type { Authenticator } from "../auth.ts";

interface ChangeRow {
  revision: number;
  kind: string;
  resource_id: string;
  op: string;
  project_id: string;
  object: string | null;
  at: string;
}

const toEvent = (r: ChangeRow) => ({
  revision: Number(r.revision),
  kind: r.kind,
  id: r.resource_id,
  op: r.op,
  project_id: r.project_id,
  at: r.at,
  object: r.object === null ? null : JSON.parse(r.object),
});

async function changesAfter(q: Queryable, since: number, limit: number): Promise<ChangeRow[]> {
  return q.all<ChangeRow>("SELECT * FROM changes WHERE revision > ? ORDER BY revision LIMIT ?", [since, limit]);
}

/** 410 Gone when `since` is older than what the log still holds (it was compacted). */
async function checkCompacted(q: Queryable, since: number): Promise<void> {
  const oldest = await q.get<{ r: number | null }>("SELECT MIN(revision) AS r FROM changes");
  if (oldest?.r !== null && oldest?.r !== undefined && since < Number(oldest.r) - 1) {
    throw new NeutronError(410, "RevisionCompacted", `Revision ${since} has been compacted; the oldest available is ${oldest.r}. List again and watch from the list's revision.`);
  }
}

function intParam(raw: unknown, name: string, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  if (typeof raw !== "string" || !/^\d+$/.test(raw)) throw badRequest(`Invalid input for ${name}. Reason: '${String(raw)}' is not a non-negative integer.`);
  return Math.min(Number(raw), max);
}

export function registerChanges(app: FastifyInstance, model: Model, auth: Authenticator): void {
  // Watches and long-polls end when the server closes, instead of holding close() until they time out.
  const live = new Set<AbortController>();
  app.addHook("preClose", async () => {
    for (const a of live) a.abort();
  });
  const track = (req: FastifyRequest) => {
    const abort = new AbortController();
    live.add(abort);
    abort.signal.addEventListener("abort", () => live.delete(abort), { once: true });
    req.raw.once("close", () => abort.abort());
    return abort;
  };
  app.get("/api/v1/changes", async (req: FastifyRequest, reply) => {
    const ctx = auth.contextFor(req);
    if (!ctx) return reply.code(401).send({ error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
    if (!ctx.isAdmin) throw policyDenied("get_changes");
    const query = req.query as Record<string, string | undefined>;
    let since = intParam(query.since, "since", 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(query.limit, "limit", 1000, 10000) || 1000;
    const timeoutMs = intParam(query.timeout, "timeout", 30, 300) * 1000;
    const db = model.db;
    await db.read((q) => checkCompacted(q, since));

    if (query.watch !== "1" && query.watch !== "true") {
      let rows = await db.read((q) => changesAfter(q, since, limit));
      if (rows.length === 0 && timeoutMs > 0) {
        const abort = track(req);
        await db.waitForRevision(since, timeoutMs, abort.signal);
        abort.abort();
        rows = await db.read((q) => changesAfter(q, since, limit));
      }
      const revision = rows.length ? Number(rows[rows.length - 1]!.revision) : Math.max(since, await db.currentRevision());
      return { revision, changes: rows.map(toEvent) };
    }

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache" });
    // Without this the status line waits for the first change, and a watcher cannot tell "connected" from "hanging".
    res.flushHeaders();
    const abort = track(req);
    res.once("close", () => abort.abort());
    try {
      while (!abort.signal.aborted) {
        const rows = await db.read((q) => changesAfter(q, since, limit));
        for (const r of rows) res.write(`${JSON.stringify({ type: "CHANGE", ...toEvent(r) })}\n`);
        if (rows.length) {
          since = Number(rows[rows.length - 1]!.revision);
          continue;
        }
        await db.waitForRevision(since, 15_000, abort.signal);
        if (!abort.signal.aborted && (await db.currentRevision()) <= since) {
          res.write(`${JSON.stringify({ type: "BOOKMARK", revision: since })}\n`);
        }
      }
    } catch (err) {
      req.log.warn({ err }, "change watch ended");
    } finally {
      res.end();
    }
  });
}
