// NetworkPolicies against the model on both stores (front/kubernetes/policies.ts):
// the groups and exactly their rules, each pod port's seam:policy, a second
// pass that changes nothing, and what a deleted policy leaves (nothing). The
// cluster's objects are given as data here; test/lab-network-policy.test.ts
// takes them from a real Kubernetes and checks the traffic.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { NeutronError } from "../src/core/errors.ts";
import { makeContext } from "../src/core/model/context.ts";
import { OWNER } from "../src/core/model/owners.ts";
import { networks, ports, securityGroups, subnets } from "../src/core/service/commands.ts";
import { createModel, type Model } from "../src/core/service/index.ts";
import type { Db } from "../src/core/store/db.ts";
import { openDb } from "../src/core/store/open.ts";
import { K8S_TAG } from "../src/front/kubernetes/mapping.ts";
import type { NetworkPolicyLike } from "../src/front/kubernetes/network-policy.ts";
import { reconcilePolicies } from "../src/front/kubernetes/policies.ts";
import { makeStore, type Store } from "./support/api.ts";

const status = async (p: Promise<unknown>) => p.then(() => 0, (e: unknown) => (e instanceof NeutronError ? e.status : -1));

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`NetworkPolicy groups on ${kind}`, () => {
    let store: Store;
    let db: Db;
    let m: Model;
    const uid = { web: "11111111-1111-4111-8111-111111111111", db: "22222222-2222-4222-8222-222222222222" };
    const namespaces = [{ metadata: { name: "shop", annotations: { "seam.io/network": '{"project":"k8s","name":"shop"}' } } }];
    const pods = [
      { metadata: { name: "web", namespace: "shop", uid: uid.web, labels: { app: "web" } }, spec: { nodeName: "host-1" } },
      { metadata: { name: "db", namespace: "shop", uid: uid.db, labels: { app: "db" } }, spec: { nodeName: "host-2" } },
    ];
    const policies: NetworkPolicyLike[] = [
      { metadata: { name: "deny", namespace: "shop", uid: "np-deny" }, spec: { podSelector: {}, policyTypes: ["Ingress"] } },
      {
        metadata: { name: "db-from-web", namespace: "shop", uid: "np-db" },
        spec: { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }, { ipBlock: { cidr: "192.168.100.3/32" } }], ports: [{ port: 5432 }] }] },
      },
    ];
    const cfg = { projectId: (p: string) => p };
    const warnings: string[] = [];
    const pass = (pol: NetworkPolicyLike[]) => reconcilePolicies(m, { namespaces, pods, policies: pol }, cfg, (w) => warnings.push(w));
    const portOf = async (u: string) => (await ports.find(m, m.system, { device: u }))[0]!;

    before(async () => {
      store = await makeStore(kind);
      db = await openDb(store.url);
      m = createModel(db);
      const net = await networks.create(m, m.system, { name: "shop", project: "k8s", tags: [] });
      await subnets.create(m, m.system, { network: net.id, project: "k8s", cidr: "192.168.100.0/24", name: "shop", tags: [] });
      for (const p of pods) await ports.create(m, m.system, { network: net.id, project: "k8s", name: p.metadata.name, owner: OWNER.kubernetes, device: p.metadata.uid, host: p.spec.nodeName, tags: [K8S_TAG] });
    });
    after(async () => {
      await db?.close();
      await store?.cleanup();
    });

    it("makes a group per policy with exactly its rules, a member group per peer, and isolates the selected ports", async () => {
      const r = await pass(policies);
      assert.equal(r.groupsMade, 3, "two policies and the web peer");
      const groups = await securityGroups.find(m, m.system, { tag: K8S_TAG });
      const deny = groups.find((g) => g.name === "k8s-np-shop-deny")!;
      const allow = groups.find((g) => g.name === "k8s-np-shop-db-from-web")!;
      const peer = groups.find((g) => g.name.startsWith("k8s-peer-"))!;
      assert.equal(deny.project, "k8s", "in the project of the namespace's network");
      assert.deepEqual(deny.rules, [], "deny-all: not even Neutron's egress-anywhere rules a new group is born with");
      assert.deepEqual(peer.rules, []);
      const rules = allow.rules.map((x) => `${x.direction} ${x.ethertype} ${x.protocol} ${x.portMin}-${x.portMax} ${x.remoteCidr ?? x.remoteGroup}`).sort();
      assert.deepEqual(rules, [`ingress IPv4 tcp 5432-5432 ${peer.id}`, "ingress IPv4 tcp 5432-5432 192.168.100.3/32", `ingress IPv6 tcp 5432-5432 ${peer.id}`].sort());
      const web = await portOf(uid.web);
      const dbp = await portOf(uid.db);
      assert.deepEqual(web.policy, { ingress: [deny.id], egress: null, memberOf: [peer.id] });
      assert.deepEqual(dbp.policy, { ingress: [allow.id, deny.id].sort(), egress: null, memberOf: [] });
    });

    it("changes nothing on a second pass", async () => {
      assert.deepEqual(await pass(policies), { groupsMade: 0, groupsRemoved: 0, rulesAdded: 0, rulesRemoved: 0, portsChanged: 0 });
    });

    it("repairs a rule removed by hand, and removes one added by hand to its group", async () => {
      const allow = (await securityGroups.find(m, m.system, { tag: K8S_TAG })).find((g) => g.name === "k8s-np-shop-db-from-web")!;
      await securityGroups.removeRule(m, m.system, allow.rules[0]!.id);
      await securityGroups.addRule(m, m.system, allow.id, { direction: "ingress", ethertype: "IPv4", protocol: "tcp", portMin: 22, portMax: 22, remoteCidr: null, remoteGroup: null });
      const r = await pass(policies);
      assert.equal(r.rulesAdded, 1);
      assert.equal(r.rulesRemoved, 1);
      const again = (await securityGroups.find(m, m.system, { tag: K8S_TAG })).find((g) => g.id === allow.id)!;
      assert.deepEqual(again.rules.map((x) => x.portMin), [5432, 5432, 5432]);
    });

    it("lets only an admin say a port's seam:policy", async () => {
      const web = await portOf(uid.web);
      assert.equal(await status(m.update(makeContext("k8s", "u", ["member"]), "port", web.id, { "seam:policy": null })), 403);
      assert.equal(await status(m.update(m.system, "port", web.id, { "seam:policy": { ingress: "x" } })), 400);
    });

    it("leaves nothing of a policy that is gone: ports back on their security groups, its groups deleted", async () => {
      const r = await pass([policies[1]!]);
      assert.equal(r.groupsRemoved, 1, "deny");
      assert.equal((await portOf(uid.web)).policy!.ingress, null, "web is no longer isolated, still a peer member");
      const r2 = await pass([]);
      assert.equal(r2.groupsRemoved, 2);
      assert.equal((await portOf(uid.web)).policy, null);
      assert.equal((await portOf(uid.db)).policy, null);
      assert.deepEqual(await securityGroups.find(m, m.system, { tag: K8S_TAG }), []);
      assert.deepEqual(warnings, []);
    });
  });
}
