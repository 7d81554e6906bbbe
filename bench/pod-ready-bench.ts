// Pod create -> Ready through a real kubelet (issue 11, B3): the lab with
// Kubernetes nodes, pods on host-2 created one after another and 20 at once,
// with Seam (the controller makes the port when the pod is scheduled, the
// kubelet's CNI ADD plugs it through the agent) and with the reference
// plugins (bridge + host-local) on the same node in the same run. While the
// reference runs, Seam's controller is stopped, so it costs the reference
// nothing. Timed from the create call to an informer in this process seeing
// the pod's Ready condition. Prints both and their ratio (target <= 1.1);
// asserts nothing. Root; takes the lab (lab down first).
//
//   node --import tsx bench/pod-ready-bench.ts [--serial 10] [--burst 20]
import * as k8s from "@kubernetes/client-node";
import { BUSYBOX_IMAGE, labKubeconfig, useCni } from "../src/lab/kubelet.ts";
import { down, readState, startServer, stopServer, up } from "../src/lab/lab.ts";
import { arg, defaultServiceAccount, pct } from "./support.ts";

const SERIAL = arg("serial", 10);
const BURST = arg("burst", 20);
const NODE = "host-2";
const f = (x: number) => x.toFixed(0);

type Phase = { serial: number[]; burst: number[]; burstAll: number };

async function main() {
  await down();
  await up({ hosts: 2, kubernetes: true, progress: (m) => process.stderr.write(`lab: ${m}\n`) });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(labKubeconfig());
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const ready = new Map<string, number>();
  const gone = new Set<string>();
  try {
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await defaultServiceAccount(core, "bench");
    const informer = k8s.makeInformer(kc, "/api/v1/namespaces/bench/pods", () => core.listNamespacedPod({ namespace: "bench" }));
    const note = (p: k8s.V1Pod) => {
      const name = p.metadata!.name!;
      if (!ready.has(name) && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) ready.set(name, performance.now());
    };
    informer.on("add", note);
    informer.on("update", note);
    informer.on("delete", (p) => gone.add(p.metadata!.name!));
    await informer.start();

    const created = new Map<string, number>();
    const make = async (name: string) => {
      created.set(name, performance.now());
      await core.createNamespacedPod({
        namespace: "bench",
        body: {
          metadata: { name },
          spec: {
            nodeSelector: { "kubernetes.io/hostname": NODE }, terminationGracePeriodSeconds: 0, automountServiceAccountToken: false,
            containers: [{ name: "c", image: BUSYBOX_IMAGE, command: ["sleep", "3600"], imagePullPolicy: "Never" }],
          },
        },
      });
    };
    const wait = async (what: string, done: () => boolean, ms = 180_000) => {
      const deadline = Date.now() + ms;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const removeAll = async (names: string[]) => {
      for (const n of names) gone.delete(n);
      await Promise.all(names.map((name) => core.deleteNamespacedPod({ name, namespace: "bench", gracePeriodSeconds: 0 })));
      await wait("the pods to go", () => names.every((n) => gone.has(n)));
    };
    const phase = async (tag: string): Promise<Phase> => {
      await make(`${tag}-warm`);
      await wait("the warm-up pod", () => ready.has(`${tag}-warm`));
      const serial: number[] = [];
      for (let i = 0; i < SERIAL; i++) {
        const n = `${tag}-s${i}`;
        await make(n);
        await wait(n, () => ready.has(n));
        serial.push(ready.get(n)! - created.get(n)!);
      }
      const names = Array.from({ length: BURST }, (_, i) => `${tag}-b${i}`);
      const t0 = performance.now();
      await Promise.all(names.map(make));
      await wait("the burst", () => names.every((n) => ready.has(n)));
      const burst = names.map((n) => ready.get(n)! - created.get(n)!);
      const burstAll = Math.max(...names.map((n) => ready.get(n)!)) - t0;
      await removeAll([`${tag}-warm`, ...Array.from({ length: SERIAL }, (_, i) => `${tag}-s${i}`), ...names]);
      return { serial, burst, burstAll };
    };

    const state = readState();
    process.stderr.write("reference plugins (bridge + host-local), Seam's controller stopped\n");
    await stopServer(state);
    useCni(NODE, "reference");
    await new Promise((r) => setTimeout(r, 2000)); // containerd reloads its CNI directory
    const ref = await phase("ref");
    useCni(NODE, "seam");
    await startServer(state);
    await new Promise((r) => setTimeout(r, 2000));
    process.stderr.write("Seam (controller, agent, seam-cni)\n");
    const seam = await phase("seam");

    console.log(`pod create -> Ready on one node (${NODE}), kubelet 1.20 + containerd 1.6`);
    const row = (what: string, a: number[], b: number[]) =>
      console.log(`  ${what.padEnd(22)} reference p50 ${f(pct(a, 50)).padStart(5)} p99 ${f(pct(a, 99)).padStart(5)} ms   Seam p50 ${f(pct(b, 50)).padStart(5)} p99 ${f(pct(b, 99)).padStart(5)} ms   ratio p50 ${(pct(b, 50) / pct(a, 50)).toFixed(2)} p99 ${(pct(b, 99) / pct(a, 99)).toFixed(2)}`);
    row(`${SERIAL} one after another`, ref.serial, seam.serial);
    row(`${BURST} at once (each)`, ref.burst, seam.burst);
    console.log(`  ${`${BURST} at once (all)`.padEnd(22)} reference ${f(ref.burstAll)} ms   Seam ${f(seam.burstAll)} ms   ratio ${(seam.burstAll / ref.burstAll).toFixed(2)}   (target <= 1.1)`);
    await informer.stop();
  } finally {
    await down();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
