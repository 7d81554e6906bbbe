// Where the network's own duties run: network-host ports (router interfaces,
// DHCP) and centralised routers go to the first network host by name. One
// rule, read by the compiler (which places them) and by the API (which says
// where they are: a router's l3-agents).

export const NETWORK_ROLE = "network";

/** Hosts whose agent has the network role, in placement order: the first serves. */
export function networkHostsInOrder(agents: Iterable<{ readonly host: string; readonly roles: readonly string[] }>): string[] {
  const out: string[] = [];
  for (const a of agents) if (a.roles.includes(NETWORK_ROLE)) out.push(a.host);
  return out.sort();
}

/**
 * The agents that serve the network's duties (a centralised router, a
 * network's DHCP): the first network host's, as Neutron's l3-agents and
 * dhcp-agents lists name them. Agents as the API shows them.
 */
export function servingAgents<A extends { readonly host?: unknown; readonly configurations?: unknown }>(agents: readonly A[]): A[] {
  const roles = (a: A) => ((a.configurations as { roles?: string[] } | undefined)?.roles ?? []) as string[];
  const [first] = networkHostsInOrder(agents.map((a) => ({ host: a.host as string, roles: roles(a) })));
  return agents.filter((a) => a.host === first);
}
