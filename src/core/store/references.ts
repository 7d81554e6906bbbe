// Every reference one row makes to another, enforced by the database so that
// no interleaving of requests can leave one dangling (issue 14). The services
// check the same facts first, to answer with Neutron's words; these are what
// make the checks true at commit on PostgreSQL, where writers run in parallel.
//
// PostgreSQL gets foreign keys (NO ACTION: a delete while a child exists
// fails at the end of its statement; an insert whose parent is being deleted
// waits for that delete and then fails). SQLite cannot add a foreign key to an
// existing table, so it gets triggers with the same names and the same
// effect, raising a message that names the reference and the side it failed on.
import type { Dialect } from "./db.ts";

export interface Reference {
  /** the constraint's (or trigger pair's) name, which errors carry */
  readonly name: string;
  readonly table: string;
  readonly column: string;
  readonly parent: string;
  /** the migration that puts it in place */
  readonly since: number;
}

const ref = (table: string, column: string, parent: string, since = 3): Reference => ({ name: `${table}_${column}_fk`, table, column, parent, since });

export const REFERENCES: readonly Reference[] = [
  ref("subnets", "network_id", "networks"),
  ref("ports", "network_id", "networks"),
  ref("ip_allocations", "port_id", "ports"),
  ref("ip_allocations", "subnet_id", "subnets"),
  ref("ip_free_ranges", "subnet_id", "subnets"),
  ref("port_security_groups", "port_id", "ports"),
  ref("port_security_groups", "security_group_id", "security_groups"),
  ref("security_group_rules", "security_group_id", "security_groups"),
  ref("security_group_rules", "remote_group_id", "security_groups"),
  ref("default_security_groups", "security_group_id", "security_groups"),
  ref("floatingips", "floating_network_id", "networks"),
  ref("floatingips", "port_id", "ports"),
  ref("floatingips", "router_id", "routers"),
  ref("trunks", "port_id", "ports"),
  ref("trunk_subports", "port_id", "ports"),
  ref("trunk_subports", "trunk_id", "trunks"),
  ref("services", "vip_port_id", "ports", 4),
];

const TRIGGER_TAG = "seam_reference";

/** What migration `version` adds of the references, in the dialect's own terms. */
export function referencesSql(dialect: Dialect, version: number): string {
  const refs = REFERENCES.filter((r) => r.since === version);
  if (dialect === "postgres") {
    return refs.map((r) => `ALTER TABLE ${r.table} ADD CONSTRAINT ${r.name} FOREIGN KEY (${r.column}) REFERENCES ${r.parent} (id);\n`).join("");
  }
  // One statement per line: a trigger's body holds a `;` that the splitter must not cut at.
  const raise = (r: Reference, side: "child" | "parent") => `SELECT RAISE(ABORT, '${TRIGGER_TAG}:${r.name}:${side}')`;
  return refs.map((r) => {
    const missing = `NEW.${r.column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${r.parent} WHERE id = NEW.${r.column})`;
    return [
      `CREATE TRIGGER ${r.name}_insert BEFORE INSERT ON ${r.table} FOR EACH ROW WHEN ${missing} BEGIN ${raise(r, "child")}; END;`,
      `CREATE TRIGGER ${r.name}_update BEFORE UPDATE OF ${r.column} ON ${r.table} FOR EACH ROW WHEN ${missing} BEGIN ${raise(r, "child")}; END;`,
      `CREATE TRIGGER ${r.name}_delete BEFORE DELETE ON ${r.parent} FOR EACH ROW WHEN EXISTS (SELECT 1 FROM ${r.table} WHERE ${r.column} = OLD.id) BEGIN ${raise(r, "parent")}; END;`,
    ].join("\n") + "\n";
  }).join("");
}

export interface Violation {
  /** a reference's name, or a unique index's */
  readonly constraint: string;
  /**
   * child: the row names a parent that is not there (it was deleted);
   * parent: the row is still named by a child; unique: a unique index refused the row
   */
  readonly side: "child" | "parent" | "unique";
  /** the missing or still-named parent's id, where the store says it */
  readonly id?: string;
}

/** What a store error says about the constraint it broke, if it is one of ours. */
export function violationOf(err: unknown): Violation | null {
  const e = err as { code?: string; constraint?: string; message?: string; detail?: string } | null;
  if (!e) return null;
  if (e.code === "23503" && e.constraint) {
    // PostgreSQL words the two sides differently: "insert or update on table ..." vs "update or delete on table ...",
    // and names the key in its detail: "Key (network_id)=(<id>) is not present in table ...".
    const id = /\)=\(([^)]*)\)/.exec(e.detail ?? "")?.[1];
    return { constraint: e.constraint, side: /^insert or update/.test(e.message ?? "") ? "child" : "parent", ...(id ? { id } : {}) };
  }
  if (e.code === "23505" && e.constraint) return { constraint: e.constraint, side: "unique" };
  const m = new RegExp(`${TRIGGER_TAG}:(\\w+):(child|parent)`).exec(e.message ?? "");
  if (m) return { constraint: m[1]!, side: m[2] as "child" | "parent" };
  return null;
}
