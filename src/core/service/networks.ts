// Networks and their segment: the VNI of an overlay network (allocated from
// the configured range, unique by index), the physnet of a flat network, or a
// VLAN where the deployment has VLAN ranges. Nothing else carries a VNI.
import { conflict, invalidOperation, NeutronError } from "../errors.ts";
import { network as def } from "../model/resources.ts";
import type { Tx } from "../store/db.ts";
import { isUniqueViolation } from "../store/db.ts";
import { groupBy, rowsFor, standardTail } from "./common.ts";
import { oneOf, sql } from "./list-sql.ts";
import { dependents, EVERYONE, EXTERNAL, grant, isSharedWith, ownOrShared, revoke, SHARED, sharedToCaller, sharedWithSql } from "./rbac/access.ts";
import type { Kind, Model, View } from "./model.ts";
import { deleteRec, findRecs, insertRec, newRec, type Rec, updateRec } from "./repo.ts";

const VXLAN_OVERHEAD = 50; // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

export function maxMtu(m: Model, type: string): number {
  return type === "vxlan" ? m.config.physnetMtu - VXLAN_OVERHEAD : m.config.physnetMtu;
}

async function allocateVni(tx: Tx, m: Model): Promise<number> {
  const [lo, hi] = m.config.vniRange;
  await tx.lock("segments:vxlan");
  const taken = await tx.get("SELECT 1 AS x FROM networks WHERE network_type = 'vxlan' AND segmentation_id = ?", [lo]);
  if (!taken) return lo;
  const row = await tx.get<{ n: number | null }>(
    `SELECT MIN(a.segmentation_id) + 1 AS n FROM networks a
      WHERE a.network_type = 'vxlan' AND a.segmentation_id >= ? AND a.segmentation_id < ?
        AND NOT EXISTS (SELECT 1 FROM networks b WHERE b.network_type = 'vxlan' AND b.segmentation_id = a.segmentation_id + 1)`,
    [lo, hi],
  );
  if (row?.n === null || row?.n === undefined || Number(row.n) > hi) {
    throw new NeutronError(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.");
  }
  return Number(row.n);
}

async function allocateVlan(tx: Tx, physnet: string, range: readonly [number, number]): Promise<number> {
  await tx.lock(`segments:vlan:${physnet}`);
  const used = new Set(
    (await tx.all<{ s: number }>("SELECT segmentation_id AS s FROM networks WHERE network_type = 'vlan' AND physical_network = ?", [physnet])).map((r) => Number(r.s)),
  );
  for (let s = range[0]; s <= range[1]; s++) if (!used.has(s)) return s;
  throw new NeutronError(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.");
}

/** Resolves provider attributes into a segment, allocating what was not given. */
async function segmentFor(tx: Tx, m: Model, input: Record<string, unknown>) {
  const type = (input["provider:network_type"] as string | undefined) ?? undefined;
  const physnet = (input["provider:physical_network"] as string | null | undefined) ?? null;
  const seg = (input["provider:segmentation_id"] as number | null | undefined) ?? null;
  if (type === undefined && (physnet !== null || seg !== null)) {
    throw invalidOperation("provider:network_type required");
  }
  const t = type ?? m.config.tenantNetworkType;
  switch (t) {
    case "vxlan": {
      if (physnet !== null) throw invalidOperation("provider:physical_network specified for vxlan network");
      if (seg !== null && (seg < 1 || seg > 16777215)) throw invalidOperation(`VXLAN segmentation_id ${seg} out of range 1 through 16777215`);
      return { type: t, physnet: null, seg: seg ?? (await allocateVni(tx, m)) };
    }
    case "flat": {
      if (physnet === null) throw invalidOperation("physical_network required for flat provider network");
      if (seg !== null) throw invalidOperation("segmentation_id specified for flat provider network");
      const allowed = m.config.flatNetworks;
      if (allowed !== "*" && !allowed.includes(physnet)) throw invalidOperation(`physical_network '${physnet}' unknown for flat provider network`);
      // 0 stands for "the whole physnet" so the segment index also makes flat networks unique per physnet.
      return { type: t, physnet, seg: 0 };
    }
    case "vlan": {
      const ranges = m.config.vlanRanges;
      if (Object.keys(ranges).length === 0) {
        throw invalidOperation("network_type value 'vlan' not supported: this deployment has no VLAN ranges (no 802.1Q devices on this kernel)");
      }
      const p = physnet ?? Object.keys(ranges)[0]!;
      const range = ranges[p];
      if (!range) throw invalidOperation(`physical_network '${p}' unknown for VLAN provider network`);
      if (seg !== null && (seg < 1 || seg > 4094)) throw invalidOperation(`segmentation_id out of range (1 through 4094)`);
      return { type: t, physnet: p, seg: seg ?? (await allocateVlan(tx, p, range)) };
    }
    case "local": {
      if (physnet !== null || seg !== null) throw invalidOperation("provider:physical_network and provider:segmentation_id must not be set for local network");
      return { type: t, physnet: null, seg: null };
    }
    default:
      throw invalidOperation(`network_type value '${t}' not supported (available: vxlan, flat, local${Object.keys(m.config.vlanRanges).length ? ", vlan" : ""})`);
  }
}

function segmentConflict(type: string, physnet: string | null, seg: number | null): NeutronError {
  if (type === "flat") return conflict("FlatNetworkInUse", `Unable to create the flat network. Physical network ${physnet} is in use.`);
  if (type === "vlan") return conflict("VlanIdInUse", `Unable to create the network. The VLAN ${seg} on physical network ${physnet} is in use.`);
  return conflict("TunnelIdInUse", `Unable to create the network. The tunnel ID ${seg} is in use.`);
}

export const networks: Kind = {
  def,
  // Its project's, and those an entry shares with it or everyone, as shared or as external.
  scope: (ctx) => ownOrShared(ctx, "network"),

  // `shared` is "shared with the caller" (Neutron): the column says only "with everyone".
  ownFilters: new Set(["shared"]),

  narrow(query, _dialect, ctx) {
    const out = [];
    const subnets = query.filters.get("subnets");
    if (subnets) {
      const w = oneOf("id", subnets as string[]);
      out.push(sql(`id IN (SELECT network_id FROM subnets WHERE ${w.sql})`, w.params));
    }
    const shared = query.filters.get("shared");
    if (shared?.length === 1) {
      const w = sharedWithSql("id", "network", ctx.projectId, [SHARED]);
      out.push(shared[0] ? w : sql(`NOT (${w.sql})`, w.params));
    }
    return out;
  },

  async hydrate(_m, q, recs) {
    const subnets = await rowsFor<{ id: string; network_id: string }>(q, "SELECT id, network_id FROM subnets", "network_id", recs.map((r) => r.id));
    const byNet = groupBy(subnets, (s) => s.network_id);
    return recs.map((r): View => ({
      id: r.id,
      name: r.name,
      description: r.description ?? "",
      project_id: r.project_id,
      admin_state_up: r.admin_state_up,
      status: "ACTIVE",
      subnets: (byNet.get(r.id) ?? []).map((s) => s.id).sort(),
      shared: r.shared,
      "router:external": r["router:external"],
      "provider:network_type": r["provider:network_type"],
      "provider:physical_network": r["provider:physical_network"] || null,
      "provider:segmentation_id": r["provider:network_type"] === "flat" ? null : r["provider:segmentation_id"],
      mtu: r.mtu,
      dns_domain: r.dns_domain ?? "",
      port_security_enabled: r.port_security_enabled,
      availability_zone_hints: r.availability_zone_hints ?? [],
      availability_zones: [],
      ipv4_address_scope: null,
      ipv6_address_scope: null,
      l2_adjacency: true,
      is_default: false,
      ...standardTail(r),
    }));
  },

  forCaller: (_m, q, views, ctx) => sharedToCaller(q, "network", views, ctx),

  async canSee(_m, q, rec, ctx) {
    return ctx.isAdmin || rec.project_id === ctx.projectId || isSharedWith(q, "network", rec.id, ctx.projectId);
  },

  async create(m, tx, _ctx, input) {
    const seg = await segmentFor(tx, m, input);
    const limit = maxMtu(m, seg.type);
    const mtu = (input.mtu as number | undefined) ?? limit;
    if (mtu > limit) throw invalidOperation(`Requested MTU is too big, maximum is ${limit}`);
    const rec = newRec(input, {
      "provider:network_type": seg.type,
      // '' rather than NULL: NULLs never collide in a unique index, and the segment index must.
      "provider:physical_network": seg.physnet ?? "",
      "provider:segmentation_id": seg.seg,
      mtu,
    });
    try {
      await insertRec(tx, def.table, rec);
    } catch (err) {
      if (isUniqueViolation(err)) throw segmentConflict(seg.type, seg.physnet, seg.seg);
      throw err;
    }
    if (rec.shared) await grant(tx, "network", rec.id, rec.project_id, SHARED);
    if (rec["router:external"]) await grant(tx, "network", rec.id, rec.project_id, EXTERNAL);
    await m.ensureDefaultSecurityGroup(tx, rec.project_id);
    return rec;
  },

  async update(m, tx, _ctx, rec, input) {
    if (input.mtu !== undefined && (input.mtu as number) > maxMtu(m, rec["provider:network_type"] as string)) {
      throw invalidOperation(`Requested MTU is too big, maximum is ${maxMtu(m, rec["provider:network_type"] as string)}`);
    }
    await shareAsAsked(tx, rec, input);
    // A port's dns_assignment is in its network's domain: a new domain renames every port of it.
    if (input.dns_domain !== undefined && input.dns_domain !== rec.dns_domain) {
      for (const p of await tx.all<{ id: string }>("SELECT id FROM ports WHERE network_id = ?", [rec.id])) await m.touch(tx, "port", p.id);
    }
    return updateRec(tx, def.table, { ...rec, ...input });
  },

  async remove(m, tx, ctx, rec) {
    await tx.lock(`network:${rec.id}`);
    // Neutron's L3 deletes an external network's floating IPs with it; a router's gateway still holds it up.
    const fipKind = m.kindOf("floatingip");
    for (const fip of await findRecs(tx, "floatingips", { floating_network_id: [rec.id] })) {
      await fipKind.remove!(m, tx, ctx, fip);
      m.deleted(tx, fipKind, fip);
    }
    const inUse = await tx.get("SELECT id FROM ports WHERE network_id = ? AND device_owner <> 'network:dhcp' LIMIT 1", [rec.id]);
    if (inUse) {
      throw conflict("NetworkInUse", `Unable to complete operation on network ${rec.id}. There are one or more ports still in use on the network.`);
    }
    for (const p of await findRecs(tx, "ports", { network_id: [rec.id] })) await m.hooks.deletePort(tx, p);
    for (const s of await findRecs(tx, "subnets", { network_id: [rec.id] })) {
      await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ?", [s.id]);
      await deleteRec(tx, "subnets", s.id);
      m.deleted(tx, m.kindOf("subnet"), s);
    }
    await revoke(tx, "network", rec.id);
    await deleteRec(tx, def.table, rec.id);
  },
};

/** `shared` and `router:external` on an update are entries for everyone, added or removed (Neutron keeps them so). */
async function shareAsAsked(tx: Tx, rec: Rec, input: Record<string, unknown>): Promise<void> {
  const everyone = (action: string) => ({ object_type: "network" as const, object_id: rec.id, action, target_tenant: EVERYONE });
  if (input.shared === true && !rec.shared) await grant(tx, "network", rec.id, rec.project_id, SHARED);
  if (input.shared === false && rec.shared) {
    if ((await dependents(tx, everyone(SHARED), rec.project_id)).length) {
      throw conflict("InvalidSharedSetting", `Unable to reconfigure sharing settings for network ${rec.id}. Multiple tenants are using it.`);
    }
    await revoke(tx, "network", rec.id, { action: SHARED, target: EVERYONE });
  }
  if (input["router:external"] === true && !rec["router:external"]) await grant(tx, "network", rec.id, rec.project_id, EXTERNAL);
  if (input["router:external"] === false && rec["router:external"]) {
    const gateway = await tx.get("SELECT 1 AS x FROM ports WHERE network_id = ? AND device_owner = 'network:router_gateway' LIMIT 1", [rec.id]);
    if (gateway) throw conflict("ExternalNetworkInUse", `External network ${rec.id} cannot be updated to be made non-external, since it has existing gateway ports.`);
    await revoke(tx, "network", rec.id, { action: EXTERNAL });
  }
}
