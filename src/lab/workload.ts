// Lab workloads and the port facts both they and VMs need. A workload is a
// plain network namespace (`wl-<name>`) wired to a host the way a CNI plugin
// wires a pod: a veth named like the port's tap on the host side, the peer as
// eth0 with the port's MAC, address, default route and MTU.
import { tapName } from "../contract/naming.ts";
import { api, inNs, ip, type LabState, readState, writeState } from "./base.ts";

export interface PortFacts {
  readonly id: string;
  readonly mac: string;
  /** address/prefix */
  readonly address: string;
  readonly gateway: string | null;
  readonly mtu: number;
  readonly device: string;
}

export async function portFacts(state: LabState, portId: string): Promise<PortFacts> {
  const { port } = await api<{ port: { id: string; mac_address: string; network_id: string; fixed_ips: { subnet_id: string; ip_address: string }[] } }>(state, "GET", `/v2.0/ports/${portId}`);
  const v4 = port.fixed_ips.find((f) => !f.ip_address.includes(":"));
  if (!v4) throw new Error(`port ${portId} has no IPv4 address`);
  const { subnet } = await api<{ subnet: { cidr: string; gateway_ip: string | null } }>(state, "GET", `/v2.0/subnets/${v4.subnet_id}`);
  const { network } = await api<{ network: { mtu: number } }>(state, "GET", `/v2.0/networks/${port.network_id}`);
  return { id: port.id, mac: port.mac_address, address: `${v4.ip_address}/${subnet.cidr.split("/")[1]}`, gateway: subnet.gateway_ip, mtu: network.mtu, device: tapName(port.id) };
}

export const workloadNs = (name: string) => `wl-${name}`;

export function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/.test(name)) throw new Error(`invalid name '${name}': letters, digits, '.', '_', '-' (at most 31)`);
}

export async function workload(name: string, host: string, portId: string): Promise<PortFacts> {
  checkName(name);
  const state = readState();
  if (!state.hosts.some((h) => h.name === host)) throw new Error(`no host ${host} in the lab (hosts: ${state.hosts.map((h) => h.name).join(", ")})`);
  if (state.workloads[name] || state.vms[name]) throw new Error(`${name} already exists in the lab`);
  const facts = await portFacts(state, portId);
  const ns = workloadNs(name);
  await ip("netns", "add", ns);
  try {
    await ip("-n", host, "link", "add", facts.device, "mtu", String(facts.mtu), "type", "veth", "peer", "name", "eth0", "netns", ns);
    await inNs(ns, "ip", "link", "set", "eth0", "address", facts.mac, "mtu", String(facts.mtu), "up");
    await inNs(ns, "ip", "link", "set", "lo", "up");
    await inNs(ns, "ip", "addr", "add", facts.address, "dev", "eth0");
    if (facts.gateway) await inNs(ns, "ip", "route", "add", "default", "via", facts.gateway);
    await ip("-n", host, "link", "set", facts.device, "up");
  } catch (e) {
    await ip("-n", host, "link", "del", facts.device).catch(() => {});
    await ip("netns", "del", ns).catch(() => {});
    throw e;
  }
  state.workloads[name] = { host, port: portId, ns };
  writeState(state);
  return facts;
}

export async function removeWorkload(name: string): Promise<void> {
  const state = readState();
  const w = state.workloads[name];
  if (!w) throw new Error(`no workload ${name}`);
  await ip("netns", "del", w.ns).catch(() => {}); // the veth goes with it
  delete state.workloads[name];
  writeState(state);
}
