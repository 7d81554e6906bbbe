// The agent's side of the southbound: HTTP calls with admin credentials (a
// token, a password login against the server's /v3, or noauth headers in a
// lab), and the intent watch as a stream of messages.
import { type Attachment, type AttachRequest, type CollectRequest, type IntentMessage, type Registration, SOUTHBOUND } from "../contract/southbound.ts";

export type Credentials =
  | { readonly kind: "noauth" }
  | { readonly kind: "token"; readonly token: string }
  | { readonly kind: "password"; readonly username: string; readonly password: string; readonly project: string };

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

export class SouthboundClient {
  private token: string | undefined;

  constructor(
    readonly server: string,
    readonly host: string,
    private readonly creds: Credentials,
  ) {}

  private async headers(): Promise<Record<string, string>> {
    switch (this.creds.kind) {
      case "noauth":
        return { "x-project-id": "admin", "x-roles": "admin", "x-user-id": `agent-${this.host}` };
      case "token":
        return { "x-auth-token": this.creds.token };
      case "password":
        this.token ??= await this.login();
        return { "x-auth-token": this.token };
    }
  }

  private async login(): Promise<string> {
    const c = this.creds as Extract<Credentials, { kind: "password" }>;
    const res = await fetch(`${this.server}/v3/auth/tokens`, {
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

  private async ok(res: Response): Promise<unknown> {
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

  private get base(): string {
    return `${SOUTHBOUND}/hosts/${encodeURIComponent(this.host)}`;
  }

  async register(reg: Registration): Promise<void> {
    await this.ok(await this.call("PUT", this.base, reg));
  }

  /** false: the server does not know this host (register again). */
  async heartbeat(): Promise<boolean> {
    const res = await this.call("POST", `${this.base}/heartbeat`);
    if (res.status === 404) return false;
    await this.ok(res);
    return true;
  }

  async reportPorts(up: readonly string[], down: readonly string[]): Promise<void> {
    await this.ok(await this.call("POST", `${this.base}/ports`, { up, down }));
  }

  /** The port a workload gets on a network (found or made by the server), bound to this host. */
  async attach(req: AttachRequest): Promise<Attachment> {
    return (await this.ok(await this.call("POST", `${this.base}/attachments`, req))) as Attachment;
  }

  /** Removes what was attached for a container here; the ids of the ports removed. */
  async detach(containerId: string, portId?: string): Promise<string[]> {
    const q = portId ? `?port=${encodeURIComponent(portId)}` : "";
    return ((await this.ok(await this.call("DELETE", `${this.base}/attachments/${encodeURIComponent(containerId)}${q}`))) as { removed: string[] }).removed;
  }

  /** Removes this host's attachments for containers not in `keep`; the ids of the ports removed. */
  async collect(keep: readonly string[], scope: CollectRequest["scope"] = {}): Promise<string[]> {
    const req: CollectRequest = { keep, scope };
    return ((await this.ok(await this.call("POST", `${this.base}/attachments/collect`, req))) as { removed: string[] }).removed;
  }

  async intent(): Promise<{ revision: number; items: Record<string, unknown> }> {
    return (await this.ok(await this.call("GET", `${this.base}/intent`))) as { revision: number; items: Record<string, unknown> };
  }

  /**
   * Streams the intent until the connection ends or `signal` aborts; a stream
   * silent for `idleMs` (no bookmark) is treated as dead.
   */
  async watch(since: number | undefined, onMessage: (m: IntentMessage) => void, signal: AbortSignal, idleMs = 35_000): Promise<void> {
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let idle = setTimeout(() => abort.abort(), idleMs);
    try {
      const res = await this.call("GET", `${this.base}/intent?watch=1${since === undefined ? "" : `&since=${since}`}`, undefined, abort.signal);
      if (!res.ok || !res.body) throw new HttpError(res.status, `watch failed: ${res.status} ${await res.text()}`);
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(), idleMs);
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onMessage(JSON.parse(line) as IntentMessage);
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
