// NetworkPolicies against the model: the groups network-policy.ts says the
// cluster needs, their rules, and each pod port's `seam:policy`, made so in
// an order that never admits more than either the old or the new state:
// groups and their new rules first, then the ports, then what is no longer
// wanted (a pod newly isolated is filtered by a group that already holds its
// rules; a group goes only once no port names it). Level-based like
// reconcile.ts; only groups carrying the controller's tag are touched.
import { NeutronError } from "../../core/errors.ts";
import { OWNER } from "../../core/model/owners.ts";
import { type GroupView, type PortPolicy, ports, type PortView, type RuleSpec, securityGroups } from "../../core/service/commands.ts";
import type { Model } from "../../core/service/model.ts";
import { K8S_TAG, namespaceProject, type NamespaceLike, placementOf, type PodLike } from "./mapping.ts";
import { type NetworkPolicyLike, type PolicyPod, wantedPolicies, type WantedRule } from "./network-policy.ts";
import { eachAtOnce } from "./reconcile.ts";

const GROUP_TAG = "k8s-sg-";
export const groupTag = (key: string) => `${GROUP_TAG}${key}`;

export interface PolicyResult {
  readonly groupsMade: number;
  readonly groupsRemoved: number;
  readonly rulesAdded: number;
  readonly rulesRemoved: number;
  readonly portsChanged: number;
}

const gone = (e: unknown) => e instanceof NeutronError && e.status === 404;
const ruleKey = (r: RuleSpec) => [r.direction, r.ethertype, r.protocol, r.portMin, r.portMax, r.remoteCidr, r.remoteGroup].join("|");
const samePolicy = (a: PortPolicy | null, b: PortPolicy | null) => JSON.stringify(a) === JSON.stringify(b);

export async function reconcilePolicies(
  m: Model,
  cluster: { namespaces: readonly NamespaceLike[]; pods: readonly PodLike[]; policies: readonly NetworkPolicyLike[] },
  cfg: { projectId: (nameOrId: string) => string },
  warn: (msg: string) => void,
): Promise<PolicyResult> {
  const sys = m.system;
  const res = { groupsMade: 0, groupsRemoved: 0, rulesAdded: 0, rulesRemoved: 0, portsChanged: 0 };
  const podPorts = await ports.find(m, sys, { owner: OWNER.kubernetes });
  const portByUid = new Map<string, PortView>(podPorts.filter((p) => p.device).map((p) => [p.device, p]));
  const pods: PolicyPod[] = [];
  for (const pod of cluster.pods) {
    const md = pod.metadata;
    if (md?.uid && md.namespace && portByUid.has(md.uid)) pods.push({ uid: md.uid, namespace: md.namespace, labels: md.labels ?? {} });
  }
  const namespaces = cluster.namespaces.flatMap((n) => (n.metadata?.name ? [{ name: n.metadata.name, labels: n.metadata.labels ?? {} }] : []));
  const projectOf = new Map<string, string>();
  for (const ns of cluster.namespaces) {
    const p = ns.metadata?.name ? placementOf(ns) : null;
    if (p && p.kind !== "invalid") projectOf.set(ns.metadata!.name!, cfg.projectId(p.kind === "named" ? p.project : namespaceProject(ns.metadata!.name!)));
  }
  const wanted = wantedPolicies(cluster.policies, namespaces, pods);
  for (const w of new Set(wanted.warnings)) warn(w);

  // 1. The groups, each in its namespace's project (one whose project changed is made again there).
  const existing = new Map<string, GroupView>();
  const stale: GroupView[] = [];
  for (const g of await securityGroups.find(m, sys, { tag: K8S_TAG })) {
    const key = g.tags.find((t) => t.startsWith(GROUP_TAG))?.slice(GROUP_TAG.length);
    const want = key ? wanted.groups.get(key) : undefined;
    if (key && want && projectOf.get(want.namespace) === g.project && !existing.has(key)) existing.set(key, g);
    else stale.push(g);
  }
  const idOf = new Map<string, string>();
  for (const [key, want] of wanted.groups) {
    const have = existing.get(key);
    if (have) {
      idOf.set(key, have.id);
      continue;
    }
    const project = projectOf.get(want.namespace);
    if (!project) continue; // a namespace that cannot be placed has no ports to filter either
    try {
      const made = await securityGroups.create(m, sys, { name: want.name, project, description: want.description, tags: [K8S_TAG, groupTag(key)] });
      existing.set(key, made);
      idOf.set(key, made.id);
      res.groupsMade++;
    } catch (e) {
      warn(`${want.description}: its group could not be made: ${(e as Error).message}`);
    }
  }

  // 2. Their rules, exactly the wanted ones (a new group's egress-anywhere rules go too).
  const resolve = (r: WantedRule): RuleSpec | null => {
    if (r.remoteGroup === null) return { ...r, remoteGroup: null };
    const id = idOf.get(r.remoteGroup);
    return id ? { ...r, remoteGroup: id } : null; // its peer group is not there: the rule would admit nothing anyway
  };
  const extra: string[] = [];
  for (const [key, want] of wanted.groups) {
    const g = existing.get(key);
    if (!g) continue;
    const have = new Map(g.rules.map((r) => [ruleKey(r), r.id]));
    const need = new Map(want.rules.map(resolve).flatMap((r) => (r ? [[ruleKey(r), r] as const] : [])));
    for (const [k, r] of need) {
      if (have.has(k)) continue;
      try {
        await securityGroups.addRule(m, sys, g.id, r);
        res.rulesAdded++;
      } catch (e) {
        warn(`${want.description}: a rule could not be added: ${(e as Error).message}`);
      }
    }
    for (const [k, id] of have) if (!need.has(k)) extra.push(id);
  }

  // 3. Each pod's port: filtered by its policies' groups, a member of its peers' (a group that could not be made filters with nothing: it admits less, never more).
  const ids = (keys: readonly string[] | null) => (keys ? keys.flatMap((k) => idOf.get(k) ?? []).sort() : null);
  const changes: { port: PortView; policy: PortPolicy | null }[] = [];
  for (const [uid, port] of portByUid) {
    const w = wanted.ports.get(uid);
    const policy: PortPolicy | null = w ? { ingress: ids(w.ingress), egress: ids(w.egress), memberOf: ids(w.memberOf)! } : null;
    if (!samePolicy(port.policy, policy)) changes.push({ port, policy });
  }
  await eachAtOnce(changes, 8, async ({ port, policy }) => {
    try {
      await ports.setPolicy(m, sys, port.id, policy);
      res.portsChanged++;
    } catch (e) {
      if (!gone(e)) warn(`port ${port.id}: its policy could not be set: ${(e as Error).message}`);
    }
  });

  // 4. What is no longer wanted: rules, then groups (a group's removal takes the rules naming it).
  for (const id of extra) {
    try {
      await securityGroups.removeRule(m, sys, id);
      res.rulesRemoved++;
    } catch (e) {
      if (!gone(e)) warn(`rule ${id}: ${(e as Error).message}`);
    }
  }
  for (const g of stale) {
    try {
      await securityGroups.remove(m, sys, g.id);
      res.groupsRemoved++;
    } catch (e) {
      if (!gone(e)) warn(`group ${g.id} (${g.name}): ${(e as Error).message}`);
    }
  }
  return res;
}
