// Who may say what on a port: the checks of Neutron's policy and plugins
// that a port create or update passes before the port service writes
// anything (ports.ts). Each takes the request and what it names, and throws
// the error Neutron would.
import { badRequest, conflict, policyDenied, resourceNotFound } from "../errors.ts";
import type { RequestContext } from "../model/context.ts";
import { isNetworkOwner, OWNER, ROUTER_INTERFACE_OWNERS } from "../model/owners.ts";
import type { Tx } from "../store/db.ts";
import { isSharedWith, SHARED } from "./rbac/access.ts";
import { getRec, type Rec } from "./repo.ts";

type FixedIpRequest = { subnet_id?: string; ip_address?: string };

/** A caller may attach to a network it owns, one shared with its project, or (admin) any. */
export async function checkAttach(tx: Tx, ctx: RequestContext, net: Rec): Promise<void> {
  if (ctx.isAdmin || net.project_id === ctx.projectId || net.shared) return;
  if (await isSharedWith(tx, "network", net.id, ctx.projectId, [SHARED])) return;
  throw policyDenied("create_port:network");
}

/**
 * What only the network's owner (or an admin) may set on a port, as Neutron's
 * default policy has it: on a shared network a tenant gets an address, not
 * the addresses, address pairs, port security or `network:*` role it names.
 * Applies to the attributes the request names, as Neutron's policy engine
 * does (address pairs: a non-empty list, since create fills in the empty default).
 */
export function checkNetworkOwnerOnly(ctx: RequestContext, net: Rec, input: Record<string, unknown>, action: "create_port" | "update_port"): void {
  if (ctx.isAdmin || net.project_id === ctx.projectId) return;
  const fixed = input.fixed_ips as FixedIpRequest[] | undefined;
  if (fixed?.some((f) => f.ip_address !== undefined)) throw policyDenied(`${action}:fixed_ips:ip_address`);
  if ((input.allowed_address_pairs as unknown[] | undefined)?.length) throw policyDenied(`${action}:allowed_address_pairs`);
  if (input.port_security_enabled !== undefined) throw policyDenied(`${action}:port_security_enabled`);
  if (typeof input.device_owner === "string" && isNetworkOwner(input.device_owner)) throw policyDenied(`${action}:device_owner`);
}

/**
 * A port that says it is a router's (interface, gateway, SNAT) must be one of
 * the caller's routers, or another project's router would route through it
 * and lose it on remove_router_interface (Neutron: DeviceIDNotOwnedByTenant).
 */
export async function checkRouterDevice(tx: Tx, ctx: RequestContext, projectId: string, owner: string, deviceId: string): Promise<void> {
  if (ctx.isAdmin || !deviceId || !(ROUTER_INTERFACE_OWNERS.has(owner) || owner === OWNER.routerGateway || owner === OWNER.routerSnat)) return;
  const router = await getRec(tx, "routers", deviceId);
  if (router && router.project_id !== projectId) {
    throw conflict("DeviceIDNotOwnedByTenant", `The following device_id ${deviceId} is not owned by your tenant or matches another tenants router.`);
  }
}

/**
 * A port's groups are its project's or shared with that project, and the
 * caller sees them. A shared one is held under its lock (shared), so the
 * entry that shares it cannot go before this port is in (policies.ts).
 */
export async function checkSecurityGroups(tx: Tx, ctx: RequestContext, projectId: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    let sg = await getRec(tx, "security_groups", id);
    if (sg && sg.project_id !== projectId) {
      await tx.lock(`security_group:${id}`, "shared");
      sg = await getRec(tx, "security_groups", id);
      // The caller is the port's project or an admin (ownerProject): shared with the port's project, it sees it.
      if (sg && !(await isSharedWith(tx, "security_group", id, projectId, [SHARED]))) sg = undefined;
    } else if (sg && !ctx.isAdmin && sg.project_id !== ctx.projectId) sg = undefined;
    if (!sg) throw resourceNotFound("security_group", id);
  }
}

export function checkAddressPairs(pairs: { ip_address: string; mac_address?: string }[]): void {
  const seen = new Set<string>();
  for (const p of pairs) {
    const key = `${p.ip_address}|${p.mac_address ?? ""}`;
    if (seen.has(key)) throw badRequest("Request contains duplicate address pair: mac_address " + (p.mac_address ?? "") + " ip_address " + p.ip_address + ".", "DuplicateAddressPairInRequest");
    seen.add(key);
  }
}
