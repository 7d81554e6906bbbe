// HostIntent -> each router as its namespace must hold it (pure): the veths
// (with the MAC, addresses and MTU of their port items), the routes, and the
// NAT the gateway does. The planner (plan.ts) compares a spec with what the
// kernel holds; the manager remembers the specs it applied.
import { type IntentItem, itemsOf, key, type PortItem, type RouterItem, type SnatItem } from "../../contract/intent.ts";
import { device, netns } from "../naming.ts";

export interface RouterLink {
  /** inside the namespace */
  readonly dev: string;
  /** on the host, plugged into the network's bridge by the links manager */
  readonly peer: string;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  /** address/prefix; on the gateway also each floating IP as /32 (so the router answers ARP for it) */
  readonly addresses: readonly string[];
}

export interface RouterRoute {
  /** "default" or a prefix; a host route without its /32 or /128, as `ip route` prints it */
  readonly dst: string;
  readonly via: string;
}

export interface NatSpec {
  readonly gatewayDev: string;
  /** the gateway's address outbound traffic is translated to; null: enable_snat off */
  readonly snat: string | null;
  /** floating -> fixed */
  readonly fips: ReadonlyMap<string, string>;
}

export interface RouterSpec {
  /** the router (model id); a host may run two instances of one: a distributed one and its SNAT one */
  readonly id: string;
  readonly netns: string;
  readonly links: readonly RouterLink[];
  readonly routes: readonly RouterRoute[];
  /** null: no gateway, no NAT table */
  readonly nat: NatSpec | null;
  /** fip id -> floating address (what the status reports and the conntrack cleanup names) */
  readonly fipIds: ReadonlyMap<string, string>;
  /** router advertisements (radvd.ts): per interface device, a prefix and its mode */
  readonly ra: readonly { readonly dev: string; readonly prefix: string; readonly mode: "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless" }[];
}

const isV6 = (ip: string) => ip.includes(":");

/** A destination as `ip route` prints it. */
export function routeDst(cidr: string): string {
  if (cidr === "0.0.0.0/0" || cidr === "::/0") return "default";
  if (!isV6(cidr) && cidr.endsWith("/32")) return cidr.slice(0, -3);
  if (isV6(cidr) && cidr.endsWith("/128")) return cidr.slice(0, -4);
  return cidr;
}

type Role = "interface" | "gateway" | "snat";
const DEVICE: Readonly<Record<Role, (port: string) => string>> = { interface: device.routerInterface, gateway: device.routerGateway, snat: device.routerSnat };

function link(p: PortItem, role: Role, extra: readonly string[] = []): RouterLink {
  return {
    dev: DEVICE[role](p.id),
    peer: p.device,
    mac: p.mac,
    mtu: p.mtu,
    up: p.adminUp,
    addresses: [...p.addresses, ...extra],
  };
}

/**
 * The router instances this host runs, by namespace. A router
 * administratively down is not built (Neutron's L3 agent drops it too).
 * Floating IPs go where the gateway is: a distributed router's SNAT instance.
 */
export function routerSpecs(items: ReadonlyMap<string, IntentItem>, suffix = ""): Map<string, RouterSpec> {
  const portOf = (id: string) => {
    const p = items.get(key.port(id));
    return p?.kind === "port" ? p : undefined;
  };
  const fipsByRouter = new Map<string, { id: string; floating: string; fixed: string }[]>();
  for (const f of itemsOf(items, "fip")) {
    const list = fipsByRouter.get(f.router) ?? [];
    list.push(f);
    fipsByRouter.set(f.router, list);
  }
  const out = new Map<string, RouterSpec>();
  const add = (sp: RouterSpec) => out.set(sp.netns, sp);
  for (const r of itemsOf(items, "router")) if (r.adminUp) add(spec(r, netns.router(r.id, suffix), "interface", portOf, r.distributed ? [] : (fipsByRouter.get(r.id) ?? [])));
  for (const r of itemsOf(items, "snat")) if (r.adminUp) add(spec(r, netns.snat(r.id, suffix), "snat", portOf, fipsByRouter.get(r.id) ?? []));
  return out;
}

function spec(r: RouterItem | SnatItem, ns: string, role: "interface" | "snat", portOf: (id: string) => PortItem | undefined, fips: readonly { id: string; floating: string; fixed: string }[]): RouterSpec {
  const links: RouterLink[] = [];
  for (const id of r.interfaces) {
    const p = portOf(id);
    if (p) links.push(link(p, role));
  }
  const routes: RouterRoute[] = [];
  let nat: NatSpec | null = null;
  const fipIds = new Map<string, string>();
  const gp = r.gateway ? portOf(r.gateway.port) : undefined;
  if (r.gateway && gp) {
    const sorted = [...fips].sort((a, b) => (a.floating < b.floating ? -1 : 1));
    const gw = link(gp, "gateway", sorted.map((f) => `${f.floating}/32`));
    links.push(gw);
    for (const nh of r.gateway.nexthops) routes.push({ dst: "default", via: nh });
    const v4 = gp.addresses.find((a) => !isV6(a));
    const map = new Map<string, string>();
    for (const f of sorted) {
      map.set(f.floating, f.fixed);
      fipIds.set(f.id, f.floating);
    }
    nat = { gatewayDev: gw.dev, snat: r.gateway.snat && v4 ? v4.split("/")[0]! : null, fips: map };
  }
  for (const s of r.routes) routes.push({ dst: routeDst(s.destination), via: s.nexthop });
  const ra = "advertise" in r ? r.advertise.filter((a) => portOf(a.port)).map((a) => ({ dev: DEVICE[role](a.port), prefix: a.prefix, mode: a.mode })) : [];
  return { id: r.id, netns: ns, links, routes, nat, fipIds, ra };
}

/** Equal for equal specs (the manager's memory of what it applied); Maps included, which JSON alone drops. */
export const fingerprint = (spec: RouterSpec) => JSON.stringify(spec, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
