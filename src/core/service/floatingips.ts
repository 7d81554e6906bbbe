// Floating IPs: an address held by an internal port on an external network,
// associated with one fixed IP of a port only when a router joins that
// port's subnet to the external network.
import { badRequest, conflict, notFound, policyDenied, resourceNotFound } from "../errors.ts";
import type { RequestContext } from "../model/context.ts";
import { floatingip as def } from "../model/resources.ts";
import type { Tx } from "../store/db.ts";
import { canSeeOwn, isOwner, scopeOwn, standardTail } from "./common.ts";
import type { Kind, View } from "./model.ts";
import { networks } from "./networks.ts";
import { createInternalPort, deletePort, ipVersionOf, portAllocations } from "./ports.ts";
import { deleteRec, findRecs, getRec, insertRec, newRec, type Rec, updateRec } from "./repo.ts";
import { routerFor } from "./routers.ts";

/** Resolves port + fixed IP into an association, or says why it cannot be. */
async function associate(tx: Tx, ctx: RequestContext, fip: { id: string; floating_network_id: string; floating_ip_address: string; project_id: string }, portId: string, fixedIp: string | null) {
  // Under the port's lock: the port cannot be deleted, nor get another floating IP, until this commits.
  await tx.lock(`port:${portId}`);
  const port = await getRec(tx, "ports", portId);
  if (!port || !isOwner(ctx, port)) throw resourceNotFound("port", portId);
  if (!ctx.isAdmin && port.project_id !== fip.project_id) throw resourceNotFound("port", portId);
  const ips = await portAllocations(tx, port.id);
  let chosen: { subnet_id: string; ip_address: string } | undefined;
  if (fixedIp) {
    chosen = ips.find((i) => i.ip_address === fixedIp);
    if (!chosen) throw badRequest(`Bad floatingip request: Port ${port.id} does not have fixed ip ${fixedIp}.`, "BadRequest");
  } else {
    const v4 = ips.filter((i) => ipVersionOf(i.ip_address) === 4);
    if (v4.length === 0) throw badRequest(`Bad floatingip request: Port ${port.id} does not have any IPv4 address on which a floating IP can be associated.`, "BadRequest");
    if (v4.length > 1) throw badRequest(`Bad floatingip request: Port ${port.id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP.`, "BadRequest");
    chosen = v4[0]!;
  }
  const router = await routerFor(tx, chosen.subnet_id, fip.floating_network_id);
  if (!router) {
    throw notFound(
      "ExternalGatewayForFloatingIPNotFound",
      `External network ${fip.floating_network_id} is not reachable from subnet ${chosen.subnet_id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`,
    );
  }
  const taken = await tx.get<{ id: string }>(
    "SELECT id FROM floatingips WHERE floating_network_id = ? AND port_id = ? AND fixed_ip_address = ? AND id <> ?",
    [fip.floating_network_id, port.id, chosen.ip_address, fip.id],
  );
  if (taken) {
    throw conflict(
      "FloatingIPPortAlreadyAssociated",
      `Cannot associate floating IP ${fip.floating_ip_address} (${fip.id}) with port ${port.id} using fixed IP ${chosen.ip_address}, as that fixed IP already has a floating IP on external network ${fip.floating_network_id}.`,
    );
  }
  return { port_id: port.id, fixed_ip_address: chosen.ip_address, router_id: router.id };
}

export const floatingips: Kind = {
  def,

  scope: scopeOwn,

  async hydrate(_m, _q, recs) {
    return recs.map((r): View => ({
      id: r.id,
      project_id: r.project_id,
      description: r.description ?? "",
      floating_network_id: r.floating_network_id,
      floating_ip_address: r.floating_ip_address,
      router_id: r.router_id ?? null,
      port_id: r.port_id ?? null,
      fixed_ip_address: r.fixed_ip_address ?? null,
      status: (r.port_id && r.status) || "DOWN",
      dns_domain: "",
      dns_name: "",
      qos_policy_id: null,
      port_forwardings: [],
      ...standardTail(r),
    }));
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    const net = await m.visible(tx, networks, ctx, input.floating_network_id as string);
    if (!net["router:external"]) throw badRequest(`Bad floatingip request: Network ${net.id} is not a valid external network.`, "BadRequest");
    if (input.floating_ip_address !== undefined && !ctx.isAdmin) throw policyDenied("create_floatingip:floating_ip_address");
    const id = crypto.randomUUID();
    const fixed: { subnet_id?: string; ip_address?: string }[] = [];
    if (input.subnet_id || input.floating_ip_address) {
      fixed.push({
        ...(input.subnet_id ? { subnet_id: input.subnet_id as string } : {}),
        ...(input.floating_ip_address ? { ip_address: input.floating_ip_address as string } : {}),
      });
    }
    const fport = await createInternalPort(m, tx, {
      network_id: net.id,
      project_id: "",
      device_owner: "network:floatingip",
      device_id: id,
      ...(fixed.length ? { fixed_ips: fixed } : {}),
    });
    const v4 = (await portAllocations(tx, fport.id)).find((a) => ipVersionOf(a.ip_address) === 4);
    if (!v4) throw badRequest(`Bad floatingip request: Network ${net.id} has no IPv4 subnet with free addresses.`, "BadRequest");
    const base = { id, floating_network_id: net.id, floating_ip_address: v4.ip_address, project_id: input.project_id as string };
    const assoc = input.port_id ? await associate(tx, ctx, base, input.port_id as string, (input.fixed_ip_address as string) ?? null) : { port_id: null, fixed_ip_address: null, router_id: null };
    const rec = newRec({ description: input.description ?? "", tags: input.tags ?? [], name: "" }, { ...base, ...assoc });
    await insertRec(tx, def.table, rec);
    return rec;
  },

  async update(_m, tx, ctx, rec, input) {
    const next: Rec = { ...rec, description: input.description ?? rec.description };
    if (input.port_id !== undefined || input.fixed_ip_address !== undefined) {
      const portId = input.port_id === undefined ? (rec.port_id as string | null) : (input.port_id as string | null);
      if (portId === null) Object.assign(next, { port_id: null, fixed_ip_address: null, router_id: null });
      else Object.assign(next, await associate(tx, ctx, rec as never, portId, (input.fixed_ip_address as string | null) ?? null));
      // DOWN until the router's host reports the new translation in its kernel
      if (next.port_id !== rec.port_id || next.fixed_ip_address !== rec.fixed_ip_address) next.status = "DOWN";
    }
    return updateRec(tx, def.table, next);
  },

  async remove(m, tx, _ctx, rec) {
    const [fport] = await findRecs(tx, "ports", { device_id: [rec.id], device_owner: ["network:floatingip"] });
    await deleteRec(tx, def.table, rec.id);
    if (fport) await deletePort(m, tx, fport);
  },
};
