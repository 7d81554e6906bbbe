// `seam db status|upgrade`: the store's schema against this Seam's, and the
// migrations applied as a deployment step (the server also applies them when it
// starts, for a standalone controller; it refuses a store a newer Seam upgraded).
// Exit codes a deployment script can use: 0 up to date, 1 not (pending, or newer
// than this Seam), 2 an error (unreachable store, bad URL).
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import type { SchemaStatus } from "../core/store/schema-version.ts";

const DB_HELP = "store: sqlite:PATH or postgres://USER@HOST:PORT/DB (env SEAM_DB; a password: env PGPASSWORD)";
export const DEFAULT_DB = "sqlite:./data/seam.db";

export function registerDb(program: Command): void {
  const db = program.command("db").description("the store's schema: what it holds and what this Seam would apply");
  db.command("status")
    .description("show the schema migrations the store holds and the ones pending, without changing it (exit 1 when not up to date)")
    .option("--db <url>", DB_HELP)
    .option("-o, --output <format>", "text or json", "text")
    .action(async (o) => {
      if (o.output !== "text" && o.output !== "json") throw new InvalidArgumentError(`-o must be text or json, not "${o.output}"`);
      const url = storeUrl(o);
      const { readSchemaStatus } = await import("../core/store/open.ts");
      const status = await readSchemaStatus(url);
      process.stdout.write(o.output === "json" ? `${JSON.stringify(asJson(url, status), null, 2)}\n` : describe(url, status));
      process.exitCode = status.pending.length || status.unknown.length ? 1 : 0;
    });
  db.command("upgrade")
    .description("apply the pending schema migrations, each in its own transaction on SQLite and all in one on PostgreSQL; refuses a store newer than this Seam")
    .option("--db <url>", DB_HELP)
    .action(async (o) => {
      const url = storeUrl(o);
      const [{ openDb, readSchemaStatus }, { SchemaTooNew }] = await Promise.all([import("../core/store/open.ts"), import("../core/store/schema-version.ts")]);
      const before = await readSchemaStatus(url);
      if (before.unknown.length) throw new SchemaTooNew(before);
      if (!before.pending.length) {
        process.stderr.write(`seam: ${where(url)} is at schema ${before.current}, this Seam's latest: nothing to do\n`);
        return;
      }
      process.stderr.write(`seam: ${where(url)}: applying ${before.pending.length} migration(s), ${before.current} -> ${before.latest}\n`);
      const store = await openDb(url, { onMigration: (m, ms) => process.stderr.write(`  ${m.version}  ${m.name}  (${ms.toFixed(0)} ms)\n`) });
      await store.close();
      process.stderr.write(`seam: ${where(url)} is at schema ${before.latest}\n`);
    });
}

export function storeUrl(o: { db?: string }): string {
  return o.db ?? process.env.SEAM_DB ?? DEFAULT_DB;
}

/** The store as it may be shown: a PostgreSQL URL without its password. */
export function where(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]+):[^@/]*@/, "$1:***@");
}

function describe(url: string, s: SchemaStatus & { exists: boolean }): string {
  const lines = [`store:  ${where(url)}${s.exists ? "" : " (no database yet: `seam db upgrade` or the server creates it)"}`];
  const state = s.unknown.length
    ? `newer than this Seam (holds ${s.unknown.map((u) => u.version).join(", ")}; this Seam knows up to ${s.latest}): run a newer Seam`
    : s.pending.length
      ? `${s.pending.length} pending: run \`seam db upgrade\``
      : "up to date";
  lines.push(`schema: ${s.current} of ${s.latest}, ${state}`);
  for (const a of s.applied) lines.push(`  ${String(a.version).padStart(3)}  applied  ${a.appliedAt}  ${a.name}${s.unknown.includes(a) ? "  (unknown to this Seam)" : ""}`);
  for (const m of s.pending) lines.push(`  ${String(m.version).padStart(3)}  pending  ${" ".repeat(24)}  ${m.name}`);
  return `${lines.join("\n")}\n`;
}

function asJson(url: string, s: SchemaStatus & { exists: boolean }) {
  return {
    store: where(url),
    exists: s.exists,
    current: s.current,
    latest: s.latest,
    up_to_date: !s.pending.length && !s.unknown.length,
    applied: s.applied.map((a) => ({ version: a.version, name: a.name, applied_at: a.appliedAt, known: !s.unknown.includes(a) })),
    pending: s.pending.map((m) => ({ version: m.version, name: m.name })),
  };
}
