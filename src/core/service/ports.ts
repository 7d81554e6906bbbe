// Ports: the one object VMs (compute:nova), pods (compute:kubernetes),
// routers and floating IPs all attach through. A port's addresses come from
// the IPAM in the same transaction as the port row, and are released in the
// same transaction as its deletion, so a crash can leave neither an address
// without a port nor a port without its address.
import { randomBytes } from "node:crypto";
import { badRequest, conflict, NeutronError, policyDenied } from "../errors.ts";
import { cidrContains, eui64Address, formatAddress, parseAddress, parseCidr } from "../../net/address.ts";
import { port as def } from "../model/resources.ts";
import type { Queryable, Tx } from "../store/db.ts";
import { isNetworkOwner, L3_OWNERS, OWNER, ROUTER_INTERFACE_OWNERS } from "../model/owners.ts";
import { isAlive } from "./agents.ts";
import { canSeeOwn, groupBy, isOwner, scopeOwn, rowsFor, standardTail } from "./common.ts";
import { allocateAddress, allocateNext, isAutoAddress, release, type SubnetRec } from "./ipam.ts";
import { checkAddressPairs, checkAttach, checkNetworkOwnerOnly, checkRouterDevice, checkSecurityGroups } from "./port-policy.ts";
import type { Kind, Model, View } from "./model.ts";
import { portNarrowings } from "./port-filters.ts";
import { networks } from "./networks.ts";
import { deleteRec, findRecs, getRec, insertRec, newRec, type Rec, updateRec } from "./repo.ts";

export const MAC_PREFIX = "fa:16:3e";

function randomMac(): string {
  const b = randomBytes(3);
  return `${MAC_PREFIX}:${[...b].map((x) => x.toString(16).padStart(2, "0")).join(":")}`;
}

type FixedIpRequest = { subnet_id?: string; ip_address?: string };
type Allocation = { subnet_id: string; ip_address: string };

async function macInUse(tx: Tx, networkId: string, mac: string): Promise<boolean> {
  return Boolean(await tx.get("SELECT 1 AS x FROM ports WHERE network_id = ? AND mac_address = ?", [networkId, mac]));
}

/**
 * Inserts a new port row with a random MAC, drawing again when the network's
 * MAC index refuses it: the index is the check, so it holds between two
 * creates in flight at once, and costs no look-up first.
 */
async function insertWithRandomMac(tx: Tx, rec: Rec): Promise<Rec> {
  for (let i = 0; i < 32; i++) {
    const withMac = { ...rec, mac_address: randomMac() };
    if (await insertRec(tx, def.table, withMac, true)) return withMac;
  }
  throw new NeutronError(503, "MacAddressGenerationFailure", `Unable to generate unique mac on network ${rec.network_id}.`);
}

const exhausted = (networkId: string) => conflict("IpAddressGenerationFailure", `No more IP addresses available on network ${networkId}.`);

/**
 * Allocates the requested fixed IPs (or, when none were requested, one
 * address of each IP version the network has) for a port. `keep` are the
 * port's current allocations that satisfy a request and are not touched.
 */
async function allocateFixedIps(
  tx: Tx,
  networkId: string,
  portId: string,
  mac: string,
  deviceOwner: string,
  requested: FixedIpRequest[] | undefined,
  keep: Allocation[],
): Promise<void> {
  const subnets = (await findRecs(tx, "subnets", { network_id: [networkId] })) as SubnetRec[];
  subnets.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  const byId = new Map(subnets.map((s) => [s.id, s]));
  let position = keep.length;
  const mayUseGateway = ROUTER_INTERFACE_OWNERS.has(deviceOwner);
  if (requested === undefined) {
    for (const version of [4, 6]) {
      const candidates = subnets.filter((s) => s.ip_version === version);
      if (candidates.length === 0) continue;
      // As Neutron: an address on every SLAAC subnet (the host forms it anyway), and one from a stateful subnet if there is one.
      const slaac = candidates.filter(isAutoAddress);
      for (const s of slaac) await allocateAddress(tx, s, formatAddress({ version: 6, value: eui64Address(parseCidr(s.cidr)!, mac) }), portId, position++, false);
      const stateful = candidates.filter((s) => !isAutoAddress(s));
      if (stateful.length === 0) continue;
      let got = slaac.length > 0;
      for (const s of stateful) {
        if ((await allocateNext(tx, s, portId, position)) !== null) {
          position++;
          got = true;
          break;
        }
      }
      if (!got) throw exhausted(networkId);
    }
    return;
  }
  for (const req of requested) {
    if (req.subnet_id !== undefined && !byId.has(req.subnet_id)) {
      throw badRequest(`Invalid input for operation: Failed to create port on network ${networkId}, because fixed_ips included invalid subnet ${req.subnet_id}.`);
    }
    if (req.ip_address !== undefined) {
      const a = parseAddress(req.ip_address)!;
      const s = req.subnet_id !== undefined ? byId.get(req.subnet_id)! : subnets.find((x) => cidrContains(parseCidr(x.cidr)!, a));
      if (!s || !cidrContains(parseCidr(s.cidr)!, a)) {
        throw badRequest(`Invalid input for operation: IP address ${req.ip_address} is not a valid IP for any of the subnets on the specified network.`);
      }
      await allocateAddress(tx, s, req.ip_address, portId, position++, mayUseGateway);
    } else {
      const s = byId.get(req.subnet_id!);
      if (!s) throw badRequest("Invalid input for fixed_ips. Reason: each entry needs subnet_id or ip_address.");
      if ((await allocateNext(tx, s, portId, position++)) === null) {
        throw conflict("IpAddressGenerationFailure", `No more IP addresses available for subnet ${s.id}.`);
      }
    }
  }
}





async function setSecurityGroups(tx: Tx, portId: string, ids: string[], fresh = false): Promise<void> {
  if (!fresh) await tx.run("DELETE FROM port_security_groups WHERE port_id = ?", [portId]);
  for (const id of ids) await tx.run("INSERT INTO port_security_groups (port_id, security_group_id) VALUES (?, ?)", [portId, id]);
}

function hostLabel(address: string): string {
  return `host-${address.replace(/[.:]/g, "-")}`;
}

export const ports: Kind = {
  def,

  scope: scopeOwn,
  narrow: portNarrowings,

  async hydrate(m, q, recs) {
    const ids = recs.map((r) => r.id);
    const netIds = [...new Set(recs.map((r) => r.network_id as string))];
    const hosts = [...new Set(recs.map((r) => r["binding:host_id"] as string).filter(Boolean))];
    // Independent reads at once: on PostgreSQL's pool they overlap their round trips (a transaction's client queues them).
    const [allocRows, sgRows, netRows, agentRows, trunks] = await Promise.all([
      rowsFor<{ port_id: string; subnet_id: string; ip_address: string; position: number }>(q, "SELECT port_id, subnet_id, ip_address, position FROM ip_allocations", "port_id", ids),
      rowsFor<{ port_id: string; security_group_id: string }>(q, "SELECT port_id, security_group_id FROM port_security_groups", "port_id", ids),
      rowsFor<{ id: string; body: string }>(q, "SELECT id, body FROM networks", "id", netIds),
      rowsFor<{ host: string; heartbeat_at: string }>(q, "SELECT host, heartbeat_at FROM agents", "host", hosts),
      rowsFor<{ id: string; port_id: string }>(q, "SELECT id, port_id FROM trunks", "port_id", ids),
    ]);
    const allocs = groupBy(allocRows, (a) => a.port_id);
    const sgs = groupBy(sgRows, (s) => s.port_id);
    const domains = new Map(netRows.map((n) => [n.id, (JSON.parse(n.body).dns_domain as string) || ""]));
    // Neutron's binding_failed: a port bound to a host whose agent is not alive will get no network there.
    const live = new Set(agentRows.filter((a) => isAlive(m, a.heartbeat_at)).map((a) => a.host));
    const trunkByPort = new Map(trunks.map((t) => [t.port_id, t.id]));
    const subports = groupBy(
      await rowsFor<{ trunk_id: string; port_id: string; segmentation_type: string; segmentation_id: number; position: number; mac_address: string }>(
        q,
        "SELECT s.trunk_id, s.port_id, s.segmentation_type, s.segmentation_id, s.position, p.mac_address FROM trunk_subports s JOIN ports p ON p.id = s.port_id",
        "s.trunk_id",
        trunks.map((t) => t.id),
      ),
      (s) => s.trunk_id,
    );
    return recs.map((r): View => {
      const fixed = (allocs.get(r.id) ?? []).sort((a, b) => Number(a.position) - Number(b.position)).map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address }));
      const domain = domains.get(r.network_id as string) || m.config.dnsDomain;
      const dnsName = (r.dns_name as string) ?? "";
      const host = r["binding:host_id"] as string;
      const view: View = {
        id: r.id,
        name: r.name,
        description: r.description ?? "",
        network_id: r.network_id,
        project_id: r.project_id,
        mac_address: r.mac_address,
        admin_state_up: r.admin_state_up,
        status: r.status,
        device_id: r.device_id,
        device_owner: r.device_owner,
        fixed_ips: fixed,
        // a pair given without a MAC is the port's MAC (Neutron fills it in)
        allowed_address_pairs: ((r.allowed_address_pairs as { ip_address: string; mac_address?: string }[] | undefined) ?? []).map((p) => ({ ip_address: p.ip_address, mac_address: p.mac_address ?? r.mac_address })),
        extra_dhcp_opts: r.extra_dhcp_opts ?? [],
        security_groups: (sgs.get(r.id) ?? []).map((s) => s.security_group_id).sort(),
        port_security_enabled: r.port_security_enabled,
        dns_name: dnsName,
        dns_assignment: fixed.map((f) => {
          const hostname = dnsName ? dnsName.replace(/\.$/, "").split(".")[0]! : hostLabel(f.ip_address);
          return { hostname, ip_address: f.ip_address, fqdn: `${hostname}.${domain.endsWith(".") ? domain : domain + "."}` };
        }),
        "binding:host_id": host,
        "binding:profile": r["binding:profile"] ?? {},
        "binding:vnic_type": r["binding:vnic_type"] ?? "normal",
        "binding:vif_type": !host ? "unbound" : live.has(host) ? "tap" : "binding_failed",
        "binding:vif_details": host && live.has(host) ? { port_filter: true, connectivity: "l2" } : {},
        ip_allocation: "immediate",
        propagate_uplink_status: false,
        resource_request: null,
        "seam:policy": r["seam:policy"] ?? null,
        ...standardTail(r),
      };
      const trunkId = trunkByPort.get(r.id);
      if (trunkId) {
        view.trunk_details = {
          trunk_id: trunkId,
          sub_ports: (subports.get(trunkId) ?? [])
            .sort((a, b) => Number(a.position) - Number(b.position))
            .map((s) => ({ segmentation_id: Number(s.segmentation_id), segmentation_type: s.segmentation_type, port_id: s.port_id, mac_address: s.mac_address })),
        };
      }
      return view;
    });
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    // Shared: ports are made side by side (each allocation takes a free-range row of its own: ipam.ts),
    // while the network, and what the network holds, cannot change until they commit.
    const net = await m.referenced(tx, networks, ctx, input.network_id as string, "shared");
    await checkAttach(tx, ctx, net);
    checkNetworkOwnerOnly(ctx, net, input, "create_port");
    await checkRouterDevice(tx, ctx, input.project_id as string, (input.device_owner as string) ?? "", (input.device_id as string) ?? "");
    const id = crypto.randomUUID();
    const chosenMac = input.mac_address as string | undefined;
    if (chosenMac !== undefined) {
      // Neutron's policy: the network's owner (or an admin) chooses MACs.
      if (!ctx.isAdmin && net.project_id !== ctx.projectId) throw policyDenied("create_port:mac_address");
      if (await macInUse(tx, net.id, chosenMac)) throw conflict("MacAddressInUse", `Unable to complete operation for network ${net.id}. The mac address ${chosenMac} is in use.`);
    }
    const portSecurity = (input.port_security_enabled as boolean | undefined) ?? (net.port_security_enabled as boolean);
    const owner = (input.device_owner as string) ?? "";
    let groups = input.security_groups as string[] | undefined;
    const pairs = (input.allowed_address_pairs as unknown[]) ?? [];
    if (!portSecurity) {
      if (groups && groups.length) throw badRequest("Port security must be enabled and port must have an IP address in order to use security groups.", "PortSecurityAndIPRequiredForSecurityGroups");
      if (pairs.length) throw conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.");
      groups = [];
    } else if (groups === undefined) {
      groups = isNetworkOwner(owner) ? [] : [await m.ensureDefaultSecurityGroup(tx, input.project_id as string)];
    } else {
      await checkSecurityGroups(tx, ctx, input.project_id as string, groups);
    }
    checkAddressPairs(pairs as { ip_address: string; mac_address?: string }[]);
    let rec = newRec(input, { id, status: "DOWN", port_security_enabled: portSecurity });
    delete rec.fixed_ips;
    delete rec.security_groups;
    if (chosenMac !== undefined) await insertRec(tx, def.table, rec);
    else rec = await insertWithRandomMac(tx, rec);
    await setSecurityGroups(tx, id, groups, true);
    // Last: the free-range row an allocation takes stays locked to commit (ipam.ts).
    await allocateFixedIps(tx, net.id, id, rec.mac_address as string, owner, input.fixed_ips as FixedIpRequest[] | undefined, []);
    return rec;
  },

  async update(_m, tx, ctx, rec, input) {
    // (an admin, or the model itself binding a port, need not read the network for it)
    if (!ctx.isAdmin) {
      const net = await getRec(tx, "networks", rec.network_id as string);
      if (net) checkNetworkOwnerOnly(ctx, net, input, "update_port");
    }
    if (rec.device_owner === OWNER.serviceVip && ["fixed_ips", "device_owner", "device_id"].some((k) => input[k] !== undefined)) throw conflict("PortInUse", `Port ${rec.id} holds the address of service ${rec.device_id}: its address and owner change with the service only.`);
    const next: Rec = { ...rec, ...input };
    if (input.device_owner !== undefined || input.device_id !== undefined) {
      await checkRouterDevice(tx, ctx, rec.project_id, (next.device_owner as string) ?? "", (next.device_id as string) ?? "");
    }
    delete next.fixed_ips;
    delete next.security_groups;
    if (input.mac_address !== undefined && input.mac_address !== rec.mac_address) {
      if (!isOwner(ctx, rec)) throw policyDenied("update_port:mac_address");
      if (rec["binding:host_id"]) throw conflict("PortBound", `Unable to complete operation on port ${rec.id}, port is already bound, port type: tap, old_mac ${rec.mac_address}, new_mac ${input.mac_address}.`);
      await tx.lock(`network:${rec.network_id}`, "shared");
      if (await macInUse(tx, rec.network_id as string, input.mac_address as string)) {
        throw conflict("MacAddressInUse", `Unable to complete operation for network ${rec.network_id}. The mac address ${input.mac_address} is in use.`);
      }
    }
    const currentGroups = (await tx.all<{ security_group_id: string }>("SELECT security_group_id FROM port_security_groups WHERE port_id = ?", [rec.id])).map((r) => r.security_group_id);
    const groups = (input.security_groups as string[] | undefined) ?? currentGroups;
    const pairs = (next.allowed_address_pairs as { ip_address: string; mac_address?: string }[]) ?? [];
    if (!next.port_security_enabled) {
      if (groups.length) throw conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or ip address until security group is removed");
      if (pairs.length) throw conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.");
    }
    checkAddressPairs(pairs);
    if (input.security_groups !== undefined) {
      await checkSecurityGroups(tx, ctx, rec.project_id, groups);
      await setSecurityGroups(tx, rec.id, groups);
    }
    if (input.fixed_ips !== undefined) await replaceFixedIps(tx, rec, input.fixed_ips as FixedIpRequest[]);
    // A port moved to another host (or unbound) is down until that host's agent plugs it.
    if ((next["binding:host_id"] ?? "") !== (rec["binding:host_id"] ?? "")) next.status = "DOWN";
    return updateRec(tx, def.table, next);
  },

  async remove(m, tx, _ctx, rec) {
    const owner = rec.device_owner as string;
    if (L3_OWNERS.has(owner)) {
      throw conflict("L3PortInUse", `Port ${rec.id} cannot be deleted directly via the port API: has device owner ${owner}.`);
    }
    if (owner === OWNER.serviceVip) throw conflict("PortInUse", `Port ${rec.id} holds the address of service ${rec.device_id}; delete the service instead.`);
    const trunk = await tx.get<{ id: string }>("SELECT id FROM trunks WHERE port_id = ?", [rec.id]);
    if (trunk) throw conflict("PortInUseAsTrunkParent", `Port ${rec.id} is currently a parent port for trunk ${trunk.id}.`);
    const sub = await tx.get<{ trunk_id: string }>("SELECT trunk_id FROM trunk_subports WHERE port_id = ?", [rec.id]);
    if (sub) throw conflict("PortInUseAsSubPort", `Port ${rec.id} is currently a subport for trunk ${sub.trunk_id}.`);
    await deletePort(m, tx, rec);
  },
};


/** Keeps allocations still asked for, releases the others, allocates the new ones. */
export async function replaceFixedIps(tx: Tx, rec: Rec, requested: FixedIpRequest[]): Promise<void> {
  await tx.lock(`network:${rec.network_id}`, "shared");
  const current = await tx.all<Allocation & { position: number }>("SELECT subnet_id, ip_address, position FROM ip_allocations WHERE port_id = ? ORDER BY position", [rec.id]);
  const keep: Allocation[] = [];
  const rest: FixedIpRequest[] = [];
  const unclaimed = [...current];
  for (const req of requested) {
    const at = unclaimed.findIndex((c) =>
      req.ip_address !== undefined
        ? c.ip_address === req.ip_address && (req.subnet_id === undefined || req.subnet_id === c.subnet_id)
        : c.subnet_id === req.subnet_id,
    );
    if (at >= 0) keep.push(unclaimed.splice(at, 1)[0]!);
    else rest.push(req);
  }
  for (const gone of unclaimed) {
    const [s] = (await findRecs(tx, "subnets", { id: [gone.subnet_id] })) as SubnetRec[];
    if (s) await release(tx, s, gone.ip_address);
  }
  let position = 0;
  for (const k of keep) await tx.run("UPDATE ip_allocations SET position = ? WHERE port_id = ? AND subnet_id = ? AND ip_address = ?", [position++, rec.id, k.subnet_id, k.ip_address]);
  await allocateFixedIps(tx, rec.network_id as string, rec.id, rec.mac_address as string, rec.device_owner as string, rest, keep);
}

/** Deletes a port with everything hanging off it, whatever its owner (internal: routers, floating IPs, networks). */
export async function deletePort(m: Model, tx: Tx, rec: Rec): Promise<void> {
  await tx.lock(`network:${rec.network_id}`, "shared");
  const held = await tx.all<Allocation>("SELECT subnet_id, ip_address FROM ip_allocations WHERE port_id = ?", [rec.id]);
  for (const h of held) {
    const [s] = (await findRecs(tx, "subnets", { id: [h.subnet_id] })) as SubnetRec[];
    if (s) await release(tx, s, h.ip_address);
  }
  await tx.run("DELETE FROM ip_allocations WHERE port_id = ?", [rec.id]);
  await tx.run("DELETE FROM port_security_groups WHERE port_id = ?", [rec.id]);
  for (const fip of await findRecs(tx, "floatingips", { port_id: [rec.id] })) {
    await updateRec(tx, "floatingips", { ...fip, port_id: null, fixed_ip_address: null, router_id: null });
    await m.emit(tx, m.kindOf("floatingip"), fip.id, "update");
  }
  await deleteRec(tx, def.table, rec.id);
  m.deleted(tx, ports, rec);
}

/** Creates a port on behalf of the model (router interfaces, gateways, floating IPs). */
export async function createInternalPort(
  m: Model,
  tx: Tx,
  attrs: { network_id: string; project_id: string; device_owner: string; device_id: string; fixed_ips?: FixedIpRequest[]; preferred_mac?: string },
): Promise<Rec> {
  const ctx = m.system;
  const input: Record<string, unknown> = {
    name: "",
    description: "",
    admin_state_up: true,
    device_id: attrs.device_id,
    device_owner: attrs.device_owner,
    project_id: attrs.project_id,
    security_groups: [],
    allowed_address_pairs: [],
    extra_dhcp_opts: [],
    dns_name: "",
    "binding:host_id": "",
    "binding:profile": {},
    "binding:vnic_type": "normal",
    tags: [],
    network_id: attrs.network_id,
    port_security_enabled: false,
  };
  if (attrs.fixed_ips) input.fixed_ips = attrs.fixed_ips;
  if (attrs.preferred_mac && !(await macInUse(tx, attrs.network_id, attrs.preferred_mac))) input.mac_address = attrs.preferred_mac;
  const rec = await ports.create!(m, tx, ctx, input);
  await m.emitRec(tx, ports, rec, "create");
  return rec;
}

export async function portAllocations(q: Queryable, portId: string): Promise<Allocation[]> {
  return q.all<Allocation>("SELECT subnet_id, ip_address FROM ip_allocations WHERE port_id = ? ORDER BY position", [portId]);
}

export function ipVersionOf(address: string): number {
  return parseAddress(address)!.version;
}
