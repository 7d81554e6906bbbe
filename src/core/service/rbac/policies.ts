// RBAC policies (Neutron's rbac-policies): the owner of a network or a
// security group shares it with one project, or an admin with everyone ("*"),
// as shared (use it: ports on the network, the group on ports and as a remote
// group) or, for a network, as external (gateways and floating IPs on it). An
// entry that a project's ports, gateways or rules still depend on cannot go,
// nor move to another project. What an entry grants is read in access.ts.
import { badRequest, conflict, type NeutronError, policyDenied } from "../../errors.ts";
import type { RequestContext } from "../../model/context.ts";
import { RBAC_ACTIONS, rbacPolicy as def } from "../../model/resources.ts";
import type { Tx } from "../../store/db.ts";
import { isUniqueViolation } from "../../store/db.ts";
import { canSeeOwn, scopeOwn } from "../common.ts";
import type { Kind, Model } from "../model.ts";
import { deleteRec, getRec, insertRec, newRec, type Rec, updateRec } from "../repo.ts";
import { dependents, type Entry, EVERYONE, EXTERNAL, type ObjectType, policyView, SHARED, syncNetworkShared } from "./access.ts";

const duplicate = () => conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those values.");

const inUse = (objectId: string, projects: readonly string[]): NeutronError =>
  conflict("RbacPolicyInUse", `RBAC policy on object ${objectId} cannot be removed because other objects depend on it.\nDetails: project_id=${projects.join(", ")}`);

/**
 * The object an entry names, under its lock (exclusive where the entry's going
 * could strand what the object's users hold; shared to add one). The caller
 * must see it (or it does not exist for them) and own it (Neutron: 400).
 */
async function sharedObject(m: Model, tx: Tx, ctx: RequestContext, type: ObjectType, id: string, mode: "exclusive" | "shared"): Promise<Rec> {
  const obj = await m.referenced(tx, m.kindOf(type), ctx, id, mode);
  if (!ctx.isAdmin && obj.project_id !== ctx.projectId) throw badRequest("Only admins can manipulate policies on objects they do not own.", "InvalidInput");
  return obj;
}

/** What an entry changes on its object: a network's mirrors of its entries, and its revision (Neutron bumps it). */
async function objectChanged(m: Model, tx: Tx, type: ObjectType, objectId: string, action: string, added: boolean): Promise<void> {
  if (type === "network" && action === SHARED) await syncNetworkShared(tx, objectId);
  // Sharing a network as external makes it one (Neutron); the last entry's going leaves it external, to its owner.
  if (type === "network" && action === EXTERNAL && added) await tx.run("UPDATE networks SET external = 1 WHERE id = ?", [objectId]);
  await m.touch(tx, type, objectId);
}

const entryOf = (rec: Rec): Entry => ({ object_type: rec.object_type as ObjectType, object_id: rec.object_id as string, action: rec.action as string, target_tenant: rec.target_tenant as string });

export const rbacPolicies: Kind = {
  def,
  // An entry is its creator's: the project it shares with does not see it (Neutron's get_rbac_policy).
  scope: scopeOwn,
  canSee: canSeeOwn,

  async hydrate(_m, _q, recs) {
    return recs.map(policyView);
  },

  async create(m, tx, ctx, input) {
    const type = input.object_type as ObjectType;
    const action = input.action as string;
    const allowed = RBAC_ACTIONS[type]!;
    if (!allowed.includes(action)) {
      throw badRequest(`Invalid action '${action}' for object type '${type}'. Valid actions: ${allowed.join(", ")}.`, "InvalidActionForType");
    }
    if (input.target_tenant === EVERYONE && !ctx.isAdmin) throw policyDenied("create_rbac_policy:target_tenant");
    const obj = await sharedObject(m, tx, ctx, type, input.object_id as string, "shared");
    const rec = newRec({ object_type: type, object_id: obj.id, action, target_tenant: input.target_tenant }, { project_id: input.project_id, name: "" });
    try {
      await insertRec(tx, def.table, rec);
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate();
      throw err;
    }
    await objectChanged(m, tx, type, obj.id, action, true);
    return rec;
  },

  async update(m, tx, ctx, rec, input) {
    const target = input.target_tenant as string | undefined;
    const entry = entryOf(rec);
    if (target === undefined || target === entry.target_tenant) return rec;
    if (target === EVERYONE && !ctx.isAdmin) throw policyDenied("update_rbac_policy:target_tenant");
    const obj = await sharedObject(m, tx, ctx, entry.object_type, entry.object_id, "exclusive");
    const lost = await dependents(tx, entry, obj.project_id, target);
    if (lost.length) throw inUse(obj.id, lost);
    let next: Rec;
    try {
      next = await updateRec(tx, def.table, { ...rec, target_tenant: target });
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate();
      throw err;
    }
    await objectChanged(m, tx, entry.object_type, obj.id, entry.action, true);
    return next;
  },

  async remove(m, tx, _ctx, rec) {
    const entry = entryOf(rec);
    await tx.lock(`${entry.object_type}:${entry.object_id}`);
    const obj = await getRec(tx, m.kindOf(entry.object_type).def.table, entry.object_id);
    if (obj) {
      const lost = await dependents(tx, entry, obj.project_id);
      if (lost.length) throw inUse(obj.id, lost);
    }
    await deleteRec(tx, def.table, rec.id);
    if (obj) await objectChanged(m, tx, entry.object_type, obj.id, entry.action, false);
  },
};
