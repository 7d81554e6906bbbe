// The model's wiring: which kinds exist and how they reach each other. Start
// reading here.
import { agent as agentDef } from "../model/resources.ts";
import type { Db, Tx } from "../store/db.ts";
import { floatingips } from "./floatingips.ts";
import { type Kind, Model, type ModelConfig, defaultConfig } from "./model.ts";
import { networks } from "./networks.ts";
import { deletePort, ports } from "./ports.ts";
import type { Rec } from "./repo.ts";
import { routers } from "./routers.ts";
import { ensureDefaultSecurityGroup, securityGroupRules, securityGroups } from "./security-groups.ts";
import { subnets } from "./subnets.ts";
import { trunks } from "./trunks.ts";

/** Agents register through the southbound (a later stage); until then the list is honestly empty. */
const agents: Kind = {
  def: agentDef,
  async load() {
    return [];
  },
  async hydrate(_m, _q, recs) {
    return recs;
  },
  async canSee() {
    return false;
  },
};

export function createModel(db: Db, config: ModelConfig = defaultConfig): Model {
  const m = new Model(db, config);
  for (const k of [networks, subnets, ports, routers, floatingips, securityGroups, securityGroupRules, trunks, agents]) m.register(k);
  m.hooks.ensureDefaultSecurityGroup = (tx: Tx, projectId: string) => ensureDefaultSecurityGroup(m, tx, projectId);
  m.hooks.deletePort = (tx: Tx, rec: Rec) => deletePort(m, tx, rec);
  return m;
}

export { Model, defaultConfig };
export type { ModelConfig };
