// The compiler: logical model -> one host's desired dataplane. Pure functions
// of a World; the southbound calls them for the hosts a change concerns and
// sends the difference. Every item has one function that computes it, used
// both by the full compile and by the per-key recompute, so the two cannot
// disagree.
import { type HostIntent, type IntentItem, key, type MemberItem, type NetItem, type PortItem, type RemoteItem, type RuleItem } from "../../contract/intent.ts";
import { tapName } from "../../contract/naming.ts";
import { type Applied, isNetworkHost, isServicePort, portGroups, portHost, type View, type World } from "./world.ts";

/** What a host takes part in; when it changes, the host is compiled whole. */
export interface Scope {
  readonly networks: ReadonlySet<string>;
  /** groups of its ports (with port security) */
  readonly groups: ReadonlySet<string>;
  /** groups named as remote group by the rules of those groups */
  readonly remoteGroups: ReadonlySet<string>;
}

export function scopeOf(w: World, host: string): Scope {
  const networks = new Set<string>();
  const groups = new Set<string>();
  for (const id of w.portsAt(host)) {
    const p = w.ports.get(id)!;
    networks.add(p.network_id as string);
    if (p.port_security_enabled !== false) for (const g of portGroups(p)) groups.add(g);
  }
  if (w.networkHosts().includes(host)) for (const id of w.networks.keys()) if (w.hasServicePorts(id)) networks.add(id);
  const remoteGroups = new Set<string>();
  for (const g of groups) for (const r of w.rulesOf(g)) {
    const remote = w.rules.get(r)?.remote_group_id as string | null;
    if (remote) remoteGroups.add(remote);
  }
  return { networks, groups, remoteGroups };
}

export const scopeSignature = (s: Scope) => [[...s.networks].sort().join(","), [...s.groups].sort().join(","), [...s.remoteGroups].sort().join(",")].join("|");

/** Where a port's traffic enters the fabric: its bound host, or the first network host for service ports. */
export function portLocation(w: World, p: View): string | null {
  const host = portHost(p);
  if (host) return host;
  if (isServicePort(p)) return w.networkHosts()[0] ?? null;
  return null;
}

/** Hosts on a network: bound ports' hosts, and the network hosts when it has service ports. */
export function hostsOn(w: World, network: string): Set<string> {
  const hosts = new Set(w.boundHostsOn(network));
  if (w.hasServicePorts(network)) for (const h of w.networkHosts()) hosts.add(h);
  return hosts;
}

const isHostAddress = (ip: string) => !ip.includes("/") || ip.endsWith("/32") || ip.endsWith("/128");
const bare = (ip: string) => ip.replace(/\/(32|128)$/, "");

function fixedIps(p: View): string[] {
  return ((p.fixed_ips as { ip_address: string }[] | undefined) ?? []).map((f) => f.ip_address);
}
function pairs(p: View): { mac: string; ip: string }[] {
  return ((p.allowed_address_pairs as { ip_address: string; mac_address?: string }[] | undefined) ?? []).map((a) => ({
    mac: a.mac_address || (p.mac_address as string),
    ip: a.ip_address,
  }));
}

// ---- one function per item kind -------------------------------------------

export function netItem(w: World, host: string, scope: Scope, id: string): NetItem | undefined {
  const n = w.networks.get(id);
  if (!n || !scope.networks.has(id)) return undefined;
  const vteps = new Set<string>();
  for (const h of hostsOn(w, id)) {
    const vtep = h === host ? null : w.vtepOf(h);
    if (vtep) vteps.add(vtep);
  }
  const self = w.vtepOf(host);
  if (self) vteps.delete(self);
  const type = n["provider:network_type"] as NetItem["type"];
  return {
    kind: "net",
    id,
    name: (n.name as string) ?? "",
    type,
    segment: (n["provider:segmentation_id"] as number | null) ?? null,
    physnet: (n["provider:physical_network"] as string | null) || null,
    mtu: (n.mtu as number) ?? 1500,
    vteps: [...vteps].sort(),
  };
}

export function portItem(w: World, host: string, id: string): PortItem | undefined {
  const p = w.ports.get(id);
  if (!p || portHost(p) !== host) return undefined;
  const net = w.networks.get(p.network_id as string);
  const addresses: string[] = [];
  const gateways: string[] = [];
  for (const f of (p.fixed_ips as { subnet_id: string; ip_address: string }[]) ?? []) {
    const s = w.subnets.get(f.subnet_id);
    const prefix = s ? (s.cidr as string).split("/")[1] : f.ip_address.includes(":") ? "128" : "32";
    addresses.push(`${f.ip_address}/${prefix}`);
    const gw = s?.gateway_ip as string | null | undefined;
    if (gw && !gateways.some((g) => g.includes(":") === gw.includes(":"))) gateways.push(gw);
  }
  const secured = p.port_security_enabled !== false;
  return {
    kind: "port",
    id,
    network: p.network_id as string,
    device: tapName(id),
    mac: p.mac_address as string,
    addresses,
    gateways,
    mtu: (net?.mtu as number) ?? 1500,
    owner: (p.device_owner as string) ?? "",
    adminUp: p.admin_state_up !== false,
    security: secured
      ? {
          groups: [...portGroups(p)].sort(),
          allowed: [...fixedIps(p).map((ip) => ({ mac: p.mac_address as string, ip })), ...pairs(p)],
        }
      : null,
  };
}

export function remoteItem(w: World, host: string, scope: Scope, network: string, portId: string): RemoteItem | undefined {
  const p = w.ports.get(portId);
  if (!p || p.network_id !== network || !scope.networks.has(network)) return undefined;
  const at = portLocation(w, p);
  if (!at || at === host) return undefined;
  const vtep = w.vtepOf(at);
  if (!vtep || vtep === w.vtepOf(host)) return undefined;
  const ips = [...fixedIps(p), ...pairs(p).filter((a) => a.mac === p.mac_address && isHostAddress(a.ip)).map((a) => bare(a.ip))];
  return { kind: "remote", network, port: portId, mac: p.mac_address as string, ips: [...new Set(ips)], vtep, host: at };
}

export function ruleItem(w: World, scope: Scope, id: string): RuleItem | undefined {
  const r = w.rules.get(id);
  if (!r || !scope.groups.has(r.security_group_id as string)) return undefined;
  return {
    kind: "rule",
    id,
    group: r.security_group_id as string,
    direction: r.direction as RuleItem["direction"],
    ethertype: (r.ethertype as RuleItem["ethertype"]) ?? "IPv4",
    protocol: r.protocol === null || r.protocol === undefined ? null : String(r.protocol),
    portMin: (r.port_range_min as number | null) ?? null,
    portMax: (r.port_range_max as number | null) ?? null,
    remoteCidr: (r.remote_ip_prefix as string | null) ?? null,
    remoteGroup: (r.remote_group_id as string | null) ?? null,
  };
}

export function memberItem(w: World, scope: Scope, group: string, portId: string): MemberItem | undefined {
  const p = w.ports.get(portId);
  if (!p || !scope.remoteGroups.has(group) || !portGroups(p).includes(group)) return undefined;
  const ips = [...new Set([...fixedIps(p), ...pairs(p).map((a) => a.ip)])];
  return { kind: "member", group, port: portId, ips };
}

/** The item a key names for this host, or undefined when the host should not have it. */
export function itemFor(w: World, host: string, scope: Scope, k: string): IntentItem | undefined {
  const [kind, a, b] = k.split("/");
  switch (kind) {
    case "net":
      return netItem(w, host, scope, a!);
    case "port":
      return portItem(w, host, a!);
    case "remote":
      return remoteItem(w, host, scope, a!, b!);
    case "sg":
      return scope.groups.has(a!) && w.groups.has(a!) ? { kind: "sg", id: a! } : undefined;
    case "rule":
      return ruleItem(w, scope, a!);
    case "member":
      return memberItem(w, scope, a!, b!);
    default:
      return undefined;
  }
}

/** The whole HostIntent of one host. */
export function compileHost(w: World, host: string, scope: Scope = scopeOf(w, host)): HostIntent {
  const out: HostIntent = new Map();
  const put = (k: string, item: IntentItem | undefined) => {
    if (item) out.set(k, item);
  };
  for (const net of scope.networks) {
    put(key.net(net), netItem(w, host, scope, net));
    for (const id of w.portsOn(net)) put(key.remote(net, id), remoteItem(w, host, scope, net, id));
  }
  for (const id of w.portsAt(host)) put(key.port(id), portItem(w, host, id));
  for (const g of scope.groups) {
    if (w.groups.has(g)) out.set(key.sg(g), { kind: "sg", id: g });
    for (const r of w.rulesOf(g)) put(key.rule(r), ruleItem(w, scope, r));
  }
  for (const g of scope.remoteGroups) for (const id of w.membersOf(g)) put(key.member(g, id), memberItem(w, scope, g, id));
  return out;
}

// ---- which hosts and keys a change concerns -------------------------------

/** Hosts whose intent may depend on `view` (call with the view before and after a change). */
export function hostsConcerned(w: World, kind: string, view: View | undefined): Set<string> | "all" {
  const hosts = new Set<string>();
  if (!view) return hosts;
  const usingGroup = (g: string) => {
    for (const id of w.membersOf(g)) {
      const h = portHost(w.ports.get(id)!);
      if (h) hosts.add(h);
    }
  };
  switch (kind) {
    case "port": {
      for (const h of hostsOn(w, view.network_id as string)) hosts.add(h);
      const at = portLocation(w, view);
      if (at) hosts.add(at);
      if (isServicePort(view)) for (const h of w.networkHosts()) hosts.add(h);
      // hosts whose rules admit this port's groups need its addresses
      for (const g of portGroups(view)) for (const r of w.rulesNaming(g)) usingGroup(w.rules.get(r)!.security_group_id as string);
      return hosts;
    }
    case "network":
      return hostsOn(w, view.id as string);
    case "subnet":
      return hostsOn(w, view.network_id as string);
    case "security_group":
      usingGroup(view.id as string);
      return hosts;
    case "security_group_rule":
      usingGroup(view.security_group_id as string);
      return hosts;
    case "agent": {
      // A network host serves every network with service ports: everyone may care.
      if (isNetworkHost(view)) return "all";
      // Otherwise its VTEP matters to the hosts sharing a network with it.
      const host = view.host as string;
      hosts.add(host);
      for (const id of w.portsAt(host)) for (const h of hostsOn(w, w.ports.get(id)!.network_id as string)) hosts.add(h);
      return hosts;
    }
    default:
      return hosts;
  }
}

/** Keys an agent's (re)registration may alter on other hosts: its ports' remote entries and their networks' flood lists. */
export function agentKeys(w: World, host: string): string[] {
  const keys = new Set<string>();
  for (const id of w.portsAt(host)) {
    const net = w.ports.get(id)!.network_id as string;
    keys.add(key.net(net));
    keys.add(key.remote(net, id));
  }
  return [...keys];
}

/**
 * Keys a change may alter on a host whose scope it did not change; null:
 * compile the host whole. Called after the change is applied to `w`.
 */
export function keysConcerned(w: World, a: Applied): string[] | null {
  switch (a.kind) {
    case "port": {
      const keys = new Set([key.port(a.id)]);
      const where = (v: View | undefined) => (v ? `${portLocation(w, v) ?? ""}|${v.network_id as string}` : "");
      const moved = where(a.before) !== where(a.after);
      for (const v of [a.before, a.after]) {
        if (!v) continue;
        const net = v.network_id as string;
        keys.add(key.remote(net, a.id));
        // A network's flood list changes only when a host joins or leaves it, not with every port.
        if (moved && (isServicePort(v) || w.portCountAt(net, portHost(v)) <= (v === a.after ? 1 : 0))) keys.add(key.net(net));
        for (const g of portGroups(v)) keys.add(key.member(g, a.id));
      }
      return [...keys];
    }
    case "security_group_rule":
      return [key.rule(a.id)];
    default:
      // a group's view carries its rules; networks, subnets: recompile the hosts concerned
      return null;
  }
}
