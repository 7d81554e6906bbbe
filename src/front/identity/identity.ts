// The built-in identity: projects and users from a YAML file, and stateless
// signed tokens (HMAC over the token's claims with a secret kept in the
// store), so any controller sharing the store validates any controller's
// token and tokens survive restarts.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Db } from "../../core/store/db.ts";

export interface Project {
  readonly id: string;
  readonly name: string;
}

export interface User {
  readonly id: string;
  readonly name: string;
  readonly password: string;
  /** project name -> roles */
  readonly roles: Readonly<Record<string, readonly string[]>>;
}

export interface IdentityConfig {
  readonly region: string;
  readonly tokenTtlSeconds: number;
  readonly projects: readonly Project[];
  readonly users: readonly User[];
}

export interface TokenClaims {
  readonly userId: string;
  readonly userName: string;
  readonly projectId: string;
  readonly projectName: string;
  readonly roles: readonly string[];
  readonly methods: readonly string[];
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly auditId: string;
}

/** Stable 32-hex ids from names, in Keystone's format, when the file gives none. */
export const derivedId = (kind: string, name: string) => createHash("sha256").update(`seam:${kind}:${name}`).digest("hex").slice(0, 32);

export function parseIdentityConfig(text: string, source = "identity config"): IdentityConfig {
  const doc = parse(text) as Record<string, unknown> | null;
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (!doc || typeof doc !== "object") fail("expected a mapping with `projects` and `users`");
  const projects = ((doc!.projects as unknown[]) ?? []).map((p, i) => {
    const o = (typeof p === "string" ? { name: p } : p) as Record<string, unknown>;
    if (typeof o?.name !== "string" || !o.name) fail(`projects[${i}] needs a name`);
    return { id: (o.id as string) ?? derivedId("project", o.name as string), name: o.name as string };
  });
  const names = new Set(projects.map((p) => p.name));
  const users = ((doc!.users as unknown[]) ?? []).map((u, i) => {
    const o = u as Record<string, unknown>;
    if (typeof o?.name !== "string" || typeof o.password !== "string") fail(`users[${i}] needs a name and a password`);
    const roles = (o.roles ?? {}) as Record<string, string[]>;
    for (const [project, list] of Object.entries(roles)) {
      if (!names.has(project)) fail(`users[${i}] (${o.name}) has roles on unknown project '${project}'`);
      if (!Array.isArray(list)) fail(`users[${i}] (${o.name}): roles of '${project}' must be a list`);
    }
    return { id: (o.id as string) ?? derivedId("user", o.name as string), name: o.name as string, password: o.password as string, roles };
  });
  if (users.length === 0) fail("no users defined");
  return {
    region: (doc!.region as string) ?? "RegionOne",
    tokenTtlSeconds: Number(doc!.token_ttl ?? 3600),
    projects,
    users,
  };
}

export function loadIdentityConfig(path: string): IdentityConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read identity config ${path}: ${(err as Error).message}`);
  }
  return parseIdentityConfig(text, path);
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export class TokenIssuer {
  private constructor(private readonly secret: Buffer) {}

  /** Loads the signing secret from the store, creating it once. */
  static async open(db: Db): Promise<TokenIssuer> {
    const { value } = await db.write(async (tx) => {
      const row = await tx.get<{ value: string }>("SELECT value FROM meta WHERE key = 'token_secret'");
      if (row) return row.value;
      const secret = randomBytes(32).toString("hex");
      await tx.run("INSERT INTO meta (key, value) VALUES ('token_secret', ?) ON CONFLICT (key) DO NOTHING", [secret]);
      return (await tx.get<{ value: string }>("SELECT value FROM meta WHERE key = 'token_secret'"))!.value;
    });
    return new TokenIssuer(Buffer.from(value, "hex"));
  }

  issue(claims: TokenClaims): string {
    const payload = b64(JSON.stringify(claims));
    const mac = createHmac("sha256", this.secret).update(payload).digest();
    return `seam1.${payload}.${b64(mac)}`;
  }

  /** The claims of a valid, unexpired token, or null. */
  verify(token: string | undefined, nowSeconds = Date.now() / 1000): TokenClaims | null {
    if (!token) return null;
    const [tag, payload, mac] = token.split(".");
    if (tag !== "seam1" || !payload || !mac) return null;
    const expected = createHmac("sha256", this.secret).update(payload).digest();
    const given = Buffer.from(mac, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as TokenClaims;
      return claims.expiresAt > nowSeconds ? claims : null;
    } catch {
      return null;
    }
  }
}

export function checkPassword(user: User, password: string): boolean {
  const a = createHash("sha256").update(user.password).digest();
  const b = createHash("sha256").update(password).digest();
  return timingSafeEqual(a, b);
}
