// Reads what the kernel has: links (with their ifalias), and the FDB and
// neighbour entries of our VXLAN devices; one process per table, whatever the
// number of networks.
import type { Exec } from "../../os/exec.ts";
import { isOwnedVxlan } from "../naming.ts";
import type { Observed, ObservedFdb, ObservedLink, ObservedNeigh } from "./ops.ts";

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
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
      alias: l.ifalias ?? null,
      ...(kind === "vxlan"
        ? { vxlan: { id: Number(d.id), local: (d.local as string) ?? null, port: Number(d.port), learning: Boolean(d.learning), proxy: Boolean(d.proxy) } }
        : {}),
    });
  }
  return out;
}

export async function observeLinks(exec: Exec): Promise<Pick<Observed, "links">> {
  return { links: parseLinks(await exec.json<IpLink[]>("ip", ["-j", "-d", "link", "show"])) };
}

export async function observeFdb(exec: Exec): Promise<Pick<Observed, "fdb" | "neigh">> {
  const [rawFdb, rawNeigh] = await Promise.all([
    exec.json<{ mac: string; ifname?: string; dst?: string }[]>("bridge", ["-j", "fdb", "show"]),
    exec.json<{ dst: string; dev?: string; lladdr?: string; state?: string[] }[]>("ip", ["-j", "neigh", "show"]),
  ]);
  const ours = (dev: string | undefined): dev is string => dev !== undefined && isOwnedVxlan(dev);
  const fdb: ObservedFdb[] = rawFdb.filter((e) => e.dst && ours(e.ifname)).map((e) => ({ dev: e.ifname!, mac: e.mac, dst: e.dst! }));
  const neigh: ObservedNeigh[] = rawNeigh.filter((n) => ours(n.dev)).map((n) => ({ dev: n.dev!, ip: n.dst, mac: n.lladdr ?? null, permanent: (n.state ?? []).includes("PERMANENT") }));
  return { fdb, neigh };
}
