// The agent's end of the intent watch: keeps this host's desired intent from
// the southbound stream (a SNAPSHOT, then DELTAs), resumes from the last
// revision after a broken connection, and says when something changed.
import type { IntentItem, ItemKind } from "../contract/intent.ts";
import type { IntentMessage } from "../contract/southbound.ts";
import { isKnownKind } from "./dataplane.ts";
import type { SouthboundClient } from "./southbound-client.ts";

export class IntentWatcher {
  readonly desired = new Map<string, IntentItem>();
  private revision: number | undefined;
  /** a snapshot has arrived: until then the agent touches nothing (it would remove what it cannot see yet) */
  synced = false;
  private readonly unknownKinds = new Set<string>();

  constructor(
    private readonly client: SouthboundClient,
    /**
     * `snapshot`: the server lost track of what this host has; the dataplane and the status report start over.
     * `kinds`: the kinds of the items a delta set or deleted (what the next reconcile must look at).
     */
    private readonly onChange: (snapshot: boolean, kinds: ReadonlySet<ItemKind>) => void,
    private readonly log: (msg: string) => void,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    let delay = 200;
    while (!signal.aborted) {
      try {
        await this.client.watch(this.revision, (m) => this.onMessage(m), signal);
        delay = 200;
      } catch (e) {
        this.log(`intent watch failed: ${(e as Error).message}; reconnecting in ${delay} ms`);
      }
      if (signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  private put(k: string, v: IntentItem, kinds: Set<ItemKind>): void {
    // An item of a kind this agent does not know (a newer server's) is left out, once said.
    if (!isKnownKind(v.kind)) {
      if (!this.unknownKinds.has(v.kind)) this.log(`ignoring intent items of kind '${v.kind}' (this agent is older than the server)`);
      this.unknownKinds.add(v.kind);
      return;
    }
    kinds.add(v.kind);
    this.desired.set(k, v);
  }

  private onMessage(m: IntentMessage): void {
    this.revision = m.revision;
    if (m.type === "BOOKMARK") return;
    const kinds = new Set<ItemKind>();
    if (m.type === "SNAPSHOT") {
      this.desired.clear();
      for (const [k, v] of Object.entries(m.items)) this.put(k, v, kinds);
    } else {
      for (const [k, v] of Object.entries(m.set)) this.put(k, v, kinds);
      for (const k of m.del) {
        const gone = this.desired.get(k);
        if (gone) kinds.add(gone.kind);
        this.desired.delete(k);
      }
    }
    this.synced = true;
    this.onChange(m.type === "SNAPSHOT", kinds);
  }
}
