// Test helpers: a server on a chosen store, and a small JSON client that
// records status and body (through app.inject, or real HTTP for load tests).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Db } from "../../src/core/store/db.ts";
import { openDb } from "../../src/core/store/open.ts";
import { buildServer, type Server, type ServerOptions } from "../../src/server.ts";
import { startPostgres } from "./postgres.ts";

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Reply {
  status: number;
  body: Json;
}

export interface Store {
  readonly name: string;
  readonly url: string;
  cleanup(): Promise<void>;
}

export async function makeStore(kind: "sqlite" | "postgres"): Promise<Store> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "seam-test-"));
    return { name: "sqlite", url: `sqlite:${join(dir, "seam.db")}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const pg = await startPostgres();
  return { name: "postgres", url: pg.url, cleanup: () => pg.stop() };
}

export interface TestServer extends Server {
  readonly db: Db;
  as(project: string, roles?: string): Client;
  admin: Client;
  close(): Promise<void>;
}

export class Client {
  constructor(
    private readonly server: Server,
    private readonly headers: Record<string, string>,
  ) {}

  async req(method: string, url: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply> {
    const res = await this.server.app.inject({
      method: method as "GET",
      url,
      headers: { ...this.headers, ...extra, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      payload: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  }
  get = (url: string) => this.req("GET", url);
  post = (url: string, body: unknown) => this.req("POST", url, body);
  put = (url: string, body: unknown, extra?: Record<string, string>) => this.req("PUT", url, body, extra);
  del = (url: string, extra?: Record<string, string>) => this.req("DELETE", url, undefined, extra);
}

export async function startServer(storeUrl: string, extra: Partial<ServerOptions> = {}): Promise<TestServer> {
  const db = await openDb(storeUrl);
  const server = await buildServer({ db, auth: "noauth", logLevel: process.env.SEAM_TEST_LOG ?? "fatal", ...extra });
  const as = (project: string, roles = "member") => new Client(server, { "x-project-id": project, "x-roles": roles });
  return {
    ...server,
    db,
    as,
    admin: as("admin", "admin"),
    async close() {
      await server.app.close();
      await db.close();
    },
  };
}

/** Fails with the reply shown when the status is not the expected one. */
export function expectStatus(r: Reply, status: number, what = ""): Json {
  if (r.status !== status) throw new Error(`${what} expected HTTP ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Puts a test server on a loopback port for real-HTTP tests; returns its base URL. */
export async function listen(s: TestServer): Promise<string> {
  await s.app.listen({ host: "127.0.0.1", port: 0 });
  return `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
}
