// Rows <-> records for the resource tables. A record is the resource's own
// attributes (standard ones, lifted columns and the JSON body merged), not yet
// the view: derived attributes are added by each resource's hydrate step.
import type { Param, Queryable, Tx } from "../store/db.ts";

export type Rec = Record<string, unknown> & {
  id: string;
  project_id: string;
  name: string;
  revision_number: number;
  created_at: string;
  updated_at: string;
};

type ColumnKind = "text" | "int" | "bool";
interface ColumnMap {
  readonly attr: string;
  readonly column: string;
  readonly kind: ColumnKind;
  /** the column may hold NULL (schema.ts) */
  readonly nullable: boolean;
}

const col = (attr: string, column = attr, kind: ColumnKind = "text", nullable = false): ColumnMap => ({ attr, column, kind, nullable });
const nullable = (attr: string, column = attr, kind: ColumnKind = "text"): ColumnMap => col(attr, column, kind, true);

/** The attributes each table lifts out of `body` (see store/schema.ts). */
export const TABLE_COLUMNS: Readonly<Record<string, readonly ColumnMap[]>> = {
  networks: [
    col("provider:network_type", "network_type"),
    col("provider:physical_network", "physical_network"),
    nullable("provider:segmentation_id", "segmentation_id", "int"),
    col("shared", "shared", "bool"),
    col("router:external", "external", "bool"),
  ],
  subnets: [col("network_id"), col("ip_version", "ip_version", "int"), col("cidr"), nullable("subnetpool_id")],
  subnetpools: [col("ip_version", "ip_version", "int"), col("shared", "shared", "bool")],
  ports: [col("network_id"), col("mac_address"), col("device_id"), col("device_owner"), col("binding:host_id", "binding_host_id")],
  routers: [],
  floatingips: [col("floating_network_id"), col("floating_ip_address"), nullable("port_id"), nullable("fixed_ip_address"), nullable("router_id")],
  security_groups: [],
  security_group_rules: [col("security_group_id"), col("rule_key"), nullable("remote_group_id")],
  trunks: [col("port_id")],
  agents: [col("host"), col("heartbeat_at")],
  services: [col("subnet_id"), col("vip_port_id")],
  rbac_policies: [col("object_type"), col("object_id"), col("action"), col("target_tenant")],
};

/** The columns every resource table has (schema.ts: resourceColumns), all NOT NULL. */
export const STANDARD_COLUMNS = ["id", "project_id", "name", "revision_number", "created_at", "updated_at"] as const;
const STANDARD: readonly string[] = STANDARD_COLUMNS;

/** Neutron's timestamp format: seconds, Z. */
export const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

export function fromRow(table: string, row: Record<string, unknown>): Rec {
  const rec: Record<string, unknown> = JSON.parse(row.body as string);
  for (const k of STANDARD) rec[k] = row[k];
  rec.revision_number = Number(row.revision_number);
  for (const c of TABLE_COLUMNS[table] ?? []) {
    const v = row[c.column];
    rec[c.attr] = v === null || v === undefined ? null : c.kind === "bool" ? Number(v) === 1 : c.kind === "int" ? Number(v) : v;
  }
  return rec as Rec;
}

function split(table: string, rec: Record<string, unknown>) {
  const body: Record<string, unknown> = {};
  const lifted = new Set([...STANDARD, ...(TABLE_COLUMNS[table] ?? []).map((c) => c.attr), "tenant_id", "rule_key"]);
  for (const [k, v] of Object.entries(rec)) if (!lifted.has(k)) body[k] = v;
  const cols = (TABLE_COLUMNS[table] ?? []).map((c) => {
    const v = rec[c.attr];
    if (v === undefined || v === null) return null;
    return (c.kind === "bool" ? (v ? 1 : 0) : v) as Param;
  });
  return { body: JSON.stringify(body), cols };
}

/** Inserts a record; with `ifUnique`, a row a unique index refuses is skipped (false) rather than an error. */
export async function insertRec(tx: Tx, table: string, rec: Rec, ifUnique = false): Promise<boolean> {
  const columns = TABLE_COLUMNS[table] ?? [];
  const { body, cols } = split(table, rec);
  const names = [...STANDARD, "body", ...columns.map((c) => c.column)];
  const values: Param[] = [rec.id, rec.project_id, rec.name ?? "", rec.revision_number, rec.created_at, rec.updated_at, body, ...cols];
  const sql = `INSERT INTO ${table} (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})${ifUnique ? " ON CONFLICT DO NOTHING" : ""}`;
  return (await tx.run(sql, values)) > 0;
}

/** Writes `rec` back with the next revision number and a fresh updated_at; returns the stored record. */
export async function updateRec(tx: Tx, table: string, rec: Rec): Promise<Rec> {
  const next: Rec = { ...rec, revision_number: rec.revision_number + 1, updated_at: now() };
  const columns = TABLE_COLUMNS[table] ?? [];
  const { body, cols } = split(table, next);
  const sets = ["name = ?", "body = ?", "revision_number = ?", "updated_at = ?", ...columns.map((c) => `${c.column} = ?`)];
  await tx.run(`UPDATE ${table} SET ${sets.join(", ")} WHERE id = ?`, [next.name ?? "", body, next.revision_number, next.updated_at, ...cols, next.id]);
  return next;
}

export async function deleteRec(tx: Tx, table: string, id: string): Promise<void> {
  await tx.run(`DELETE FROM ${table} WHERE id = ?`, [id]);
}

export async function getRec(q: Queryable, table: string, id: string): Promise<Rec | undefined> {
  const row = await q.get<Record<string, unknown>>(`SELECT * FROM ${table} WHERE id = ?`, [id]);
  return row ? fromRow(table, row) : undefined;
}

/** Rows where each given column is one of the given values (an empty list matches nothing). */
export async function findRecs(q: Queryable, table: string, where: Record<string, readonly Param[]> = {}): Promise<Rec[]> {
  const clauses: string[] = [];
  const params: Param[] = [];
  for (const [column, values] of Object.entries(where)) {
    if (values.length === 0) return [];
    if (values.length === 1) {
      clauses.push(`${column} = ?`);
      params.push(values[0]!);
    } else {
      clauses.push(`${column} IN (${values.map(() => "?").join(", ")})`);
      params.push(...values);
    }
  }
  const sql = `SELECT * FROM ${table}${clauses.length ? ` WHERE ${clauses.join(" AND ")}` : ""}`;
  return (await q.all<Record<string, unknown>>(sql, params)).map((r) => fromRow(table, r));
}

export function newRec(input: Record<string, unknown>, extra: Record<string, unknown> = {}): Rec {
  const t = now();
  const rec = { ...input, ...extra, id: (extra.id as string) ?? crypto.randomUUID(), revision_number: 1, created_at: t, updated_at: t };
  delete (rec as Record<string, unknown>).tenant_id;
  return rec as Rec;
}
