// The device_owner vocabulary: who a port belongs to decides who plugs it, who
// filters it and who is told about it. One place, so that the compiler, the
// services and the Nova notifier cannot disagree on what an owner means.

export const OWNER = {
  routerInterface: "network:router_interface",
  /** a distributed router's interface: the same address and MAC on every host that runs the router */
  routerInterfaceDistributed: "network:router_interface_distributed",
  /** a distributed router's address on each internal subnet for its central SNAT instance (Neutron's csnat port) */
  routerSnat: "network:router_centralized_snat",
  routerGateway: "network:router_gateway",
  floatingip: "network:floatingip",
  dhcp: "network:dhcp",
  nova: "compute:nova",
  kubernetes: "compute:kubernetes",
  /** holds a service's VIP on its service subnet (core/service/services.ts); plugged nowhere */
  serviceVip: "seam:service_vip",
} as const;

export const ROUTER_INTERFACE_OWNERS: ReadonlySet<string> = new Set([OWNER.routerInterface, OWNER.routerInterfaceDistributed, "network:ha_router_replicated_interface"]);
export const L3_OWNERS: ReadonlySet<string> = new Set([...ROUTER_INTERFACE_OWNERS, OWNER.routerGateway, OWNER.routerSnat, OWNER.floatingip]);

/** Ports of the network itself (router interfaces, gateways, DHCP): no default group, served by a network host. */
export const isNetworkOwner = (owner: string) => owner.startsWith("network:");

/**
 * A port that a network host carries for its network: a `network:*` port
 * bound to no host in the model (router interfaces, DHCP).
 */
export const isNetworkHostPort = (owner: string, host: string) => isNetworkOwner(owner) && !host;

/** Ports whose plugging Nova waits for: compute ports other than containers (which have no server to tell). */
export const isNovaOwner = (owner: string) => owner.startsWith("compute:") && owner !== OWNER.kubernetes;
