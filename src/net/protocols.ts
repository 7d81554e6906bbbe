// IP protocol names Neutron accepts in security group rules, and their numbers.
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, egp: 8, udp: 17, ipv6: 41, rsvp: 46, gre: 47, esp: 50, ah: 51,
  icmpv6: 58, "ipv6-icmp": 58, ospf: 89, pgm: 113, vrrp: 112, sctp: 132, udplite: 136, dccp: 33,
};
/** protocols with ports (a port range applies) */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);
/** protocols whose "port range" is ICMP type and code */
export const ICMP_PROTOCOLS: ReadonlySet<number> = new Set([1, 58]);

/**
 * A rule's protocol (canonical name or number as text) as a number; null for
 * any. On IPv6 rules ICMP means ICMPv6, as Neutron lets "icmp" stand for it.
 */
export function protocolNumber(p: string | null, v6 = false): number | null {
  if (p === null) return null;
  const lower = p.toLowerCase();
  const n = lower in PROTOCOL_NUMBERS ? PROTOCOL_NUMBERS[lower]! : /^\d+$/.test(lower) ? Number(lower) : null;
  return n === 1 && v6 ? 58 : n;
}
