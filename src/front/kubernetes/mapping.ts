// Kubernetes objects -> what Seam should hold for them, as pure functions:
// which network a namespace's pods go on, and which port each pod needs. The
// controller (controller.ts) compares this with what the model holds and
// makes the difference; nothing here talks to either side.

/** The annotation that places a namespace's pods on a named network of a named project (seeds/001). */
export const NETWORK_ANNOTATION = "seam.io/network";
/** Written back on a pod: its port's id, network and address. */
export const PORT_ANNOTATION = "seam.io/port";
/** What marks a port, network or subnet as the Kubernetes controller's (it removes only these). */
export const K8S_TAG = "seam-k8s";
/** ... and which pod or namespace it was made for (tags are at most 60 characters; a UID is 36). */
export const podTag = (uid: string) => `k8s-pod-${uid}`;
export const namespaceTag = (name: string) => `k8s-ns-${name}`;

export interface NamespaceLike {
  readonly metadata?: { readonly name?: string; readonly uid?: string; readonly annotations?: Readonly<Record<string, string>>; readonly labels?: Readonly<Record<string, string>> };
}

export interface PodLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly deletionTimestamp?: unknown; readonly annotations?: Readonly<Record<string, string>>; readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: { readonly nodeName?: string; readonly hostNetwork?: boolean };
  readonly status?: { readonly phase?: string };
}

/** Where a namespace's pods go: a named network (the annotation), or one Seam makes for the namespace. */
export type Placement =
  | { readonly kind: "named"; readonly project: string; readonly network: string }
  | { readonly kind: "own"; readonly project: string; readonly network: string }
  | { readonly kind: "invalid"; readonly reason: string };

/** The project a namespace without an annotation belongs to. */
export const namespaceProject = (ns: string) => `k8s-${ns}`;

export function placementOf(ns: NamespaceLike): Placement {
  const name = ns.metadata?.name ?? "";
  const raw = ns.metadata?.annotations?.[NETWORK_ANNOTATION];
  if (raw === undefined) return { kind: "own", project: namespaceProject(name), network: `k8s-${name}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { kind: "invalid", reason: `${NETWORK_ANNOTATION} is not JSON: ${raw.slice(0, 80)}` };
  }
  const p = parsed as { project?: unknown; name?: unknown };
  if (!p || typeof p !== "object" || typeof p.name !== "string" || !p.name || typeof p.project !== "string" || !p.project) {
    return { kind: "invalid", reason: `${NETWORK_ANNOTATION} needs {"project": "...", "name": "..."}` };
  }
  return { kind: "named", project: p.project, network: p.name };
}

/** What a pod needs from Seam: a port, once it is scheduled, until it is gone or done. */
export interface PodPort {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
}

export function podPortOf(pod: PodLike): PodPort | null {
  const m = pod.metadata;
  if (!m?.uid || !m.name || !m.namespace) return null;
  if (pod.spec?.hostNetwork) return null; // the node's own network: nothing of Seam's
  if (!pod.spec?.nodeName) return null; // not scheduled yet: the port is made when the node is known
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return null; // its sandbox is gone, and its address with it
  return { uid: m.uid, namespace: m.namespace, name: m.name, node: pod.spec.nodeName };
}

/** The annotation value a pod's port is described by. */
export const portAnnotation = (p: { id: string; network: string; address: string | null }) => JSON.stringify({ id: p.id, network: p.network, address: p.address });

/**
 * The subnet of a namespace's own network: the `index`-th block of `prefix`
 * bits in the pod pool (`10.244.0.0/16` with 24: 10.244.<index>.0/24).
 */
export function namespaceSubnet(pool: { base: bigint; bits: number; version: 4 | 6 }, prefix: number, index: number): { cidr: bigint; prefix: number } | null {
  const width = pool.version === 4 ? 32 : 128;
  if (prefix < pool.bits || prefix > width) return null;
  const count = 1n << BigInt(prefix - pool.bits);
  if (BigInt(index) >= count) return null;
  return { cidr: pool.base + (BigInt(index) << BigInt(width - prefix)), prefix };
}
