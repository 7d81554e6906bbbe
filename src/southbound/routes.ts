// The southbound HTTP endpoints (see protocol.ts). An agent authenticates with
// its host's own credential (host-credentials.ts), or as an admin (a token, or
// noauth headers in a lab).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { badRequest, NeutronError, policyDenied, unauthenticated } from "../core/errors.ts";
import { checkHost, heartbeat, registerAgent } from "../core/service/agents.ts";
import type { Model } from "../core/service/model.ts";
import { reportStatus, type StatusLists } from "../core/service/port-status.ts";
import type { Authenticator } from "../front/auth.ts";
import { Streams } from "../front/stream.ts";
import type { Hub } from "./hub.ts";
import { type Attachment, type AttachRequest, type CollectRequest, type IntentMessage, SOUTHBOUND } from "../contract/southbound.ts";
import { attachWorkload, collectAttachments, detachWorkload } from "../core/service/attachments.ts";
import { answerMetadata, type NovaMetadata } from "../front/metadata/service.ts";
import { hostOfCredential, isHostCredential } from "./host-credentials.ts";

const BOOKMARK_EVERY_MS = 10_000;

function idList(raw: unknown, name: string): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.some((x) => typeof x !== "string" || x.length > 64)) throw badRequest(`'${name}' must be a list of ids.`);
  return raw as string[];
}

/**
 * `projectId` maps a project name to its id where the server knows names
 * (its built-in identity); elsewhere a project is named by its id.
 */
export function registerSouthbound(
  app: FastifyInstance,
  model: Model,
  hub: Hub,
  auth: Authenticator,
  projectId: (nameOrId: string) => string = (p) => p,
  nova: NovaMetadata | null = null,
): void {
  const streams = new Streams(app);

  /** The host the caller may act for: the one its credential names, or any for an admin. */
  const actingHost = async (req: FastifyRequest): Promise<string> => {
    const host = (req.params as { host: string }).host;
    checkHost(host);
    const token = req.headers["x-auth-token"];
    if (isHostCredential(typeof token === "string" ? token : undefined)) {
      const owner = await hostOfCredential(model.db, token as string);
      if (owner === null) throw unauthenticated();
      if (owner !== host) throw new NeutronError(403, "PolicyNotAuthorized", `This credential is ${owner}'s: it acts for host ${owner} only, not ${host}.`);
      return host;
    }
    const ctx = await auth.contextFor(req);
    if (!ctx) throw unauthenticated();
    if (!ctx.isAdmin) throw policyDenied("southbound");
    return host;
  };

  app.put(`${SOUTHBOUND}/hosts/:host`, async (req) => {
    const host = await actingHost(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== "object" || Array.isArray(body)) throw badRequest("Registration must be a JSON object.");
    return { agent: await registerAgent(model, host, body as never) };
  });

  app.post(`${SOUTHBOUND}/hosts/:host/heartbeat`, async (req, reply) => {
    const host = await actingHost(req);
    if (!(await heartbeat(model, host))) throw new NeutronError(404, "AgentNotFound", `No agent is registered for host ${host}; register first.`);
    return reply.code(204).send();
  });

  app.post(`${SOUTHBOUND}/hosts/:host/ports`, async (req) => {
    const host = await actingHost(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const lists = (raw: unknown, name: string): StatusLists | undefined => {
      if (raw === undefined) return undefined;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw badRequest(`'${name}' must be an object {up, down}.`);
      const o = raw as Record<string, unknown>;
      return { up: idList(o.up, `${name}.up`), down: idList(o.down, `${name}.down`) };
    };
    const ports = { up: idList(body.up, "up"), down: idList(body.down, "down") };
    const changed = await reportStatus(model, host, ports, lists(body.routers, "routers"), lists(body.floatingips, "floatingips"));
    return { changed };
  });

  const body = (req: FastifyRequest, what: string): Record<string, unknown> => {
    const b = req.body ?? {};
    if (typeof b !== "object" || Array.isArray(b)) throw badRequest(`${what} must be a JSON object.`);
    return b as Record<string, unknown>;
  };

  app.post(`${SOUTHBOUND}/hosts/:host/attachments`, async (req, reply) => {
    const host = await actingHost(req);
    const r = await attachWorkload(model, host, body(req, "An attachment") as unknown as AttachRequest, projectId);
    const out: Attachment = { port: r.port, network: r.network };
    return reply.code(r.created ? 201 : 200).send(out);
  });

  app.delete(`${SOUTHBOUND}/hosts/:host/attachments/:container`, async (req) => {
    const host = await actingHost(req);
    const { container } = req.params as { container: string };
    const port = (req.query as Record<string, string | undefined>).port;
    return { removed: await detachWorkload(model, host, container, port) };
  });

  app.post(`${SOUTHBOUND}/hosts/:host/attachments/collect`, async (req) => {
    const host = await actingHost(req);
    const b = body(req, "A collection");
    const keep = b.keep ?? [];
    if (!Array.isArray(keep) || keep.some((k) => typeof k !== "string")) throw badRequest("'keep' must be a list of container ids.");
    const scope = (b.scope ?? {}) as CollectRequest["scope"];
    if (typeof scope !== "object" || Array.isArray(scope)) throw badRequest("'scope' must be an object.");
    return { removed: await collectAttachments(model, host, keep as string[], scope, projectId) };
  });

  // A VM's metadata request, relayed by the agent serving its network (front/metadata/service.ts).
  app.post(`${SOUTHBOUND}/hosts/:host/metadata`, async (req) => {
    await actingHost(req);
    const b = body(req, "A metadata request");
    const text = (k: string, max: number) => {
      const v = b[k];
      if (typeof v !== "string" || v.length > max || v.includes("\0")) throw badRequest(`'${k}' must be a string of at most ${max} characters.`);
      return v;
    };
    return answerMetadata(model, nova, text("network", 64), text("address", 64), text("path", 1024));
  });

  app.get(`${SOUTHBOUND}/hosts/:host/intent`, async (req, reply) => {
    const host = await actingHost(req);
    const query = req.query as Record<string, string | undefined>;
    await hub.caughtUp();
    if (query.watch !== "1" && query.watch !== "true") return hub.intentOf(host);
    let since: number | undefined;
    if (query.since !== undefined) {
      if (!/^\d+$/.test(query.since)) throw badRequest(`Invalid input for since. Reason: '${query.since}' is not a non-negative integer.`);
      since = Number(query.since);
    }
    let last = hub.revision;
    const stream = streams.open(req, reply, { bookmarkMs: BOOKMARK_EVERY_MS, bookmark: () => ({ type: "BOOKMARK", revision: Math.max(last, 0) }) });
    const unwatch = hub.watch(host, since, (msg: IntentMessage) => {
      last = msg.revision;
      stream.send(msg);
    });
    stream.signal.addEventListener("abort", unwatch, { once: true });
  });
}
