// `seam routes --host H --network N`: a network's forwarding table on one host
// as the controller computes it (the HostIntent): every address with its MAC
// and where it lives, a local port's device or a remote VTEP with the VNI;
// on the host that runs a router on the network, what the router reaches.
import { itemsOf, type IntentItem, key, type PortItem } from "../contract/intent.ts";
import { formatCidr, toCidr } from "../net/address.ts";
import { SouthboundClient } from "../agent/southbound-client.ts";
import { ApiClient, type Credentials, type Transport, Unreachable } from "../client/api-client.ts";
import { Exec } from "../os/exec.ts";

export interface RouteRow {
  readonly address: string;
  readonly mac: string;
  readonly where: string;
  readonly port: string;
}

/** A prefix reached through a router that has an interface on the network (on the host that runs it). */
export interface RoutedRow {
  readonly destination: string;
  /** the router's address on this network */
  readonly gateway: string;
  readonly router: string;
  /** how the router forwards it: a connected interface, a static next hop, or the external gateway */
  readonly how: string;
}

/** What the routers this host runs reach from the network: their other subnets, static routes, the default route. */
export function routedEntries(items: ReadonlyMap<string, IntentItem>, networkId: string): RoutedRow[] {
  const out: RoutedRow[] = [];
  const portOf = (id: string) => items.get(key.port(id)) as PortItem | undefined;
  for (const r of itemsOf(items, "router")) {
    const ifaces = r.interfaces.map(portOf).filter((p): p is PortItem => p?.kind === "port");
    const here = ifaces.find((p) => p.network === networkId);
    if (!here) continue;
    for (const gateway of here.addresses.map((a) => a.split("/")[0]!)) {
      const v6 = gateway.includes(":");
      const same = (ip: string) => ip.includes(":") === v6;
      for (const p of ifaces) {
        if (p === here) continue;
        for (const a of p.addresses.filter(same)) out.push({ destination: formatCidr(toCidr(a)!), gateway, router: r.id, how: `connected, ${p.device}` });
      }
      for (const s of r.routes.filter((x) => same(x.nexthop))) out.push({ destination: s.destination, gateway, router: r.id, how: `static, next hop ${s.nexthop}` });
      const gw = r.gateway && portOf(r.gateway.port);
      const nh = r.gateway?.nexthops.filter(same) ?? [];
      if (r.gateway && gw && nh.length) out.push({ destination: "default", gateway, router: r.id, how: `external gateway ${gw.device}, next hop ${nh.join(", ")}${r.gateway.snat && !v6 ? ", SNAT" : ""}` });
    }
  }
  return out;
}

/** The table for one network from a host's intent (pure). */
export function routeTable(items: ReadonlyMap<string, IntentItem>, networkId: string): { header: string; rows: RouteRow[]; flood: string[]; routed: RoutedRow[] } | null {
  const net = itemsOf(items, "net").find((n) => n.id === networkId);
  if (!net) return null;
  const seg = net.type === "vxlan" ? `vni ${net.segment}` : net.type;
  const rows: RouteRow[] = [];
  for (const p of itemsOf(items, "port")) {
    if (p.network !== networkId) continue;
    for (const a of p.addresses) rows.push({ address: a.split("/")[0]!, mac: p.mac, where: `local ${p.device}`, port: p.id });
  }
  for (const r of itemsOf(items, "remote")) {
    if (r.network !== networkId) continue;
    for (const ip of r.ips) rows.push({ address: ip, mac: r.mac, where: `vtep ${r.vtep} ${seg} (${r.host})`, port: r.port });
    if (r.ips.length === 0) rows.push({ address: "-", mac: r.mac, where: `vtep ${r.vtep} ${seg} (${r.host})`, port: r.port });
  }
  const key = (ip: string) => ip.split(/[.:]/).map((x) => x.padStart(5, "0")).join(".");
  rows.sort((a, b) => key(a.address).localeCompare(key(b.address)));
  return { header: `network ${net.name || net.id} (${net.id}) ${seg} mtu ${net.mtu}`, rows, flood: [...net.vteps], routed: routedEntries(items, networkId) };
}

function table(cols: string[], data: string[][]): string[] {
  const width = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i]!.length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(width[i]!)).join("  ").trimEnd();
  return [line(cols), ...data.map(line)];
}

export function formatRoutes(host: string, t: NonNullable<ReturnType<typeof routeTable>>): string {
  return [
    `host ${host}: ${t.header}`,
    ...table(["ADDRESS", "MAC", "NEXT HOP", "PORT"], t.rows.map((r) => [r.address, r.mac, r.where, r.port])),
    `flood (broadcast, unknown unicast) to: ${t.flood.length ? t.flood.join(", ") : "(no other host)"}`,
    ...(t.routed.length ? ["routed (routers this host runs):", ...table(["DESTINATION", "VIA", "ROUTER", "HOW"], t.routed.map((r) => [r.destination, r.gateway, r.router, r.how]))] : []),
  ].join("\n");
}

/** Where `--kernel` reads the host's kernel: this machine's, or a namespace standing for the host (the lab). */
export interface KernelView {
  readonly netns: string | null;
  /** the host's agent's namespace suffix (the lab's `@host-N`) */
  readonly suffix: string;
}

export async function showRoutes(server: string, host: string, network: string, creds: Credentials, transport: Transport, kernel?: KernelView): Promise<string> {
  try {
    return await routesOf(server, host, network, creds, transport, kernel);
  } catch (e) {
    if (e instanceof Unreachable) throw new Error(`${e.message} (give --server, or start a lab: seam lab up)`);
    throw e;
  }
}

async function routesOf(server: string, host: string, network: string, creds: Credentials, transport: Transport, kernel?: KernelView): Promise<string> {
  let networkId = network;
  if (!/^[0-9a-f-]{36}$/.test(network)) {
    const res = await new ApiClient(server, creds, undefined, transport).call("GET", `/v2.0/networks?name=${encodeURIComponent(network)}`);
    const found = ((await res.json()) as { networks?: { id: string }[] }).networks ?? [];
    if (found.length !== 1) throw new Error(found.length ? `more than one network is named ${network}; give its id` : `no network named ${network}`);
    networkId = found[0]!.id;
  }
  const { items } = await new SouthboundClient(server, host, creds, transport).intent();
  const intent = new Map(Object.entries(items)) as Map<string, IntentItem>;
  const t = routeTable(intent, networkId);
  if (!t) throw new Error(`host ${host} has nothing on network ${network} (no local port, not its network host)`);
  const out = formatRoutes(host, t);
  if (!kernel) return out;
  const { kernelDrift } = await import("./drift.ts");
  const res = await new ApiClient(server, creds, undefined, transport).call("GET", `/v2.0/agents?host=${encodeURIComponent(host)}`);
  const agent = (((await res.json()) as { agents?: { configurations?: { tunneling_ip?: string } }[] }).agents ?? [])[0];
  const vtep = agent?.configurations?.tunneling_ip;
  if (!vtep) throw new Error(`host ${host} has no registered agent: its kernel cannot be compared (--kernel needs the agent's VTEP)`);
  const drift = await kernelDrift(intent, networkId, kernel.netns ? Exec.in(kernel.netns) : Exec.here, kernel.suffix, vtep);
  const where = kernel.netns ? `namespace ${kernel.netns}` : "this machine";
  return `${out}\nkernel (${where}): ${drift.length ? `differs; the agent would run:\n${drift.map((l) => `  ${l}`).join("\n")}` : "in step with the intent"}`;
}
