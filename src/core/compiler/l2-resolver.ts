// L2: which networks a host takes part in (a local port on them, or it is a
// network host of a network with network-host ports), its local ports as the
// kernel must plug them, and every other port of those networks as a remote
// endpoint (MAC, addresses, VTEP) for its FDB and neighbour tables.
//
//   reads  network, subnet, port, agent
//   scope  networks, and the distributed routers the host runs (their
//          interfaces are plugged on every such host, and their networks are
//          the host's too: it routes into them)
//   items  net/<id>  port/<id>  remote/<net>/<port>
import { key, type NetItem, type PortItem, type RemoteItem } from "../../contract/intent.ts";
import { dhcpPortName, routerPortName, tapName } from "../../contract/naming.ts";
import { OWNER } from "../model/owners.ts";
import { isNetworkHost, type PortRec } from "./records.ts";
import type { HostSet, Resolver } from "./resolver.ts";
import { isDistributedInterface, routerOf, type World } from "./world.ts";

export interface L2Scope {
  readonly [name: string]: ReadonlySet<string>;
  readonly networks: ReadonlySet<string>;
  readonly dvrRouters: ReadonlySet<string>;
}

/** Where a port's traffic enters the fabric: its bound host, or the first network host for network-host ports. */
export function portLocation(w: World, p: PortRec): string | null {
  if (p.host) return p.host;
  if (p.onNetworkHost) return w.networkHosts()[0] ?? null;
  return null;
}

/** Hosts on a network: bound ports' hosts, and the network hosts when it has network-host ports. */
export function hostsOn(w: World, network: string): Set<string> {
  const hosts = new Set(w.boundHostsOn(network));
  if (w.hasNetworkHostPorts(network)) for (const h of w.networkHosts()) hosts.add(h);
  return hosts;
}

/**
 * Hosts whose items depend on the network's ports: the hosts on it, and those
 * that route into it (a distributed router with an interface on it runs there).
 */
export function hostsInScopeOf(w: World, network: string): Set<string> {
  const hosts = hostsOn(w, network);
  for (const r of w.routersOn(network)) for (const h of w.distributedHostsOf(r)) hosts.add(h);
  return hosts;
}

const isHostAddress = (ip: string) => !ip.includes("/") || ip.endsWith("/32") || ip.endsWith("/128");
const bare = (ip: string) => ip.replace(/\/(32|128)$/, "");

export function netItem(w: World, host: string, scope: L2Scope, id: string): NetItem | undefined {
  const n = w.networks.get(id);
  if (!n || !scope.networks.has(id)) return undefined;
  const vteps = new Set<string>();
  for (const h of hostsOn(w, id)) {
    const vtep = h === host ? null : w.vtepOf(h);
    if (vtep) vteps.add(vtep);
  }
  const self = w.vtepOf(host);
  if (self) vteps.delete(self);
  return { kind: "net", id, name: n.name, type: n.type, segment: n.segment, physnet: n.physnet, mtu: n.mtu, dnsDomain: n.dnsDomain, resolvers: resolversOf(w, id), vteps: [...vteps].sort() };
}

/** Per DHCP-enabled subnet, its dns_nameservers, or else the DHCP port's address on it (the network's resolver), IPv4 first. */
function resolversOf(w: World, network: string): string[] {
  const dhcp = w.ports.get(w.dhcpPortOf(network) ?? "");
  if (!dhcp) return [];
  const out = new Set<string>();
  const subnets = [...w.subnetsOf(network)].map((id) => w.subnets.get(id)!).filter((s) => s.enableDhcp);
  subnets.sort((a, b) => Number(a.cidr.includes(":")) - Number(b.cidr.includes(":")) || (a.id < b.id ? -1 : 1));
  for (const s of subnets) {
    if (s.dnsServers.length) for (const d of s.dnsServers) out.add(d);
    else for (const f of dhcp.fixedIps) if (f.subnet === s.id) out.add(f.ip);
  }
  return [...out];
}

const isDhcpPort = (p: PortRec) => p.onNetworkHost && p.owner === OWNER.dhcp;

/** A network-host port with a device: a router's or the DHCP server's veth (floating IPs are addresses alone, on the router's gateway). */
const hasDevice = (p: PortRec) => routerOf(p) !== null || isDhcpPort(p);

/** Whether the host plugs the port: its bound host does; a network-host port with a device, the host that serves it. */
function plugsAt(w: World, p: PortRec, host: string, scope: L2Scope): boolean {
  if (p.host) return p.host === host;
  if (isDistributedInterface(p)) return scope.dvrRouters.has(p.deviceId);
  return p.onNetworkHost && hasDevice(p) && portLocation(w, p) === host;
}

/** The network-host ports a host plugs (router ports, DHCP ports), when it is the first network host. */
function* pluggedNetworkHostPorts(w: World, host: string): Iterable<string> {
  if (w.networkHosts()[0] !== host) return;
  for (const ports of w.networkHostPorts().values()) {
    for (const id of ports) {
      const p = w.ports.get(id)!;
      if (hasDevice(p) && !isDistributedInterface(p)) yield id;
    }
  }
}

/** The port's device name on the host that plugs it (contract/naming.ts). */
const deviceOf = (p: PortRec) => (routerOf(p) ? routerPortName(p.id) : isDhcpPort(p) ? dhcpPortName(p.id) : tapName(p.id));

export function portItem(w: World, host: string, scope: L2Scope, id: string): PortItem | undefined {
  const p = w.ports.get(id);
  if (!p || !plugsAt(w, p, host, scope)) return undefined;
  const addresses: string[] = [];
  const gateways: string[] = [];
  for (const f of p.fixedIps) {
    const s = w.subnets.get(f.subnet);
    const prefix = s ? s.cidr.split("/")[1] : f.ip.includes(":") ? "128" : "32";
    addresses.push(`${f.ip}/${prefix}`);
    const gw = s?.gateway;
    if (gw && !gateways.some((g) => g.includes(":") === gw.includes(":"))) gateways.push(gw);
  }
  return {
    kind: "port",
    id,
    network: p.network,
    device: deviceOf(p),
    mac: p.mac,
    addresses,
    gateways,
    mtu: w.networks.get(p.network)?.mtu ?? 1500,
    owner: p.owner,
    adminUp: p.adminUp,
    security: p.secured ? { ingress: p.filters.ingress, egress: p.filters.egress, allowed: [...p.fixedIps.map((f) => ({ mac: p.mac, ip: f.ip })), ...p.pairs] } : null,
  };
}

export function remoteItem(w: World, host: string, scope: L2Scope, network: string, portId: string): RemoteItem | undefined {
  const p = w.ports.get(portId);
  if (!p || p.network !== network || !scope.networks.has(network) || isDistributedInterface(p)) return undefined;
  const at = portLocation(w, p);
  if (!at || at === host) return undefined;
  const vtep = w.vtepOf(at);
  if (!vtep || vtep === w.vtepOf(host)) return undefined;
  const ips = [...p.fixedIps.map((f) => f.ip), ...p.pairs.filter((a) => a.mac === p.mac && isHostAddress(a.ip)).map((a) => bare(a.ip))];
  return { kind: "remote", network, port: portId, mac: p.mac, ips: [...new Set(ips)], vtep, host: at };
}

/** Hosts that share a network with the ports of `host` (its VTEP is in their tables). */
function neighboursOf(w: World, host: string): Set<string> {
  const hosts = new Set([host]);
  for (const id of w.portsAt(host)) for (const h of hostsInScopeOf(w, w.ports.get(id)!.network)) hosts.add(h);
  return hosts;
}

export const l2Resolver: Resolver<L2Scope, "net" | "port" | "remote"> = {
  name: "l2",
  reads: ["network", "subnet", "port", "agent"],

  scope(w, host) {
    const networks = new Set<string>();
    for (const id of w.portsAt(host)) networks.add(w.ports.get(id)!.network);
    if (w.networkHosts().includes(host)) for (const id of w.networks.keys()) if (w.hasNetworkHostPorts(id)) networks.add(id);
    const dvrRouters = w.distributedRoutersAt(host);
    for (const r of dvrRouters) for (const id of w.interfacesOf(r)) networks.add(w.ports.get(id)!.network);
    return { networks, dvrRouters };
  },

  compile(w, host, scope, put) {
    for (const net of scope.networks) {
      put(key.net(net), netItem(w, host, scope, net));
      for (const id of w.portsOn(net)) put(key.remote(net, id), remoteItem(w, host, scope, net, id));
    }
    for (const id of w.portsAt(host)) put(key.port(id), portItem(w, host, scope, id));
    for (const id of pluggedNetworkHostPorts(w, host)) put(key.port(id), portItem(w, host, scope, id));
    for (const r of scope.dvrRouters) for (const id of w.interfacesOf(r)) put(key.port(id), portItem(w, host, scope, id));
  },

  items: {
    net: (w, host, scope, k) => netItem(w, host, scope, k.id),
    port: (w, host, scope, k) => portItem(w, host, scope, k.id),
    remote: (w, host, scope, k) => remoteItem(w, host, scope, k.network, k.port),
  },

  hosts(w, a, side): HostSet {
    switch (a.kind) {
      case "port": {
        const p = a[side];
        if (!p) return new Set();
        const hosts = hostsInScopeOf(w, p.network);
        const at = portLocation(w, p);
        if (at) hosts.add(at);
        if (p.onNetworkHost) for (const h of w.networkHosts()) hosts.add(h);
        const r = routerOf(p);
        if (r) for (const h of w.distributedHostsOf(r)) hosts.add(h);
        return hosts;
      }
      case "network":
        return a[side] ? hostsInScopeOf(w, a.id) : new Set();
      case "subnet": {
        const s = a[side];
        return s ? hostsInScopeOf(w, s.network) : new Set();
      }
      case "agent": {
        const agent = a[side];
        if (!agent) return new Set();
        // A network host serves every network with network-host ports: everyone may care.
        return isNetworkHost(agent) ? "all" : neighboursOf(w, agent.host);
      }
      default:
        return new Set();
    }
  },

  keys(w, a) {
    switch (a.kind) {
      case "port": {
        const keys = new Set([key.port(a.id)]);
        const where = (p: PortRec | undefined) => (p ? `${portLocation(w, p) ?? ""}|${p.network}` : "");
        const moved = where(a.before) !== where(a.after);
        for (const p of [a.before, a.after]) {
          if (!p) continue;
          keys.add(key.remote(p.network, a.id));
          // A network's flood list changes only when a host joins or leaves it, not with every port;
          // its resolvers, with its DHCP port.
          if (moved && (p.onNetworkHost || w.portCountAt(p.network, p.host) <= (p === a.after ? 1 : 0))) keys.add(key.net(p.network));
          if (p.onNetworkHost && p.owner === OWNER.dhcp) keys.add(key.net(p.network));
        }
        return [...keys];
      }
      case "agent": {
        // Elsewhere, an agent's (re)registration alters its ports' remote entries and their networks' flood lists.
        const host = (a.after ?? a.before)?.host;
        if (!host) return [];
        const keys = new Set<string>();
        for (const id of w.portsAt(host)) {
          const net = w.ports.get(id)!.network;
          keys.add(key.net(net));
          keys.add(key.remote(net, id));
        }
        // A network host coming or going can move every network-host port (router interfaces) to another host.
        if (isNetworkHost(a.before) || isNetworkHost(a.after)) {
          for (const [net, ports] of w.networkHostPorts()) {
            keys.add(key.net(net));
            for (const id of ports) keys.add(key.remote(net, id)).add(key.port(id));
          }
        }
        return [...keys];
      }
      default:
        // networks and subnets: every item on the hosts concerned may change (MTU, prefixes, gateways)
        return "whole";
    }
  },

  wholeHosts(_w, a) {
    // the agent's own host sees its own VTEP change everywhere
    if (a.kind !== "agent") return [];
    const host = (a.after ?? a.before)?.host;
    return host ? [host] : [];
  },
};
