// A container's interface, made from its port's intent item: a veth with the
// port's MAC, every address (both families), a default route per family and
// the network's MTU inside the container's namespace, and its `tap…` peer
// here, which the links manager attaches to the bridge.
import { existsSync, readFileSync } from "node:fs";
import type { NetItem, PortItem } from "../../contract/intent.ts";
import { CommandError, Exec } from "../../os/exec.ts";
import { type Attachment, CniCode, CniError } from "./result.ts";

const isV6 = (ip: string) => ip.includes(":");

export async function plumb(port: PortItem, net: NetItem | undefined, netns: string, ifname: string): Promise<Attachment> {
  if (port.addresses.length === 0) throw new CniError(CniCode.noAddress, `port ${port.id} has no address`);
  const here = Exec.here;
  if (existsSync(`/sys/class/net/${port.device}`)) await here.run("ip", ["link", "del", port.device]).catch(() => {}); // a crashed attempt's
  // One process: the pair is made inside the container, configured there, and its peer sent to this
  // namespace (attaching it to the bridge, which also sets it up, is the links manager's).
  const inside = [
    `link add ${ifname} mtu ${port.mtu} address ${port.mac} type veth peer name ${port.device} netns ${process.pid}`,
    "link set lo up",
    `link set ${ifname} up`,
    // nodad: the controller's IPAM already made the address unique, and a tentative address cannot be used
    ...port.addresses.map((a) => `addr add ${a} dev ${ifname}${isV6(a) ? " nodad" : ""}`),
    // the family of `default` follows the gateway's
    ...port.gateways.map((gw) => `route add default via ${gw} dev ${ifname}`),
  ];
  try {
    await Exec.in(netns).run("ip", ["-batch", "-"], `${inside.join("\n")}\n`);
  } catch (e) {
    throw new CniError(CniCode.io, `could not wire ${ifname} into ${netns}`, e instanceof CommandError ? e.stderr.trim() : String(e));
  }
  const hostMac = readFileSync(`/sys/class/net/${port.device}/address`, "utf8").trim();
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
  if (netns && existsSync(netns)) await Exec.in(netns).run("ip", ["link", "del", ifname]).catch(() => {});
  for (const d of devices) await Exec.here.run("ip", ["link", "del", d]).catch(() => {});
}
