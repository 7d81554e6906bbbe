// `seam routes --kernel`: what the kernel of a host holds next to what it
// should, for one network. The difference is computed by the agent's own
// planners (links, FDB/neighbours, routers) against the host's intent: what
// they would change is the drift, printed as the commands that would mend it.
// Nothing is changed. Runs where the host's kernel is: on the host, or in
// the lab against a host's namespace.
import { existsSync } from "node:fs";
import { type IntentItem, itemsOf } from "../contract/intent.ts";
import { observeFdb, observeLinks } from "../agent/links/observe.ts";
import { type LinkOp, linesFor } from "../agent/links/ops.ts";
import { planFdb, planLinks } from "../agent/links/plan.ts";
import { device } from "../agent/naming.ts";
import { observeRouter } from "../agent/routers/observe.ts";
import { planRouter } from "../agent/routers/plan.ts";
import { routerSpecs } from "../agent/routers/spec.ts";
import { Exec } from "../os/exec.ts";

/** The devices of one network on a host: its bridge, its VXLAN device, its ports' devices. */
function devicesOf(intent: ReadonlyMap<string, IntentItem>, network: string): Set<string> {
  const out = new Set<string>([device.bridge(network)]);
  for (const n of itemsOf(intent, "net")) if (n.id === network && n.type === "vxlan" && n.segment !== null) out.add(device.vxlan(n.segment));
  for (const p of itemsOf(intent, "port")) if (p.network === network) out.add(p.device);
  return out;
}

/** Lines saying how the kernel differs from the intent for the network (empty: in step). */
export async function kernelDrift(intent: ReadonlyMap<string, IntentItem>, network: string, exec: Exec, netnsSuffix: string, vtep: string): Promise<string[]> {
  // the planners need the host's VTEP (its VXLAN devices' local address); flat networks' interfaces are not ours to judge
  const cfg = { vtep, physicalInterfaces: {}, canVxlan: true };
  const devs = devicesOf(intent, network);
  const [links, fdb] = await Promise.all([observeLinks(exec), observeFdb(exec)]);
  const ours = (o: LinkOp) => devs.has(o.dev);
  const linkPlan = planLinks(intent, links, cfg);
  const fdbPlan = planFdb(intent, fdb, cfg);
  const ops = [...linkPlan.create, ...linkPlan.remove, ...fdbPlan.create, ...fdbPlan.remove].filter(ours);
  const out = [...linesFor(ops, "ip").map((l) => `ip ${l}`), ...linesFor(ops, "bridge").map((l) => `bridge ${l}`)];
  for (const spec of routerSpecs(intent, netnsSuffix).values()) {
    if (!spec.links.some((l) => devs.has(l.peer))) continue; // the routers with a port on the network
    if (!existsSync(`/run/netns/${spec.netns}`)) {
      out.push(`router ${spec.id}: namespace ${spec.netns} missing`);
      continue;
    }
    const p = planRouter(spec, await observeRouter(Exec.in(spec.netns)));
    for (const l of [...p.host.map((x) => `ip ${x}`), ...p.inside.map((x) => `ip -n ${spec.netns} ${x}`), ...p.nft.map((x) => `nft (in ${spec.netns}) ${x}`), ...p.stale.map((x) => `ip -n ${spec.netns} ${x}`)]) out.push(l);
    if (p.forwarding) out.push(`ip netns exec ${spec.netns} sysctl -w net.ipv4.ip_forward=1`);
  }
  return out;
}
