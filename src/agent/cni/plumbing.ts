// A container's interface, made from its port's intent item: a veth with the
// port's MAC, every address (both families), a default route per family and
// the network's MTU inside the container's namespace, and its `tap…` peer
// here, which the links manager attaches to the bridge.
import { existsSync } from "node:fs";
import type { NetItem, PortItem } from "../../contract/intent.ts";
import { Exec } from "../../os/exec.ts";
import { hostNetnsFd, Rtnl } from "../../os/netlink/rtnl.ts";
import { type Attachment, CniCode, CniError } from "./result.ts";

const isV6 = (ip: string) => ip.includes(":");

// Netlink, not `ip`: no process per ADD (socket.ts says why). The pair is made inside the
// container, configured there, and its peer sent to this namespace (attaching it to the
// bridge, which also sets it up, is the links manager's).
export async function plumb(port: PortItem, net: NetItem | undefined, netns: string, ifname: string): Promise<Attachment> {
  if (port.addresses.length === 0) throw new CniError(CniCode.noAddress, `port ${port.id} has no address`);
  const host = Rtnl.here();
  let hostMac: string | null;
  try {
    host.delLink(port.device); // a crashed attempt's
    Rtnl.in(netns, (nl) => {
      nl.addVeth({ name: ifname, mac: port.mac, mtu: port.mtu, peer: port.device, peerMtu: port.mtu, peerNetnsFd: hostNetnsFd() });
      nl.setLink({ name: "lo", up: true });
      nl.setLink({ name: ifname, up: true });
      const index = nl.link(ifname)?.index;
      if (!index) throw new Error(`${ifname} vanished after it was made`);
      // no duplicate address detection: the controller's IPAM already made the address unique, and a tentative address cannot be used
      for (const a of port.addresses) nl.addAddress(index, a, ifname);
      // the family of `default` follows the gateway's
      for (const gw of port.gateways) nl.addDefaultRoute(index, gw, ifname);
    });
    hostMac = host.link(port.device)?.mac ?? null;
  } catch (e) {
    throw new CniError(CniCode.io, `could not wire ${ifname} into ${netns}`, (e as Error).message);
  }
  if (!hostMac) throw new CniError(CniCode.io, `the host end ${port.device} of ${ifname} is gone`);
  return { hostDevice: port.device, hostMac, ifname, mac: port.mac, netns, addresses: port.addresses, gateways: port.gateways, mtu: port.mtu, dnsDomain: net?.dnsDomain ?? null, resolvers: net?.resolvers ?? [] };
}

/** Whether the container still has what ADD made: the interface, its MAC, every address, a default route per gateway. */
export async function interfaceMatches(a: Attachment): Promise<boolean> {
  if (!existsSync(a.netns)) return false;
  const inside = Exec.in(a.netns);
  try {
    const [link] = await inside.json<{ address: string; addr_info: { local: string; prefixlen: number }[] }[]>("ip", ["-j", "addr", "show", "dev", a.ifname]);
    if (!link || link.address !== a.mac) return false;
    const have = new Set(link.addr_info.map((i) => `${i.local}/${i.prefixlen}`));
    if (!a.addresses.every((x) => have.has(x))) return false;
    for (const gw of a.gateways) {
      const routes = await inside.json<{ gateway?: string }[]>("ip", [...(isV6(gw) ? ["-6"] : []), "-j", "route", "show", "default"]);
      if (!routes.some((r) => r.gateway === gw)) return false;
    }
    return existsSync(`/sys/class/net/${a.hostDevice}`);
  } catch {
    return false;
  }
}

/** Removes the container's interface (if its namespace is still there) and host devices; nothing there is fine. */
export async function unplumb(netns: string, ifname: string, devices: readonly string[]): Promise<void> {
  if (netns && existsSync(netns)) {
    try {
      await Rtnl.delLinkOffThread(netns, ifname);
    } catch {
      // a namespace going away under us: its devices go with it
    }
  }
  for (const d of devices) await Rtnl.delLinkOffThread(null, d);
}
