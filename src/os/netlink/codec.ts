// Netlink framing as bytes, both ways (pure: no socket here): messages,
// their attributes, the kernel's error acknowledgements, and the addresses
// they carry. messages.ts builds and reads the rtnetlink messages on it.
import { formatAddress, parseAddress } from "../../net/address.ts";

export const NLM_F = { request: 0x1, multi: 0x2, ack: 0x4, echo: 0x8, dump: 0x300, replace: 0x100, excl: 0x200, create: 0x400, append: 0x800 } as const;
export const NLMSG = { error: 2, done: 3 } as const;
const AF_INET = 2;
const AF_INET6 = 10;

export const align4 = (n: number) => (n + 3) & ~3;
export const cstr = (b: Buffer) => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString("utf8");
};

/** One attribute: its type and payload (nested attributes are payloads built with `attrs`). */
export type Attr = readonly [type: number, payload: Buffer];

export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
/** A C string, NUL included, as the kernel wants names. */
export const str = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");

export function attrs(list: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, payload] of list) {
    const len = 4 + payload.length;
    const b = Buffer.alloc(align4(len));
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    payload.copy(b, 4);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** The attributes of a payload, type -> first payload (the kernel never repeats the ones read here); only the `wanted` ones if given. */
export function parseAttrs(buf: Buffer, from = 0, to = buf.length, wanted?: ReadonlySet<number>): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = from;
  while (at + 4 <= to) {
    const len = buf.readUInt16LE(at);
    if (len < 4 || at + len > to) break;
    const type = buf.readUInt16LE(at + 2) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if ((!wanted || wanted.has(type)) && !out.has(type)) out.set(type, buf.subarray(at + 4, at + len));
    at += align4(len);
  }
  return out;
}

export function message(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq >>> 0, 8);
  return Buffer.concat([head, body]);
}

export interface Reply {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  /** the message after its 16-byte header */
  readonly body: Buffer;
}

/** The messages in one datagram. */
export function splitMessages(buf: Buffer): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  while (at + 16 <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len < 16 || at + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(at + 4), flags: buf.readUInt16LE(at + 6), seq: buf.readUInt32LE(at + 8), body: buf.subarray(at + 16, at + len) });
    at += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR's errno (0: an acknowledgement). */
export const errnoOf = (r: Reply): number => -r.body.readInt32LE(0);

const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

/** The kernel's own words in an NLMSG_ERROR (extended ack), when it gave any. */
export function extAckMessage(r: Reply): string | null {
  if (!(r.flags & NLM_F_ACK_TLVS) || r.body.length < 20) return null;
  // after the errno: the request's header, and its payload too unless capped
  const at = 4 + (r.flags & NLM_F_CAPPED ? 16 : r.body.readUInt32LE(4));
  const msg = parseAttrs(r.body, align4(at)).get(NLMSGERR_ATTR_MSG);
  return msg ? cstr(msg) || null : null;
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`invalid MAC address '${mac}'`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}
export const macText = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** An address as the kernel wants it: family and network-order bytes (src/net/address.ts parses). */
export function ipBytes(ip: string): { family: number; bytes: Buffer } {
  const a = parseAddress(ip);
  if (!a) throw new Error(`invalid IP address '${ip}'`);
  const n = a.version === 4 ? 4 : 16;
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = Number((a.value >> BigInt((n - 1 - i) * 8)) & 0xffn);
  return { family: a.version === 4 ? AF_INET : AF_INET6, bytes };
}

export const ipText = (b: Buffer): string => {
  let value = 0n;
  for (const x of b) value = (value << 8n) | BigInt(x);
  return formatAddress({ version: b.length === 4 ? 4 : 6, value });
};
