// `seam host-credential create|delete --host H`: an agent's own credential,
// good for its host's southbound calls only (src/southbound/host-credentials.ts).
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { ApiClient } from "../client/api-client.ts";
import { credentialsFrom, transportFrom, withCredentials } from "./credentials.ts";

const serverOf = (o: { server?: string }) => (o.server ?? process.env.SEAM_SERVER ?? "http://127.0.0.1:9696").replace(/\/$/, "");

export function registerHostCredential(program: Command): void {
  const cmd = program.command("host-credential").description("an agent's credential: it may act for its own host only (give it to `seam agent --credential-file`)");
  withCredentials(
    cmd
      .command("create")
      .description("issue HOST's credential (replacing an earlier one) and print it, or write it to --output (mode 0600)")
      .requiredOption("--host <name>", "the agent's host")
      .option("--output <file>", "write the credential here instead of printing it")
      .option("--server <url>", "the controller (default: env SEAM_SERVER, else http://127.0.0.1:9696)"),
  ).action(async (o) => {
    const api = new ApiClient(serverOf(o), credentialsFrom(o), undefined, transportFrom(o));
    const body = (await api.ok(await api.call("POST", `/api/v1/hosts/${encodeURIComponent(o.host)}/credential`))) as { credential: string };
    if (o.output) {
      writeFileSync(o.output, `${body.credential}\n`, { mode: 0o600 });
      process.stderr.write(`seam: ${o.host}'s credential written to ${o.output}\n`);
    } else process.stdout.write(`${body.credential}\n`);
  });
  withCredentials(
    cmd
      .command("delete")
      .description("revoke HOST's credential: its agent is refused until given a new one")
      .requiredOption("--host <name>", "the agent's host")
      .option("--server <url>", "the controller (default: env SEAM_SERVER, else http://127.0.0.1:9696)"),
  ).action(async (o) => {
    const api = new ApiClient(serverOf(o), credentialsFrom(o), undefined, transportFrom(o));
    await api.ok(await api.call("DELETE", `/api/v1/hosts/${encodeURIComponent(o.host)}/credential`));
    process.stderr.write(`seam: ${o.host}'s credential revoked\n`);
  });
}
