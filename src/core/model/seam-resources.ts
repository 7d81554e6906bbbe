// The attribute maps of Seam's own resources: those of the logical model that
// Neutron has no word for (DESIGN.md: "service (VIP + backends + ports)").
// They take the model's generic flows (validation, the change log, tags) but
// are not served on /v2.0: the Neutron door lists resources.ts only.
import type { Attr, ResourceDef } from "./attributes.ts";
import * as v from "./validate.ts";

const ro: Attr = {};

/** A backend of one service port: the address and port traffic is sent to, and the Seam port holding that address. */
const target = v.shape({ ip_address: v.ipAddress, port: v.integer(1, 65535), port_id: v.nullableUuid }, ["ip_address", "port"]);
const servicePort = v.shape(
  { name: v.string(63), protocol: v.oneOf("tcp", "udp", "sctp"), port: v.integer(1, 65535), targets: v.list(target) },
  ["protocol", "port"],
);

/**
 * A virtual IP on a service subnet (F22), its address held by a port of that
 * subnet so the one IPAM knows it, with the backends of each of its ports:
 * what a Kubernetes ClusterIP Service is, and what any orchestrator can ask for.
 */
export const service: ResourceDef = {
  singular: "service",
  plural: "services",
  path: "services",
  table: "services",
  taggable: true,
  attrs: {
    id: ro,
    name: { convert: v.string(255), post: true, put: true, default: "" },
    description: { convert: v.string(255), post: true, put: true, default: "" },
    project_id: { convert: v.string(255), post: true },
    tenant_id: { convert: v.string(255), post: true },
    tags: { convert: v.list(v.tag, true), post: true, default: [], filter: "none", sort: false },
    subnet_id: { convert: v.uuid, post: true, required: true },
    network_id: ro,
    /** absent: the subnet's IPAM picks one */
    vip_address: { convert: v.ipAddress, post: true },
    vip_port_id: ro,
    ports: { convert: v.list(servicePort), post: true, put: true, default: [], filter: "none", sort: false },
    /** the name the VIP answers to in the controller's DNS (`web.shop.svc.cluster.local`), "" for none */
    dns_name: { convert: v.string(253), post: true, put: true, default: "" },
    created_at: ro,
    updated_at: ro,
    revision_number: { kind: "int" },
  },
};
