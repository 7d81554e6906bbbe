// Tells Nova when a VM's port is plugged, unplugged or deleted, through its
// os-server-external-events API, as Neutron's nova notifier does: without the
// plugged event Nova waits `vif_plugging_timeout` (300 s) before giving up on a
// boot. Events come from the change log (a port's status moving, a port going
// away), are batched per tick, and are retried a few times if Nova is down.
import { isNovaOwner } from "../../core/model/owners.ts";
import type { Model } from "../../core/service/model.ts";
import { follow, type LoggedChange } from "../../core/store/change-feed.ts";

export interface NovaEvent {
  readonly name: "network-vif-plugged" | "network-vif-unplugged" | "network-vif-deleted";
  readonly server_uuid: string;
  readonly tag: string;
  readonly status: "completed";
}

/** What the notifier remembers of a Nova port: its server (a delete carries no body) and last status. */
export interface NovaPort {
  readonly server: string;
  readonly status: string;
}

/** A port view's Nova facts, or null when Nova has no server to tell about it. */
export function novaPortOf(view: Readonly<Record<string, unknown>> | null): NovaPort | null {
  const owner = String(view?.device_owner ?? "");
  const server = String(view?.device_id ?? "");
  return isNovaOwner(owner) && server ? { server, status: String(view?.status ?? "") } : null;
}

/** The event a port change means for Nova, given what was known of the port before it (pure). */
export function novaEventFor(before: NovaPort | undefined, c: Pick<LoggedChange, "id" | "op" | "object">): NovaEvent | null {
  const after = c.op === "delete" ? null : novaPortOf(c.object);
  const server = after?.server ?? before?.server;
  if (!server) return null;
  const base = { server_uuid: server, tag: c.id, status: "completed" as const };
  if (!after) return before ? { name: "network-vif-deleted", ...base } : null;
  if (after.status === "ACTIVE" && before?.status !== "ACTIVE") return { name: "network-vif-plugged", ...base };
  if (after.status === "DOWN" && before?.status === "ACTIVE") return { name: "network-vif-unplugged", ...base };
  return null;
}

export class NovaNotifier {
  private pending: NovaEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  // One request at a time: two batches in flight can reach Nova in either
  // order, and a port's plugged must not arrive after its unplugged.
  private sending: Promise<void> | undefined;
  private readonly ports = new Map<string, NovaPort>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
    private readonly log: { warn(o: object, msg: string): void; error(o: object, msg: string): void },
  ) {}

  /** Lists the Nova ports, then follows the change feed from the list's revision. */
  async start(model: Model): Promise<void> {
    const since = await this.load(model);
    this.loop = follow(model.db, {
      since,
      signal: this.abort.signal,
      onBatch: (changes) => {
        for (const c of changes) if (c.kind === "port") this.onChange(c);
      },
      onCompacted: () => this.load(model),
      onError: (err) => this.log.error({ err }, "Nova notifier: following the change log failed; retrying"),
    });
  }

  private async load(model: Model): Promise<number> {
    const revision = await model.db.currentRevision();
    const views = await model.db.read((q) => model.adminViews(q, "port"));
    this.ports.clear();
    for (const v of views) {
      const p = novaPortOf(v);
      if (p) this.ports.set(v.id as string, p);
    }
    return revision;
  }

  onChange(c: LoggedChange): void {
    const ev = novaEventFor(this.ports.get(c.id), c);
    const now = c.op === "delete" ? null : novaPortOf(c.object);
    if (now) this.ports.set(c.id, now);
    else this.ports.delete(c.id);
    if (!ev) return;
    this.pending.push(ev);
    if (!this.sending) this.timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Sends what is pending, then whatever came in while it was being sent. */
  private flush(): void {
    this.timer = undefined;
    if (this.sending || this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.sending = this.send(events).finally(() => {
      this.sending = undefined;
      this.flush();
    });
  }

  private async send(events: NovaEvent[], attempt = 1): Promise<void> {
    try {
      const res = await fetch(`${this.url.replace(/\/$/, "")}/os-server-external-events`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-openstack-nova-api-version": "2.1", ...(this.token ? { "x-auth-token": this.token } : {}) },
        body: JSON.stringify({ events }),
        signal: AbortSignal.timeout(10_000),
      });
      // 207: some servers unknown to Nova; that is Nova's answer, not a reason to retry.
      if (res.status >= 500) throw new Error(`Nova answered ${res.status}`);
      if (res.status >= 400) this.log.warn({ status: res.status, events }, "Nova refused external events");
    } catch (err) {
      if (attempt >= 5) {
        this.log.warn({ err: String(err), events }, "giving up on Nova external events");
        return;
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      return this.send(events, attempt + 1);
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.timer) {
      clearTimeout(this.timer);
      this.flush();
    }
    while (this.sending) await this.sending;
  }
}
