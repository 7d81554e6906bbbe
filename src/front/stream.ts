// NDJSON streams for every door that streams (the southbound intent watch, the
// change log watch; the UI's live updates next): headers flushed at once so a
// client can tell "connected" from "hanging", a BOOKMARK after a quiet spell so
// it can tell a quiet stream from a dead one, and every stream ended when the
// server closes instead of holding close() until the client goes away.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

export interface NdjsonStream {
  /** aborts when the client goes away or the server closes */
  readonly signal: AbortSignal;
  send(message: unknown): void;
  /** already-encoded NDJSON lines (shared by streams that send the same) */
  sendLines(lines: string | Buffer): void;
  end(): void;
}

export interface StreamOptions {
  /** after about this long without a message (at most 1.5 times it), `bookmark()` is sent */
  readonly bookmarkMs: number;
  bookmark(): unknown;
}

/** One per door: tracks its live streams and ends them on the server's preClose. */
export class Streams {
  private readonly live = new Set<AbortController>();

  constructor(app: FastifyInstance) {
    app.addHook("preClose", async () => {
      for (const a of this.live) a.abort();
    });
  }

  /** An abort signal for a long request (a long-poll): aborted when the client leaves or the server closes. */
  track(req: FastifyRequest): AbortController {
    const abort = new AbortController();
    this.live.add(abort);
    abort.signal.addEventListener("abort", () => this.live.delete(abort), { once: true });
    req.raw.once("close", () => abort.abort());
    return abort;
  }

  open(req: FastifyRequest, reply: FastifyReply, o: StreamOptions): NdjsonStream {
    const abort = this.track(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache" });
    res.flushHeaders();
    // One timer per stream, not one per message: a change can be a message to each of 1,000 streams.
    let lastWrite = Date.now();
    const tick = setInterval(() => {
      if (Date.now() - lastWrite >= o.bookmarkMs) write(o.bookmark());
    }, Math.max(1, o.bookmarkMs / 2));
    const writeText = (text: string | Buffer) => {
      if (abort.signal.aborted) return;
      res.write(text);
      lastWrite = Date.now();
    };
    const write = (m: unknown) => writeText(`${JSON.stringify(m)}\n`);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(tick);
      abort.abort();
      res.end();
    };
    res.once("close", end);
    abort.signal.addEventListener("abort", end, { once: true });
    return { signal: abort.signal, send: write, sendLines: writeText, end };
  }
}
