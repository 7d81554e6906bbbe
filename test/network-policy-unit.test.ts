// NetworkPolicy -> security groups, as pure functions (front/kubernetes/network-policy.ts),
// and the CIDR subtraction behind ipBlock's `except`.
import assert from "node:assert/strict";
import { it } from "node:test";
import { type NetworkPolicyLike, type PolicyNamespace, selects, wantedPolicies } from "../src/front/kubernetes/network-policy.ts";
import { cidrMinus, formatCidr, parseCidr } from "../src/net/address.ts";

const c = (t: string) => parseCidr(t)!;
const minus = (from: string, ...cut: string[]) => cidrMinus(c(from), cut.map(c)).map(formatCidr);

it("cuts exceptions out of a CIDR as the fewest blocks that cover exactly the rest", () => {
  assert.deepEqual(minus("10.0.0.0/24"), ["10.0.0.0/24"]);
  assert.deepEqual(minus("10.0.0.0/24", "10.0.0.0/24"), []);
  assert.deepEqual(minus("10.0.0.0/24", "10.0.0.0/8"), [], "a cut wider than the block leaves nothing");
  assert.deepEqual(minus("10.0.0.0/24", "10.0.0.128/25"), ["10.0.0.0/25"]);
  assert.deepEqual(minus("10.0.0.0/24", "10.0.0.5/32"), ["10.0.0.0/30", "10.0.0.4/32", "10.0.0.6/31", "10.0.0.8/29", "10.0.0.16/28", "10.0.0.32/27", "10.0.0.64/26", "10.0.0.128/25"]);
  assert.deepEqual(minus("10.0.0.0/24", "192.168.0.0/16", "fd00::/8"), ["10.0.0.0/24"], "cuts elsewhere or of the other family change nothing");
  // what is left never holds a cut address, and holds every other one: checked address by address on a /26
  const left = cidrMinus(c("10.0.0.0/26"), [c("10.0.0.8/30"), c("10.0.0.33/32")]);
  for (let i = 0; i < 64; i++) {
    const a = (10n << 24n) + BigInt(i);
    const inLeft = left.some((b) => a >= b.network && a < b.network + (1n << BigInt(32 - b.prefixLen)));
    assert.equal(inLeft, !((i >= 8 && i < 12) || i === 33), `10.0.0.${i}`);
  }
});

it("matches label selectors as Kubernetes does: labels, In, NotIn, Exists, DoesNotExist; empty is everything, none is nothing", () => {
  const l = { app: "web", tier: "front" };
  assert.equal(selects({}, l), true);
  assert.equal(selects(null, l), false);
  assert.equal(selects({ matchLabels: { app: "web" } }, l), true);
  assert.equal(selects({ matchLabels: { app: "db" } }, l), false);
  assert.equal(selects({ matchExpressions: [{ key: "tier", operator: "In", values: ["front", "back"] }] }, l), true);
  assert.equal(selects({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["front"] }] }, l), false);
  assert.equal(selects({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, l), true);
  assert.equal(selects({ matchExpressions: [{ key: "app", operator: "Exists" }] }, l), true);
  assert.equal(selects({ matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, l), false);
  assert.equal(selects({ matchExpressions: [{ key: "app", operator: "Gt", values: ["1"] }] }, l), false);
});

const pods = [
  { uid: "a", namespace: "shop", labels: { app: "web" } },
  { uid: "b", namespace: "shop", labels: { app: "db" } },
  { uid: "c", namespace: "ops", labels: { app: "probe" } },
];
const namespaces: PolicyNamespace[] = [
  { name: "shop", labels: {} },
  { name: "ops", labels: { team: "ops" } },
];
const policy = (name: string, spec: NetworkPolicyLike["spec"]): NetworkPolicyLike => ({ metadata: { name, namespace: "shop", uid: `uid-${name}` }, spec });

it("isolates the selected pods for ingress with no rule at all for a deny-all policy, and leaves egress and other pods alone", () => {
  const w = wantedPolicies([policy("deny", { podSelector: {}, policyTypes: ["Ingress"] })], namespaces, pods);
  assert.deepEqual(w.groups.get("np-uid-deny")!.rules, []);
  assert.deepEqual(w.ports.get("a"), { ingress: ["np-uid-deny"], egress: null, memberOf: [] });
  assert.deepEqual(w.ports.get("b"), { ingress: ["np-uid-deny"], egress: null, memberOf: [] });
  assert.equal(w.ports.get("c"), undefined, "a pod of another namespace is not selected");
});

it("maps peers to member groups, ipBlock with except to CIDRs, and ports to protocol and range, both families where the peer has none", () => {
  const w = wantedPolicies(
    [
      policy("allow", {
        podSelector: { matchLabels: { app: "db" } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: "web" } } }, { namespaceSelector: { matchLabels: { team: "ops" } } }], ports: [{ port: 5432 }] },
          { from: [{ ipBlock: { cidr: "192.168.100.0/24", except: ["192.168.100.128/25"] } }] },
          { ports: [{ protocol: "UDP", port: 53 }, { port: "http" }] },
        ],
      }),
    ],
    namespaces,
    pods,
  );
  const peers = [...w.groups.values()].filter((g) => g.key.startsWith("peer-"));
  assert.equal(peers.length, 2);
  const web = peers.find((g) => g.description.includes("web"))!;
  const ops = peers.find((g) => g.description.includes("team"))!;
  assert.deepEqual(w.ports.get("a"), { ingress: null, egress: null, memberOf: [web.key] }, "pod a: a member of the web peer, not isolated");
  assert.deepEqual(w.ports.get("c"), { ingress: null, egress: null, memberOf: [ops.key] }, "every pod of the ops namespace");
  assert.deepEqual(w.ports.get("b"), { ingress: ["np-uid-allow"], egress: null, memberOf: [] });
  const rules = w.groups.get("np-uid-allow")!.rules.map((r) => `${r.ethertype} ${r.protocol ?? "any"} ${r.portMin ?? "*"} ${r.remoteCidr ?? r.remoteGroup ?? "anywhere"}`).sort();
  assert.deepEqual(rules, [
    "IPv4 any * 192.168.100.0/25",
    `IPv4 tcp 5432 ${ops.key}`,
    `IPv4 tcp 5432 ${web.key}`,
    "IPv4 udp 53 anywhere",
    `IPv6 tcp 5432 ${ops.key}`,
    `IPv6 tcp 5432 ${web.key}`,
    "IPv6 udp 53 anywhere",
  ]);
  assert.ok(w.groups.get("np-uid-allow")!.rules.every((r) => r.direction === "ingress"));
  assert.ok(w.warnings.some((m) => m.includes("named port 'http'")), "a named port is said, and admits nothing");
});

it("isolates egress when the policy says so (or has egress rules), one peer group for equal selectors across policies", () => {
  const sel = { podSelector: { matchLabels: { app: "web" } } };
  const w = wantedPolicies(
    [
      policy("out", { podSelector: { matchLabels: { app: "web" } }, egress: [{ to: [{ podSelector: { matchLabels: { app: "db" } } }] }] }),
      policy("in1", { podSelector: {}, ingress: [{ from: [sel] }] }),
      policy("in2", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] }),
    ],
    namespaces,
    pods,
  );
  assert.deepEqual(w.ports.get("a")!.egress, ["np-uid-out"], "policyTypes defaults to Ingress plus Egress when egress rules are given");
  assert.deepEqual(w.ports.get("a")!.ingress, ["np-uid-in1", "np-uid-in2", "np-uid-out"]);
  assert.equal(w.ports.get("b")!.egress, null);
  assert.equal([...w.groups.keys()].filter((k) => k.startsWith("peer-")).length, 2, "web (shared by in1 and in2) and db");
  assert.deepEqual(w.groups.get("np-uid-out")!.rules.map((r) => r.direction), ["egress", "egress"]);
});
