// A router's IPv6 router advertisements, as radvd must send them (pure): per
// interface on a subnet with an ipv6_ra_mode, its prefix and the flags the
// mode means (Neutron's L3 agent runs radvd the same way):
//   slaac              autonomous addresses, nothing from DHCPv6
//   dhcpv6-stateless   autonomous addresses, the rest (DNS) from DHCPv6 (O)
//   dhcpv6-stateful    addresses from DHCPv6 (M), no autonomous ones
import type { RouterSpec } from "./spec.ts";

export function radvdConfig(ra: RouterSpec["ra"]): string {
  const byDev = new Map<string, RouterSpec["ra"][number][]>();
  for (const a of ra) byDev.set(a.dev, [...(byDev.get(a.dev) ?? []), a]);
  const out: string[] = [];
  for (const [dev, prefixes] of [...byDev].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const stateful = prefixes.some((p) => p.mode === "dhcpv6-stateful");
    const other = prefixes.some((p) => p.mode !== "slaac");
    out.push(
      `interface ${dev} {`,
      "  AdvSendAdvert on;",
      // a router's interface can be made after radvd starts: wait for it rather than exit
      "  IgnoreIfMissing on;",
      "  MinRtrAdvInterval 3;",
      "  MaxRtrAdvInterval 10;",
      `  AdvManagedFlag ${stateful ? "on" : "off"};`,
      `  AdvOtherConfigFlag ${other ? "on" : "off"};`,
    );
    for (const p of prefixes) out.push(`  prefix ${p.prefix} {`, "    AdvOnLink on;", `    AdvAutonomous ${p.mode === "dhcpv6-stateful" ? "off" : "on"};`, "  };");
    out.push("};");
  }
  return out.length ? `${out.join("\n")}\n` : "";
}
