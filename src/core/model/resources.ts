// The attribute maps of the logical model: for each resource, which attributes
// exist, which a client may set on create or update, their converters and
// defaults, who may set or see them, and which can be filtered or sorted.
// Validation, views, filters and the extension list all read this one table.
import type { Attr, ResourceDef } from "./attributes.ts";
import * as v from "./validate.ts";

const ro: Attr = {};
const roBool: Attr = { kind: "bool" };
const roInt: Attr = { kind: "int" };
const timestamps = { created_at: ro, updated_at: ro, revision_number: roInt };

function standard(): Record<string, Attr> {
  return {
    id: { ...ro },
    name: { convert: v.string(255), post: true, put: true, default: "" },
    description: { convert: v.string(255), post: true, put: true, default: "" },
    project_id: { convert: v.string(255), post: true },
    tenant_id: { convert: v.string(255), post: true },
    tags: { convert: v.list(v.tag, true), post: true, default: [], filter: "none", sort: false },
    ...timestamps,
  };
}

const hostRoute = v.shape({ destination: v.cidr, nexthop: v.ipAddress }, ["destination", "nexthop"]);
const pool = v.shape({ start: v.ipAddress, end: v.ipAddress }, ["start", "end"]);
const fixedIp = v.shape({ subnet_id: v.uuid, ip_address: v.ipAddress });
const addressPair = v.shape({ ip_address: v.addressOrCidr, mac_address: v.mac }, ["ip_address"]);
const dhcpOpt = v.shape({ opt_name: v.string(255), opt_value: v.string(255), ip_version: v.integer(4, 6) }, ["opt_name", "opt_value"]);
// Seam's own: how Kubernetes NetworkPolicy isolates a pod without changing what its
// security_groups mean elsewhere (docs/kubernetes.md): `ingress`/`egress`, when
// present, are the groups whose rules filter that direction instead of the
// port's security_groups; `member_of` are groups the port counts in as a remote
// group's member without their rules filtering it.
// (null or absent: not isolated; [] isolated with nothing admitted, NetworkPolicy's deny-all)
const groupsOrNull: v.Converter = (x, a) => (x === null ? null : v.list(v.uuid, true)(x, a));
const seamPolicy: v.Converter = (x, a) => (x === null ? null : v.shape({ ingress: groupsOrNull, egress: groupsOrNull, member_of: v.list(v.uuid, true) })(x, a));
const subport = v.shape(
  { port_id: v.uuid, segmentation_type: v.oneOf("vlan", "inherit"), segmentation_id: v.integer(1, 4094) },
  ["port_id"],
);

export const network: ResourceDef = {
  singular: "network",
  plural: "networks",
  path: "networks",
  table: "networks",
  taggable: true,
  attrs: {
    ...standard(),
    admin_state_up: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    status: ro,
    subnets: { filter: "contains", sort: false },
    shared: { convert: v.boolean, post: true, put: true, default: false, adminSet: true, kind: "bool" },
    "router:external": { convert: v.boolean, post: true, put: true, default: false, adminSet: true, kind: "bool" },
    "provider:network_type": { convert: v.string(32), post: true, adminSet: true, adminView: true },
    "provider:physical_network": { convert: v.nullableString(64), post: true, adminSet: true, adminView: true },
    "provider:segmentation_id": { convert: v.nullableInteger(0, 16777215), post: true, adminSet: true, adminView: true, kind: "int" },
    mtu: { convert: v.integer(68, 65535), post: true, put: true, kind: "int" },
    dns_domain: { convert: v.dnsDomain, post: true, put: true, default: "" },
    port_security_enabled: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    availability_zone_hints: { convert: v.list(v.string(255)), post: true, default: [], filter: "none", sort: false },
    availability_zones: { filter: "none", sort: false },
    ipv4_address_scope: ro,
    ipv6_address_scope: ro,
    l2_adjacency: roBool,
    is_default: roBool,
  },
};

export const subnet: ResourceDef = {
  singular: "subnet",
  plural: "subnets",
  path: "subnets",
  table: "subnets",
  taggable: true,
  attrs: {
    ...standard(),
    network_id: { convert: v.uuid, post: true, required: true },
    ip_version: { convert: v.integer(4, 6), post: true, kind: "int" },
    // required unless the subnet is cut from a pool (subnets.ts)
    cidr: { convert: v.cidr, post: true },
    gateway_ip: { convert: v.nullableIpAddress, post: true, put: true },
    allocation_pools: { convert: v.list(pool), post: true, put: true, filter: "none", sort: false },
    dns_nameservers: { convert: v.nullableList(v.ipAddress, true), post: true, put: true, default: [], filter: "none", sort: false },
    host_routes: { convert: v.nullableList(hostRoute), post: true, put: true, default: [], filter: "none", sort: false },
    enable_dhcp: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    ipv6_ra_mode: { convert: v.oneOf("slaac", "dhcpv6-stateful", "dhcpv6-stateless", null), post: true, default: null },
    ipv6_address_mode: { convert: v.oneOf("slaac", "dhcpv6-stateful", "dhcpv6-stateless", null), post: true, default: null },
    service_types: { convert: v.list(v.string(255)), post: true, put: true, default: [], filter: "none", sort: false },
    // from a subnet pool: the pool, and either a cidr inside it or just the prefix length wanted
    subnetpool_id: { convert: v.nullableUuid, post: true, default: null },
    prefixlen: { convert: v.integer(0, 128), post: true, filter: "none", sort: false, kind: "int" },
    use_default_subnetpool: { convert: v.boolean, post: true, filter: "none", sort: false, kind: "bool" },
    segment_id: ro,
  },
};

export const port: ResourceDef = {
  singular: "port",
  plural: "ports",
  path: "ports",
  table: "ports",
  taggable: true,
  attrs: {
    ...standard(),
    network_id: { convert: v.uuid, post: true, required: true },
    admin_state_up: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    mac_address: { convert: v.mac, post: true, put: true },
    fixed_ips: { convert: v.nullableList(fixedIp), post: true, put: true, filter: "none", sort: false },
    device_id: { convert: v.string(255), post: true, put: true, default: "" },
    device_owner: { convert: v.string(255), post: true, put: true, default: "" },
    status: ro,
    security_groups: { convert: v.nullableList(v.uuid, true), post: true, put: true, filter: "contains", sort: false },
    allowed_address_pairs: { convert: v.nullableList(addressPair), post: true, put: true, default: [], filter: "none", sort: false },
    port_security_enabled: { convert: v.boolean, post: true, put: true, kind: "bool" },
    extra_dhcp_opts: { convert: v.nullableList(dhcpOpt), post: true, put: true, default: [], filter: "none", sort: false },
    dns_name: { convert: v.dnsName, post: true, put: true, default: "" },
    dns_assignment: { filter: "none", sort: false },
    "binding:host_id": { convert: v.string(255), post: true, put: true, default: "", adminSet: true, adminView: true },
    "binding:profile": { convert: v.nullableDict, post: true, put: true, default: {}, adminSet: true, adminView: true, filter: "none", sort: false },
    "binding:vnic_type": { convert: v.oneOf("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "remote-managed"), post: true, put: true, default: "normal" },
    "binding:vif_type": { adminView: true },
    "binding:vif_details": { adminView: true, filter: "none", sort: false },
    trunk_details: { filter: "none", sort: false },
    ip_allocation: ro,
    propagate_uplink_status: roBool,
    resource_request: { filter: "none", sort: false },
    "seam:policy": { convert: seamPolicy, post: true, put: true, default: null, adminSet: true, filter: "none", sort: false },
  },
};

export const router: ResourceDef = {
  singular: "router",
  plural: "routers",
  path: "routers",
  table: "routers",
  taggable: true,
  attrs: {
    ...standard(),
    admin_state_up: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    status: ro,
    external_gateway_info: {
      // {} clears the gateway, as null does (Neutron accepts both; Tempest's clean-ups send {})
      convert: (x, a) =>
        x === null || (typeof x === "object" && !Array.isArray(x) && Object.keys(x).length === 0)
          ? null
          : v.shape({ network_id: v.uuid, enable_snat: v.boolean, external_fixed_ips: v.list(fixedIp) }, ["network_id"])(x, a),
      post: true,
      put: true,
      default: null,
      filter: "none",
      sort: false,
    },
    routes: { convert: v.nullableList(hostRoute), put: true, default: [], filter: "none", sort: false },
    // no default here: a router created without it takes the deployment's (ModelConfig.distributedRouters)
    distributed: { convert: v.boolean, post: true, put: true, adminSet: true, kind: "bool" },
    ha: { convert: v.boolean, post: true, adminSet: true, default: false, kind: "bool" },
    availability_zone_hints: { convert: v.list(v.string(255)), post: true, default: [], filter: "none", sort: false },
    availability_zones: { filter: "none", sort: false },
    flavor_id: ro,
  },
};

export const floatingip: ResourceDef = {
  singular: "floatingip",
  plural: "floatingips",
  path: "floatingips",
  table: "floatingips",
  taggable: true,
  attrs: {
    ...standard(),
    name: ro,
    floating_network_id: { convert: v.uuid, post: true, required: true },
    floating_ip_address: { convert: v.ipAddress, post: true },
    subnet_id: { convert: v.nullableUuid, post: true, filter: "none" },
    port_id: { convert: v.nullableUuid, post: true, put: true },
    fixed_ip_address: { convert: v.nullableIpAddress, post: true, put: true },
    router_id: ro,
    status: ro,
    dns_domain: ro,
    dns_name: ro,
    qos_policy_id: ro,
    port_forwardings: { filter: "none", sort: false },
  },
};

export const securityGroup: ResourceDef = {
  singular: "security_group",
  plural: "security_groups",
  path: "security-groups",
  table: "security_groups",
  taggable: true,
  attrs: {
    ...standard(),
    stateful: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    shared: roBool,
    security_group_rules: { filter: "none", sort: false },
  },
};

export const securityGroupRule: ResourceDef = {
  singular: "security_group_rule",
  plural: "security_group_rules",
  path: "security-group-rules",
  table: "security_group_rules",
  taggable: false,
  attrs: {
    id: ro,
    project_id: { convert: v.string(255), post: true },
    tenant_id: { convert: v.string(255), post: true },
    description: { convert: v.string(255), post: true, put: true, default: "" },
    security_group_id: { convert: v.uuid, post: true, required: true },
    direction: { convert: v.oneOf("ingress", "egress"), post: true, required: true },
    ethertype: { convert: v.oneOf("IPv4", "IPv6"), post: true, default: "IPv4" },
    protocol: { convert: (x, a) => (x === null ? null : v.string(40)(typeof x === "number" ? String(x) : x, a)), post: true, default: null },
    port_range_min: { convert: v.nullablePort, post: true, default: null, kind: "int" },
    port_range_max: { convert: v.nullablePort, post: true, default: null, kind: "int" },
    remote_ip_prefix: { convert: v.nullableAddressOrCidr, post: true, default: null },
    // Neutron leaves it unchecked here: a value naming no group is a 404 (SecurityGroupNotFound), not a 400.
    remote_group_id: { convert: v.nullableString(255), post: true, default: null },
    remote_address_group_id: ro,
    normalized_cidr: ro,
    belongs_to_default_sg: roBool,
    ...timestamps,
  },
};

export const trunk: ResourceDef = {
  singular: "trunk",
  plural: "trunks",
  path: "trunks",
  table: "trunks",
  taggable: true,
  attrs: {
    ...standard(),
    port_id: { convert: v.uuid, post: true, required: true },
    admin_state_up: { convert: v.boolean, post: true, put: true, default: true, kind: "bool" },
    status: ro,
    sub_ports: { convert: v.nullableList(subport), post: true, default: [], filter: "none", sort: false },
  },
};

export const agent: ResourceDef = {
  singular: "agent",
  plural: "agents",
  path: "agents",
  table: "agents",
  taggable: false,
  attrs: {
    id: ro,
    agent_type: ro,
    binary: ro,
    host: ro,
    topic: ro,
    alive: roBool,
    admin_state_up: { convert: v.boolean, put: true, kind: "bool" },
    description: { convert: v.string(255), put: true },
    availability_zone: ro,
    configurations: { filter: "none", sort: false },
    created_at: ro,
    started_at: ro,
    heartbeat_timestamp: ro,
  },
};

// Neutron's subnet_allocation: address space a project (or, shared, every
// project) cuts subnets from without choosing their CIDRs.
export const subnetpool: ResourceDef = {
  singular: "subnetpool",
  plural: "subnetpools",
  path: "subnetpools",
  table: "subnetpools",
  taggable: true,
  attrs: {
    ...standard(),
    prefixes: { convert: v.list(v.cidr), post: true, put: true, required: true, filter: "none", sort: false },
    default_prefixlen: { convert: v.integer(0, 128), post: true, put: true, kind: "int" },
    min_prefixlen: { convert: v.integer(0, 128), post: true, put: true, kind: "int" },
    max_prefixlen: { convert: v.integer(0, 128), post: true, put: true, kind: "int" },
    shared: { convert: v.boolean, post: true, default: false, adminSet: true, kind: "bool" },
    is_default: { convert: v.boolean, post: true, put: true, default: false, adminSet: true, kind: "bool" },
    default_quota: { convert: v.nullableInteger(0), post: true, put: true, default: null, kind: "int" },
    address_scope_id: ro,
    ip_version: roInt,
  },
};

/** Objects a project may share with others, and how (Neutron's rbac-policies). */
export const RBAC_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  network: ["access_as_shared", "access_as_external"],
  security_group: ["access_as_shared"],
};

export const rbacPolicy: ResourceDef = {
  singular: "rbac_policy",
  plural: "rbac_policies",
  path: "rbac-policies",
  table: "rbac_policies",
  taggable: false,
  attrs: {
    id: ro,
    project_id: { convert: v.string(255), post: true },
    tenant_id: { convert: v.string(255), post: true },
    object_type: { convert: v.oneOf(...Object.keys(RBAC_ACTIONS)), post: true, required: true },
    object_id: { convert: v.uuid, post: true, required: true },
    action: { convert: v.oneOf(...new Set(Object.values(RBAC_ACTIONS).flat())), post: true, required: true },
    // a project id, or "*" for every project
    target_tenant: { convert: v.string(255), post: true, put: true, required: true },
  },
};

export const resources: readonly ResourceDef[] = [network, subnet, subnetpool, port, router, floatingip, securityGroup, securityGroupRule, trunk, agent, rbacPolicy];

export const byPath = new Map(resources.map((r) => [r.path, r]));
