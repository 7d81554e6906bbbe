// Typed commands and queries for callers inside the core and the front doors
// that are not Neutron's (the attach verb, the Kubernetes controller next):
// they say what a port is in types, and the model's rules (validation,
// IPAM, default group, quotas, the change log) apply exactly as for the API.
import type { RuleItem } from "../../contract/intent.ts";
import type { RequestContext } from "../model/context.ts";
import type { Model, View } from "./model.ts";

/** What a caller may say of a new port; everything else takes Neutron's defaults. */
export interface PortSpec {
  readonly network: string;
  readonly project: string;
  readonly name?: string;
  readonly owner?: string;
  readonly device?: string;
  /** binding:host_id */
  readonly host?: string;
  readonly tags?: readonly string[];
  readonly securityGroups?: readonly string[];
}

/** Equality filters on a port's attributes. */
export interface PortFilter {
  readonly id?: string;
  readonly network?: string;
  readonly owner?: string;
  readonly device?: string;
  readonly host?: string;
  readonly tag?: string;
}

export interface PortView {
  readonly id: string;
  readonly name: string;
  readonly network: string;
  readonly project: string;
  readonly host: string;
  readonly device: string;
  readonly addresses: readonly string[];
  readonly tags: readonly string[];
  /** `seam:policy`: how a NetworkPolicy filters it instead of its security groups (null: it does not) */
  readonly policy: PortPolicy | null;
}

/** A port's `seam:policy` (core/model/resources.ts says what each part means). */
export interface PortPolicy {
  readonly ingress: readonly string[] | null;
  readonly egress: readonly string[] | null;
  readonly memberOf: readonly string[];
}

const policyOf = (v: unknown): PortPolicy | null => {
  if (!v || typeof v !== "object") return null;
  const p = v as { ingress?: string[] | null; egress?: string[] | null; member_of?: string[] };
  return { ingress: p.ingress ?? null, egress: p.egress ?? null, memberOf: p.member_of ?? [] };
};

const portView = (v: View): PortView => ({
  id: v.id as string,
  name: (v.name as string) ?? "",
  network: v.network_id as string,
  project: v.project_id as string,
  host: (v["binding:host_id"] as string) ?? "",
  device: (v.device_id as string) ?? "",
  addresses: ((v.fixed_ips as { ip_address: string }[]) ?? []).map((f) => f.ip_address),
  tags: (v.tags as string[]) ?? [],
  policy: policyOf(v["seam:policy"]),
});

export interface NetworkView {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  readonly tags: readonly string[];
}

const networkView = (v: View): NetworkView => ({ id: v.id as string, name: (v.name as string) ?? "", project: v.project_id as string, tags: (v.tags as string[]) ?? [] });

export interface SubnetView {
  readonly id: string;
  readonly network: string;
  readonly cidr: string;
}

function portQuery(f: PortFilter): Record<string, string> {
  const q: Record<string, string> = {};
  if (f.id !== undefined) q.id = f.id;
  if (f.network !== undefined) q.network_id = f.network;
  if (f.owner !== undefined) q.device_owner = f.owner;
  if (f.device !== undefined) q.device_id = f.device;
  if (f.host !== undefined) q["binding:host_id"] = f.host;
  if (f.tag !== undefined) q.tags = f.tag;
  return q;
}

export const ports = {
  async create(m: Model, ctx: RequestContext, s: PortSpec): Promise<PortView> {
    const body: Record<string, unknown> = { network_id: s.network, project_id: s.project };
    if (s.name !== undefined) body.name = s.name;
    if (s.owner !== undefined) body.device_owner = s.owner;
    if (s.device !== undefined) body.device_id = s.device;
    if (s.host !== undefined) body["binding:host_id"] = s.host;
    if (s.tags !== undefined) body.tags = [...s.tags];
    if (s.securityGroups !== undefined) body.security_groups = [...s.securityGroups];
    const [created] = await m.create(ctx, "port", [body]);
    return portView(created!);
  },
  async find(m: Model, ctx: RequestContext, f: PortFilter): Promise<PortView[]> {
    return (await m.find(ctx, "port", portQuery(f))).map(portView);
  },
  async bind(m: Model, ctx: RequestContext, id: string, host: string): Promise<PortView> {
    return portView(await m.update(ctx, "port", id, { "binding:host_id": host }));
  },
  async setPolicy(m: Model, ctx: RequestContext, id: string, p: PortPolicy | null): Promise<PortView> {
    return portView(await m.update(ctx, "port", id, { "seam:policy": p && { ingress: p.ingress, egress: p.egress, member_of: [...p.memberOf] } }));
  },
  remove(m: Model, ctx: RequestContext, id: string): Promise<void> {
    return m.remove(ctx, "port", id);
  },
};

export const networks = {
  async find(m: Model, ctx: RequestContext, f: { readonly id?: string; readonly name?: string; readonly project?: string; readonly tag?: string }): Promise<NetworkView[]> {
    const q: Record<string, string> = {};
    if (f.id !== undefined) q.id = f.id;
    if (f.name !== undefined) q.name = f.name;
    if (f.project !== undefined) q.project_id = f.project;
    if (f.tag !== undefined) q.tags = f.tag;
    return (await m.find(ctx, "network", q)).map(networkView);
  },
  async create(m: Model, ctx: RequestContext, s: { readonly name: string; readonly project: string; readonly tags: readonly string[] }): Promise<NetworkView> {
    const [created] = await m.create(ctx, "network", [{ name: s.name, project_id: s.project, tags: [...s.tags] }]);
    return networkView(created!);
  },
  remove(m: Model, ctx: RequestContext, id: string): Promise<void> {
    return m.remove(ctx, "network", id);
  },
};

export const subnets = {
  async find(m: Model, ctx: RequestContext, f: { readonly network?: string; readonly tag?: string }): Promise<SubnetView[]> {
    const q: Record<string, string> = {};
    if (f.network !== undefined) q.network_id = f.network;
    if (f.tag !== undefined) q.tags = f.tag;
    return (await m.find(ctx, "subnet", q)).map((v) => ({ id: v.id as string, network: v.network_id as string, cidr: v.cidr as string }));
  },
  async create(
    m: Model,
    ctx: RequestContext,
    s: { readonly network: string; readonly project: string; readonly cidr: string; readonly name: string; readonly tags: readonly string[]; readonly gateway?: string; readonly dhcp?: boolean },
  ): Promise<SubnetView> {
    const body: Record<string, unknown> = { network_id: s.network, project_id: s.project, cidr: s.cidr, ip_version: s.cidr.includes(":") ? 6 : 4, name: s.name, tags: [...s.tags] };
    if (s.gateway !== undefined) body.gateway_ip = s.gateway;
    if (s.dhcp !== undefined) body.enable_dhcp = s.dhcp;
    const [v] = await m.create(ctx, "subnet", [body]);
    return { id: v!.id as string, network: v!.network_id as string, cidr: v!.cidr as string };
  },
};

/** A service's port as callers say it: the backends are (address, port, the Seam port holding the address). */
export interface ServicePortSpec {
  readonly name: string;
  readonly protocol: "tcp" | "udp" | "sctp";
  readonly port: number;
  readonly targets: readonly { readonly ip: string; readonly port: number; readonly portId: string | null }[];
}

export interface ServiceView {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  readonly subnet: string;
  readonly vip: string;
  readonly ports: readonly ServicePortSpec[];
  readonly tags: readonly string[];
}

type StoredServicePort = { name?: string; protocol: ServicePortSpec["protocol"]; port: number; targets: { ip_address: string; port: number; port_id?: string | null }[] };

const servicePortsBody = (ports: readonly ServicePortSpec[]): StoredServicePort[] =>
  ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port, targets: p.targets.map((t) => ({ ip_address: t.ip, port: t.port, port_id: t.portId })) }));

const serviceView = (v: View): ServiceView => ({
  id: v.id as string,
  name: (v.name as string) ?? "",
  project: v.project_id as string,
  subnet: v.subnet_id as string,
  vip: v.vip_address as string,
  ports: ((v.ports as StoredServicePort[]) ?? []).map((p) => ({ name: p.name ?? "", protocol: p.protocol, port: p.port, targets: p.targets.map((t) => ({ ip: t.ip_address, port: t.port, portId: t.port_id ?? null })) })),
  tags: (v.tags as string[]) ?? [],
});

export const services = {
  async find(m: Model, ctx: RequestContext, f: { readonly tag?: string; readonly subnet?: string }): Promise<ServiceView[]> {
    const q: Record<string, string> = {};
    if (f.tag !== undefined) q.tags = f.tag;
    if (f.subnet !== undefined) q.subnet_id = f.subnet;
    return (await m.find(ctx, "service", q)).map(serviceView);
  },
  async create(
    m: Model,
    ctx: RequestContext,
    s: { readonly name: string; readonly project: string; readonly subnet: string; readonly vip?: string; readonly dnsName?: string; readonly ports: readonly ServicePortSpec[]; readonly tags: readonly string[] },
  ): Promise<ServiceView> {
    const body: Record<string, unknown> = { name: s.name, project_id: s.project, subnet_id: s.subnet, ports: servicePortsBody(s.ports), tags: [...s.tags] };
    if (s.dnsName !== undefined) body.dns_name = s.dnsName;
    if (s.vip !== undefined) body.vip_address = s.vip;
    const [v] = await m.create(ctx, "service", [body]);
    return serviceView(v!);
  },
  async setPorts(m: Model, ctx: RequestContext, id: string, ports: readonly ServicePortSpec[]): Promise<ServiceView> {
    return serviceView(await m.update(ctx, "service", id, { ports: servicePortsBody(ports) }));
  },
  remove(m: Model, ctx: RequestContext, id: string): Promise<void> {
    return m.remove(ctx, "service", id);
  },
};

/** A security group rule as callers say it: the fields of the rule the agent gets (null: any), without its ids. */
export type RuleSpec = Omit<RuleItem, "kind" | "id" | "group">;

export interface GroupView {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  readonly tags: readonly string[];
  readonly rules: readonly (RuleSpec & { readonly id: string })[];
}

const groupView = (v: View): GroupView => ({
  id: v.id as string,
  name: (v.name as string) ?? "",
  project: v.project_id as string,
  tags: (v.tags as string[]) ?? [],
  rules: ((v.security_group_rules as View[]) ?? []).map((r) => ({
    id: r.id as string,
    direction: r.direction as RuleSpec["direction"],
    ethertype: r.ethertype as RuleSpec["ethertype"],
    protocol: (r.protocol as string | null) ?? null,
    portMin: (r.port_range_min as number | null) ?? null,
    portMax: (r.port_range_max as number | null) ?? null,
    remoteCidr: (r.remote_ip_prefix as string | null) ?? null,
    remoteGroup: (r.remote_group_id as string | null) ?? null,
  })),
});

export const securityGroups = {
  async find(m: Model, ctx: RequestContext, f: { readonly tag?: string }): Promise<GroupView[]> {
    const q: Record<string, string> = {};
    if (f.tag !== undefined) q.tags = f.tag;
    return (await m.find(ctx, "security_group", q)).map(groupView);
  },
  /** A new group holds Neutron's egress-anywhere rules, as every new group does: callers that want otherwise remove them. */
  async create(m: Model, ctx: RequestContext, s: { readonly name: string; readonly project: string; readonly description?: string; readonly tags: readonly string[] }): Promise<GroupView> {
    const [v] = await m.create(ctx, "security_group", [{ name: s.name, project_id: s.project, description: s.description ?? "", tags: [...s.tags] }]);
    return groupView(v!);
  },
  remove(m: Model, ctx: RequestContext, id: string): Promise<void> {
    return m.remove(ctx, "security_group", id);
  },
  async addRule(m: Model, ctx: RequestContext, group: string, r: RuleSpec): Promise<string> {
    const [v] = await m.create(ctx, "security_group_rule", [
      {
        security_group_id: group,
        direction: r.direction,
        ethertype: r.ethertype,
        protocol: r.protocol,
        port_range_min: r.portMin,
        port_range_max: r.portMax,
        remote_ip_prefix: r.remoteCidr,
        remote_group_id: r.remoteGroup,
      },
    ]);
    return v!.id as string;
  },
  removeRule(m: Model, ctx: RequestContext, id: string): Promise<void> {
    return m.remove(ctx, "security_group_rule", id);
  },
};
