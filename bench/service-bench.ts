// Service programming (issue 11): the time from an Endpoints change to every
// host's translation holding the new backends. The lab with Kubernetes
// nodes, four pods (two per host) on one network, and a selectorless
// ClusterIP Service whose Endpoints this process rewrites to a different set
// of those pods each round. Timed from the write to (a) an informer of this
// process seeing the change (the baseline: what any controller learns at
// best) and (b) the last host's nft table (`ip seam`) picking among exactly
// the new backends, read every few milliseconds in each host. Prints both,
// p50/p99, and their ratio; asserts nothing. Root; takes the lab.
//
//   node --import tsx bench/service-bench.ts [--rounds 30]
import * as k8s from "@kubernetes/client-node";
import { run } from "../src/os/exec.ts";
import { BUSYBOX_IMAGE, labKubeconfig } from "../src/lab/kubelet.ts";
import { api, down, readState, up, waitFor } from "../src/lab/lab.ts";
import { arg, defaultServiceAccount, pct } from "./support.ts";

const ROUNDS = arg("rounds", 30);
const HOSTS = ["host-1", "host-2"];
const f = (x: number) => x.toFixed(0);

/** The backends host `h` translates the VIP's port 80 to, from any client bridge (sorted), or null while it has none. */
async function backendsAt(h: string, vip: string): Promise<string | null> {
  const text = await run("ip", ["netns", "exec", h, "nft", "list", "table", "ip", "seam"]).catch(() => "");
  const chain = new RegExp(`${vip.replace(/\./g, "\\.")} \\. tcp \\. 80 : goto (\\S+?),?\\s`).exec(text)?.[1];
  if (!chain) return null;
  const body = new RegExp(`chain ${chain} \\{([^}]*\\}?[^}]*)\\}`).exec(text)?.[1] ?? "";
  return [...body.matchAll(/goto ep-tcp-([\d.]+)-\d+/g)].map((m) => m[1]!).sort().join(",");
}

async function main() {
  await down();
  await up({ hosts: 2, kubernetes: true, progress: (m) => process.stderr.write(`lab: ${m}\n`) });
  const state = readState();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(labKubeconfig());
  const core = kc.makeApiClient(k8s.CoreV1Api);
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
        body: { metadata: { name }, spec: { nodeName: HOSTS[i % 2], automountServiceAccountToken: false, terminationGracePeriodSeconds: 1, containers: [{ name: "c", image: BUSYBOX_IMAGE, imagePullPolicy: "Never", command: ["sleep", "3600"] }] } },
      });
    }
    const pods = await waitFor("four pods running", 120_000, async () => {
      const list = (await core.listNamespacedPod({ namespace: "bench" })).items;
      return list.length === 4 && list.every((p) => p.status?.podIP && p.status.phase === "Running") ? list : null;
    }, 500);
    const svc = await core.createNamespacedService({ namespace: "bench", body: { metadata: { name: "svc" }, spec: { ports: [{ name: "http", port: 80, protocol: "TCP" }] } } });
    const vip = svc.spec!.clusterIP!;

    const seen = new Map<number, number>();
    const informer = k8s.makeInformer(kc, "/api/v1/namespaces/bench/endpoints", () => core.listNamespacedEndpoints({ namespace: "bench" }));
    const note = (e: k8s.V1Endpoints) => {
      const round = Number(e.metadata?.annotations?.["bench/round"] ?? -1);
      if (round >= 0 && !seen.has(round)) seen.set(round, performance.now());
    };
    informer.on("add", note);
    informer.on("update", note);
    await informer.start();

    const body = (round: number, chosen: k8s.V1Pod[]) => ({
      metadata: { name: "svc", annotations: { "bench/round": String(round) } },
      subsets: [{ addresses: chosen.map((p) => ({ ip: p.status!.podIP!, targetRef: { kind: "Pod", name: p.metadata!.name!, namespace: "bench", uid: p.metadata!.uid! } })), ports: [{ name: "http", port: 8080, protocol: "TCP" }] }],
    });
    await core.createNamespacedEndpoints({ namespace: "bench", body: body(0, pods) });
    const all = pods.map((p) => p.status!.podIP!).sort().join(",");
    await waitFor("the first translation on every host", 60_000, async () => (await Promise.all(HOSTS.map((h) => backendsAt(h, vip)))).every((b) => b === all), 50);

    const informed: number[] = [];
    const programmed: number[] = [];
    let prev = all;
    for (let round = 1; round <= ROUNDS; round++) {
      // a different non-empty subset every round
      let chosen: k8s.V1Pod[];
      let want: string;
      do {
        const mask = 1 + Math.floor(Math.random() * 15);
        chosen = pods.filter((_, i) => mask & (1 << i));
        want = chosen.map((p) => p.status!.podIP!).sort().join(",");
      } while (want === prev);
      prev = want;
      const t0 = performance.now();
      await core.replaceNamespacedEndpoints({ name: "svc", namespace: "bench", body: body(round, chosen) });
      const done = new Map<string, number>();
      while (done.size < HOSTS.length) {
        if (performance.now() - t0 > 30_000) throw new Error(`round ${round}: not programmed on ${HOSTS.filter((h) => !done.has(h)).join(", ")} after 30 s`);
        await Promise.all(HOSTS.filter((h) => !done.has(h)).map(async (h) => {
          if ((await backendsAt(h, vip)) === want) done.set(h, performance.now());
        }));
      }
      programmed.push(Math.max(...done.values()) - t0);
      informed.push((seen.get(round) ?? Number.NaN) - t0);
      process.stderr.write(`round ${round}: informer ${f(informed.at(-1)!)} ms, every host ${f(programmed.at(-1)!)} ms\n`);
    }
    await informer.stop();
    const p = (xs: number[], q: number) => f(pct(xs, q));
    console.log(`Service programming, Endpoints change -> every host's DNAT (${ROUNDS} rounds, 2 hosts, 4 backends):`);
    console.log(`  informer sees the change  p50 ${p(informed, 50)} ms  p99 ${p(informed, 99)} ms   (baseline)`);
    console.log(`  every host translates it  p50 ${p(programmed, 50)} ms  p99 ${p(programmed, 99)} ms   ratio p50 ${(pct(programmed, 50) / pct(informed, 50)).toFixed(1)}`);
  } finally {
    await down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
