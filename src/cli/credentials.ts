// How CLI commands that call the server authenticate: a token, a password
// (OpenStack's OS_* variables work too), or noauth headers for a lab server.
import type { Command } from "commander";
import type { Credentials } from "../client/api-client.ts";

export function withCredentials(cmd: Command): Command {
  return cmd
    .option("--os-username <name>", "user to log in as (env OS_USERNAME)")
    .option("--os-password <password>", "password (env OS_PASSWORD)")
    .option("--os-project-name <name>", "project to scope the token to (env OS_PROJECT_NAME)", undefined)
    .option("--os-token <token>", "an existing token (env OS_TOKEN)");
}

export function credentialsFrom(o: Record<string, string | undefined>): Credentials {
  const token = o.osToken ?? process.env.OS_TOKEN;
  if (token) return { kind: "token", token };
  const username = o.osUsername ?? process.env.OS_USERNAME;
  const password = o.osPassword ?? process.env.OS_PASSWORD;
  if (username && password) return { kind: "password", username, password, project: o.osProjectName ?? process.env.OS_PROJECT_NAME ?? "admin" };
  return { kind: "noauth" };
}
