// The link, address, route and neighbour verbs the agent uses, on one
// rtnetlink socket (socket.ts), each what the `ip` or `bridge` command of the
// same name would send (messages.ts). Errors are the kernel's, naming the object.
import {
  AF_BRIDGE, delLink, delNeigh, getLink, getNeigh, type LinkChange, type LinkInfo, type NeighInfo, type NeighRequest, newAddress, newBridge,
  newDefaultRoute, newNeigh, newVeth, newVxlan, parseLink, parseNeigh, RTM, setLink, type VethRequest, type VxlanRequest,
} from "./messages.ts";
import { ERRNO, hostNetnsFd, NetlinkError, RtnlSocket } from "./socket.ts";

export { type LinkInfo, type NeighInfo, NetlinkError, ERRNO, hostNetnsFd };

const AF_INET = 2;
const AF_INET6 = 10;

let here: Rtnl | undefined;

export class Rtnl {
  private constructor(private readonly sock: RtnlSocket) {}

  /** This process's namespace: one socket, kept. */
  static here(): Rtnl {
    return (here ??= new Rtnl(RtnlSocket.open(null)));
  }

  /** `f` on this namespace's socket (null) or on one in the namespace a path names. */
  static with<T>(netns: string | null, f: (nl: Rtnl) => T): T {
    return netns === null ? f(Rtnl.here()) : Rtnl.in(netns, f);
  }

  /** Runs `f` on a socket in the namespace a path names (`/run/netns/x`, a CNI_NETNS), closed after. */
  static in<T>(netns: string, f: (nl: Rtnl) => T): T {
    const nl = new Rtnl(RtnlSocket.open(netns));
    try {
      return f(nl);
    } finally {
      nl.sock.close();
    }
  }

  /** A veth pair whose `peer` end goes to the namespace of `peerNetnsFd`. */
  addVeth(v: VethRequest): void {
    this.sock.request((seq) => newVeth(seq, v), `create veth ${v.name} (peer ${v.peer})`);
  }

  addBridge(name: string): void {
    this.sock.request((seq) => newBridge(seq, name), `create bridge ${name}`);
  }

  addVxlan(v: VxlanRequest): void {
    this.sock.request((seq) => newVxlan(seq, v), `create vxlan ${v.name} (VNI ${v.vni})`);
  }

  setLink(c: LinkChange): void {
    this.sock.request((seq) => setLink(seq, c), `set link ${c.name}`);
  }

  /** Deletes a device; false when there was none. */
  delLink(name: string): boolean {
    try {
      this.sock.request((seq) => delLink(seq, name), `delete link ${name}`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.nodev) return false;
      throw e;
    }
  }

  /**
   * Deletes a device on a socket of its own, the kernel's wait off the event
   * loop (socket.ts: requestOffThread); false when there was none. For a
   * pod's DEL, which must not hold up the ADDs beside it.
   */
  static async delLinkOffThread(netns: string | null, name: string): Promise<boolean> {
    const sock = RtnlSocket.open(netns);
    try {
      await sock.requestOffThread((seq) => delLink(seq, name), `delete link ${name}`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.nodev) return false;
      throw e;
    } finally {
      sock.close();
    }
  }

  /** One device by name (or index); null when there is none. */
  link(name: string | number): LinkInfo | null {
    try {
      const [r] = this.sock.query((seq) => getLink(seq, name), `get link ${name}`);
      return r && r.type === RTM.newLink ? parseLink(r.body) : null;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.nodev) return null;
      throw e;
    }
  }

  /** Every device of the namespace (`ip -d link show`), or those of one kind (`... type vxlan`). */
  links(kind?: string): LinkInfo[] {
    return this.sock.query((seq) => getLink(seq, undefined, kind), "list links").filter((r) => r.type === RTM.newLink).map((r) => parseLink(r.body));
  }

  putNeigh(n: NeighRequest, mode: "replace" | "append", what: string): void {
    this.sock.request((seq) => newNeigh(seq, n, mode), what);
  }

  delNeigh(n: NeighRequest, what: string): void {
    this.sock.request((seq) => delNeigh(seq, n), what);
  }

  /** IP neighbours of both families, those `ip neigh show` lists, of every device or of one. */
  neighbours(index = 0): NeighInfo[] {
    return [AF_INET, AF_INET6].flatMap((f) => this.sock.query((seq) => getNeigh(seq, f, index), "list neighbours").filter((r) => r.type === RTM.newNeigh).map((r) => parseNeigh(r.body)).filter((n) => n.family === f && n.listed));
  }

  /** Forwarding entries of bridges and VXLAN devices (`bridge fdb show`), of every device or of one. */
  fdb(index = 0): NeighInfo[] {
    return this.sock.query((seq) => getNeigh(seq, AF_BRIDGE, index), "list forwarding entries").filter((r) => r.type === RTM.newNeigh).map((r) => parseNeigh(r.body)).filter((n) => n.family === AF_BRIDGE);
  }

  addAddress(index: number, cidr: string, dev = `#${index}`): void {
    this.sock.request((seq) => newAddress(seq, index, cidr), `add address ${cidr} to ${dev}`);
  }

  addDefaultRoute(index: number, gateway: string, dev = `#${index}`): void {
    this.sock.request((seq) => newDefaultRoute(seq, index, gateway), `add default route via ${gateway} dev ${dev}`);
  }
}
