// The agent's side of the southbound: its typed verbs (register, heartbeat,
// port status, attach/detach/collect, the intent and its watch) over an
// authenticated client of the server.
import { ApiClient, type Credentials, HttpError, type Transport } from "../client/api-client.ts";
import { type Attachment, type AttachRequest, type CollectRequest, type IntentMessage, type Registration, SOUTHBOUND, type StatusReport } from "../contract/southbound.ts";

export { type Credentials, HttpError };

export class SouthboundClient {
  private readonly api: ApiClient;

  constructor(
    readonly server: string,
    readonly host: string,
    creds: Credentials,
    transport: Transport = {},
  ) {
    this.api = new ApiClient(server, creds, `agent-${host}`, transport);
  }

  private call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    return this.api.call(method, path, body, signal);
  }

  private ok(res: Response): Promise<unknown> {
    return this.api.ok(res);
  }

  private get base(): string {
    return `${SOUTHBOUND}/hosts/${encodeURIComponent(this.host)}`;
  }

  async register(reg: Registration): Promise<void> {
    await this.ok(await this.call("PUT", this.base, reg));
  }

  /** false: the server does not know this host (register again). */
  async heartbeat(): Promise<boolean> {
    const res = await this.call("POST", `${this.base}/heartbeat`);
    if (res.status === 404) return false;
    await this.ok(res);
    return true;
  }

  async reportPorts(up: readonly string[], down: readonly string[]): Promise<void> {
    await this.reportStatus({ up, down });
  }

  async reportStatus(report: StatusReport): Promise<void> {
    await this.ok(await this.call("POST", `${this.base}/ports`, report));
  }

  /** The port a workload gets on a network (found or made by the server), bound to this host. */
  async attach(req: AttachRequest): Promise<Attachment> {
    return (await this.ok(await this.call("POST", `${this.base}/attachments`, req))) as Attachment;
  }

  /** Removes what was attached for a container here; the ids of the ports removed. */
  async detach(containerId: string, portId?: string): Promise<string[]> {
    const q = portId ? `?port=${encodeURIComponent(portId)}` : "";
    return ((await this.ok(await this.call("DELETE", `${this.base}/attachments/${encodeURIComponent(containerId)}${q}`))) as { removed: string[] }).removed;
  }

  /** Removes this host's attachments for containers not in `keep`; the ids of the ports removed. */
  async collect(keep: readonly string[], scope: CollectRequest["scope"] = {}): Promise<string[]> {
    const req: CollectRequest = { keep, scope };
    return ((await this.ok(await this.call("POST", `${this.base}/attachments/collect`, req))) as { removed: string[] }).removed;
  }

  /** What a VM on a network this host serves reads at a metadata path (the server finds its port by network and address). */
  async metadata(network: string, address: string, path: string): Promise<{ status: number; contentType: string; body: string }> {
    return (await this.ok(await this.call("POST", `${this.base}/metadata`, { network, address, path }))) as { status: number; contentType: string; body: string };
  }

  async intent(): Promise<{ revision: number; items: Record<string, unknown> }> {
    return (await this.ok(await this.call("GET", `${this.base}/intent`))) as { revision: number; items: Record<string, unknown> };
  }

  /**
   * Streams the intent until the connection ends or `signal` aborts; a stream
   * silent for `idleMs` (no bookmark) is treated as dead.
   */
  async watch(since: number | undefined, onMessage: (m: IntentMessage) => void, signal: AbortSignal, idleMs = 35_000): Promise<void> {
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let idle = setTimeout(() => abort.abort(), idleMs);
    try {
      const res = await this.call("GET", `${this.base}/intent?watch=1${since === undefined ? "" : `&since=${since}`}`, undefined, abort.signal);
      if (!res.ok || !res.body) throw new HttpError(res.status, `watch failed: ${res.status} ${await res.text()}`);
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(), idleMs);
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onMessage(JSON.parse(line) as IntentMessage);
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
