// An authenticated client of the Seam server: a token, a password login
// against the server's /v3 (again once after a 401), or noauth headers in a
// lab. The agent's southbound client, `seam routes` and the lab use it.

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

export class ApiClient {
  private token: string | undefined;

  constructor(
    readonly server: string,
    private readonly creds: Credentials,
    /** who a noauth caller says it is */
    private readonly who = "seam",
  ) {}

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
    const res = await fetch(`${(c.authUrl ?? `${this.server}/v3`).replace(/\/+$/, "")}/auth/tokens`, {
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
      const res = await fetch(`${this.server}${path}`, {
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
