// The names the controller answers for (pure): every port's dns_assignment
// (hello.openstack.local -> its fixed IP, and the PTR back), indexed by port
// so that a port's change replaces exactly its records. Authoritative for the
// domains its names are in: a name there that no port has is NXDOMAIN; a name
// elsewhere is not ours (REFUSED: this is no recursive resolver).

export interface Assignment {
  readonly ip: string;
  /** with or without the trailing dot */
  readonly fqdn: string;
}

export type Answer =
  | { readonly rcode: "NOERROR"; readonly type: "A" | "AAAA" | "PTR"; readonly data: readonly string[] }
  | { readonly rcode: "NOERROR"; readonly type: null; readonly data: readonly [] } // the name exists, not with that type
  | { readonly rcode: "NXDOMAIN" | "REFUSED" };

const norm = (name: string) => name.toLowerCase().replace(/\.$/, "");
const isV6 = (ip: string) => ip.includes(":");

/** The reverse name of an address (in-addr.arpa / ip6.arpa), without the trailing dot. */
export function reverseName(ip: string): string {
  if (!isV6(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const [head = "", tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return `${groups.map((g) => g.padStart(4, "0")).join("").split("").reverse().join(".")}.ip6.arpa`;
}

export class Zone {
  private readonly byPort = new Map<string, readonly Assignment[]>();
  /** name -> "ip" -> how many ports hold it */
  private readonly forward = new Map<string, Map<string, number>>();
  private readonly reverse = new Map<string, Map<string, number>>();
  private readonly domains = new Map<string, number>();

  get size(): number {
    return this.forward.size;
  }

  /** Replaces a port's records (null or empty: it has none now). */
  setPort(port: string, assignments: readonly Assignment[] | null): void {
    for (const a of this.byPort.get(port) ?? []) this.index(a, -1);
    if (assignments?.length) {
      this.byPort.set(port, assignments);
      for (const a of assignments) this.index(a, 1);
    } else this.byPort.delete(port);
  }

  private index(a: Assignment, d: 1 | -1): void {
    const name = norm(a.fqdn);
    bump(this.forward, name, a.ip, d);
    bump(this.reverse, reverseName(a.ip), name, d);
    const dot = name.indexOf(".");
    if (dot > 0) {
      const domain = name.slice(dot + 1);
      const n = (this.domains.get(domain) ?? 0) + d;
      if (n > 0) this.domains.set(domain, n);
      else this.domains.delete(domain);
    }
  }

  private isOurs(name: string): boolean {
    for (let i = name.indexOf("."); i >= 0; i = name.indexOf(".", i + 1)) if (this.domains.has(name.slice(i + 1))) return true;
    return this.domains.has(name);
  }

  answer(qname: string, qtype: string): Answer {
    const name = norm(qname);
    if (qtype === "PTR") {
      const names = this.reverse.get(name);
      if (names) return { rcode: "NOERROR", type: "PTR", data: [...names.keys()].sort() };
      return name.endsWith(".arpa") && this.isOurs(name) ? { rcode: "NXDOMAIN" } : { rcode: "REFUSED" };
    }
    const ips = this.forward.get(name);
    if (!ips) return this.isOurs(name) ? { rcode: "NXDOMAIN" } : { rcode: "REFUSED" };
    if (qtype !== "A" && qtype !== "AAAA") return { rcode: "NOERROR", type: null, data: [] };
    const data = [...ips.keys()].filter((ip) => isV6(ip) === (qtype === "AAAA")).sort();
    return data.length ? { rcode: "NOERROR", type: qtype, data } : { rcode: "NOERROR", type: null, data: [] };
  }
}

function bump(m: Map<string, Map<string, number>>, key: string, value: string, d: 1 | -1): void {
  let inner = m.get(key);
  if (!inner) m.set(key, (inner = new Map()));
  const n = (inner.get(value) ?? 0) + d;
  if (n > 0) inner.set(value, n);
  else inner.delete(value);
  if (!inner.size) m.delete(key);
}
