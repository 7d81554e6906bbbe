// Attaching a workload to a network, for whoever plugs it: the CNI path
// (through the agent's southbound `attach` verb), for containers and for the
// Kubernetes controller's pods. One function decides which port a workload
// gets: the one the controller made for the pod (by pod UID), the one an earlier,
// interrupted attempt made for the container (by its tag), or a new one bound
// to the host. The agent then plumbs the container from the port's intent
// item; it never reads or writes the Neutron API itself.
import { createHash } from "node:crypto";
import type { AttachRequest, CollectRequest } from "../../contract/southbound.ts";
import { badRequest, NeutronError } from "../errors.ts";
import { OWNER } from "../model/owners.ts";
import { type NetworkView, networks, type PortView, ports } from "./commands.ts";
import type { Model } from "./model.ts";

/** What marks a port as made for a container by the attach verb (and so removable by detach and GC). */
export const ATTACHED_TAG = "seam-cni";

/** The tag a container's port carries (tags are at most 60 characters; container ids are 64). */
export const containerTag = (containerId: string) => `cni-${createHash("sha1").update(containerId).digest("hex").slice(0, 20)}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface Attached {
  readonly port: string;
  readonly network: string;
  /** false: an existing port (the controller's, or an earlier attempt's) */
  readonly created: boolean;
}

/** The network a request names: an id, or a name (in a project, by id or by name). */
async function networkFor(m: Model, req: Pick<AttachRequest, "network" | "project">, projectId: (nameOrId: string) => string): Promise<NetworkView> {
  if (typeof req.network !== "string" || !req.network) throw badRequest("the attachment needs 'network' (a Seam network name or id)");
  const sys = m.system;
  if (UUID.test(req.network)) {
    const [byId] = await networks.find(m, sys, { id: req.network });
    if (byId) return byId;
  }
  let found = await networks.find(m, sys, { name: req.network });
  const project = typeof req.project === "string" && req.project ? req.project : null;
  if (project) {
    const id = projectId(project);
    found = found.filter((n) => n.project === id);
  }
  if (found.length === 0) throw new NeutronError(404, "NetworkNotFound", `unknown network '${req.network}'${project ? ` in project ${project}` : ""}`);
  if (found.length > 1) throw badRequest(`more than one network is named '${req.network}'; give its id or 'project'`, "NetworkAmbiguous");
  return found[0]!;
}

/**
 * The pod's port the Kubernetes controller made (by UID; on `network` when the
 * CNI config names one). With no network named, the controller alone knows
 * where the pod belongs (its namespace's annotation or own network), so this
 * waits for it: it makes the port when the pod is scheduled, which is before
 * the kubelet asks, so the wait is nearly always zero.
 */
async function podPort(m: Model, uid: string, network: string | undefined, waitMs: number): Promise<PortView | null> {
  const until = Date.now() + waitMs;
  for (;;) {
    const [mine] = await ports.find(m, m.system, { device: uid, owner: OWNER.kubernetes, ...(network ? { network } : {}) });
    if (mine || Date.now() >= until) return mine ?? null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function attachWorkload(m: Model, host: string, req: AttachRequest, projectId: (nameOrId: string) => string = (p) => p): Promise<Attached> {
  const podWaitMs = m.config.podPortWaitSec * 1000;
  if (typeof req.containerId !== "string" || !req.containerId || req.containerId.length > 255) throw badRequest("the attachment needs 'containerId'");
  const sys = m.system;
  const pod = req.pod && typeof req.pod.uid === "string" && req.pod.uid ? req.pod : null;
  const named = req.network !== undefined && req.network !== "";
  if (!named && !pod) throw badRequest("the attachment needs 'network' (a Seam network name or id), or a Kubernetes pod whose port Seam's controller makes");
  const net = named ? await networkFor(m, req, projectId) : null;
  // A controller made the pod's port (by UID): bind it here if it is not yet.
  if (pod) {
    const mine = await podPort(m, pod.uid, net?.id, net ? 0 : podWaitMs);
    if (mine) {
      if (mine.host !== host) await ports.bind(m, sys, mine.id, host);
      return { port: mine.id, network: mine.network, created: false };
    }
  }
  if (!net) {
    const who = `${pod!.namespace ? `${pod!.namespace}/` : ""}${pod!.name}`;
    throw new NeutronError(503, "PodPortNotReady", `pod ${who} has no port after ${podWaitMs / 1000} s: is a Seam server running the Kubernetes controller (--kubeconfig), and does the pod's namespace have a network?`);
  }
  const network = net.id;
  const tag = containerTag(req.containerId);
  // An earlier attempt for this container may have made one before it died.
  if (req.retry) {
    const [earlier] = await ports.find(m, sys, { tag, network });
    if (earlier) return { port: earlier.id, network, created: false };
  }
  const port = await ports.create(m, sys, {
    network,
    project: net.project,
    name: pod ? `${pod.namespace ? `${pod.namespace}/` : ""}${pod.name}` : req.containerId.slice(0, 64),
    owner: OWNER.kubernetes,
    device: pod?.uid ?? req.containerId.slice(0, 64),
    host,
    tags: [ATTACHED_TAG, tag],
  });
  return { port: port.id, network, created: true };
}

/** Removes the ports attached for a container on this host (and `portId`, if it is one of them); returns their ids. */
export async function detachWorkload(m: Model, host: string, containerId: string, portId?: string): Promise<string[]> {
  const sys = m.system;
  const found = await ports.find(m, sys, { tag: containerTag(containerId) });
  if (portId && !found.some((p) => p.id === portId)) found.push(...(await ports.find(m, sys, { id: portId, tag: ATTACHED_TAG })));
  const mine = found.filter((p) => p.host === host);
  for (const p of mine) await removeQuietly(m, p.id);
  return mine.map((p) => p.id);
}

/**
 * Removes this host's attached ports whose container is not in `keep` (CNI
 * GC), on the scope's network when it names one; returns their ids. A scope
 * naming a network that does not exist has nothing to collect.
 */
export async function collectAttachments(m: Model, host: string, keep: readonly string[], scope: CollectRequest["scope"], projectId: (nameOrId: string) => string = (p) => p): Promise<string[]> {
  const keepTags = new Set(keep.map(containerTag));
  let network: string | undefined;
  if (scope.network) {
    const net = await networkFor(m, scope as { network: string; project?: string }, projectId).catch((e) => {
      if (e instanceof NeutronError && e.status === 404) return null;
      throw e;
    });
    if (!net) return [];
    network = net.id;
  }
  const stale = (await ports.find(m, m.system, { tag: ATTACHED_TAG, host, ...(network ? { network } : {}) })).filter((p) => !p.tags.some((t) => keepTags.has(t)));
  for (const p of stale) await removeQuietly(m, p.id);
  return stale.map((p) => p.id);
}

/** A port another request removed meanwhile is as good as removed. */
async function removeQuietly(m: Model, id: string): Promise<void> {
  try {
    await ports.remove(m, m.system, id);
  } catch (e) {
    if (!(e instanceof NeutronError && e.status === 404)) throw e;
  }
}
