// The southbound wire format, shared by the server and the agent.
//
//   PUT  /southbound/v1/hosts/<host>                 register {vtep, roles, capabilities, version}
//   POST /southbound/v1/hosts/<host>/heartbeat       204, or 404 when the host must register again
//   POST /southbound/v1/hosts/<host>/ports           {up: [port ids], down: [port ids]}
//   GET  /southbound/v1/hosts/<host>/intent          the HostIntent now, {revision, items}
//   GET  /southbound/v1/hosts/<host>/intent?watch=1&since=<rev>
//        NDJSON: a SNAPSHOT (or, when resuming from `since`, a DELTA with what
//        changed after it), then DELTAs, with BOOKMARKs while idle.
import type { IntentItem } from "../core/compiler/intent.ts";

export type IntentMessage =
  | { readonly type: "SNAPSHOT"; readonly revision: number; readonly items: Record<string, IntentItem> }
  | { readonly type: "DELTA"; readonly revision: number; readonly set: Record<string, IntentItem>; readonly del: readonly string[] }
  | { readonly type: "BOOKMARK"; readonly revision: number };

export const SOUTHBOUND = "/southbound/v1";
