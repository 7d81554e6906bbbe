// The model's wiring: which kinds exist and how they reach each other. Start
// reading here.
import { agents } from "./agents.ts";
import type { Db, Tx } from "../store/db.ts";
import { floatingips } from "./floatingips.ts";
import { Model, type ModelConfig, defaultConfig } from "./model.ts";
import { networks } from "./networks.ts";
import { deletePort, ports } from "./ports.ts";
import { rbacPolicies } from "./rbac/policies.ts";
import type { Rec } from "./repo.ts";
import { routers } from "./routers.ts";
import { ensureDefaultSecurityGroup, securityGroupRules, securityGroups } from "./security-groups.ts";
import { services } from "./services.ts";
import { subnets } from "./subnets.ts";
import { subnetpools } from "./subnetpools.ts";
import { trunks } from "./trunks.ts";

export function createModel(db: Db, config: ModelConfig = defaultConfig): Model {
  const m = new Model(db, config);
  for (const k of [networks, subnets, subnetpools, ports, routers, floatingips, securityGroups, securityGroupRules, trunks, agents, services, rbacPolicies]) m.register(k);
  m.hooks.ensureDefaultSecurityGroup = (tx: Tx, projectId: string) => ensureDefaultSecurityGroup(m, tx, projectId);
  m.hooks.deletePort = (tx: Tx, rec: Rec) => deletePort(m, tx, rec);
  return m;
}

export { Model, defaultConfig };
export type { ModelConfig };
