// scripts/install.sh into a DESTDIR, then the installed tree run as the
// systemd units run it: their Environment= and EnvironmentFile=, no Node.js on
// PATH, no sources and no TypeScript at run time. The units pass
// `systemd-analyze verify`; a second install keeps the operator's settings.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { freePort } from "../src/os/ports.ts";
import { passwordLogin, ROOT, stopProcess } from "./support/http.ts";

const run = promisify(execFile);
const dest = mkdtempSync(join(tmpdir(), "seam-install-"));
const opt = join(dest, "opt", "seam");
let server: ChildProcess | null = null;

/** A unit's lines KEY=VALUE for KEY, in order. */
const directives = (unit: string, key: string) =>
  unit
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

/** The unit as it reads with its paths under the DESTDIR. */
const rooted = (text: string) => text.replaceAll("/opt/seam", opt).replaceAll("/etc/seam", join(dest, "etc", "seam"));

/** The environment systemd gives the unit's commands: Environment= lines, then EnvironmentFile= (no PATH with a Node.js). */
function unitEnvironment(unit: string): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const e of directives(unit, "Environment")) {
    const [k, ...v] = e.split("=");
    env[k!] = v.join("=");
  }
  for (const f of directives(unit, "EnvironmentFile")) {
    const path = f.replace(/^-/, "");
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1");
    }
  }
  return env;
}

describe("scripts/install.sh and the systemd units", () => {
  before(async () => {
    if (!existsSync(join(ROOT, "dist", ".built")) || execFileSync("find", [join(ROOT, "src"), "-newer", join(ROOT, "dist", ".built"), "-print", "-quit"]).length) {
      await run("bash", [join(ROOT, "scripts", "build-js.sh")]);
    }
    const { stderr } = await run("bash", [join(ROOT, "scripts", "install.sh")], { env: { ...process.env, DESTDIR: dest } });
    assert.doesNotMatch(stderr, /error/i);
  });
  after(async () => {
    if (server) await stopProcess(server);
    rmSync(dest, { recursive: true, force: true });
  });

  it("installs compiled JavaScript, production dependencies and its own Node.js: no sources, no TypeScript, no tsx", () => {
    assert.ok(existsSync(join(opt, "dist", "cli", "main.js")));
    assert.ok(existsSync(join(opt, "dist", "contract", "cni-versions.json")), "data files beside the code");
    assert.equal(existsSync(join(opt, "src")), false);
    const modules = readdirSync(join(opt, "node_modules"));
    for (const dev of ["tsx", "typescript", "esbuild"]) assert.equal(modules.includes(dev), false, `${dev} is not installed`);
    assert.ok(modules.includes("fastify") && modules.includes("better-sqlite3"));
    assert.match(execFileSync(join(opt, "var", "node", "bin", "node"), ["--version"]).toString(), /^v22\./);
    assert.equal(readFileSync(join(dest, "etc", "seam", "seam.yaml"), "utf8"), readFileSync(join(ROOT, "etc", "seam.yaml.example"), "utf8"));
    assert.equal((execFileSync("stat", ["-c", "%a", join(dest, "etc", "seam", "seam.env")]).toString().trim()), "600", "secrets' file is the owner's only");
  });

  it("the units pass systemd-analyze verify", async () => {
    for (const name of ["seam-server.service", "seam-agent.service"]) {
      const copy = join(dest, name);
      writeFileSync(copy, rooted(readFileSync(join(dest, "etc", "systemd", "system", name), "utf8")));
      const r = await run("systemd-analyze", ["verify", copy]).catch((e: { stderr: string; code: number }) => e);
      // verify also reports on the host's own units; only our unit's lines matter
      const ours = (r.stderr ?? "").split("\n").filter((l) => l.includes(name));
      assert.deepEqual(ours, [], `${name}: ${r.stderr}`);
    }
  });

  it("the server unit's commands, run as systemd runs them, upgrade the store and start the compiled server on the project's Node.js", async () => {
    const unit = rooted(readFileSync(join(dest, "etc", "systemd", "system", "seam-server.service"), "utf8"));
    const port = await freePort();
    const state = join(dest, "var", "lib", "seam");
    // the operator's settings: where systemd's StateDirectory= would be, on a free port
    writeFileSync(join(dest, "etc", "seam", "seam.env"), `SEAM_DB=sqlite:${state}/seam.db\nSEAM_LISTEN=127.0.0.1:${port}\nSEAM_IDENTITY=${join(dest, "etc", "seam", "identity.yaml")}\n`);
    const env = unitEnvironment(unit);
    assert.equal(env.SEAM_CONFIG, join(dest, "etc", "seam", "seam.yaml"));
    const [pre] = directives(unit, "ExecStartPre");
    const [start] = directives(unit, "ExecStart");
    const preArgs = pre!.split(" ");
    const up = await run(preArgs[0]!, preArgs.slice(1), { env, cwd: dest });
    assert.match(up.stderr, /applying \d+ migration\(s\), 0 -> \d+/);
    const startArgs = start!.split(" ");
    server = spawn(startArgs[0]!, startArgs.slice(1), { env, cwd: dest, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    server.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes("listening on")) {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the installed server did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(stderr, new RegExp(`listening on http://127\\.0\\.0\\.1:${port} \\(store sqlite:${state}/seam\\.db, auth local\\)`));
    assert.doesNotMatch(stderr, /applied \d+ "/, "the store was upgraded before, by ExecStartPre");
    const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, "utf8").split("\0");
    assert.equal(cmdline[0], join(opt, "var", "node", "bin", "node"));
    assert.equal(cmdline[1], join(opt, "dist", "cli", "main.js"));
    const res = await passwordLogin(`http://127.0.0.1:${port}/v3`, "admin", "admin", "admin");
    assert.equal(res.status, 201);
  });

  it("installing again replaces the tree and keeps the operator's settings", async () => {
    const settings = join(dest, "etc", "seam", "seam.yaml");
    writeFileSync(settings, "server:\n  auth: local\n");
    writeFileSync(join(opt, "stale-file"), "from the old tree");
    await run("bash", [join(ROOT, "scripts", "install.sh")], { env: { ...process.env, DESTDIR: dest } });
    assert.equal(readFileSync(settings, "utf8"), "server:\n  auth: local\n");
    assert.equal(existsSync(join(opt, "stale-file")), false);
    assert.match(readFileSync(join(dest, "etc", "seam", "seam.env"), "utf8"), /SEAM_LISTEN=/);
  });
});
