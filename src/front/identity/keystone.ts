// A Keystone v3 subset at /v3, enough for keystoneauth (the `openstack` CLI,
// openstacksdk, Nova's and Kuryr's clients): version discovery, password and
// token authentication scoped to a project, token validation, and a service
// catalog whose `network` endpoint is this server.
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { checkPassword, type IdentityConfig, type TokenClaims, type TokenIssuer, type User } from "./identity.ts";

const DOMAIN = { id: "default", name: "Default" };

class IdentityError extends Error {
  constructor(
    readonly code: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

const unauthorized = (msg = "The request you have made requires authentication.") => new IdentityError(401, "Unauthorized", msg);

export function baseUrl(req: FastifyRequest, configured?: string): string {
  if (configured) return configured.replace(/\/$/, "");
  return `${req.protocol}://${req.headers.host ?? "127.0.0.1"}`;
}

function catalog(base: string, region: string) {
  const endpoints = (url: string, service: string) =>
    ["public", "internal", "admin"].map((iface) => ({ id: `${service}-${iface}`, interface: iface, region, region_id: region, url }));
  return [
    { id: "network", type: "network", name: "neutron", endpoints: endpoints(base, "network") },
    { id: "identity", type: "identity", name: "keystone", endpoints: endpoints(`${base}/v3`, "identity") },
  ];
}

function tokenBody(claims: TokenClaims, base: string, region: string) {
  const iso = (s: number) => new Date(s * 1000).toISOString().replace("Z", "000Z");
  return {
    token: {
      methods: claims.methods,
      user: { id: claims.userId, name: claims.userName, domain: DOMAIN, password_expires_at: null },
      audit_ids: [claims.auditId],
      issued_at: iso(claims.issuedAt),
      expires_at: iso(claims.expiresAt),
      project: { id: claims.projectId, name: claims.projectName, domain: DOMAIN },
      is_domain: false,
      roles: claims.roles.map((r) => ({ id: r, name: r })),
      catalog: catalog(base, region),
    },
  };
}

type Json = Record<string, unknown>;

function pickProject(config: IdentityConfig, scope: unknown) {
  const p = (scope as Json | undefined)?.project as Json | undefined;
  if (!p) throw new IdentityError(400, "Bad Request", "Only project-scoped tokens are issued here: give auth.scope.project (id, or name and domain).");
  const found = config.projects.find((x) => (p.id !== undefined ? x.id === p.id : x.name === p.name));
  if (!found) throw unauthorized(`Could not find project: ${String(p.id ?? p.name)}.`);
  return found;
}

export function registerKeystone(app: FastifyInstance, config: IdentityConfig, issuer: TokenIssuer, publicUrl?: string): void {
  const send = (reply: FastifyReply, err: unknown) => {
    if (err instanceof IdentityError) {
      return reply.code(err.code).send({ error: { code: err.code, title: err.title, message: err.message } });
    }
    throw err;
  };

  const version = (req: FastifyRequest) => ({
    version: {
      id: "v3.14",
      status: "stable",
      updated: "2020-04-07T00:00:00Z",
      links: [{ rel: "self", href: `${baseUrl(req, publicUrl)}/v3/` }],
      "media-types": [{ base: "application/json", type: "application/vnd.openstack.identity-v3+json" }],
    },
  });
  app.get("/v3", async (req) => version(req));

  app.post("/v3/auth/tokens", async (req, reply) => {
    try {
      const auth = ((req.body as Json | undefined)?.auth ?? null) as Json | null;
      const identity = auth?.identity as Json | undefined;
      const methods = (identity?.methods as string[] | undefined) ?? [];
      let user: User | undefined;
      if (methods.includes("password")) {
        const u = (identity!.password as Json | undefined)?.user as Json | undefined;
        user = config.users.find((x) => (u?.id !== undefined ? x.id === u.id : x.name === u?.name));
        if (!user || typeof u?.password !== "string" || !checkPassword(user, u.password)) {
          throw unauthorized("The request you have made requires authentication.");
        }
      } else if (methods.includes("token")) {
        const prior = issuer.verify((identity!.token as Json | undefined)?.id as string | undefined);
        user = prior ? config.users.find((x) => x.id === prior.userId) : undefined;
        if (!user) throw unauthorized();
      } else {
        throw new IdentityError(400, "Bad Request", "Expected auth.identity.methods to include 'password' or 'token'.");
      }
      const project = pickProject(config, auth!.scope);
      const roles = user.roles[project.name] ?? [];
      if (roles.length === 0) throw unauthorized(`User ${user.id} has no access to project ${project.id}.`);
      const now = Math.floor(Date.now() / 1000);
      const claims: TokenClaims = {
        userId: user.id,
        userName: user.name,
        projectId: project.id,
        projectName: project.name,
        roles,
        methods,
        issuedAt: now,
        expiresAt: now + config.tokenTtlSeconds,
        auditId: randomBytes(16).toString("base64url"),
      };
      return reply.code(201).header("X-Subject-Token", issuer.issue(claims)).send(tokenBody(claims, baseUrl(req, publicUrl), config.region));
    } catch (err) {
      return send(reply, err);
    }
  });

  const validate = async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      if (!issuer.verify(req.headers["x-auth-token"] as string | undefined)) throw unauthorized();
      const subject = issuer.verify(req.headers["x-subject-token"] as string | undefined);
      if (!subject) throw new IdentityError(404, "Not Found", "Could not find token.");
      return reply.header("X-Subject-Token", req.headers["x-subject-token"]).send(tokenBody(subject, baseUrl(req, publicUrl), config.region));
    } catch (err) {
      return send(reply, err);
    }
  };
  app.get("/v3/auth/tokens", validate);

  const caller = (req: FastifyRequest) => {
    const c = issuer.verify(req.headers["x-auth-token"] as string | undefined);
    if (!c) throw unauthorized();
    return c;
  };
  const projectView = (p: { id: string; name: string }, req: FastifyRequest) => ({
    id: p.id,
    name: p.name,
    domain_id: DOMAIN.id,
    description: "",
    enabled: true,
    is_domain: false,
    parent_id: DOMAIN.id,
    tags: [],
    options: {},
    links: { self: `${baseUrl(req, publicUrl)}/v3/projects/${p.id}` },
  });

  app.get("/v3/auth/catalog", async (req, reply) => {
    try {
      caller(req);
      return { catalog: catalog(baseUrl(req, publicUrl), config.region), links: {} };
    } catch (err) {
      return send(reply, err);
    }
  });

  // Project look-ups let `openstack ... --project NAME` resolve names (admin sees all, others their own).
  app.get("/v3/projects", async (req, reply) => {
    try {
      const c = caller(req);
      const name = (req.query as Json).name as string | undefined;
      const visible = config.projects.filter((p) => (c.roles.includes("admin") || p.id === c.projectId) && (name === undefined || p.name === name));
      // Keystone forbids a member's project list (identity:list_projects); we answer a look-up of its own
      // project by name only, and forbid the rest, so the CLI takes another project's id as given
      // (`--target-project ID`).
      if (!c.roles.includes("admin") && (name === undefined || visible.length === 0)) throw new IdentityError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_projects.");
      return { projects: visible.map((p) => projectView(p, req)), links: { self: null, next: null, previous: null } };
    } catch (err) {
      return send(reply, err);
    }
  });
  app.get("/v3/projects/:id", async (req, reply) => {
    try {
      const c = caller(req);
      const id = (req.params as Json).id as string;
      // Keystone's identity:get_project: another project is forbidden to a non-admin, whether it exists
      // or not (the CLI then takes the id as given: `--target-project ID`).
      if (!c.roles.includes("admin") && id !== c.projectId) throw new IdentityError(403, "Forbidden", `You are not authorized to perform the requested action: identity:get_project.`);
      const p = config.projects.find((x) => x.id === id);
      if (!p) throw new IdentityError(404, "Not Found", `Could not find project: ${id}.`);
      return { project: projectView(p, req) };
    } catch (err) {
      return send(reply, err);
    }
  });
}
