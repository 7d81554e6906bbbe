// One router: its spec + what its namespace holds -> the operations (pure).
// Lines for `ip -batch` on the host (the veths, made with their far end
// already in the namespace) and inside the namespace (MACs, addresses,
// routes), the NAT transaction, and what follows from it. Nothing is flushed:
// an address, route or map element is added or removed only when it differs,
// so a restarted agent that finds everything in place does nothing at all.
import { isRouterDevice } from "../naming.ts";
import { planNat } from "./nat.ts";
import type { ObservedRouter } from "./observe.ts";
import type { RouterRoute, RouterSpec } from "./spec.ts";

export interface RouterPlan {
  /** create the namespace first */
  readonly addNetns: boolean;
  /** `ip -batch` lines in the agent's namespace */
  readonly host: readonly string[];
  /** turn IPv4 and IPv6 forwarding on */
  readonly forwarding: boolean;
  /** `ip -batch` lines inside the namespace, in order */
  readonly inside: readonly string[];
  /** one nft transaction inside the namespace */
  readonly nft: readonly string[];
  /** floating addresses whose flows must be forgotten (conntrack) */
  readonly moved: readonly string[];
  /** addresses to announce (gratuitous ARP): a new interface's (neighbours on this segment may hold another MAC) and new floating IPs */
  readonly announce: readonly { readonly dev: string; readonly ip: string }[];
  /** the remove phase: `ip -batch` lines inside the namespace (links no port wants any more) */
  readonly stale: readonly string[];
}

const routeKey = (r: RouterRoute) => `${r.dst}|${r.via}`;
const isV6 = (ip: string) => ip.includes(":");

export function planRouter(spec: RouterSpec, have: ObservedRouter | null): RouterPlan {
  const host: string[] = [];
  const inside: string[] = [];
  const lo = have?.links.get("lo");
  if (!lo?.up) inside.push("link set dev lo up");

  const announce = new Map<string, { dev: string; ip: string }>();
  for (const l of spec.links) {
    const cur = have?.links.get(l.dev);
    if (!cur) {
      host.push(`link add ${l.peer} mtu ${l.mtu} type veth peer name ${l.dev} netns ${spec.netns}`);
      for (const a of l.addresses.filter((x) => !isV6(x))) announce.set(a.split("/")[0]!, { dev: l.dev, ip: a.split("/")[0]! });
    }
    if (!cur || cur.mac !== l.mac || cur.mtu !== l.mtu || cur.up !== l.up) inside.push(`link set dev ${l.dev} address ${l.mac} mtu ${l.mtu} ${l.up ? "up" : "down"}`);
    const want = new Set(l.addresses);
    const now = new Set(cur?.addresses ?? []);
    for (const a of now) if (!want.has(a)) inside.push(`addr del ${a} dev ${l.dev}`);
    for (const a of want) if (!now.has(a)) inside.push(`addr add ${a} dev ${l.dev}${isV6(a) ? " nodad" : ""}`);
  }

  // routes last: their next hops need the addresses above
  const want = new Map(spec.routes.map((r) => [routeKey(r), r]));
  const now = new Map((have?.routes ?? []).map((r) => [routeKey(r), r]));
  for (const [k, r] of now) if (!want.has(k)) inside.push(`route del ${r.dst} via ${r.via} proto static`);
  for (const [k, r] of want) if (!now.has(k)) inside.push(`route replace ${r.dst} via ${r.via} proto static`);

  const wanted = new Set(spec.links.map((l) => l.dev));
  const stale = [...(have?.links.keys() ?? [])].filter((n) => isRouterDevice(n) && !wanted.has(n)).map((n) => `link del ${n}`);

  const natPlan = planNat(spec.nat, have?.nat ?? null);
  const gw = spec.nat?.gatewayDev;
  if (gw) for (const ip of natPlan.added) announce.set(ip, { dev: gw, ip });
  return {
    addNetns: have === null,
    host,
    forwarding: !have?.forwarding,
    inside,
    nft: natPlan.lines,
    moved: natPlan.moved,
    announce: [...announce.values()],
    stale,
  };
}

/** Whether a plan changes nothing (the router is built as specified). */
export const isNoop = (p: RouterPlan) => !p.addNetns && !p.host.length && !p.forwarding && !p.inside.length && !p.nft.length && !p.stale.length;
