// A constraint the database refused, told as Neutron tells it. The services
// check these facts before they write, so a client meets this only when two
// requests raced: one named an object while another deleted it, or both took
// the same unique thing. Then the loser gets the 404 or 409 it would have got
// had it come second, never a 500.
import { conflict, NeutronError, resourceNotFound } from "../errors.ts";
import { REFERENCES, violationOf } from "../store/references.ts";

const SINGULAR: Readonly<Record<string, string>> = {
  networks: "network",
  subnets: "subnet",
  ports: "port",
  routers: "router",
  security_groups: "security_group",
  trunks: "trunk",
};

/** What a parent that is still named answers when deleted, per parent table. */
const IN_USE: Readonly<Record<string, (child: string) => NeutronError>> = {
  networks: () => conflict("NetworkInUse", "Unable to complete operation on network. There are one or more ports still in use on the network."),
  subnets: () => conflict("SubnetInUse", "Unable to complete operation on subnet: One or more ports have an IP allocation from this subnet."),
  ports: (child) =>
    child === "trunks"
      ? conflict("PortInUseAsTrunkParent", "Port is currently a parent port for a trunk.")
      : child === "trunk_subports"
        ? conflict("PortInUseAsSubPort", "Port is currently a subport of a trunk.")
        : conflict("PortInUse", `Port is in use (by ${child}).`),
  routers: () => conflict("RouterInUse", "Router still has floating IPs or ports."),
  security_groups: () => conflict("SecurityGroupInUse", "Security Group in use."),
  trunks: () => conflict("TrunkInUse", "Trunk is in use."),
};

/** Unique indexes a race can hit, by name (PostgreSQL names them; SQLite's writers never race). */
const UNIQUE: Readonly<Record<string, () => NeutronError>> = {
  floatingips_fixed: () => conflict("FloatingIPPortAlreadyAssociated", "The fixed IP of this port already has a floating IP."),
  trunks_port_id_key: () => conflict("TrunkPortInUse", "Port is in use by another trunk."),
  trunk_subports_pkey: () => conflict("PortInUseAsSubPort", "Port is already a subport of a trunk."),
  trunk_subports_segment: () => conflict("DuplicateSubPort", "segmentation_type and segmentation_id already in use on the trunk."),
  ports_network_mac: () => conflict("MacAddressInUse", "The mac address is in use on this network."),
  security_group_rules_key: () => conflict("SecurityGroupRuleExists", "Security group rule already exists."),
  ip_allocations_pkey: () => conflict("IpAddressAlreadyAllocated", "The IP address is already allocated."),
};

const byName = new Map(REFERENCES.map((r) => [r.name, r]));

/** The NeutronError for a store error that is a constraint violation, or the error unchanged. */
export function asNeutronError(err: unknown): unknown {
  if (err instanceof NeutronError) return err;
  const v = violationOf(err);
  if (!v) return err;
  if (v.side === "unique") return UNIQUE[v.constraint]?.() ?? err;
  const r = byName.get(v.constraint);
  if (!r) return err;
  if (v.side === "child") return resourceNotFound(SINGULAR[r.parent] ?? r.parent, v.id ?? "named by the request");
  return IN_USE[r.parent]?.(r.table) ?? err;
}
