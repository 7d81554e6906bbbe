// The Neutron v2.0 API front door: URLs, JSON envelopes and status codes as
// Neutron's clients expect them. It translates requests into model calls and
// nothing else; every rule lives in the core.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { badRequest, notFound, policyDenied } from "../../core/errors.ts";
import type { RequestContext } from "../../core/model/context.ts";
import { parseListQuery, type Raw, selectFields } from "../../core/model/query.ts";
import type { ResourceDef } from "../../core/model/attributes.ts";
import { resources } from "../../core/model/resources.ts";
import type { Model } from "../../core/service/model.ts";
import { quotas } from "../../core/service/quotas.ts";
import { addRouterInterface, removeRouterInterface } from "../../core/service/routers.ts";
import { OWNER } from "../../core/model/owners.ts";
import { servingAgents } from "../../core/model/placement.ts";
import { changeSubports } from "../../core/service/trunks.ts";
import type { Authenticator } from "../auth.ts";
import { baseUrl } from "../identity/keystone.ts";
import { EXTENSIONS, extensionView } from "./extensions.ts";

declare module "fastify" {
  interface FastifyRequest {
    seamContext?: RequestContext;
  }
}

type Params = { collection: string; id: string; tag: string; action: string; project: string };

/** Neutron's format suffix: `/v2.0/ports/ID.json` is `/v2.0/ports/ID` (neutronclient and Tempest send it). */
export function withoutFormatSuffix(url: string): string {
  if (!url.startsWith("/v2.0")) return url;
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  return path.endsWith(".json") ? path.slice(0, -5) + (q < 0 ? "" : url.slice(q)) : url;
}

const BY_PATH: ReadonlyMap<string, ResourceDef> = new Map(resources.map((r) => [r.path, r]));

/** The resource a collection path names (`security-groups`). */
function defFor(model: Model, collection: string): ResourceDef {
  const def = BY_PATH.get(collection);
  if (!def || !model.hasKind(def.singular)) throw notFound("HTTPNotFound", "The resource could not be found.");
  return def;
}

/** `If-Match: revision_number=N[, revision_number=M]` (revision-if-match): the revisions wanted, null for none. */
export function expectedRevisions(ifMatch: string | string[] | undefined): number[] | null {
  const text = Array.isArray(ifMatch) ? ifMatch.join(",") : ifMatch;
  if (!text) return null;
  const wanted = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("revision_number="))
    .map((s) => Number(s.slice("revision_number=".length)));
  return wanted.length ? wanted : null;
}

function ctxOf(req: FastifyRequest): RequestContext {
  return req.seamContext!;
}

/** `{network: {...}}` or, for bulk, `{networks: [...]}`. */
function unwrapCreate(def: ResourceDef, body: unknown): { items: unknown[]; bulk: boolean } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw badRequest("Resource body required");
  const b = body as Record<string, unknown>;
  if (def.plural in b) {
    const list = b[def.plural];
    if (!Array.isArray(list) || list.length === 0) throw badRequest(`Resources required: '${def.plural}' must be a non-empty list`);
    if (Object.keys(b).length !== 1) throw badRequest(`Unexpected keys beside '${def.plural}'`);
    return { items: list.map((x) => unwrapOne(def, x, true)), bulk: true };
  }
  return { items: [unwrapOne(def, b, false)], bulk: false };
}

function unwrapOne(def: ResourceDef, body: unknown, inBulk: boolean): unknown {
  if (inBulk) {
    // Bulk items may be bare or wrapped, as Neutron accepts both.
    const o = body as Record<string, unknown>;
    return o && typeof o === "object" && def.singular in o && Object.keys(o).length === 1 ? o[def.singular] : body;
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw badRequest("Resource body required");
  const o = body as Record<string, unknown>;
  if (!(def.singular in o)) throw badRequest(`Unable to find '${def.singular}' in request body`);
  if (Object.keys(o).length !== 1) throw badRequest(`Unexpected keys beside '${def.singular}' in request body`);
  return o[def.singular];
}

function pageLinks(req: FastifyRequest, def: ResourceDef, next: string | null, previous: string | null) {
  const url = new URL(req.url, baseUrl(req));
  const links: { rel: string; href: string }[] = [];
  const make = (marker: string, reverse: boolean) => {
    const u = new URL(url.pathname, `${baseUrl(req)}`);
    for (const [k, val] of url.searchParams) if (k !== "marker" && k !== "page_reverse") u.searchParams.append(k, val);
    u.searchParams.set("marker", marker);
    if (reverse) u.searchParams.set("page_reverse", "True");
    return u.toString();
  };
  if (next) links.push({ rel: "next", href: make(next, false) });
  if (previous) links.push({ rel: "previous", href: make(previous, true) });
  return links.length ? { [`${def.plural}_links`]: links } : {};
}

const fieldsOf = (q: Raw) => (q.fields === undefined ? null : (Array.isArray(q.fields) ? q.fields : [q.fields]).flatMap((f) => f.split(",")));

export function registerNeutron(app: FastifyInstance, model: Model, auth: Authenticator): void {
  const versions = (req: FastifyRequest) => ({
    versions: [{ id: "v2.0", status: "CURRENT", links: [{ href: `${baseUrl(req)}/v2.0/`, rel: "self" }] }],
  });
  app.get("/", async (req) => versions(req));

  app.register(async (v2) => {
    v2.addHook("onRequest", async (req, reply) => {
      const ctx = await auth.contextFor(req);
      if (!ctx) {
        return reply
          .code(401)
          .header("WWW-Authenticate", `Keystone uri="${baseUrl(req)}/v3"`)
          .send({ error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
      }
      req.seamContext = ctx;
    });

    const index = async (req: FastifyRequest) => ({
      resources: resources.map((r) => ({ name: r.singular, collection: r.plural, links: [{ href: `${baseUrl(req)}/v2.0/${r.path}`, rel: "self" }] })),
    });
    v2.get("/v2.0", index);

    v2.get("/v2.0/extensions", async () => ({ extensions: EXTENSIONS.map(extensionView) }));
    v2.get<{ Params: Params }>("/v2.0/extensions/:id", async (req) => {
      const e = EXTENSIONS.find((x) => x.alias === req.params.id);
      if (!e) throw notFound("ExtensionNotFound", `Extension with alias ${req.params.id} does not exist`);
      return { extension: extensionView(e) };
    });

    // ---- quotas ---------------------------------------------------------------
    v2.get("/v2.0/quotas", async (req) => ({
      quotas: (await quotas.list(model, ctxOf(req))).map(({ project, limits }) => ({ ...limits, project_id: project, tenant_id: project })),
    }));
    v2.get<{ Params: Params }>("/v2.0/quotas/:project", async (req) => ({ quota: await quotas.get(model, ctxOf(req), req.params.project) }));
    v2.get<{ Params: Params }>("/v2.0/quotas/:project/default", async (req) => ({ quota: quotas.defaults(model, ctxOf(req), req.params.project) }));
    v2.get<{ Params: Params }>("/v2.0/quotas/:project/details", async (req) => ({ quota: await quotas.details(model, ctxOf(req), req.params.project) }));
    v2.put<{ Params: Params }>("/v2.0/quotas/:project", async (req) => ({
      quota: await quotas.set(model, ctxOf(req), req.params.project, (req.body as Record<string, unknown> | undefined)?.quota),
    }));
    v2.delete<{ Params: Params }>("/v2.0/quotas/:project", async (req, reply) => {
      await quotas.reset(model, ctxOf(req), req.params.project);
      return reply.code(204).send();
    });

    // ---- router and trunk actions ------------------------------------------------
    v2.put<{ Params: Params }>("/v2.0/routers/:id/:action", async (req) => {
      const action = req.params.action;
      if (action === "add_router_interface") return addRouterInterface(model, ctxOf(req), req.params.id, req.body ?? {});
      if (action === "remove_router_interface") return removeRouterInterface(model, ctxOf(req), req.params.id, req.body ?? {});
      if (action === "tags") return putTags(req);
      throw notFound("HTTPNotFound", "The resource could not be found.");
    });
    v2.put<{ Params: Params }>("/v2.0/trunks/:id/:action", async (req) => {
      const action = req.params.action;
      if (action === "add_subports" || action === "remove_subports") {
        return changeSubports(model, ctxOf(req), req.params.id, req.body ?? {}, action === "add_subports" ? "add" : "remove");
      }
      if (action === "tags") return putTags(req);
      throw notFound("HTTPNotFound", "The resource could not be found.");
    });
    // Which agent runs a router (l3_agent_scheduler): the first network host, as the compiler places it.
    v2.get<{ Params: Params }>("/v2.0/routers/:id/l3-agents", async (req) => {
      const ctx = ctxOf(req);
      if (!ctx.isAdmin) throw policyDenied("get_l3-agents");
      await model.show(ctx, "router", req.params.id);
      return { agents: servingAgents(await model.find(ctx, "agent", {})) };
    });
    // Which agent serves a network's DHCP and DNS (dhcp_agent_scheduler): the same host, while the network has DHCP.
    v2.get<{ Params: Params }>("/v2.0/networks/:id/dhcp-agents", async (req) => {
      const ctx = ctxOf(req);
      if (!ctx.isAdmin) throw policyDenied("get_dhcp-agents");
      await model.show(ctx, "network", req.params.id);
      const dhcp = await model.find(ctx, "port", { network_id: req.params.id, device_owner: OWNER.dhcp });
      return { agents: dhcp.length ? servingAgents(await model.find(ctx, "agent", {})) : [] };
    });
    v2.get<{ Params: Params }>("/v2.0/trunks/:id/get_subports", async (req) => {
      const trunk = await model.show(ctxOf(req), "trunk", req.params.id);
      return { sub_ports: trunk.sub_ports };
    });

    // ---- tags (standard-attr-tag) --------------------------------------------------
    const taggable = (collection: string) => {
      const def = defFor(model, collection);
      if (!def.taggable) throw notFound("HTTPNotFound", "The resource could not be found.");
      return def.singular;
    };
    async function putTags(req: FastifyRequest<{ Params: Params }>) {
      const path = taggable(req.params.collection ?? req.routeOptions.url!.split("/")[2]!);
      const tags = (req.body as Record<string, unknown> | undefined)?.tags;
      if (!Array.isArray(tags)) throw badRequest("Invalid input for tags. Reason: a body {\"tags\": [...]} is required.");
      return { tags: await model.setTags(ctxOf(req), path, req.params.id, () => tags as string[]) };
    }
    v2.get<{ Params: Params }>("/v2.0/:collection/:id/tags", async (req) => ({ tags: await model.tags(ctxOf(req), taggable(req.params.collection), req.params.id) }));
    v2.put<{ Params: Params }>("/v2.0/:collection/:id/tags", async (req) => putTags(req));
    v2.delete<{ Params: Params }>("/v2.0/:collection/:id/tags", async (req, reply) => {
      await model.setTags(ctxOf(req), taggable(req.params.collection), req.params.id, () => []);
      return reply.code(204).send();
    });
    v2.get<{ Params: Params }>("/v2.0/:collection/:id/tags/:tag", async (req, reply) => {
      const tags = await model.tags(ctxOf(req), taggable(req.params.collection), req.params.id);
      if (!tags.includes(req.params.tag)) throw notFound("TagNotFound", `Tag ${req.params.tag} could not be found for ${req.params.collection} ${req.params.id}.`);
      return reply.code(204).send();
    });
    v2.put<{ Params: Params }>("/v2.0/:collection/:id/tags/:tag", async (req, reply) => {
      await model.setTags(ctxOf(req), taggable(req.params.collection), req.params.id, (t) => [...t, req.params.tag]);
      return reply.code(201).send();
    });
    v2.delete<{ Params: Params }>("/v2.0/:collection/:id/tags/:tag", async (req, reply) => {
      await model.setTags(ctxOf(req), taggable(req.params.collection), req.params.id, (t) => {
        if (!t.includes(req.params.tag)) throw notFound("TagNotFound", `Tag ${req.params.tag} could not be found for ${req.params.collection} ${req.params.id}.`);
        return t.filter((x) => x !== req.params.tag);
      });
      return reply.code(204).send();
    });

    // ---- collections -----------------------------------------------------------------
    v2.get<{ Params: Params; Querystring: Raw }>("/v2.0/:collection", async (req) => {
      const def = defFor(model, req.params.collection);
      const query = parseListQuery(def, req.query);
      const page = await model.list(ctxOf(req), def.singular, query);
      return { [def.plural]: page.items.map((x) => selectFields(x, query.fields)), ...pageLinks(req, def, page.next, page.previous) };
    });
    v2.post<{ Params: Params }>("/v2.0/:collection", async (req, reply) => {
      const def = defFor(model, req.params.collection);
      const { items, bulk } = unwrapCreate(def, req.body);
      const created = await model.create(ctxOf(req), def.singular, items);
      return reply.code(201).send(bulk ? { [def.plural]: created } : { [def.singular]: created[0] });
    });
    v2.get<{ Params: Params; Querystring: Raw }>("/v2.0/:collection/:id", async (req) => {
      const def = defFor(model, req.params.collection);
      return { [def.singular]: selectFields(await model.show(ctxOf(req), def.singular, req.params.id), fieldsOf(req.query)) };
    });
    v2.put<{ Params: Params }>("/v2.0/:collection/:id", async (req) => {
      const def = defFor(model, req.params.collection);
      const body = unwrapOne(def, req.body ?? {}, false);
      return { [def.singular]: await model.update(ctxOf(req), def.singular, req.params.id, body, expectedRevisions(req.headers["if-match"])) };
    });
    v2.delete<{ Params: Params }>("/v2.0/:collection/:id", async (req, reply) => {
      const def = defFor(model, req.params.collection);
      await model.remove(ctxOf(req), def.singular, req.params.id, expectedRevisions(req.headers["if-match"]));
      return reply.code(204).send();
    });
  });
}
