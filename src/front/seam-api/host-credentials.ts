// An operator's endpoints for agents' credentials: POST issues a host's
// credential (shown once), DELETE revokes it. Admin only.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { NeutronError, policyDenied, unauthenticated } from "../../core/errors.ts";
import { checkHost } from "../../core/service/agents.ts";
import type { Model } from "../../core/service/model.ts";
import { issueHostCredential, revokeHostCredential } from "../../southbound/host-credentials.ts";
import type { Authenticator } from "../auth.ts";

export function registerHostCredentials(app: FastifyInstance, model: Model, auth: Authenticator): void {
  const host = async (req: FastifyRequest, action: string): Promise<string> => {
    const ctx = await auth.contextFor(req);
    if (!ctx) throw unauthenticated();
    if (!ctx.isAdmin) throw policyDenied(action);
    const { host } = req.params as { host: string };
    checkHost(host);
    return host;
  };
  app.post("/api/v1/hosts/:host/credential", async (req, reply) => {
    const name = await host(req, "create_host_credential");
    return reply.code(201).send({ host: name, credential: await issueHostCredential(model.db, name) });
  });
  app.delete("/api/v1/hosts/:host/credential", async (req, reply) => {
    const name = await host(req, "delete_host_credential");
    if (!(await revokeHostCredential(model.db, name))) throw new NeutronError(404, "HostCredentialNotFound", `Host ${name} has no credential.`);
    return reply.code(204).send();
  });
}
