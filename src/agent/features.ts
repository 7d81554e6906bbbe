// What this kernel can do, found out at start by trying (device kinds, bridge
// conntrack) rather than by reading version numbers; the agent says what it
// found and refuses networks it cannot carry with that reason.
import { existsSync, writeFileSync } from "node:fs";
import { run } from "../os/exec.ts";

export interface Features {
  readonly vxlan: boolean;
  readonly bridge: boolean;
  readonly geneve: boolean;
  readonly gretap: boolean;
  readonly vlan: boolean;
  readonly vrf: boolean;
  readonly openvswitch: boolean;
  /** conntrack in nftables' bridge family (NF_CONNTRACK_BRIDGE) */
  readonly bridgeConntrack: boolean;
  /** br_netfilter: bridged IP traffic through the inet hooks, stateful */
  readonly brNetfilter: boolean;
  /** how security groups are enforced on this kernel */
  readonly filterMode: "br_netfilter+inet" | "none";
}

async function tries(cmd: string, args: string[], input?: string): Promise<boolean> {
  try {
    await run(cmd, args, input);
    return true;
  } catch {
    return false;
  }
}

async function canCreate(kind: string, extra: string[]): Promise<boolean> {
  const name = "seamprobe0";
  const ok = await tries("ip", ["link", "add", name, "type", kind, ...extra]);
  if (ok) await tries("ip", ["link", "del", name]);
  return ok;
}

export async function detectFeatures(): Promise<Features> {
  const [vxlan, bridge, geneve, gretap, vrf] = [
    await canCreate("vxlan", ["id", "1", "dstport", "4789"]),
    await canCreate("bridge", []),
    await canCreate("geneve", ["id", "1", "remote", "127.0.0.1"]),
    await canCreate("gretap", ["remote", "127.0.0.2"]),
    await canCreate("vrf", ["table", "10"]),
  ];
  const vlan = await tries("ip", ["link", "add", "link", "lo", "name", "seamprobe1", "type", "vlan", "id", "2"]).then(async (ok) => {
    if (ok) await tries("ip", ["link", "del", "seamprobe1"]);
    return ok;
  });
  const openvswitch = existsSync("/sys/module/openvswitch") || (await tries("modprobe", ["-q", "openvswitch"]));
  const bridgeConntrack = await tries("nft", ["-c", "-f", "-"], "table bridge seamprobe { chain c { type filter hook forward priority 0; ct state established accept; }; }\n");
  await tries("modprobe", ["-q", "br_netfilter"]);
  let brNetfilter = false;
  if (existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables")) {
    try {
      // per network namespace on this kernel: the agent turns it on in its own
      writeFileSync("/proc/sys/net/bridge/bridge-nf-call-iptables", "1");
      writeFileSync("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "1");
      brNetfilter = true;
    } catch {
      brNetfilter = false;
    }
  }
  return { vxlan, bridge, geneve, gretap, vlan, vrf, openvswitch, bridgeConntrack, brNetfilter, filterMode: brNetfilter ? "br_netfilter+inet" : "none" };
}

export function describeFeatures(f: Features): string {
  const yes = (b: boolean) => (b ? "yes" : "no");
  return [
    `vxlan ${yes(f.vxlan)}, bridge ${yes(f.bridge)}, geneve ${yes(f.geneve)}, gretap ${yes(f.gretap)}, 802.1Q ${yes(f.vlan)}, vrf ${yes(f.vrf)}, openvswitch ${yes(f.openvswitch)}`,
    `bridge conntrack ${yes(f.bridgeConntrack)}, br_netfilter ${yes(f.brNetfilter)}`,
    f.filterMode === "none"
      ? "security groups: NOT ENFORCED (no br_netfilter in this kernel)"
      : `security groups: nftables ${f.filterMode}${f.bridgeConntrack ? "" : " (no bridge conntrack here: bridge-family chains only mark and anti-spoof)"}`,
  ].join("; ");
}
