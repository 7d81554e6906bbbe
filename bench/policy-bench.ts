// NetworkPolicy programming (issue 11): the time from a policy change to the
// kernel of the selected pod's host admitting exactly the new peers. The lab
// with Kubernetes nodes, four pods on one network (b0 on host-1, the rest
// spread), and a policy selecting b0 whose ingress admits the pods of a
// different subset of b1..b3 each round (a new peer selector: a new peer
// group, its members, the policy's rule rewritten, the old group removed).
// Timed from the write to (a) an informer of this process seeing it (the
// baseline) and (b) host-1's `inet seam` table holding, in the set b0's
// policy chain admits from, exactly the chosen pods' addresses. Prints both,
// p50/p99, and their ratio; asserts nothing. Root; takes the lab.
//
//   node --import tsx bench/policy-bench.ts [--rounds 30]
import * as k8s from "@kubernetes/client-node";
import { run } from "../src/os/exec.ts";
import { firstAddress, formatAddress, lastAddress, parseAddress, parseCidr } from "../src/net/address.ts";
import { BUSYBOX_IMAGE, labKubeconfig } from "../src/lab/kubelet.ts";
import { api, down, readState, up, waitFor } from "../src/lab/lab.ts";
import { arg, defaultServiceAccount, pct } from "./support.ts";

const ROUNDS = arg("rounds", 30);
const HOSTS = ["host-1", "host-2", "host-1", "host-2"];
const f = (x: number) => x.toFixed(0);

/** The addresses host-1 admits to b0 through the policy group's chain (sorted), or null while it has none. */
async function admitted(group: string): Promise<string | null> {
  const text = await run("ip", ["netns", "exec", "host-1", "nft", "list", "table", "inet", "seam"]).catch(() => "");
  const chain = new RegExp(`chain sg-${group}-in \\{([^}]*)\\}`).exec(text)?.[1];
  const set = chain && /ip saddr @(m-\S+-v4) /.exec(chain)?.[1];
  if (!set) return null;
  const body = new RegExp(`set ${set} \\{[^}]*?elements = \\{([^}]*)\\}`).exec(text)?.[1] ?? "";
  return body.split(",").map((s) => s.trim()).filter(Boolean).flatMap(addresses).sort().join(",");
}

/** An element of an interval set as its addresses: the agent writes CIDRs, and nft shows adjacent ones merged as ranges. */
function addresses(el: string): string[] {
  const [lo, hi] = el.includes("-")
    ? el.split("-").map((a) => parseAddress(a)!.value)
    : el.includes("/")
      ? [firstAddress(parseCidr(el)!), lastAddress(parseCidr(el)!)]
      : [parseAddress(el)!.value, parseAddress(el)!.value];
  const out: string[] = [];
  for (let v = lo!; v <= hi!; v++) out.push(formatAddress({ version: 4, value: v }));
  return out;
}

async function main() {
  await down();
  await up({ hosts: 2, kubernetes: true, progress: (m) => process.stderr.write(`lab: ${m}\n`) });
  const state = readState();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(labKubeconfig());
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const net = kc.makeApiClient(k8s.NetworkingV1Api);
  try {
    const k8sProject = (await api<{ projects: { id: string }[] }>(state, "GET", "/v3/projects?name=k8s", undefined)).projects[0]!.id;
    const { network } = await api<{ network: { id: string } }>(state, "POST", "/v2.0/networks", { network: { name: "bench", project_id: k8sProject } });
    await api(state, "POST", "/v2.0/subnets", { subnet: { network_id: network.id, project_id: k8sProject, cidr: "192.168.150.0/24", ip_version: 4 } });
    await core.createNamespace({ body: { metadata: { name: "bench", annotations: { "seam.io/network": JSON.stringify({ project: "k8s", name: "bench" }) } } } });
    await defaultServiceAccount(core, "bench");
    const names = ["b0", "b1", "b2", "b3"];
    for (const [i, name] of names.entries()) {
      await core.createNamespacedPod({
        namespace: "bench",
        body: { metadata: { name, labels: { app: name } }, spec: { nodeName: HOSTS[i], automountServiceAccountToken: false, terminationGracePeriodSeconds: 1, containers: [{ name: "c", image: BUSYBOX_IMAGE, imagePullPolicy: "Never", command: ["sleep", "3600"] }] } },
      });
    }
    const pods = await waitFor("four pods running", 120_000, async () => {
      const list = (await core.listNamespacedPod({ namespace: "bench" })).items;
      return list.length === 4 && list.every((p) => p.status?.podIP && p.status.phase === "Running") ? list : null;
    }, 500);
    const ipOf = new Map(pods.map((p) => [p.metadata!.name!, p.status!.podIP!]));

    const seen = new Map<number, number>();
    const informer = k8s.makeInformer(kc, "/apis/networking.k8s.io/v1/namespaces/bench/networkpolicies", () => net.listNamespacedNetworkPolicy({ namespace: "bench" }));
    const note = (p: k8s.V1NetworkPolicy) => {
      const round = Number(p.metadata?.annotations?.["bench/round"] ?? -1);
      if (round >= 0 && !seen.has(round)) seen.set(round, performance.now());
    };
    informer.on("add", note);
    informer.on("update", note);
    await informer.start();

    const body = (round: number, from: string[]): k8s.V1NetworkPolicy => ({
      metadata: { name: "p", annotations: { "bench/round": String(round) } },
      spec: { podSelector: { matchLabels: { app: "b0" } }, ingress: [{ _from: [{ podSelector: { matchExpressions: [{ key: "app", operator: "In", values: from }] } }], ports: [{ protocol: "TCP", port: 8080 }] }] },
    });
    const first = ["b1", "b2", "b3"];
    const made = await net.createNamespacedNetworkPolicy({ namespace: "bench", body: body(0, first) });
    const group = await waitFor("the policy's group", 30_000, async () => {
      const { security_groups } = await api<{ security_groups: { id: string }[] }>(state, "GET", `/v2.0/security-groups?tags=k8s-sg-np-${made.metadata!.uid}`, undefined);
      return security_groups[0]?.id ?? null;
    }, 50);
    const want0 = first.map((n) => ipOf.get(n)!).sort().join(",");
    await waitFor("the first policy on host-1", 60_000, async () => (await admitted(group)) === want0, 50);

    const informed: number[] = [];
    const programmed: number[] = [];
    let prev = want0;
    for (let round = 1; round <= ROUNDS; round++) {
      let from: string[];
      let want: string;
      do {
        const mask = 1 + Math.floor(Math.random() * 7);
        from = first.filter((_, i) => mask & (1 << i));
        want = from.map((n) => ipOf.get(n)!).sort().join(",");
      } while (want === prev);
      prev = want;
      const t0 = performance.now();
      await net.replaceNamespacedNetworkPolicy({ name: "p", namespace: "bench", body: body(round, from) });
      let t1 = 0;
      while (!t1) {
        if (performance.now() - t0 > 30_000) throw new Error(`round ${round}: host-1 does not admit exactly ${want} after 30 s`);
        if ((await admitted(group)) === want) t1 = performance.now();
      }
      programmed.push(t1 - t0);
      informed.push((seen.get(round) ?? Number.NaN) - t0);
      process.stderr.write(`round ${round}: informer ${f(informed.at(-1)!)} ms, host-1 ${f(programmed.at(-1)!)} ms\n`);
    }
    await informer.stop();
    const p = (xs: number[], q: number) => f(pct(xs, q));
    console.log(`NetworkPolicy programming, policy change -> the selected pod's host admits exactly the new peers (${ROUNDS} rounds, 2 hosts, 4 pods):`);
    console.log(`  informer sees the change    p50 ${p(informed, 50)} ms  p99 ${p(informed, 99)} ms   (baseline)`);
    console.log(`  host-1's kernel admits them  p50 ${p(programmed, 50)} ms  p99 ${p(programmed, 99)} ms   ratio p50 ${(pct(programmed, 50) / pct(informed, 50)).toFixed(1)}`);
  } finally {
    if (!process.env.SEAM_KEEP_LAB) await down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
