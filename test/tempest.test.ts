// OpenStack's own API test suite, Tempest's tempest.api.network (Debian's
// tempest 33), against Seam behind a real Keystone with dynamic credentials:
// every test Tempest runs for the extensions Seam lists must pass, except the
// ones below, each with its reason. A test that starts passing fails this too,
// so the list only ever shrinks.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { countResults, runTempest, startTempestCloud, type TempestCloud } from "./support/tempest.ts";

/** Failing here as against real Neutron 21 on this machine (244 passed, 8 skipped, 2 failed: these two). */
const EXPECTED_FAILURES: Readonly<Record<string, string>> = {
  // Seam has no per-network DHCP agents to schedule: every network host serves every DHCP network
  // (docs/neutron-differences.md). The listing of which agent serves a network is there; moving one is not.
  "tempest.api.network.admin.test_dhcp_agent_scheduler.DHCPAgentSchedulersTestJSON.test_add_remove_network_from_dhcp_agent": "no DHCP agent to move a network to",
  "tempest.api.network.admin.test_dhcp_agent_scheduler.DHCPAgentSchedulersTestJSON.test_list_networks_hosted_by_one_dhcp": "no DHCP agent in the Tempest cloud",
};

describe("Tempest tempest.api.network against Seam and a real Keystone", () => {
  let cloud: TempestCloud;
  before(async () => {
    cloud = await startTempestCloud();
  });
  after(async () => {
    await cloud?.stop();
  });

  it("reads stestr's results, a tagged test id among them", () => {
    const csv = [
      "test,status,start_time,stop_time",
      "tempest.api.network.test_a.T.test_one[id-1],success,x,y",
      '"tempest.api.network.test_a.T.test_two[id-2,negative]",failure,x,y',
      "setUpClass (tempest.api.network.test_b.U),failure,x,y",
      "tempest.api.network.test_a.T.test_three[id-3],skip,x,y",
    ].join("\n");
    assert.deepEqual(countResults(csv), {
      passed: 1, skipped: 1, failed: 2,
      failures: ["setUpClass (tempest.api.network.test_b.U)", "tempest.api.network.test_a.T.test_two"],
    });
  });

  it("passes every test of the extensions Seam lists but the known ones", { timeout: 40 * 60_000 }, async () => {
    const started = Date.now();
    const r = await runTempest(cloud, "^tempest\\.api\\.network");
    console.log(`tempest.api.network: ${r.passed} passed, ${r.skipped} skipped, ${r.failed} failed in ${Math.round((Date.now() - started) / 1000)} s`);
    assert.ok(r.passed >= 200, `Tempest ran only ${r.passed} passing tests:\n${r.output.slice(-3000)}`);
    const unexpected = r.failures.filter((f) => !(f in EXPECTED_FAILURES));
    assert.deepEqual(unexpected, [], `failed:\n${r.output.slice(-8000)}`);
    assert.deepEqual(Object.keys(EXPECTED_FAILURES).filter((f) => !r.failures.includes(f)), [], "now passing: take them off EXPECTED_FAILURES");
  });
});
