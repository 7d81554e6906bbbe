// The southbound wire format, shared by the server and the agent.
//
//   PUT  /southbound/v1/hosts/<host>                 register {vtep, roles, capabilities, version}
//   POST /southbound/v1/hosts/<host>/heartbeat       204, or 404 when the host must register again
//   POST /southbound/v1/hosts/<host>/ports           StatusReport: {up, down} port ids (and routers, floating IPs)
//   POST /southbound/v1/hosts/<host>/attachments     attach a workload: AttachRequest -> Attachment (201 made, 200 found)
//   DELETE /southbound/v1/hosts/<host>/attachments/<container>[?port=<id>]   detach: {removed: [port ids]}
//   POST /southbound/v1/hosts/<host>/attachments/collect   CollectRequest -> {removed: [port ids]}
//   GET  /southbound/v1/hosts/<host>/intent          the HostIntent now, {revision, items}
//   GET  /southbound/v1/hosts/<host>/intent?watch=1&since=<rev>
//        NDJSON: a SNAPSHOT (or, when resuming from `since`, a DELTA with what
//        changed after it), then DELTAs, with BOOKMARKs while idle.
import type { IntentItem } from "./intent.ts";

export type IntentMessage =
  | { readonly type: "SNAPSHOT"; readonly revision: number; readonly items: Record<string, IntentItem> }
  | { readonly type: "DELTA"; readonly revision: number; readonly set: Record<string, IntentItem>; readonly del: readonly string[] }
  | { readonly type: "BOOKMARK"; readonly revision: number };

export const SOUTHBOUND = "/southbound/v1";

/** What an agent says of itself when it registers (again after every start). */
export interface Registration {
  readonly vtep: string;
  readonly roles?: readonly string[];
  readonly capabilities?: Record<string, unknown>;
  readonly version?: string;
}

/** Which local ports the agent found plugged (device on its bridge, up, filtered) and which not. */
export interface PortStatusReport {
  readonly up: readonly string[];
  readonly down: readonly string[];
}

/** What an agent reports: its ports, and on a network host the routers it built and the floating IPs in their kernel. */
export interface StatusReport extends PortStatusReport {
  readonly routers?: PortStatusReport;
  readonly floatingips?: PortStatusReport;
}

/** A workload to put on a network: the CNI's ADD, through the agent. */
export interface AttachRequest {
  /** a network id, or a name (with `project` when names repeat across projects); for a pod, may be left to the controller */
  readonly network?: string;
  /** project id or name */
  readonly project?: string;
  /** the runtime's container id: what DEL and GC name the attachment by */
  readonly containerId: string;
  /** the pod, when a Kubernetes runtime sends one: its port may already exist (made by the controller) */
  readonly pod?: { readonly namespace?: string; readonly name: string; readonly uid: string };
  /** an earlier attempt for this container got far enough that a port may exist */
  readonly retry?: boolean;
}

/** Which port the workload has; the agent plumbs it from the port's intent item. */
export interface Attachment {
  readonly port: string;
  readonly network: string;
}

/** CNI GC: remove this host's attachments for containers not in `keep`, on one network if `scope` names it. */
export interface CollectRequest {
  readonly keep: readonly string[];
  readonly scope: { readonly network?: string; readonly project?: string };
}
