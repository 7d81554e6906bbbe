// The logical model's single entry point for every front door. Generic flows
// (policy, If-Match, bulk atomicity, tags, list queries, the change log) live
// here; what is particular to a resource lives in its kind module.
import { conflict, NeutronError, notFound, policyDenied, resourceNotFound } from "../errors.ts";
import { adminContext, type RequestContext } from "../model/context.ts";
import { type ListQuery, type Page, parseListQuery } from "../model/query.ts";
import { present, prepareCreate, prepareUpdate, type ResourceDef } from "../model/attributes.ts";
import * as v from "../model/validate.ts";
import type { Db, Dialect, Queryable, Tx } from "../store/db.ts";
import { runList } from "./list.ts";
import type { Sql } from "./list-sql.ts";
import { type Rec, findRecs, getRec, updateRec } from "./repo.ts";
import { asNeutronError } from "./violations.ts";

export type View = Record<string, unknown>;

export interface ModelConfig {
  /** tenant network type for networks created without provider attributes */
  readonly tenantNetworkType: "vxlan" | "local";
  readonly vniRange: readonly [number, number];
  /** physnet -> VLAN range; empty: VLAN networks are refused (no 802.1Q on this kernel) */
  readonly vlanRanges: Readonly<Record<string, readonly [number, number]>>;
  /** physnets allowed for flat networks, or "*" */
  readonly flatNetworks: readonly string[] | "*";
  readonly physnetMtu: number;
  readonly dnsDomain: string;
  /** an agent without a heartbeat for this long is not alive (Neutron's agent_down_time) */
  readonly agentDownTimeSec: number;
  /** `distributed` for routers created without it (Neutron's router_distributed) */
  readonly distributedRouters: boolean;
  readonly quotas: Readonly<Record<string, number>>;
  /** how long a pod's CNI ADD that names no network waits for the Kubernetes controller's port */
  readonly podPortWaitSec: number;
}

export const defaultConfig: ModelConfig = {
  tenantNetworkType: "vxlan",
  vniRange: [1001, 16_000_000],
  vlanRanges: {},
  flatNetworks: "*",
  physnetMtu: 1500,
  dnsDomain: "openstacklocal.",
  agentDownTimeSec: 75,
  distributedRouters: false,
  quotas: { network: -1, subnet: -1, port: -1, router: -1, floatingip: -1, security_group: -1, security_group_rule: -1, trunk: -1, rbac_policy: 10 },
  podPortWaitSec: 10,
};

export interface Kind {
  readonly def: ResourceDef;
  /** the rows the caller may see, as a condition on the kind's table (undefined: all of them; null: none) */
  scope(ctx: RequestContext): Sql | undefined | null;
  /** list narrowings only the kind can write, on its derived attributes (list-sql.ts: they may only narrow) */
  narrow?(query: ListQuery, dialect: Dialect, ctx: RequestContext): Sql[];
  /** attributes whose column does not mean what the caller sees (narrow decides them, or memory does) */
  readonly ownFilters?: ReadonlySet<string>;
  /** the full views of records, with derived attributes: the same for every caller, as the change log carries them */
  hydrate(m: Model, q: Queryable, recs: Rec[]): Promise<View[]>;
  /** what differs per caller (`shared`: shared with the caller's project), as new objects: the logged views stay as they are */
  forCaller?(m: Model, q: Queryable, views: View[], ctx: RequestContext): Promise<View[]>;
  canSee(m: Model, q: Queryable, rec: Rec, ctx: RequestContext): Promise<boolean>;
  /** returns the record as it is stored at that point (it is logged from that, not read again) */
  create?(m: Model, tx: Tx, ctx: RequestContext, input: Record<string, unknown>): Promise<Rec>;
  update?(m: Model, tx: Tx, ctx: RequestContext, rec: Rec, input: Record<string, unknown>): Promise<Rec>;
  remove?(m: Model, tx: Tx, ctx: RequestContext, rec: Rec): Promise<void>;
  /** what a revision bump (touch) logs, where less than the full view will do */
  bumped?(m: Model, q: Queryable, rec: Rec): Promise<View>;
  /** runs before a list of this kind (Neutron makes a project's default group when it first lists groups) */
  beforeList?(m: Model, ctx: RequestContext): Promise<void>;
}

/** A page of a list, as query.ts defines it (list.ts cuts it in SQL). */
export type ListResult = Page;

export interface ModelHooks {
  ensureDefaultSecurityGroup(tx: Tx, projectId: string): Promise<string>;
  deletePort(tx: Tx, rec: Rec): Promise<void>;
}

export class Model {
  private readonly kinds = new Map<string, Kind>();
  /** Cross-kind operations, wired in service/index.ts (kinds never import each other in cycles). */
  readonly hooks: ModelHooks = {
    ensureDefaultSecurityGroup: () => Promise.reject(new Error("not wired")),
    deletePort: () => Promise.reject(new Error("not wired")),
  };

  ensureDefaultSecurityGroup(tx: Tx, projectId: string): Promise<string> {
    return this.hooks.ensureDefaultSecurityGroup(tx, projectId);
  }

  constructor(
    readonly db: Db,
    readonly config: ModelConfig = defaultConfig,
  ) {}

  register(kind: Kind): void {
    this.kinds.set(kind.def.singular, kind);
  }

  /** A resource kind by its singular name (`port`, `security_group`). */
  kindOf(singular: string): Kind {
    const k = this.kinds.get(singular);
    if (!k) throw notFound("HTTPNotFound", "The resource could not be found.");
    return k;
  }

  hasKind(singular: string): boolean {
    return this.kinds.has(singular);
  }

  // ---- reads -------------------------------------------------------------

  /** A page of what the caller may see, filtered and sorted as `query` says (fields are the door's business). */
  async list(ctx: RequestContext, singular: string, query: ListQuery): Promise<ListResult> {
    const kind = this.kindOf(singular);
    await kind.beforeList?.(this, ctx);
    return this.db.read((q) => runList(q, this.db.dialect, kind, (qq, recs) => this.viewsFor(qq, kind, recs, ctx), ctx, query));
  }

  /** Every match of simple attribute filters (`{network_id: id, tags: t}`), for callers inside the core. */
  async find(ctx: RequestContext, singular: string, filters: Readonly<Record<string, string>>): Promise<View[]> {
    return (await this.list(ctx, singular, parseListQuery(this.kindOf(singular).def, filters))).items;
  }

  async show(ctx: RequestContext, singular: string, id: string): Promise<View> {
    const kind = this.kindOf(singular);
    return this.db.read(async (q) => {
      const rec = await this.visible(q, kind, ctx, id);
      const [view] = await this.viewsFor(q, kind, [rec], ctx);
      return present(kind.def, view!, ctx);
    });
  }

  /** The views of records as the caller sees them, before `present` hides what it may not see. */
  private async viewsFor(q: Queryable, kind: Kind, recs: Rec[], ctx: RequestContext): Promise<View[]> {
    return this.personal(q, kind, await kind.hydrate(this, q, recs), ctx);
  }

  private async personal(q: Queryable, kind: Kind, views: View[], ctx: RequestContext): Promise<View[]> {
    return kind.forCaller ? kind.forCaller(this, q, views, ctx) : views;
  }

  /** Every record of a kind as its admin view, as the change log carries it (for followers that load, then follow). */
  async adminViews(q: Queryable, singular: string): Promise<View[]> {
    const kind = this.kindOf(singular);
    return kind.hydrate(this, q, await findRecs(q, kind.def.table));
  }

  /** A record the caller may see, or the kind's NotFound (never 403: existence is not leaked). */
  async visible(q: Queryable, kind: Kind, ctx: RequestContext, id: string): Promise<Rec> {
    const rec = typeof id === "string" && id.length <= 64 ? await getRec(q, kind.def.table, id) : undefined;
    if (!rec || !(await kind.canSee(this, q, rec, ctx))) throw resourceNotFound(kind.def.singular, id);
    return rec;
  }

  // ---- writes ------------------------------------------------------------

  /**
   * One transaction of the model. A constraint the database refused (a race
   * lost: see violations.ts) comes out as the NeutronError it means.
   */
  async write<T>(fn: (tx: Tx) => Promise<T>): Promise<{ value: T; revision: number }> {
    try {
      return await this.db.write(fn);
    } catch (err) {
      throw asNeutronError(err);
    }
  }

  /**
   * An object a write depends on, read under its lock: every write to an
   * object takes the same lock (writable below), so what is read here stays
   * true until this transaction commits, on PostgreSQL as on SQLite. A shared
   * hold lets writes that only depend on the object run side by side.
   */
  async referenced(tx: Tx, kind: Kind, ctx: RequestContext, id: string, mode: "exclusive" | "shared" = "exclusive"): Promise<Rec> {
    if (typeof id === "string" && id.length <= 64) await tx.lock(lockScope(kind, id), mode);
    return this.visible(tx, kind, ctx, id);
  }

  /** Creates one or many (bulk) resources in one transaction: all or nothing. */
  async create(ctx: RequestContext, singular: string, bodies: readonly unknown[]): Promise<View[]> {
    const kind = this.kindOf(singular);
    if (!kind.create) throw new NeutronError(405, "HTTPMethodNotAllowed", "The method is not allowed for the requested URL.");
    if (!ctx.canWrite) throw policyDenied(`create_${kind.def.singular}`);
    const inputs = bodies.map((b) => prepareCreate(kind.def, b, ctx));
    const { value } = await this.write(async (tx) => {
      const out: View[] = [];
      for (const input of inputs) {
        await this.checkQuota(tx, kind.def, input.project_id as string);
        const rec = await kind.create!(this, tx, ctx, input);
        out.push(await this.emitRec(tx, kind, rec, "create"));
      }
      return this.personal(tx, kind, out, ctx);
    });
    return value.map((view) => present(kind.def, view, ctx));
  }

  /** `expected`: the revisions the caller requires the resource to be at (If-Match), null for any. */
  async update(ctx: RequestContext, singular: string, id: string, body: unknown, expected: readonly number[] | null = null): Promise<View> {
    const kind = this.kindOf(singular);
    if (!kind.update) throw new NeutronError(405, "HTTPMethodNotAllowed", "The method is not allowed for the requested URL.");
    const input = prepareUpdate(kind.def, body, ctx);
    const { value } = await this.write(async (tx) => {
      const rec = await this.writable(tx, kind, ctx, id, "update");
      checkRevision(rec, expected);
      await kind.update!(this, tx, ctx, rec, input);
      return (await this.personal(tx, kind, [await this.emit(tx, kind, id, "update")], ctx))[0]!;
    });
    return present(kind.def, value, ctx);
  }

  async remove(ctx: RequestContext, singular: string, id: string, expected: readonly number[] | null = null): Promise<void> {
    const kind = this.kindOf(singular);
    if (!kind.remove) throw new NeutronError(405, "HTTPMethodNotAllowed", "The method is not allowed for the requested URL.");
    await this.write(async (tx) => {
      const rec = await this.writable(tx, kind, ctx, id, "delete");
      checkRevision(rec, expected);
      await kind.remove!(this, tx, ctx, rec);
      this.deleted(tx, kind, rec);
    });
  }

  /** Visible and the caller's to change (its project's, or any for admin). */
  async writable(tx: Tx, kind: Kind, ctx: RequestContext, id: string, action: string): Promise<Rec> {
    const rec = await this.referenced(tx, kind, ctx, id);
    if (!ctx.canWrite || (!ctx.isAdmin && rec.project_id !== ctx.projectId)) throw policyDenied(`${action}_${kind.def.singular}`);
    return rec;
  }

  /** Queues the change-log entry for a created or updated resource; returns its admin view. */
  async emit(tx: Tx, kind: Kind, id: string, op: "create" | "update"): Promise<View> {
    return this.emitRec(tx, kind, (await getRec(tx, kind.def.table, id))!, op);
  }

  /** emit() for a record the caller holds as stored (no read of it again). */
  async emitRec(tx: Tx, kind: Kind, rec: Rec, op: "create" | "update"): Promise<View> {
    const [view] = await kind.hydrate(this, tx, [rec]);
    tx.change({ kind: kind.def.singular, id: rec.id, op, projectId: rec.project_id, object: view });
    return view!;
  }

  deleted(tx: Tx, kind: Kind, rec: Rec): void {
    tx.change({ kind: kind.def.singular, id: rec.id, op: "delete", projectId: rec.project_id, object: null });
  }

  /**
   * Bumps a resource's revision (a derived attribute of it changed) and logs
   * it, once per transaction: a bulk of 1,000 rules bumps their group once.
   */
  async touch(tx: Tx, singular: string, id: string): Promise<void> {
    tx.beforeCommit(`touch:${singular}:${id}`, async () => {
      const kind = this.kindOf(singular);
      const rec = await getRec(tx, kind.def.table, id);
      if (!rec) return;
      const next = await updateRec(tx, kind.def.table, rec);
      if (!kind.bumped) await this.emitRec(tx, kind, next, "update");
      else tx.change({ kind: kind.def.singular, id, op: "update", projectId: next.project_id, object: await kind.bumped(this, tx, next) });
    });
  }

  // ---- tags (standard-attr-tag) -----------------------------------------

  async tags(ctx: RequestContext, singular: string, id: string): Promise<string[]> {
    const view = await this.show(ctx, singular, id);
    return (view.tags as string[]) ?? [];
  }

  async setTags(ctx: RequestContext, singular: string, id: string, change: (tags: string[]) => string[]): Promise<string[]> {
    const kind = this.kindOf(singular);
    if (!kind.def.taggable) throw notFound("HTTPNotFound", "The resource could not be found.");
    const { value } = await this.write(async (tx) => {
      const rec = await this.writable(tx, kind, ctx, id, "update");
      const tags = change([...((rec.tags as string[]) ?? [])]);
      const checked = v.list(v.tag, false)(tags, "tags") as string[];
      const unique = [...new Set(checked)];
      await updateRec(tx, kind.def.table, { ...rec, tags: unique });
      await this.emit(tx, kind, id, "update");
      return unique;
    });
    return value;
  }

  // ---- quotas -------------------------------------------------------------

  async quotaFor(q: Queryable, projectId: string): Promise<Record<string, number>> {
    const rows = await q.all<{ resource: string; hard_limit: number }>("SELECT resource, hard_limit FROM quotas WHERE project_id = ?", [projectId]);
    const out = { ...this.config.quotas };
    for (const r of rows) out[r.resource] = Number(r.hard_limit);
    return out;
  }

  private async checkQuota(tx: Tx, def: ResourceDef, projectId: string): Promise<void> {
    const limit = (await this.quotaFor(tx, projectId))[def.singular];
    if (limit === undefined || limit < 0) return;
    // Counted under the lock every create of this kind in this project takes, so the count holds at commit.
    await tx.lock(`quota:${def.singular}:${projectId}`);
    const used = await tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${def.table} WHERE project_id = ?`, [projectId]);
    if (Number(used?.n ?? 0) >= limit) {
      throw conflict("OverQuota", `Quota exceeded for resources: ['${def.singular}'].`);
    }
  }

  /** Every query runs as admin inside the model when it needs to see across projects. */
  readonly system = adminContext();
}

/** The lock every write to an object takes (a network's is also its IPAM's: ports.ts). */
export const lockScope = (kind: Kind, id: string) => `${kind.def.singular}:${id}`;

/** revision-if-match: 412 when the resource moved on from the revisions the caller expects. */
export function checkRevision(rec: Rec, expected: readonly number[] | null): void {
  if (!expected || expected.length === 0) return;
  if (!expected.includes(rec.revision_number)) {
    throw new NeutronError(
      412,
      "RevisionNumberConstraintFailed",
      `Constrained to ${expected.join(", ")}, but current revision is ${rec.revision_number}`,
    );
  }
}
