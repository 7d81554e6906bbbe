// Metadata for VMs at 169.254.169.254, as Neutron's metadata proxy serves it:
// in each DHCP namespace (which holds 169.254.169.254, and which DHCP makes
// every VM route that address to, isolated network or not) haproxy listens on
// port 80 and hands each request, stamped with the network and the address it
// came from, to this agent's metadata socket (a unix socket: the filesystem
// crosses namespaces, the network does not). The agent asks the server
// (front/metadata/service.ts), which knows the port from those two.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { createServer, type Server } from "node:http";
import type { SouthboundClient } from "../southbound-client.ts";

export const METADATA_ADDRESS = "169.254.169.254";
const NETWORK_HEADER = "x-seam-network-id";

/** haproxy's configuration for one network's namespace (pure). */
export function haproxyConfig(network: string, dir: string, socket: string): string {
  return [
    "global",
    "  daemon",
    `  pidfile ${dir}/haproxy.pid`,
    "  maxconn 256",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "frontend metadata",
    `  bind ${METADATA_ADDRESS}:80`,
    // whatever the VM sent in these headers is replaced, never believed
    "  http-request del-header X-Forwarded-For",
    `  http-request set-header X-Forwarded-For %[src]`,
    `  http-request set-header X-Seam-Network-Id ${network}`,
    "  default_backend agent",
    "backend agent",
    `  server agent unix@${socket}`,
    "",
  ].join("\n");
}

export class MetadataSocket {
  private server: Server | undefined;

  constructor(
    private readonly client: SouthboundClient,
    readonly path: string,
    private readonly log: (msg: string) => void,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    if (existsSync(this.path)) rmSync(this.path);
    const server = createServer((req, res) => {
      const network = req.headers[NETWORK_HEADER];
      const address = String(req.headers["x-forwarded-for"] ?? "").split(",")[0]!.trim();
      if (typeof network !== "string" || !address || req.method !== "GET") {
        res.writeHead(req.method === "GET" ? 400 : 405, { "content-type": "text/plain" }).end(req.method === "GET" ? "Bad Request" : "Method Not Allowed");
        return;
      }
      this.client.metadata(network, address, req.url ?? "/").then(
        (a) => res.writeHead(a.status, { "content-type": a.contentType }).end(a.body),
        (e: Error) => {
          this.log(`metadata for ${address} on ${network}: ${e.message}`);
          res.writeHead(503, { "content-type": "text/plain" }).end("Service Unavailable");
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => resolve());
    });
    this.server = server;
  }

  close(): void {
    this.server?.close();
    this.server = undefined;
  }
}
