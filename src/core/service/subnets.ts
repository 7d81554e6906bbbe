// Subnets: CIDR, gateway and allocation pools, validated together; their free
// space lives in ip_free_ranges (see ipam.ts).
import { badRequest, conflict, invalidInput, invalidOperation, policyDenied } from "../errors.ts";
import { cidrContains, cidrsOverlap, formatAddress, parseAddress, parseCidr, usableRange, type Cidr } from "../../net/address.ts";
import { subnet as def } from "../model/resources.ts";
import { isOwner, standardTail } from "./common.ts";
import { syncDhcpPort } from "./dhcp-port.ts";
import { defaultPools, isAutoAddress, rebuildFreeRanges, type SubnetRec } from "./ipam.ts";
import { ROUTER_INTERFACE_OWNERS } from "../model/owners.ts";
import type { Kind, View } from "./model.ts";
import { networks } from "./networks.ts";
import { isSharedWith, ownOrShared, SHARED } from "./rbac/access.ts";
import { deleteRec, findRecs, insertRec, newRec, type Rec, updateRec } from "./repo.ts";
import { cutFromPool } from "./subnetpools.ts";
import type { RequestContext } from "../model/context.ts";
import type { Tx } from "../store/db.ts";

type Pool = { start: string; end: string };

function defaultGateway(c: Cidr): string | null {
  const u = usableRange(c);
  return u ? formatAddress({ version: c.version, value: u.first }) : null;
}

function checkGateway(c: Cidr, gateway: string | null): void {
  if (gateway === null) return;
  const a = parseAddress(gateway)!;
  const u = usableRange(c);
  if (!cidrContains(c, a) || !u || a.value < u.first || a.value > u.last) {
    throw invalidOperation(`Gateway is not valid on subnet`);
  }
}

/** Pools inside the subnet's usable range, ordered, disjoint, and clear of the gateway. */
function checkPools(c: Cidr, pools: Pool[], gateway: string | null): void {
  const u = usableRange(c);
  const parsed = pools.map((p) => {
    const s = parseAddress(p.start)!;
    const e = parseAddress(p.end)!;
    if (s.version !== c.version || e.version !== c.version) throw badRequest(`Invalid input for allocation_pools. Reason: IP version of pool ${p.start}-${p.end} does not match the subnet.`);
    if (s.value > e.value) throw badRequest(`The allocation pool ${p.start}-${p.end} spans beyond the subnet cidr ${formatCidrText(c)}.`, "InvalidAllocationPool");
    if (!u || s.value < u.first || e.value > u.last) {
      throw badRequest(`The allocation pool ${p.start}-${p.end} spans beyond the subnet cidr ${formatCidrText(c)}.`, "OutOfBoundsAllocationPool");
    }
    return { s: s.value, e: e.value, p };
  });
  parsed.sort((a, b) => (a.s < b.s ? -1 : 1));
  for (let i = 1; i < parsed.length; i++) {
    if (parsed[i]!.s <= parsed[i - 1]!.e) {
      throw badRequest(`Found overlapping allocation pools: ${parsed[i - 1]!.p.start}-${parsed[i - 1]!.p.end} and ${parsed[i]!.p.start}-${parsed[i]!.p.end}`, "OverlappingAllocationPools");
    }
  }
  if (gateway !== null) {
    const g = parseAddress(gateway)!.value;
    const hit = parsed.find((x) => x.s <= g && g <= x.e);
    if (hit) throw conflict("GatewayConflictWithAllocationPools", `Gateway ip ${gateway} conflicts with allocation pool ${hit.p.start}-${hit.p.end}`);
  }
}

const inRange = (c: Cidr, base: string) => {
  const b = parseCidr(base)!;
  return b.version === c.version && c.prefixLen >= b.prefixLen && cidrContains(b, { version: c.version, value: c.network });
};

/**
 * Neutron's checks of a subnet's shape against its DHCP and IPv6 modes:
 * DHCP needs room for a server and a client (no /31, /32, /127, /128) and a
 * unicast range; SLAAC and stateless DHCPv6 build addresses from EUI-64, which
 * takes a /64; both modes, when set, must agree.
 */
function checkShape(c: Cidr, enableDhcp: boolean, raMode: unknown, addressMode: unknown): void {
  const text = formatCidrText(c);
  if (c.prefixLen === 0) throw badRequest(`Invalid input for operation: ${text} is not allowed as a subnet's CIDR.`);
  if (enableDhcp) {
    if (c.prefixLen >= (c.version === 4 ? 31 : 127)) throw badRequest("Invalid input for operation: Subnet has a prefix length that is incompatible with DHCP service enabled.");
    if (inRange(c, c.version === 4 ? "224.0.0.0/4" : "ff00::/8")) throw badRequest("Invalid input for operation: Multicast IP subnet is not supported if enable_dhcp is True.");
    if (inRange(c, c.version === 4 ? "127.0.0.0/8" : "::1/128")) throw badRequest("Invalid input for operation: Loopback IP subnet is not supported if enable_dhcp is True.");
  }
  if (raMode && addressMode && raMode !== addressMode) {
    throw badRequest(`Invalid input for operation: ipv6_ra_mode set to '${raMode}' with ipv6_address_mode set to '${addressMode}' is not valid. If both attributes are set, they must be the same value.`);
  }
  if ((addressMode === "slaac" || addressMode === "dhcpv6-stateless") && c.prefixLen !== 64) {
    throw badRequest(`Invalid input for operation: Invalid CIDR ${text} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64.`);
  }
}

const formatCidrText = (c: Cidr) => `${formatAddress({ version: c.version, value: c.network })}/${c.prefixLen}`;

function checkRoutesAndDns(version: number, input: Record<string, unknown>): void {
  for (const r of (input.host_routes as { destination: string; nexthop: string }[] | undefined) ?? []) {
    if (parseCidr(r.destination)!.version !== version || parseAddress(r.nexthop)!.version !== version) {
      throw badRequest(`Invalid input for host_routes. Reason: route ${r.destination} via ${r.nexthop} does not match IP version ${version}.`);
    }
  }
}

/** The pool an admin marked default for the family, visible to the caller (use_default_subnetpool). */
async function defaultPool(tx: Tx, ctx: RequestContext, version: number | undefined): Promise<string> {
  const v = version ?? 4;
  const pools = (await findRecs(tx, "subnetpools", { ip_version: [v] })).filter((p) => p.is_default === true && (p.shared === true || isOwner(ctx, p)));
  if (!pools.length) throw badRequest(`Bad subnets request: no default subnet pool for IPv${v}.`);
  return pools[0]!.id;
}

export const subnets: Kind = {
  def,
  // Neutron's get_subnet: admin, owner, or a network shared with the caller. An external network
  // is visible to those it is shared with as external, its subnets are not (a floating IP or a
  // gateway names the network).
  scope: (ctx) => ownOrShared(ctx, "network", "network_id", [SHARED]),

  async hydrate(_m, _q, recs) {
    return recs.map((r): View => ({
      id: r.id,
      name: r.name,
      description: r.description ?? "",
      project_id: r.project_id,
      network_id: r.network_id,
      ip_version: r.ip_version,
      cidr: r.cidr,
      gateway_ip: r.gateway_ip ?? null,
      allocation_pools: r.allocation_pools,
      dns_nameservers: r.dns_nameservers ?? [],
      host_routes: r.host_routes ?? [],
      enable_dhcp: r.enable_dhcp,
      ipv6_ra_mode: r.ipv6_ra_mode ?? null,
      ipv6_address_mode: r.ipv6_address_mode ?? null,
      service_types: r.service_types ?? [],
      subnetpool_id: r.subnetpool_id ?? null,
      segment_id: null,
      ...standardTail(r),
    }));
  },

  async canSee(_m, q, rec, ctx) {
    return ctx.isAdmin || rec.project_id === ctx.projectId || isSharedWith(q, "network", rec.network_id as string, ctx.projectId, [SHARED]);
  },

  async create(m, tx, ctx, input) {
    const net = await m.referenced(tx, networks, ctx, input.network_id as string);
    if (!isOwner(ctx, net)) throw policyDenied("create_subnet");
    const { prefixlen, use_default_subnetpool: useDefault, ...fields } = input;
    input = fields;
    if (useDefault === true && input.subnetpool_id == null) {
      input.subnetpool_id = await defaultPool(tx, ctx, input.ip_version as number | undefined);
    }
    if (input.subnetpool_id != null) {
      const cut = await cutFromPool(m, tx, ctx, input.subnetpool_id as string, { cidr: input.cidr as string | undefined, prefixlen: prefixlen as number | undefined });
      if (input.ip_version !== undefined && input.ip_version !== cut.version) {
        throw badRequest(`Invalid input for operation: subnet pool ${input.subnetpool_id} is IPv${cut.version}, ip_version ${input.ip_version} was asked.`);
      }
      input.cidr = cut.cidr;
    } else if (input.cidr === undefined) {
      throw badRequest("Bad subnets request: a subnetpool must be specified in the absence of a cidr.");
    } else if (prefixlen !== undefined) {
      throw badRequest("Bad subnets request: prefixlen is only taken with a subnetpool_id.");
    }
    const c = parseCidr(input.cidr)!;
    const version = (input.ip_version as number | undefined) ?? c.version;
    if (version !== 4 && version !== 6) throw invalidInput("ip_version", `'${version}' is not in [4, 6]`);
    if (version !== c.version) throw badRequest(`Invalid input for operation: Cidr ${input.cidr} does not match ip_version ${version}.`);
    if (version === 4 && (input.ipv6_ra_mode || input.ipv6_address_mode)) {
      throw invalidOperation("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4");
    }
    checkShape(c, input.enable_dhcp !== false, input.ipv6_ra_mode, input.ipv6_address_mode);
    const gateway = input.gateway_ip === undefined ? defaultGateway(c) : (input.gateway_ip as string | null);
    checkGateway(c, gateway);
    const pools = (input.allocation_pools as Pool[] | undefined) ?? defaultPools(c, gateway);
    checkPools(c, pools, gateway);
    checkRoutesAndDns(version, input);
    for (const other of await findRecs(tx, def.table, { network_id: [net.id] })) {
      if (cidrsOverlap(c, parseCidr(other.cidr)!)) {
        throw invalidOperation(`Requested subnet with cidr: ${input.cidr} for network: ${net.id} overlaps with another subnet`);
      }
    }
    const rec = newRec(input, { ip_version: version, gateway_ip: gateway, allocation_pools: pools, project_id: input.project_id }) as SubnetRec;
    await insertRec(tx, def.table, rec);
    await rebuildFreeRanges(tx, rec);
    await m.touch(tx, "network", net.id);
    if (rec.enable_dhcp !== false) await syncDhcpPort(m, tx, net.id);
    return rec;
  },

  async update(m, tx, _ctx, rec, input) {
    const s = rec as SubnetRec;
    // Exclusive: the gateway's holder and the free ranges must not move under the ports being made.
    await tx.lock(`network:${s.network_id}`);
    const c = parseCidr(s.cidr)!;
    if (input.enable_dhcp === true && !rec.enable_dhcp) checkShape(c, true, null, null);
    const gateway = input.gateway_ip === undefined ? s.gateway_ip : (input.gateway_ip as string | null);
    checkGateway(c, gateway);
    if (input.gateway_ip !== undefined && gateway !== null && gateway !== s.gateway_ip) {
      const holder = await tx.get<{ port_id: string }>("SELECT port_id FROM ip_allocations WHERE subnet_id = ? AND ip_address = ?", [s.id, gateway]);
      if (holder) throw conflict("GatewayIpInUse", `Current gateway ip ${gateway} already in use by port ${holder.port_id}. Unable to update.`);
    }
    const pools = (input.allocation_pools as Pool[] | undefined) ?? s.allocation_pools;
    checkPools(c, pools, gateway);
    checkRoutesAndDns(s.ip_version, input);
    const next = await updateRec(tx, def.table, { ...s, ...input, gateway_ip: gateway, allocation_pools: pools } as Rec);
    if (input.allocation_pools !== undefined || input.gateway_ip !== undefined) await rebuildFreeRanges(tx, next as SubnetRec);
    if (input.enable_dhcp !== undefined && input.enable_dhcp !== rec.enable_dhcp) await syncDhcpPort(m, tx, s.network_id);
    return next;
  },

  async remove(m, tx, _ctx, rec) {
    await tx.lock(`network:${rec.network_id}`);
    // An address a SLAAC subnet gave is the host's own EUI-64 one: Neutron takes it off the ports with the subnet.
    // A router interface on the subnet still holds it up, as on any subnet.
    const auto = isAutoAddress(rec as SubnetRec);
    const held = auto ? [...ROUTER_INTERFACE_OWNERS] : ["network:dhcp"];
    const used = await tx.get<{ port_id: string }>(
      `SELECT a.port_id FROM ip_allocations a JOIN ports p ON p.id = a.port_id
        WHERE a.subnet_id = ? AND p.device_owner ${auto ? "IN" : "NOT IN"} (${held.map(() => "?").join(", ")}) LIMIT 1`,
      [rec.id, ...held],
    );
    if (used) {
      throw conflict("SubnetInUse", `Unable to complete operation on subnet ${rec.id}: One or more ports have an IP allocation from this subnet.`);
    }
    const holders = await tx.all<{ port_id: string }>("SELECT port_id FROM ip_allocations WHERE subnet_id = ?", [rec.id]);
    await tx.run("DELETE FROM ip_allocations WHERE subnet_id = ?", [rec.id]);
    await tx.run("DELETE FROM ip_free_ranges WHERE subnet_id = ?", [rec.id]);
    await deleteRec(tx, def.table, rec.id);
    for (const h of holders) await m.touch(tx, "port", h.port_id);
    await m.touch(tx, "network", rec.network_id as string);
    await syncDhcpPort(m, tx, rec.network_id as string);
  },
};
