// README's first command starts from a Debian 12 with no Node.js at all: a
// stock bookworm built here with debootstrap (minbase, plus what setup.sh
// installs for this part: curl, ca-certificates, openssl, python3, make, g++),
// the project's files copied in, and in that chroot scripts/setup-js.sh gets
// Node.js 22 from the npm registry, runs npm ci on it and compiles; then the
// compiled `seam` upgrades a store and serves a login. The lab's parts of
// setup.sh (qemu, podman, Kubernetes) are not run here: see docs/install.md.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { freePort } from "../src/os/ports.ts";
import { passwordLogin, ROOT, stopProcess } from "./support/http.ts";

const run = promisify(execFile);
const work = mkdtempSync(join(ROOT, "var", "fresh-debian-"));
const chroot = join(work, "root");
const CACHE = join(ROOT, "var", "cache", "debootstrap");
let server: ChildProcess | null = null;

/** The mirror this machine's apt uses (its first deb URIs), else Debian's. */
function mirror(): string {
  for (const f of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    const m = /^URIs:\s*(\S+)/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\b/m.exec(text);
    if (m && !m[1]!.includes("security")) return m[1]!;
  }
  return "http://deb.debian.org/debian";
}

/** Runs COMMAND in the chroot with a bare environment (no PATH entry of the host's). */
const inChroot = (command: string, timeout = 600_000) =>
  run("chroot", [chroot, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "bash", "-c", command], { timeout, maxBuffer: 64 * 1024 * 1024 });

const mounted = () => readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1]?.startsWith(chroot));

describe("setup on a stock Debian 12 without Node.js (debootstrap chroot)", () => {
  before(async () => {
    mkdirSync(CACHE, { recursive: true });
    await run("debootstrap", ["--variant=minbase", `--cache-dir=${CACHE}`, "--include=curl,ca-certificates,openssl,python3,make,g++", "bookworm", chroot, mirror()], { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    // This machine reaches the registries through an egress proxy with its own CA: a Debian
    // installed in this network trusts it as the host does (the host's local CAs, nothing else).
    for (const crt of readdirSync("/usr/local/share/ca-certificates").filter((f) => f.endsWith(".crt"))) {
      cpSync(join("/usr/local/share/ca-certificates", crt), join(chroot, "usr/local/share/ca-certificates", crt));
    }
    cpSync("/etc/resolv.conf", join(chroot, "etc/resolv.conf"));
    await inChroot("update-ca-certificates >/dev/null");
    // the project as a clean clone has it: tracked files and new ones not ignored
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT }).toString().split("\0").filter((f) => f && existsSync(join(ROOT, f)));
    for (const f of files) cpSync(join(ROOT, f), join(chroot, "root/seam", f), { recursive: true });
    execFileSync("mount", ["-t", "proc", "proc", join(chroot, "proc")]);
  });
  after(async () => {
    if (server) await stopProcess(server);
    if (existsSync(join(chroot, "proc/self"))) execFileSync("umount", [join(chroot, "proc")]);
    // never remove a tree with a file system still mounted in it
    if (mounted()) throw new Error(`${chroot} still has mounts: left in place`);
    rmSync(work, { recursive: true, force: true });
  });

  it("has no Node.js to begin with", async () => {
    await assert.rejects(inChroot("command -v node || command -v nodejs || command -v npm"));
    assert.equal(existsSync(join(chroot, "usr/bin/node")), false);
  });

  it("scripts/setup-js.sh brings Node.js 22 from the npm registry, runs npm ci on it and compiles", async () => {
    const { stdout } = await inChroot("cd /root/seam && bash scripts/setup-js.sh 2>&1");
    assert.match(stdout, /setup-node: Node\.js v22\.\d+\.\d+, npm 10\.\d+\.\d+ in var\/node/);
    const { stdout: version } = await inChroot("/root/seam/var/node/bin/node -p 'process.versions.node + \" \" + require(\"/root/seam/node_modules/better-sqlite3/package.json\").version'");
    assert.match(version, /^22\.\d+\.\d+ 12\./);
    assert.ok(existsSync(join(chroot, "root/seam/dist/.built")));
    // again: nothing fetched, nothing rebuilt
    const { stdout: again } = await inChroot("cd /root/seam && bash scripts/setup-js.sh 2>&1");
    assert.doesNotMatch(again, /fetching|npm ci/);
  });

  it("the compiled seam upgrades a store and serves a login, on the chroot's own Node.js", async () => {
    const { stdout } = await inChroot("cd /root/seam && ./bin/seam db upgrade --db sqlite:/root/seam.db 2>/dev/null && ./bin/seam db status --db sqlite:/root/seam.db");
    assert.match(stdout, /schema: (\d+) of \1, up to date/);
    const port = await freePort();
    server = spawn("chroot", [chroot, "env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "/root/seam/bin/seam", "server", "--listen", `127.0.0.1:${port}`, "--db", "sqlite:/root/seam.db", "--auth", "local", "--identity", "/root/seam/etc/identity.yaml"], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    server.stderr!.on("data", (d) => (log += d));
    const deadline = Date.now() + 30_000;
    while (!log.includes("listening on")) {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the server in the chroot did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // bin/seam ran the chroot's var/node on the compiled code
    assert.deepEqual(readFileSync(`/proc/${server.pid}/cmdline`, "utf8").split("\0").slice(0, 2), ["/root/seam/var/node/bin/node", "/root/seam/dist/cli/main.js"]);
    const res = await passwordLogin(`http://127.0.0.1:${port}/v3`, "demo", "demo", "demo");
    assert.equal(res.status, 201);
  });
});
