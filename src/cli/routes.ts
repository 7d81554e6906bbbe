// `seam routes --host H --network N`: a network's forwarding table on one host
// as the controller computes it (the HostIntent): every address with its MAC
// and where it lives, a local port's device or a remote VTEP with the VNI.
import { itemsOf, type IntentItem } from "../contract/intent.ts";
import { SouthboundClient } from "../agent/southbound-client.ts";
import { ApiClient, type Credentials } from "../client/api-client.ts";

export interface RouteRow {
  readonly address: string;
  readonly mac: string;
  readonly where: string;
  readonly port: string;
}

/** The table for one network from a host's intent (pure). */
export function routeTable(items: ReadonlyMap<string, IntentItem>, networkId: string): { header: string; rows: RouteRow[]; flood: string[] } | null {
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
  return { header: `network ${net.name || net.id} (${net.id}) ${seg} mtu ${net.mtu}`, rows, flood: [...net.vteps] };
}

export function formatRoutes(host: string, t: NonNullable<ReturnType<typeof routeTable>>): string {
  const cols = ["ADDRESS", "MAC", "NEXT HOP", "PORT"];
  const data = t.rows.map((r) => [r.address, r.mac, r.where, r.port]);
  const width = cols.map((c, i) => Math.max(c.length, ...data.map((d) => d[i]!.length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(width[i]!)).join("  ").trimEnd();
  return [
    `host ${host}: ${t.header}`,
    line(cols),
    ...data.map(line),
    `flood (broadcast, unknown unicast) to: ${t.flood.length ? t.flood.join(", ") : "(no other host)"}`,
  ].join("\n");
}

export async function showRoutes(server: string, host: string, network: string, creds: Credentials): Promise<string> {
  try {
    return await routesOf(server, host, network, creds);
  } catch (e) {
    if ((e as Error).message === "fetch failed") throw new Error(`cannot reach the controller at ${server} (give --server, or start a lab: seam lab up)`);
    throw e;
  }
}

async function routesOf(server: string, host: string, network: string, creds: Credentials): Promise<string> {
  let networkId = network;
  if (!/^[0-9a-f-]{36}$/.test(network)) {
    const res = await new ApiClient(server, creds).call("GET", `/v2.0/networks?name=${encodeURIComponent(network)}`);
    const found = ((await res.json()) as { networks?: { id: string }[] }).networks ?? [];
    if (found.length !== 1) throw new Error(found.length ? `more than one network is named ${network}; give its id` : `no network named ${network}`);
    networkId = found[0]!.id;
  }
  const { items } = await new SouthboundClient(server, host, creds).intent();
  const t = routeTable(new Map(Object.entries(items)) as Map<string, IntentItem>, networkId);
  if (!t) throw new Error(`host ${host} has nothing on network ${network} (no local port, not its network host)`);
  return formatRoutes(host, t);
}
