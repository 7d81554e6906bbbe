// Routers: interfaces are ports (device_owner network:router_interface) holding
// the subnet's gateway address; the external gateway is a port on an external
// network (network:router_gateway, project ''), as Neutron models them.
import { createHash } from "node:crypto";
import { badRequest, conflict, notFound, policyDenied } from "../errors.ts";
import { cidrContains, cidrsOverlap, parseAddress, parseCidr } from "../../net/address.ts";
import type { RequestContext } from "../model/context.ts";
import { router as def } from "../model/resources.ts";
import * as v from "../model/validate.ts";
import type { Tx } from "../store/db.ts";
import { OWNER, ROUTER_INTERFACE_OWNERS } from "../model/owners.ts";
import { canSeeOwn, groupBy, scopeOwn, rowsFor, standardTail } from "./common.ts";
import type { SubnetRec } from "./ipam.ts";
import type { Kind, Model, View } from "./model.ts";
import { networks } from "./networks.ts";
import { createInternalPort, deletePort, ports } from "./ports.ts";
import { deleteRec, findRecs, getRec, insertRec, newRec, type Rec, updateRec } from "./repo.ts";
import { subnets } from "./subnets.ts";

type GatewayInfo = { network_id: string; enable_snat?: boolean; external_fixed_ips?: { subnet_id?: string; ip_address?: string }[] } | null;

async function interfacePorts(tx: Tx, routerId: string): Promise<Rec[]> {
  return (await findRecs(tx, "ports", { device_id: [routerId] })).filter((p) => ROUTER_INTERFACE_OWNERS.has(p.device_owner as string));
}

async function gatewayPort(tx: Tx, routerId: string): Promise<Rec | undefined> {
  return (await findRecs(tx, "ports", { device_id: [routerId], device_owner: ["network:router_gateway"] }))[0];
}

const interfaceOwner = (router: Rec) => (router.distributed ? OWNER.routerInterfaceDistributed : OWNER.routerInterface);

/**
 * A distributed router routes east-west on every host, but translates to the
 * outside on the network host only: there it has an address of its own on
 * each internal IPv4 subnet (Neutron's csnat ports), which the hosts' routing
 * instances send outbound traffic to. This keeps those ports, and the owner of
 * the interface ports, in step with the router's mode and gateway.
 */
async function syncDistributedPorts(m: Model, tx: Tx, router: Rec): Promise<void> {
  const owner = interfaceOwner(router);
  for (const p of await interfacePorts(tx, router.id)) {
    if (p.device_owner === owner) continue;
    await updateRec(tx, "ports", { ...p, device_owner: owner });
    await m.emit(tx, ports, p.id, "update");
  }
  const wanted = new Set(router.distributed && router.external_gateway_info ? (await interfaceSubnets(tx, router.id)).filter((sn) => !sn.cidr.includes(":")).map((sn) => sn.id) : []);
  for (const p of await findRecs(tx, "ports", { device_id: [router.id], device_owner: [OWNER.routerSnat] })) {
    const [a] = await tx.all<{ subnet_id: string }>("SELECT subnet_id FROM ip_allocations WHERE port_id = ?", [p.id]);
    if (a && wanted.delete(a.subnet_id)) continue;
    await deletePort(m, tx, p);
  }
  for (const subnet of wanted) {
    const [sn] = (await findRecs(tx, "subnets", { id: [subnet] })) as SubnetRec[];
    await createInternalPort(m, tx, { network_id: sn!.network_id, project_id: "", device_owner: OWNER.routerSnat, device_id: router.id, fixed_ips: [{ subnet_id: subnet }] });
  }
}

async function interfaceSubnets(tx: Tx, routerId: string): Promise<SubnetRec[]> {
  const ids = [] as string[];
  for (const p of await interfacePorts(tx, routerId)) {
    ids.push(...(await tx.all<{ subnet_id: string }>("SELECT subnet_id FROM ip_allocations WHERE port_id = ?", [p.id])).map((r) => r.subnet_id));
  }
  return ids.length ? ((await findRecs(tx, "subnets", { id: ids })) as SubnetRec[]) : [];
}

async function setGateway(m: Model, tx: Tx, ctx: RequestContext, router: Rec, info: GatewayInfo): Promise<Record<string, unknown> | null> {
  const current = await gatewayPort(tx, router.id);
  const old = router.external_gateway_info as GatewayInfo;
  if (info === null || Object.keys(info).length === 0) {
    if (current) {
      const fip = await tx.get<{ id: string }>("SELECT id FROM floatingips WHERE router_id = ? LIMIT 1", [router.id]);
      if (fip) throw conflict("RouterExternalGatewayInUseByFloatingIp", `Gateway cannot be updated for router ${router.id}, since a gateway to external network ${old?.network_id} is required by one or more floating IPs.`);
      await deletePort(m, tx, current);
    }
    return null;
  }
  const net = await m.visible(tx, networks, ctx, info.network_id);
  if (!net["router:external"]) throw badRequest(`Bad router request: Network ${net.id} is not a valid external network.`, "BadRequest");
  const enableSnat = info.enable_snat ?? true;
  if (!enableSnat && !ctx.isAdmin) throw policyDenied("update_router:external_gateway_info:enable_snat");
  if (info.external_fixed_ips && !ctx.isAdmin) throw policyDenied("update_router:external_gateway_info:external_fixed_ips");
  const sameNet = current && current.network_id === info.network_id && info.external_fixed_ips === undefined;
  if (!sameNet) {
    if (current) {
      const fip = await tx.get<{ id: string }>("SELECT id FROM floatingips WHERE router_id = ? LIMIT 1", [router.id]);
      if (fip) throw conflict("RouterExternalGatewayInUseByFloatingIp", `Gateway cannot be updated for router ${router.id}, since a gateway to external network ${old?.network_id} is required by one or more floating IPs.`);
      await deletePort(m, tx, current);
    }
    // An internal subnet of this router overlapping the external one would make routing ambiguous.
    await createInternalPort(m, tx, {
      network_id: net.id,
      project_id: "",
      device_owner: "network:router_gateway",
      device_id: router.id,
      ...(info.external_fixed_ips ? { fixed_ips: info.external_fixed_ips } : {}),
    });
  }
  return { network_id: net.id, enable_snat: enableSnat };
}

function checkRoutes(routes: { destination: string; nexthop: string }[], connected: SubnetRec[], routerId: string): void {
  for (const r of routes) {
    const hop = parseAddress(r.nexthop)!;
    if (!connected.some((s) => cidrContains(parseCidr(s.cidr)!, hop))) {
      throw badRequest(`Invalid format for routes: ${JSON.stringify([r])}, the nexthop is not connected with router ${routerId}`, "InvalidRoutes");
    }
  }
}

export const routers: Kind = {
  def,

  scope: scopeOwn,

  async hydrate(_m, q, recs) {
    const gw = await rowsFor<{ port_id: string; device_id: string; subnet_id: string; ip_address: string }>(
      q,
      "SELECT a.port_id, p.device_id, a.subnet_id, a.ip_address FROM ip_allocations a JOIN ports p ON p.id = a.port_id WHERE p.device_owner = 'network:router_gateway'",
      "p.device_id",
      recs.map((r) => r.id),
    );
    const byRouter = groupBy(gw, (g) => g.device_id);
    return recs.map((r): View => {
      const info = r.external_gateway_info as GatewayInfo;
      return {
        id: r.id,
        name: r.name,
        description: r.description ?? "",
        project_id: r.project_id,
        admin_state_up: r.admin_state_up,
        status: r.status ?? "ALLOCATING",
        external_gateway_info: info
          ? { ...info, external_fixed_ips: (byRouter.get(r.id) ?? []).map((g) => ({ subnet_id: g.subnet_id, ip_address: g.ip_address })) }
          : null,
        routes: r.routes ?? [],
        distributed: r.distributed ?? false,
        ha: r.ha ?? false,
        availability_zone_hints: r.availability_zone_hints ?? [],
        availability_zones: [],
        flavor_id: null,
        ...standardTail(r),
      };
    });
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    const info = input.external_gateway_info as GatewayInfo;
    const rec = newRec({ ...input, distributed: input.distributed ?? m.config.distributedRouters, external_gateway_info: null });
    await insertRec(tx, def.table, rec);
    if (info) {
      const stored = await setGateway(m, tx, ctx, rec, info);
      return updateRec(tx, def.table, { ...rec, external_gateway_info: stored });
    }
    return rec;
  },

  async update(m, tx, ctx, rec, input) {
    const next: Rec = { ...rec, ...input };
    if (input.external_gateway_info !== undefined) {
      next.external_gateway_info = await setGateway(m, tx, ctx, rec, input.external_gateway_info as GatewayInfo);
    }
    if (input.routes !== undefined) {
      const connected = await interfaceSubnets(tx, rec.id);
      const gw = await gatewayPort(tx, rec.id);
      if (gw) connected.push(...((await findRecs(tx, "subnets", { network_id: [gw.network_id as string] })) as SubnetRec[]));
      checkRoutes(input.routes as { destination: string; nexthop: string }[], connected, rec.id);
    }
    const stored = await updateRec(tx, def.table, next);
    if (input.external_gateway_info !== undefined || input.distributed !== undefined) await syncDistributedPorts(m, tx, stored);
    return stored;
  },

  async remove(m, tx, _ctx, rec) {
    if ((await interfacePorts(tx, rec.id)).length) throw conflict("RouterInUse", `Router ${rec.id} still has ports`);
    const fip = await tx.get("SELECT 1 AS x FROM floatingips WHERE router_id = ? LIMIT 1", [rec.id]);
    if (fip) throw conflict("RouterInUse", `Router ${rec.id} still has floating IPs`);
    const gw = await gatewayPort(tx, rec.id);
    if (gw) await deletePort(m, tx, gw);
    await syncDistributedPorts(m, tx, { ...rec, external_gateway_info: null });
    await deleteRec(tx, def.table, rec.id);
  },
};

const interfaceBody = v.shape({ subnet_id: v.uuid, port_id: v.uuid });

/** PUT /routers/{id}/add_router_interface with {subnet_id} or {port_id}. */
export async function addRouterInterface(m: Model, ctx: RequestContext, routerId: string, body: unknown) {
  const req = interfaceBody(body, "router_interface") as { subnet_id?: string; port_id?: string };
  if (req.subnet_id && req.port_id) throw badRequest("Bad router request: Cannot specify both subnet-id and port-id.", "BadRequest");
  if (!req.subnet_id && !req.port_id) throw badRequest("Bad router request: Either subnet_id or port_id must be specified.", "BadRequest");
  const { value } = await m.write(async (tx) => {
    const router = await m.writable(tx, routers, ctx, routerId, "add_router_interface");
    const existing = await interfaceSubnets(tx, router.id);
    let portRec: Rec;
    if (req.subnet_id) {
      const s = (await m.referenced(tx, subnets, ctx, req.subnet_id)) as SubnetRec;
      if (!s.gateway_ip) throw badRequest(`Bad router request: Subnet for router interface must have a gateway IP.`, "BadRequest");
      // A shared network's subnet is its owner's to route: a tenant's router taking its gateway would take its traffic.
      if (!ctx.isAdmin && s.project_id !== ctx.projectId) {
        throw badRequest(`Bad router request: Cannot add interface to router ${router.id} because subnet ${s.id} is not owned by project making the request.`, "BadRequest");
      }
      checkNewSubnet(existing, s);
      portRec = await createInternalPort(m, tx, {
        network_id: s.network_id,
        project_id: router.project_id,
        device_owner: interfaceOwner(router),
        device_id: router.id,
        fixed_ips: [{ subnet_id: s.id, ip_address: s.gateway_ip }],
        preferred_mac: gatewayMac(router.id, s.id),
      });
    } else {
      const p = await m.referenced(tx, ports, ctx, req.port_id!);
      if (p.device_id) throw conflict("PortInUse", `Unable to complete operation on port ${p.id} for network ${p.network_id}. Port already has an attached device ${p.device_id}.`);
      const ips = await tx.all<{ subnet_id: string }>("SELECT subnet_id FROM ip_allocations WHERE port_id = ?", [p.id]);
      if (ips.length === 0) throw badRequest(`Bad router request: Router port must have at least one fixed IP.`, "BadRequest");
      for (const s of (await findRecs(tx, "subnets", { id: ips.map((i) => i.subnet_id) })) as SubnetRec[]) checkNewSubnet(existing, s);
      await tx.run("DELETE FROM port_security_groups WHERE port_id = ?", [p.id]);
      portRec = await updateRec(tx, "ports", { ...p, device_owner: interfaceOwner(router), device_id: router.id, port_security_enabled: false, allowed_address_pairs: [] });
      await m.emit(tx, ports, p.id, "update");
    }
    await syncDistributedPorts(m, tx, router);
    await m.touch(tx, "router", router.id);
    const subnetIds = (await tx.all<{ subnet_id: string }>("SELECT subnet_id FROM ip_allocations WHERE port_id = ? ORDER BY position", [portRec.id])).map((r) => r.subnet_id);
    return {
      id: router.id,
      tenant_id: router.project_id,
      project_id: router.project_id,
      port_id: portRec.id,
      network_id: portRec.network_id,
      subnet_id: subnetIds[0],
      subnet_ids: subnetIds,
    };
  });
  return value;
}

/**
 * The MAC a router's interface on a subnet gets, the same every time it is
 * added: workloads elsewhere keep their gateway's MAC in their ARP cache, and
 * on VXLAN networks the router's gratuitous ARP cannot reach them (each host's
 * VXLAN device answers ARP itself), so a new MAC would cut them off for up to
 * a minute after an interface is removed and added again. Random when taken.
 */
export function gatewayMac(routerId: string, subnetId: string): string {
  const h = createHash("sha256").update(`${routerId}/${subnetId}`).digest();
  return ["fa", "16", "3e", ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

function checkNewSubnet(existing: SubnetRec[], s: SubnetRec): void {
  for (const e of existing) {
    if (e.id === s.id) throw badRequest(`Bad router request: Router already has a port on subnet ${s.id}.`, "BadRequest");
    if (cidrsOverlap(parseCidr(e.cidr)!, parseCidr(s.cidr)!)) {
      throw badRequest(`Bad router request: Cidr ${s.cidr} of subnet ${s.id} overlaps with cidr ${e.cidr} of subnet ${e.id}.`, "BadRequest");
    }
  }
}

/** PUT /routers/{id}/remove_router_interface with {subnet_id} or {port_id}. */
export async function removeRouterInterface(m: Model, ctx: RequestContext, routerId: string, body: unknown) {
  const req = interfaceBody(body, "router_interface") as { subnet_id?: string; port_id?: string };
  if (!req.subnet_id && !req.port_id) throw badRequest("Bad router request: Either subnet_id or port_id must be specified.", "BadRequest");
  const { value } = await m.write(async (tx) => {
    const router = await m.writable(tx, routers, ctx, routerId, "remove_router_interface");
    const candidates = await interfacePorts(tx, router.id);
    let target: Rec | undefined;
    let subnetIds: string[] = [];
    for (const p of candidates) {
      const ips = (await tx.all<{ subnet_id: string }>("SELECT subnet_id FROM ip_allocations WHERE port_id = ?", [p.id])).map((r) => r.subnet_id);
      if ((req.port_id && p.id === req.port_id) || (!req.port_id && req.subnet_id && ips.includes(req.subnet_id))) {
        if (req.port_id && req.subnet_id && !ips.includes(req.subnet_id)) {
          throw conflict("SubnetMismatchForPort", `Subnet ${req.subnet_id} on port ${p.id} does not match the requested subnet.`);
        }
        target = p;
        subnetIds = ips;
        break;
      }
    }
    if (!target) {
      if (req.port_id) throw notFound("RouterInterfaceNotFound", `Router ${router.id} does not have an interface with id ${req.port_id}`);
      throw notFound("RouterInterfaceNotFoundForSubnet", `Router ${router.id} has no interface on subnet ${req.subnet_id}`);
    }
    const leaving = (await findRecs(tx, "subnets", { id: subnetIds })) as SubnetRec[];
    for (const route of (router.routes as { destination: string; nexthop: string }[] | undefined) ?? []) {
      const on = leaving.find((sn) => cidrContains(parseCidr(sn.cidr)!, parseAddress(route.nexthop)!));
      if (on) throw conflict("RouterInterfaceInUseByRoute", `Router interface for subnet ${on.id} on router ${router.id} cannot be deleted, as it is required by one or more routes.`);
    }
    const gw = router.external_gateway_info as GatewayInfo;
    if (gw) {
      for (const sid of subnetIds) {
        const users = await tx.get<{ id: string }>(
          `SELECT f.id FROM floatingips f JOIN ip_allocations a ON a.port_id = f.port_id AND a.ip_address = f.fixed_ip_address
            WHERE f.router_id = ? AND a.subnet_id = ? LIMIT 1`,
          [router.id, sid],
        );
        if (users) throw conflict("RouterInterfaceInUseByFloatingIP", `Router interface for subnet ${sid} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
      }
    }
    await deletePort(m, tx, target);
    await syncDistributedPorts(m, tx, router);
    await m.touch(tx, "router", router.id);
    return { id: router.id, tenant_id: router.project_id, project_id: router.project_id, port_id: target.id, network_id: target.network_id, subnet_id: subnetIds[0], subnet_ids: subnetIds };
  });
  return value;
}

/** The router connecting a fixed IP's subnet to an external network, if any. */
export async function routerFor(tx: Tx, subnetId: string, externalNetworkId: string): Promise<Rec | undefined> {
  const candidates = await tx.all<{ device_id: string }>(
    `SELECT p.device_id FROM ports p JOIN ip_allocations a ON a.port_id = p.id
      WHERE a.subnet_id = ? AND p.device_owner IN ('network:router_interface', 'network:router_interface_distributed')`,
    [subnetId],
  );
  for (const c of candidates) {
    const r = await getRec(tx, def.table, c.device_id);
    const info = r?.external_gateway_info as GatewayInfo;
    if (r && info && info.network_id === externalNetworkId) return r;
  }
  return undefined;
}
