// Tells the controller which local ports are plugged (and, on a network host,
// which routers are built and which floating IPs are in the kernel), off the
// reconcile's path: only what changed since the server last acknowledged, one
// report at a time, and again after a failure.
import type { PortStatusReport, StatusReport } from "../contract/southbound.ts";
import type { SouthboundClient } from "./southbound-client.ts";

type Kind = "ports" | "routers" | "floatingips";
const KINDS: readonly Kind[] = ["ports", "routers", "floatingips"];

/**
 * What the host has now, per kind: its status lists, and every id it holds
 * with a version: when an id's version changes (a floating IP moved, which the
 * server marks DOWN), its status is reported again even if it did not change here.
 */
export type HostStatus = { readonly [K in Kind]: PortStatusReport & { readonly local: ReadonlyMap<string, string> } };

export class StatusReporter {
  /** kind -> id -> last status the server acknowledged, with the version it was for */
  private readonly reported = new Map<Kind, Map<string, { status: "up" | "down"; version: string }>>(KINDS.map((k) => [k, new Map()]));
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: SouthboundClient,
    private readonly log: (msg: string) => void,
    /** a report failed: ask for another reconcile later */
    private readonly retry: (afterMs: number) => void,
  ) {}

  /** Forget what the server acknowledged (after a snapshot: it may have lost it). */
  reset(): void {
    for (const m of this.reported.values()) m.clear();
  }

  /** Queues a report of what changed in `status`. */
  report(status: HostStatus): void {
    this.queue = this.queue.then(() => this.send(status));
  }

  private async send(status: HostStatus): Promise<void> {
    const delta = {} as Record<Kind, { up: string[]; down: string[] }>;
    let any = false;
    for (const k of KINDS) {
      const seen = this.reported.get(k)!;
      const s = status[k];
      const known = (id: string, status: "up" | "down") => {
        const r = seen.get(id);
        return r?.status === status && r.version === (s.local.get(id) ?? "");
      };
      const up = s.up.filter((id) => !known(id, "up"));
      const down = s.down.filter((id) => !known(id, "down"));
      for (const id of [...seen.keys()]) if (!s.local.has(id)) seen.delete(id);
      delta[k] = { up, down };
      any ||= up.length > 0 || down.length > 0;
    }
    if (!any) return;
    const body: StatusReport = {
      ...delta.ports,
      ...(delta.routers.up.length || delta.routers.down.length ? { routers: delta.routers } : {}),
      ...(delta.floatingips.up.length || delta.floatingips.down.length ? { floatingips: delta.floatingips } : {}),
    };
    try {
      await this.client.reportStatus(body);
      for (const k of KINDS) {
        const seen = this.reported.get(k)!;
        for (const id of delta[k].up) seen.set(id, { status: "up", version: status[k].local.get(id) ?? "" });
        for (const id of delta[k].down) seen.set(id, { status: "down", version: status[k].local.get(id) ?? "" });
      }
    } catch (e) {
      this.log(`status report failed: ${(e as Error).message}`);
      this.retry(1000);
    }
  }

  /** Reports one port up now (the CNI fast path: whoever looks at the port sees it ACTIVE before the runtime hears back). */
  async upNow(portId: string): Promise<void> {
    try {
      await this.client.reportStatus({ up: [portId], down: [] });
      this.reported.get("ports")!.set(portId, { status: "up", version: "" });
    } catch (e) {
      this.log(`port status report failed: ${(e as Error).message}`);
      this.retry(100);
    }
  }
}
