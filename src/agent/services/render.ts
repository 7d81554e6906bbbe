// HostIntent's services -> what the kernel should hold for them (pure).
//
// The translation happens where the client is, on its network's bridge in
// the host namespace (br_netfilter hands bridged IPv4 to the ip family's
// hooks, with the bridge as the input interface):
//   table ip seam
//     chain dnat (nat, prerouting): iifname . ip daddr . l4proto . th dport
//       vmap @services -> a chain per (service, client network, port) that
//       picks a backend at random among those the network reaches
//       (kube-proxy's nftables mode does the same), -> a chain per backend
//       with its `dnat to`.
//     chain refuse (filter, forward): the same key in @no_backends is
//       refused at once (a TCP reset, else ICMP port unreachable), as
//       kube-proxy does for a Service without endpoints.
// br_netfilter keeps a translated packet on its bridge only if the host's
// route to the new address leads back to that bridge, and the host has no
// routes for tenant addresses (they overlap across tenants). So each client
// bridge gets a rule `iif <bridge>` to its own table holding `<backend>/32
// dev <bridge>`, and a permanent neighbour entry saying which MAC the
// backend is reached at from there (its own, or a router's interface). A
// refusal is sent from the VIP, so service subnets get a rule to a table
// whose default route is `lo`: the reset then leaves by the client's port.
// Each client bridge's conntrack zone is its own (chain zones, at raw).
import { itemsOf, type SvcItem } from "../../contract/intent.ts";
import type { Intent } from "../manager.ts";
import { device, svc } from "../naming.ts";
import type { TableSpec } from "../nft/ruleset.ts";

export interface BridgeRoutes {
  /** the routing table its `iif` rule points to */
  readonly table: number;
  /** backend address -> the MAC it is sent to from this bridge */
  readonly nexthops: ReadonlyMap<string, string>;
}

export interface ServicesState {
  readonly nft: TableSpec;
  /** client bridge -> its table and backends */
  readonly bridges: ReadonlyMap<string, BridgeRoutes>;
  /** service subnets the refusals come from */
  readonly subnets: ReadonlySet<string>;
  /** services this host cannot translate, with why */
  readonly skipped: readonly string[];
}

const KEY_TYPE = "ifname . ipv4_addr . inet_proto . inet_service";
const KEY = "iifname . ip daddr . meta l4proto . th dport";

/**
 * `tables`: the tables bridges already have (the kernel's rules, or what was
 * applied): kept, so a bridge's table never moves under its traffic; a new
 * client bridge takes the lowest free one.
 */
export function renderServices(intent: Intent, tables: ReadonlyMap<string, number>): ServicesState {
  const chains = new Map<string, { decl: string; rules: string[] }>();
  const dispatch = new Map<string, string>();
  const empty: string[] = [];
  const nexthops = new Map<string, Map<string, string>>();
  const subnets = new Set<string>();
  const skipped: string[] = [];

  for (const s of itemsOf(intent, "svc").sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (s.vip.includes(":")) {
      skipped.push(`service ${s.id}: an IPv6 VIP (${s.vip}) is not translated yet`);
      continue;
    }
    subnets.add(s.subnet);
    for (const c of s.clients) renderClient(s, c, chains, dispatch, empty, nexthops);
  }

  const used = new Set<number>();
  const bridges = new Map<string, BridgeRoutes>();
  for (const b of nexthops.keys()) {
    const t = tables.get(b);
    if (t !== undefined) used.add(t);
  }
  let next = svc.firstTable;
  for (const [b, hops] of [...nexthops].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let table = tables.get(b);
    if (table === undefined) {
      while (used.has(next)) next++;
      table = next;
      used.add(table);
    }
    bridges.set(b, { table, nexthops: hops });
  }

  // A translated connection crosses two of this host's bridges when a router here joins client and
  // backend: conntrack sees it on both, and in one zone the second sighting's reply would clash with
  // the first's (conntrack then remaps the source port). A zone per client bridge keeps them apart.
  if (bridges.size) {
    const zones = [...bridges].map(([b, r]) => `"${b}" : ${r.table - svc.firstTable + 1}`);
    chains.set(svc.zones, { decl: "{ type filter hook prerouting priority raw; policy accept; }", rules: [`ct zone set iifname map { ${zones.join(", ")} }`] });
  }
  if (dispatch.size || empty.length) {
    chains.set(svc.prerouting, { decl: "{ type nat hook prerouting priority dstnat; policy accept; }", rules: [`${KEY} vmap @${svc.dispatch}`] });
    chains.set(svc.forward, {
      decl: "{ type filter hook forward priority -10; policy accept; }",
      rules: [`meta l4proto tcp ${KEY} @${svc.empty} reject with tcp reset`, `${KEY} @${svc.empty} reject`],
    });
  }
  const nft: TableSpec = {
    family: "ip",
    name: svc.table,
    chains,
    sets: new Map([[svc.empty, { decl: `{ type ${KEY_TYPE}; }`, elements: empty.sort(), exact: true }]]),
    maps: new Map([[svc.dispatch, { decl: `{ type ${KEY_TYPE} : verdict; }`, elements: dispatch }]]),
  };
  return { nft, bridges, subnets, skipped };
}

function renderClient(
  s: SvcItem,
  c: SvcItem["clients"][number],
  chains: Map<string, { decl: string; rules: string[] }>,
  dispatch: Map<string, string>,
  empty: string[],
  nexthops: Map<string, Map<string, string>>,
): void {
  const bridge = device.bridge(c.network);
  const reach = new Map(c.nexthops.map((h) => [h.ip, h.mac]));
  let hops = nexthops.get(bridge);
  if (!hops) nexthops.set(bridge, (hops = new Map()));
  for (const p of s.ports) {
    const k = `"${bridge}" . ${s.vip} . ${p.protocol} . ${p.port}`;
    const targets = p.targets.filter((t) => reach.has(t.ip));
    if (!targets.length) {
      empty.push(k);
      continue;
    }
    const eps = targets.map((t) => {
      hops.set(t.ip, reach.get(t.ip)!);
      const name = svc.backend(p.protocol, t.ip, t.port);
      chains.set(name, { decl: "", rules: [`meta l4proto ${p.protocol} dnat to ${t.ip}:${t.port}`] });
      return name;
    });
    const name = svc.chain(s.id, c.network, p.protocol, p.port);
    const pick = eps.length === 1 ? `goto ${eps[0]}` : `numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto ${e}`).join(", ")} }`;
    chains.set(name, { decl: "", rules: [pick] });
    dispatch.set(k, `goto ${name}`);
  }
}
