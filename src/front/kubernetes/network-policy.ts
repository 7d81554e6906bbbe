// Kubernetes NetworkPolicy (networking.k8s.io/v1) -> Seam security groups, as
// pure functions. Security groups only ever admit, and a port's groups are
// both its filters and its identity where a rule names them as remote group,
// so a policy maps to three things (docs/kubernetes.md says why):
//   - a group per policy holding its rules, filtering (per direction the
//     policy isolates) exactly the pods it selects, instead of their
//     security groups: a pod selected by no policy keeps its project's
//     default group, which is what governs VMs and pods without policy;
//   - a group per distinct peer selector (namespaceSelector, podSelector),
//     rule-less, whose members are the pods it matches (`member_of`: they
//     count as members without being filtered by it);
//   - the rules: peers x ports, a peer being such a group, an ipBlock (its
//     CIDR with the exceptions cut out) or, with no peer, anywhere.
import { createHash } from "node:crypto";
import { cidrMinus, formatCidr, parseCidr, toCidr } from "../../net/address.ts";
import type { RuleSpec } from "../../core/service/commands.ts";

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | null;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] | null }[] | null;
}

export interface PolicyPeer {
  readonly podSelector?: LabelSelector | null;
  readonly namespaceSelector?: LabelSelector | null;
  readonly ipBlock?: { readonly cidr: string; readonly except?: readonly string[] | null } | null;
}

export interface PolicyPort {
  readonly protocol?: string | null;
  readonly port?: number | string | null;
  readonly endPort?: number | null;
}

export interface NetworkPolicyLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
  readonly spec?: {
    readonly podSelector?: LabelSelector | null;
    readonly policyTypes?: readonly string[] | null;
    readonly ingress?: readonly { readonly from?: readonly PolicyPeer[] | null; readonly ports?: readonly PolicyPort[] | null }[] | null;
    readonly egress?: readonly { readonly to?: readonly PolicyPeer[] | null; readonly ports?: readonly PolicyPort[] | null }[] | null;
  };
}

/** A pod that has a Seam port, as policies see it. */
export interface PolicyPod {
  readonly uid: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PolicyNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A rule whose remote group is named by the wanted group's key (ids are the model's business). */
export type WantedRule = Omit<RuleSpec, "remoteGroup"> & { readonly remoteGroup: string | null };

export interface WantedGroup {
  /** `np-<policy uid>` or `peer-<hash of the selector>`: what the group's tag carries */
  readonly key: string;
  /** the namespace whose project holds the group */
  readonly namespace: string;
  readonly name: string;
  readonly description: string;
  readonly rules: readonly WantedRule[];
}

/** Per pod, by group key: the groups filtering each direction (null: its security groups do), and those it is a member of. */
export interface WantedPortPolicy {
  readonly ingress: readonly string[] | null;
  readonly egress: readonly string[] | null;
  readonly memberOf: readonly string[];
}

export interface WantedPolicies {
  readonly groups: ReadonlyMap<string, WantedGroup>;
  readonly ports: ReadonlyMap<string, WantedPortPolicy>;
  /** what could not be mapped, and why (the rest of the policy still applies, admitting less) */
  readonly warnings: readonly string[];
}

/** Whether a label selector matches labels; an empty selector matches everything, a null one nothing. */
export function selects(sel: LabelSelector | null | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(labels[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[e.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false; // an operator this version does not know selects nothing (the apiserver refuses it anyway)
    }
  }
  return true;
}

/** A selector in one canonical text, so equal selectors share one peer group. */
function canonical(sel: LabelSelector | null | undefined): unknown {
  if (!sel) return null;
  const labels = Object.entries(sel.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const exprs = (sel.matchExpressions ?? []).map((e) => [e.key, e.operator, [...(e.values ?? [])].sort()]).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return { labels, exprs };
}

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);
const ETHERTYPES = ["IPv4", "IPv6"] as const;

function ruleKey(r: WantedRule): string {
  return [r.direction, r.ethertype, r.protocol, r.portMin, r.portMax, r.remoteCidr, r.remoteGroup].join("|");
}

export function wantedPolicies(policies: readonly NetworkPolicyLike[], namespaces: readonly PolicyNamespace[], pods: readonly PolicyPod[]): WantedPolicies {
  const groups = new Map<string, WantedGroup>();
  const warnings: string[] = [];
  const ingressOf = new Map<string, string[]>();
  const egressOf = new Map<string, string[]>();
  const memberOf = new Map<string, Set<string>>();
  const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
  const push = (m: Map<string, string[]>, uid: string, key: string) => (m.get(uid) ?? m.set(uid, []).get(uid)!).push(key);

  /** The peer group of a selector pair (made on first use), its members the pods it matches. */
  const peerGroup = (policyNs: string, peer: PolicyPeer): string => {
    const sel = { ns: peer.namespaceSelector ? null : policyNs, namespaceSelector: canonical(peer.namespaceSelector), podSelector: canonical(peer.podSelector) };
    const key = `peer-${createHash("sha256").update(JSON.stringify(sel)).digest("hex").slice(0, 16)}`;
    if (groups.has(key)) return key;
    const what = [peer.namespaceSelector ? `namespaces ${JSON.stringify(peer.namespaceSelector)}` : `namespace ${policyNs}`, peer.podSelector ? `pods ${JSON.stringify(peer.podSelector)}` : "all pods"].join(", ");
    groups.set(key, { key, namespace: policyNs, name: `k8s-peer-${key.slice(5, 13)}`, description: `NetworkPolicy peer: ${what}`.slice(0, 255), rules: [] });
    for (const pod of pods) {
      const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, nsLabels.get(pod.namespace) ?? {}) : pod.namespace === policyNs;
      const podOk = peer.podSelector ? selects(peer.podSelector, pod.labels) : true;
      if (nsOk && podOk) (memberOf.get(pod.uid) ?? memberOf.set(pod.uid, new Set()).get(pod.uid)!).add(key);
    }
    return key;
  };

  for (const pol of policies) {
    const md = pol.metadata;
    if (!md?.uid || !md.name || !md.namespace || !pol.spec) continue;
    const where = `NetworkPolicy ${md.namespace}/${md.name}`;
    const spec = pol.spec;
    const types = spec.policyTypes?.length ? spec.policyTypes : spec.egress?.length ? ["Ingress", "Egress"] : ["Ingress"];
    const key = `np-${md.uid}`;
    const rules = new Map<string, WantedRule>();
    const add = (r: WantedRule) => rules.set(ruleKey(r), r);

    for (const direction of ["ingress", "egress"] as const) {
      if (!types.includes(direction === "ingress" ? "Ingress" : "Egress")) continue;
      const entries = (direction === "ingress" ? spec.ingress : spec.egress) ?? [];
      for (const entry of entries) {
        const peers = (direction === "ingress" ? (entry as { from?: readonly PolicyPeer[] | null }).from : (entry as { to?: readonly PolicyPeer[] | null }).to) ?? [];
        // the ports a rule admits; [null]: every port of every protocol
        const ports: ({ protocol: string; min: number | null; max: number | null } | null)[] = [];
        for (const p of entry.ports ?? []) {
          const protocol = (p.protocol ?? "TCP").toLowerCase();
          if (!PROTOCOLS.has(protocol)) {
            warnings.push(`${where}: protocol ${p.protocol} is not one Seam filters on; that port admits nothing`);
            continue;
          }
          if (typeof p.port === "string") {
            warnings.push(`${where}: named port '${p.port}' is not mapped (Seam resolves only numbers); that port admits nothing`);
            continue;
          }
          const min = p.port ?? null;
          ports.push({ protocol, min, max: min === null ? null : (p.endPort ?? min) });
        }
        if (!entry.ports?.length) ports.push(null);
        // the remotes: [null] when the rule names no peer (from anywhere)
        const remotes: { cidr: string | null; group: string | null; ethertype: "IPv4" | "IPv6" | null }[] = [];
        for (const peer of peers) {
          if (peer.ipBlock) {
            const block = parseCidr(peer.ipBlock.cidr);
            if (!block) {
              warnings.push(`${where}: ipBlock '${peer.ipBlock.cidr}' is not a CIDR; it admits nothing`);
              continue;
            }
            const cut = (peer.ipBlock.except ?? []).map((e) => toCidr(e)).filter((c) => c !== null);
            for (const c of cidrMinus(block, cut)) remotes.push({ cidr: formatCidr(c), group: null, ethertype: c.version === 6 ? "IPv6" : "IPv4" });
          } else remotes.push({ cidr: null, group: peerGroup(md.namespace, peer), ethertype: null });
        }
        if (!peers.length) remotes.push({ cidr: null, group: null, ethertype: null });
        for (const remote of remotes) {
          for (const port of ports) {
            for (const ethertype of remote.ethertype ? [remote.ethertype] : ETHERTYPES) {
              add({ direction, ethertype, protocol: port?.protocol ?? null, portMin: port?.min ?? null, portMax: port?.max ?? null, remoteCidr: remote.cidr, remoteGroup: remote.group });
            }
          }
        }
      }
    }
    groups.set(key, { key, namespace: md.namespace, name: `k8s-np-${md.namespace}-${md.name}`.slice(0, 255), description: `NetworkPolicy ${md.namespace}/${md.name} (${types.join(", ")})`, rules: [...rules.values()] });
    for (const pod of pods) {
      if (pod.namespace !== md.namespace || !selects(spec.podSelector ?? {}, pod.labels)) continue;
      if (types.includes("Ingress")) push(ingressOf, pod.uid, key);
      if (types.includes("Egress")) push(egressOf, pod.uid, key);
    }
  }

  const ports = new Map<string, WantedPortPolicy>();
  for (const pod of pods) {
    const ingress = ingressOf.get(pod.uid)?.sort() ?? null;
    const egress = egressOf.get(pod.uid)?.sort() ?? null;
    const member = [...(memberOf.get(pod.uid) ?? [])].sort();
    if (ingress || egress || member.length) ports.set(pod.uid, { ingress, egress, memberOf: member });
  }
  return { groups, ports, warnings };
}
