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
