// Who is asking. Built by the auth front door (noauth headers or a token),
// consumed by policy. Roles follow Keystone's defaults: admin > member > reader.

export interface RequestContext {
  readonly projectId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
  /** member or admin: may create, change and delete its project's resources */
  readonly canWrite: boolean;
}

export function makeContext(projectId: string, userId: string, roles: readonly string[]): RequestContext {
  const lower = roles.map((r) => r.trim().toLowerCase()).filter(Boolean);
  const isAdmin = lower.includes("admin");
  const canWrite = isAdmin || lower.includes("member") || lower.includes("_member_");
  return { projectId, userId, roles: lower, isAdmin, canWrite };
}

export const adminContext = (projectId = "admin"): RequestContext => makeContext(projectId, "seam", ["admin"]);
