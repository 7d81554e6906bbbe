// HostIntent + what the kernel has -> link, FDB and neighbour operations
// (pure). What the agent owns is in naming.ts: bridges, VXLAN devices, and the
// FDB/neighbour entries on those VXLAN devices. Port devices (`tap…`) are made
// by whoever runs the workload (qemu/libvirt, the CNI service, the lab); the
// agent attaches them. Each plan has two phases: `create` (make and change
// what is wanted) runs before the next manager's, `remove` (take away what is
// not) after, in reverse (dataplane.ts).
import { type IntentItem, itemsOf, type NetItem } from "../../contract/intent.ts";
import { alias, device, isOwnedDevice, isOwnedVxlan, parseAlias } from "../naming.ts";
import type { LinkOp, Observed, ObservedNeigh } from "./ops.ts";
import { ZERO_MAC } from "./ops.ts";

export const VXLAN_PORT = 4789;

export interface Phased<Op> {
  readonly create: readonly Op[];
  readonly remove: readonly Op[];
}

export interface LinkPlan extends Phased<LinkOp> {
  /** networks this kernel cannot carry, with why */
  readonly refused: readonly { readonly network: string; readonly reason: string }[];
}

export interface HostConfig {
  readonly vtep: string;
  /** physnet -> host interface, for flat networks */
  readonly physicalInterfaces: Readonly<Record<string, string>>;
  /** device kinds the kernel can create (features.ts) */
  readonly canVxlan: boolean;
}

export interface WantedNet {
  readonly net: NetItem;
  readonly bridge: string;
  /** the device that carries the network off the host: a VXLAN device or a physical interface */
  readonly uplink: string | null;
}

/** The networks this host can carry, with their devices; the others refused with the reason. */
export function wantedNets(intent: ReadonlyMap<string, IntentItem>, cfg: HostConfig, refused: { network: string; reason: string }[] = []): Map<string, WantedNet> {
  const out = new Map<string, WantedNet>();
  for (const net of itemsOf(intent, "net")) {
    const bridge = device.bridge(net.id);
    if (net.type === "vxlan" && net.segment !== null) {
      if (!cfg.canVxlan) refused.push({ network: net.id, reason: "this kernel cannot create VXLAN devices" });
      else out.set(net.id, { net, bridge, uplink: device.vxlan(net.segment) });
    } else if (net.type === "local") out.set(net.id, { net, bridge, uplink: null });
    else if (net.type === "flat") {
      const dev = net.physnet ? cfg.physicalInterfaces[net.physnet] : undefined;
      if (!dev) refused.push({ network: net.id, reason: `no interface mapped for physical network ${net.physnet ?? "(none)"} (--physical-interface PHYSNET:IFACE)` });
      else out.set(net.id, { net, bridge, uplink: dev });
    } else refused.push({ network: net.id, reason: `${net.type} networks need 802.1Q devices, which this kernel does not have` });
  }
  return out;
}

/** Bridges, VXLAN devices and port attachments. */
export function planLinks(intent: ReadonlyMap<string, IntentItem>, kernel: Pick<Observed, "links">, cfg: HostConfig): LinkPlan {
  const create: LinkOp[] = [];
  const remove: LinkOp[] = [];
  const refused: { network: string; reason: string }[] = [];
  const nets = wantedNets(intent, cfg, refused);
  const wanted = new Set<string>();
  /** attach `dev` to `master` as wanted, if it is not already */
  const attach = (dev: string, master: string, mtu: number, up: boolean, tag: string | null) => {
    const have = kernel.links.get(dev);
    if (!have || have.master !== master || have.mtu !== mtu || have.up !== up || (tag !== null && have.alias !== tag)) {
      create.push({ op: "set", dev, master, mtu, up, alias: tag !== null && have?.alias !== tag ? tag : null });
    }
  };

  for (const { net, bridge, uplink } of nets.values()) {
    wanted.add(bridge);
    const tag = alias.network(net.id);
    const br = kernel.links.get(bridge);
    const isBridge = br?.kind === "bridge";
    if (br && !isBridge) create.push({ op: "del", dev: bridge });
    if (!isBridge) create.push({ op: "addBridge", dev: bridge });
    if (!isBridge || br.mtu !== net.mtu || !br.up || br.alias !== tag) create.push({ op: "set", dev: bridge, mtu: net.mtu, up: true, alias: !isBridge || br.alias !== tag ? tag : null });
    if (!uplink) continue;
    wanted.add(uplink);
    if (net.type === "vxlan") {
      const vx = kernel.links.get(uplink);
      const ok = vx?.kind === "vxlan" && vx.vxlan?.id === net.segment && vx.vxlan.local === cfg.vtep && vx.vxlan.port === VXLAN_PORT && !vx.vxlan.learning && vx.vxlan.proxy;
      if (vx && !ok) create.push({ op: "del", dev: uplink });
      if (!ok) create.push({ op: "addVxlan", dev: uplink, vni: net.segment!, local: cfg.vtep, port: VXLAN_PORT }, { op: "set", dev: uplink, master: bridge, mtu: net.mtu, up: true, alias: tag });
      else attach(uplink, bridge, net.mtu, true, tag);
    } else attach(uplink, bridge, kernel.links.get(uplink)?.mtu ?? net.mtu, true, null); // a physical interface is not ours to rename
  }

  for (const p of itemsOf(intent, "port")) {
    const target = nets.get(p.network);
    wanted.add(p.device);
    if (!target || !kernel.links.has(p.device)) continue; // not plugged yet: the workload's launcher makes it
    attach(p.device, target.bridge, p.mtu, p.adminUp, alias.port(p.id));
  }

  // Devices on our bridges that no port claims any more are unplugged (an unfiltered device on a bridge is a hole),
  // and taken down; a host's physical interface is only released: it may carry more than our network.
  const ourBridges = new Set([...kernel.links.values()].filter((l) => l.kind === "bridge" && isOwnedDevice(l.name)).map((l) => l.name));
  const physical = new Set(Object.values(cfg.physicalInterfaces));
  for (const l of kernel.links.values()) {
    if (l.master && ourBridges.has(l.master) && !wanted.has(l.name) && !isOwnedDevice(l.name)) {
      remove.push({ op: "set", dev: l.name, master: null, mtu: null, up: physical.has(l.name) && l.up, alias: parseAlias(l.alias) ? "" : null }); // no longer ours to mark
    }
  }
  for (const l of kernel.links.values()) if (isOwnedDevice(l.name) && !wanted.has(l.name)) remove.push({ op: "del", dev: l.name });
  return { create, remove, refused };
}

/**
 * FDB: every remote MAC to its VTEP, and one all-zero entry per remote VTEP
 * (head-end replication of BUM traffic); neighbours, so ARP for known
 * addresses is answered on this host. Only on VXLAN devices this plan wants.
 */
export function planFdb(intent: ReadonlyMap<string, IntentItem>, kernel: Pick<Observed, "fdb" | "neigh">, cfg: HostConfig): Phased<LinkOp> {
  const create: LinkOp[] = [];
  const remove: LinkOp[] = [];
  const nets = wantedNets(intent, cfg);
  const vxlans = new Set<string>();
  const wantFdb = new Map<string, { dev: string; mac: string; dst: string }>();
  const wantNeigh = new Map<string, { dev: string; ip: string; mac: string }>();
  for (const { net, uplink } of nets.values()) {
    if (net.type !== "vxlan" || !uplink) continue;
    vxlans.add(uplink);
    for (const vtep of net.vteps) wantFdb.set(`${uplink}|${ZERO_MAC}|${vtep}`, { dev: uplink, mac: ZERO_MAC, dst: vtep });
  }
  for (const r of itemsOf(intent, "remote")) {
    const n = nets.get(r.network);
    if (!n || n.net.type !== "vxlan" || !n.uplink) continue;
    wantFdb.set(`${n.uplink}|${r.mac}|${r.vtep}`, { dev: n.uplink, mac: r.mac, dst: r.vtep });
    for (const ip of r.ips) wantNeigh.set(`${n.uplink}|${ip}`, { dev: n.uplink, ip, mac: r.mac });
  }
  const haveFdb = new Set<string>();
  for (const e of kernel.fdb) {
    if (!isOwnedVxlan(e.dev)) continue;
    const k = `${e.dev}|${e.mac}|${e.dst}`;
    haveFdb.add(k);
    // on a device that is going, its entries go with it
    if (!wantFdb.has(k) && vxlans.has(e.dev)) remove.push({ op: "fdbDel", dev: e.dev, mac: e.mac, dst: e.dst });
  }
  for (const [k, e] of wantFdb) if (!haveFdb.has(k)) create.push({ op: "fdbPut", ...e });

  const haveNeigh = new Map<string, ObservedNeigh>();
  for (const n of kernel.neigh) if (isOwnedVxlan(n.dev)) haveNeigh.set(`${n.dev}|${n.ip}`, n);
  for (const [k, n] of haveNeigh) if (!wantNeigh.has(k) && vxlans.has(n.dev)) remove.push({ op: "neighDel", dev: n.dev, ip: n.ip });
  for (const [k, w] of wantNeigh) {
    const have = haveNeigh.get(k);
    if (!have || have.mac !== w.mac || !have.permanent) create.push({ op: "neighPut", ...w });
  }
  return { create, remove };
}

/** Ports whose device is attached to their network's bridge and up: what the agent reports ACTIVE. */
export function pluggedPorts(intent: ReadonlyMap<string, IntentItem>, kernel: Pick<Observed, "links">): { up: string[]; down: string[] } {
  const up: string[] = [];
  const down: string[] = [];
  for (const p of itemsOf(intent, "port")) {
    const l = kernel.links.get(p.device);
    if (l && l.master === device.bridge(p.network) && l.up) up.push(p.id);
    else down.push(p.id);
  }
  return { up, down };
}
