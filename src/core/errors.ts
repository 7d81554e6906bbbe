// Errors of the model, named and shaped as Neutron names them, because Nova,
// Kuryr and the OpenStack SDK branch on `NeutronError.type`. Front doors turn
// them into HTTP; the core only throws them.

export class NeutronError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly detail = "",
  ) {
    super(message);
  }

  toBody(): { NeutronError: { type: string; message: string; detail: string } } {
    return { NeutronError: { type: this.type, message: this.message, detail: this.detail } };
  }
}

export const badRequest = (message: string, type = "HTTPBadRequest") => new NeutronError(400, type, message);

export const invalidInput = (attr: string, reason: string) =>
  badRequest(`Invalid input for ${attr}. Reason: ${reason}.`);

export const invalidOperation = (reason: string, type = "InvalidInput") =>
  badRequest(`Invalid input for operation: ${reason}.`, type);

export const notFound = (type: string, message: string) => new NeutronError(404, type, message);

export const conflict = (type: string, message: string) => new NeutronError(409, type, message);

export const policyDenied = (action: string) =>
  new NeutronError(403, "PolicyNotAuthorized", `(rule:${action}) is disallowed by policy`);

export const unauthenticated = () => new NeutronError(401, "Unauthorized", "The request you have made requires authentication.");

/** The "<Thing>NotFound" error Neutron uses for every resource kind. */
export function resourceNotFound(singular: string, id: string): NeutronError {
  const label: Record<string, [string, string]> = {
    network: ["NetworkNotFound", "Network"],
    subnet: ["SubnetNotFound", "Subnet"],
    port: ["PortNotFound", "Port"],
    router: ["RouterNotFound", "Router"],
    floatingip: ["FloatingIPNotFound", "Floating IP"],
    security_group: ["SecurityGroupNotFound", "Security group"],
    security_group_rule: ["SecurityGroupRuleNotFound", "Security group rule"],
    trunk: ["TrunkNotFound", "Trunk"],
    agent: ["AgentNotFound", "Agent"],
    rbac_policy: ["RbacPolicyNotFound", "RBAC policy"],
  };
  const [type, name] = label[singular] ?? ["NotFound", singular];
  return notFound(type, `${name} ${id} could not be found.`);
}
