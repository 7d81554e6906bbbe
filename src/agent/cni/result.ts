// CNI spec pieces the agent's CNI service needs (pure): error codes, the
// versions it speaks, and the ADD result in the shape of the requested version.
import { readFileSync } from "node:fs";

/** Error codes of the CNI spec (1-99 reserved by it) and Seam's own (100+). */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  io: 5,
  decoding: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  /** no free address on the network */
  noAddress: 100,
  /** CHECK found the attachment different from what ADD made */
  checkFailed: 101,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
  ) {
    super(msg);
  }
  toJSON() {
    return { code: this.code, msg: this.message, details: this.details };
  }
}

/** the CNI versions Seam speaks, the shim (plain JS, for start-up speed) reading the same list */
export const SUPPORTED_VERSIONS: readonly string[] = JSON.parse(readFileSync(new URL("../../contract/cni-versions.json", import.meta.url), "utf8"));

/** What an ADD made, as its record keeps it (the result of a repeated ADD is built from it). */
export interface Attachment {
  readonly hostDevice: string;
  readonly hostMac: string;
  readonly ifname: string;
  readonly mac: string;
  readonly netns: string;
  /** address/prefix, every fixed IP of the port (both families on a dual-stack network) */
  readonly addresses: readonly string[];
  /** the gateway per family present */
  readonly gateways: readonly string[];
  readonly mtu: number;
  readonly dnsDomain: string | null;
  /** the network's resolvers (NetItem.resolvers) */
  readonly resolvers: readonly string[];
}

const isV6 = (ip: string) => ip.includes(":");

export function addResult(cniVersion: string, a: Attachment): Record<string, unknown> {
  const legacy = !cniVersion.startsWith("1.");
  const gatewayFor = (address: string) => a.gateways.find((g) => isV6(g) === isV6(address));
  return {
    cniVersion,
    interfaces: [
      { name: a.hostDevice, mac: a.hostMac },
      { name: a.ifname, mac: a.mac, sandbox: a.netns, ...(cniVersion === "1.1.0" ? { mtu: a.mtu } : {}) },
    ],
    ips: a.addresses.map((address) => {
      const gateway = gatewayFor(address);
      return { ...(legacy ? { version: isV6(address) ? "6" : "4" } : {}), address, ...(gateway ? { gateway } : {}), interface: 1 };
    }),
    routes: a.gateways.map((gw) => ({ dst: isV6(gw) ? "::/0" : "0.0.0.0/0", gw })),
    dns: {
      ...(a.resolvers.length ? { nameservers: a.resolvers } : {}),
      ...(a.dnsDomain ? { domain: a.dnsDomain.replace(/\.$/, ""), search: [a.dnsDomain.replace(/\.$/, "")] } : {}),
    },
  };
}

/** CNI_ARGS "K1=V1;K2=V2" -> map (Kubernetes runtimes send K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID). */
export function parseCniArgs(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (raw ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
