// nftables through libnftables in the agent's process (os/nftables.ts), in a
// namespace of the test's own: a transaction goes in whole, a wrong one is
// refused whole with the library's message, and the tool is not what ran.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { ROOT } from "./support/http.ts";
import { isRoot } from "./support/lab.ts";

const NS = `seam-nftlib-${process.pid}`;
const inNs = (...args: string[]) => execFileSync("ip", ["netns", "exec", NS, ...args], { encoding: "utf8" });

/** Runs a transaction through Exec.here in a process inside the test's namespace; what it said. */
function transact(lines: string[]): { ok: boolean; error?: string; lib: boolean } {
  const script = `
    import { Exec } from "${ROOT}/src/os/exec.ts";
    import { nftables } from "${ROOT}/src/os/nftables.ts";
    const lib = nftables().binding !== null;
    try { await Exec.here.nft(${JSON.stringify(lines)}); console.log(JSON.stringify({ ok: true, lib })); }
    catch (e) { console.log(JSON.stringify({ ok: false, error: e.message, lib })); }`;
  return JSON.parse(inNs(process.execPath, "--import", "tsx", "--input-type=module", "-e", script).trim().split("\n").at(-1)!);
}

describe("nftables in-process", { skip: isRoot ? false : "needs root for namespaces" }, () => {
  before(() => execFileSync("ip", ["netns", "add", NS]));
  after(() => execFileSync("ip", ["netns", "del", NS]));

  it("applies a transaction through the library, whole", () => {
    const r = transact(["add table inet t", "add chain inet t c", "add set inet t s { type ipv4_addr; flags interval; }", "add rule inet t c ip saddr @s accept", "add element inet t s { 10.0.0.0/8 }"]);
    assert.deepEqual(r, { ok: true, lib: true });
    assert.match(inNs("nft", "list", "table", "inet", "t"), /ip saddr @s accept/);
  });

  it("refuses a wrong transaction whole, saying why", () => {
    const r = transact(["add chain inet t d", "add rule inet t nosuchchain accept"]);
    assert.equal(r.ok, false);
    assert.match(r.error!, /No such file or directory/);
    assert.doesNotMatch(inNs("nft", "list", "table", "inet", "t"), /chain d/, "nothing of it went in");
  });
});
