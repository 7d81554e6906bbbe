// What an attribute map means for a request: a create or update body checked
// and converted against it, who may set what, and the view a caller may see.
// The maps themselves are resources.ts (Neutron's) and seam-resources.ts.
import { badRequest, NeutronError, policyDenied } from "../errors.ts";
import type { RequestContext } from "./context.ts";
import * as v from "./validate.ts";

export interface Attr {
  readonly convert?: v.Converter;
  readonly post?: boolean;
  readonly put?: boolean;
  readonly required?: boolean;
  /** applied on create when absent; a function is called per request */
  readonly default?: unknown;
  /** only an admin may set it (Neutron's policy defaults) */
  readonly adminSet?: boolean;
  /** only an admin sees it */
  readonly adminView?: boolean;
  /** how a query-string value is compared: scalar (default), list membership, or not at all */
  readonly filter?: "scalar" | "contains" | "none";
  readonly sort?: boolean;
  /** kind of value for filter conversion */
  readonly kind?: "string" | "bool" | "int";
}

export interface ResourceDef {
  readonly singular: string;
  readonly plural: string;
  /** URL segment (`security-groups`) */
  readonly path: string;
  readonly table: string;
  readonly attrs: Readonly<Record<string, Attr>>;
  readonly taggable: boolean;
}

/** Attributes a create request may carry, converted, with defaults filled in. */
export function prepareCreate(def: ResourceDef, body: unknown, ctx: RequestContext): Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest(`Invalid input for ${def.singular}. Reason: body is not an object.`);
  }
  const input = body as Record<string, unknown>;
  const unknown = Object.keys(input).filter((k) => !(k in def.attrs));
  if (unknown.length) throw badRequest(`Unrecognized attribute(s) '${unknown.join(", ")}'`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const attr = def.attrs[key]!;
    if (!attr.post) throw badRequest(`Attribute '${key}' not allowed in POST`);
    out[key] = attr.convert ? attr.convert(value, key) : value;
    if (attr.adminSet && !ctx.isAdmin && !isHarmlessDefault(attr, out[key])) throw policyDenied(`create_${def.singular}:${key}`);
  }
  for (const [key, attr] of Object.entries(def.attrs)) {
    if (attr.required && !(key in out)) {
      throw badRequest(`Failed to parse request. Required attribute '${key}' not specified`);
    }
    if (!(key in out) && attr.default !== undefined) out[key] = structuredClone(attr.default);
  }
  out.project_id = ownerProject(out, ctx);
  delete out.tenant_id;
  return out;
}

/** A member sending an admin-only attribute with its default value (as CLIs do) is not an escalation. */
function isHarmlessDefault(attr: Attr, value: unknown): boolean {
  return attr.default !== undefined && JSON.stringify(attr.default) === JSON.stringify(value);
}

export function ownerProject(input: Record<string, unknown>, ctx: RequestContext): string {
  const p = input.project_id as string | undefined;
  const t = input.tenant_id as string | undefined;
  if (p !== undefined && t !== undefined && p !== t) {
    throw badRequest("'project_id' and 'tenant_id' do not match");
  }
  const requested = p ?? t;
  if (requested === undefined || requested === ctx.projectId) return ctx.projectId;
  if (!ctx.isAdmin) {
    throw new NeutronError(
      400,
      "HTTPBadRequest",
      "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
    );
  }
  return requested;
}

/** Attributes an update request may carry, converted. */
export function prepareUpdate(def: ResourceDef, body: unknown, ctx: RequestContext): Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest(`Invalid input for ${def.singular}. Reason: body is not an object.`);
  }
  const input = body as Record<string, unknown>;
  const unknown = Object.keys(input).filter((k) => !(k in def.attrs));
  if (unknown.length) throw badRequest(`Unrecognized attribute(s) '${unknown.join(", ")}'`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const attr = def.attrs[key]!;
    if (!attr.put) throw badRequest(`Cannot update read-only attribute ${key}`);
    out[key] = attr.convert ? attr.convert(value, key) : value;
    if (attr.adminSet && !ctx.isAdmin) throw policyDenied(`update_${def.singular}:${key}`);
  }
  return out;
}

const adminOnly = new WeakMap<ResourceDef, ReadonlySet<string>>();

/** The attributes only an admin sees, once per definition (present runs for every view of a list). */
function adminOnlyOf(def: ResourceDef): ReadonlySet<string> {
  let keys = adminOnly.get(def);
  if (!keys) {
    keys = new Set(Object.entries(def.attrs).filter(([, a]) => a.adminView).map(([k]) => k));
    adminOnly.set(def, keys);
  }
  return keys;
}

/** The view a caller may see: admin-only attributes removed for others, `tenant_id` mirrored. */
export function present(def: ResourceDef, view: Record<string, unknown>, ctx: RequestContext): Record<string, unknown> {
  let out: Record<string, unknown>;
  if (ctx.isAdmin) out = { ...view };
  else {
    // built key by key rather than copied and deleted from: a deleted key slows every later use of the object
    const hidden = adminOnlyOf(def);
    out = {};
    for (const key in view) if (!hidden.has(key)) out[key] = view[key];
  }
  if ("project_id" in view) out.tenant_id = view.project_id;
  return out;
}

export function checkFilterValue(def: ResourceDef, key: string, value: string): unknown {
  const attr = def.attrs[key]!;
  if (attr.kind === "bool") return v.boolean(value, key);
  if (attr.kind === "int") {
    if (value === "" || value === "None") return null;
    return v.integer()(value, key);
  }
  return value;
}
