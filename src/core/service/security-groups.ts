// Security groups and rules, one model for VMs and pods. Every project gets a
// `default` group on first need, with Neutron's four rules (egress anywhere,
// ingress from members of the same group, for IPv4 and IPv6).
import { badRequest, conflict, resourceNotFound } from "../errors.ts";
import { parseCidr } from "../../net/address.ts";
import type { RequestContext } from "../model/context.ts";
import { securityGroup as def, securityGroupRule as ruleDef } from "../model/resources.ts";
import type { Queryable, Tx } from "../store/db.ts";
import { isUniqueViolation } from "../store/db.ts";
import { canSeeOwn, groupBy, isOwner, scopeOwn, rowsFor, standardTail } from "./common.ts";
import type { Kind, Model, View } from "./model.ts";
import { entriesFor, EVERYONE, isSharedWith, ownOrShared, revoke, SHARED, sharedToCaller } from "./rbac/access.ts";
import { deleteRec, findRecs, fromRow, getRec, insertRec, newRec, type Rec, updateRec } from "./repo.ts";
import { ICMP_PROTOCOLS, PORT_PROTOCOLS, PROTOCOL_NUMBERS } from "../../net/protocols.ts";

/** Canonical protocol (a name stays a name, "any" is null) and its number for checks. */
function normalizeProtocol(p: string | null): { text: string | null; number: number | null } {
  if (p === null || p === "" || p.toLowerCase() === "any") return { text: null, number: null };
  const lower = p.toLowerCase();
  if (lower in PROTOCOL_NUMBERS) return { text: lower, number: PROTOCOL_NUMBERS[lower]! };
  if (/^\d+$/.test(p) && Number(p) <= 255) return { text: String(Number(p)), number: Number(p) };
  throw badRequest(`Security group rule protocol ${p} not supported. Only protocol values [${Object.keys(PROTOCOL_NUMBERS).join(", ")}] and integer representations [0 to 255] are supported.`, "SecurityGroupRuleInvalidProtocol");
}

/** Validates a rule and returns its canonical fields plus the dedupe key. */
export function canonicalRule(input: Record<string, unknown>) {
  const ethertype = input.ethertype as string;
  const proto = normalizeProtocol(input.protocol as string | null);
  let min = input.port_range_min as number | null;
  let max = input.port_range_max as number | null;
  if ((min !== null || max !== null) && proto.number === null) {
    throw badRequest("Must also specify protocol if port range is given.", "SecurityGroupProtocolRequiredWithPorts");
  }
  if (proto.number !== null && PORT_PROTOCOLS.has(proto.number)) {
    if (min !== null && max === null) max = min;
    // Neutron's order and words: port 0 is no port for these protocols; a maximum without a minimum is a bad range.
    if (min === 0 || max === 0) throw badRequest("Invalid value for port 0.", "SecurityGroupInvalidPortValue");
    if (max !== null && (min === null || min > max)) {
      throw badRequest("For TCP/UDP protocols, port_range_min must be <= port_range_max", "SecurityGroupInvalidPortRange");
    }
  } else if (proto.number !== null && ICMP_PROTOCOLS.has(proto.number)) {
    if (min === null && max !== null) throw badRequest(`ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`, "SecurityGroupMissingIcmpType");
    if ((min !== null && min > 255) || (max !== null && max > 255)) throw badRequest(`Invalid value for ICMP ${min! > 255 ? "type" : "code"}: ${min! > 255 ? min : max}`, "SecurityGroupInvalidIcmpValue");
  } else if (min !== null || max !== null) {
    throw badRequest(`Invalid protocol ${proto.text} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.`, "SecurityGroupInvalidProtocolForPortRange");
  }
  if (proto.number === 58 && ethertype === "IPv4") {
    throw badRequest(`Protocol ${proto.text} is not supported with ethertype IPv4`, "SecurityGroupEthertypeConflictWithProtocol");
  }
  let prefix = input.remote_ip_prefix as string | null;
  if (prefix !== null && input.remote_group_id !== null && input.remote_group_id !== undefined) {
    throw badRequest("Only remote_ip_prefix or remote_group_id may be provided.", "SecurityGroupRemoteGroupAndRemoteIpPrefix");
  }
  if (prefix !== null) {
    if (!prefix.includes("/")) prefix = `${prefix}/${prefix.includes(":") ? 128 : 32}`;
    const c = parseCidr(prefix)!;
    if ((c.version === 4) !== (ethertype === "IPv4")) {
      throw badRequest(`Conflicting value ethertype ${ethertype} for CIDR ${prefix}`, "SecurityGroupConflictingEthertype");
    }
  }
  const rule = {
    direction: input.direction as string,
    ethertype,
    protocol: proto.text,
    port_range_min: min,
    port_range_max: max,
    remote_ip_prefix: prefix,
    remote_group_id: (input.remote_group_id as string | null) ?? null,
  };
  // 0.0.0.0/0 and ::/0 match what "no prefix" matches: the same rule for dedupe.
  const keyPrefix = prefix === "0.0.0.0/0" || prefix === "::/0" ? null : prefix;
  const key = [rule.direction, ethertype, proto.number ?? "", min ?? "", max ?? "", keyPrefix ?? "", rule.remote_group_id ?? ""].join("|");
  return { rule, key };
}

async function insertRule(tx: Tx, projectId: string, sgId: string, input: Record<string, unknown>): Promise<Rec> {
  const { rule, key } = canonicalRule({ ethertype: "IPv4", protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, ...input });
  await tx.lock(`security_group:${sgId}`);
  const existing = await tx.get<{ id: string }>("SELECT id FROM security_group_rules WHERE security_group_id = ? AND rule_key = ?", [sgId, key]);
  if (existing) throw conflict("SecurityGroupRuleExists", `Security group rule already exists. Rule id is ${existing.id}.`);
  const rec = newRec({ description: (input.description as string) ?? "", ...rule }, { project_id: projectId, security_group_id: sgId, rule_key: key, name: "" });
  try {
    await insertRec(tx, ruleDef.table, rec);
  } catch (err) {
    // The unique index is the guarantee; the look-up above is what gives the rule id.
    if (isUniqueViolation(err)) throw conflict("SecurityGroupRuleExists", "Security group rule already exists.");
    throw err;
  }
  return rec;
}

/** Which of these groups are their project's default group. */
async function defaultGroupIds(q: Queryable, groups: readonly string[]): Promise<Set<string>> {
  const ids = [...new Set(groups)];
  return new Set((await rowsFor<{ security_group_id: string }>(q, "SELECT security_group_id FROM default_security_groups", "security_group_id", ids)).map((r) => r.security_group_id));
}

function ruleView(r: Rec, defaults?: Set<string>): View {
  return {
    id: r.id,
    project_id: r.project_id,
    security_group_id: r.security_group_id,
    direction: r.direction,
    ethertype: r.ethertype,
    protocol: r.protocol ?? null,
    port_range_min: r.port_range_min ?? null,
    port_range_max: r.port_range_max ?? null,
    remote_ip_prefix: r.remote_ip_prefix ?? null,
    normalized_cidr: r.remote_ip_prefix ?? null,
    remote_group_id: r.remote_group_id ?? null,
    remote_address_group_id: null,
    description: r.description ?? "",
    ...(defaults ? { belongs_to_default_sg: defaults.has(r.security_group_id as string) } : {}),
    created_at: r.created_at,
    updated_at: r.updated_at,
    revision_number: r.revision_number,
  };
}

function groupView(r: Rec, rules: View[] | undefined, everyone: Set<string>): View {
  return {
    id: r.id,
    name: r.name,
    description: r.description ?? "",
    project_id: r.project_id,
    stateful: r.stateful ?? true,
    shared: everyone.has(r.id),
    ...(rules ? { security_group_rules: rules } : {}),
    ...standardTail(r),
  };
}

/** Its project's, an admin's, or shared with the caller's project. */
const canSeeGroup = async (q: Queryable, rec: Rec, ctx: RequestContext): Promise<boolean> =>
  isOwner(ctx, rec) || isSharedWith(q, "security_group", rec.id, ctx.projectId);

/** Neutron creates a project's default group when the project first looks at its groups. */
async function defaultGroupOnFirstList(m: Model, ctx: RequestContext): Promise<void> {
  if (ctx.isAdmin || !ctx.canWrite) return;
  const known = await m.db.read((q) => q.get("SELECT 1 AS x FROM default_security_groups WHERE project_id = ?", [ctx.projectId]));
  if (!known) await m.write((tx) => m.ensureDefaultSecurityGroup(tx, ctx.projectId));
}

export async function ensureDefaultSecurityGroup(m: Model, tx: Tx, projectId: string): Promise<string> {
  const existing = await tx.get<{ security_group_id: string }>("SELECT security_group_id FROM default_security_groups WHERE project_id = ?", [projectId]);
  if (existing) return existing.security_group_id;
  await tx.lock(`default-sg:${projectId}`);
  const again = await tx.get<{ security_group_id: string }>("SELECT security_group_id FROM default_security_groups WHERE project_id = ?", [projectId]);
  if (again) return again.security_group_id;
  const sg = newRec({ name: "default", description: "Default security group", stateful: true, tags: [] }, { project_id: projectId });
  await insertRec(tx, def.table, sg);
  await tx.run("INSERT INTO default_security_groups (project_id, security_group_id) VALUES (?, ?)", [projectId, sg.id]);
  for (const ethertype of ["IPv4", "IPv6"]) {
    await insertRule(tx, projectId, sg.id, { direction: "egress", ethertype });
    await insertRule(tx, projectId, sg.id, { direction: "ingress", ethertype, remote_group_id: sg.id });
  }
  await m.emit(tx, securityGroups, sg.id, "create");
  return sg.id;
}

export const securityGroups: Kind = {
  def,
  beforeList: defaultGroupOnFirstList,

  scope: (ctx) => ownOrShared(ctx, "security_group"),

  async hydrate(_m, q, recs) {
    const everyone = await entriesFor(q, "security_group", recs.map((r) => r.id), SHARED, EVERYONE);
    const rules = groupBy(
      (await rowsFor<Record<string, unknown>>(q, "SELECT * FROM security_group_rules", "security_group_id", recs.map((r) => r.id))).map((row) => fromRow(ruleDef.table, row)),
      (r) => r.security_group_id as string,
    );
    const defaults = await defaultGroupIds(q, recs.map((r) => r.id));
    return recs.map((r) =>
      groupView(r, (rules.get(r.id) ?? []).sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1)).map((x) => ruleView(x, defaults)), everyone),
    );
  },

  // `shared`: shared with the caller's project, or with everyone (Neutron's security-groups-shared-filtering).
  forCaller: (_m, q, views, ctx) => sharedToCaller(q, "security_group", views, ctx),

  // A rule's create or delete bumps its group: the log has the rule's own entry, so the
  // group's carries no rules (a group of N rules would log N rules per rule added).
  async bumped(_m, q, rec) {
    return groupView(rec, undefined, await entriesFor(q, "security_group", [rec.id], SHARED, EVERYONE));
  },

  canSee: (_m, q, rec, ctx) => canSeeGroup(q, rec, ctx),

  async create(m, tx, _ctx, input) {
    if (input.name === "default") {
      await m.ensureDefaultSecurityGroup(tx, input.project_id as string);
      throw conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.");
    }
    await m.ensureDefaultSecurityGroup(tx, input.project_id as string);
    const sg = newRec(input);
    await insertRec(tx, def.table, sg);
    for (const ethertype of ["IPv4", "IPv6"]) await insertRule(tx, sg.project_id, sg.id, { direction: "egress", ethertype });
    return sg;
  },

  async update(_m, tx, _ctx, rec, input) {
    const defaults = await defaultGroupIds(tx, [rec.id]);
    if (defaults.has(rec.id) && input.name !== undefined && input.name !== "default") {
      throw conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.");
    }
    // One group per project is called default: the one Neutron made (clients look it up by that name).
    if (!defaults.has(rec.id) && input.name === "default") {
      throw conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.");
    }
    return updateRec(tx, def.table, { ...rec, ...input });
  },

  async remove(m, tx, ctx, rec) {
    const defaults = await defaultGroupIds(tx, [rec.id]);
    if (defaults.has(rec.id) && !ctx.isAdmin) {
      throw conflict("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.");
    }
    const used = await tx.get("SELECT 1 AS x FROM port_security_groups WHERE security_group_id = ? LIMIT 1", [rec.id]);
    if (used) throw conflict("SecurityGroupInUse", `Security Group ${rec.id} in use.`);
    // Rules of other groups that admit this group's members go with it (Neutron cascades them).
    const referencing = [...(await findRecs(tx, ruleDef.table, { security_group_id: [rec.id] })), ...(await findRecs(tx, ruleDef.table, { remote_group_id: [rec.id] }))];
    const touched = new Set<string>();
    for (const r of new Map(referencing.map((x) => [x.id, x])).values()) {
      await deleteRec(tx, ruleDef.table, r.id);
      m.deleted(tx, securityGroupRules, r);
      if (r.security_group_id !== rec.id) touched.add(r.security_group_id as string);
    }
    await tx.run("DELETE FROM default_security_groups WHERE security_group_id = ?", [rec.id]);
    await revoke(tx, "security_group", rec.id);
    await deleteRec(tx, def.table, rec.id);
    for (const id of touched) await m.touch(tx, "security_group", id);
  },
};

export const securityGroupRules: Kind = {
  def: ruleDef,

  scope: scopeOwn,

  async hydrate(_m, q, recs) {
    const defaults = await defaultGroupIds(q, recs.map((r) => r.security_group_id as string));
    return recs.map((r) => ruleView(r, defaults));
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    const sgId = input.security_group_id as string;
    const remote = input.remote_group_id as string | null;
    // Both groups under their locks (in one order, so two such creates cannot deadlock): neither can go before this commits.
    for (const id of [...new Set([sgId, remote ?? sgId])].sort()) await tx.lock(`security_group:${id}`);
    const sg = await getRec(tx, def.table, sgId);
    if (!sg || !isOwner(ctx, sg)) throw resourceNotFound("security_group", sgId);
    if (remote) {
      const rg = await getRec(tx, def.table, remote);
      // A member may admit its own groups and those shared with its project (seeds/001); an admin any (F10).
      if (!rg || !(await canSeeGroup(tx, rg, ctx))) throw resourceNotFound("security_group", remote);
    }
    const rec = await insertRule(tx, sg.project_id, sg.id, input);
    await m.touch(tx, "security_group", sg.id);
    return rec;
  },

  async update(_m, tx, _ctx, rec, input) {
    return updateRec(tx, ruleDef.table, { ...rec, ...input });
  },

  async remove(m, tx, _ctx, rec) {
    await deleteRec(tx, ruleDef.table, rec.id);
    await m.touch(tx, "security_group", rec.security_group_id as string);
  },
};

export type { RequestContext };
