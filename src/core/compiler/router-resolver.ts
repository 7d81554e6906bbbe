// Routers: which hosts run each router, and the router as each must build it.
// Centralised (Neutron's legacy L3 agent): the first network host runs it
// whole (interfaces, gateway, static routes, SNAT). Distributed (DVR): every
// host with ports on its networks runs an instance with the same interfaces
// (address and MAC) and routes east-west itself; the network host runs its
// SNAT instance (an address on each internal subnet, the gateway, SNAT and
// floating IPs), which the instances send outbound traffic to. Floating IPs
// are one item each, so associating one touches nothing else. The interfaces'
// MACs, addresses and MTU travel in their port items (l2-resolver.ts), which
// the same hosts plug.
//
//   reads  router, floatingip, port (router ports), subnet (gateways), agent
//   scope  the distributed routers the host runs (computed with L2's scope)
//   items  router/<id>  snat/<id>  fip/<id>
import { type FipItem, key, type RouterAdvert, type RouterItem, type SnatItem } from "../../contract/intent.ts";
import type { L2Scope } from "./l2-resolver.ts";
import { isNetworkHost, type PortRec, type RouterRec } from "./records.ts";
import type { HostSet, Resolver } from "./resolver.ts";
import { routerOf, type World } from "./world.ts";

export type RouterScope = Pick<L2Scope, "dvrRouters">;

/** The host that runs the router's namespace; null while no network host is registered. */
export function routerHost(w: World): string | null {
  return w.networkHosts()[0] ?? null;
}

const byFamily = (a: string, b: string) => Number(a.includes(":")) - Number(b.includes(":")) || (a < b ? -1 : a > b ? 1 : 0);

function gatewayOf(w: World, r: RouterRec): RouterItem["gateway"] {
  const gp = r.gateway ? w.ports.get(w.gatewayOf(r.id) ?? "") : undefined;
  if (!r.gateway || !gp) return null;
  const nexthops = new Set<string>();
  for (const f of gp.fixedIps) {
    const gw = w.subnets.get(f.subnet)?.gateway;
    if (gw) nexthops.add(gw);
  }
  return { port: gp.id, network: gp.network, nexthops: [...nexthops].sort(byFamily), snat: r.gateway.snat };
}

const staticRoutes = (r: RouterRec) => [...r.routes].sort((a, b) => byFamily(a.destination, b.destination) || (a.nexthop < b.nexthop ? -1 : 1));

/** The SNAT instance's address a distributed instance sends outbound traffic to: its lowest IPv4 csnat address. */
function snatNexthop(w: World, router: string): string | null {
  const ips: string[] = [];
  for (const id of w.snatPortsOf(router)) for (const f of w.ports.get(id)?.fixedIps ?? []) if (!f.ip.includes(":")) ips.push(f.ip);
  return ips.sort(byFamily)[0] ?? null;
}

export function routerItem(w: World, host: string, scope: RouterScope, id: string): RouterItem | undefined {
  const r = w.routers.get(id);
  if (!r) return undefined;
  const base = { kind: "router" as const, id, adminUp: r.adminUp, interfaces: [...w.interfacesOf(id)].sort() };
  if (r.distributed) {
    if (!scope.dvrRouters.has(id)) return undefined;
    const via = r.gateway ? snatNexthop(w, id) : null;
    return { ...base, distributed: true, gateway: null, routes: [...staticRoutes(r), ...(via ? [{ destination: "0.0.0.0/0", nexthop: via }] : [])], advertise: [] };
  }
  if (routerHost(w) !== host) return undefined;
  return { ...base, distributed: false, gateway: gatewayOf(w, r), routes: staticRoutes(r), advertise: advertsOf(w, base.interfaces) };
}

/** Per interface address on an IPv6 subnet with an ipv6_ra_mode: what its advertisements say (Neutron's L3 agent runs radvd for these). */
function advertsOf(w: World, interfaces: readonly string[]): RouterItem["advertise"] {
  const out: RouterAdvert[] = [];
  for (const id of interfaces) {
    for (const f of w.ports.get(id)?.fixedIps ?? []) {
      const s = w.subnets.get(f.subnet);
      if (s?.v6RaMode && s.cidr.includes(":")) out.push({ port: id, prefix: s.cidr, mode: s.v6RaMode });
    }
  }
  return out;
}

export function snatItem(w: World, host: string, id: string): SnatItem | undefined {
  const r = w.routers.get(id);
  if (!r?.distributed || !r.gateway || routerHost(w) !== host) return undefined;
  return { kind: "snat", id, adminUp: r.adminUp, interfaces: [...w.snatPortsOf(id)].sort(), gateway: gatewayOf(w, r), routes: staticRoutes(r) };
}

export function fipItem(w: World, host: string, id: string): FipItem | undefined {
  const f = w.floatingips.get(id);
  if (!f || !f.router || !f.port || !f.fixed || !w.routers.has(f.router) || routerHost(w) !== host) return undefined;
  return { kind: "fip", id, router: f.router, floating: f.floating, fixed: f.fixed, port: f.port };
}

const one = (h: string | null): HostSet => new Set(h ? [h] : []);

/** The hosts that run some instance of the routers: the network host, and the distributed ones' hosts. */
function runners(w: World, routers: Iterable<string>): HostSet {
  const hosts = new Set<string>();
  const h = routerHost(w);
  if (h) hosts.add(h);
  for (const r of routers) for (const x of w.distributedHostsOf(r)) hosts.add(x);
  return hosts;
}

const routerKeys = (r: string) => [key.router(r), key.snat(r)];

function allKeys(w: World): string[] {
  return [...[...w.routers.keys()].flatMap(routerKeys), ...[...w.floatingips.keys()].map(key.fip)];
}

export const routerResolver: Resolver<RouterScope, "router" | "snat" | "fip"> = {
  name: "routers",
  reads: ["router", "floatingip", "port", "subnet", "agent"],

  scope: (w, host) => ({ dvrRouters: w.distributedRoutersAt(host) }),

  compile(w, host, scope, put) {
    for (const id of scope.dvrRouters) put(key.router(id), routerItem(w, host, scope, id));
    if (routerHost(w) !== host) return;
    for (const id of w.routers.keys()) {
      put(key.router(id), routerItem(w, host, scope, id));
      put(key.snat(id), snatItem(w, host, id));
    }
    for (const id of w.floatingips.keys()) put(key.fip(id), fipItem(w, host, id));
  },

  items: {
    router: (w, host, scope, k) => routerItem(w, host, scope, k.id),
    snat: (w, host, _scope, k) => snatItem(w, host, k.id),
    fip: (w, host, _scope, k) => fipItem(w, host, k.id),
  },

  hosts(w, a, side): HostSet {
    switch (a.kind) {
      case "router":
        return a[side] ? runners(w, [a.id]) : new Set();
      case "floatingip":
        return a[side] ? one(routerHost(w)) : new Set();
      case "port": {
        const p: PortRec | undefined = a[side];
        const r = p && routerOf(p);
        return r ? runners(w, [r]) : new Set();
      }
      case "subnet": {
        const s = a[side];
        return s && !isEmpty(w.routersOn(s.network)) ? runners(w, w.routersOn(s.network)) : new Set();
      }
      case "agent":
        // a network host coming, going or changing moves routers from whoever served them to whoever serves now
        return isNetworkHost(a.before) || isNetworkHost(a.after) ? one(routerHost(w)) : new Set();
      default:
        return new Set();
    }
  },

  keys(w, a) {
    switch (a.kind) {
      case "router":
        return [...routerKeys(a.id), ...[...w.fipsOf(a.id)].map(key.fip)];
      case "floatingip":
        return [key.fip(a.id)];
      case "port": {
        const keys = new Set<string>();
        for (const p of [a.before, a.after]) {
          const r = p && routerOf(p);
          if (r) for (const k of routerKeys(r)) keys.add(k);
        }
        return [...keys];
      }
      case "subnet": {
        const keys = new Set<string>();
        for (const s of [a.before, a.after]) if (s) for (const r of w.routersOn(s.network)) for (const k of routerKeys(r)) keys.add(k);
        return [...keys];
      }
      case "agent":
        return isNetworkHost(a.before) || isNetworkHost(a.after) ? allKeys(w) : [];
      default:
        return [];
    }
  },
};

function isEmpty(xs: Iterable<unknown>): boolean {
  for (const _ of xs) return false;
  return true;
}
