// A host's own credential: what its agent presents (as X-Auth-Token) instead of
// an admin token. It is good for that host's southbound calls only, so a
// broken-into host can neither read another host's intent nor report another
// host's ports. The store keeps a hash of it (meta `host_credential:HOST`);
// issuing again replaces it, deleting revokes it.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Db } from "../core/store/db.ts";

const TAG = "seamhost1";
const key = (host: string) => `host_credential:${host}`;
const digest = (secret: string) => createHash("sha256").update(secret).digest("hex");

export const isHostCredential = (token: string | undefined): token is string => token?.startsWith(`${TAG}.`) ?? false;

/** A new credential for `host` (shown once; the store keeps its hash), replacing any earlier one. */
export async function issueHostCredential(db: Db, host: string): Promise<string> {
  const secret = randomBytes(32).toString("base64url");
  await db.write(async (tx) => {
    await tx.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key(host), digest(secret)]);
  });
  return `${TAG}.${Buffer.from(host).toString("base64url")}.${secret}`;
}

/** Whether a credential existed for `host` (it no longer does). */
export async function revokeHostCredential(db: Db, host: string): Promise<boolean> {
  const { value } = await db.write(async (tx) => {
    const had = await tx.get("SELECT 1 AS one FROM meta WHERE key = ?", [key(host)]);
    await tx.run("DELETE FROM meta WHERE key = ?", [key(host)]);
    return had !== undefined;
  });
  return value;
}

/** The host a credential belongs to, or null when it is not (or no longer) valid. */
export async function hostOfCredential(db: Db, token: string): Promise<string | null> {
  const [tag, encodedHost, secret] = token.split(".");
  if (tag !== TAG || !encodedHost || !secret) return null;
  const host = Buffer.from(encodedHost, "base64url").toString();
  const row = await db.read((q) => q.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", [key(host)]));
  if (!row) return null;
  const given = Buffer.from(digest(secret), "hex");
  const stored = Buffer.from(row.value, "hex");
  return stored.length === given.length && timingSafeEqual(stored, given) ? host : null;
}
