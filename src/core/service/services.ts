// Services: a VIP on a service subnet with backends per port (F2, F22). The
// VIP's address is held by a port of the subnet (owner seam:service_vip, the
// service's id as device), so the one IPAM hands it to nobody else and
// `openstack port list` shows who has it; the port goes with the service and
// cannot be deleted on its own. The service itself is compiled into the
// client hosts' DNAT (core/compiler/service-resolver.ts).
import { invalidInput } from "../errors.ts";
import { OWNER } from "../model/owners.ts";
import { service as def } from "../model/seam-resources.ts";
import { canSeeOwn, scopeOwn, standardTail } from "./common.ts";
import type { Kind, View } from "./model.ts";
import { createInternalPort, deletePort, portAllocations } from "./ports.ts";
import { deleteRec, getRec, insertRec, newRec, updateRec } from "./repo.ts";
import { subnets } from "./subnets.ts";

export interface ServicePort {
  readonly name?: string;
  readonly protocol: "tcp" | "udp" | "sctp";
  readonly port: number;
  readonly targets: readonly { readonly ip_address: string; readonly port: number; readonly port_id?: string | null }[];
}

/** A service's ports must be told apart: by name, and by (protocol, port). */
function checkPorts(ports: readonly ServicePort[]): void {
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const p of ports) {
    const k = `${p.protocol}/${p.port}`;
    if (keys.has(k)) throw invalidInput("ports", `${k} is listed twice`);
    keys.add(k);
    if (p.name) {
      if (names.has(p.name)) throw invalidInput("ports", `the name '${p.name}' is used twice`);
      names.add(p.name);
    }
    if (ports.length > 1 && !p.name) throw invalidInput("ports", "a service with several ports names each of them");
  }
}

export const services: Kind = {
  def,

  scope: scopeOwn,

  async hydrate(_m, _q, recs) {
    return recs.map((r): View => ({
      id: r.id,
      name: r.name,
      description: r.description ?? "",
      project_id: r.project_id,
      subnet_id: r.subnet_id,
      network_id: r.network_id,
      vip_address: r.vip_address,
      vip_port_id: r.vip_port_id,
      ports: r.ports ?? [],
      dns_name: r.dns_name ?? "",
      ...standardTail(r),
    }));
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    checkPorts(input.ports as ServicePort[]);
    // the subnet under its network's shared lock, as a port's: it cannot go while this commits
    const subnet = await m.visible(tx, subnets, ctx, input.subnet_id as string);
    await tx.lock(`network:${subnet.network_id}`, "shared");
    const id = crypto.randomUUID();
    const vip = await createInternalPort(m, tx, {
      network_id: subnet.network_id as string,
      project_id: input.project_id as string,
      device_owner: OWNER.serviceVip,
      device_id: id,
      fixed_ips: [{ subnet_id: subnet.id, ...(input.vip_address ? { ip_address: input.vip_address as string } : {}) }],
    });
    const [held] = await portAllocations(tx, vip.id);
    const rec = newRec(
      { name: input.name, description: input.description, tags: input.tags, ports: input.ports, dns_name: input.dns_name },
      { id, project_id: input.project_id, subnet_id: subnet.id, network_id: subnet.network_id, vip_port_id: vip.id, vip_address: held!.ip_address },
    );
    await insertRec(tx, def.table, rec);
    return rec;
  },

  async update(_m, tx, _ctx, rec, input) {
    if (input.ports !== undefined) checkPorts(input.ports as ServicePort[]);
    return updateRec(tx, def.table, { ...rec, ...input });
  },

  async remove(m, tx, _ctx, rec) {
    await deleteRec(tx, def.table, rec.id);
    const vip = await getRec(tx, "ports", rec.vip_port_id as string);
    if (vip) await deletePort(m, tx, vip);
  },
};
