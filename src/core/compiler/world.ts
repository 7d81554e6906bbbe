// The logical model as the compiler sees it: typed records (records.ts) of
// networks, subnets, ports, groups, rules, agents and services, indexed by
// what decides which host needs what. Fed by the change log (one code path
// for the initial load and for every change after it), read by the resolvers.
import { ROUTER_INTERFACE_OWNERS, OWNER } from "../model/owners.ts";
import { networkHostsInOrder } from "../model/placement.ts";
import { type AgentRec, decode, type FloatingIpRec, type GroupRec, isModelKind, type ModelKind, type NetworkRec, type PortRec, type Records, type RouterRec, type RuleRec, type ServiceRec, type SubnetRec, type View } from "./records.ts";

/** A change-log entry as the store carries it. */
export interface Change {
  readonly revision: number;
  readonly kind: string;
  readonly id: string;
  readonly op: string;
  readonly object: View | null;
}

/** One record's change, decoded: the record before and after it (undefined: absent). */
export type Applied = { readonly [K in ModelKind]: { readonly kind: K; readonly id: string; readonly before: Records[K] | undefined; readonly after: Records[K] | undefined } }[ModelKind];

function addTo<K, V>(index: Map<K, Set<V>>, k: K, v: V): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(v);
}
function countIn<K, V>(index: Map<K, Map<V, number>>, k: K, v: V, delta: number): void {
  let counts = index.get(k);
  if (!counts) index.set(k, (counts = new Map()));
  const n = (counts.get(v) ?? 0) + delta;
  if (n > 0) counts.set(v, n);
  else counts.delete(v);
  if (counts.size === 0) index.delete(k);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, k: K, v: V): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}

const EMPTY: ReadonlySet<never> = new Set();

/** The router a port belongs to, for router interfaces and gateways; null for every other port. */
export function routerOf(p: PortRec): string | null {
  return p.deviceId && (p.owner === OWNER.routerGateway || p.owner === OWNER.routerSnat || ROUTER_INTERFACE_OWNERS.has(p.owner)) ? p.deviceId : null;
}

/** The groups whose rules filter a port, either direction (its host holds their chains). */
export const filterGroups = (p: PortRec): readonly string[] => (p.filters.ingress === p.filters.egress ? p.filters.ingress : [...new Set([...p.filters.ingress, ...p.filters.egress])]);

/** A distributed router's interface: plugged on every host that runs the router, a remote endpoint nowhere. */
export const isDistributedInterface = (p: PortRec) => p.owner === OWNER.routerInterfaceDistributed;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class World {
  revision = 0;
  readonly networks = new Map<string, NetworkRec>();
  readonly subnets = new Map<string, SubnetRec>();
  readonly ports = new Map<string, PortRec>();
  readonly groups = new Map<string, GroupRec>();
  readonly rules = new Map<string, RuleRec>();
  readonly routers = new Map<string, RouterRec>();
  readonly floatingips = new Map<string, FloatingIpRec>();
  /** host -> agent */
  readonly agents = new Map<string, AgentRec>();
  readonly services = new Map<string, ServiceRec>();

  private readonly agentsById = new Map<string, AgentRec>();
  private readonly portsByNetwork = new Map<string, Set<string>>();
  private readonly portsByHost = new Map<string, Set<string>>();
  private readonly portsByGroup = new Map<string, Set<string>>();
  private readonly networkHostPortsByNetwork = new Map<string, Set<string>>();
  private readonly subnetsByNetwork = new Map<string, Set<string>>();
  /** network -> its DHCP port (network:dhcp, carried by the network host) */
  private readonly dhcpByNetwork = new Map<string, string>();
  /** router -> its interface ports */
  private readonly interfacesByRouter = new Map<string, Set<string>>();
  /** router -> its csnat ports (distributed routers with a gateway) */
  private readonly snatByRouter = new Map<string, Set<string>>();
  /** router -> its gateway port (one, by the model's rules) */
  private readonly gatewayByRouter = new Map<string, string>();
  /** router -> floating IPs associated through it */
  private readonly fipsByRouter = new Map<string, Set<string>>();
  /** network -> the routers with a port on it */
  private readonly routersByNetwork = new Map<string, Map<string, number>>();
  private readonly rulesByGroup = new Map<string, Set<string>>();
  /** remote group -> rules naming it */
  private readonly rulesByRemote = new Map<string, Set<string>>();
  /** network -> bound host -> number of its ports there */
  private readonly hostsByNetwork = new Map<string, Map<string, number>>();
  /** group -> host -> how many of the group's members are bound there */
  private readonly hostsByGroup = new Map<string, Map<string, number>>();
  /** port -> the services that send traffic to it */
  private readonly servicesByTarget = new Map<string, Set<string>>();
  private networkHostsCache: string[] | null = null;

  // One entry per kind: where its records live and what they index. A kind
  // added to Records without one here does not compile.
  private readonly tables: { readonly [K in ModelKind]: { readonly get: (id: string) => Records[K] | undefined; readonly put: (id: string, before: Records[K] | undefined, after: Records[K] | undefined) => void } } = {
    network: { get: (id) => this.networks.get(id), put: (id, _b, a) => this.store(this.networks, id, a) },
    subnet: {
      get: (id) => this.subnets.get(id),
      put: (id, b, a) => {
        if (b) removeFrom(this.subnetsByNetwork, b.network, id);
        if (a) addTo(this.subnetsByNetwork, a.network, id);
        this.store(this.subnets, id, a);
      },
    },
    port: {
      get: (id) => this.ports.get(id),
      put: (id, b, a) => {
        if (b) this.indexPort(b, false);
        if (a) this.indexPort(a, true);
        this.store(this.ports, id, a);
      },
    },
    // a group keeps no copy of its rules: decode() turned them into rule changes
    security_group: { get: (id) => this.groups.get(id), put: (id, _b, a) => this.store(this.groups, id, a && { id: a.id, rules: null }) },
    security_group_rule: {
      get: (id) => this.rules.get(id),
      put: (id, b, a) => {
        for (const [r, on] of [[b, false], [a, true]] as const) {
          if (!r) continue;
          const f = on ? addTo : removeFrom;
          f(this.rulesByGroup, r.group, id);
          if (r.remoteGroup) f(this.rulesByRemote, r.remoteGroup, id);
        }
        this.store(this.rules, id, a);
      },
    },
    router: { get: (id) => this.routers.get(id), put: (id, _b, a) => this.store(this.routers, id, a) },
    floatingip: {
      get: (id) => this.floatingips.get(id),
      put: (id, b, a) => {
        if (b?.router) removeFrom(this.fipsByRouter, b.router, id);
        if (a?.router) addTo(this.fipsByRouter, a.router, id);
        this.store(this.floatingips, id, a);
      },
    },
    service: {
      get: (id) => this.services.get(id),
      put: (id, b, a) => {
        for (const [s, f] of [[b, removeFrom], [a, addTo]] as const) for (const p of s?.ports ?? []) for (const t of p.targets) if (t.portId) f(this.servicesByTarget, t.portId, id);
        this.store(this.services, id, a);
      },
    },
    agent: {
      get: (id) => this.agentsById.get(id),
      put: (id, b, a) => {
        this.networkHostsCache = null;
        if (b) this.agents.delete(b.host);
        this.store(this.agentsById, id, a);
        if (a) this.agents.set(a.host, a);
      },
    },
  };

  private store<T>(map: Map<string, T>, id: string, rec: T | undefined): void {
    if (rec) map.set(id, rec);
    else map.delete(id);
  }

  get<K extends ModelKind>(kind: K, id: string): Records[K] | undefined {
    return this.tables[kind].get(id) as Records[K] | undefined;
  }

  /**
   * What a log entry means to the compiler, against the World as it is now
   * (call before applying): the record's change, and for a group whose view
   * embeds its rules, the rule changes that makes. Empty for kinds no resolver
   * reads and for rules that did not change; the World's revision moves past
   * the entry either way.
   */
  decode(c: Change): Applied[] {
    if (c.revision > this.revision) this.revision = c.revision;
    if (!isModelKind(c.kind)) return [];
    const after = c.op === "delete" || !c.object ? undefined : decode(c.kind, c.object);
    const change = { kind: c.kind, id: c.id, before: this.get(c.kind, c.id), after } as Applied;
    if (change.kind !== "security_group") return [change];
    const embedded = change.after ? change.after.rules : [];
    if (!embedded) return [change];
    const out: Applied[] = [change];
    const keep = new Set(embedded.map((r) => r.id));
    for (const id of this.rulesOf(c.id)) if (!keep.has(id)) out.push({ kind: "security_group_rule", id, before: this.rules.get(id), after: undefined });
    for (const r of embedded) {
      const before = this.rules.get(r.id);
      if (!before || !same(before, r)) out.push({ kind: "security_group_rule", id: r.id, before, after: r });
    }
    return out;
  }

  apply(a: Applied): void {
    (this.tables[a.kind].put as (id: string, b: unknown, a: unknown) => void)(a.id, a.before, a.after);
  }

  /** Decodes and applies one log entry (tests, and the initial load). */
  put(c: Change): void {
    for (const a of this.decode(c)) this.apply(a);
  }

  private indexPort(p: PortRec, on: boolean): void {
    const f = on ? addTo : removeFrom;
    f(this.portsByNetwork, p.network, p.id);
    if (p.host) {
      f(this.portsByHost, p.host, p.id);
      countIn(this.hostsByNetwork, p.network, p.host, on ? 1 : -1);
    }
    for (const g of p.memberOf) f(this.portsByGroup, g, p.id);
    if (p.host) for (const g of filterGroups(p)) countIn(this.hostsByGroup, g, p.host, on ? 1 : -1);
    if (p.onNetworkHost) f(this.networkHostPortsByNetwork, p.network, p.id);
    if (p.onNetworkHost && p.owner === OWNER.dhcp) {
      if (on) this.dhcpByNetwork.set(p.network, p.id);
      else if (this.dhcpByNetwork.get(p.network) === p.id) this.dhcpByNetwork.delete(p.network);
    }
    const router = routerOf(p);
    if (router) {
      if (p.owner === OWNER.routerGateway) {
        if (on) this.gatewayByRouter.set(router, p.id);
        else if (this.gatewayByRouter.get(router) === p.id) this.gatewayByRouter.delete(router);
      } else if (p.owner === OWNER.routerSnat) f(this.snatByRouter, router, p.id);
      else f(this.interfacesByRouter, router, p.id);
      countIn(this.routersByNetwork, p.network, router, on ? 1 : -1);
    }
  }

  interfacesOf(router: string): ReadonlySet<string> {
    return this.interfacesByRouter.get(router) ?? EMPTY;
  }
  snatPortsOf(router: string): ReadonlySet<string> {
    return this.snatByRouter.get(router) ?? EMPTY;
  }
  /** The distributed routers whose instance runs on the host: those with an interface on a network it has ports on. */
  distributedRoutersAt(host: string): Set<string> {
    const out = new Set<string>();
    const seen = new Set<string>();
    for (const id of this.portsAt(host)) {
      const net = this.ports.get(id)!.network;
      if (seen.has(net)) continue;
      seen.add(net);
      for (const r of this.routersOn(net)) if (this.routers.get(r)?.distributed && this.hasInterfaceOn(r, net)) out.add(r);
    }
    return out;
  }
  private hasInterfaceOn(router: string, network: string): boolean {
    for (const id of this.interfacesOf(router)) if (this.ports.get(id)?.network === network) return true;
    return false;
  }
  /** Hosts running a distributed router's instance: those with a port on one of its interfaces' networks. */
  distributedHostsOf(router: string): Set<string> {
    const out = new Set<string>();
    if (!this.routers.get(router)?.distributed) return out;
    for (const id of this.interfacesOf(router)) for (const h of this.boundHostsOn(this.ports.get(id)!.network)) out.add(h);
    return out;
  }
  /** The services with a backend on the port. */
  servicesTargeting(port: string): ReadonlySet<string> {
    return this.servicesByTarget.get(port) ?? EMPTY;
  }
  gatewayOf(router: string): string | undefined {
    return this.gatewayByRouter.get(router);
  }
  fipsOf(router: string): ReadonlySet<string> {
    return this.fipsByRouter.get(router) ?? EMPTY;
  }
  /** routers with an interface or their gateway on the network */
  routersOn(network: string): Iterable<string> {
    return this.routersByNetwork.get(network)?.keys() ?? EMPTY;
  }

  portsOn(network: string): ReadonlySet<string> {
    return this.portsByNetwork.get(network) ?? EMPTY;
  }
  /** how many ports of the network are bound to the host */
  portCountAt(network: string, host: string): number {
    return this.hostsByNetwork.get(network)?.get(host) ?? 0;
  }
  /** hosts with a port bound on the network */
  boundHostsOn(network: string): Iterable<string> {
    return this.hostsByNetwork.get(network)?.keys() ?? EMPTY;
  }
  portsAt(host: string): ReadonlySet<string> {
    return this.portsByHost.get(host) ?? EMPTY;
  }
  /** hosts with a bound port the group's rules filter (a group of 10,000 ports on 3 hosts: 3) */
  hostsOfGroup(group: string): Iterable<string> {
    return this.hostsByGroup.get(group)?.keys() ?? EMPTY;
  }
  /** ports that count as the group's members where a rule names it as remote group */
  membersOf(group: string): ReadonlySet<string> {
    return this.portsByGroup.get(group) ?? EMPTY;
  }
  subnetsOf(network: string): ReadonlySet<string> {
    return this.subnetsByNetwork.get(network) ?? EMPTY;
  }
  rulesOf(group: string): ReadonlySet<string> {
    return this.rulesByGroup.get(group) ?? EMPTY;
  }
  rulesNaming(remoteGroup: string): ReadonlySet<string> {
    return this.rulesByRemote.get(remoteGroup) ?? EMPTY;
  }
  hasNetworkHostPorts(network: string): boolean {
    return this.networkHostPortsByNetwork.has(network);
  }
  /** network -> the ports a network host carries on it */
  networkHostPorts(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.networkHostPortsByNetwork;
  }

  /** The network's DHCP port, while it has one (it has DHCP-enabled subnets). */
  dhcpPortOf(network: string): string | undefined {
    return this.dhcpByNetwork.get(network);
  }
  /** Networks with a DHCP port. */
  dhcpNetworks(): Iterable<string> {
    return this.dhcpByNetwork.keys();
  }

  /** The host that serves the networks' own duties (placement.ts: the first network host); null while there is none. */
  servingHost(): string | null {
    return this.networkHosts()[0] ?? null;
  }

  /** Hosts whose agent registered the `network` role, sorted (the first one carries network-host ports). */
  networkHosts(): readonly string[] {
    this.networkHostsCache ??= networkHostsInOrder(this.agents.values());
    return this.networkHostsCache;
  }

  vtepOf(host: string): string | null {
    return this.agents.get(host)?.vtep ?? null;
  }
}
