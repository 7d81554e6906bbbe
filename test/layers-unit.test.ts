// The tree's layering as a test (docs/tree.md): which folder may import which.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { it } from "node:test";

const SRC = resolve(import.meta.dirname, "..", "src");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/** src-relative file -> src-relative files it imports */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of files(SRC)) {
    const text = readFileSync(f, "utf8");
    const deps = [...text.matchAll(/(?:from|import\s*\(?)\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => relative(SRC, resolve(dirname(f), m[1]!)));
    out.set(relative(SRC, f), deps);
  }
  return out;
}

/** Each rule: files under `from` may import only under one of `only`. */
const RULES: { from: string; only: string[] }[] = [
  { from: "contract/", only: ["contract/"] },
  { from: "net/", only: ["net/"] },
  // os/ may read addresses (net/ is pure arithmetic): netlink carries them as bytes
  { from: "os/", only: ["os/", "net/"] },
  { from: "client/", only: ["client/"] },
  { from: "core/compiler/", only: ["core/compiler/", "contract/", "core/model/owners.ts", "core/model/placement.ts"] },
  { from: "agent/", only: ["agent/", "contract/", "net/", "os/", "client/"] },
  { from: "core/", only: ["core/", "contract/", "net/"] },
];

it("keeps each layer to what it may import", () => {
  const broken: string[] = [];
  for (const [file, deps] of imports()) {
    const rule = RULES.find((r) => file.startsWith(r.from));
    if (!rule) continue;
    for (const d of deps) if (!rule.only.some((p) => d.startsWith(p))) broken.push(`${file} imports ${d}`);
  }
  assert.deepEqual(broken, []);
});

it("reads the change log only through the change feed", () => {
  const readers = files(SRC).filter((f) => /FROM changes\b/.test(readFileSync(f, "utf8"))).map((f) => relative(SRC, f));
  assert.deepEqual(readers, ["core/store/change-feed.ts"]);
});

it("has no import cycles (static or dynamic)", () => {
  const graph = imports();
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      cycles.push([...path.slice(path.indexOf(f)), f].join(" -> "));
      return;
    }
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});
