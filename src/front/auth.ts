// Turns a request into a RequestContext: `noauth` trusts headers (local
// development only), `local` checks a token of the built-in identity,
// `keystone` asks an external Keystone (the one Nova uses).
import type { FastifyRequest } from "fastify";
import { makeContext, type RequestContext } from "../core/model/context.ts";
import type { TokenIssuer } from "./identity/identity.ts";
import type { KeystoneValidator } from "./identity/keystone-validator.ts";

export interface Authenticator {
  readonly mode: "noauth" | "local" | "keystone";
  /** The caller, or null when the request is not authenticated. */
  contextFor(req: FastifyRequest): Promise<RequestContext | null>;
}

const header = (req: FastifyRequest, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Without headers the caller is the admin of project `admin`; with X-Project-Id alone, a member. */
export const noauth: Authenticator = {
  mode: "noauth",
  async contextFor(req) {
    const project = header(req, "x-project-id") ?? header(req, "x-tenant-id");
    const roles = header(req, "x-roles");
    if (project === undefined) return makeContext("admin", header(req, "x-user-id") ?? "admin", (roles ?? "admin").split(","));
    return makeContext(project, header(req, "x-user-id") ?? "noauth", (roles ?? "member").split(","));
  },
};

export function tokenAuth(issuer: TokenIssuer): Authenticator {
  return {
    mode: "local",
    async contextFor(req) {
      const claims = issuer.verify(header(req, "x-auth-token"));
      return claims ? makeContext(claims.projectId, claims.userId, claims.roles) : null;
    },
  };
}

export function keystoneAuth(validator: KeystoneValidator): Authenticator {
  return { mode: "keystone", contextFor: (req) => validator.validate(header(req, "x-auth-token")) };
}
