// Attaching a workload to a network, for whoever plugs it: the CNI path
// (through the agent's southbound `attach` verb) today, the Kubernetes
// controller next. One function decides which port a workload gets: the one a
// controller already made for the pod (by pod UID), the one an earlier,
// interrupted attempt made for the container (by its tag), or a new one bound
// to the host. The agent then plumbs the container from the port's intent
// item; it never reads or writes the Neutron API itself.
import { createHash } from "node:crypto";
import type { AttachRequest, CollectRequest } from "../../contract/southbound.ts";
import { badRequest, NeutronError } from "../errors.ts";
import { OWNER } from "../model/owners.ts";
import type { Model, View } from "./model.ts";

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
async function networkFor(m: Model, req: Pick<AttachRequest, "network" | "project">, projectId: (nameOrId: string) => string): Promise<View> {
  if (typeof req.network !== "string" || !req.network) throw badRequest("the attachment needs 'network' (a Seam network name or id)");
  const sys = m.system;
  if (UUID.test(req.network)) {
    const [byId] = await m.find(sys, "network", { id: req.network });
    if (byId) return byId;
  }
  let found = await m.find(sys, "network", { name: req.network });
  const project = typeof req.project === "string" && req.project ? req.project : null;
  if (project) {
    const id = projectId(project);
    found = found.filter((n) => n.project_id === id);
  }
  if (found.length === 0) throw new NeutronError(404, "NetworkNotFound", `unknown network '${req.network}'${project ? ` in project ${project}` : ""}`);
  if (found.length > 1) throw badRequest(`more than one network is named '${req.network}'; give its id or 'project'`, "NetworkAmbiguous");
  return found[0]!;
}

export async function attachWorkload(m: Model, host: string, req: AttachRequest, projectId: (nameOrId: string) => string = (p) => p): Promise<Attached> {
  if (typeof req.containerId !== "string" || !req.containerId || req.containerId.length > 255) throw badRequest("the attachment needs 'containerId'");
  const net = await networkFor(m, req, projectId);
  const sys = m.system;
  const network = net.id as string;
  const pod = req.pod && typeof req.pod.uid === "string" && req.pod.uid ? req.pod : null;
  // A controller made the pod's port (by UID): bind it here if it is not yet.
  if (pod) {
    const [mine] = await m.find(sys, "port", { device_id: pod.uid, network_id: network, device_owner: OWNER.kubernetes });
    if (mine) {
      if (mine["binding:host_id"] !== host) await m.update(sys, "port", mine.id as string, { "binding:host_id": host });
      return { port: mine.id as string, network, created: false };
    }
  }
  const tag = containerTag(req.containerId);
  // An earlier attempt for this container may have made one before it died.
  if (req.retry) {
    const [earlier] = await m.find(sys, "port", { tags: tag, network_id: network });
    if (earlier) return { port: earlier.id as string, network, created: false };
  }
  const name = pod ? `${pod.namespace ? `${pod.namespace}/` : ""}${pod.name}` : req.containerId.slice(0, 64);
  const [port] = await m.create(sys, "port", [
    {
      network_id: network,
      project_id: net.project_id,
      name,
      device_owner: OWNER.kubernetes,
      device_id: pod?.uid ?? req.containerId.slice(0, 64),
      "binding:host_id": host,
      tags: [ATTACHED_TAG, tag],
    },
  ]);
  return { port: port!.id as string, network, created: true };
}

/** Removes the ports attached for a container on this host (and `portId`, if it is one of them); returns their ids. */
export async function detachWorkload(m: Model, host: string, containerId: string, portId?: string): Promise<string[]> {
  const sys = m.system;
  const ports = await m.find(sys, "port", { tags: containerTag(containerId) });
  if (portId && !ports.some((p) => p.id === portId)) {
    const [p] = await m.find(sys, "port", { id: portId, tags: ATTACHED_TAG });
    if (p) ports.push(p);
  }
  const mine = ports.filter((p) => p["binding:host_id"] === host);
  for (const p of mine) await removeQuietly(m, p.id as string);
  return mine.map((p) => p.id as string);
}

/**
 * Removes this host's attached ports whose container is not in `keep` (CNI
 * GC), on the scope's network when it names one; returns their ids. A scope
 * naming a network that does not exist has nothing to collect.
 */
export async function collectAttachments(m: Model, host: string, keep: readonly string[], scope: CollectRequest["scope"], projectId: (nameOrId: string) => string = (p) => p): Promise<string[]> {
  const keepTags = new Set(keep.map(containerTag));
  const query: Record<string, string> = { tags: ATTACHED_TAG, "binding:host_id": host };
  if (scope.network) {
    const net = await networkFor(m, scope as { network: string; project?: string }, projectId).catch((e) => {
      if (e instanceof NeutronError && e.status === 404) return null;
      throw e;
    });
    if (!net) return [];
    query.network_id = net.id as string;
  }
  const stale = (await m.find(m.system, "port", query)).filter((p) => !((p.tags as string[]) ?? []).some((t) => keepTags.has(t)));
  for (const p of stale) await removeQuietly(m, p.id as string);
  return stale.map((p) => p.id as string);
}

/** A port another request removed meanwhile is as good as removed. */
async function removeQuietly(m: Model, id: string): Promise<void> {
  try {
    await m.remove(m.system, "port", id);
  } catch (e) {
    if (!(e instanceof NeutronError && e.status === 404)) throw e;
  }
}
