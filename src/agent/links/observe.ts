// Reads what the kernel has: links, FDB of our VXLAN devices, neighbours.
import { json } from "../exec.ts";
import type { Observed, ObservedFdb, ObservedLink, ObservedNeigh } from "./plan.ts";

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

export function parseLinks(raw: IpLink[]): Map<string, ObservedLink> {
  const out = new Map<string, ObservedLink>();
  for (const l of raw) {
    const kind = l.linkinfo?.info_kind ?? null;
    const d = l.linkinfo?.info_data ?? {};
    out.set(l.ifname, {
      name: l.ifname,
      kind,
      master: l.master ?? null,
      up: (l.flags ?? []).includes("UP"),
      mtu: l.mtu,
      ...(kind === "vxlan"
        ? { vxlan: { id: Number(d.id), local: (d.local as string) ?? null, port: Number(d.port), learning: Boolean(d.learning), proxy: Boolean(d.proxy) } }
        : {}),
    });
  }
  return out;
}

export async function observe(): Promise<Observed> {
  const links = parseLinks(await json<IpLink[]>("ip", ["-j", "-d", "link", "show"]));
  const fdb: ObservedFdb[] = [];
  const neigh: ObservedNeigh[] = [];
  for (const name of links.keys()) {
    if (!/^vxlan-\d+$/.test(name)) continue;
    for (const e of await json<{ mac: string; dst?: string }[]>("bridge", ["-j", "fdb", "show", "dev", name])) if (e.dst) fdb.push({ dev: name, mac: e.mac, dst: e.dst });
    for (const n of await json<{ dst: string; lladdr?: string; state?: string[] }[]>("ip", ["-j", "neigh", "show", "dev", name])) {
      neigh.push({ dev: name, ip: n.dst, mac: n.lladdr ?? null, permanent: (n.state ?? []).includes("PERMANENT") });
    }
  }
  return { links, fdb, neigh };
}
