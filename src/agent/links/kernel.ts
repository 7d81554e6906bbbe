// The links and FDB managers' ops sent to the kernel through rtnetlink, in
// the agent's process (os/netlink): the ops `render` prints as iproute2
// commands (for `seam routes --kernel` and in errors), without a process per
// batch. Why: a process started from the agent costs it 5-10 ms of its own
// event loop (the fork of a large process) besides the tool's run, and a
// burst of pod starts made one reconcile, and so several such batches, per
// pod; the same ops through netlink cost tens of microseconds each.
import { Rtnl } from "../../os/netlink/rtnl.ts";
import { type LinkOp, render, ZERO_MAC } from "./ops.ts";

/** Applies every op, each on its own as `ip -force -batch` would; the refusals come back, in the operator's words. */
export function applyLinkOps(netns: string | null, ops: readonly LinkOp[]): string[] {
  if (ops.length === 0) return [];
  return Rtnl.with(netns, (nl) => {
    const errors: string[] = [];
    const indexes = new Map<string, number>();
    const indexOf = (dev: string): number => {
      let i = indexes.get(dev);
      if (i === undefined) {
        i = nl.link(dev)?.index;
        if (i === undefined) throw new Error(`there is no device ${dev}`);
        indexes.set(dev, i);
      }
      return i;
    };
    for (const o of ops) {
      const what = render(o).line;
      try {
        switch (o.op) {
          case "addBridge":
            nl.addBridge(o.dev);
            break;
          case "addVxlan":
            nl.addVxlan({ name: o.dev, vni: o.vni, local: o.local, port: o.port });
            break;
          case "set": {
            const master = o.master === null ? 0 : o.master === undefined ? undefined : indexOf(o.master);
            nl.setLink({ name: o.dev, up: o.up, ...(o.mtu === null ? {} : { mtu: o.mtu }), ...(master === undefined ? {} : { master }), ...(o.alias === null ? {} : { alias: o.alias }) });
            break;
          }
          case "del":
            nl.delLink(o.dev);
            indexes.delete(o.dev);
            break;
          // the all-zero MAC is the flood list: one more VTEP is appended to it, never replacing the others
          case "fdbPut":
            nl.putNeigh({ index: indexOf(o.dev), ip: o.dst, mac: o.mac, fdb: true }, o.mac === ZERO_MAC ? "append" : "replace", what);
            break;
          case "fdbDel":
            nl.delNeigh({ index: indexOf(o.dev), ip: o.dst, mac: o.mac, fdb: true }, what);
            break;
          case "neighPut":
            nl.putNeigh({ index: indexOf(o.dev), ip: o.ip, mac: o.mac }, "replace", what);
            break;
          case "neighDel":
            nl.delNeigh({ index: indexOf(o.dev), ip: o.ip }, what);
            break;
        }
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    }
    return errors;
  });
}
