// Which migrations a store holds against the ones this Seam knows (pure): what
// `seam db status` shows, what opening a store applies, and why a server
// refuses a store that a newer Seam has already upgraded (its code would read
// tables and columns it does not know, or write rows a newer reader misreads).
import { type Migration, migrations } from "./schema.ts";

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly appliedAt: string;
}

export interface SchemaStatus {
  /** the newest migration this Seam knows */
  readonly latest: number;
  /** the newest migration the store holds (0: none) */
  readonly current: number;
  readonly applied: readonly AppliedMigration[];
  /** what this Seam would apply, in order */
  readonly pending: readonly Migration[];
  /** applied by a newer Seam: this one does not know them */
  readonly unknown: readonly AppliedMigration[];
}

export function schemaStatus(applied: readonly AppliedMigration[], known: readonly Migration[] = migrations): SchemaStatus {
  const knownVersions = new Set(known.map((m) => m.version));
  const done = new Set(applied.map((a) => a.version));
  const sorted = [...applied].sort((a, b) => a.version - b.version);
  return {
    latest: Math.max(0, ...known.map((m) => m.version)),
    current: Math.max(0, ...applied.map((a) => a.version)),
    applied: sorted,
    pending: known.filter((m) => !done.has(m.version)),
    unknown: sorted.filter((a) => !knownVersions.has(a.version)),
  };
}

/** A store upgraded by a newer Seam than this one. */
export class SchemaTooNew extends Error {
  constructor(readonly status: SchemaStatus) {
    const names = status.unknown.map((u) => `${u.version} "${u.name}"`).join(", ");
    super(`the database holds schema migration ${names}, newer than this Seam knows (its latest is ${status.latest}): run a Seam at least as new as the one that upgraded it`);
  }
}

/** The migrations to apply; throws SchemaTooNew rather than run old code over a newer schema. */
export function migrationsToApply(status: SchemaStatus): readonly Migration[] {
  if (status.unknown.length) throw new SchemaTooNew(status);
  return status.pending;
}

/** Reports each migration as it is applied (`seam db upgrade`). */
export type MigrationProgress = (m: Migration, ms: number) => void;
