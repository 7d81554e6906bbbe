// A port list's filters on what is not in the ports table: its addresses
// (`fixed_ips=ip_address=…`, `subnet_id=…`, `ip_address_substr=…`, all on one
// allocation, as query.ts matches them) and its security groups.
import { canonicalAddress } from "../../net/address.ts";
import type { ListQuery } from "../model/query.ts";
import type { Dialect } from "../store/db.ts";
import { and, oneOf, type Sql, sql } from "./list-sql.ts";

export function portNarrowings(query: ListQuery, dialect: Dialect): Sql[] {
  const out: Sql[] = [];
  const f = query.fixedIps;
  if (f) {
    const on: Sql[] = [];
    if (f.ip_address.length) on.push(oneOf("ip_address", [...new Set(f.ip_address.flatMap((a) => [a, canonicalAddress(a) ?? a]))]));
    if (f.subnet_id.length) on.push(oneOf("subnet_id", f.subnet_id));
    if (f.ip_address_substr.length) {
      const has = dialect === "postgres" ? "strpos(ip_address, ?) > 0" : "instr(ip_address, ?) > 0";
      on.push(sql(f.ip_address_substr.map(() => has).join(" OR "), f.ip_address_substr));
    }
    const w = and(on);
    out.push(sql(`id IN (SELECT port_id FROM ip_allocations WHERE ${w.sql})`, w.params));
  }
  const groups = query.filters.get("security_groups");
  if (groups) {
    const w = oneOf("security_group_id", groups as string[]);
    out.push(sql(`id IN (SELECT port_id FROM port_security_groups WHERE ${w.sql})`, w.params));
  }
  return out;
}
