// A network's DHCP and DNS server as dnsmasq must run it (pure): the command
// line, which changes only with the network's shape (its subnets, MTU,
// domain, interface) and so restarts dnsmasq only then, and three files that
// change with every port, which dnsmasq re-reads on SIGHUP without dropping
// a query:
//   hosts  static assignments, one line per port (--dhcp-hostsfile)
//   opts   the subnets' options and each port's extra_dhcp_opts (--dhcp-optsfile)
//   names  every fixed IP's name, for A/AAAA and PTR (--addn-hosts)
// No lease file is read or written: a port's address is its fixed IP, after
// any restart of anything.
//
// dnsmasq 2.90 (Debian 12's) dies of SIGSEGV on a SIGHUP that re-reads a
// hostsfile whose lines carry `set:` tags once a client has renewed a lease
// (a reproduction: docs/dhcp-dns.md). So the file's lines carry none; the
// few ports with extra_dhcp_opts (which need a tag to match) go on the command
// line instead, and changing those restarts dnsmasq: rare (PXE, set at boot). Modelled on Neutron's DHCP agent's command line
// (neutron/agent/linux/dhcp.py), less what Seam does not need.
import type { DhcpHostItem, DhcpItem, DhcpSubnet } from "../../contract/intent.ts";
import { parseCidr } from "../../net/address.ts";

export interface DnsmasqFiles {
  readonly hosts: string;
  readonly opts: string;
  readonly names: string;
}

export const FILES: readonly (keyof DnsmasqFiles)[] = ["hosts", "opts", "names"];

/** Leases are renewed at half of this; a static assignment never changes, so a day is plenty. */
const LEASE = "86400s";

const isV6 = (ip: string) => ip.includes(":");
const subnetTag = (s: DhcpSubnet) => `s-${s.id}`;
const portTag = (port: string) => `p-${port}`;

function netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join(".");
}

/** Subnets dnsmasq hands addresses on: IPv4, and IPv6 unless SLAAC (there the router's advertisements do). */
const servesAddresses = (s: DhcpSubnet) => !isV6(s.cidr) || s.v6Mode !== "slaac";

export interface DnsmasqArgs {
  /** the interface inside the namespace */
  readonly dev: string;
  /** where its files and pid file live */
  readonly dir: string;
  /** the agent's relay to the upstream resolvers (dns-relay.ts): the namespace's veth to it, and its port; null: no forwarding */
  readonly relay?: { readonly dev: string; readonly address: string; readonly port: number } | null;
}

/** Room for every address the subnets hold (Neutron's rule too), so that the command line changes with the subnets only. */
function leaseMax(d: DhcpItem): number {
  let n = 0;
  for (const s of d.subnets) n += isV6(s.cidr) ? 65536 : 2 ** (32 - parseCidr(s.cidr)!.prefixLen);
  return Math.min(Math.max(n, 16), 1 << 20);
}

export function dnsmasqArgs(d: DhcpItem, o: DnsmasqArgs, hosts: readonly DhcpHostItem[]): string[] {
  const args = [
    "--conf-file=/dev/null",
    "--no-hosts",
    "--no-resolv",
    `--pid-file=${o.dir}/pid`,
    // Detached, dnsmasq would log to syslog or else the stderr of whoever started it, which is gone: a
    // write there kills it (SIGPIPE) the first time it logs, a SIGHUP's re-read. A file of its own instead.
    `--log-facility=${o.dir}/log`,
    `--dhcp-hostsfile=${o.dir}/hosts`,
    `--dhcp-optsfile=${o.dir}/opts`,
    `--addn-hosts=${o.dir}/names`,
    "--leasefile-ro",
    "--bind-interfaces",
    `--interface=${o.dev}`,
    // Answers a client that asks to keep an address this (restarted) server has not leased yet, at once
    // rather than after its request times out: every address here is static, so the answer is known.
    "--dhcp-authoritative",
    // No probe before offering (MACHINE-NOTES: ~3 s a lease here): the IPAM already made the address unique.
    "--no-ping",
    // Names come from the model (dns_name), never from what a client calls itself.
    "--dhcp-ignore-names",
    `--dhcp-lease-max=${leaseMax(d)}`,
    `--dhcp-option-force=option:mtu,${d.mtu}`,
  ];
  for (const s of d.subnets) {
    if (!servesAddresses(s)) continue;
    const c = parseCidr(s.cidr)!;
    const base = s.cidr.split("/")[0]!;
    args.push(isV6(s.cidr) ? `--dhcp-range=set:${subnetTag(s)},${base},static,${c.prefixLen},${LEASE}` : `--dhcp-range=set:${subnetTag(s)},${base},static,${netmask(c.prefixLen)},${LEASE}`);
  }
  if (d.domain) {
    // Names in the network's domain are answered here or not at all (NXDOMAIN, never forwarded).
    args.push(`--domain=${d.domain}`, `--local=/${d.domain}/`);
  }
  // Everything else goes to the agent's relay; without one, dnsmasq refuses it (REFUSED, at once).
  if (o.relay) args.push(`--server=${o.relay.address}%${o.relay.dev}#${o.relay.port}`);
  for (const h of sortedHosts(hosts)) {
    if (!h.opts.length) continue;
    const line = hostLine(h, true);
    if (line) args.push(`--dhcp-host=${line}`);
    for (const opt of h.opts) args.push(`--dhcp-option=${extraOpt(h.port, opt)}`);
  }
  return args;
}

const sortedHosts = (hosts: readonly DhcpHostItem[]) => [...hosts].sort((a, b) => (a.port < b.port ? -1 : 1));

/** A dhcp-host line: MAC, the tag its options match (only on the command line), its first IPv4 and its IPv6 addresses, the hostname. */
function hostLine(h: DhcpHostItem, tagged: boolean): string | null {
  const v4 = h.names.find((n) => !isV6(n.ip));
  const v6 = h.names.filter((n) => isV6(n.ip));
  const hostname = (v4 ?? v6[0])?.hostname;
  const addrs = [...(v4 ? [v4.ip] : []), ...v6.map((n) => `[${n.ip}]`)];
  if (!addrs.length) return null;
  return [h.mac, ...(tagged ? [`set:${portTag(h.port)}`] : []), ...addrs, ...(hostname ? [hostname] : [])].join(",");
}

/**
 * Classless static routes (RFC 3442): the subnet's host_routes, and with
 * metadata 169.254.169.254 via the DHCP port (Neutron's force_metadata: the
 * same way to it on an isolated network and on a routed one). When given,
 * clients ignore the router option, so the default route goes in too.
 */
function classless(s: DhcpSubnet, metadata: boolean): string | null {
  const routes = s.routes.filter((r) => !isV6(r.destination));
  if (metadata && s.server) routes.push({ destination: "169.254.169.254/32", nexthop: s.server });
  if (!routes.length) return null;
  const parts = routes.map((r) => `${r.destination},${r.nexthop}`);
  if (s.gateway && !routes.some((r) => r.destination === "0.0.0.0/0")) parts.push(`0.0.0.0/0,${s.gateway}`);
  return parts.join(",");
}

/** An extra_dhcp_opt as dnsmasq spells it: a number, or a name dnsmasq knows (`option:`/`option6:`). */
function extraOpt(port: string, o: DhcpHostItem["opts"][number]): string {
  const name = /^\d+$/.test(o.name) ? o.name : `${o.version === 6 ? "option6" : "option"}:${o.name}`;
  return `tag:${portTag(port)},${name},${o.value}`;
}

export function dnsmasqFiles(d: DhcpItem, hosts: readonly DhcpHostItem[], o: { readonly metadata?: boolean } = {}): DnsmasqFiles {
  const sorted = sortedHosts(hosts);
  const hostLines: string[] = [];
  const nameLines: string[] = [];
  const optLines: string[] = [];
  for (const s of d.subnets) {
    const tag = `tag:${subnetTag(s)}`;
    if (!isV6(s.cidr)) {
      // an empty router option: no default route (a subnet without gateway), rather than dnsmasq's own address
      optLines.push(s.gateway ? `${tag},option:router,${s.gateway}` : `${tag},option:router`);
      if (s.dns.length) optLines.push(`${tag},option:dns-server,${s.dns.join(",")}`);
      const cl = classless(s, o.metadata ?? false);
      if (cl) optLines.push(`${tag},option:classless-static-route,${cl}`, `${tag},249,${cl}`);
    } else if (s.dns.length) optLines.push(`${tag},option6:dns-server,${s.dns.map((x) => `[${x}]`).join(",")}`);
  }
  for (const h of sorted) {
    // a port with extra_dhcp_opts is on the command line (above), with its tag
    const line = h.opts.length ? null : hostLine(h, false);
    if (line) hostLines.push(line);
    for (const n of h.names) nameLines.push(`${n.ip}\t${n.fqdn.replace(/\.$/, "")}\t${n.hostname}`);
  }
  const text = (lines: string[]) => (lines.length ? `${lines.join("\n")}\n` : "");
  return { hosts: text(hostLines), opts: text(optLines), names: text(nameLines) };
}
