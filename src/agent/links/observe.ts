// Reads what the kernel has, through netlink dumps in the agent's process:
// links (with their ifalias), and the FDB and neighbour entries of our VXLAN
// devices, whatever the number of networks.
import type { Exec } from "../../os/exec.ts";
import { type LinkInfo, Rtnl } from "../../os/netlink/rtnl.ts";
import { isOwnedVxlan } from "../naming.ts";
import type { Observed, ObservedFdb, ObservedLink, ObservedNeigh } from "./ops.ts";

/** The kernel's links as the planners see them (masters by name). */
export function toObserved(raw: readonly LinkInfo[]): Map<string, ObservedLink> {
  const names = new Map(raw.map((l) => [l.index, l.name]));
  const out = new Map<string, ObservedLink>();
  for (const l of raw) {
    out.set(l.name, {
      name: l.name,
      kind: l.kind,
      master: names.get(l.master) ?? null,
      up: l.up,
      mtu: l.mtu,
      alias: l.alias,
      ...(l.vxlan ? { vxlan: l.vxlan } : {}),
    });
  }
  return out;
}

/** One netlink dump in this process (no `ip -j -d link show`: the agent reads links at every reconcile). */
export async function observeLinks(exec: Exec): Promise<Pick<Observed, "links">> {
  return { links: toObserved(Rtnl.with(exec.netns, (nl) => nl.links())) };
}

/** The FDB and neighbour entries of our VXLAN devices, from two netlink dumps (`bridge fdb show`, `ip neigh show`). */
export async function observeFdb(exec: Exec): Promise<Pick<Observed, "fdb" | "neigh">> {
  return Rtnl.with(exec.netns, (nl) => {
    const fdb: ObservedFdb[] = [];
    const neigh: ObservedNeigh[] = [];
    // only our VXLAN devices' entries are read: a host's bridges hold an entry per port and MAC
    for (const vx of nl.links("vxlan").filter((l) => isOwnedVxlan(l.name))) {
      for (const e of nl.fdb(vx.index)) if (e.index === vx.index && e.ip && e.mac) fdb.push({ dev: vx.name, mac: e.mac, dst: e.ip });
      for (const n of nl.neighbours(vx.index)) if (n.index === vx.index && n.ip) neigh.push({ dev: vx.name, ip: n.ip, mac: n.mac, permanent: n.permanent });
    }
    return { fdb, neigh };
  });
}
