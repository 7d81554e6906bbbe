// What a router knows of its neighbours: a permanent entry, in its
// namespace, for every address on each of its interfaces' networks (the
// model knows them all, as Neutron's DVR writes its routers' ARP tables).
// Without them a router keeps a learnt MAC for up to a minute after the
// address moved to another port (a pod recreated with its predecessor's
// address, a Service's backend among them): its ARP requests would be
// answered right (the VXLAN device answers from the model), but it does not
// ask again until the old entry goes stale. The entries are written only as
// they change; a namespace is read only when what it holds is not known.
import { type IntentItem, itemsOf } from "../../contract/intent.ts";
import { Exec } from "../../os/exec.ts";
import { device, netns } from "../naming.ts";

/** namespace -> `<dev> <ip>` -> MAC */
export type Neighbours = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** The entries each router namespace should hold (pure); `namespaces`: those this host builds. */
export function wantedNeighbours(items: ReadonlyMap<string, IntentItem>, namespaces: ReadonlySet<string>, suffix = ""): Neighbours {
  const byNetwork = new Map<string, Map<string, string>>();
  const add = (network: string, ip: string, mac: string) => {
    let m = byNetwork.get(network);
    if (!m) byNetwork.set(network, (m = new Map()));
    m.set(ip, mac);
  };
  for (const r of itemsOf(items, "remote")) for (const ip of r.ips) add(r.network, ip, r.mac);
  // local ports answer ARP themselves, but their addresses move as well; a router's own ports are not its neighbours
  for (const p of itemsOf(items, "port")) if (!p.owner.startsWith("network:router")) for (const a of p.addresses) add(p.network, a.split("/")[0]!, p.mac);

  const out = new Map<string, Map<string, string>>();
  const legs = (ns: string, interfaces: readonly string[], dev: (port: string) => string) => {
    if (!namespaces.has(ns)) return;
    const entries = new Map<string, string>();
    for (const id of interfaces) {
      const p = items.get(`port/${id}`);
      if (p?.kind !== "port") continue;
      for (const [ip, mac] of byNetwork.get(p.network) ?? []) entries.set(`${dev(id)} ${ip}`, mac);
    }
    out.set(ns, entries);
  };
  for (const r of itemsOf(items, "router")) legs(netns.router(r.id, suffix), r.interfaces, device.routerInterface);
  for (const r of itemsOf(items, "snat")) legs(netns.snat(r.id, suffix), r.interfaces, device.routerSnat);
  return out;
}

/** The difference as `ip -batch` lines. */
export function neighbourLines(have: ReadonlyMap<string, string>, want: ReadonlyMap<string, string>): string[] {
  const lines: string[] = [];
  for (const [k, mac] of want) {
    if (have.get(k) === mac) continue;
    const [dev, ip] = k.split(" ");
    lines.push(`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`);
  }
  for (const k of have.keys()) {
    if (want.has(k)) continue;
    const [dev, ip] = k.split(" ");
    lines.push(`neigh del ${ip} dev ${dev}`);
  }
  return lines;
}

export class RouterNeighbours {
  /** namespace -> what it holds, as last written without error */
  private readonly applied = new Map<string, ReadonlyMap<string, string>>();

  /** The namespace was (re)built: read what it holds next time. */
  forget(ns: string): void {
    this.applied.delete(ns);
  }

  async sync(want: Neighbours): Promise<string[]> {
    const errors: string[] = [];
    for (const ns of this.applied.keys()) if (!want.has(ns)) this.applied.delete(ns);
    for (const [ns, entries] of want) {
      const inside = Exec.in(ns);
      let have = this.applied.get(ns);
      try {
        if (!have) {
          const raw = await inside.json<{ dst: string; dev?: string; lladdr?: string }[]>("ip", ["-j", "neigh", "show", "nud", "permanent"]);
          have = new Map(raw.filter((n) => n.dev && n.lladdr).map((n) => [`${n.dev} ${n.dst}`, n.lladdr!]));
        }
        const failed = await inside.batch("ip", neighbourLines(have, entries));
        if (failed.length) {
          this.applied.delete(ns);
          errors.push(...failed.map((f) => `router neighbours (${ns}): ${f}`));
        } else this.applied.set(ns, entries);
      } catch (e) {
        this.applied.delete(ns);
        errors.push(`router neighbours (${ns}): ${(e as Error).message}`);
      }
    }
    return errors;
  }
}
