// Seam behind a real Keystone (Debian's python3-keystone): `--auth keystone`
// validates the callers' tokens there, the unmodified `openstack` CLI finds Seam
// in Keystone's catalog, a member shares a security group across projects by an
// RBAC policy, and agents act with their own host's credential only.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { KeystoneValidator } from "../src/front/identity/keystone-validator.ts";
import { SOUTHBOUND } from "../src/contract/southbound.ts";
import { Client, expectStatus, listen, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";
import { type Keystone, startKeystone } from "./support/keystone.ts";
import { ROOT } from "./support/http.ts";

const run = promisify(execFile);
const SERVICE_PASSWORD = "seam-service";
let ks: Keystone;
let store: Store;
let s: TestServer;
let seamUrl = "";
const ids: Record<string, string> = {};
const home = mkdtempSync(join(tmpdir(), "seam-ks-cli-"));

const as = (token: string) => new Client(s, { "x-auth-token": token });

async function openstack(user: string, password: string, project: string, args: string[]): Promise<string> {
  const env = {
    PATH: process.env.PATH, HOME: home, LANG: "C.UTF-8",
    OS_AUTH_URL: ks.url, OS_USERNAME: user, OS_PASSWORD: password, OS_PROJECT_NAME: project,
    OS_USER_DOMAIN_NAME: "Default", OS_PROJECT_DOMAIN_NAME: "Default", OS_IDENTITY_API_VERSION: "3", OS_INTERFACE: "public",
  };
  try {
    return (await run("openstack", args, { env, timeout: 60_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; code?: number };
    throw new Error(`openstack ${args.join(" ")} failed (${e.code}): ${e.stderr}${e.stdout}`);
  }
}
const alice = (...a: string[]) => openstack("alice", "wonder", "demo", a);
const bob = (...a: string[]) => openstack("bob", "builder", "k8s", a);

describe("seam server --auth keystone against a real Keystone", () => {
  before(async () => {
    ks = await startKeystone();
    ids.service = await ks.createProject("service");
    ids.demo = await ks.createProject("demo");
    ids.k8s = await ks.createProject("k8s");
    ids.admin = (await ks.admin<{ projects: { id: string }[] }>("GET", "/projects?name=admin")).projects[0]!.id;
    await ks.createUser("seam", SERVICE_PASSWORD, { service: "service" });
    ids.alice = await ks.createUser("alice", "wonder", { demo: "member" });
    ids.bob = await ks.createUser("bob", "builder", { k8s: "member" });
    ids.carol = await ks.createUser("carol", "singer", { k8s: "member" });
    store = await makeStore("sqlite");
    s = await startServer(store.url, { auth: "keystone", keystone: { url: ks.url, username: "seam", password: SERVICE_PASSWORD, project: "service", cacheSeconds: 1 } });
    seamUrl = await listen(s);
    // the catalog names Seam as the network service, as a deployment's Keystone names Neutron
    const { service } = await ks.admin<{ service: { id: string } }>("POST", "/services", { service: { type: "network", name: "neutron" } });
    await ks.admin("POST", "/endpoints", { endpoint: { service_id: service.id, interface: "public", url: seamUrl, region_id: "RegionOne" } });
  });
  after(async () => {
    await s?.close();
    await store?.cleanup();
    await ks?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it("takes the caller's project, user and roles from Keystone's answer", async () => {
    const aliceToken = await ks.token("alice", "wonder", "demo");
    const net = expectStatus(await as(aliceToken).post("/v2.0/networks", { network: { name: "a-net" } }), 201).network;
    assert.equal(net.project_id, ids.demo);
    const bobToken = await ks.token("bob", "builder", "k8s");
    expectStatus(await as(bobToken).get(`/v2.0/networks/${net.id}`), 404, "another project's network");
    const adminToken = await ks.token("admin", "keystone-admin", "admin");
    const seen = expectStatus(await as(adminToken).get("/v2.0/networks"), 200).networks.map((n: { id: string }) => n.id);
    assert.ok(seen.includes(net.id), "the admin sees every project's networks");
    // a member's role is not admin: agents are listed to admins only, the change feed refused
    assert.deepEqual(expectStatus(await as(aliceToken).get("/v2.0/agents"), 200).agents, []);
    assert.ok(expectStatus(await as(adminToken).get("/v2.0/agents"), 200).agents);
    expectStatus(await as(aliceToken).get("/api/v1/changes"), 403, "a member reading the change feed");
  });

  it("refuses a missing, made-up or revoked token with 401", async () => {
    expectStatus(await new Client(s, {}).get("/v2.0/networks"), 401);
    expectStatus(await as("gAAAAABnot-a-real-token").get("/v2.0/networks"), 401);
    const token = await ks.token("alice", "wonder", "demo");
    expectStatus(await as(token).get("/v2.0/networks"), 200);
    await ks.admin("DELETE", "/auth/tokens", undefined, { "x-subject-token": token });
    // trusted for --token-cache-time (1 s here), then asked again
    await new Promise((r) => setTimeout(r, 1200));
    expectStatus(await as(token).get("/v2.0/networks"), 401, "a revoked token once its cached answer aged out");
  });

  it("asks Keystone once for a burst of requests with one token, and remembers a bad token too", async () => {
    const v = new KeystoneValidator({ url: ks.url, username: "seam", password: SERVICE_PASSWORD, project: "service", cacheSeconds: 30 });
    const token = await ks.token("bob", "builder", "k8s");
    const answers = await Promise.all(Array.from({ length: 20 }, () => v.validate(token)));
    assert.ok(answers.every((c) => c?.projectId === ids.k8s && c.userId === ids.bob && c.canWrite && !c.isAdmin));
    assert.equal(v.validations, 1);
    await v.validate(token);
    assert.equal(v.validations, 1, "cached");
    assert.equal(await v.validate("gAAAAABbogus"), null);
    assert.equal(await v.validate("gAAAAABbogus"), null);
    assert.equal(v.validations, 2, "a refused token is remembered too");
    const wrong = new KeystoneValidator({ url: ks.url, username: "seam", password: "wrong", project: "service" });
    await assert.rejects(wrong.validate(token), (e: { status?: number; message: string }) => e.status === 503 && /cannot log in/.test(e.message));
  });

  it("drives the openstack CLI through Keystone's catalog: demo shares its group with k8s by an RBAC policy", async () => {
    const web = JSON.parse(await alice("security", "group", "create", "web", "-f", "json"));
    assert.equal(web.project_id, ids.demo);
    await bob("security", "group", "create", "pods");
    await assert.rejects(bob("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "--remote-group", web.id, "pods"), /404|not found|No SecurityGroup/i);
    // by id: a member may not list Keystone's projects, so the CLI would pass the name "k8s" through
    // unresolved (as against Neutron), and a policy for a project named so shares with nobody
    const policy = JSON.parse(await alice("network", "rbac", "create", "--type", "security_group", "--action", "access_as_shared", "--target-project", ids.k8s, web.id, "-f", "json"));
    assert.equal(policy.target_project_id, ids.k8s);
    const rule = JSON.parse(await bob("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "--remote-group", web.id, "pods", "-f", "json"));
    assert.equal(rule.remote_group_id, web.id);
    assert.equal(rule.project_id, ids.k8s);
  });

  it("gives each agent a credential that acts for its own host only", async () => {
    const adminToken = await ks.token("admin", "keystone-admin", "admin");
    const memberToken = await ks.token("alice", "wonder", "demo");
    expectStatus(await as(memberToken).post("/api/v1/hosts/host-1/credential", {}), 403, "a member issuing a host credential");
    // issued with `seam host-credential create`, logged in at the external Keystone
    const file = join(home, "host-1.credential");
    await run(join(ROOT, "bin", "seam"), ["host-credential", "create", "--host", "host-1", "--server", seamUrl, "--output", file], {
      env: { ...process.env, OS_AUTH_URL: ks.url, OS_USERNAME: "admin", OS_PASSWORD: "keystone-admin", OS_PROJECT_NAME: "admin" },
    });
    const host1 = as(readFileSync(file, "utf8").trim());
    const host2 = as(expectStatus(await as(adminToken).post("/api/v1/hosts/host-2/credential", {}), 201).credential);
    const registration = { vtep: "192.0.2.1", roles: ["compute"] };
    expectStatus(await host1.put(`${SOUTHBOUND}/hosts/host-1`, registration), 200);
    expectStatus(await host1.get(`${SOUTHBOUND}/hosts/host-1/intent`), 200);
    const denied = expectStatus(await host1.get(`${SOUTHBOUND}/hosts/host-2/intent`), 403, "host-1 reading host-2's intent");
    assert.match(denied.NeutronError.message, /acts for host host-1 only/);
    expectStatus(await host1.post(`${SOUTHBOUND}/hosts/host-2/ports`, { up: [], down: [] }), 403, "host-1 reporting host-2's ports");
    expectStatus(await host1.put(`${SOUTHBOUND}/hosts/host-2`, { ...registration, vtep: "192.0.2.2" }), 403, "host-1 registering as host-2");
    expectStatus(await host2.put(`${SOUTHBOUND}/hosts/host-2`, { ...registration, vtep: "192.0.2.2" }), 200);
    // not a token for the rest of the API: Keystone does not know it
    expectStatus(await host1.get("/v2.0/networks"), 401);
    // revoked: refused, and a new one replaces it
    expectStatus(await as(adminToken).req("DELETE", "/api/v1/hosts/host-1/credential"), 204);
    expectStatus(await host1.get(`${SOUTHBOUND}/hosts/host-1/intent`), 401, "a revoked host credential");
    expectStatus(await as(adminToken).req("DELETE", "/api/v1/hosts/host-1/credential"), 404);
  });

  it("answers 503, not 500 or 401, while Keystone cannot be reached", async () => {
    const unseen = await ks.token("carol", "singer", "k8s");
    await ks.stop();
    const r = await as(unseen).get("/v2.0/networks");
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.NeutronError.type, "ServiceUnavailable");
    assert.match(r.body.NeutronError.message, /identity service is unavailable/);
  });
});
