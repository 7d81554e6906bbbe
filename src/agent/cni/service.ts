// The agent's CNI service: the other end of seam-cni's unix socket. It speaks
// CNI and the southbound, nothing else. Per ADD it asks the controller which
// port the container gets (the southbound `attach` verb: the server finds the
// port a controller made for the pod, or makes one), waits for that port's
// item in this host's intent, wires a veth into the container from it (every
// address, gateways, MTU, device), waits until the port's filters are in and
// its device is on the bridge, and only then answers. Crash safety: a record
// is written before anything is created (records.ts), and the port carries a
// tag derived from the container id, so a later DEL or GC finds whatever a
// crash left behind.
import { createServer, type Server } from "node:net";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { NetItem, PortItem } from "../../contract/intent.ts";
import { tapName } from "../../contract/naming.ts";
import { failpoint } from "../../os/failpoints.ts";
import { HttpError, type SouthboundClient } from "../southbound-client.ts";
import { interfaceMatches, plumb, unplumb } from "./plumbing.ts";
import { type AttachmentRecord, AttachmentRecords } from "./records.ts";
import { addResult, CniCode, CniError, parseCniArgs, SUPPORTED_VERSIONS } from "./result.ts";

export interface CniRequest {
  readonly env: Record<string, string | undefined>;
  readonly config: Record<string, unknown>;
}

/** What the CNI service needs of the agent it runs in. */
export interface CniHost {
  readonly host: string;
  readonly client: SouthboundClient;
  /** an ADD is about to ask the controller for its port; call the result when the answer is in */
  attachStarted(): () => void;
  /** the port's item once this host's intent has it; null after `timeoutMs` */
  waitPort(portId: string, timeoutMs: number): Promise<PortItem | null>;
  net(networkId: string): NetItem | undefined;
  hasPort(portId: string): boolean;
  waitPlugged(portId: string, timeoutMs: number): Promise<boolean>;
  attachNow(portId: string): Promise<boolean>;
  poke(): void;
}

/** How long an ADD waits for the controller's intent to bring the port here, and then for it to be plugged. */
const READY_MS = 15_000;

/** A southbound failure as the CNI error a runtime can act on. */
function cniErrorOf(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof HttpError) {
    if (e.type === "IpAddressGenerationFailure") return new CniError(CniCode.noAddress, "no free address on the network", e.reason);
    if (e.status === 400 || e.status === 404 || e.status === 409) return new CniError(CniCode.invalidConfig, e.reason, `the controller refused to ${what}`);
    return new CniError(CniCode.tryAgainLater, `the controller could not ${what}`, e.message);
  }
  return new CniError(CniCode.tryAgainLater, "the Seam controller is not reachable", (e as Error).message);
}

export class CniService {
  private server: Server | undefined;
  private readonly records: AttachmentRecords;
  /** one operation per container at a time (a runtime may retry ADD while the first still runs) */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly agent: CniHost,
    stateDir: string,
    private readonly log: (msg: string) => void,
  ) {
    this.records = new AttachmentRecords(stateDir);
  }

  listen(socketPath: string): Promise<void> {
    rmSync(socketPath, { force: true });
    mkdirSync(dirname(socketPath), { recursive: true });
    // half-open: seam-cni ends its side after the request and still reads the answer
    this.server = createServer({ allowHalfOpen: true }, (conn) => {
      let buf = "";
      const t0 = performance.now();
      const trace = process.env.SEAM_CNI_TRACE ? (what: string) => this.log(`conn ${what} +${(performance.now() - t0).toFixed(1)} ms`) : () => {};
      conn.setEncoding("utf8");
      conn.on("data", (d: string) => (buf += d));
      conn.on("end", () => {
        trace(`read ${buf.length} bytes`);
        void this.answer(buf).then((reply) => {
          conn.end(`${JSON.stringify(reply)}\n`);
          trace("answered");
        });
      });
      conn.on("error", () => {});
    });
    return new Promise((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(socketPath, () => resolve());
    });
  }

  close(): void {
    this.server?.close();
  }

  async answer(text: string): Promise<{ result?: unknown; error?: unknown }> {
    try {
      let req: CniRequest;
      try {
        req = JSON.parse(text) as CniRequest;
      } catch {
        throw new CniError(CniCode.decoding, "failed to decode the request from seam-cni");
      }
      return { result: await this.handle(req) };
    } catch (e) {
      if (e instanceof CniError) return { error: e.toJSON() };
      this.log(`CNI request failed: ${(e as Error).stack ?? e}`);
      return { error: new CniError(CniCode.io, "the Seam agent failed", (e as Error).message).toJSON() };
    }
  }

  async handle(req: CniRequest): Promise<unknown> {
    const env = req.env ?? {};
    const config = req.config ?? {};
    const version = String(config.cniVersion ?? "");
    if (!SUPPORTED_VERSIONS.includes(version)) throw new CniError(CniCode.incompatibleVersion, `incompatible CNI version ${JSON.stringify(config.cniVersion)}`, `supported: ${SUPPORTED_VERSIONS.join(", ")}`);
    const command = env.CNI_COMMAND;
    switch (command) {
      case "STATUS":
        return this.status();
      case "GC":
        return this.gc(config);
      case "ADD":
      case "DEL":
      case "CHECK": {
        const containerId = need(env, "CNI_CONTAINERID");
        const ifname = need(env, "CNI_IFNAME");
        if (!/^[^\s/]{1,15}$/.test(ifname)) throw new CniError(CniCode.invalidEnvironment, `invalid CNI_IFNAME '${ifname}'`);
        const key = `${containerId}/${ifname}`;
        const previous = this.locks.get(key) ?? Promise.resolve();
        const op = previous.catch(() => {}).then(() => (command === "ADD" ? this.add(version, config, env, containerId, ifname) : command === "DEL" ? this.del(containerId, ifname, env.CNI_NETNS ?? "") : this.check(containerId, ifname, env)));
        this.locks.set(key, op);
        try {
          return await op;
        } finally {
          if (this.locks.get(key) === op) this.locks.delete(key);
        }
      }
      default:
        throw new CniError(CniCode.invalidEnvironment, `unknown CNI_COMMAND '${command ?? ""}'`, "one of ADD, DEL, CHECK, STATUS, GC, VERSION");
    }
  }

  // ---- verbs --------------------------------------------------------------------

  private async add(version: string, config: Record<string, unknown>, env: Record<string, string | undefined>, containerId: string, ifname: string): Promise<unknown> {
    const t0 = performance.now();
    const netns = need(env, "CNI_NETNS");
    if (!existsSync(netns)) throw new CniError(CniCode.unknownContainer, `network namespace ${netns} does not exist`);
    const args = parseCniArgs(env.CNI_ARGS);
    // A Kubernetes node's one config names no network: the pod's namespace decides, through the controller.
    const network = typeof config.network === "string" ? config.network : "";
    if (!network && !args.K8S_POD_UID) throw new CniError(CniCode.invalidConfig, "the network configuration needs 'network' (a Seam network name or id)", "only a Kubernetes runtime's ADD (K8S_POD_UID in CNI_ARGS) may leave it to Seam's controller");
    const existing = this.records.read(containerId, ifname);
    // A repeated ADD for the same container returns what the first made, if it is still there.
    if (existing?.attachment && (await interfaceMatches(existing.attachment))) return addResult(version, existing.attachment);

    const record: AttachmentRecord = existing ? { ...existing, attempted: true } : { containerId, ifname, netns, network };
    this.records.write(record); // before anything exists: a crash from here on leaves a trail
    try {
      const trace = process.env.SEAM_CNI_TRACE ? (what: string) => this.log(`ADD ${containerId.slice(0, 12)} ${what} +${(performance.now() - t0).toFixed(1)} ms`) : () => {};
      const attachDone = this.agent.attachStarted();
      const attached = await this.agent.client
        .attach({
          ...(network ? { network } : {}),
          ...(typeof config.project === "string" && config.project ? { project: config.project } : {}),
          containerId,
          ...(args.K8S_POD_NAME ? { pod: { namespace: args.K8S_POD_NAMESPACE, name: args.K8S_POD_NAME, uid: args.K8S_POD_UID || containerId.slice(0, 64) } } : {}),
          retry: Boolean(record.attempted),
        })
        .catch((e) => {
          throw cniErrorOf(e, "attach the container");
        })
        .finally(attachDone);
      trace("attached");
      record.portId = attached.port;
      record.network = attached.network;
      this.records.write(record);
      await failpoint("cni-add-after-port"); // the crash tests kill the agent here: a port exists, nothing is wired
      const port = await this.agent.waitPort(attached.port, READY_MS);
      if (!port) throw new CniError(CniCode.tryAgainLater, "the port did not reach this host's intent in 15 s", `port ${attached.port}: is the agent connected to the controller?`);
      trace("intent");
      const attachment = await plumb(port, this.agent.net(port.network), netns, ifname);
      record.attachment = attachment;
      this.records.write(record);
      trace("plumbed");
      const plugged = (await this.agent.attachNow(port.id)) || (await this.agent.waitPlugged(port.id, READY_MS));
      trace("plugged");
      if (!plugged) throw new CniError(CniCode.tryAgainLater, "the port did not become ready on this host in 15 s", `port ${port.id}: is the agent connected to the controller?`);
      return addResult(version, attachment);
    } catch (e) {
      // Nothing half-made stays behind a failed ADD.
      await this.del(containerId, ifname, netns).catch((err) => this.log(`cleanup after a failed ADD: ${(err as Error).message}`));
      throw e;
    }
  }

  private async check(containerId: string, ifname: string, env: Record<string, string | undefined>): Promise<unknown> {
    need(env, "CNI_NETNS");
    const r = this.records.read(containerId, ifname);
    if (!r?.attachment) throw new CniError(CniCode.unknownContainer, `no attachment for container ${containerId} interface ${ifname}`);
    if (!(await interfaceMatches(r.attachment))) throw new CniError(CniCode.checkFailed, `${ifname} in ${r.attachment.netns} is not as ADD left it (interface, MAC, addresses ${r.attachment.addresses.join(", ")} or routes)`);
    if (!r.portId || !this.agent.hasPort(r.portId)) throw new CniError(CniCode.checkFailed, `port ${r.portId} is no longer this host's`);
    return null;
  }

  /** Removes everything an ADD made; succeeds when there is nothing left. */
  async del(containerId: string, ifname: string, netns: string): Promise<unknown> {
    const r = this.records.read(containerId, ifname);
    // the device first: it leaves the bridge before its port (and so its filters) go
    await unplumb(netns || r?.netns || "", ifname, r?.portId ? [tapName(r.portId)] : []);
    const removed = await this.agent.client.detach(containerId, r?.portId).catch((e) => {
      throw cniErrorOf(e, "detach the container");
    });
    // ports the record did not name (an ADD that died before recording its port) have devices too
    await unplumb("", ifname, removed.filter((id) => id !== r?.portId).map(tapName));
    this.records.remove(containerId, ifname);
    return null;
  }

  /** Removes attachments the runtime no longer knows (`cni.dev/attachments` lists the valid ones). */
  private async gc(config: Record<string, unknown>): Promise<unknown> {
    const valid = (config["cni.dev/attachments"] as { containerID: string; ifname: string }[] | undefined) ?? [];
    if (!Array.isArray(valid)) throw new CniError(CniCode.invalidConfig, "cni.dev/attachments must be a list");
    const keep = new Set(valid.map((v) => `${v.containerID}/${v.ifname}`));
    for (const r of this.records.all()) if (!keep.has(`${r.containerId}/${r.ifname}`)) await this.del(r.containerId, r.ifname, r.netns);
    // Ports a crash left without a record: the server knows them by their tags (on this config's network).
    const scope = typeof config.network === "string" && config.network ? { network: config.network, ...(typeof config.project === "string" && config.project ? { project: config.project } : {}) } : {};
    const removed = await this.agent.client.collect(valid.map((v) => v.containerID), scope).catch((e) => {
      throw cniErrorOf(e, "collect stale attachments");
    });
    await unplumb("", "", removed.map(tapName));
    return null;
  }

  private async status(): Promise<unknown> {
    try {
      await this.agent.client.heartbeat();
    } catch (e) {
      throw new CniError(CniCode.notAvailable, "the Seam controller is not reachable from this host", (e as Error).message);
    }
    return null;
  }
}

function need(env: Record<string, string | undefined>, name: string): string {
  const v = env[name];
  if (!v) throw new CniError(CniCode.invalidEnvironment, `${name} is not set`);
  return v;
}
