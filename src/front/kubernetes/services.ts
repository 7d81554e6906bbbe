// Kubernetes Services -> Seam services (F2, F22): a ClusterIP Service is a
// VIP on the cluster's service subnet (its address the ClusterIP the
// apiserver chose, reserved in Seam's IPAM by the service's VIP port) with,
// per port, the ready addresses its Endpoints list. A backend that is a pod
// names the pod's port, which is what lets the compiler reach it from every
// client network. Level-based like reconcile.ts: every pass compares all
// Services with what carries the controller's tag.
import { NeutronError } from "../../core/errors.ts";
import { OWNER } from "../../core/model/owners.ts";
import { networks, ports, type ServicePortSpec, services, type ServiceView, subnets } from "../../core/service/commands.ts";
import type { Model } from "../../core/service/model.ts";
import { formatAddress, parseCidr } from "../../net/address.ts";
import { K8S_TAG, type NamespaceLike, placementOf } from "./mapping.ts";

const SERVICE_TAG = "k8s-svc-";
export const serviceTag = (uid: string) => `${SERVICE_TAG}${uid}`;
/** Kubernetes' default cluster domain: a Service answers as <name>.<namespace>.svc.<domain>. */
export const CLUSTER_DOMAIN = "svc.cluster.local";
/** What marks the service network and subnet the controller made. */
export const SERVICE_NETWORK_TAG = "k8s-services";

export interface ServiceLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
  readonly spec?: { readonly type?: string; readonly clusterIP?: string; readonly ports?: readonly { readonly name?: string; readonly protocol?: string; readonly port?: number }[] };
}

export interface EndpointsLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly subsets?: readonly {
    readonly addresses?: readonly { readonly ip?: string; readonly targetRef?: { readonly kind?: string; readonly uid?: string } }[];
    readonly ports?: readonly { readonly name?: string; readonly protocol?: string; readonly port?: number }[];
  }[];
}

/** What Seam should hold for a Service: null for those that have no VIP (headless, ExternalName) or no IPv4 one. */
export interface WantedService {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly vip: string;
  readonly ports: readonly ServicePortSpec[];
}

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);

/** Pure: a Service and its Endpoints as Seam's service; `podPort` names the Seam port of a pod by its UID. */
export function wantedService(svc: ServiceLike, eps: EndpointsLike | undefined, podPort: (uid: string) => string | null): WantedService | null {
  const m = svc.metadata;
  const ip = svc.spec?.clusterIP;
  if (!m?.uid || !m.name || !m.namespace || !ip || ip === "None" || ip.includes(":")) return null;
  if (svc.spec?.type === "ExternalName") return null;
  const out: ServicePortSpec[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    const protocol = (sp.protocol ?? "TCP").toLowerCase() as ServicePortSpec["protocol"];
    if (!PROTOCOLS.has(protocol) || !sp.port) continue;
    const name = sp.name ?? "";
    const targets: { ip: string; port: number; portId: string | null }[] = [];
    for (const subset of eps?.subsets ?? []) {
      // an Endpoints port carries the Service port's name (empty when the Service has one port)
      const ep = (subset.ports ?? []).find((p) => (p.name ?? "") === name && (p.protocol ?? "TCP").toLowerCase() === protocol);
      if (!ep?.port) continue;
      for (const a of subset.addresses ?? []) {
        if (!a.ip) continue;
        const portId = a.targetRef?.kind === "Pod" && a.targetRef.uid ? podPort(a.targetRef.uid) : null;
        targets.push({ ip: a.ip, port: ep.port, portId });
      }
    }
    targets.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
    out.push({ name, protocol, port: sp.port, targets });
  }
  return { uid: m.uid, namespace: m.namespace, name: m.name, vip: ip, ports: out };
}

const samePorts = (a: readonly ServicePortSpec[], b: readonly ServicePortSpec[]) => JSON.stringify(a) === JSON.stringify(b);

const gone = (e: unknown) => e instanceof NeutronError && e.status === 404;

export interface ServicesConfig {
  /** the service subnet (a CIDR holding the apiserver's service-cluster-ip-range); null: Services are not mapped */
  readonly serviceSubnet: string | null;
  readonly projectId: (nameOrId: string) => string;
}

/** The service subnet the controller made (or made now): the last address of it is the routers' gateway, outside the apiserver's range when the subnet is the larger one. */
async function serviceSubnet(m: Model, cidr: string, projectId: (n: string) => string): Promise<string | { why: string }> {
  const found = (await subnets.find(m, m.system, { tag: SERVICE_NETWORK_TAG })).find((s) => s.cidr === cidr);
  if (found) return found.id;
  const parsed = parseCidr(cidr);
  if (!parsed || parsed.version !== 4) return { why: `the service subnet '${cidr}' is not an IPv4 CIDR` };
  const last = parsed.network + (1n << BigInt(32 - parsed.prefixLen)) - 2n;
  const project = projectId("k8s");
  const tags = [K8S_TAG, SERVICE_NETWORK_TAG];
  const net = await networks.create(m, m.system, { name: SERVICE_NETWORK_TAG, project, tags });
  const s = await subnets.create(m, m.system, { network: net.id, project, cidr, name: SERVICE_NETWORK_TAG, tags, gateway: formatAddress({ version: 4, value: last }), dhcp: false });
  return s.id;
}

export interface ServicesResult {
  readonly created: number;
  readonly updated: number;
  readonly removed: number;
}

export async function reconcileServices(
  m: Model,
  cluster: { namespaces: readonly NamespaceLike[]; services: readonly ServiceLike[]; endpoints: readonly EndpointsLike[] },
  cfg: ServicesConfig,
  warn: (msg: string) => void,
): Promise<ServicesResult> {
  let created = 0;
  let updated = 0;
  let removed = 0;
  const sys = m.system;
  const have = await services.find(m, sys, { tag: K8S_TAG });
  const byUid = new Map<string, ServiceView>();
  for (const s of have) for (const t of s.tags) if (t.startsWith(SERVICE_TAG)) byUid.set(t.slice(SERVICE_TAG.length), s);
  const wanted = new Set<string>();

  if (cfg.serviceSubnet) {
    const subnet = await serviceSubnet(m, cfg.serviceSubnet, cfg.projectId);
    if (typeof subnet !== "string") warn(`${subnet.why}; Services get no VIP`);
    else {
      const podPorts = new Map((await ports.find(m, sys, { owner: OWNER.kubernetes })).map((p) => [p.device, p.id]));
      const epsOf = new Map(cluster.endpoints.map((e) => [`${e.metadata?.namespace}/${e.metadata?.name}`, e]));
      const projectOf = new Map<string, string>();
      for (const ns of cluster.namespaces) {
        const p = placementOf(ns);
        if (ns.metadata?.name && p.kind !== "invalid") projectOf.set(ns.metadata.name, cfg.projectId(p.project));
      }
      for (const svc of cluster.services) {
        const want = wantedService(svc, epsOf.get(`${svc.metadata?.namespace}/${svc.metadata?.name}`), (uid) => podPorts.get(uid) ?? null);
        if (!want) continue;
        wanted.add(want.uid);
        const project = projectOf.get(want.namespace);
        if (!project) continue;
        const mine = byUid.get(want.uid);
        try {
          if (mine && mine.vip !== want.vip) {
            await services.remove(m, sys, mine.id); // a ClusterIP does not change in place; a new one is a new VIP
            removed++;
          } else if (mine) {
            if (!samePorts(mine.ports, want.ports)) {
              await services.setPorts(m, sys, mine.id, want.ports);
              updated++;
            }
            continue;
          }
          await services.create(m, sys, { name: `${want.name}.${want.namespace}`, project, subnet, vip: want.vip, dnsName: `${want.name}.${want.namespace}.${CLUSTER_DOMAIN}`, ports: want.ports, tags: [K8S_TAG, serviceTag(want.uid)] });
          created++;
        } catch (e) {
          if (!gone(e)) warn(`service ${want.namespace}/${want.name}: ${(e as Error).message}`);
        }
      }
    }
  }
  for (const [uid, s] of byUid) {
    if (wanted.has(uid)) continue;
    try {
      await services.remove(m, sys, s.id);
      removed++;
    } catch (e) {
      if (!gone(e)) warn(`service ${s.name}: ${(e as Error).message}`);
    }
  }
  return { created, updated, removed };
}
