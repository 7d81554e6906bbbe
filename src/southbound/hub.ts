// The southbound hub: follows the change log into a World, and keeps, for
// every host that has watched since this server started, the intent it last
// sent with the revision at which each item last changed (and tombstones for
// deleted keys). A change recompiles only the hosts it concerns, and on those
// only the keys it can touch unless the host's scope moved; a watcher that
// reconnects with `since` gets exactly what changed after it. Hosts this
// server has no state for (it restarted) or a `since` older than what it
// remembers get a fresh snapshot, which the agent reconciles against the kernel.
import { createHash } from "node:crypto";
import type { IntentItem } from "../contract/intent.ts";
import type { IntentMessage } from "../contract/southbound.ts";
import { applyChange, compileHost, itemFor, scopeOf, scopeSignature } from "../core/compiler/compile.ts";
import { MODEL_KINDS } from "../core/compiler/records.ts";
import { type Change, World } from "../core/compiler/world.ts";
import type { Model } from "../core/service/model.ts";
import { follow } from "../core/store/change-feed.ts";
import { RevisionSignal } from "../core/store/db.ts";

/** What the hub keeps of an item it sent: enough to tell whether it changed, not the item. */
const fingerprint = (item: IntentItem) => createHash("sha1").update(JSON.stringify(item)).digest("base64");

/** Deleted keys remembered per host; beyond this, resuming from older revisions gets a snapshot. */
const MAX_TOMBSTONES = 10_000;

interface HostState {
  /** key -> fingerprint of the item last sent, and the revision it changed at */
  readonly items: Map<string, { fp: string; rev: number }>;
  readonly tombstones: Map<string, number>;
  /** the oldest `since` this state can answer with a delta */
  horizon: number;
  scopeSig: string;
  readonly listeners: Set<(msg: IntentMessage) => void>;
}

export class Hub {
  world = new World();
  private readonly hosts = new Map<string, HostState>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly applied = new RevisionSignal();

  constructor(private readonly model: Model, private readonly log: { error(o: object, msg: string): void } = console) {}

  async start(): Promise<void> {
    const since = await this.load();
    this.loop = follow(this.model.db, {
      since,
      signal: this.abort.signal,
      onBatch: (changes) => this.applyBatch(changes),
      // compacted past us: rebuild, then hosts get deltas against what they have
      onCompacted: () => this.load(),
      onError: (err) => this.log.error({ err }, "southbound: following the change log failed; retrying"),
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** Reads the whole model into a fresh World (at start, and if the log was compacted under us); returns its revision. */
  private async load(): Promise<number> {
    const world = new World();
    const db = this.model.db;
    const revision = await db.currentRevision();
    await db.read(async (q) => {
      for (const kind of MODEL_KINDS) {
        for (const object of await this.model.adminViews(q, kind)) world.put({ revision: 0, kind, id: object.id as string, op: "create", object });
      }
    });
    world.revision = revision;
    this.world = world;
    for (const host of this.hosts.keys()) this.update(host, "full");
    return revision;
  }

  /** Applies changes in order, then sends each concerned host one delta for the batch. */
  applyBatch(changes: readonly Change[]): void {
    const w = this.world;
    const dirty = new Map<string, Set<string> | "full">();
    for (const c of changes) {
      for (const a of w.decode(c)) {
        for (const { hosts, keys } of applyChange(w, a)) {
          for (const host of hosts === "all" ? this.hosts.keys() : hosts) {
            if (!this.hosts.has(host)) continue;
            const cur = dirty.get(host);
            if (cur === "full") continue;
            if (keys === "whole") dirty.set(host, "full");
            else if (cur) for (const k of keys) cur.add(k);
            else dirty.set(host, new Set(keys));
          }
        }
      }
    }
    for (const [host, keys] of dirty) this.update(host, keys);
    this.applied.bump(w.revision);
  }

  /**
   * Resolves once the world holds every change committed before the call (or
   * after `ms`): an agent that watches right after a write sees it in its
   * snapshot, not in the delta after.
   */
  async caughtUp(ms = 2000): Promise<void> {
    const target = await this.model.db.currentRevision();
    const until = Date.now() + ms;
    while (this.world.revision < target && Date.now() < until) await this.applied.wait(this.world.revision, until - Date.now());
  }

  private update(host: string, keys: Set<string> | "full"): void {
    const st = this.hosts.get(host)!;
    const w = this.world;
    const scope = scopeOf(w, host);
    const sig = scopeSignature(scope);
    const set: Record<string, IntentItem> = {};
    const del: string[] = [];
    const revision = w.revision;
    // An item is fingerprinted once: compared with what was sent, and kept if it differs.
    const offer = (k: string, item: IntentItem) => {
      const fp = fingerprint(item);
      if (st.items.get(k)?.fp === fp) return;
      set[k] = item;
      st.items.set(k, { fp, rev: revision });
      st.tombstones.delete(k);
    };
    const drop = (k: string) => {
      if (!st.items.delete(k)) return;
      del.push(k);
      st.tombstones.set(k, revision);
    };
    if (keys === "full" || sig !== st.scopeSig) {
      const next = compileHost(w, host, scope);
      for (const [k, item] of next) offer(k, item);
      for (const k of [...st.items.keys()]) if (!next.has(k)) drop(k);
      st.scopeSig = sig;
    } else {
      for (const k of keys) {
        const item = itemFor(w, host, scope, k);
        if (item) offer(k, item);
        else drop(k);
      }
    }
    if (Object.keys(set).length === 0 && del.length === 0) return;
    if (st.tombstones.size > MAX_TOMBSTONES) {
      st.tombstones.clear();
      st.horizon = revision;
    }
    const msg: IntentMessage = { type: "DELTA", revision, set, del };
    for (const l of st.listeners) l(msg);
  }

  /** The host's intent now, without tracking it (for `seam routes` and one-off reads). */
  intentOf(host: string): { revision: number; items: Record<string, IntentItem> } {
    return { revision: this.world.revision, items: Object.fromEntries(compileHost(this.world, host)) };
  }

  /**
   * Starts sending `host`'s intent to `send`: a delta after `since` when this
   * server remembers that far back, a snapshot otherwise. Returns the unsubscribe.
   */
  watch(host: string, since: number | undefined, send: (msg: IntentMessage) => void): () => void {
    const w = this.world;
    let st = this.hosts.get(host);
    if (st && since !== undefined && since >= st.horizon && since <= w.revision) {
      const set: Record<string, IntentItem> = {};
      const del: string[] = [];
      // what changed after `since`, as it is now (the world is the truth; the state only remembers when)
      const scope = scopeOf(w, host);
      for (const [k, { rev }] of st.items) {
        const item = rev > since ? itemFor(w, host, scope, k) : undefined;
        if (item) set[k] = item;
      }
      for (const [k, rev] of st.tombstones) if (rev > since) del.push(k);
      send({ type: "DELTA", revision: w.revision, set, del });
    } else {
      const scope = scopeOf(w, host);
      const intent = compileHost(w, host, scope);
      if (!st) {
        st = { items: new Map(), tombstones: new Map(), horizon: w.revision, scopeSig: scopeSignature(scope), listeners: new Set() };
        for (const [k, item] of intent) st.items.set(k, { fp: fingerprint(item), rev: w.revision });
        this.hosts.set(host, st);
      }
      send({ type: "SNAPSHOT", revision: w.revision, items: Object.fromEntries(intent) });
    }
    st.listeners.add(send);
    return () => st!.listeners.delete(send);
  }

  get revision(): number {
    return this.world.revision;
  }
}
