// `seam server --tls-cert/--tls-key`: the real server process serves https with
// a certificate from a CA the test makes (openssl), the unmodified `openstack`
// CLI and Seam's own clients (the CLI, the agent's southbound client) reach it
// when they trust that CA and refuse it when they do not, a bad pair is refused
// before the server starts, and SIGHUP swaps in a renewed certificate.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ApiClient, Unreachable } from "../src/client/api-client.ts";
import { SouthboundClient } from "../src/agent/southbound-client.ts";
import { readTls } from "../src/cli/server-tls.ts";
import { freePort } from "../src/os/ports.ts";
import { ROOT, stopProcess } from "./support/http.ts";

const run = promisify(execFile);
const SEAM = join(ROOT, "bin", "seam");
const dir = mkdtempSync(join(tmpdir(), "seam-tls-"));
const f = (name: string) => join(dir, name);
const admin = { kind: "password", username: "admin", password: "admin", project: "admin" } as const;
let server: ChildProcess | null = null;
let stderr = "";
let url = "";

const openssl = (...args: string[]) => run("openssl", args, { cwd: dir });

/** A CA, and a certificate for 127.0.0.1 signed by it. */
async function makeCa(name: string): Promise<void> {
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`, "-days", "2", "-subj", `/CN=Seam test CA ${name}`);
  await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}-server.key`, "-out", `${name}-server.csr`, "-subj", "/CN=seam-server");
  writeFileSync(f(`${name}-ext.cnf`), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl("x509", "-req", "-in", `${name}-server.csr`, "-CA", `${name}-ca.pem`, "-CAkey", `${name}-ca.key`, "-CAcreateserial", "-out", `${name}-server.pem`, "-days", "2", "-extfile", `${name}-ext.cnf`);
}

/** Runs `seam ARGS` to its end: exit code and what it printed. */
async function seam(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(SEAM, args, { env: { PATH: process.env.PATH, HOME: dir, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

async function openstack(args: string[], cacert?: string): Promise<string> {
  const env = {
    PATH: process.env.PATH, HOME: dir, LANG: "C.UTF-8",
    OS_AUTH_URL: `${url}/v3`, OS_USERNAME: "demo", OS_PASSWORD: "demo", OS_PROJECT_NAME: "demo",
    OS_USER_DOMAIN_NAME: "Default", OS_PROJECT_DOMAIN_NAME: "Default", OS_IDENTITY_API_VERSION: "3",
    ...(cacert ? { OS_CACERT: cacert } : {}),
  };
  try {
    return (await run("openstack", args, { env, timeout: 60_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`openstack ${args.join(" ")}: ${e.stderr}${e.stdout}`);
  }
}

const serverArgs = (port: number, extra: string[]) => ["server", "--listen", `127.0.0.1:${port}`, "--db", `sqlite:${f("seam.db")}`, "--auth", "local", "--identity", join(ROOT, "etc", "identity.yaml"), ...extra];

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server said: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("seam server over https", () => {
  before(async () => {
    await makeCa("one");
    await makeCa("two");
    copyFileSync(f("one-server.pem"), f("server.pem"));
    copyFileSync(f("one-server.key"), f("server.key"));
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    server = spawn(SEAM, serverArgs(port, ["--tls-cert", f("server.pem"), "--tls-key", f("server.key")]), { stdio: ["ignore", "ignore", "pipe"] });
    server.stderr!.on("data", (d) => (stderr += d));
    await until("the server to listen", () => stderr.includes("listening on https://") || server!.exitCode !== null);
    assert.equal(server.exitCode, null, stderr);
  });
  after(async () => {
    if (server) await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("says what it serves: the certificate's subject, names and expiry", () => {
    assert.match(stderr, /certificate: CN=seam-server \(IP Address:127\.0\.0\.1, DNS:localhost\), valid until /);
    assert.match(stderr, new RegExp(`listening on ${url.replace(/\./g, "\\.")} `));
  });

  it("the openstack CLI works with the CA (OS_CACERT) and refuses the server without it", async () => {
    const out = await openstack(["network", "create", "over-tls", "-f", "value", "-c", "name"], f("one-ca.pem"));
    assert.equal(out.trim(), "over-tls");
    // the token's catalog names the endpoint as the caller reached it: https
    const catalog = JSON.parse(await openstack(["catalog", "show", "network", "-f", "json"], f("one-ca.pem")));
    assert.match(JSON.stringify(catalog.endpoints), /https:\/\/127\.0\.0\.1/);
    await assert.rejects(openstack(["network", "list"]), /certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSL/);
  });

  it("seam's CLI trusts --ca-file (or SEAM_CA_FILE) and otherwise says why it cannot connect, without a stack trace", async () => {
    const login = ["--os-username", "admin", "--os-password", "admin", "--os-project-name", "admin"];
    const ok = await seam(["host-credential", "create", "--host", "tls-host", "--server", url, "--ca-file", f("one-ca.pem"), "--output", f("tls-host.cred"), ...login]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(readFileSync(f("tls-host.cred"), "utf8").trim().length > 20);
    const byEnv = await seam(["host-credential", "create", "--host", "tls-host-2", "--server", url, ...login], { SEAM_CA_FILE: f("one-ca.pem") });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    const refused = await seam(["host-credential", "create", "--host", "tls-host", "--server", url, ...login]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`^seam: cannot reach ${url.replace(/\./g, "\\.")}: .*(self-signed|unable to verify|SELF_SIGNED|UNABLE_TO_VERIFY)`));
    assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
    const wrongCa = await seam(["host-credential", "create", "--host", "tls-host", "--server", url, "--ca-file", f("two-ca.pem"), ...login]);
    assert.equal(wrongCa.code, 2);
    assert.match(wrongCa.stderr, /cannot reach/);
    const notPem = await seam(["host-credential", "create", "--host", "tls-host", "--server", url, "--ca-file", f("one-ext.cnf"), ...login]);
    assert.equal(notPem.code, 2);
    assert.match(notPem.stderr, /seam: the CA file .*one-ext\.cnf holds no PEM certificate/);
  });

  it("an agent's southbound client registers and reads its intent over https with its host credential, and only with the right CA", async () => {
    const credential = readFileSync(f("tls-host.cred"), "utf8").trim();
    const agent = new SouthboundClient(url, "tls-host", { kind: "token", token: credential }, { caFile: f("one-ca.pem") });
    await agent.register({ vtep: "192.0.2.10", roles: ["compute"], version: "test" });
    const intent = await agent.intent();
    assert.equal(typeof intent.revision, "number");
    const untrusting = new SouthboundClient(url, "tls-host", { kind: "token", token: credential }, { caFile: f("two-ca.pem") });
    await assert.rejects(untrusting.intent(), (e: Error) => e instanceof Unreachable && /certificate/i.test(e.message));
    // and the server still answers plain http with nothing: it is https only
    await assert.rejects(fetch(url.replace("https:", "http:")), TypeError);
  });

  it("refuses to start on a key that does not go with the certificate, a missing file, one flag alone or an expired certificate", async () => {
    const port = await freePort();
    const mismatch = await seam(serverArgs(port, ["--tls-cert", f("one-server.pem"), "--tls-key", f("two-server.key")]));
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /^seam: --tls-key .*two-server\.key does not go with --tls-cert .*one-server\.pem/);
    const missing = await seam(serverArgs(port, ["--tls-cert", f("nowhere.pem"), "--tls-key", f("one-server.key")]));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --tls-cert .*nowhere\.pem: no such file/);
    const alone = await seam(serverArgs(port, ["--tls-cert", f("one-server.pem")]));
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--tls-cert and --tls-key go together/);
    const swapped = await seam(serverArgs(port, ["--tls-cert", f("one-server.key"), "--tls-key", f("one-server.pem")]));
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /holds no PEM certificate/);
    // a certificate past its expiry (the CA's pair, two days on)
    const later = new Date(Date.now() + 3 * 86_400_000);
    assert.throws(() => readTls({ certFile: f("one-server.pem"), keyFile: f("one-server.key") }, later), /--tls-cert .*one-server\.pem: expired on /);
    assert.match(readTls({ certFile: f("one-server.pem"), keyFile: f("one-server.key") }).summary, /^CN=seam-server/);
  });

  it("on SIGHUP serves a renewed certificate to new connections, and keeps the old one when the new pair is bad", async () => {
    const viaOne = new ApiClient(url, admin, undefined, { caFile: f("one-ca.pem") });
    const viaTwo = new ApiClient(url, admin, undefined, { caFile: f("two-ca.pem") });
    assert.equal((await viaOne.call("GET", "/v2.0/networks")).status, 200);
    // a bad pair first: the log says so and the old certificate stays
    copyFileSync(f("two-server.pem"), f("server.pem"));
    const before = stderr.length;
    server!.kill("SIGHUP");
    await until("the reload to be refused", () => stderr.slice(before).includes("SIGHUP: kept the certificate in use"));
    assert.equal((await new ApiClient(url, admin, undefined, { caFile: f("one-ca.pem") }).call("GET", "/v2.0/networks")).status, 200);
    // the renewed pair
    copyFileSync(f("two-server.key"), f("server.key"));
    const mark = stderr.length;
    server!.kill("SIGHUP");
    await until("the reload", () => stderr.slice(mark).includes("SIGHUP: serving CN=seam-server"));
    assert.equal((await viaTwo.call("GET", "/v2.0/networks")).status, 200);
    await assert.rejects(new ApiClient(url, admin, undefined, { caFile: f("one-ca.pem") }).call("GET", "/v2.0/networks"), Unreachable);
    assert.equal(server!.exitCode, null, "the server kept running");
  });
});
