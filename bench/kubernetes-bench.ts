// How long a scheduled pod waits for its port (issue 11): against a real
// Kubernetes 1.20 control plane, 20 pods created at once and 10 one after
// another, each timed from its creation to (a) the moment an informer of
// this process sees it bound to a node (the baseline: what any controller
// learns at best), and (b) its port existing in Seam with the pod's
// annotation written back. Prints both and their ratio; asserts nothing.
//
//   node --import tsx bench/kubernetes-bench.ts [--burst 20] [--serial 10]
import * as k8s from "@kubernetes/client-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "../src/core/store/open.ts";
import { PORT_ANNOTATION } from "../src/front/kubernetes/mapping.ts";
import { BUSYBOX_IMAGE } from "../src/lab/kubelet.ts";
import { startControlPlane } from "../src/lab/kubernetes.ts";
import { buildServer } from "../src/server.ts";
import { arg, defaultServiceAccount, pct } from "./support.ts";

const BURST = arg("burst", 20);
const SERIAL = arg("serial", 10);
const f = (x: number) => x.toFixed(0);

async function main() {
  const cp = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), "seam-k8s-bench-"));
  const db = await openDb(`sqlite:${join(dir, "seam.db")}`);
  const server = await buildServer({ db, auth: "noauth", logLevel: "fatal", kubernetes: { kubeconfig: cp.seamKubeconfig, podPool: "10.244.0.0/16", podPrefix: 24 } });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.adminKubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await defaultServiceAccount(core, "bench");
    // What an informer sees, and what Seam holds, per pod name.
    const seen = new Map<string, number>();
    const ready = new Map<string, number>();
    const informer = k8s.makeInformer(kc, "/api/v1/namespaces/bench/pods", () => core.listNamespacedPod({ namespace: "bench" }));
    const note = (p: k8s.V1Pod) => {
      const name = p.metadata!.name!;
      if (p.spec?.nodeName && !seen.has(name)) seen.set(name, performance.now());
      if (p.metadata?.annotations?.[PORT_ANNOTATION] && !ready.has(name)) ready.set(name, performance.now());
    };
    informer.on("add", note);
    informer.on("update", note);
    await informer.start();
    const podBody = (name: string) => ({
      metadata: { name },
      spec: { nodeName: "host-1", automountServiceAccountToken: false, containers: [{ name: "c", image: BUSYBOX_IMAGE, command: ["sleep", "3600"], imagePullPolicy: "Never" }] },
    });
    const created = new Map<string, number>();
    const make = async (name: string) => {
      created.set(name, performance.now());
      await core.createNamespacedPod({ namespace: "bench", body: podBody(name) });
    };
    const until = async (names: string[]) => {
      const deadline = Date.now() + 60_000;
      while (names.some((n) => !ready.has(n))) {
        if (Date.now() > deadline) throw new Error(`pods without a port after 60 s: ${names.filter((n) => !ready.has(n)).join(" ")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const report = (what: string, names: string[]) => {
      const base = names.map((n) => seen.get(n)! - created.get(n)!);
      const port = names.map((n) => ready.get(n)! - created.get(n)!);
      console.log(`${what}`);
      console.log(`  an informer sees the pod bound   p50 ${f(pct(base, 50))} ms  p99 ${f(pct(base, 99))} ms`);
      console.log(`  its port made and written back   p50 ${f(pct(port, 50))} ms  p99 ${f(pct(port, 99))} ms`);
      console.log(`  ratio p50 ${(pct(port, 50) / pct(base, 50)).toFixed(2)}  (the controller passes 10 ms after the first event of a burst)`);
    };
    await make("warm");
    await until(["warm"]);
    const serial = Array.from({ length: SERIAL }, (_, i) => `s${i}`);
    for (const n of serial) {
      await make(n);
      await until([n]);
    }
    report(`${SERIAL} pods one after another`, serial);
    const burst = Array.from({ length: BURST }, (_, i) => `b${i}`);
    await Promise.all(burst.map(make));
    await until(burst);
    report(`${BURST} pods at once`, burst);
    await informer.stop();
  } finally {
    await server.app.close();
    await db.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
