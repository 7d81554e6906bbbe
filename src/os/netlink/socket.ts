// An rtnetlink socket in this process, bound to this network namespace or to
// another (a container's, from its CNI_NETNS path), called through libc with
// koffi. Why not `ip`: a CNI ADD spent most of its time starting processes
// (nsenter, then ip, 10-30 ms on this machine, more while the agent's own
// reconcile starts others); the same messages sent here take microseconds.
//
// A socket belongs to the namespace it was made in, so one for another
// namespace is made by entering it on this thread, opening the socket and
// coming back, all in one synchronous stretch: nothing else runs on the
// thread meanwhile. Requests are synchronous too: the kernel handles an
// rtnetlink request inside sendmsg, so its answer is already queued when
// recv is called.
import { createRequire } from "node:module";
import { type Reply, errnoOf, extAckMessage, NLM_F, NLMSG, splitMessages } from "./codec.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
/** a dump's datagrams are at most a page or two; 64 KiB holds any */
const RECV_BYTES = 65536;

interface Libc {
  socket(domain: number, type: number, proto: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  /** send on koffi's worker thread */
  sendOffThread(fd: number, buf: Buffer, len: number, flags: number): Promise<number>;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  open(path: string, flags: number): number;
  close(fd: number): number;
  setns(fd: number, nstype: number): number;
  strerror(errno: number): string;
  errno(): number;
}

let libc: Libc | null | undefined;
let loadError = "";

function load(): Libc | null {
  try {
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    const lib = koffi.load("libc.so.6");
    const send = lib.func("intptr_t send(int, void *, size_t, int)");
    return {
      socket: lib.func("int socket(int, int, int)"),
      setsockopt: lib.func("int setsockopt(int, int, int, void *, uint32_t)"),
      send,
      sendOffThread: (fd, buf, len, flags) => new Promise((resolve, reject) => send.async(fd, buf, len, flags, (err: unknown, n: number) => (err ? reject(err) : resolve(n)))),
      recv: lib.func("intptr_t recv(int, _Out_ void *, size_t, int)"),
      open: lib.func("int open(const char *, int)"),
      close: lib.func("int close(int)"),
      setns: lib.func("int setns(int, int)"),
      strerror: lib.func("const char *strerror(int)"),
      errno: () => koffi.errno() as number,
    };
  } catch (e) {
    loadError = (e as Error).message;
    return null;
  }
}

function c(): Libc {
  if (libc === undefined) libc = load();
  if (!libc) throw new Error(`netlink is not available in this process (koffi could not load libc: ${loadError})`);
  return libc;
}

/** What the kernel refused: its errno, its words, and which request. */
export class NetlinkError extends Error {
  constructor(
    readonly errno: number,
    readonly what: string,
    /** the kernel's explanation (extended ack), when it gave one */
    readonly detail: string | null = null,
  ) {
    super(`${what}: ${c().strerror(errno)}${detail ? ` (${detail})` : ""}`);
  }
}

/** EEXIST, ENODEV, ENOENT: the errors callers decide on */
export const ERRNO = { noent: 2, exist: 17, nodev: 19 } as const;

let hostNs = -1;
/** This thread's own namespace, held open for coming back (and for naming it to the kernel). */
export function hostNetnsFd(): number {
  if (hostNs < 0) {
    hostNs = c().open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (hostNs < 0) throw new NetlinkError(c().errno(), "open /proc/thread-self/ns/net");
  }
  return hostNs;
}

export class RtnlSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(RECV_BYTES);
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** A socket in this namespace (null) or in the one a path names (`/run/netns/x`, `/proc/PID/ns/net`). */
  static open(netns: string | null = null): RtnlSocket {
    const l = c();
    if (netns === null) return new RtnlSocket(RtnlSocket.make(l));
    const home = hostNetnsFd();
    const target = l.open(netns, O_RDONLY | O_CLOEXEC);
    if (target < 0) throw new NetlinkError(l.errno(), `open ${netns}`);
    try {
      if (l.setns(target, CLONE_NEWNET) !== 0) throw new NetlinkError(l.errno(), `enter ${netns}`);
      let fd: number;
      try {
        fd = RtnlSocket.make(l);
      } finally {
        // Coming back cannot be left to chance: a thread stuck in a container's namespace is worse than a crash.
        if (l.setns(home, CLONE_NEWNET) !== 0) {
          process.stderr.write(`seam: could not return to the host network namespace after entering ${netns}: ${l.strerror(l.errno())}\n`);
          process.abort();
        }
      }
      return new RtnlSocket(fd);
    } finally {
      l.close(target);
    }
  }

  private static make(l: Libc): number {
    const fd = l.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new NetlinkError(l.errno(), "socket(AF_NETLINK)");
    // extended acks: the kernel's own words for a refusal come with the errno (ignored where unsupported)
    const one = Buffer.alloc(4);
    one.writeUInt32LE(1);
    l.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
    return fd;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    return this.seq;
  }

  private sendAll(msg: Buffer, what: string): void {
    if (this.closed) throw new Error(`${what}: the netlink socket is closed`);
    if (c().send(this.fd, msg, msg.length, 0) !== msg.length) throw new NetlinkError(c().errno(), what);
  }

  /** The replies to sequence number `seq`, until its ack (or its dump's end). */
  private *replies(seq: number, what: string): Generator<Reply> {
    for (;;) {
      const n = c().recv(this.fd, this.buf, this.buf.length, 0);
      if (n < 0) throw new NetlinkError(c().errno(), what);
      for (const r of splitMessages(Buffer.from(this.buf.subarray(0, n)))) {
        if (r.seq !== seq) continue; // a late answer to an earlier request
        if (r.type === NLMSG.error) {
          const errno = errnoOf(r);
          if (errno !== 0) throw new NetlinkError(errno, what, extAckMessage(r));
          return;
        }
        if (r.type === NLMSG.done) return;
        yield r;
        if (!(r.flags & NLM_F.multi)) return; // a single answer (a get by name)
      }
    }
  }

  /** Sends a request built with `seq` and waits for its ack; throws the kernel's refusal. */
  request(build: (seq: number) => Buffer, what: string): void {
    const seq = this.nextSeq();
    this.sendAll(build(seq), what);
    for (const _ of this.replies(seq, what));
  }

  /**
   * As `request`, with the kernel's work off the event loop: the kernel
   * handles the request inside sendmsg, and some requests wait there
   * (deleting a device waits for an RCU grace period, ~20 ms here). Only on
   * a socket nothing else uses until it settles.
   */
  async requestOffThread(build: (seq: number) => Buffer, what: string): Promise<void> {
    if (this.closed) throw new Error(`${what}: the netlink socket is closed`);
    const seq = this.nextSeq();
    const msg = build(seq);
    if ((await c().sendOffThread(this.fd, msg, msg.length, 0)) !== msg.length) throw new Error(`${what}: the request could not be sent`);
    for (const _ of this.replies(seq, what));
  }

  /** Sends a get or dump and returns its answers. */
  query(build: (seq: number) => Buffer, what: string): Reply[] {
    const seq = this.nextSeq();
    this.sendAll(build(seq), what);
    return [...this.replies(seq, what)];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c().close(this.fd);
  }
}
