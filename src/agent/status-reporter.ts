// Tells the controller which local ports are plugged, off the reconcile's
// path: only what changed since the server last acknowledged, one report at a
// time, and again after a failure.
import type { SouthboundClient } from "./southbound-client.ts";

export class StatusReporter {
  /** port id -> last status the server acknowledged */
  private readonly reported = new Map<string, "up" | "down">();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: SouthboundClient,
    private readonly log: (msg: string) => void,
    /** a report failed: ask for another reconcile later */
    private readonly retry: (afterMs: number) => void,
  ) {}

  /** Forget what the server acknowledged (after a snapshot: it may have lost it). */
  reset(): void {
    this.reported.clear();
  }

  /** Queues a report of `status` for the host's current ports (`local`). */
  report(local: ReadonlySet<string>, status: { up: readonly string[]; down: readonly string[] }): void {
    this.queue = this.queue.then(() => this.send(local, status));
  }

  private async send(local: ReadonlySet<string>, status: { up: readonly string[]; down: readonly string[] }): Promise<void> {
    const up = status.up.filter((id) => this.reported.get(id) !== "up");
    const down = status.down.filter((id) => this.reported.get(id) !== "down");
    for (const id of [...this.reported.keys()]) if (!local.has(id)) this.reported.delete(id);
    if (!up.length && !down.length) return;
    try {
      await this.client.reportPorts(up, down);
      for (const id of up) this.reported.set(id, "up");
      for (const id of down) this.reported.set(id, "down");
    } catch (e) {
      this.log(`port status report failed: ${(e as Error).message}`);
      this.retry(1000);
    }
  }

  /** Reports one port up now (the CNI fast path: whoever looks at the port sees it ACTIVE before the runtime hears back). */
  async upNow(portId: string): Promise<void> {
    try {
      await this.client.reportPorts([portId], []);
      this.reported.set(portId, "up");
    } catch (e) {
      this.log(`port status report failed: ${(e as Error).message}`);
      this.retry(100);
    }
  }
}
