// seam-server: one HTTP server for every front door over one model and store.
// Turns every failure into the body its clients expect: a NeutronError for
// the Neutron API (never a stack trace), Keystone's error body under /v3.
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, LogController } from "fastify";
import { NeutronError } from "./core/errors.ts";
import { createModel, type ModelConfig } from "./core/service/index.ts";
import type { Model } from "./core/service/model.ts";
import type { Db } from "./core/store/db.ts";
import { type Authenticator, keystoneAuth, noauth, tokenAuth } from "./front/auth.ts";
import { type IdentityConfig, TokenIssuer } from "./front/identity/identity.ts";
import { registerKeystone } from "./front/identity/keystone.ts";
import { type KeystoneOptions, KeystoneValidator } from "./front/identity/keystone-validator.ts";
import { registerHostCredentials } from "./front/seam-api/host-credentials.ts";
import { registerNeutron, withoutFormatSuffix } from "./front/neutron/plugin.ts";
import { registerChanges } from "./front/seam-api/changes.ts";
import { registerHealth } from "./front/seam-api/health.ts";
import type { KubernetesController, KubernetesOptions } from "./front/kubernetes/controller.ts";
import { Hub } from "./southbound/hub.ts";
import { NovaNotifier } from "./front/neutron/nova-notifier.ts";
import { registerSouthbound } from "./southbound/routes.ts";
import type { NovaMetadata } from "./front/metadata/service.ts";
import { DnsListener } from "./front/dns/listener.ts";

export interface ServerOptions {
  readonly db: Db;
  readonly auth: "noauth" | "local" | "keystone";
  /** --auth local: the built-in identity's projects and users */
  readonly identity?: IdentityConfig;
  /** --auth keystone: the external Keystone and Seam's service user in it */
  readonly keystone?: KeystoneOptions;
  readonly modelConfig?: ModelConfig;
  readonly bodyLimit?: number;
  /** serve https with this certificate (PEM, its chain after it) and key; none: plain http */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly logLevel?: string;
  readonly publicUrl?: string;
  /** Nova's compute endpoint (…/v2.1) for os-server-external-events; none: no notifications */
  readonly novaUrl?: string;
  readonly novaToken?: string;
  /** Nova's metadata API, for what the model cannot answer a VM (user data, ...); none: 404 */
  readonly novaMetadata?: NovaMetadata;
  /** where to answer DNS for the ports' names (the physical segment's resolver); none: no listener */
  readonly dnsListen?: { readonly address: string; readonly port: number };
  /** the Kubernetes controller's cluster and pod pool; none: no controller */
  readonly kubernetes?: KubernetesOptions;
}

export interface Server {
  readonly app: FastifyInstance;
  readonly model: Model;
  readonly hub: Hub;
  readonly kubernetes: KubernetesController | null;
}

export async function buildServer(opts: ServerOptions): Promise<Server> {
  const app = Fastify({
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // On shutdown, drop keep-alive and streaming connections rather than wait out their timeouts.
    forceCloseConnections: true,
    logger: { level: opts.logLevel ?? "warn" },
    // Neutron's request ids: every response names its request (X-Openstack-Request-Id), and the log lines of it carry the same id.
    genReqId: () => `req-${randomUUID()}`,
    logController: new LogController({ requestIdLogLabel: "request_id" }),
    // Neutron ids are matched as given; keep trailing slashes working as Neutron's router does.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    rewriteUrl: (req) => withoutFormatSuffix(req.url ?? "/"),
    // What Node's HTTP parser refuses (malformed HTTP, headers too large) gets Neutron's body too.
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) return;
      const status = (err as NodeJS.ErrnoException).code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
      const body = JSON.stringify(new NeutronError(status, "HTTPBadRequest", status === 431 ? "Request header fields too large." : "Malformed HTTP request.").toBody());
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Openstack-Request-Id: req-${randomUUID()}\r\nConnection: close\r\n\r\n${body}`);
    },
    // Errors Fastify raises before routing (an undecodable URL) get Neutron's body too.
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).code(status).send(new NeutronError(status, "HTTPBadRequest", err.message).toBody());
    },
  });
  const model = createModel(opts.db, opts.modelConfig);
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-openstack-request-id", req.id);
  });

  // Clients send JSON with or without a content type, and DELETE with an empty JSON body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new NeutronError(400, "HTTPBadRequest", "Malformed request body"), undefined);
    }
  });

  let auth: Authenticator = noauth;
  if (opts.auth === "local") {
    if (!opts.identity) throw new Error("--auth local needs an identity config (--identity FILE)");
    const issuer = await TokenIssuer.open(opts.db);
    auth = tokenAuth(issuer);
    registerKeystone(app, opts.identity, issuer, opts.publicUrl);
  } else if (opts.auth === "keystone") {
    if (!opts.keystone) throw new Error("--auth keystone needs --keystone-url and Seam's service user");
    auth = keystoneAuth(new KeystoneValidator(opts.keystone));
  }

  app.setErrorHandler((err: FastifyError | NeutronError | Error, req, reply) => {
    if (err instanceof NeutronError) return reply.code(err.status).send(err.toBody());
    const status = (err as FastifyError).statusCode;
    if (status === 413) return reply.code(413).send(new NeutronError(413, "HTTPRequestEntityTooLarge", "Request is too large.").toBody());
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send(new NeutronError(status, "HTTPBadRequest", err.message).toBody());
    }
    req.log.error({ err, url: req.url, method: req.method }, "request failed");
    return reply.code(500).send(new NeutronError(500, "HTTPInternalServerError", "Request Failed: internal server error while processing your request.").toBody());
  });
  // No store keeps a NUL character (PostgreSQL refuses it in text), and no name needs one: refused
  // wherever a client may put it, before any handler sees it.
  app.addHook("preValidation", async (req) => {
    if (hasNul(req.params) || hasNul(req.query) || hasNul(req.body)) throw new NeutronError(400, "HTTPBadRequest", "Invalid input: NUL characters are not allowed.");
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send(new NeutronError(404, "HTTPNotFound", "The resource could not be found.").toBody()));

  registerNeutron(app, model, auth);
  registerChanges(app, model, auth);
  registerHostCredentials(app, model, auth);

  const hub = new Hub(model, app.log);
  await hub.start();
  registerHealth(app, model, () => hub.world.revision);
  if (opts.novaUrl) {
    const nova = new NovaNotifier(opts.novaUrl, opts.novaToken, app.log);
    await nova.start(model);
    app.addHook("onClose", () => nova.close());
  }
  app.addHook("onClose", () => hub.stop());
  // With the built-in identity, a CNI config may name its project; otherwise projects are ids.
  const projectId = (p: string) => opts.identity?.projects.find((x) => x.name === p || x.id === p)?.id ?? p;
  registerSouthbound(app, model, hub, auth, projectId, opts.novaMetadata ?? null);
  if (opts.dnsListen) {
    const dns = new DnsListener(model, opts.dnsListen.address, opts.dnsListen.port, { error: (o, m) => app.log.error(o, m), info: (m) => app.log.info(m) });
    await dns.start();
    app.addHook("onClose", () => dns.stop());
  }
  let kubernetes: KubernetesController | null = null;
  if (opts.kubernetes) {
    const log = { info: (m: string) => app.log.info(m), warn: (m: string) => app.log.warn(m), error: (o: object, m: string) => app.log.error(o, m) };
    // Loaded only when asked for: the Kubernetes client is most of what a server would load otherwise.
    const { KubernetesController } = await import("./front/kubernetes/controller.ts");
    const controller = new KubernetesController(model, opts.kubernetes, projectId, log);
    await controller.start();
    app.addHook("onClose", () => controller.stop());
    kubernetes = controller;
  }
  await app.ready();
  return { app, model, hub, kubernetes };
}

/** Whether a decoded request part holds a NUL character in any string, key or value (iterative: bodies may nest deep). */
function hasNul(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (v.includes("\0")) return true;
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes("\0")) return true;
        stack.push(x);
      }
    }
  }
  return false;
}
