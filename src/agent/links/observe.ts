// Reads what the kernel has: links, FDB of our VXLAN devices, neighbours.
import { json } from "../../os/exec.ts";
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

/** Links, FDB and neighbours in three parallel reads (one process each, whatever the number of networks). */
export async function observe(): Promise<Observed> {
  const [rawLinks, rawFdb, rawNeigh] = await Promise.all([
    json<IpLink[]>("ip", ["-j", "-d", "link", "show"]),
    json<{ mac: string; ifname?: string; dst?: string }[]>("bridge", ["-j", "fdb", "show"]),
    json<{ dst: string; dev?: string; lladdr?: string; state?: string[] }[]>("ip", ["-j", "neigh", "show"]),
  ]);
  const links = parseLinks(rawLinks);
  const ours = (dev: string | undefined): dev is string => dev !== undefined && /^vxlan-\d+$/.test(dev);
  const fdb: ObservedFdb[] = rawFdb.filter((e) => e.dst && ours(e.ifname)).map((e) => ({ dev: e.ifname!, mac: e.mac, dst: e.dst! }));
  const neigh: ObservedNeigh[] = rawNeigh.filter((n) => ours(n.dev)).map((n) => ({ dev: n.dev!, ip: n.dst, mac: n.lladdr ?? null, permanent: (n.state ?? []).includes("PERMANENT") }));
  return { links, fdb, neigh };
}
