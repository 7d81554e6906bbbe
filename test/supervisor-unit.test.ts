// The helper-process supervisor with real processes: it starts a helper,
// restarts it when it dies, restarts it when its command changes and only
// then, passes its output on line by line, and stops it for good.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Supervisor } from "../src/os/supervisor.ts";

const until = async (what: string, ok: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("supervisor", () => {
  it("restarts a helper that dies, keeps it when asked again for the same command, and replaces it when the command changes", async () => {
    const logs: string[] = [];
    const s = new Supervisor((m) => logs.push(m));
    try {
      s.ensure("sleeper", { cmd: "sleep", args: ["30"] });
      await until("the helper to start", () => alive(s.status().get("sleeper")?.pid));
      const first = s.status().get("sleeper")!.pid!;
      s.ensure("sleeper", { cmd: "sleep", args: ["30"] });
      assert.equal(s.status().get("sleeper")!.pid, first, "the same command: left alone");
      process.kill(first, "SIGKILL");
      await until("a restart", () => (s.status().get("sleeper")?.restarts ?? 0) === 1 && alive(s.status().get("sleeper")?.pid));
      assert.notEqual(s.status().get("sleeper")!.pid, first);
      assert.match(logs.join("\n"), /sleeper exited \(SIGKILL\); restarting in \d+ ms/);
      const second = s.status().get("sleeper")!.pid!;
      s.ensure("sleeper", { cmd: "sleep", args: ["31"] });
      await until("the old one to go", () => !alive(second));
      await until("the new one to run", () => alive(s.status().get("sleeper")?.pid));
    } finally {
      await s.stopAll();
    }
    assert.equal(s.status().size, 0);
  });

  it("passes a helper's output on line by line, and stops it for good", async () => {
    const s = new Supervisor();
    const lines: string[] = [];
    s.ensure("talker", { cmd: "sh", args: ["-c", "echo one; echo two; exec sleep 30"], onLine: (l) => lines.push(l) });
    await until("two lines", () => lines.length === 2);
    assert.deepEqual(lines, ["one", "two"]);
    const pid = s.status().get("talker")!.pid;
    await s.stop("talker");
    assert.ok(!alive(pid), "stopped");
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(!s.status().has("talker"), "and not restarted");
  });
});
