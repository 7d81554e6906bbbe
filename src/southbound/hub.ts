// The southbound hub: follows the change log into a World, and keeps, for
// every host that has watched since this server started, the intent it last
// sent with the revision at which each item last changed (and tombstones for
// deleted keys). A change recompiles only the hosts it concerns, and on those
// only the keys it can touch unless the host's scope moved; a watcher that
// reconnects with `since` gets exactly what changed after it. Hosts this
// server has no state for (it restarted) or a `since` older than what it
// remembers get a fresh snapshot, which the agent reconciles against the kernel.
import { EventEmitter } from "node:events";
import { agentKeys, compileHost, hostsConcerned, itemFor, keysConcerned, scopeOf, scopeSignature } from "../core/compiler/compile.ts";
import { createHash } from "node:crypto";
import type { IntentItem } from "../contract/intent.ts";
import { type Applied, type Change, type View, World } from "../core/compiler/world.ts";
import { adminContext } from "../core/model/context.ts";
import type { Model } from "../core/service/model.ts";
import type { IntentMessage } from "../contract/southbound.ts";

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

interface ChangeRow {
  revision: number;
  kind: string;
  resource_id: string;
  op: string;
  object: string | null;
}

const KINDS: readonly [string, string][] = [
  ["network", "networks"],
  ["subnet", "subnets"],
  ["security_group", "security-groups"],
  ["security_group_rule", "security-group-rules"],
  ["port", "ports"],
  ["agent", "agents"],
];

export class Hub extends EventEmitter<{ applied: [Applied]; caughtUp: [number] }> {
  world = new World();
  private readonly hosts = new Map<string, HostState>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly model: Model, private readonly log: { error(o: object, msg: string): void } = console) {
    super();
  }

  async start(): Promise<void> {
    await this.load();
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** Reads the whole model into a fresh World (at start, and if the log was compacted under us). */
  private async load(): Promise<void> {
    const world = new World();
    const revision = await this.model.db.currentRevision();
    const ctx = adminContext();
    for (const [kind, path] of KINDS) {
      const { items } = await this.model.list(ctx, path, {});
      for (const object of items) world.apply({ revision: 0, kind, id: object.id as string, op: "create", object });
    }
    world.revision = revision;
    this.world = world;
    for (const host of this.hosts.keys()) this.update(host, "full");
  }

  private async follow(): Promise<void> {
    const db = this.model.db;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await db.waitForRevision(this.world.revision, 30_000, signal);
        if (signal.aborted) return;
        const since = this.world.revision;
        const rows = await db.read((q) => q.all<ChangeRow>("SELECT revision, kind, resource_id, op, object FROM changes WHERE revision > ? ORDER BY revision LIMIT 2000", [since]));
        if (rows.length && Number(rows[0]!.revision) > since + 1) {
          const oldest = await db.read((q) => q.get<{ r: number }>("SELECT MIN(revision) AS r FROM changes"));
          if (Number(oldest?.r) > since + 1) {
            await this.load(); // compacted past us: rebuild, then hosts get deltas against what they have
            continue;
          }
        }
        this.applyBatch(rows.map((r) => ({ revision: Number(r.revision), kind: r.kind, id: r.resource_id, op: r.op, object: r.object === null ? null : (JSON.parse(r.object) as View) })));
        this.emit("caughtUp", this.world.revision);
      } catch (err) {
        if (signal.aborted) return;
        this.log.error({ err }, "southbound: following the change log failed; retrying");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Applies changes in order, then sends each concerned host one delta for the batch. */
  applyBatch(changes: readonly Change[]): void {
    const w = this.world;
    const dirty = new Map<string, Set<string> | "full">();
    const mark = (hosts: Set<string> | "all", keys: string[] | null) => {
      for (const host of hosts === "all" ? this.hosts.keys() : hosts) {
        if (!this.hosts.has(host)) continue;
        const cur = dirty.get(host);
        if (cur === "full") continue;
        if (keys === null) dirty.set(host, "full");
        else if (cur) for (const k of keys) cur.add(k);
        else dirty.set(host, new Set(keys));
      }
    };
    for (const c of changes) {
      const before = this.viewOf(c.kind, c.id);
      const pre = hostsConcerned(w, c.kind, before);
      const applied = w.apply(c);
      const post = hostsConcerned(w, c.kind, applied.after);
      if (c.kind === "agent") {
        // the agent's own host is compiled whole; the others only need its ports' entries
        const host = (applied.after ?? applied.before)?.host as string | undefined;
        const keys = host ? agentKeys(w, host) : null;
        mark(pre, keys);
        mark(post, keys);
        if (host) mark(new Set([host]), null);
      } else {
        const keys = keysConcerned(w, applied);
        mark(pre, keys);
        mark(post, keys);
      }
      this.emit("applied", applied);
    }
    for (const [host, keys] of dirty) this.update(host, keys);
  }

  private viewOf(kind: string, id: string): View | undefined {
    const w = this.world;
    switch (kind) {
      case "network":
        return w.networks.get(id);
      case "subnet":
        return w.subnets.get(id);
      case "port":
        return w.ports.get(id);
      case "security_group":
        return w.groups.get(id);
      case "security_group_rule":
        return w.rules.get(id);
      default:
        return undefined;
    }
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
