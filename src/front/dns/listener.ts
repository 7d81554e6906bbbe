// The controller's authoritative DNS listener (`seam server --dns-listen`):
// for what lies outside the tenant networks (the physical segment, operators'
// machines), the names of every port, from the model: it lists the ports,
// then follows the change log (core/store/change-feed.ts) like every other
// follower, so a renamed port answers anew as soon as the change commits.
// Services' names (their VIPs) are answered the same way.
// The wire format is dns-packet's (a maintained library, not ours).
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import dnsPacket from "dns-packet";
import type { Model } from "../../core/service/model.ts";
import { follow, type LoggedChange } from "../../core/store/change-feed.ts";
import { type Assignment, Zone } from "./zone.ts";

const TTL = 30;
/** dns-packet takes the response code as the low four bits of the flags */
const RCODE = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5 } as const;

type View = Readonly<Record<string, unknown>>;

function assignments(view: View | null): Assignment[] | null {
  if (!view || !Array.isArray(view.dns_assignment)) return null;
  return (view.dns_assignment as { ip_address: string; fqdn: string }[]).map((a) => ({ ip: a.ip_address, fqdn: a.fqdn }));
}

/** A service's name (Kubernetes: <svc>.<ns>.svc.cluster.local) answers with its VIP. */
function serviceName(view: View | null): Assignment[] | null {
  if (!view || typeof view.dns_name !== "string" || !view.dns_name || typeof view.vip_address !== "string") return null;
  return [{ ip: view.vip_address, fqdn: view.dns_name }];
}

/** answers kept for repeated questions; cleared on any change of the zone */
const CACHE_MAX = 10_000;

export class DnsListener {
  readonly zone = new Zone();
  /**
   * The encoded answer per query as it came, less its id (flags, question,
   * EDNS): a repeated question costs a lookup and a copy, not a decode and an
   * encode. Any change of the names clears it, so it is never stale.
   */
  private readonly answers = new Map<string, Buffer>();
  private socket: Socket | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly model: Model,
    private readonly address: string,
    private readonly port: number,
    private readonly log: { error(o: unknown, msg: string): void; info(msg: string): void },
  ) {}

  async start(): Promise<void> {
    const since = await this.load();
    this.loop = follow(this.model.db, {
      since,
      signal: this.abort.signal,
      onBatch: (changes) => this.apply(changes),
      onCompacted: () => this.load(),
      onError: (err) => this.log.error({ err }, "dns: following the change log failed; retrying"),
    });
    const s = createSocket(this.address.includes(":") ? "udp6" : "udp4");
    s.on("message", (msg, from) => this.reply(msg, from));
    s.on("error", (err) => this.log.error({ err }, "dns listener"));
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(this.port, this.address, () => {
        s.off("error", reject);
        resolve();
      });
    });
    this.socket = s;
    this.log.info(`dns: authoritative for the ports' names on ${this.address}:${this.port} (${this.zone.size} names)`);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.socket?.close();
    await this.loop;
  }

  private async load(): Promise<number> {
    const revision = await this.model.db.currentRevision();
    const [views, services] = await this.model.db.read(async (q) => [await this.model.adminViews(q, "port"), await this.model.adminViews(q, "service")]);
    for (const v of views) this.zone.setPort(v.id as string, assignments(v));
    for (const v of services) this.zone.setPort(`service:${v.id}`, serviceName(v));
    return revision;
  }

  private apply(changes: readonly LoggedChange[]): void {
    let touched = false;
    for (const c of changes) {
      if (c.kind === "port") this.zone.setPort(c.id, assignments(c.object));
      else if (c.kind === "service") this.zone.setPort(`service:${c.id}`, serviceName(c.object));
      else continue;
      touched = true;
    }
    if (touched) this.answers.clear();
  }

  private reply(msg: Buffer, from: RemoteInfo): void {
    if (msg.length < 12) return;
    const key = msg.toString("latin1", 2);
    const cached = this.answers.get(key);
    if (cached) {
      const out = Buffer.from(cached);
      out.writeUInt16BE(msg.readUInt16BE(0), 0);
      this.socket?.send(out, from.port, from.address);
      return;
    }
    const out = this.answer(msg);
    if (!out) return;
    if (this.answers.size >= CACHE_MAX) this.answers.clear();
    this.answers.set(key, out);
    this.socket?.send(out, from.port, from.address);
  }

  private answer(msg: Buffer): Buffer | null {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return null; // not DNS: no answer
    }
    const question = q.questions?.[0];
    if (q.type !== "query" || !question) return null;
    const a = this.zone.answer(question.name, question.type);
    const rcode = a.rcode;
    const answers: dnsPacket.Answer[] =
      a.rcode === "NOERROR" && a.type ? a.data.map((data) => ({ type: a.type, name: question.name, ttl: TTL, class: "IN", data }) as dnsPacket.Answer) : [];
    return dnsPacket.encode({
      type: "response",
      id: q.id,
      flags: (rcode === "REFUSED" ? 0 : dnsPacket.AUTHORITATIVE_ANSWER) | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | RCODE[rcode],
      questions: [question],
      answers,
    });
  }
}
