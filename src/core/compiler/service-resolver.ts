// Services (Kubernetes ClusterIP, F2): translated at the client's own host,
// on the client network's bridge, so every reply comes back through the
// conntrack that made the translation whatever path it took (a distributed
// router on the backend's host included; docs/kubernetes.md). A service's
// client networks are its backends' networks and the networks a router joins
// to the service subnet's network (seeds/003: the router that joins the VM
// and pod subnets to the service subnet). Each host with a bound port on a
// client network gets the service, with the MAC each backend is sent to from
// each of its client networks.
//
//   reads  service, port (backends, router interfaces, where clients are)
//   scope  none of its own: a host's clients are its bound ports' networks
//   items  svc/<id>
import { key, type SvcItem } from "../../contract/intent.ts";
import type { PortRec, ServiceRec } from "./records.ts";
import type { HostSet, Resolver, ScopePart } from "./resolver.ts";
import { type Applied, routerOf, type World } from "./world.ts";

/** Each router interface's network, per router with an interface on `network`. */
function joinedBy(w: World, network: string): Map<string, Map<string, PortRec>> {
  const out = new Map<string, Map<string, PortRec>>();
  for (const r of w.routersOn(network)) {
    const legs = new Map<string, PortRec>();
    for (const id of w.interfacesOf(r)) {
      const p = w.ports.get(id);
      if (p) legs.set(p.network, p);
    }
    if (legs.has(network)) out.set(r, legs);
  }
  return out;
}

/** The networks whose workloads may reach the service: its backends' and those joined to its subnet by a router. */
export function clientNetworks(w: World, s: ServiceRec): Set<string> {
  const out = new Set<string>();
  for (const p of s.ports) for (const t of p.targets) {
    const port = t.portId ? w.ports.get(t.portId) : undefined;
    if (port) out.add(port.network);
  }
  for (const legs of joinedBy(w, s.network).values()) for (const net of legs.keys()) if (net !== s.network) out.add(net);
  return out;
}

/** The MAC a backend's traffic from `client` goes to: the backend's own on the same network, else a joining router's interface. */
function nexthopMac(w: World, client: string, backend: PortRec): string | null {
  if (backend.network === client) return backend.mac;
  for (const legs of joinedBy(w, client).values()) if (legs.has(backend.network)) return legs.get(client)!.mac;
  return null;
}

const byIp = (a: { ip: string }, b: { ip: string }) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);

export function svcItem(w: World, host: string, id: string): SvcItem | undefined {
  const s = w.services.get(id);
  const subnet = s && w.subnets.get(s.subnet);
  if (!s || !subnet) return undefined;
  const clients: SvcItem["clients"][number][] = [];
  for (const net of [...clientNetworks(w, s)].sort()) {
    if (w.portCountAt(net, host) === 0) continue;
    const nexthops = new Map<string, string>();
    for (const p of s.ports) for (const t of p.targets) {
      const backend = t.portId ? w.ports.get(t.portId) : undefined;
      const mac = backend ? nexthopMac(w, net, backend) : null;
      if (mac) nexthops.set(t.ip, mac);
    }
    clients.push({ network: net, nexthops: [...nexthops].map(([ip, mac]) => ({ ip, mac })).sort(byIp) });
  }
  if (!clients.length) return undefined;
  const ports = s.ports.map((p) => ({ protocol: p.protocol, port: p.port, targets: p.targets.map((t) => ({ ip: t.ip, port: t.port })).sort((a, b) => byIp(a, b) || a.port - b.port) }));
  return { kind: "svc", id, vip: s.vip, subnet: subnet.cidr, ports, clients };
}

function hostsOf(w: World, s: ServiceRec | undefined, into: Set<string>): void {
  if (!s) return;
  for (const net of clientNetworks(w, s)) for (const h of w.boundHostsOn(net)) into.add(h);
}

/**
 * network -> the services it is a client network of, per World: built when
 * first asked after a change that can move client networks (a service, a
 * router's port, a backend's port), so the common change, a port that is
 * none of those, looks it up instead of scanning every service.
 */
const serving = new WeakMap<World, Map<string, Set<string>>>();

function servicesServing(w: World, network: string): ReadonlySet<string> {
  let index = serving.get(w);
  if (!index) {
    index = new Map();
    for (const s of w.services.values()) {
      for (const net of clientNetworks(w, s)) {
        let set = index.get(net);
        if (!set) index.set(net, (set = new Set()));
        set.add(s.id);
      }
    }
    serving.set(w, index);
  }
  return index.get(network) ?? new Set();
}

/** Whether a change (already applied) can move some service's client networks. */
const movesClients = (w: World, a: Applied) =>
  a.kind === "service" || (a.kind === "port" && [a.before, a.after].some((p) => p && (routerOf(p) || w.servicesTargeting(p.id).size)));

export const serviceResolver: Resolver<ScopePart, "svc"> = {
  name: "services",
  reads: ["service", "port", "subnet"],

  scope: () => ({}),

  compile(w, host, _scope, put) {
    for (const id of w.services.keys()) put(key.svc(id), svcItem(w, host, id));
  },

  items: {
    svc: (w, host, _scope, k) => svcItem(w, host, k.id),
  },

  hosts(w, a, side): HostSet {
    const out = new Set<string>();
    const rec = side === "before" ? a.before : a.after;
    switch (a.kind) {
      case "service":
        hostsOf(w, rec as ServiceRec | undefined, out);
        return out;
      case "port": {
        const p = rec as PortRec | undefined;
        if (!p) return out;
        if (routerOf(p)) return w.services.size ? "all" : out;
        // a backend's MAC or place matters to every client host; any other port only to its own host (a client there, or not)
        for (const id of w.servicesTargeting(p.id)) hostsOf(w, w.services.get(id), out);
        if (p.host && servicesServing(w, p.network).size) out.add(p.host);
        return out;
      }
      case "subnet":
        for (const s of w.services.values()) if (s.subnet === a.id) hostsOf(w, s, out);
        return out;
      default:
        return out;
    }
  },

  keys(w, a) {
    // called once per change, after it is applied and before the hosts after it are asked
    if (movesClients(w, a)) serving.delete(w);
    switch (a.kind) {
      case "service":
        return [key.svc(a.id)];
      case "port": {
        const ids = new Set<string>();
        for (const p of [a.before, a.after]) {
          if (!p) continue;
          if (routerOf(p)) return [...w.services.keys()].map(key.svc);
          for (const id of w.servicesTargeting(p.id)) ids.add(id);
        }
        // any other port changes its host's items only when it is the host's first on its network, or was the last
        for (const [p, left] of [[a.before, 0], [a.after, 1]] as const) {
          if (p?.host && w.portCountAt(p.network, p.host) === left) for (const id of servicesServing(w, p.network)) ids.add(id);
        }
        return [...ids].map(key.svc);
      }
      case "subnet":
        return [...w.services.values()].filter((s) => s.subnet === a.id).map((s) => key.svc(s.id));
      default:
        return [];
    }
  },
};
