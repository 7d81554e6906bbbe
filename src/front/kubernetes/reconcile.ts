// One pass of the Kubernetes controller: what the cluster says (namespaces,
// pods) against what the model holds, and the difference made. Level-based,
// so a missed event, a restart or a port someone deleted by hand is repaired
// by the next pass; only what carries the controller's tag is ever removed.
import { NeutronError } from "../../core/errors.ts";
import { OWNER } from "../../core/model/owners.ts";
import { networks, ports, type PortView, subnets } from "../../core/service/commands.ts";
import type { Model } from "../../core/service/model.ts";
import { formatAddress, parseCidr } from "../../net/address.ts";
import { K8S_TAG, namespaceSubnet, namespaceTag, type NamespaceLike, PORT_ANNOTATION, placementOf, podPortOf, type PodLike, podTag, portAnnotation } from "./mapping.ts";

export interface ReconcileConfig {
  /** where namespaces without the annotation get their own subnet from, e.g. 10.244.0.0/16 */
  readonly podPool: string;
  /** the prefix length of each namespace's subnet, e.g. 24 */
  readonly podPrefix: number;
  /** a project name to its id, where the server knows names (its built-in identity) */
  readonly projectId: (nameOrId: string) => string;
}

export interface ReconcileIo {
  annotate(pod: PodLike, value: string): Promise<void>;
  warn(msg: string): void;
}

export interface ReconcileResult {
  readonly created: number;
  readonly removed: number;
  readonly annotated: number;
  /** namespaces whose pods could not be placed, and why */
  readonly unplaced: ReadonlyMap<string, string>;
}

const gone = (e: unknown) => e instanceof NeutronError && e.status === 404;

/** How many pods one pass works on at once. */
const PARALLEL = 8;

export async function eachAtOnce<T>(items: readonly T[], lanes: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export async function reconcile(m: Model, cluster: { namespaces: readonly NamespaceLike[]; pods: readonly PodLike[] }, cfg: ReconcileConfig, io: ReconcileIo): Promise<ReconcileResult> {
  const sys = m.system;
  let created = 0;
  let removed = 0;
  let annotated = 0;
  const unplaced = new Map<string, string>();

  // 1. Each namespace's network: the one its annotation names, or its own, made when its first pod needs it
  //    (kube-system and the like, with host-network pods or none, get nothing).
  const needy = new Set(cluster.pods.map(podPortOf).flatMap((p) => (p ? [p.namespace] : [])));
  const own = await networks.find(m, sys, { tag: K8S_TAG });
  const ownByNs = new Map(own.flatMap((n) => n.tags.filter((t) => t.startsWith("k8s-ns-")).map((t) => [t.slice("k8s-ns-".length), n] as const)));
  /** namespace -> its network's id and project */
  const netOf = new Map<string, { id: string; project: string }>();
  const namespaces = new Set<string>();
  for (const ns of cluster.namespaces) {
    const name = ns.metadata?.name;
    if (!name) continue;
    namespaces.add(name);
    const p = placementOf(ns);
    if (p.kind === "invalid") {
      unplaced.set(name, p.reason);
      continue;
    }
    if (p.kind === "named") {
      const project = cfg.projectId(p.project);
      const [net] = await networks.find(m, sys, { name: p.network, project });
      if (net) netOf.set(name, { id: net.id, project: net.project });
      else unplaced.set(name, `no network '${p.network}' in project '${p.project}'`);
      continue;
    }
    const mine = ownByNs.get(name);
    if (mine) {
      netOf.set(name, { id: mine.id, project: mine.project });
      continue;
    }
    if (!needy.has(name)) continue;
    const made = await makeOwnNetwork(m, name, cfg.projectId(p.project), p.network, cfg);
    if ("why" in made) unplaced.set(name, made.why);
    else netOf.set(name, { id: made.id, project: cfg.projectId(p.project) });
  }
  for (const [ns, why] of unplaced) io.warn(`namespace ${ns}: ${why}; its pods get no port from the controller`);

  // 2. Every pod's port: found by the pod's UID (the controller's or one the CNI path made first), or made.
  const podPorts = await ports.find(m, sys, { owner: OWNER.kubernetes });
  const byUid = new Map<string, PortView>();
  for (const p of podPorts) if (p.device) byUid.set(p.device, p);
  const wanted = new Set<string>();
  const todo: { pod: PodLike; want: NonNullable<ReturnType<typeof podPortOf>>; network: { id: string; project: string } }[] = [];
  for (const pod of cluster.pods) {
    const want = podPortOf(pod);
    if (!want) continue;
    // A pod of a namespace that cannot be placed now (a wrong annotation) keeps the port it has.
    wanted.add(want.uid);
    const network = netOf.get(want.namespace);
    if (network) todo.push({ pod, want, network });
  }
  // Pods are independent of each other: a burst of them is made side by side (the apiserver's PATCH is most of the time).
  await eachAtOnce(todo, PARALLEL, async ({ pod, want, network: net }) => {
    const network = net.id;
    let port = byUid.get(want.uid);
    try {
      if (port && port.network !== network) {
        // the namespace now names another network: the old port goes (if it is ours), a new one comes
        if (port.tags.includes(K8S_TAG)) {
          await ports.remove(m, sys, port.id);
          removed++;
        }
        port = undefined;
      }
      if (!port) {
        port = await ports.create(m, sys, { network, project: net.project, name: want.name, owner: OWNER.kubernetes, device: want.uid, host: want.node, tags: [K8S_TAG, podTag(want.uid)] });
        created++;
      } else if (port.host !== want.node) {
        port = await ports.bind(m, sys, port.id, want.node);
      }
    } catch (e) {
      if (gone(e)) return; // deleted under us (the network, or the port): the next pass sees it
      io.warn(`pod ${want.namespace}/${want.name}: ${(e as Error).message}`);
      return;
    }
    const value = portAnnotation({ id: port.id, network: port.network, address: port.addresses.find((a) => !a.includes(":")) ?? port.addresses[0] ?? null });
    if (pod.metadata?.annotations?.[PORT_ANNOTATION] !== value) {
      try {
        await io.annotate(pod, value);
        annotated++;
      } catch (e) {
        io.warn(`pod ${want.namespace}/${want.name}: could not write its ${PORT_ANNOTATION} annotation: ${(e as Error).message}`);
      }
    }
  });

  // 3. What is ours and no longer wanted: ports of pods that are gone or done, then the networks of namespaces that are gone.
  for (const p of podPorts) {
    if (!p.tags.includes(K8S_TAG) || wanted.has(p.device)) continue;
    try {
      await ports.remove(m, sys, p.id);
      removed++;
    } catch (e) {
      if (!gone(e)) io.warn(`port ${p.id}: ${(e as Error).message}`);
    }
  }
  for (const [ns, net] of ownByNs) {
    if (namespaces.has(ns)) continue;
    try {
      await networks.remove(m, sys, net.id);
      removed++;
    } catch (e) {
      // a port the CNI path made is still on it until its DEL comes: the next pass tries again
      if (!gone(e)) io.warn(`namespace ${ns} is gone, its network ${net.id} not yet: ${(e as Error).message}`);
    }
  }
  return { created, removed, annotated, unplaced };
}

/** A namespace's own network and subnet, from the first block of the pod pool no other namespace holds; its id, or why not. */
async function makeOwnNetwork(m: Model, ns: string, project: string, name: string, cfg: ReconcileConfig): Promise<{ id: string } | { why: string }> {
  const pool = parseCidr(cfg.podPool);
  if (!pool) return { why: `the pod pool '${cfg.podPool}' is not a CIDR` };
  const taken = new Set((await subnets.find(m, m.system, { tag: K8S_TAG })).map((s) => s.cidr));
  for (let i = 0; ; i++) {
    const block = namespaceSubnet({ base: pool.network, bits: pool.prefixLen, version: pool.version }, cfg.podPrefix, i);
    if (!block) return { why: `the pod pool ${cfg.podPool} has no free /${cfg.podPrefix} left` };
    const cidr = `${formatAddress({ version: pool.version, value: block.cidr })}/${block.prefix}`;
    if (taken.has(cidr)) continue;
    const tags = [K8S_TAG, namespaceTag(ns)];
    const net = await networks.create(m, m.system, { name, project, tags });
    try {
      await subnets.create(m, m.system, { network: net.id, project, cidr, name, tags });
    } catch (e) {
      await networks.remove(m, m.system, net.id).catch(() => undefined);
      throw e;
    }
    return { id: net.id };
  }
}
