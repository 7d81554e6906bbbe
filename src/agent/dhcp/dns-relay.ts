// Where a network's resolver sends what it does not know: the agent's relay,
// in the host's own namespace, forwards it to the configured upstreams. The
// resolver (dnsmasq in the network's namespace) cannot reach them itself: a
// tenant network leads nowhere but to its router, if it has one. So each
// DHCP namespace has a second veth to the host, link-local only (fe80::2 in
// the namespace, fe80::1 on the host side, the same on every such veth: an
// IPv6 link-local address is scoped by its interface), and dnsmasq forwards
// to fe80::1%<its veth> on RELAY_PORT. Nothing is routed or translated;
// Neutron's answer (a default route in the DHCP namespace via the subnet's
// router) works only for networks with a router to where the upstream is.
// dnsmasq caches answers, so the relay sees each outside name once per TTL.
import { createSocket, type Socket } from "node:dgram";

export const RELAY_PORT = 5533;
/** the host side's address on every DHCP namespace's relay veth, and the namespace side's */
export const RELAY_HOST_ADDRESS = "fe80::1";
export const RELAY_NS_ADDRESS = "fe80::2";

const TIMEOUT_MS = 2000;

export interface Upstream {
  readonly address: string;
  readonly port: number;
}

/** "ADDR" or "ADDR:PORT" or "[V6]:PORT" -> an upstream (port 53 by default); throws on anything else. */
export function parseUpstream(text: string): Upstream {
  const m = /^\[([0-9a-fA-F:]+)\](?::(\d+))?$/.exec(text) ?? /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(text) ?? /^([0-9a-fA-F:]+)()$/.exec(text);
  const port = m?.[2] ? Number(m[2]) : 53;
  if (!m || port < 1 || port > 65535) throw new Error(`not an upstream resolver address: ${text} (ADDR, ADDR:PORT or [V6]:PORT)`);
  return { address: m[1]!, port };
}

export class DnsRelay {
  private socket: Socket | undefined;
  /** queries relayed, answered, and unanswered by every upstream */
  readonly counts = { relayed: 0, answered: 0, failed: 0 };

  constructor(
    private readonly upstreams: readonly Upstream[],
    private readonly log: (msg: string) => void,
    private readonly port = RELAY_PORT,
  ) {}

  get enabled(): boolean {
    return this.upstreams.length > 0;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    const s = createSocket({ type: "udp6", reuseAddr: true });
    s.on("message", (msg, from) => void this.relay(msg, from.address, from.port));
    s.on("error", (e) => this.log(`dns relay: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(this.port, "::", () => {
        s.off("error", reject);
        resolve();
      });
    });
    this.socket = s;
    this.log(`dns relay on [::]:${this.port} -> ${this.upstreams.map((u) => `${u.address}:${u.port}`).join(", ")}`);
  }

  stop(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  private async relay(query: Buffer, address: string, port: number): Promise<void> {
    this.counts.relayed++;
    for (const u of this.upstreams) {
      const answer = await ask(u, query).catch(() => null);
      if (!answer) continue;
      this.counts.answered++;
      this.socket?.send(answer, port, address);
      return;
    }
    this.counts.failed++; // the resolver times out and answers SERVFAIL itself
  }
}

/** One query to one upstream, on a socket of its own (the ids stay the client's; the relay sees few queries). */
function ask(u: Upstream, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket(u.address.includes(":") ? "udp6" : "udp4");
    const done = (f: () => void) => {
      clearTimeout(timer);
      s.close();
      f();
    };
    const timer = setTimeout(() => done(() => reject(new Error("timeout"))), TIMEOUT_MS);
    s.on("error", (e) => done(() => reject(e)));
    s.on("message", (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) done(() => resolve(msg));
    });
    s.send(query, u.port, u.address);
  });
}
