// What a supervisor and an operator see of the server itself, over real HTTP:
// /healthz, /readyz (503 with the reason once its PostgreSQL server is gone),
// and Neutron's X-Openstack-Request-Id on every answer, errors included, even
// the ones Node's HTTP parser makes before any route runs.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { listen, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("health and request ids", () => {
  let store: Store;
  let s: TestServer;
  let base: string;

  before(async () => {
    store = await makeStore("postgres");
    s = await startServer(store.url);
    base = await listen(s);
  });
  after(async () => {
    await s.close();
    await store.cleanup();
  });

  it("names every answer's request, a different id each time, errors too", async () => {
    const ids = new Set<string>();
    for (const [path, status] of [["/healthz", 200], ["/v2.0/networks", 200], ["/v2.0/networks/nope", 404], ["/v2.0/nothing-here", 404]] as const) {
      const res = await fetch(`${base}${path}`, { headers: { "x-project-id": "p", "x-roles": "member" } });
      assert.equal(res.status, status, path);
      const id = res.headers.get("x-openstack-request-id") ?? "";
      assert.match(id, REQUEST_ID, path);
      ids.add(id);
    }
    assert.equal(ids.size, 4);
    const bad = await fetch(`${base}/v2.0/networks`, { method: "POST", headers: { "content-type": "application/json", "x-project-id": "p", "x-roles": "member" }, body: "{not json" });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get("x-openstack-request-id") ?? "", REQUEST_ID);
  });

  it("names the request in the answers to malformed HTTP as well", async () => {
    const { port } = new URL(base);
    const raw = await new Promise<string>((resolve, reject) => {
      const c = connect(Number(port), "127.0.0.1", () => c.write("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"));
      let out = "";
      c.setEncoding("utf8").on("data", (d) => (out += d));
      c.on("end", () => resolve(out));
      c.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.match(raw, /X-Openstack-Request-Id: req-[0-9a-f-]{36}\r\n/);
  });

  it("is live and ready while the store answers, and says why it is not ready once the store is gone", async () => {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: "ok" });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; revision: number; compiled: number };
    assert.equal(body.status, "ok");
    assert.ok(body.revision >= 0 && body.compiled <= body.revision);
    await store.cleanup(); // the PostgreSQL server stops
    const down = await fetch(`${base}/readyz`);
    assert.equal(down.status, 503);
    assert.match(((await down.json()) as { reason: string }).reason, /the store does not answer/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200, "still live: a supervisor should not restart it for its store");
  });
});
