// A real Keystone (Debian's python3-keystone) for the tests: its own config and
// fernet keys in a temporary directory and its own PostgreSQL server (on SQLite,
// Keystone 22 under its test server leaves writes "database is locked" for good
// after a read), bootstrapped with
// an admin, served by keystone-wsgi-public on a free loopback port. Projects,
// users, roles and the catalog are then made through its API as an operator would.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, type PgServer, startPostgres } from "./postgres.ts";
import { passwordLogin, stopProcess } from "./http.ts";

const run = promisify(execFile);
export const ADMIN_PASSWORD = "keystone-admin";

export interface Keystone {
  readonly url: string;
  readonly dir: string;
  /** a project-scoped token of the given user */
  token(user: string, password: string, project: string): Promise<string>;
  /** as Keystone's admin: a JSON call to its API */
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  createProject(name: string): Promise<string>;
  /** a user with `role` on `project` (both by name); the user's id */
  createUser(name: string, password: string, grants: Record<string, string>): Promise<string>;
  stop(): Promise<void>;
}

export async function startKeystone(): Promise<Keystone> {
  if (!existsSync("/usr/bin/keystone-wsgi-public")) throw new Error("Keystone is not installed: scripts/setup.sh installs Debian's python3-keystone");
  const dir = mkdtempSync(join(tmpdir(), "seam-keystone-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/v3`;
  const conf = join(dir, "keystone.conf");
  let pg: PgServer;
  try {
    pg = await startPostgres();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  writeFileSync(conf, [
    "[DEFAULT]", `log_file = ${join(dir, "keystone.log")}`,
    "[database]", `connection = ${pg.url.replace(/^postgres:/, "postgresql+psycopg2:")}`,
    "[token]", "provider = fernet", "expiration = 3600",
    "[fernet_tokens]", `key_repository = ${join(dir, "fernet-keys")}`,
    "[fernet_receipts]", `key_repository = ${join(dir, "fernet-receipts")}`,
    "[credential]", `key_repository = ${join(dir, "credential-keys")}`, "",
  ].join("\n"));
  const manage = (...args: string[]) => run("keystone-manage", ["--config-file", conf, ...args], { timeout: 120_000 });
  let child: ChildProcess | undefined;
  let stderr = "";
  try {
    await manage("db_sync");
    await manage("fernet_setup", "--keystone-user", "root", "--keystone-group", "root");
    await manage("credential_setup", "--keystone-user", "root", "--keystone-group", "root");
    await manage("bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-public-url", url, "--bootstrap-region-id", "RegionOne");
    child = spawn("keystone-wsgi-public", ["--host", "127.0.0.1", "--port", String(port), "--", "--config-file", conf], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`keystone exited ${child.exitCode}: ${stderr}`);
      if (await fetch(url).then((r) => r.ok, () => false)) break;
      if (Date.now() > deadline) throw new Error(`keystone did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    if (child) await stopProcess(child);
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const token = async (user: string, password: string, project: string) => {
    const res = await passwordLogin(url, user, password, project);
    const t = res.headers.get("x-subject-token");
    if (!res.ok || !t) throw new Error(`keystone login of ${user} in ${project}: ${res.status} ${await res.text()}`);
    return t;
  };
  let adminToken: string | undefined;
  const admin = async <T,>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    adminToken ??= await token("admin", ADMIN_PASSWORD, "admin");
    const res = await fetch(`${url}${path}`, { method, headers: { "x-auth-token": adminToken, ...headers, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    if (!res.ok) throw new Error(`keystone ${method} ${path}: ${res.status} ${text}${res.status >= 500 ? `\n${stderr.slice(-1500)}` : ""}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
  let stopped = false;
  const idOf = async (kind: "projects" | "roles", name: string) => {
    const found = (await admin<Record<string, { id: string; name: string }[]>>("GET", `/${kind}`))[kind]!.find((x) => x.name === name);
    if (!found) throw new Error(`keystone has no ${kind.slice(0, -1)} ${name}`);
    return found.id;
  };
  return {
    url,
    dir,
    token,
    admin,
    async createProject(name) {
      return (await admin<{ project: { id: string } }>("POST", "/projects", { project: { name, domain_id: "default" } })).project.id;
    },
    async createUser(name, password, grants) {
      const { user } = await admin<{ user: { id: string } }>("POST", "/users", { user: { name, password, domain_id: "default" } });
      for (const [project, role] of Object.entries(grants)) {
        let roleId: string;
        try {
          roleId = await idOf("roles", role);
        } catch {
          roleId = (await admin<{ role: { id: string } }>("POST", "/roles", { role: { name: role } })).role.id;
        }
        await admin("PUT", `/projects/${await idOf("projects", project)}/users/${user.id}/roles/${roleId}`);
      }
      return user.id;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child) await stopProcess(child);
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
