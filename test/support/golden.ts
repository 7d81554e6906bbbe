// Golden files: the whole of a rendered output compared with a reviewed copy
// in test/golden/. SEAM_UPDATE_GOLDEN=1 writes them anew (then read the diff).
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const DIR = join(import.meta.dirname, "..", "golden");

export function assertGolden(name: string, actual: string): void {
  const path = join(DIR, name);
  if (process.env.SEAM_UPDATE_GOLDEN) {
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) assert.fail(`no golden file ${path}: run with SEAM_UPDATE_GOLDEN=1, then review it`);
  assert.equal(actual, readFileSync(path, "utf8"), `${name} differs from its golden file (SEAM_UPDATE_GOLDEN=1 rewrites it)`);
}
