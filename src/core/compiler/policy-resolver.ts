// Policy: the security groups of a host's filtered ports, their rules, and the
// member addresses of every group those rules name as remote group (so the
// agent's member sets hold exactly the addresses a rule can admit).
//
//   reads  port, security_group, security_group_rule
//   scope  groups (filtering its ports with port security: their security_groups, or
//          the groups their `seam:policy` names per direction), remoteGroups (named by
//          those groups' rules); a port is a member of its security_groups and of the
//          groups its `seam:policy` member_of names
//   items  sg/<id>  rule/<id>  member/<group>/<port>
import { key, type MemberItem, type RuleItem } from "../../contract/intent.ts";
import type { HostSet, Resolver } from "./resolver.ts";
import { filterGroups, type World } from "./world.ts";

export interface PolicyScope {
  readonly [name: string]: ReadonlySet<string>;
  /** groups of its ports (with port security) */
  readonly groups: ReadonlySet<string>;
  /** groups named as remote group by the rules of those groups */
  readonly remoteGroups: ReadonlySet<string>;
}

export function ruleItem(w: World, scope: PolicyScope, id: string): RuleItem | undefined {
  const r = w.rules.get(id);
  if (!r || !scope.groups.has(r.group)) return undefined;
  return { kind: "rule", ...r };
}

export function memberItem(w: World, scope: PolicyScope, group: string, portId: string): MemberItem | undefined {
  const p = w.ports.get(portId);
  if (!p || !scope.remoteGroups.has(group) || !p.memberOf.includes(group)) return undefined;
  const ips = [...new Set([...p.fixedIps.map((f) => f.ip), ...p.pairs.map((a) => a.ip)])];
  return { kind: "member", group, port: portId, ips };
}

/** Hosts with a port the group filters (they hold its chains). */
function hostsUsing(w: World, group: string, into: Set<string>): void {
  for (const h of w.hostsOfGroup(group)) into.add(h);
}

export const policyResolver: Resolver<PolicyScope, "sg" | "rule" | "member"> = {
  name: "policy",
  reads: ["port", "security_group", "security_group_rule"],

  scope(w, host) {
    const groups = new Set<string>();
    for (const id of w.portsAt(host)) {
      const p = w.ports.get(id)!;
      if (p.secured) for (const g of filterGroups(p)) groups.add(g);
    }
    const remoteGroups = new Set<string>();
    for (const g of groups) for (const r of w.rulesOf(g)) {
      const remote = w.rules.get(r)?.remoteGroup;
      if (remote) remoteGroups.add(remote);
    }
    return { groups, remoteGroups };
  },

  compile(w, _host, scope, put) {
    for (const g of scope.groups) {
      if (w.groups.has(g)) put(key.sg(g), { kind: "sg", id: g });
      for (const r of w.rulesOf(g)) put(key.rule(r), ruleItem(w, scope, r));
    }
    for (const g of scope.remoteGroups) for (const id of w.membersOf(g)) put(key.member(g, id), memberItem(w, scope, g, id));
  },

  items: {
    sg: (w, _host, scope, k) => (scope.groups.has(k.id) && w.groups.has(k.id) ? { kind: "sg", id: k.id } : undefined),
    rule: (w, _host, scope, k) => ruleItem(w, scope, k.id),
    member: (w, _host, scope, k) => memberItem(w, scope, k.group, k.port),
  },

  hosts(w, a, side): HostSet {
    const hosts = new Set<string>();
    switch (a.kind) {
      case "port": {
        // hosts whose rules admit this port's groups need its addresses
        const p = a[side];
        if (p) for (const g of p.memberOf) for (const r of w.rulesNaming(g)) hostsUsing(w, w.rules.get(r)!.group, hosts);
        break;
      }
      case "security_group":
        if (a[side]) hostsUsing(w, a.id, hosts);
        break;
      case "security_group_rule": {
        const r = a[side];
        if (r) hostsUsing(w, r.group, hosts);
        break;
      }
    }
    return hosts;
  },

  keys(_w, a) {
    switch (a.kind) {
      case "port":
        return [...new Set([a.before, a.after].flatMap((p) => (p ? p.memberOf.map((g) => key.member(g, a.id)) : [])))];
      case "security_group":
        return [key.sg(a.id)];
      case "security_group_rule":
        return [key.rule(a.id)];
      default:
        return [];
    }
  },
};
