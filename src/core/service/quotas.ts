// Quotas: per-project limits on how many of each resource a project may hold
// (Neutron's quotas extension). The limits' defaults are the model's config;
// a project's own limits override them. Creates check them (Model.create).
import { badRequest, NeutronError, policyDenied } from "../errors.ts";
import type { RequestContext } from "../model/context.ts";
import { resources } from "../model/resources.ts";
import * as v from "../model/validate.ts";
import type { Model } from "./model.ts";

export type Limits = Record<string, number>;

/** resource singular -> its table, for the resources that have a quota */
const TABLES: Readonly<Record<string, string>> = Object.fromEntries(resources.map((r) => [r.singular, r.table]));

function mayRead(ctx: RequestContext, project: string): void {
  if (!ctx.isAdmin && ctx.projectId !== project) throw new NeutronError(403, "HTTPForbidden", "Non-admin is not authorised to access quotas for another project");
}

export const quotas = {
  /** Every project with limits of its own (admin). */
  async list(m: Model, ctx: RequestContext): Promise<{ project: string; limits: Limits }[]> {
    if (!ctx.isAdmin) throw policyDenied("get_quota");
    return m.db.read(async (q) => {
      const projects = await q.all<{ project_id: string }>("SELECT DISTINCT project_id FROM quotas");
      const out = [];
      for (const p of projects) out.push({ project: p.project_id, limits: await m.quotaFor(q, p.project_id) });
      return out;
    });
  },

  async get(m: Model, ctx: RequestContext, project: string): Promise<Limits> {
    mayRead(ctx, project);
    return m.db.read((q) => m.quotaFor(q, project));
  },

  defaults(m: Model, ctx: RequestContext, project: string): Limits {
    mayRead(ctx, project);
    return { ...m.config.quotas };
  },

  /** Limits with what the project uses of each. */
  async details(m: Model, ctx: RequestContext, project: string): Promise<Record<string, { limit: number; used: number; reserved: number }>> {
    mayRead(ctx, project);
    return m.db.read(async (q) => {
      const out: Record<string, { limit: number; used: number; reserved: number }> = {};
      for (const [res, limit] of Object.entries(await m.quotaFor(q, project))) {
        const table = TABLES[res];
        const used = table ? await q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE project_id = ?`, [project]) : undefined;
        out[res] = { limit, used: Number(used?.n ?? 0), reserved: 0 };
      }
      return out;
    });
  },

  /** Sets some of a project's limits (admin); -1 is unlimited. */
  async set(m: Model, ctx: RequestContext, project: string, input: unknown): Promise<Limits> {
    if (!ctx.isAdmin) throw policyDenied("update_quota");
    if (!input || typeof input !== "object" || Array.isArray(input)) throw badRequest("Unable to find 'quota' in request body");
    const known = Object.keys(m.config.quotas);
    const updates = Object.entries(input as Record<string, unknown>).map(([k, val]) => {
      if (!known.includes(k)) throw badRequest(`Unrecognized attribute(s) '${k}'`);
      // -1 is unlimited; the stores keep limits as 32-bit integers, as Neutron's does
      return [k, v.integer(-1, 2 ** 31 - 1)(val, k) as number] as const;
    });
    await m.write(async (tx) => {
      for (const [k, limit] of updates) {
        await tx.run(
          "INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?) ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
          [project, k, limit],
        );
      }
    });
    return m.db.read((q) => m.quotaFor(q, project));
  },

  /** Back to the defaults (admin). */
  async reset(m: Model, ctx: RequestContext, project: string): Promise<void> {
    if (!ctx.isAdmin) throw policyDenied("delete_quota");
    await m.write((tx) => tx.run("DELETE FROM quotas WHERE project_id = ?", [project]));
  },
};
