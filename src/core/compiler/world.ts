// The logical model as the compiler sees it: the admin views of networks,
// subnets, ports, groups, rules and agents, indexed by what decides which host
// needs what. Fed by the change log (one code path for the initial load and for
// every change after it), read by the pure functions of compile.ts.

export type View = Readonly<Record<string, unknown>>;

export interface Change {
  readonly revision: number;
  readonly kind: string;
  readonly id: string;
  readonly op: string;
  readonly object: View | null;
}

/** What a change was about, with the views before and after it. */
export interface Applied {
  readonly kind: string;
  readonly id: string;
  readonly before: View | undefined;
  readonly after: View | undefined;
}

function addTo<K, V>(index: Map<K, Set<V>>, k: K, v: V): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(v);
}
function removeFrom<K, V>(index: Map<K, Set<V>>, k: K, v: V): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}

const EMPTY: ReadonlySet<never> = new Set();

export const portHost = (p: View) => (p["binding:host_id"] as string) || "";
export const portGroups = (p: View) => (p.security_groups as string[] | undefined) ?? [];
/** Ports a network host carries for a network (router interfaces, DHCP), unbound in the model. */
export const isServicePort = (p: View) => String(p.device_owner ?? "").startsWith("network:") && !portHost(p);

export const isNetworkHost = (agent: View | undefined) => Boolean(((agent?.configurations as View | undefined)?.roles as string[] | undefined)?.includes("network"));

export class World {
  revision = 0;
  readonly networks = new Map<string, View>();
  readonly subnets = new Map<string, View>();
  readonly ports = new Map<string, View>();
  readonly groups = new Map<string, View>();
  readonly rules = new Map<string, View>();
  /** host -> agent view */
  readonly agents = new Map<string, View>();

  private readonly portsByNetwork = new Map<string, Set<string>>();
  private readonly portsByHost = new Map<string, Set<string>>();
  private readonly portsByGroup = new Map<string, Set<string>>();
  private readonly servicePortsByNetwork = new Map<string, Set<string>>();
  private readonly subnetsByNetwork = new Map<string, Set<string>>();
  private readonly rulesByGroup = new Map<string, Set<string>>();
  /** remote group -> rules naming it */
  private readonly rulesByRemote = new Map<string, Set<string>>();
  private readonly agentById = new Map<string, string>();
  /** network -> bound host -> number of its ports there */
  private readonly hostsByNetwork = new Map<string, Map<string, number>>();

  apply(c: Change): Applied {
    if (c.revision > this.revision) this.revision = c.revision;
    const after = c.op === "delete" ? undefined : (c.object ?? undefined);
    switch (c.kind) {
      case "network":
        return this.put(this.networks, c, after);
      case "subnet":
        return this.put(this.subnets, c, after, (v, on) => (on ? addTo : removeFrom)(this.subnetsByNetwork, v.network_id as string, v.id as string));
      case "port":
        return this.put(this.ports, c, after, (v, on) => this.indexPort(v, on));
      case "security_group": {
        const applied = this.put(this.groups, c, after);
        // A group's view carries its rules (default groups are born with theirs): they are the truth for it.
        const embedded = (after?.security_group_rules as View[] | undefined) ?? (after ? undefined : []);
        if (embedded) {
          const keep = new Set(embedded.map((r) => r.id as string));
          for (const id of [...this.rulesOf(c.id)]) if (!keep.has(id)) this.putRule({ ...c, kind: "security_group_rule", id }, undefined);
          for (const r of embedded) this.putRule({ ...c, kind: "security_group_rule", id: r.id as string }, { ...r, security_group_id: c.id });
        }
        return applied;
      }
      case "security_group_rule":
        return this.putRule(c, after);
      case "agent": {
        this.networkHostsCache = null;
        const host = (after?.host as string) ?? this.agentById.get(c.id);
        const before = host ? this.agents.get(host) : undefined;
        if (before) this.agents.delete(host!);
        this.agentById.delete(c.id);
        if (after) {
          this.agents.set(after.host as string, after);
          this.agentById.set(c.id, after.host as string);
        }
        return { kind: c.kind, id: c.id, before, after };
      }
      default:
        return { kind: c.kind, id: c.id, before: undefined, after: undefined };
    }
  }

  private putRule(c: Change, after: View | undefined): Applied {
    return this.put(this.rules, c, after, (v, on) => {
      const f = on ? addTo : removeFrom;
      f(this.rulesByGroup, v.security_group_id as string, v.id as string);
      if (v.remote_group_id) f(this.rulesByRemote, v.remote_group_id as string, v.id as string);
    });
  }

  private put(map: Map<string, View>, c: Change, after: View | undefined, index?: (v: View, on: boolean) => void): Applied {
    const before = map.get(c.id);
    if (before && index) index(before, false);
    if (after) {
      map.set(c.id, after);
      if (index) index(after, true);
    } else map.delete(c.id);
    return { kind: c.kind, id: c.id, before, after };
  }

  private indexPort(p: View, on: boolean): void {
    const f = on ? addTo : removeFrom;
    const id = p.id as string;
    f(this.portsByNetwork, p.network_id as string, id);
    const host = portHost(p);
    if (host) {
      f(this.portsByHost, host, id);
      const net = p.network_id as string;
      let counts = this.hostsByNetwork.get(net);
      if (!counts) this.hostsByNetwork.set(net, (counts = new Map()));
      const n = (counts.get(host) ?? 0) + (on ? 1 : -1);
      if (n > 0) counts.set(host, n);
      else counts.delete(host);
      if (counts.size === 0) this.hostsByNetwork.delete(net);
    }
    for (const g of portGroups(p)) f(this.portsByGroup, g, id);
    if (isServicePort(p)) f(this.servicePortsByNetwork, p.network_id as string, id);
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
  hasServicePorts(network: string): boolean {
    return this.servicePortsByNetwork.has(network);
  }

  private networkHostsCache: string[] | null = null;

  /** Hosts whose agent registered the `network` role, sorted (the first one carries service ports). */
  networkHosts(): readonly string[] {
    if (!this.networkHostsCache) {
      const out: string[] = [];
      for (const [host, a] of this.agents) if (isNetworkHost(a)) out.push(host);
      this.networkHostsCache = out.sort();
    }
    return this.networkHostsCache;
  }

  vtepOf(host: string): string | null {
    const a = this.agents.get(host);
    return ((a?.configurations as View | undefined)?.tunneling_ip as string | undefined) ?? null;
  }
}
