// DHCP and DNS: the host that serves a network's own duties (the first
// network host) runs one server per network that has a DHCP port, answering
// from static assignments only: every port of the network is one dhcphost
// item (MAC, fixed IPs with their names, extra_dhcp_opts), so a port created,
// renamed or deleted touches one item, never the whole table. The server's
// interface is the DHCP port's, whose port item the same host plugs
// (l2-resolver.ts).
//
//   reads  network (MTU, domain), subnet (options), port, agent (who serves)
//   scope  none of its own: the serving host is one per deployment
//   items  dhcp/<net>  dhcphost/<net>/<port>
import { type DhcpHostItem, type DhcpItem, type DhcpSubnet, key } from "../../contract/intent.ts";
import { OWNER } from "../model/owners.ts";
import { isNetworkHost, type PortRec } from "./records.ts";
import type { HostSet, Resolver, ScopePart } from "./resolver.ts";
import type { World } from "./world.ts";

/** The domain a port's names are in: its fqdn less its hostname and the trailing dot (the model decided it, once). */
function domainOf(p: PortRec | undefined): string {
  const n = p?.names[0];
  if (!n || !n.fqdn.startsWith(`${n.hostname}.`)) return "";
  return n.fqdn.slice(n.hostname.length + 1).replace(/\.$/, "");
}

const isDhcpPort = (p: PortRec) => p.onNetworkHost && p.owner === OWNER.dhcp;

const v6 = (cidr: string) => cidr.includes(":");

export function dhcpItem(w: World, host: string, network: string): DhcpItem | undefined {
  const portId = w.dhcpPortOf(network);
  const n = w.networks.get(network);
  if (!portId || !n || w.servingHost() !== host) return undefined;
  const port = w.ports.get(portId);
  const subnets: DhcpSubnet[] = [];
  for (const id of w.subnetsOf(network)) {
    const s = w.subnets.get(id)!;
    if (!s.enableDhcp) continue;
    const server = port?.fixedIps.find((f) => f.subnet === id)?.ip ?? null;
    subnets.push({ id, cidr: s.cidr, gateway: s.gateway, dns: s.dnsServers, server, routes: s.hostRoutes, v6Mode: v6(s.cidr) ? s.v6AddressMode : null });
  }
  subnets.sort((a, b) => Number(v6(a.cidr)) - Number(v6(b.cidr)) || (a.id < b.id ? -1 : 1));
  return { kind: "dhcp", network, port: portId, domain: domainOf(port), mtu: n.mtu, subnets };
}

export function dhcpHostItem(w: World, host: string, network: string, portId: string): DhcpHostItem | undefined {
  const p = w.ports.get(portId);
  if (!p || p.network !== network || !w.dhcpPortOf(network) || w.servingHost() !== host) return undefined;
  return { kind: "dhcphost", network, port: portId, mac: p.mac, names: p.names, opts: p.dhcpOpts };
}

function networkKeys(w: World, network: string): string[] {
  return [key.dhcp(network), ...[...w.portsOn(network)].map((p) => key.dhcphost(network, p))];
}

const served = (w: World): HostSet => new Set(w.servingHost() ? [w.servingHost()!] : []);

export const dhcpResolver: Resolver<ScopePart, "dhcp" | "dhcphost"> = {
  name: "dhcp",
  reads: ["network", "subnet", "port", "agent"],

  scope: () => ({}),

  compile(w, host, _scope, put) {
    if (w.servingHost() !== host) return;
    for (const net of w.dhcpNetworks()) {
      put(key.dhcp(net), dhcpItem(w, host, net));
      for (const p of w.portsOn(net)) put(key.dhcphost(net, p), dhcpHostItem(w, host, net, p));
    }
  },

  items: {
    dhcp: (w, host, _scope, k) => dhcpItem(w, host, k.network),
    dhcphost: (w, host, _scope, k) => dhcpHostItem(w, host, k.network, k.port),
  },

  hosts(w, a, side): HostSet {
    switch (a.kind) {
      case "port":
      case "network":
      case "subnet":
        return a[side] ? served(w) : new Set();
      case "agent":
        return isNetworkHost(a.before) || isNetworkHost(a.after) ? served(w) : new Set();
      default:
        return new Set();
    }
  },

  keys(w, a) {
    switch (a.kind) {
      case "port": {
        const keys = new Set<string>();
        for (const p of [a.before, a.after]) {
          if (!p) continue;
          keys.add(key.dhcphost(p.network, a.id));
          // the DHCP port coming, going or changing turns the network's server on, off or over
          if (isDhcpPort(p)) for (const k of networkKeys(w, p.network)) keys.add(k);
        }
        return [...keys];
      }
      case "network":
        return [key.dhcp(a.id)];
      case "subnet": {
        const nets = new Set([a.before?.network, a.after?.network].filter((x): x is string => Boolean(x)));
        return [...nets].map(key.dhcp);
      }
      case "agent":
        return isNetworkHost(a.before) || isNetworkHost(a.after) ? [...w.dhcpNetworks()].flatMap((n) => networkKeys(w, n)) : [];
      default:
        return [];
    }
  },
};
