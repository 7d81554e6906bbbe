// A reconcile scoped to what changed: the intent watcher says which item
// kinds a delta touched, and the dataplane runs only the managers acting on
// them (ACTS_ON), so a Service's or a policy's change does not make every
// manager read the kernel again; a snapshot, or a router making devices that
// the links manager must plug, widens it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACTS_ON, Dataplane, type ManagerName } from "../src/agent/dataplane.ts";
import { IntentWatcher } from "../src/agent/intent-watcher.ts";
import type { SouthboundClient } from "../src/agent/southbound-client.ts";
import type { IntentItem, ItemKind } from "../src/contract/intent.ts";
import type { IntentMessage } from "../src/contract/southbound.ts";
import { Exec } from "../src/os/exec.ts";

/** A dataplane whose managers record what they were asked instead of touching the kernel; `creates` says who has something to make. */
function recorded(creates: Partial<Record<ManagerName, number>> = {}) {
  const dp = new Dataplane(Exec.here, () => ({ vtep: "172.31.0.11", physicalInterfaces: {}, canVxlan: true }));
  const calls: string[] = [];
  for (const m of [dp.routers, dp.dhcp, dp.filters, dp.links, dp.fdb, dp.services] as { name: ManagerName; observe: unknown; plan: unknown; apply: unknown }[]) {
    m.observe = async () => (calls.push(`observe ${m.name}`), null);
    m.plan = () => ({ create: Array.from({ length: creates[m.name] ?? 0 }, (_, i) => i), remove: [] });
    m.apply = async (_p: unknown, phase: string) => (calls.push(`${phase} ${m.name}`), []);
  }
  return { dp, calls, ran: () => [...new Set(calls.filter((c) => c.startsWith("observe")).map((c) => c.slice(8)))] };
}

describe("a reconcile scoped to what changed", () => {
  it("runs every manager without a scope, and only the named ones with one (in the one order, creates then removes in reverse)", async () => {
    const all = recorded();
    await all.dp.sync(new Map());
    assert.deepEqual(all.ran(), ["routers", "dhcp", "filters", "links", "fdb", "services"]);
    const some = recorded();
    let filtered = false;
    await some.dp.sync(new Map(), () => (filtered = true), new Set<ManagerName>(["services", "filters"]));
    assert.deepEqual(some.calls, ["observe filters", "observe services", "create filters", "create services", "remove services", "remove filters"]);
    assert.ok(filtered, "a CNI ADD waiting for the filters is told even when they did not run");
  });

  it("has the links manager plug what a router or DHCP server made, and read the kernel again after it", async () => {
    const r = recorded({ routers: 1 });
    await r.dp.sync(new Map(), undefined, new Set<ManagerName>(["routers"]));
    assert.deepEqual(r.ran(), ["routers", "links"]);
    assert.equal(r.calls.filter((c) => c === "observe links").length, 1, "observed once, after the router's devices exist");
    assert.ok(r.calls.indexOf("observe links") > r.calls.indexOf("create routers"));
  });

  it("tells which kinds a delta set or deleted, and a snapshot as such", async () => {
    const item = (kind: ItemKind, id: string) => ({ kind, id }) as unknown as IntentItem;
    const messages: IntentMessage[] = [
      { type: "SNAPSHOT", revision: 1, items: { "port/p1": item("port", "p1"), "svc/s1": item("svc", "s1") } },
      { type: "DELTA", revision: 2, set: { "svc/s1": item("svc", "s1") }, del: [] },
      { type: "DELTA", revision: 3, set: { "rule/r1": item("rule", "r1") }, del: ["port/p1", "port/nothing"] },
    ] as IntentMessage[];
    const seen: { snapshot: boolean; kinds: string[] }[] = [];
    const stop = new AbortController();
    const client = {
      async watch(_since: number | undefined, onMessage: (m: IntentMessage) => void) {
        for (const m of messages) onMessage(m);
        stop.abort();
      },
    } as unknown as SouthboundClient;
    await new IntentWatcher(client, (snapshot, kinds) => seen.push({ snapshot, kinds: [...kinds].sort() }), () => {}).run(stop.signal);
    assert.deepEqual(seen, [
      { snapshot: true, kinds: ["port", "svc"] },
      { snapshot: false, kinds: ["svc"] },
      { snapshot: false, kinds: ["port", "rule"] },
    ]);
    assert.deepEqual(ACTS_ON.svc, ["services"], "a Service's change is the services manager's alone");
  });
});
