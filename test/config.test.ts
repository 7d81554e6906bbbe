// Settings from /etc/seam/seam.yaml-style files and SEAM_* variables: the real
// `seam server` takes its listen address, store and identity from the file,
// the environment overrides the file and the command line both; mistakes name
// the file and line. The agent's required options may come from the file.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { Command } from "commander";
import { configFile, configure, withEnvironment } from "../src/cli/config.ts";
import { freePort } from "../src/os/ports.ts";
import { passwordLogin, ROOT, stopProcess } from "./support/http.ts";

const run = promisify(execFile);
const SEAM = join(ROOT, "bin", "seam");
const dir = mkdtempSync(join(tmpdir(), "seam-config-"));
const children: ChildProcess[] = [];

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function seam(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(SEAM, args, { timeout: 30_000, env: { PATH: process.env.PATH, HOME: dir, ...env } });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? "" };
  }
}

/** Starts `seam server ARGS` and resolves with the port it says it listens on. */
async function serve(args: string[], env: Record<string, string> = {}): Promise<number> {
  const child = spawn(SEAM, ["server", ...args], { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH, HOME: dir, ...env } });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+) \(store (\S+), auth (\w+)\)/.exec(stderr);
    if (m) return Number(m[1]);
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`seam server did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

after(async () => {
  for (const c of children) await stopProcess(c);
  rmSync(dir, { recursive: true, force: true });
});

describe("config file and environment", () => {
  it("the server takes listen, db, auth and identity from the file's server section", async () => {
    const port = await freePort();
    const cfg = file("a.yaml", `# a deployment's file\nserver:\n  listen: 127.0.0.1:${port}\n  db: sqlite:${join(dir, "a.db")}\n  auth: local\n  identity: ${join(ROOT, "etc", "identity.yaml")}\nagent:\n  host: ignored-by-the-server\n`);
    assert.equal(await serve(["--config", cfg]), port);
    // --auth local from the file: the built-in identity answers a login
    const res = await passwordLogin(`http://127.0.0.1:${port}/v3`, "demo", "demo", "demo");
    assert.equal(res.status, 201);
  });

  it("SEAM_* overrides the file, and the command line overrides both; SEAM_CONFIG names the file", async () => {
    const [filePort, envPort, cliPort] = [await freePort(), await freePort(), await freePort()];
    const cfg = file("b.yaml", `server:\n  listen: 127.0.0.1:${filePort}\n  db: sqlite:${join(dir, "b.db")}\n`);
    assert.equal(await serve([], { SEAM_CONFIG: cfg, SEAM_LISTEN: `127.0.0.1:${envPort}` }), envPort);
    assert.equal(await serve(["--listen", `127.0.0.1:${cliPort}`], { SEAM_CONFIG: cfg, SEAM_LISTEN: `127.0.0.1:${await freePort()}` }), cliPort);
  });

  it("a key that is no option, a bad value, an unknown section or broken YAML: the file and line, exit 2, nothing started", async () => {
    const typo = file("typo.yaml", "server:\n  db: 'sqlite::memory:'\n  lisen: 127.0.0.1:9\n");
    let r = await seam(["server", "--config", typo]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^seam: ${typo.replace(/\./g, "\\.")}:3: server\\.lisen is not an option of seam server \\(see seam server --help\\)\\n$`));
    const bad = file("bad.yaml", "server:\n  listen: everywhere\n");
    r = await seam(["server", "--config", bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:2: server\.listen: expected HOST:PORT, e\.g\. 127\.0\.0\.1:9696/);
    const section = file("section.yaml", "server: {}\nservers:\n  listen: 127.0.0.1:9\n");
    r = await seam(["server", "--config", section]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /section\.yaml:2: unknown section "servers" \(sections: server, agent\)/);
    const broken = file("broken.yaml", "server:\n  listen: [127.0.0.1:9\n");
    r = await seam(["server", "--config", broken]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /broken\.yaml: .*line 3|broken\.yaml: .*at line/);
    r = await seam(["server", "--config", join(dir, "absent.yaml")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read the config file .*absent\.yaml: no such file/);
    const flag = file("flag.yaml", "server:\n  distributed_routers: yes please\n");
    r = await seam(["server", "--config", flag]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /flag\.yaml:2: server\.distributed_routers: expected true or false/);
  });

  it("the agent's required options may come from its section (read before they are checked)", async () => {
    const cfg = file("agent.yaml", "agent:\n  host: compute-1\n  server: http://127.0.0.1:9\n  vtep: not-an-address\n");
    const r = await seam(["agent", "--config", cfg]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /agent\.yaml:4: agent\.vtep: expected an IPv4 address/);
    const none = await seam(["agent", "--config", file("empty.yaml", "server: {}\n")]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /required option '--host <name>' not specified/);
  });

  it("maps keys in either spelling onto flags, lists onto repeatable options, and leaves the command line's values alone", () => {
    const cmd = new Command("agent")
      .option("--role <role>", "", (v: string, p: string[]) => [...p, v], [] as string[])
      .option("--no-cni", "")
      .option("--state-dir <dir>", "")
      .option("--report-interval <s>", "", (v: string) => Number(v), 10)
      .option("--distributed-routers", "");
    withEnvironment(cmd);
    assert.equal(cmd.options.find((o) => o.long === "--state-dir")!.envVar, "SEAM_STATE_DIR");
    configure(cmd, ["--config", file("map.yaml", "agent:\n  role: [compute, network]\n  cni: false\n  state-dir: /from/the/file\n  report_interval: 3\n")], { SEAM_STATE_DIR: "/from/the/env", SEAM_DISTRIBUTED_ROUTERS: "true" });
    assert.deepEqual(cmd.opts(), { role: ["compute", "network"], cni: false, stateDir: "/from/the/env", reportInterval: 3, distributedRouters: true });
    assert.equal(cmd.getOptionValueSource("role"), "config");
    assert.equal(cmd.getOptionValueSource("stateDir"), "env");
    // and the command line over both
    cmd.parse(["--state-dir", "/from/the/command/line"], { from: "user" });
    assert.equal(cmd.opts().stateDir, "/from/the/command/line");
    assert.equal(cmd.opts().reportInterval, 3);
    assert.equal(configFile(["--host", "x", "--config=/etc/x.yaml"], {}), "/etc/x.yaml");
    assert.equal(configFile([], { SEAM_CONFIG: "/srv/seam.yaml" }), "/srv/seam.yaml");
  });
});
