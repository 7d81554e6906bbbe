// The network's DHCP port: Seam makes it itself, as Neutron's DHCP agent does,
// so that it takes the first pool address of each DHCP-enabled subnet (.2)
// the moment the subnet exists and a VM made afterwards gets .3. Kept in step
// with the subnets: one address per subnet with enable_dhcp, and no port at
// all once none has it. The network host serves it (core/model/placement.ts).
import { OWNER } from "../model/owners.ts";
import type { Tx } from "../store/db.ts";
import type { Model } from "./model.ts";
import { createInternalPort, deletePort, portAllocations, replaceFixedIps } from "./ports.ts";
import { findRecs, getRec } from "./repo.ts";

/** The DHCP port's device_id: one per network, whichever host serves it (Neutron's names its host; Seam's may move). */
export const dhcpDeviceId = (networkId: string) => `dhcp-${networkId}`;

export async function syncDhcpPort(m: Model, tx: Tx, networkId: string): Promise<void> {
  await tx.lock(`network:${networkId}`);
  const net = await getRec(tx, "networks", networkId);
  if (!net) return;
  const wanted = (await findRecs(tx, "subnets", { network_id: [networkId] })).filter((s) => s.enable_dhcp !== false).map((s) => s.id);
  const [port] = await findRecs(tx, "ports", { network_id: [networkId], device_owner: [OWNER.dhcp], device_id: [dhcpDeviceId(networkId)] });
  if (!wanted.length) {
    if (port) await deletePort(m, tx, port);
    return;
  }
  if (!port) {
    await createInternalPort(m, tx, {
      network_id: networkId,
      project_id: net.project_id,
      device_owner: OWNER.dhcp,
      device_id: dhcpDeviceId(networkId),
      fixed_ips: wanted.map((subnet_id) => ({ subnet_id })),
    });
    return;
  }
  const held = await portAllocations(tx, port.id);
  const want = new Set(wanted);
  const keep = held.filter((a) => want.has(a.subnet_id));
  const add = wanted.filter((s) => !held.some((a) => a.subnet_id === s));
  if (keep.length === held.length && !add.length) return;
  await replaceFixedIps(tx, port, [...keep.map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address })), ...add.map((subnet_id) => ({ subnet_id }))]);
  await m.emit(tx, m.kindOf("port"), port.id, "update");
}
