// Validates callers' tokens against an external Keystone, as keystonemiddleware's
// auth_token does for Neutron: GET /v3/auth/tokens with Seam's own service
// token and the caller's as X-Subject-Token. An answer is kept for a short
// while (never past the token's expiry), so a burst of requests with one token
// costs Keystone one validation; a revoked token keeps working until its
// cached answer ages out, the same trade keystonemiddleware's token_cache_time makes.
import { NeutronError } from "../../core/errors.ts";
import { makeContext, type RequestContext } from "../../core/model/context.ts";

export interface KeystoneOptions {
  /** Keystone's v3 endpoint, e.g. http://keystone:5000/v3 */
  readonly url: string;
  /** Seam's own service user (needs the service or admin role to validate others' tokens) */
  readonly username: string;
  readonly password: string;
  readonly project: string;
  readonly userDomain?: string;
  readonly projectDomain?: string;
  /** how long an answer is trusted; default 60 s */
  readonly cacheSeconds?: number;
  /** most answers kept; the oldest go first */
  readonly cacheEntries?: number;
}

interface Cached {
  readonly ctx: RequestContext | null;
  readonly until: number;
}

const TIMEOUT_MS = 5_000;

/** What Keystone's token body says of the caller; null for a token without a project scope (Neutron's resources are per project). */
export function contextOfToken(body: unknown): { ctx: RequestContext; expiresAt: number } | null {
  const token = (body as { token?: Record<string, unknown> } | null)?.token;
  const project = token?.project as { id?: unknown } | undefined;
  const user = token?.user as { id?: unknown } | undefined;
  if (typeof project?.id !== "string" || typeof user?.id !== "string") return null;
  const roles = Array.isArray(token!.roles) ? (token!.roles as { name?: unknown }[]).map((r) => r?.name).filter((n): n is string => typeof n === "string") : [];
  const expiresAt = Date.parse(String(token!.expires_at));
  if (!Number.isFinite(expiresAt)) return null;
  return { ctx: makeContext(project.id, user.id, roles), expiresAt };
}

export class KeystoneValidator {
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<RequestContext | null>>();
  private service: { token: string; expiresAt: number } | null = null;
  private serviceLogin: Promise<string> | null = null;
  private readonly url: string;
  private readonly cacheMs: number;
  private readonly maxEntries: number;
  /** validations sent to Keystone (for tests and the benchmark) */
  validations = 0;

  constructor(private readonly opts: KeystoneOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.cacheMs = (opts.cacheSeconds ?? 60) * 1000;
    this.maxEntries = opts.cacheEntries ?? 10_000;
  }

  /** The caller a token names, or null (unknown, expired, revoked or not project-scoped). Throws 503 when Keystone cannot answer. */
  async validate(token: string | undefined, now = Date.now()): Promise<RequestContext | null> {
    if (!token) return null;
    const hit = this.cache.get(token);
    if (hit && hit.until > now) return hit.ctx;
    let p = this.pending.get(token);
    if (!p) {
      p = this.ask(token).finally(() => this.pending.delete(token));
      this.pending.set(token, p);
    }
    return p;
  }

  private async ask(token: string): Promise<RequestContext | null> {
    for (let attempt = 0; ; attempt++) {
      const service = await this.serviceToken();
      this.validations++;
      const res = await this.fetch(`${this.url}/auth/tokens`, { headers: { "x-auth-token": service, "x-subject-token": token } });
      // Our own token was refused (expired, or Keystone restarted with new keys): log in again, once.
      if ((res.status === 401 || res.status === 403) && attempt === 0) {
        this.service = null;
        continue;
      }
      if (res.status === 401 || res.status === 403) throw unavailable(`Keystone refused Seam's service credentials (${res.status}); check --keystone-username and its role`);
      if (res.status === 404) return this.remember(token, null, Date.now() + this.cacheMs);
      if (!res.ok) throw unavailable(`Keystone answered ${res.status} validating a token`);
      const seen = contextOfToken(await res.json().catch(() => null));
      return this.remember(token, seen?.ctx ?? null, Math.min(Date.now() + this.cacheMs, seen?.expiresAt ?? Infinity));
    }
  }

  private remember(token: string, ctx: RequestContext | null, until: number): RequestContext | null {
    this.cache.delete(token);
    this.cache.set(token, { ctx, until });
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return ctx;
  }

  private async serviceToken(): Promise<string> {
    if (this.service && this.service.expiresAt - 60_000 > Date.now()) return this.service.token;
    this.serviceLogin ??= this.login().finally(() => (this.serviceLogin = null));
    return this.serviceLogin;
  }

  private async login(): Promise<string> {
    const o = this.opts;
    const res = await this.fetch(`${this.url}/auth/tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        auth: {
          identity: { methods: ["password"], password: { user: { name: o.username, domain: { name: o.userDomain ?? "Default" }, password: o.password } } },
          scope: { project: { name: o.project, domain: { name: o.projectDomain ?? "Default" } } },
        },
      }),
    });
    const token = res.headers.get("x-subject-token");
    if (!res.ok || !token) throw unavailable(`Seam's service user ${o.username} cannot log in to Keystone (${res.status})`);
    const body = (await res.json().catch(() => null)) as { token?: { expires_at?: string } } | null;
    const expiresAt = Date.parse(body?.token?.expires_at ?? "") || Date.now() + 300_000;
    this.service = { token, expiresAt };
    return token;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw unavailable(`Keystone cannot be reached (${(err as Error).cause ?? (err as Error).message})`);
    }
  }
}

const unavailable = (why: string) => new NeutronError(503, "ServiceUnavailable", `The identity service is unavailable: ${why}.`);
