// Tempest's network API tests against Seam behind a real Keystone: prints every
// failed test and the counts. `bash scripts/tempest.sh [REGEX]` (default
// ^tempest\.api\.network); `--serve` instead keeps Keystone and Seam up and
// writes a workspace to run `tempest run` in by hand while fixing a failure.
import { mkdtempSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initArgs, runTempest, startTempestCloud, TEMPEST_PYTHONPATH, tempestConf } from "../test/support/tempest.ts";

const args = process.argv.slice(2);
const serve = args.includes("--serve");
const regex = args.find((a) => !a.startsWith("--")) ?? "^tempest\\.api\\.network";
if (args.includes("--help")) {
  console.log("usage: bash scripts/tempest.sh [REGEX] [--serve]\n  REGEX    the tests to run (tempest run --regex), default ^tempest\\.api\\.network\n  --serve  start Keystone and Seam, write a Tempest workspace, and wait (Ctrl-C stops them)");
  process.exit(0);
}
const cloud = await startTempestCloud();
const stop = async () => {
  await cloud.stop();
  process.exit(process.exitCode ?? 0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (serve) {
  const workdir = mkdtempSync(join(tmpdir(), "seam-tempest-"));
  const ws = join(workdir, "ws");
  execFileSync("tempest", initArgs(workdir), { stdio: "ignore" });
  writeFileSync(join(ws, "etc", "tempest.conf"), tempestConf(cloud, ws));
  console.log(`tempest: Keystone at ${cloud.ks.url}, Seam at ${cloud.seamUrl}\n  cd ${ws} && PYTHONPATH=${TEMPEST_PYTHONPATH} tempest run --regex '${regex}'`);
} else {
  console.error(`tempest: Keystone at ${cloud.ks.url}, Seam at ${cloud.seamUrl}; running ${regex}`);
  try {
    const r = await runTempest(cloud, regex, { onLine: (l) => /\.\.\. (ok|FAILED|SKIPPED)/.test(l) && console.error(l) });
    for (const f of r.failures) console.log(`FAILED ${f}`);
    console.log(`tempest: ${r.passed} passed, ${r.skipped} skipped, ${r.failed} failed`);
    process.exitCode = r.failed ? 1 : 0;
  } finally {
    await stop();
  }
}
