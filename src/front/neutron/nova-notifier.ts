// Tells Nova when a VM's port is plugged, unplugged or deleted, through its
// os-server-external-events API, as Neutron's nova notifier does: without the
// plugged event Nova waits `vif_plugging_timeout` (300 s) before giving up on a
// boot. Events come from the change log (a port's status moving, a port going
// away), are batched per tick, and are retried a few times if Nova is down.
import type { Applied } from "../../core/compiler/world.ts";

export interface NovaEvent {
  readonly name: "network-vif-plugged" | "network-vif-unplugged" | "network-vif-deleted";
  readonly server_uuid: string;
  readonly tag: string;
  readonly status: "completed";
}

/** The event a port change means for Nova, if any (pure). */
export function novaEventFor(a: Applied): NovaEvent | null {
  if (a.kind !== "port") return null;
  const p = a.after ?? a.before;
  const owner = String(p?.device_owner ?? "");
  const server = String(p?.device_id ?? "");
  // Only Nova's ports: containers (compute:kubernetes) have no server to tell.
  if (!owner.startsWith("compute:") || owner === "compute:kubernetes" || !server) return null;
  const base = { server_uuid: server, tag: a.id, status: "completed" as const };
  if (!a.after) return { name: "network-vif-deleted", ...base };
  const was = a.before?.status;
  const now = a.after.status;
  if (now === "ACTIVE" && was !== "ACTIVE") return { name: "network-vif-plugged", ...base };
  if (now === "DOWN" && was === "ACTIVE") return { name: "network-vif-unplugged", ...base };
  return null;
}

export class NovaNotifier {
  private pending: NovaEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
    private readonly log: { warn(o: object, msg: string): void },
  ) {}

  onApplied(a: Applied): void {
    const ev = novaEventFor(a);
    if (!ev) return;
    this.pending.push(ev);
    this.timer ??= setTimeout(() => this.flush(), 0);
  }

  private flush(): void {
    this.timer = undefined;
    const events = this.pending;
    this.pending = [];
    const p = this.send(events).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
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
    if (this.timer) {
      clearTimeout(this.timer);
      this.flush();
    }
    await Promise.allSettled([...this.inflight]);
  }
}
