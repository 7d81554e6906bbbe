// Trunks: a parent port carrying subports as VLANs. A port is the parent of
// at most one trunk (unique index) and a subport of at most one (primary key);
// a VLAN id is used once per trunk (unique index).
import { conflict, invalidInput, resourceNotFound } from "../errors.ts";
import type { RequestContext } from "../model/context.ts";
import { trunk as def } from "../model/resources.ts";
import * as v from "../model/validate.ts";
import type { Tx } from "../store/db.ts";
import { canSeeOwn, groupBy, isOwner, scopeOwn, rowsFor, standardTail } from "./common.ts";
import type { Kind, Model, View } from "./model.ts";
import { ports } from "./ports.ts";
import { deleteRec, getRec, insertRec, newRec, type Rec, updateRec } from "./repo.ts";

type Subport = { port_id: string; segmentation_type?: string; segmentation_id?: number };

async function addSubports(m: Model, tx: Tx, ctx: RequestContext, trunk: Rec, subs: Subport[]): Promise<void> {
  await tx.lock(`trunk:${trunk.id}`);
  const max = await tx.get<{ n: number | null }>("SELECT MAX(position) AS n FROM trunk_subports WHERE trunk_id = ?", [trunk.id]);
  let position = Number(max?.n ?? -1) + 1;
  const seen = new Set<string>();
  for (const s of subs) {
    if (s.segmentation_type === "inherit") throw invalidInput("sub_ports", "segmentation_type 'inherit' needs VLAN provider networks, which this deployment does not have");
    if (s.segmentation_type === undefined || s.segmentation_id === undefined) {
      throw invalidInput("sub_ports", `segmentation_type and segmentation_id are required for subport ${s.port_id}`);
    }
    await tx.lock(`port:${s.port_id}`);
    const port = await getRec(tx, "ports", s.port_id);
    if (!port || !isOwner(ctx, port)) throw resourceNotFound("port", s.port_id);
    if (port.id === trunk.port_id) throw conflict("PortInUseAsTrunkParent", `Port ${port.id} is currently a parent port for trunk ${trunk.id}.`);
    const parentOf = await tx.get<{ id: string }>("SELECT id FROM trunks WHERE port_id = ?", [port.id]);
    if (parentOf) throw conflict("PortInUseAsTrunkParent", `Port ${port.id} is currently a parent port for trunk ${parentOf.id}.`);
    const subOf = await tx.get<{ trunk_id: string }>("SELECT trunk_id FROM trunk_subports WHERE port_id = ?", [port.id]);
    if (subOf) throw conflict("PortInUseAsSubPort", `Port ${port.id} is currently a subport for trunk ${subOf.trunk_id}.`);
    const key = `${s.segmentation_type}:${s.segmentation_id}`;
    const dup = await tx.get("SELECT 1 AS x FROM trunk_subports WHERE trunk_id = ? AND segmentation_type = ? AND segmentation_id = ?", [trunk.id, s.segmentation_type, s.segmentation_id]);
    if (dup || seen.has(key)) {
      throw conflict("DuplicateSubPort", `segmentation_type ${s.segmentation_type} and segmentation_id ${s.segmentation_id} already in use on trunk ${trunk.id}.`);
    }
    seen.add(key);
    await tx.run("INSERT INTO trunk_subports (port_id, trunk_id, segmentation_type, segmentation_id, position) VALUES (?, ?, ?, ?, ?)", [
      port.id, trunk.id, s.segmentation_type, s.segmentation_id, position++,
    ]);
    await updateRec(tx, "ports", { ...port, device_owner: "trunk:subport", device_id: trunk.id });
    await m.emit(tx, ports, port.id, "update");
  }
}

async function dropSubport(m: Model, tx: Tx, portId: string): Promise<void> {
  await tx.run("DELETE FROM trunk_subports WHERE port_id = ?", [portId]);
  const port = await getRec(tx, "ports", portId);
  if (port && port.device_owner === "trunk:subport") {
    await updateRec(tx, "ports", { ...port, device_owner: "", device_id: "" });
    await m.emit(tx, ports, port.id, "update");
  }
}

export const trunks: Kind = {
  def,

  scope: scopeOwn,

  async hydrate(_m, q, recs) {
    const subs = groupBy(
      await rowsFor<{ trunk_id: string; port_id: string; segmentation_type: string; segmentation_id: number; position: number }>(
        q,
        "SELECT trunk_id, port_id, segmentation_type, segmentation_id, position FROM trunk_subports",
        "trunk_id",
        recs.map((r) => r.id),
      ),
      (s) => s.trunk_id,
    );
    return recs.map((r): View => ({
      id: r.id,
      name: r.name,
      description: r.description ?? "",
      project_id: r.project_id,
      port_id: r.port_id,
      admin_state_up: r.admin_state_up,
      status: "DOWN",
      sub_ports: (subs.get(r.id) ?? [])
        .sort((a, b) => Number(a.position) - Number(b.position))
        .map((s) => ({ port_id: s.port_id, segmentation_type: s.segmentation_type, segmentation_id: Number(s.segmentation_id) })),
      ...standardTail(r),
    }));
  },

  canSee: canSeeOwn,

  async create(m, tx, ctx, input) {
    // Under the parent's lock: it cannot be deleted, nor become another trunk's, until this commits.
    await tx.lock(`port:${input.port_id as string}`);
    const parent = await getRec(tx, "ports", input.port_id as string);
    if (!parent || !isOwner(ctx, parent)) throw resourceNotFound("port", input.port_id as string);
    const inUse = await tx.get<{ id: string }>("SELECT id FROM trunks WHERE port_id = ?", [parent.id]);
    if (inUse) throw conflict("TrunkPortInUse", `Port ${parent.id} is in use by another trunk.`);
    const sub = await tx.get<{ trunk_id: string }>("SELECT trunk_id FROM trunk_subports WHERE port_id = ?", [parent.id]);
    if (sub) throw conflict("PortInUseAsSubPort", `Port ${parent.id} is currently a subport for trunk ${sub.trunk_id}.`);
    const rec = newRec({ ...input, sub_ports: undefined });
    delete rec.sub_ports;
    await insertRec(tx, def.table, rec);
    await addSubports(m, tx, ctx, rec, (input.sub_ports as Subport[]) ?? []);
    await m.touch(tx, "port", parent.id);
    return rec;
  },

  async update(_m, tx, _ctx, rec, input) {
    return updateRec(tx, def.table, { ...rec, ...input });
  },

  async remove(m, tx, _ctx, rec) {
    for (const s of await tx.all<{ port_id: string }>("SELECT port_id FROM trunk_subports WHERE trunk_id = ?", [rec.id])) await dropSubport(m, tx, s.port_id);
    await deleteRec(tx, def.table, rec.id);
    await m.touch(tx, "port", rec.port_id as string);
  },
};

const subportList = v.shape({ sub_ports: v.list(v.shape({ port_id: v.uuid, segmentation_type: v.oneOf("vlan", "inherit"), segmentation_id: v.integer(1, 4094) }, ["port_id"])) }, ["sub_ports"]);

/** PUT /trunks/{id}/add_subports and /remove_subports; returns the trunk's view. */
export async function changeSubports(m: Model, ctx: RequestContext, trunkId: string, body: unknown, op: "add" | "remove"): Promise<View> {
  const { sub_ports } = subportList(body, "sub_ports") as { sub_ports: Subport[] };
  const { value } = await m.write(async (tx) => {
    const trunk = await m.writable(tx, trunks, ctx, trunkId, "update");
    if (op === "add") await addSubports(m, tx, ctx, trunk, sub_ports);
    else {
      for (const s of sub_ports) {
        const row = await tx.get("SELECT 1 AS x FROM trunk_subports WHERE trunk_id = ? AND port_id = ?", [trunk.id, s.port_id]);
        if (!row) throw resourceNotFound("port", `${s.port_id} (as a subport of trunk ${trunk.id})`);
        await dropSubport(m, tx, s.port_id);
      }
    }
    await updateRec(tx, def.table, trunk);
    await m.touch(tx, "port", trunk.port_id as string);
    return m.emit(tx, trunks, trunk.id, "update");
  });
  return value;
}
