// The NDJSON watch of the change log over real HTTP: changes arrive in
// revision order as they commit, and a resumed watch starts after its revision.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { listen, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";
import { call } from "./support/http.ts";

let store: Store;
let s: TestServer;
let base = "";
before(async () => {
  store = await makeStore("sqlite");
  s = await startServer(store.url);
  base = await listen(s);
});
after(async () => {
  await s?.close();
  await store?.cleanup();
});

async function readLines(since: number, want: number, during: () => Promise<void>) {
  const abort = new AbortController();
  const started = performance.now();
  const res = await fetch(`${base}/api/v1/changes?since=${since}&watch=1`, { signal: abort.signal });
  assert.equal(res.status, 200);
  assert.ok(performance.now() - started < 5000, "headers arrive before any change does");
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  const reader = res.body!.getReader();
  const lines: { type: string; revision: number; kind?: string; op?: string; object?: { name?: string } }[] = [];
  let buf = "";
  const pending = during();
  while (lines.filter((l) => l.type === "CHANGE").length < want) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  }
  await pending;
  abort.abort();
  // Bookmarks may come at any time while idle; they must never claim a revision not yet streamed.
  let last = since;
  for (const l of lines) {
    if (l.type === "BOOKMARK") assert.ok(l.revision <= last, `bookmark ${l.revision} ahead of ${last}`);
    else last = l.revision;
  }
  return lines.filter((l) => l.type === "CHANGE");
}

it("streams changes in revision order and resumes after a revision", async () => {
  const lines = await readLines(0, 3, async () => {
    await call(base, "POST", "/v2.0/networks", { network: { name: "w1" } }); // default group + network
    await call(base, "POST", "/v2.0/networks", { network: { name: "w2" } });
  });
  assert.deepEqual(lines.map((l) => l.type), ["CHANGE", "CHANGE", "CHANGE"]);
  assert.deepEqual(lines.map((l) => l.revision), [1, 2, 3]);
  assert.deepEqual(lines.map((l) => l.kind), ["security_group", "network", "network"]);
  assert.equal(lines[2]!.object?.name, "w2");
  const resumed = await readLines(2, 1, async () => undefined);
  assert.equal(resumed[0]!.revision, 3, "a watch from revision 2 starts with 3");
});

it("logs a rule on its own and its group's revision bump without the group's rules", async () => {
  const sg = (await call(base, "POST", "/v2.0/security-groups", { security_group: { name: "many" } })).body.security_group;
  const since = (await call(base, "GET", "/api/v1/changes?since=0&limit=100000")).body.revision as number;
  for (let port = 1; port <= 3; port++) {
    const r = await call(base, "POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: sg.id, direction: "ingress", protocol: "tcp", port_range_min: port, port_range_max: port } });
    assert.equal(r.status, 201);
  }
  const log = (await call(base, "GET", `/api/v1/changes?since=${since}`)).body.changes as { kind: string; op: string; object: Record<string, unknown> }[];
  assert.deepEqual(log.map((c) => `${c.kind} ${c.op}`), ["security_group_rule create", "security_group update", "security_group_rule create", "security_group update", "security_group_rule create", "security_group update"]);
  const bumps = log.filter((c) => c.kind === "security_group");
  assert.deepEqual(bumps.map((c) => c.object.revision_number), [sg.revision_number + 1, sg.revision_number + 2, sg.revision_number + 3]);
  for (const b of bumps) assert.ok(!("security_group_rules" in b.object), "a bump carries no rules");
  const shown = (await call(base, "GET", `/v2.0/security-groups/${sg.id}`)).body.security_group;
  assert.equal(shown.security_group_rules.length, 2 + 3, "the group's view still has its egress defaults and the three");
});
