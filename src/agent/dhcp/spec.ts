// HostIntent -> each network's DHCP server as its namespace must hold it
// (pure): the DHCP port's interface (MAC, addresses, MTU from its port item),
// dnsmasq's command line and its files (dnsmasq.ts).
import { type DhcpHostItem, type IntentItem, itemsOf, key } from "../../contract/intent.ts";
import { device, netns } from "../naming.ts";
import type { RouterLink } from "../routers/spec.ts";
import { dnsmasqArgs, type DnsmasqFiles, dnsmasqFiles } from "./dnsmasq.ts";

export interface DhcpSpec {
  readonly network: string;
  readonly netns: string;
  /** dnsmasq's files and pid file */
  readonly dir: string;
  readonly link: RouterLink;
  readonly args: readonly string[];
  readonly files: DnsmasqFiles;
}

export function dhcpSpecs(items: ReadonlyMap<string, IntentItem>, baseDir: string, suffix = ""): Map<string, DhcpSpec> {
  const hosts = new Map<string, DhcpHostItem[]>();
  for (const h of itemsOf(items, "dhcphost")) {
    const list = hosts.get(h.network) ?? [];
    list.push(h);
    hosts.set(h.network, list);
  }
  const out = new Map<string, DhcpSpec>();
  for (const d of itemsOf(items, "dhcp")) {
    const p = items.get(key.port(d.port));
    if (p?.kind !== "port") continue; // its port item is on its way
    const ns = netns.dhcp(d.network, suffix);
    const dir = `${baseDir}/${ns}`;
    const dev = device.dhcpInterface(p.id);
    const link: RouterLink = { dev, peer: p.device, mac: p.mac, mtu: p.mtu, up: true, addresses: p.addresses };
    out.set(ns, { network: d.network, netns: ns, dir, link, args: dnsmasqArgs(d, { dev, dir }, hosts.get(d.network) ?? []), files: dnsmasqFiles(d, hosts.get(d.network) ?? []) });
  }
  return out;
}

export const fingerprint = (s: DhcpSpec) => JSON.stringify(s);
