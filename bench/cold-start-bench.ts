// Cold start: `seam --help`, `seam db status` and an agent's start (process
// start to its first request at the controller), each run on the TypeScript
// sources through tsx (with its cache, and without: the first run after a
// change) and on the compiled JavaScript in dist/, with `node -e 0` as the
// baseline in the same run. Prints figures, never asserts on time.
//
//   node --import tsx bench/cold-start-bench.ts [--samples 20]
// The agent's start needs root (a network namespace); without it, that row is left out.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arg, pct } from "./support.ts";

const SAMPLES = arg("samples", 20);
const ROOT = join(import.meta.dirname, "..");
const NODE = existsSync(join(ROOT, "var/node/bin/node")) ? join(ROOT, "var/node/bin/node") : process.execPath;
const TSX = ["--import", `file://${ROOT}/node_modules/tsx/dist/loader.mjs`, join(ROOT, "src/cli/main.ts")];
const JS = [join(ROOT, "dist/cli/main.js")];
if (!existsSync(join(ROOT, "dist/.built"))) throw new Error("no dist/: run bash scripts/build-js.sh first");

const ways = {
  "tsx, no cache": { args: TSX, env: { TSX_DISABLE_CACHE: "1" } },
  "tsx, cached": { args: TSX, env: {} },
  compiled: { args: JS, env: {} },
} as const;

/** ms from spawn to exit (or to `until` resolving, when given), n times. */
async function time(cmd: string, args: readonly string[], env: Record<string, string>, until?: (child: ReturnType<typeof spawn>) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number>((r) => child.once("exit", (code) => r(code ?? -1)));
    if (until) {
      await until(child);
      out.push(performance.now() - t0);
      child.kill("SIGKILL");
      await exited;
    } else {
      const code = await exited;
      out.push(performance.now() - t0);
      if (code !== 0 && code !== 1) throw new Error(`${args.join(" ")} exited ${code}: ${stderr}`);
    }
  }
  return out;
}

const fmt = (xs: number[]) => `${pct(xs, 50).toFixed(0).padStart(5)} / ${pct(xs, 90).toFixed(0).padStart(5)}`;
const row = (name: string, cells: string[]) => console.log(`${name.padEnd(26)} ${cells.map((c) => c.padStart(16)).join(" ")}`);

const dir = mkdtempSync(join(tmpdir(), "seam-cold-"));
try {
  console.log(`cold start, ms p50 / p90 over ${SAMPLES} runs each (Node.js ${NODE === process.execPath ? process.version : NODE})\n`);
  const baseline = await time(NODE, ["-e", "0"], {});
  row("", Object.keys(ways));
  row("node -e 0 (baseline)", [fmt(baseline), "", ""]);
  const results: Record<string, Record<string, number[]>> = {};
  const commands: [string, string[]][] = [
    ["seam --help", ["--help"]],
    ["seam db status", ["db", "status", "--db", `sqlite:${join(dir, "absent.db")}`]],
  ];
  for (const [name, extra] of commands) {
    results[name] = {};
    for (const [way, w] of Object.entries(ways)) results[name]![way] = await time(NODE, [...w.args, ...extra], w.env);
    row(name, Object.values(results[name]!).map(fmt));
  }
  if (process.getuid?.() === 0) {
    results["agent start"] = {};
    for (const [way, w] of Object.entries(ways)) results["agent start"]![way] = await agentStart(w.args, w.env);
    row("agent start (to register)", Object.values(results["agent start"]!).map(fmt));
  } else console.log("agent start: needs root (left out)");
  console.log("\nratio of p50s, before / compiled (and over the baseline):");
  for (const [name, r] of Object.entries(results)) {
    const c = pct(r.compiled!, 50);
    const b = pct(baseline, 50);
    console.log(`  ${name.padEnd(26)} tsx no cache ${(pct(r["tsx, no cache"]!, 50) / c).toFixed(1)}x, tsx cached ${(pct(r["tsx, cached"]!, 50) / c).toFixed(1)}x; compiled is ${(c / b).toFixed(1)}x node -e 0`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * An agent in a namespace of its own (its kernel probes and helpers touch nothing
 * outside it), against a stand-in controller in the same namespace that notes
 * the agent's first request (its registration) on stdout.
 */
async function agentStart(args: readonly string[], env: Record<string, string>): Promise<number[]> {
  const ns = `seam-cold-${process.pid}`;
  const run = (cmd: string, a: string[]) => new Promise<void>((res, rej) => spawn(cmd, a, { stdio: "ignore" }).once("exit", (c) => (c === 0 ? res() : rej(new Error(`${cmd} ${a.join(" ")}: ${c}`)))));
  await run("ip", ["netns", "add", ns]);
  const controller = spawn("ip", ["netns", "exec", ns, NODE, "-e", `
    require("node:child_process").execFileSync("ip", ["link", "set", "lo", "up"]);
    require("node:http").createServer((req, res) => { process.stdout.write(req.method + " " + req.url + "\\n"); res.writeHead(503); res.end(); })
      .listen(19696, "127.0.0.1", () => process.stdout.write("ready\\n"));`], { stdio: ["ignore", "pipe", "inherit"] });
  let seen = "";
  let waiter: (() => void) | null = null;
  controller.stdout!.on("data", (d) => {
    seen += d;
    waiter?.();
  });
  const next = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (pattern.test(seen)) {
          seen = "";
          waiter = null;
          resolve();
        }
      };
      waiter = check;
      check();
    });
  try {
    await next(/ready/);
    const agentArgs = [...args, "agent", "--host", "cold", "--server", "http://127.0.0.1:19696", "--vtep", "192.0.2.1", "--no-cni", "--state-dir", join(dir, "agent")];
    return await time("ip", ["netns", "exec", ns, NODE, ...agentArgs], env, () => next(/PUT \/southbound/));
  } finally {
    controller.kill("SIGKILL");
    await run("ip", ["netns", "del", ns]).catch(() => undefined);
  }
}
