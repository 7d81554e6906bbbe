import type { Db } from "./db.ts";
import { PostgresDb } from "./postgres.ts";
import { SqliteDb } from "./sqlite.ts";

/** Opens `sqlite:PATH` (the default embedded store) or `postgres://...`. */
export async function openDb(url: string): Promise<Db> {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return PostgresDb.open(url);
  if (url.startsWith("sqlite:")) return new SqliteDb(url.slice("sqlite:".length) || "./data/seam.db");
  throw new Error(`unsupported --db "${url}": use sqlite:PATH or postgres://USER@HOST:PORT/DB`);
}
