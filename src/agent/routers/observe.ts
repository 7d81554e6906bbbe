// Reads one router's namespace in one process: its links with their
// addresses, the static routes (ours: `proto static`), forwarding, and the
// NAT table. Parsing is pure (parseRouter), so the planner is tested on text.
import type { Exec } from "../../os/exec.ts";
import { nat } from "../naming.ts";
import { type ObservedNat, parseNat } from "./nat.ts";
import type { RouterRoute } from "./spec.ts";

export interface ObservedRouterLink {
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  /** address/prefix, link-local IPv6 left out (the kernel's, not ours) */
  readonly addresses: readonly string[];
}

export interface ObservedRouter {
  readonly links: ReadonlyMap<string, ObservedRouterLink>;
  readonly routes: readonly RouterRoute[];
  readonly forwarding: boolean;
  readonly nat: ObservedNat | null;
}

const SEP = "@@seam@@";
const SCRIPT = [
  "ip -j addr show",
  "ip -j route show proto static",
  "ip -j -6 route show proto static",
  "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding",
  `nft -j list table ip ${nat.table} 2>/dev/null || true`,
].join(`; echo ${SEP}; `);

interface IpAddr {
  ifname: string;
  address?: string;
  mtu: number;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
}

export function parseRouter(out: string): ObservedRouter {
  const [addrs = "", r4 = "", r6 = "", fwd = "", nft = ""] = out.split(SEP);
  const json = <T>(s: string): T[] => (s.trim() ? (JSON.parse(s) as T[]) : []);
  const links = new Map<string, ObservedRouterLink>();
  for (const l of json<IpAddr>(addrs)) {
    const addresses = (l.addr_info ?? []).filter((a) => !(a.family === "inet6" && a.scope === "link")).map((a) => `${a.local}/${a.prefixlen}`);
    links.set(l.ifname, { name: l.ifname, mac: l.address ?? "", mtu: l.mtu, up: (l.flags ?? []).includes("UP"), addresses });
  }
  const routes: RouterRoute[] = [];
  for (const text of [r4, r6]) for (const r of json<IpRoute>(text)) if (r.gateway) routes.push({ dst: r.dst, via: r.gateway });
  return { links, routes, forwarding: fwd.trim().split(/\s+/).every((x) => x === "1"), nat: parseNat(nft) };
}

export async function observeRouter(exec: Exec): Promise<ObservedRouter> {
  return parseRouter(await exec.run("sh", ["-c", SCRIPT]));
}
