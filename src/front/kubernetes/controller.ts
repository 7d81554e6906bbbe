// The Kubernetes front door: informers on namespaces, pods, Services,
// Endpoints and NetworkPolicies (the official client, list-then-watch, relisting after 410 Gone)
// feed one reconcile loop (reconcile.ts, then services.ts). Events only say
// "look again"; every pass compares the whole of what the informers hold
// with the model, so a missed event or a restart costs one pass, not a
// drifted port. A pass runs at most once at a time, 10 ms after the first of
// a burst of events, and every `resyncMs` anyway.
// Several servers may run it: all keep their informers warm, and only the one
// holding the Lease (leader.ts) makes passes.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import * as k8s from "@kubernetes/client-node";
import { LeaderElector, type LeaderOptions } from "./leader.ts";
import type { Model } from "../../core/service/model.ts";
import type { NamespaceLike, PodLike } from "./mapping.ts";
import { PORT_ANNOTATION } from "./mapping.ts";
import type { NetworkPolicyLike } from "./network-policy.ts";
import { reconcilePolicies } from "./policies.ts";
import { reconcile, type ReconcileConfig } from "./reconcile.ts";
import { type EndpointsLike, reconcileServices, type ServiceLike } from "./services.ts";

export interface KubernetesOptions extends Omit<ReconcileConfig, "projectId"> {
  readonly kubeconfig: string;
  /** the service subnet ClusterIPs are reserved on (holding the apiserver's service-cluster-ip-range); absent: Services are not mapped */
  readonly serviceSubnet?: string;
  readonly resyncMs?: number;
  /** the Lease the servers running the controller elect a leader on (default kube-system/seam-controller) */
  readonly leader?: Partial<LeaderOptions>;
}

interface Log {
  info(msg: string): void;
  warn(msg: string): void;
  error(o: object, msg: string): void;
}

export class KubernetesController {
  private readonly kc = new k8s.KubeConfig();
  private readonly core: k8s.CoreV1Api;
  private readonly networking: k8s.NetworkingV1Api;
  private readonly informers: (k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>)[] = [];
  private namespaces!: k8s.Informer<k8s.V1Namespace> & k8s.ObjectCache<k8s.V1Namespace>;
  private pods!: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private services!: k8s.Informer<k8s.V1Service> & k8s.ObjectCache<k8s.V1Service>;
  private endpoints!: k8s.Informer<k8s.V1Endpoints> & k8s.ObjectCache<k8s.V1Endpoints>;
  private policies!: k8s.Informer<k8s.V1NetworkPolicy> & k8s.ObjectCache<k8s.V1NetworkPolicy>;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private debounce: NodeJS.Timeout | null = null;
  private resync: NodeJS.Timeout | null = null;
  readonly elector: LeaderElector;

  constructor(
    private readonly model: Model,
    private readonly opts: KubernetesOptions,
    private readonly projectId: (nameOrId: string) => string,
    private readonly log: Log,
  ) {
    this.kc.loadFromFile(opts.kubeconfig);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.networking = this.kc.makeApiClient(k8s.NetworkingV1Api);
    this.elector = new LeaderElector(
      this.kc,
      { namespace: "kube-system", name: "seam-controller", identity: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`, ...opts.leader },
      {
        started: () => {
          this.log.info("kubernetes: leading (holds the Lease); reconciling");
          this.soon(0);
        },
        stopped: () => this.log.warn("kubernetes: not leading any more; passes stop"),
        warn: (m) => this.log.warn(`kubernetes: ${m}`),
      },
    );
  }

  async start(): Promise<void> {
    this.namespaces = k8s.makeInformer(this.kc, "/api/v1/namespaces", () => this.core.listNamespace());
    this.pods = k8s.makeInformer(this.kc, "/api/v1/pods", () => this.core.listPodForAllNamespaces());
    this.services = k8s.makeInformer(this.kc, "/api/v1/services", () => this.core.listServiceForAllNamespaces());
    this.endpoints = k8s.makeInformer(this.kc, "/api/v1/endpoints", () => this.core.listEndpointsForAllNamespaces());
    this.policies = k8s.makeInformer(this.kc, "/apis/networking.k8s.io/v1/networkpolicies", () => this.networking.listNetworkPolicyForAllNamespaces());
    for (const inf of [this.namespaces, this.pods, this.services, this.endpoints, this.policies] as (k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>)[]) {
      this.informers.push(inf);
      for (const ev of ["add", "update", "delete"] as const) inf.on(ev, () => this.soon());
      // A watch that fails (the apiserver restarted, 410 Gone) is listed and watched again.
      inf.on("error", (err: unknown) => {
        if (this.stopped) return;
        this.log.warn(`kubernetes: watch failed (${(err as Error)?.message ?? err}); listing again in 2 s`);
        setTimeout(() => void (this.stopped ? undefined : inf.start().catch(() => undefined)), 2000);
      });
      await inf.start();
    }
    this.resync = setInterval(() => this.soon(0), this.opts.resyncMs ?? 30_000);
    this.elector.start();
  }

  /**
   * Schedules a pass `ms` after the first of a burst of events (the rest of the
   * burst joins it, or the pass after: a steady stream of events never
   * postpones a pass for longer than that).
   */
  private soon(ms = 10): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.pass();
    }, ms);
  }

  /** Runs a pass now, or once more after the running one. Resolves when the model matches what was seen. */
  pass(): Promise<void> {
    if (!this.elector.isLeader) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const namespaces = this.namespaces.list() as NamespaceLike[];
          const warn = (m: string) => this.log.warn(`kubernetes: ${m}`);
          const pods = this.pods.list() as PodLike[];
          await reconcile(
            this.model,
            { namespaces, pods },
            { podPool: this.opts.podPool, podPrefix: this.opts.podPrefix, projectId: this.projectId },
            { annotate: (pod, value) => this.annotate(pod, value), warn },
          );
          // after the pods' ports: a backend names its pod's port
          await reconcileServices(
            this.model,
            { namespaces, services: this.services.list() as ServiceLike[], endpoints: this.endpoints.list() as EndpointsLike[] },
            { serviceSubnet: this.opts.serviceSubnet ?? null, projectId: this.projectId },
            warn,
          );
          // after the pods' ports too: a policy filters and counts them
          await reconcilePolicies(this.model, { namespaces, pods, policies: this.policies.list() as NetworkPolicyLike[] }, { projectId: this.projectId }, (m) => this.warnOnce(m));
        } catch (err) {
          this.log.error({ err }, "kubernetes: a reconcile pass failed; the next one tries again");
          this.again = this.again || !this.stopped;
          await new Promise((r) => setTimeout(r, 1000));
        }
      } while (this.again && !this.stopped && this.elector.isLeader);
      this.running = null;
    })();
    return this.running;
  }

  /** A policy that cannot be mapped whole is said once, not on every pass. */
  private readonly said = new Set<string>();
  private warnOnce(msg: string): void {
    if (this.said.has(msg)) return;
    if (this.said.size > 1000) this.said.clear();
    this.said.add(msg);
    this.log.warn(`kubernetes: ${msg}`);
  }

  private async annotate(pod: PodLike, value: string): Promise<void> {
    await this.core.patchNamespacedPod(
      { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { metadata: { annotations: { [PORT_ANNOTATION]: value } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.resync) clearInterval(this.resync);
    for (const inf of this.informers) await inf.stop().catch(() => undefined);
    await this.running;
    await this.elector.stop();
  }
}
