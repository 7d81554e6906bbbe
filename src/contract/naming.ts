// Names the model gives to things both sides must agree on. The agent's own
// kernel names (bridges, VXLAN devices, chains, sets) are in agent/naming.ts:
// they are the agent's business, and the server never needs them.

/**
 * A port's device on its host: `tap` + the first 11 characters of the port id,
 * as Nova/os-vif name a VM's tap, so that a hypervisor's qemu and Seam agree
 * without asking each other. Pods' host-side veths are named the same way.
 */
export const tapName = (portId: string) => `tap${portId.slice(0, 11)}`;

/**
 * A router port's device on the host that runs the router: the host side of
 * the veth whose other end is the router's interface in its namespace. The
 * compiler puts it in the port item; the agent makes it and plugs it like a tap.
 */
export const routerPortName = (portId: string) => `srp-${portId.slice(0, 11)}`;

/**
 * A DHCP port's device on the host that serves the network: the host side of
 * the veth whose other end is the DHCP server's interface in its namespace.
 */
export const dhcpPortName = (portId: string) => `sdp-${portId.slice(0, 11)}`;
