// The southbound wire format, shared by the server and the agent.
//
//   PUT  /southbound/v1/hosts/<host>                 register {vtep, roles, capabilities, version}
//   POST /southbound/v1/hosts/<host>/heartbeat       204, or 404 when the host must register again
//   POST /southbound/v1/hosts/<host>/ports           {up: [port ids], down: [port ids]}
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
