// How CLI commands that call the server authenticate: a token (or a file
// holding one: a host's credential for `seam agent`), a password (OpenStack's
// OS_* variables work too; OS_AUTH_URL names an external Keystone), or noauth
// headers for a lab server. Over https, the CA to trust.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Credentials, Transport } from "../client/api-client.ts";

export function withCredentials(cmd: Command): Command {
  return cmd
    .option("--os-username <name>", "user to log in as (env OS_USERNAME)")
    .option("--os-password <password>", "password (env OS_PASSWORD)")
    .option("--os-project-name <name>", "project to scope the token to (env OS_PROJECT_NAME)", undefined)
    .option("--os-token <token>", "an existing token (env OS_TOKEN)")
    .option("--os-auth-url <url>", "Keystone's v3 endpoint to log in at (env OS_AUTH_URL); default: the server's /v3")
    .option("--credential-file <file>", "a file holding the token to present: a host's credential (`seam host-credential create`) for `seam agent` (env SEAM_CREDENTIAL_FILE)")
    .option("--ca-file <file>", "with an https server: trust only this CA's certificates (PEM; env SEAM_CA_FILE, or OS_CACERT); default: the system's CAs");
}

export function transportFrom(o: Record<string, string | undefined>): Transport {
  const caFile = o.caFile ?? process.env.SEAM_CA_FILE ?? process.env.OS_CACERT;
  return caFile ? { caFile } : {};
}

export function credentialsFrom(o: Record<string, string | undefined>): Credentials {
  const file = o.credentialFile ?? process.env.SEAM_CREDENTIAL_FILE;
  if (file) {
    let token: string;
    try {
      token = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new Error(`cannot read --credential-file ${file}: ${(e as Error).message}`);
    }
    if (!token) throw new Error(`--credential-file ${file} is empty`);
    return { kind: "token", token };
  }
  const token = o.osToken ?? process.env.OS_TOKEN;
  if (token) return { kind: "token", token };
  const username = o.osUsername ?? process.env.OS_USERNAME;
  const password = o.osPassword ?? process.env.OS_PASSWORD;
  if (username && password) return { kind: "password", username, password, project: o.osProjectName ?? process.env.OS_PROJECT_NAME ?? "admin", authUrl: o.osAuthUrl ?? process.env.OS_AUTH_URL };
  return { kind: "noauth" };
}
