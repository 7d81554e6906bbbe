// HostIntent + what the kernel has -> iproute2 batches (pure).
// Seam owns, by name: bridges `brq<net[:11]>` and VXLAN devices `vxlan-<vni>`
// (Neutron's Linux bridge agent names), and the FDB/neighbour entries on those
// VXLAN devices. Port devices (`tap<port[:11]>`) are made by whoever runs the
// workload (qemu/libvirt, the CNI service, the lab); the agent attaches them.
import { type IntentItem, itemsOf, type NetItem } from "../../contract/intent.ts";

export const VXLAN_PORT = 4789;
const ZERO_MAC = "00:00:00:00:00:00";

export const bridgeName = (networkId: string) => `brq${networkId.slice(0, 11)}`;
export const vxlanName = (vni: number) => `vxlan-${vni}`;
export const isOwnedLink = (name: string) => /^brq[0-9a-f-]{1,11}$/.test(name) || /^vxlan-\d+$/.test(name);

export interface ObservedLink {
  readonly name: string;
  /** linkinfo kind: bridge, vxlan, tun, veth, ... (null: plain) */
  readonly kind: string | null;
  readonly master: string | null;
  readonly up: boolean;
  readonly mtu: number;
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

export interface LinkPlan {
  /** `ip -batch`: devices */
  readonly links: string[];
  /** `bridge -batch`: FDB */
  readonly fdb: string[];
  /** `ip -batch`: neighbours */
  readonly neigh: string[];
  /** networks this kernel cannot carry, with why */
  readonly refused: { readonly network: string; readonly reason: string }[];
}

export interface HostConfig {
  readonly vtep: string;
  /** physnet -> host interface, for flat networks */
  readonly physicalInterfaces: Readonly<Record<string, string>>;
  /** device kinds the kernel can create (features.ts) */
  readonly canVxlan: boolean;
}

interface WantedNet {
  readonly net: NetItem;
  readonly bridge: string;
  /** the device that carries the network off the host: a VXLAN device or a physical interface */
  readonly uplink: string | null;
}

function wantedNets(intent: ReadonlyMap<string, IntentItem>, cfg: HostConfig, refused: LinkPlan["refused"]): Map<string, WantedNet> {
  const out = new Map<string, WantedNet>();
  for (const net of itemsOf(intent, "net")) {
    const bridge = bridgeName(net.id);
    if (net.type === "vxlan" && net.segment !== null) {
      if (!cfg.canVxlan) refused.push({ network: net.id, reason: "this kernel cannot create VXLAN devices" });
      else out.set(net.id, { net, bridge, uplink: vxlanName(net.segment) });
    } else if (net.type === "local") out.set(net.id, { net, bridge, uplink: null });
    else if (net.type === "flat") {
      const dev = net.physnet ? cfg.physicalInterfaces[net.physnet] : undefined;
      if (!dev) refused.push({ network: net.id, reason: `no interface mapped for physical network ${net.physnet ?? "(none)"} (--physical-interface PHYSNET:IFACE)` });
      else out.set(net.id, { net, bridge, uplink: dev });
    } else refused.push({ network: net.id, reason: `${net.type} networks need 802.1Q devices, which this kernel does not have` });
  }
  return out;
}

export function planLinks(intent: ReadonlyMap<string, IntentItem>, kernel: Observed, cfg: HostConfig): LinkPlan {
  const links: string[] = [];
  const fdb: string[] = [];
  const neigh: string[] = [];
  const refused: LinkPlan["refused"] = [];
  const nets = wantedNets(intent, cfg, refused);
  const wantedDevices = new Set<string>();
  const attach = (dev: string, master: string, mtu: number, up = true) => {
    const have = kernel.links.get(dev);
    if (!have || have.master !== master || have.mtu !== mtu || have.up !== up) links.push(`link set dev ${dev} master ${master} mtu ${mtu} ${up ? "up" : "down"}`);
  };

  for (const { net, bridge, uplink } of nets.values()) {
    wantedDevices.add(bridge);
    const br = kernel.links.get(bridge);
    if (br && br.kind !== "bridge") links.push(`link del dev ${bridge}`);
    if (!br || br.kind !== "bridge") links.push(`link add name ${bridge} type bridge`);
    if (!br || br.kind !== "bridge" || br.mtu !== net.mtu || !br.up) links.push(`link set dev ${bridge} mtu ${net.mtu} up`);
    if (!uplink) continue;
    wantedDevices.add(uplink);
    if (net.type === "vxlan") {
      const vx = kernel.links.get(uplink);
      const ok = vx?.kind === "vxlan" && vx.vxlan?.id === net.segment && vx.vxlan.local === cfg.vtep && vx.vxlan.port === VXLAN_PORT && !vx.vxlan.learning && vx.vxlan.proxy;
      if (vx && !ok) links.push(`link del dev ${uplink}`);
      // nolearning: the controller knows every MAC; proxy: ARP for known addresses is answered here
      if (ok) attach(uplink, bridge, net.mtu);
      else {
        links.push(`link add name ${uplink} type vxlan id ${net.segment} local ${cfg.vtep} dstport ${VXLAN_PORT} nolearning proxy`);
        links.push(`link set dev ${uplink} master ${bridge} mtu ${net.mtu} up`);
      }
    } else attach(uplink, bridge, kernel.links.get(uplink)?.mtu ?? net.mtu);
  }

  for (const p of itemsOf(intent, "port")) {
    const target = nets.get(p.network);
    wantedDevices.add(p.device);
    if (!target || !kernel.links.has(p.device)) continue; // not plugged yet: the workload's launcher makes it
    attach(p.device, target.bridge, p.mtu, p.adminUp);
  }

  // Devices on our bridges that no port claims any more are unplugged (an unfiltered device on a bridge is a hole).
  const ourBridges = new Set([...kernel.links.values()].filter((l) => l.kind === "bridge" && isOwnedLink(l.name)).map((l) => l.name));
  for (const l of kernel.links.values()) {
    if (l.master && ourBridges.has(l.master) && !wantedDevices.has(l.name) && !isOwnedLink(l.name)) links.push(`link set dev ${l.name} nomaster down`);
  }
  for (const l of kernel.links.values()) if (isOwnedLink(l.name) && !wantedDevices.has(l.name)) links.push(`link del dev ${l.name}`);

  // FDB: every remote MAC to its VTEP, and one all-zero entry per remote VTEP (head-end replication of BUM traffic).
  const wantFdb = new Map<string, string>(); // "dev|mac|dst" -> line
  const wantNeigh = new Map<string, { dev: string; ip: string; mac: string }>();
  for (const { net, uplink } of nets.values()) {
    if (net.type !== "vxlan" || !uplink) continue;
    for (const vtep of net.vteps) wantFdb.set(`${uplink}|${ZERO_MAC}|${vtep}`, `fdb append ${ZERO_MAC} dev ${uplink} dst ${vtep} self permanent`);
  }
  for (const r of itemsOf(intent, "remote")) {
    const n = nets.get(r.network);
    if (!n || n.net.type !== "vxlan" || !n.uplink) continue;
    wantFdb.set(`${n.uplink}|${r.mac}|${r.vtep}`, `fdb replace ${r.mac} dev ${n.uplink} dst ${r.vtep} self permanent`);
    for (const ip of r.ips) wantNeigh.set(`${n.uplink}|${ip}`, { dev: n.uplink, ip, mac: r.mac });
  }
  const haveFdb = new Set<string>();
  for (const e of kernel.fdb) {
    if (!/^vxlan-\d+$/.test(e.dev)) continue;
    const k = `${e.dev}|${e.mac}|${e.dst}`;
    haveFdb.add(k);
    if (!wantFdb.has(k) && kernel.links.has(e.dev) && wantedDevices.has(e.dev)) fdb.push(`fdb del ${e.mac} dev ${e.dev} dst ${e.dst} self`);
  }
  for (const [k, line] of wantFdb) if (!haveFdb.has(k)) fdb.push(line);

  const haveNeigh = new Map<string, ObservedNeigh>();
  for (const n of kernel.neigh) if (/^vxlan-\d+$/.test(n.dev)) haveNeigh.set(`${n.dev}|${n.ip}`, n);
  for (const [k, n] of haveNeigh) if (!wantNeigh.has(k) && wantedDevices.has(n.dev)) neigh.push(`neigh del ${n.ip} dev ${n.dev}`);
  for (const [k, w] of wantNeigh) {
    const have = haveNeigh.get(k);
    if (!have || have.mac !== w.mac || !have.permanent) neigh.push(`neigh replace ${w.ip} lladdr ${w.mac} dev ${w.dev} nud permanent`);
  }
  return { links, fdb, neigh, refused };
}

/** Ports whose device is attached to their network's bridge and up: what the agent reports ACTIVE. */
export function pluggedPorts(intent: ReadonlyMap<string, IntentItem>, kernel: Observed): { up: string[]; down: string[] } {
  const up: string[] = [];
  const down: string[] = [];
  for (const p of itemsOf(intent, "port")) {
    const l = kernel.links.get(p.device);
    if (l && l.master === bridgeName(p.network) && l.up) up.push(p.id);
    else down.push(p.id);
  }
  return { up, down };
}

/**
 * What the kernel holds after a plan applied without errors, as far as port
 * status is concerned: the ports' devices attached to their bridges (pure).
 */
export function applyPlan(before: Observed, intent: ReadonlyMap<string, IntentItem>, plan: LinkPlan): Observed {
  if (plan.links.length === 0) return before;
  const links = new Map(before.links);
  for (const p of itemsOf(intent, "port")) {
    const l = links.get(p.device);
    if (l && plan.links.includes(`link set dev ${p.device} master ${bridgeName(p.network)} mtu ${p.mtu} ${p.adminUp ? "up" : "down"}`)) {
      links.set(p.device, { ...l, master: bridgeName(p.network), mtu: p.mtu, up: p.adminUp });
    }
  }
  return { ...before, links };
}
