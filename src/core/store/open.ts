import type { Db } from "./db.ts";
import { PostgresDb } from "./postgres.ts";
import { type MigrationProgress, type SchemaStatus, schemaStatus } from "./schema-version.ts";
import { SqliteDb, sqliteMigrations } from "./sqlite.ts";

type StoreUrl = { readonly kind: "postgres"; readonly url: string } | { readonly kind: "sqlite"; readonly path: string };

function parse(url: string): StoreUrl {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return { kind: "postgres", url };
  if (url.startsWith("sqlite:")) return { kind: "sqlite", path: url.slice("sqlite:".length) || "./data/seam.db" };
  throw new Error(`unsupported --db "${url}": use sqlite:PATH or postgres://USER@HOST:PORT/DB`);
}

/**
 * Opens `sqlite:PATH` (the default embedded store) or `postgres://...`, applying
 * the migrations it lacks first; refuses (SchemaTooNew) one a newer Seam upgraded.
 */
export async function openDb(url: string, opts: { readonly onMigration?: MigrationProgress } = {}): Promise<Db> {
  const s = parse(url);
  return s.kind === "postgres" ? PostgresDb.open(s.url, opts) : new SqliteDb(s.path, opts);
}

/** The store's schema against this Seam's, read without changing anything; exists: false when there is no database file yet. */
export async function readSchemaStatus(url: string): Promise<SchemaStatus & { readonly exists: boolean }> {
  const s = parse(url);
  const applied = s.kind === "postgres" ? await PostgresDb.migrations(s.url) : sqliteMigrations(s.path);
  return { ...schemaStatus(applied ?? []), exists: applied !== null };
}
