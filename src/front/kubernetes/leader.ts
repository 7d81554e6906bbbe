// Leader election on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection does it, so that several servers can run the controller and
// one acts: a candidate takes the Lease when it is free or its holder has
// not renewed it for `leaseMs` (measured on this candidate's own clock, from
// when it last saw the record change, so clocks need not agree), renews it
// every `retryMs`, and stops acting as soon as a renewal has failed for
// `renewDeadlineMs`. Writes carry the resourceVersion read, so two
// candidates cannot both take it: the apiserver refuses the second (409).
import * as k8s from "@kubernetes/client-node";

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  /** this candidate's identity in the Lease (host and process) */
  readonly identity: string;
  readonly leaseMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryMs?: number;
}

const status = (e: unknown) => (e as { code?: number }).code;

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private timer: NodeJS.Timeout | null = null;
  private observed = "";
  private observedAt = 0;
  private lastRenew = 0;
  private leading = false;
  private stopped = false;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(
    kc: k8s.KubeConfig,
    private readonly o: LeaderOptions,
    private readonly on: { started(): void; stopped(): void; warn(msg: string): void },
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.leaseMs = o.leaseMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (await this.tryAcquireOrRenew()) this.lastRenew = Date.now();
    } catch (e) {
      this.on.warn(`leader election: ${(e as Error).message}`);
    }
    const holding = Date.now() - this.lastRenew < this.renewDeadlineMs;
    if (holding && !this.leading && !this.stopped) {
      this.leading = true;
      this.on.started();
    } else if (!holding && this.leading) {
      this.leading = false;
      this.on.stopped();
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.retryMs);
  }

  /** true: this candidate holds the Lease now */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = new k8s.V1MicroTime();
    const mine = (transitions: number, acquired?: k8s.V1MicroTime): k8s.V1LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: acquired ?? now,
      renewTime: now,
      leaseTransitions: transitions,
    });
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (status(e) !== 404) throw e;
      try {
        await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: mine(0) } });
        return true;
      } catch (c) {
        if (status(c) === 409) return false; // another candidate created it first
        throw c;
      }
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity}|${spec.renewTime ? new Date(spec.renewTime).getTime() : ""}`;
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = Date.now();
    }
    const held = spec.holderIdentity === identity;
    const expired = !spec.holderIdentity || Date.now() > this.observedAt + (spec.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000;
    if (!held && !expired) return false;
    const body: k8s.V1Lease = {
      metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
      // (a time read back is a plain Date, which would go out with milliseconds: MicroTime wants six digits)
      spec: held ? mine(spec.leaseTransitions ?? 0, spec.acquireTime ? new k8s.V1MicroTime(spec.acquireTime) : undefined) : mine((spec.leaseTransitions ?? 0) + 1),
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body });
      return true;
    } catch (e) {
      if (status(e) === 409) return false; // someone else wrote it since we read it
      throw e;
    }
  }

  /** Stops competing; a leader gives the Lease up at once (its holder cleared), as client-go's ReleaseOnCancel. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    this.on.stopped();
    try {
      const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body: {
          metadata: { name: this.o.name, namespace: this.o.namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: { holderIdentity: "", leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime(), leaseTransitions: lease.spec.leaseTransitions },
        },
      });
    } catch {
      /* the others take it when it expires */
    }
  }
}
