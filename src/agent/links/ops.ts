// Kernel operations on links, FDB and neighbours as small frozen records (the
// planners decide with these), one renderer per tool (iproute2 batch lines),
// and what the kernel holds after them (pure), so that "what the plan did" is
// computed from the plan, never guessed from command text.

export interface ObservedLink {
  readonly name: string;
  /** linkinfo kind: bridge, vxlan, tun, veth, ... (null: plain) */
  readonly kind: string | null;
  readonly master: string | null;
  readonly up: boolean;
  readonly mtu: number;
  readonly alias: string | null;
  readonly vxlan?: { readonly id: number; readonly local: string | null; readonly port: number; readonly learning: boolean; readonly proxy: boolean };
}
export interface ObservedFdb {
  readonly dev: string;
  readonly mac: string;
  readonly dst: string;
}
export interface ObservedNeigh {
  readonly dev: string;
  readonly ip: string;
  readonly mac: string | null;
  readonly permanent: boolean;
}
export interface Observed {
  readonly links: ReadonlyMap<string, ObservedLink>;
  readonly fdb: readonly ObservedFdb[];
  readonly neigh: readonly ObservedNeigh[];
}

export const ZERO_MAC = "00:00:00:00:00:00";

export type LinkOp =
  | { readonly op: "addBridge"; readonly dev: string }
  | { readonly op: "addVxlan"; readonly dev: string; readonly vni: number; readonly local: string; readonly port: number }
  /** attach (master), detach (null) or leave (undefined); MTU (null: leave); up/down; ifalias (null: leave, "": clear) */
  | { readonly op: "set"; readonly dev: string; readonly master?: string | null; readonly mtu: number | null; readonly up: boolean; readonly alias: string | null }
  | { readonly op: "del"; readonly dev: string }
  /** a unicast entry (replace), or the all-zero flood entry to one more VTEP (append) */
  | { readonly op: "fdbPut"; readonly dev: string; readonly mac: string; readonly dst: string }
  | { readonly op: "fdbDel"; readonly dev: string; readonly mac: string; readonly dst: string }
  | { readonly op: "neighPut"; readonly dev: string; readonly ip: string; readonly mac: string }
  | { readonly op: "neighDel"; readonly dev: string; readonly ip: string };

type OpOf<K extends LinkOp["op"]> = Extract<LinkOp, { op: K }>;

// One line per op kind and the tool that runs it; a new op without its line does not compile.
const RENDER: { readonly [K in LinkOp["op"]]: (o: OpOf<K>) => { readonly tool: "ip" | "bridge"; readonly line: string } } = {
  addBridge: (o) => ({ tool: "ip", line: `link add name ${o.dev} type bridge` }),
  // nolearning: the controller knows every MAC; proxy: ARP for known addresses is answered here
  addVxlan: (o) => ({ tool: "ip", line: `link add name ${o.dev} type vxlan id ${o.vni} local ${o.local} dstport ${o.port} nolearning proxy` }),
  set: (o) => ({
    tool: "ip",
    line: ["link set dev", o.dev, o.master === undefined ? "" : o.master === null ? "nomaster" : `master ${o.master}`, o.mtu === null ? "" : `mtu ${o.mtu}`, o.up ? "up" : "down", o.alias === null ? "" : `alias ${o.alias === "" ? '""' : o.alias}`]
      .filter(Boolean)
      .join(" "),
  }),
  del: (o) => ({ tool: "ip", line: `link del dev ${o.dev}` }),
  fdbPut: (o) => ({ tool: "bridge", line: `fdb ${o.mac === ZERO_MAC ? "append" : "replace"} ${o.mac} dev ${o.dev} dst ${o.dst} self permanent` }),
  fdbDel: (o) => ({ tool: "bridge", line: `fdb del ${o.mac} dev ${o.dev} dst ${o.dst} self` }),
  neighPut: (o) => ({ tool: "ip", line: `neigh replace ${o.ip} lladdr ${o.mac} dev ${o.dev} nud permanent` }),
  neighDel: (o) => ({ tool: "ip", line: `neigh del ${o.ip} dev ${o.dev}` }),
};

export function render(o: LinkOp): { readonly tool: "ip" | "bridge"; readonly line: string } {
  return (RENDER[o.op] as (x: LinkOp) => { tool: "ip" | "bridge"; line: string })(o);
}

/** The batch lines for one tool, in plan order. */
export const linesFor = (ops: readonly LinkOp[], tool: "ip" | "bridge") => ops.map(render).filter((r) => r.tool === tool).map((r) => r.line);

/** What the kernel holds after `ops` applied without errors (pure; the kernel's own side effects included). */
export function assumeApplied(before: Observed, ops: readonly LinkOp[]): Observed {
  if (ops.length === 0) return before;
  const links = new Map(before.links);
  let fdb = [...before.fdb];
  let neigh = [...before.neigh];
  for (const o of ops) {
    switch (o.op) {
      case "addBridge":
        links.set(o.dev, { name: o.dev, kind: "bridge", master: null, up: false, mtu: 1500, alias: null });
        break;
      case "addVxlan":
        links.set(o.dev, { name: o.dev, kind: "vxlan", master: null, up: false, mtu: 1500, alias: null, vxlan: { id: o.vni, local: o.local, port: o.port, learning: false, proxy: true } });
        break;
      case "set": {
        const l = links.get(o.dev);
        if (l) links.set(o.dev, { ...l, master: o.master === undefined ? l.master : o.master, mtu: o.mtu ?? l.mtu, up: o.up, alias: o.alias === null ? l.alias : o.alias || null });
        break;
      }
      case "del":
        links.delete(o.dev);
        // deleting a device takes its FDB and neighbour entries, and a bridge releases its ports
        fdb = fdb.filter((e) => e.dev !== o.dev);
        neigh = neigh.filter((n) => n.dev !== o.dev);
        for (const [name, l] of links) if (l.master === o.dev) links.set(name, { ...l, master: null });
        break;
      case "fdbPut":
        if (o.mac !== ZERO_MAC) fdb = fdb.filter((e) => !(e.dev === o.dev && e.mac === o.mac));
        if (!fdb.some((e) => e.dev === o.dev && e.mac === o.mac && e.dst === o.dst)) fdb.push({ dev: o.dev, mac: o.mac, dst: o.dst });
        break;
      case "fdbDel":
        fdb = fdb.filter((e) => !(e.dev === o.dev && e.mac === o.mac && e.dst === o.dst));
        break;
      case "neighPut":
        neigh = neigh.filter((n) => !(n.dev === o.dev && n.ip === o.ip));
        neigh.push({ dev: o.dev, ip: o.ip, mac: o.mac, permanent: true });
        break;
      case "neighDel":
        neigh = neigh.filter((n) => !(n.dev === o.dev && n.ip === o.ip));
        break;
    }
  }
  return { links, fdb, neigh };
}
