// Host agents, as `GET /v2.0/agents` shows them (F18). An agent registers
// through the southbound with its host name, VTEP address, roles and what its
// kernel can do; a registration is a logged change (other hosts' FDB depends on
// the VTEP), a heartbeat is not (liveness is computed when read).
import { badRequest, conflict } from "../errors.ts";
import { agent as def } from "../model/resources.ts";
import type { Registration } from "../../contract/southbound.ts";
import type { Kind, Model, View } from "./model.ts";
import { deleteRec, findRecs, insertRec, newRec, type Rec, updateRec } from "./repo.ts";

/** Neutron prints agent times as "YYYY-MM-DD HH:MM:SS". */
const agentTime = (iso: string) => iso.replace("T", " ").replace(/(\.\d+)?Z$/, "");

export function isAlive(m: Model, heartbeatAt: string, at = Date.now()): boolean {
  return at - Date.parse(heartbeatAt) <= m.config.agentDownTimeSec * 1000;
}

export const agents: Kind = {
  def,
  scope: (ctx) => (ctx.isAdmin ? undefined : null),
  async hydrate(m, _q, recs) {
    return recs.map((r): View => ({
      id: r.id,
      agent_type: "Seam agent",
      binary: "seam-agent",
      host: r.host,
      topic: "N/A",
      availability_zone: null,
      admin_state_up: r.admin_state_up !== false,
      alive: isAlive(m, r.heartbeat_at as string),
      description: r.description ?? "",
      configurations: r.configurations ?? {},
      resources_synced: null,
      created_at: agentTime(r.created_at),
      started_at: agentTime(r.started_at as string),
      heartbeat_timestamp: agentTime(r.heartbeat_at as string),
    }));
  },
  async canSee(_m, _q, _rec, ctx) {
    return ctx.isAdmin;
  },
  async update(_m, tx, _ctx, rec, input) {
    return updateRec(tx, def.table, { ...rec, ...input });
  },
  async remove(_m, tx, _ctx, rec) {
    await deleteRec(tx, def.table, rec.id);
  },
};

const HOST = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

export function checkHost(host: string): void {
  if (!HOST.test(host)) throw badRequest(`Invalid host name '${host}': letters, digits, '.', '_' and '-' only.`);
}

/** Registers (or re-registers after a restart) the agent of `host`; returns its view. */
export async function registerAgent(m: Model, host: string, reg: Registration): Promise<View> {
  checkHost(host);
  if (typeof reg?.vtep !== "string" || !IPV4.test(reg.vtep)) throw badRequest(`Invalid VTEP address '${String(reg?.vtep)}': an IPv4 address is required.`);
  const roles = [...new Set(reg.roles ?? [])];
  for (const r of roles) if (r !== "compute" && r !== "network") throw badRequest(`Unknown agent role '${r}': compute or network.`);
  const kind = m.kindOf("agent");
  const { value } = await m.write(async (tx) => {
    await tx.lock(`agent:${host}`);
    const taken = await tx.get<{ host: string }>("SELECT host FROM agents WHERE body LIKE ? AND host <> ?", [`%"tunneling_ip":"${reg.vtep}"%`, host]);
    if (taken) throw conflict("VtepInUse", `VTEP address ${reg.vtep} is already used by the agent of host ${taken.host}.`);
    const [existing] = await findRecs(tx, def.table, { host: [host] });
    const stamp = new Date().toISOString(); // milliseconds: liveness is judged against it
    const configurations = {
      tunneling_ip: reg.vtep,
      tunnel_types: ["vxlan"],
      roles,
      capabilities: reg.capabilities ?? {},
      version: reg.version ?? "",
    };
    let id: string;
    if (existing) {
      id = existing.id;
      await updateRec(tx, def.table, { ...existing, configurations, started_at: stamp, heartbeat_at: stamp });
    } else {
      const rec: Rec = newRec({ project_id: "", name: host }, { id: crypto.randomUUID(), host, configurations, started_at: stamp, heartbeat_at: stamp, admin_state_up: true, description: "" });
      id = rec.id;
      await insertRec(tx, def.table, rec);
    }
    return m.emit(tx, kind, id, existing ? "update" : "create");
  });
  return value;
}

/** Records a heartbeat; false when the host has no registered agent (it must register again). */
export async function heartbeat(m: Model, host: string): Promise<boolean> {
  const { value } = await m.write(async (tx) => (await tx.run("UPDATE agents SET heartbeat_at = ? WHERE host = ?", [new Date().toISOString(), host])) > 0);
  return value;
}
