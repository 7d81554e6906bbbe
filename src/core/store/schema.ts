// One schema for both dialects: only types and syntax that SQLite and
// PostgreSQL read the same way (TEXT, BIGINT, partial unique indexes,
// ON CONFLICT). Resource tables keep their own attributes as JSON in `body`
// and lift out, as columns, exactly what is filtered on or must be unique.
// Derived facts (a port's fixed IPs, a network's subnets, a group's rules)
// are never copied into a body: they are read from their own table. A
// migration is one text for both, or one per dialect where they cannot agree
// (references.ts: foreign keys there, triggers here).
import type { Dialect } from "./db.ts";
import { referencesSql } from "./references.ts";

const resourceColumns = `
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL`;

// A VIP with its backends (core/service/services.ts); the VIP's address is its port's allocation.
const SERVICES = `
CREATE TABLE services (${resourceColumns},
  subnet_id TEXT NOT NULL,
  vip_port_id TEXT NOT NULL
);
CREATE INDEX services_project ON services (project_id);
CREATE UNIQUE INDEX services_vip_port ON services (vip_port_id);
`;

const COVERING_ALLOCATIONS = `
DROP INDEX ip_allocations_port;
CREATE INDEX ip_allocations_port ON ip_allocations (port_id, position, subnet_id, ip_address);
`;

// Who may see and use a network or a security group beyond its project (core/service/rbac/).
// The object is a network or a group: no foreign key can name either, so the service
// deletes an object's entries with it, under the object's lock.
const RBAC = `
CREATE TABLE rbac_policies (${resourceColumns},
  object_type TEXT NOT NULL,
  object_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target_tenant TEXT NOT NULL
);
CREATE UNIQUE INDEX rbac_policies_entry ON rbac_policies (object_type, object_id, action, target_tenant);
CREATE INDEX rbac_policies_target ON rbac_policies (object_type, target_tenant, action, object_id);
CREATE INDEX rbac_policies_project ON rbac_policies (project_id);
`;

// Subnet pools, and which pool each subnet was cut from (a pool's blocks are unique across it).
const SUBNETPOOLS = `
CREATE TABLE subnetpools (${resourceColumns},
  ip_version BIGINT NOT NULL,
  shared BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX subnetpools_project ON subnetpools (project_id);
ALTER TABLE subnets ADD COLUMN subnetpool_id TEXT;
CREATE INDEX subnets_subnetpool ON subnets (subnetpool_id);
`;

/** The entries a shared or external network had implied until now: one for everyone ("*"), as Neutron keeps them. */
const rbacBackfill = (uuid: string) =>
  ["shared:access_as_shared", "external:access_as_external"]
    .map((pair) => {
      const [column, action] = pair.split(":");
      return `INSERT INTO rbac_policies (id, project_id, name, body, revision_number, created_at, updated_at, object_type, object_id, action, target_tenant)
  SELECT ${uuid}, project_id, '', '{}', 1, created_at, created_at, 'network', id, '${action}', '*' FROM networks WHERE ${column} = 1;
`;
    })
    .join("");

const SQLITE_UUID = `lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string | Readonly<Record<Dialect, string>>;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "logical model, IPAM and change log",
    sql: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('revision', '0');

CREATE TABLE changes (
  revision BIGINT PRIMARY KEY,
  kind TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  op TEXT NOT NULL,
  project_id TEXT NOT NULL,
  object TEXT,
  at TEXT NOT NULL
);

CREATE TABLE networks (${resourceColumns},
  network_type TEXT NOT NULL,
  physical_network TEXT NOT NULL DEFAULT '',
  segmentation_id BIGINT,
  shared BIGINT NOT NULL DEFAULT 0,
  external BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX networks_project ON networks (project_id);
-- One VNI per overlay network, one VLAN per physnet, one flat network per physnet.
CREATE UNIQUE INDEX networks_segment ON networks (network_type, physical_network, segmentation_id)
  WHERE segmentation_id IS NOT NULL;

CREATE TABLE subnets (${resourceColumns},
  network_id TEXT NOT NULL,
  ip_version BIGINT NOT NULL,
  cidr TEXT NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_project ON subnets (project_id);

CREATE TABLE ports (${resourceColumns},
  network_id TEXT NOT NULL,
  mac_address TEXT NOT NULL,
  device_id TEXT NOT NULL DEFAULT '',
  device_owner TEXT NOT NULL DEFAULT '',
  binding_host_id TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX ports_network_mac ON ports (network_id, mac_address);
CREATE INDEX ports_project ON ports (project_id);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_host ON ports (binding_host_id);

-- The IPAM's truth: an address belongs to at most one port, enforced here.
CREATE TABLE ip_allocations (
  subnet_id TEXT NOT NULL,
  ip_key TEXT NOT NULL,
  ip_address TEXT NOT NULL,
  network_id TEXT NOT NULL,
  port_id TEXT NOT NULL,
  position BIGINT NOT NULL,
  PRIMARY KEY (subnet_id, ip_key)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
CREATE INDEX ip_allocations_network ON ip_allocations (network_id);
CREATE INDEX ip_allocations_address ON ip_allocations (ip_address);

-- Free space of each subnet as disjoint inclusive ranges (see ipam/ranges.ts).
CREATE TABLE ip_free_ranges (
  subnet_id TEXT NOT NULL,
  first_key TEXT NOT NULL,
  last_key TEXT NOT NULL,
  PRIMARY KEY (subnet_id, first_key)
);

CREATE TABLE routers (${resourceColumns});
CREATE INDEX routers_project ON routers (project_id);

CREATE TABLE floatingips (${resourceColumns},
  floating_network_id TEXT NOT NULL,
  floating_ip_address TEXT NOT NULL,
  port_id TEXT,
  fixed_ip_address TEXT,
  router_id TEXT
);
CREATE INDEX floatingips_project ON floatingips (project_id);
CREATE UNIQUE INDEX floatingips_fixed ON floatingips (floating_network_id, port_id, fixed_ip_address)
  WHERE port_id IS NOT NULL;

CREATE TABLE security_groups (${resourceColumns});
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE TABLE default_security_groups (project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL);

CREATE TABLE security_group_rules (${resourceColumns},
  security_group_id TEXT NOT NULL,
  rule_key TEXT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
-- Two rules that match the same packets are one rule (Neutron: SecurityGroupRuleExists).
CREATE UNIQUE INDEX security_group_rules_key ON security_group_rules (security_group_id, rule_key);

CREATE TABLE port_security_groups (
  port_id TEXT NOT NULL,
  security_group_id TEXT NOT NULL,
  PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);

CREATE TABLE trunks (${resourceColumns},
  port_id TEXT NOT NULL UNIQUE
);
CREATE INDEX trunks_project ON trunks (project_id);
CREATE TABLE trunk_subports (
  port_id TEXT PRIMARY KEY,
  trunk_id TEXT NOT NULL,
  segmentation_type TEXT NOT NULL,
  segmentation_id BIGINT NOT NULL,
  position BIGINT NOT NULL
);
CREATE UNIQUE INDEX trunk_subports_segment ON trunk_subports (trunk_id, segmentation_type, segmentation_id);

CREATE TABLE quotas (
  project_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  hard_limit BIGINT NOT NULL,
  PRIMARY KEY (project_id, resource)
);
`,
  },
  {
    version: 2,
    name: "agents",
    sql: `
-- One row per host agent. heartbeat_at is written on every report and is not
-- logged as a change (liveness is computed on read).
CREATE TABLE agents (${resourceColumns},
  host TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);
CREATE UNIQUE INDEX agents_host ON agents (host);
`,
  },
  {
    version: 3,
    name: "references enforced by the database",
    sql: {
      sqlite: `
ALTER TABLE security_group_rules ADD COLUMN remote_group_id TEXT;
UPDATE security_group_rules SET remote_group_id = json_extract(body, '$.remote_group_id');
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);
${referencesSql("sqlite", 3)}`,
      postgres: `
ALTER TABLE security_group_rules ADD COLUMN remote_group_id TEXT;
UPDATE security_group_rules SET remote_group_id = (body::json) ->> 'remote_group_id';
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);
${referencesSql("postgres", 3)}`,
    },
  },
  {
    version: 4,
    name: "services",
    sql: {
      sqlite: `${SERVICES}
${referencesSql("sqlite", 4)}`,
      postgres: `${SERVICES}
${referencesSql("postgres", 4)}`,
    },
  },
  {
    version: 5,
    name: "indexes for lists cut in SQL",
    // A page sorted by name is an index range, not a sort of every port. PostgreSQL
    // orders it in byte order ("C"), as list-sql.ts asks and SQLite does by default.
    // A page's addresses are read from the index alone (no lookup of each row).
    sql: {
      sqlite: `CREATE INDEX ports_name ON ports (name, id);
${COVERING_ALLOCATIONS}`,
      postgres: `CREATE INDEX ports_name ON ports (name COLLATE "C", id);
${COVERING_ALLOCATIONS}`,
    },
  },
  {
    version: 6,
    name: "rbac policies",
    sql: { sqlite: RBAC + rbacBackfill(SQLITE_UUID), postgres: RBAC + rbacBackfill("gen_random_uuid()::text") },
  },
  {
    version: 7,
    name: "subnet pools",
    sql: SUBNETPOOLS,
  },
];

/**
 * Splits a migration into statements for a dialect. A statement ends at a `;`
 * that ends its line, so a trigger keeps the `;` inside its body.
 */
export function statements(m: Migration, dialect: Dialect): string[] {
  const sql = typeof m.sql === "string" ? m.sql : m.sql[dialect];
  return sql
    .split(/;\s*\n/)
    .map((s) => s.replace(/^\s*--.*$/gm, "").trim())
    .filter((s) => s.length > 0);
}
