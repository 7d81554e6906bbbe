// HostIntent -> each network's DHCP server as its namespace must hold it
// (pure): the DHCP port's interface (MAC, addresses, MTU from its port item),
// dnsmasq's command line and its files (dnsmasq.ts).
import { type DhcpHostItem, type IntentItem, itemsOf, key } from "../../contract/intent.ts";
import { device, netns } from "../naming.ts";
import type { RouterLink } from "../routers/spec.ts";
import { RELAY_NS_ADDRESS, RELAY_HOST_ADDRESS } from "./dns-relay.ts";
import { haproxyConfig, METADATA_ADDRESS } from "./metadata-proxy.ts";
import { dnsmasqArgs, type DnsmasqFiles, dnsmasqFiles } from "./dnsmasq.ts";

export interface DhcpSpec {
  readonly network: string;
  readonly netns: string;
  /** dnsmasq's files and pid file */
  readonly dir: string;
  readonly link: RouterLink;
  /** haproxy's configuration for 169.254.169.254 (metadata-proxy.ts); null: no metadata socket */
  readonly metadata: { readonly config: string } | null;
  /** the veth to the agent's DNS relay (host side, namespace side); null: no upstreams configured */
  readonly relay: { readonly host: string; readonly inside: string } | null;
  readonly args: readonly string[];
  readonly files: DnsmasqFiles;
}

export interface DhcpSpecOptions {
  /** dnsmasq's files go under here, a directory per namespace */
  readonly baseDir: string;
  readonly suffix?: string;
  /** the agent's DNS relay port, when it has upstreams to relay to */
  readonly relayPort?: number | null;
  /** the agent's metadata socket, when it serves metadata */
  readonly metadataSocket?: string | null;
}

export function dhcpSpecs(items: ReadonlyMap<string, IntentItem>, o: DhcpSpecOptions): Map<string, DhcpSpec> {
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
    const ns = netns.dhcp(d.network, o.suffix ?? "");
    const dir = `${o.baseDir}/${ns}`;
    const dev = device.dhcpInterface(p.id);
    const metadata = o.metadataSocket ? { config: haproxyConfig(d.network, dir, o.metadataSocket) } : null;
    const link: RouterLink = { dev, peer: p.device, mac: p.mac, mtu: p.mtu, up: true, addresses: [...p.addresses, ...(metadata ? [`${METADATA_ADDRESS}/32`] : [])] };
    const relay = o.relayPort ? { host: device.dhcpRelayHost(d.network), inside: device.dhcpRelay(d.network) } : null;
    const relayArg = relay && o.relayPort ? { dev: relay.inside, address: RELAY_HOST_ADDRESS, port: o.relayPort } : null;
    const mine = hosts.get(d.network) ?? [];
    const files = dnsmasqFiles(d, mine, { metadata: metadata !== null });
    out.set(ns, { network: d.network, netns: ns, dir, link, metadata, relay, args: dnsmasqArgs(d, { dev, dir, relay: relayArg }, mine), files });
  }
  return out;
}

/** `ip -batch` lines for the relay veth: on the host, then inside (link-local only, no duplicate address detection to wait for). */
export function relayLinkLines(r: NonNullable<DhcpSpec["relay"]>, ns: string): { host: string[]; inside: string[] } {
  return {
    host: [`link add ${r.host} type veth peer name ${r.inside} netns ${ns}`, `link set dev ${r.host} addrgenmode none`, `addr add ${RELAY_HOST_ADDRESS}/64 dev ${r.host} nodad`, `link set dev ${r.host} up`],
    inside: [`link set dev ${r.inside} addrgenmode none`, `addr add ${RELAY_NS_ADDRESS}/64 dev ${r.inside} nodad`, `link set dev ${r.inside} up`],
  };
}

export const fingerprint = (s: DhcpSpec) => JSON.stringify(s);
