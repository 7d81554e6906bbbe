// rtnetlink messages as bytes, both ways (pure: no socket here). Only what
// the agent sends and reads: links (veth pairs, bridges, VXLAN devices,
// attributes, state), addresses, default routes, neighbours and forwarding
// entries. Layouts and numbers are the kernel's uapi (linux/rtnetlink.h,
// linux/if_link.h, linux/if_addr.h, linux/neighbour.h); iproute2 sends the
// same messages for the same commands.
import { parseCidr } from "../../net/address.ts";
import { type Attr, attrs, cstr, ipBytes, ipText, macBytes, macText, message, NLM_F, parseAttrs, str, u32 } from "./codec.ts";

export const RTM = { newLink: 16, delLink: 17, getLink: 18, newAddr: 20, newRoute: 24, newNeigh: 28, delNeigh: 29, getNeigh: 30 } as const;
export const IFLA = { address: 1, ifname: 3, mtu: 4, master: 10, linkinfo: 18, ifalias: 20, netNsFd: 28, extMask: 29 } as const;
/** IFLA_EXT_MASK: leave the counters out of a dump (what `ip link show` asks without -s): most of each link's bytes */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
export const IFLA_INFO = { kind: 1, data: 2 } as const;
export const IFLA_VXLAN = { id: 1, local: 4, learning: 7, proxy: 11, port: 15, local6: 17 } as const;
const VETH_INFO_PEER = 1;
const IFA = { address: 1, local: 2, flags: 8 } as const;
const RTA = { oif: 4, gateway: 5 } as const;
export const IFF_UP = 0x1;
const IFA_F_NODAD = 0x02;
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
export const AF_BRIDGE = 7;
const NDA = { dst: 1, lladdr: 2, ifindex: 8 } as const;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;

/** struct ifinfomsg */
export function ifinfo(index: number, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

// ---- requests ------------------------------------------------------------------

export interface VethRequest {
  /** the end made where the request is sent */
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  /** the other end, moved to the namespace of `peerNetnsFd` */
  readonly peer: string;
  readonly peerMtu: number;
  readonly peerNetnsFd: number;
}

/** RTM_NEWLINK for a veth pair (`ip link add NAME mtu M address MAC type veth peer name PEER netns FD`). */
export function newVeth(seq: number, v: VethRequest): Buffer {
  const peer = Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(v.peer)], [IFLA.mtu, u32(v.peerMtu)], [IFLA.netNsFd, u32(v.peerNetnsFd)]])]);
  const linkinfo = attrs([
    [IFLA_INFO.kind, str("veth")],
    [IFLA_INFO.data, attrs([[VETH_INFO_PEER, peer]])],
  ]);
  const body = Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(v.name)], [IFLA.mtu, u32(v.mtu)], [IFLA.address, macBytes(v.mac)], [IFLA.linkinfo, linkinfo]])]);
  return message(RTM.newLink, NLM_F.request | NLM_F.ack | NLM_F.create | NLM_F.excl, seq, body);
}

/** RTM_NEWLINK for a bridge (`ip link add name NAME type bridge`). */
export function newBridge(seq: number, name: string): Buffer {
  const body = Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(name)], [IFLA.linkinfo, attrs([[IFLA_INFO.kind, str("bridge")]])]])]);
  return message(RTM.newLink, NLM_F.request | NLM_F.ack | NLM_F.create | NLM_F.excl, seq, body);
}

export interface VxlanRequest {
  readonly name: string;
  readonly vni: number;
  /** the VTEP address packets leave from (IPv4 or IPv6) */
  readonly local: string;
  readonly port: number;
}

/** RTM_NEWLINK for a VXLAN device without learning, answering ARP for known addresses (`... type vxlan id VNI local L dstport P nolearning proxy`). */
export function newVxlan(seq: number, v: VxlanRequest): Buffer {
  const { family, bytes } = ipBytes(v.local);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(v.port); // network byte order
  const data = attrs([
    [IFLA_VXLAN.id, u32(v.vni)],
    [family === AF_INET ? IFLA_VXLAN.local : IFLA_VXLAN.local6, bytes],
    [IFLA_VXLAN.port, port],
    [IFLA_VXLAN.learning, Buffer.from([0])],
    [IFLA_VXLAN.proxy, Buffer.from([1])],
  ]);
  const linkinfo = attrs([
    [IFLA_INFO.kind, str("vxlan")],
    [IFLA_INFO.data, data],
  ]);
  const body = Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(v.name)], [IFLA.linkinfo, linkinfo]])]);
  return message(RTM.newLink, NLM_F.request | NLM_F.ack | NLM_F.create | NLM_F.excl, seq, body);
}

export interface LinkChange {
  /** the device, by name (the kernel finds it when the index is 0) */
  readonly name: string;
  readonly up?: boolean;
  readonly mtu?: number;
  /** the bridge's index (0: no master), or leave */
  readonly master?: number;
  /** ifalias ("" clears it), or leave */
  readonly alias?: string;
}

/** RTM_NEWLINK on an existing device (`ip link set dev NAME [master M] [mtu N] up|down [alias A]`). */
export function setLink(seq: number, c: LinkChange): Buffer {
  const list: Attr[] = [[IFLA.ifname, str(c.name)]];
  if (c.master !== undefined) list.push([IFLA.master, u32(c.master)]);
  if (c.mtu !== undefined) list.push([IFLA.mtu, u32(c.mtu)]);
  if (c.alias !== undefined) list.push([IFLA.ifalias, Buffer.from(c.alias, "utf8")]);
  const body = Buffer.concat([ifinfo(0, c.up ? IFF_UP : 0, c.up === undefined ? 0 : IFF_UP), attrs(list)]);
  return message(RTM.newLink, NLM_F.request | NLM_F.ack, seq, body);
}

export function delLink(seq: number, name: string): Buffer {
  return message(RTM.delLink, NLM_F.request | NLM_F.ack, seq, Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(name)]])]));
}

/** One link by name or index, or a dump of every link (of one kind, if given); without counters either way. */
export function getLink(seq: number, name?: string | number, kind?: string): Buffer {
  const list: Attr[] = [[IFLA.extMask, u32(RTEXT_FILTER_SKIP_STATS)]];
  if (typeof name === "number") return message(RTM.getLink, NLM_F.request, seq, Buffer.concat([ifinfo(name), attrs(list)]));
  if (name !== undefined) return message(RTM.getLink, NLM_F.request, seq, Buffer.concat([ifinfo(0), attrs([[IFLA.ifname, str(name)], ...list])]));
  if (kind !== undefined) list.push([IFLA.linkinfo, attrs([[IFLA_INFO.kind, str(kind)]])]);
  return message(RTM.getLink, NLM_F.request | NLM_F.dump, seq, Buffer.concat([ifinfo(0), attrs(list)]));
}

/** RTM_NEWADDR (`ip addr add CIDR dev INDEX [nodad]`): no duplicate address detection for IPv6, as the IPAM made it unique. */
export function newAddress(seq: number, index: number, cidr: string): Buffer {
  const slash = cidr.indexOf("/");
  const { family, bytes } = ipBytes(slash < 0 ? cidr : cidr.slice(0, slash));
  const prefix = slash < 0 ? bytes.length * 8 : parseCidr(cidr)?.prefixLen;
  if (prefix === undefined) throw new Error(`invalid address with prefix '${cidr}'`);
  const head = Buffer.alloc(8);
  head.writeUInt8(family, 0);
  head.writeUInt8(prefix, 1);
  head.writeUInt8(family === AF_INET6 ? IFA_F_NODAD : 0, 2);
  head.writeUInt32LE(index, 4);
  const list: Attr[] = [
    [IFA.local, bytes],
    [IFA.address, bytes],
  ];
  if (family === AF_INET6) list.push([IFA.flags, u32(IFA_F_NODAD)]);
  return message(RTM.newAddr, NLM_F.request | NLM_F.ack | NLM_F.create | NLM_F.excl, seq, Buffer.concat([head, attrs(list)]));
}

/** RTM_NEWROUTE for the default route of the gateway's family (`ip route add default via GW dev INDEX`). */
export function newDefaultRoute(seq: number, index: number, gateway: string): Buffer {
  const { family, bytes } = ipBytes(gateway);
  const head = Buffer.from([family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0 /* RT_SCOPE_UNIVERSE */, RTN_UNICAST, 0, 0, 0, 0]);
  return message(RTM.newRoute, NLM_F.request | NLM_F.ack | NLM_F.create | NLM_F.excl, seq, Buffer.concat([head, attrs([[RTA.gateway, bytes], [RTA.oif, u32(index)]])]));
}

/** A neighbour (`ip neigh`) or a VXLAN device's own forwarding entry (`bridge fdb ... self`). */
export interface NeighRequest {
  readonly index: number;
  /** IP neighbour: the address; FDB entry: the remote VTEP */
  readonly ip: string;
  readonly mac?: string;
  /** an FDB entry of the device itself (AF_BRIDGE, NTF_SELF), not an IP neighbour */
  readonly fdb?: boolean;
}

function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

function neighBody(n: NeighRequest): Buffer {
  const { family, bytes } = ipBytes(n.ip);
  const list: Attr[] = n.fdb ? [[NDA.lladdr, macBytes(n.mac ?? "00:00:00:00:00:00")], [NDA.dst, bytes]] : [[NDA.dst, bytes], ...(n.mac ? ([[NDA.lladdr, macBytes(n.mac)]] as Attr[]) : [])];
  return Buffer.concat([ndmsg(n.fdb ? AF_BRIDGE : family, n.index, NUD_PERMANENT, n.fdb ? NTF_SELF : 0), attrs(list)]);
}

/** RTM_NEWNEIGH: `ip neigh replace ... nud permanent`, `bridge fdb replace|append ... self permanent` (append: one more flood destination). */
export function newNeigh(seq: number, n: NeighRequest, mode: "replace" | "append"): Buffer {
  return message(RTM.newNeigh, NLM_F.request | NLM_F.ack | NLM_F.create | (mode === "append" ? NLM_F.append : NLM_F.replace), seq, neighBody(n));
}

export function delNeigh(seq: number, n: NeighRequest): Buffer {
  return message(RTM.delNeigh, NLM_F.request | NLM_F.ack, seq, neighBody(n));
}

/**
 * Dumps the neighbours of one family (AF_INET, AF_INET6), or the forwarding
 * entries (AF_BRIDGE), of every device or of one (`index`). The kernel reads
 * a forwarding dump's device from an ifinfomsg, as `bridge fdb show dev`
 * sends it, and a neighbour dump's from NDA_IFINDEX.
 */
export function getNeigh(seq: number, family: number, index = 0): Buffer {
  if (family === AF_BRIDGE) return message(RTM.getNeigh, NLM_F.request | NLM_F.dump, seq, ifinfo(index, 0, 0, AF_BRIDGE));
  return message(RTM.getNeigh, NLM_F.request | NLM_F.dump, seq, Buffer.concat([ndmsg(family, 0, 0, 0), index ? attrs([[NDA.ifindex, u32(index)]]) : Buffer.alloc(0)]));
}

export interface NeighInfo {
  readonly family: number;
  readonly index: number;
  readonly ip: string | null;
  readonly mac: string | null;
  readonly permanent: boolean;
  /** what `ip neigh show` lists by default: not NOARP (multicast, the kernel's own) and not NONE */
  readonly listed: boolean;
}

const NUD_NOARP = 0x40;

export function parseNeigh(body: Buffer): NeighInfo {
  const a = parseAttrs(body, 12);
  const dst = a.get(NDA.dst);
  const mac = a.get(NDA.lladdr);
  return {
    family: body.readUInt8(0),
    index: body.readInt32LE(4),
    ip: dst && (dst.length === 4 || dst.length === 16) ? ipText(dst) : null,
    mac: mac && mac.length === 6 ? macText(mac) : null,
    permanent: (body.readUInt16LE(8) & NUD_PERMANENT) !== 0,
    listed: (body.readUInt16LE(8) & 0xff & ~NUD_NOARP) !== 0,
  };
}

// ---- replies -------------------------------------------------------------------

/** A link as RTM_NEWLINK describes it (what `ip -d link show` prints, the parts the agent reads). */
export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly mac: string | null;
  /** the master's index (0: none) */
  readonly master: number;
  readonly alias: string | null;
  readonly kind: string | null;
  readonly vxlan?: { readonly id: number; readonly local: string | null; readonly port: number; readonly learning: boolean; readonly proxy: boolean };
}

const LINK_ATTRS: ReadonlySet<number> = new Set([IFLA.ifname, IFLA.mtu, IFLA.address, IFLA.master, IFLA.ifalias, IFLA.linkinfo]);

export function parseLink(body: Buffer): LinkInfo {
  const index = body.readInt32LE(4);
  const flags = body.readUInt32LE(8);
  const a = parseAttrs(body, 16, body.length, LINK_ATTRS);
  const info = a.get(IFLA.linkinfo);
  const li = info ? parseAttrs(info) : undefined;
  const kind = li?.get(IFLA_INFO.kind);
  const kindText = kind ? cstr(kind) : null;
  const alias = a.get(IFLA.ifalias);
  const mac = a.get(IFLA.address);
  let vxlan: LinkInfo["vxlan"];
  const data = li?.get(IFLA_INFO.data);
  if (kindText === "vxlan" && data) {
    const d = parseAttrs(data);
    const local = d.get(IFLA_VXLAN.local) ?? d.get(IFLA_VXLAN.local6);
    vxlan = {
      id: d.get(IFLA_VXLAN.id)?.readUInt32LE(0) ?? 0,
      local: local ? ipText(local) : null,
      port: d.get(IFLA_VXLAN.port)?.readUInt16BE(0) ?? 0, // network byte order
      learning: (d.get(IFLA_VXLAN.learning)?.readUInt8(0) ?? 0) !== 0,
      proxy: (d.get(IFLA_VXLAN.proxy)?.readUInt8(0) ?? 0) !== 0,
    };
  }
  return {
    index,
    name: cstr(a.get(IFLA.ifname) ?? Buffer.alloc(0)),
    up: (flags & IFF_UP) !== 0,
    mtu: a.get(IFLA.mtu)?.readUInt32LE(0) ?? 0,
    mac: mac && mac.length === 6 ? macText(mac) : null,
    master: a.get(IFLA.master)?.readUInt32LE(0) ?? 0,
    alias: alias && cstr(alias) ? cstr(alias) : null,
    kind: kindText,
    ...(vxlan ? { vxlan } : {}),
  };
}
