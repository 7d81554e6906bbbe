// An authenticated client of the Seam server: a token, a password login
// against the server's /v3 (again once after a 401), or noauth headers in a
// lab. The agent's southbound client, `seam routes` and the lab use it.
// Over https it trusts the system's CAs, or only the CA file it is given.
import { readFileSync } from "node:fs";
import type { Dispatcher } from "undici";

export type Credentials =
  | { readonly kind: "noauth" }
  | { readonly kind: "token"; readonly token: string }
  | { readonly kind: "password"; readonly username: string; readonly password: string; readonly project: string; readonly authUrl?: string };

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** the NeutronError type the server answered with, if any */
    readonly type: string | null = null,
    /** the server's own words, without the status */
    readonly reason: string = message,
  ) {
    super(message);
  }
}

/** How to reach the server: over https, the CA that signed its certificate (none: the system's). */
export interface Transport {
  readonly caFile?: string;
}

/** The server could not be reached at all: refused, unresolvable, or its certificate not trusted. */
export class Unreachable extends Error {
  constructor(
    readonly origin: string,
    cause: (Error & { code?: string }) | undefined,
  ) {
    super(`cannot reach ${origin}: ${cause ? `${cause.message}${cause.code && !cause.message.includes(cause.code) ? ` (${cause.code})` : ""}` : "fetch failed"}`, { cause });
  }
}

export class ApiClient {
  private token: string | undefined;
  private dispatcher: Promise<Dispatcher | undefined> | undefined;

  constructor(
    readonly server: string,
    private readonly creds: Credentials,
    /** who a noauth caller says it is */
    private readonly who = "seam",
    private readonly transport: Transport = {},
  ) {}

  /** fetch, through a connection pool that trusts the CA file when there is one. */
  private async fetch(url: string, init: RequestInit): Promise<Response> {
    this.dispatcher ??= trusting(this.transport.caFile);
    const dispatcher = await this.dispatcher;
    try {
      return await fetch(url, dispatcher ? ({ ...init, dispatcher } as RequestInit) : init);
    } catch (e) {
      // fetch's "fetch failed" says nothing; its cause (refused, a certificate not trusted) does. Aborts pass as they are.
      if (e instanceof TypeError && e.message === "fetch failed") throw new Unreachable(new URL(url).origin, e.cause as Error | undefined);
      throw e;
    }
  }

  private async headers(): Promise<Record<string, string>> {
    switch (this.creds.kind) {
      case "noauth":
        return { "x-project-id": "admin", "x-roles": "admin", "x-user-id": this.who };
      case "token":
        return { "x-auth-token": this.creds.token };
      case "password":
        this.token ??= await this.login();
        return { "x-auth-token": this.token };
    }
  }

  private async login(): Promise<string> {
    const c = this.creds as Extract<Credentials, { kind: "password" }>;
    const res = await this.fetch(`${(c.authUrl ?? `${this.server}/v3`).replace(/\/+$/, "")}/auth/tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        auth: {
          identity: { methods: ["password"], password: { user: { name: c.username, domain: { id: "default" }, password: c.password } } },
          scope: { project: { name: c.project, domain: { id: "default" } } },
        },
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const token = res.headers.get("x-subject-token");
    if (!res.ok || !token) throw new HttpError(res.status, `login as ${c.username} failed: ${res.status} ${await res.text()}`);
    return token;
  }

  /** One call; a 401 with a password login logs in again once. */
  async call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.fetch(`${this.server}${path}`, {
        method,
        headers: { ...(await this.headers()), ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ?? AbortSignal.timeout(15_000),
      });
      if (res.status === 401 && this.creds.kind === "password" && attempt === 0) {
        this.token = undefined;
        continue;
      }
      return res;
    }
  }

  /** The body of a successful answer; an HttpError with the server's NeutronError otherwise. */
  async ok(res: Response): Promise<unknown> {
    const text = await res.text();
    if (!res.ok) {
      let err: { type?: string; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { NeutronError?: { type?: string; message?: string } }).NeutronError;
      } catch {
        err = undefined;
      }
      const reason = err?.message ?? text.slice(0, 300);
      throw new HttpError(res.status, `${res.status} ${reason}`, err?.type ?? null, reason);
    }
    return text ? JSON.parse(text) : null;
  }
}

/** A pool whose TLS connections trust only CA_FILE's certificates; undefined: the defaults. */
async function trusting(caFile: string | undefined): Promise<Dispatcher | undefined> {
  if (!caFile) return undefined;
  let ca: string;
  try {
    ca = readFileSync(caFile, "utf8");
  } catch (e) {
    throw new Error(`cannot read the CA file ${caFile}: ${(e as Error).message}`);
  }
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new Error(`the CA file ${caFile} holds no PEM certificate`);
  // Loaded only for https with a CA of its own: most callers never need it.
  const { Agent } = await import("undici");
  return new Agent({ connect: { ca } });
}
