// Routers: which host runs each router (centralised: the first network host,
// as Neutron's legacy L3 agent), the router as that host must build it
// (interfaces, gateway, static routes, SNAT) and its floating IPs, one item
// each so that associating one touches nothing else. The interfaces' MACs,
// addresses and MTU travel in their port items (l2-resolver.ts), which the
// same host plugs.
//
//   reads  router, floatingip, port (router ports), subnet (gateways), agent
//   scope  nothing: a router change concerns one host, named by routerHost
//   items  router/<id>  fip/<id>
import { type FipItem, key, type RouterItem } from "../../contract/intent.ts";
import { isNetworkHost, type PortRec } from "./records.ts";
import type { HostSet, Resolver } from "./resolver.ts";
import { routerOf, type World } from "./world.ts";

export type RouterScope = Record<never, never>;

/** The host that runs the router's namespace; null while no network host is registered. */
export function routerHost(w: World): string | null {
  return w.networkHosts()[0] ?? null;
}

const byFamily = (a: string, b: string) => Number(a.includes(":")) - Number(b.includes(":")) || (a < b ? -1 : a > b ? 1 : 0);

export function routerItem(w: World, host: string, id: string): RouterItem | undefined {
  const r = w.routers.get(id);
  if (!r || routerHost(w) !== host) return undefined;
  const gwPort = w.gatewayOf(id);
  const gp = gwPort ? w.ports.get(gwPort) : undefined;
  let gateway: RouterItem["gateway"] = null;
  if (r.gateway && gp) {
    const nexthops = new Set<string>();
    for (const f of gp.fixedIps) {
      const gw = w.subnets.get(f.subnet)?.gateway;
      if (gw) nexthops.add(gw);
    }
    gateway = { port: gp.id, network: gp.network, nexthops: [...nexthops].sort(byFamily), snat: r.gateway.snat };
  }
  return {
    kind: "router",
    id,
    adminUp: r.adminUp,
    interfaces: [...w.interfacesOf(id)].sort(),
    gateway,
    routes: [...r.routes].sort((a, b) => byFamily(a.destination, b.destination) || (a.nexthop < b.nexthop ? -1 : 1)),
  };
}

export function fipItem(w: World, host: string, id: string): FipItem | undefined {
  const f = w.floatingips.get(id);
  if (!f || !f.router || !f.port || !f.fixed || !w.routers.has(f.router) || routerHost(w) !== host) return undefined;
  return { kind: "fip", id, router: f.router, floating: f.floating, fixed: f.fixed, port: f.port };
}

const one = (h: string | null): HostSet => new Set(h ? [h] : []);

function allKeys(w: World): string[] {
  return [...[...w.routers.keys()].map(key.router), ...[...w.floatingips.keys()].map(key.fip)];
}

export const routerResolver: Resolver<RouterScope, "router" | "fip"> = {
  name: "routers",
  reads: ["router", "floatingip", "port", "subnet", "agent"],

  scope: () => ({}),

  compile(w, host, _scope, put) {
    if (routerHost(w) !== host) return;
    for (const id of w.routers.keys()) put(key.router(id), routerItem(w, host, id));
    for (const id of w.floatingips.keys()) put(key.fip(id), fipItem(w, host, id));
  },

  items: {
    router: (w, host, _scope, k) => routerItem(w, host, k.id),
    fip: (w, host, _scope, k) => fipItem(w, host, k.id),
  },

  hosts(w, a, side): HostSet {
    switch (a.kind) {
      case "router":
      case "floatingip":
        return a[side] ? one(routerHost(w)) : new Set();
      case "port": {
        const p: PortRec | undefined = a[side];
        return p && routerOf(p) ? one(routerHost(w)) : new Set();
      }
      case "subnet": {
        const s = a[side];
        return s && !isEmpty(w.routersOn(s.network)) ? one(routerHost(w)) : new Set();
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
        return [key.router(a.id), ...[...w.fipsOf(a.id)].map(key.fip)];
      case "floatingip":
        return [key.fip(a.id)];
      case "port": {
        const keys = new Set<string>();
        for (const p of [a.before, a.after]) {
          const r = p && routerOf(p);
          if (r) keys.add(key.router(r));
        }
        return [...keys];
      }
      case "subnet": {
        const keys = new Set<string>();
        for (const s of [a.before, a.after]) if (s) for (const r of w.routersOn(s.network)) keys.add(key.router(r));
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
