// The agent's CNI service: the other end of seam-cni's unix socket. Per ADD it
// finds or creates the pod's port, wires a veth into the container's network
// namespace with the port's MAC, address, route and MTU, waits until the
// agent has the port's filters in place and its device on the bridge, and only
// then answers. Crash safety: an attachment record is written before anything
// is created, and the port carries a tag derived from the container id, so a
// later DEL or GC finds whatever a crash left behind.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { tapName } from "../../contract/naming.ts";
import type { SouthboundClient } from "../southbound-client.ts";
import { CommandError, run } from "../../os/exec.ts";
import { addResult, type Attachment, CniCode, CniError, parseCniArgs, SUPPORTED_VERSIONS } from "./result.ts";

export interface CniRequest {
  readonly env: Record<string, string | undefined>;
  readonly config: Record<string, unknown>;
}

/** What the service remembers of an attachment, written before it creates anything. */
interface AttachmentRecord {
  containerId: string;
  ifname: string;
  netns: string;
  network: string;
  portId?: string;
  attachment?: Attachment;
  /** an earlier ADD for this container got at least as far as writing this record */
  attempted?: boolean;
}

export interface CniHost {
  readonly host: string;
  readonly client: SouthboundClient;
  waitPlugged(portId: string, timeoutMs: number): Promise<boolean>;
  attachNow(portId: string): Promise<boolean>;
  poke(): void;
}

/** The tag a container's port carries (tags are at most 60 characters; container ids are 64). */
export const containerTag = (containerId: string) => `cni-${createHash("sha1").update(containerId).digest("hex").slice(0, 20)}`;
const MANAGED_TAG = "seam-cni";

type Port = { id: string; mac_address: string; network_id: string; fixed_ips: { subnet_id: string; ip_address: string }[]; device_owner: string; tags?: string[] };

export class CniService {
  private server: Server | undefined;
  private readonly dir: string;
  /** one operation per container at a time (a runtime may retry ADD while the first still runs) */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly agent: CniHost,
    stateDir: string,
    private readonly log: (msg: string) => void,
  ) {
    this.dir = join(stateDir, "cni");
    mkdirSync(this.dir, { recursive: true });
  }

  listen(socketPath: string): Promise<void> {
    rmSync(socketPath, { force: true });
    mkdirSync(join(socketPath, ".."), { recursive: true });
    // half-open: seam-cni ends its side after the request and still reads the answer
    this.server = createServer({ allowHalfOpen: true }, (conn) => {
      let buf = "";
      conn.setEncoding("utf8");
      conn.on("data", (d: string) => (buf += d));
      conn.on("end", () => {
        void this.answer(buf).then((reply) => conn.end(`${JSON.stringify(reply)}\n`));
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

  // ---- records ------------------------------------------------------------

  private recordPath(containerId: string, ifname: string): string {
    return join(this.dir, `${createHash("sha1").update(`${containerId}/${ifname}`).digest("hex")}.json`);
  }
  private readRecord(containerId: string, ifname: string): AttachmentRecord | null {
    const p = this.recordPath(containerId, ifname);
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as AttachmentRecord) : null;
  }
  private writeRecord(r: AttachmentRecord): void {
    const p = this.recordPath(r.containerId, r.ifname);
    writeFileSync(`${p}.tmp`, JSON.stringify(r));
    renameSync(`${p}.tmp`, p);
  }
  private records(): AttachmentRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), "utf8")) as AttachmentRecord);
  }

  // ---- the API ----------------------------------------------------------------

  private async api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await this.agent.client.call(method, path, body);
    } catch (e) {
      throw new CniError(CniCode.tryAgainLater, "the Seam controller is not reachable", (e as Error).message);
    }
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Network look-ups by (name, project), cached briefly: a node's pods mostly share one network. */
  private readonly networks = new Map<string, { at: number; net: { id: string; project_id: string; mtu: number; dns_domain?: string } }>();
  private async network(config: Record<string, unknown>): Promise<{ id: string; project_id: string; mtu: number; dns_domain?: string }> {
    const cacheKey = `${String(config.network)}|${String(config.project ?? "")}`;
    const hit = this.networks.get(cacheKey);
    if (hit && performance.now() - hit.at < 10_000) return hit.net;
    const net = await this.lookupNetwork(config);
    this.networks.set(cacheKey, { at: performance.now(), net });
    return net;
  }

  private async lookupNetwork(config: Record<string, unknown>): Promise<{ id: string; project_id: string; mtu: number; dns_domain?: string }> {
    const ref = config.network;
    if (typeof ref !== "string" || !ref) throw new CniError(CniCode.invalidConfig, "the network configuration needs 'network' (a Seam network name or id)");
    const project = typeof config.project === "string" && config.project ? config.project : null;
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(ref)) {
      const r = await this.api<{ network: { id: string; project_id: string; mtu: number } }>("GET", `/v2.0/networks/${ref}`);
      if (r.status === 200) return r.body.network;
    }
    const r = await this.api<{ networks: { id: string; project_id: string; mtu: number }[] }>("GET", `/v2.0/networks?name=${encodeURIComponent(ref)}`);
    let found = r.body?.networks ?? [];
    if (project) {
      const id = /^[0-9a-f]{32}$/.test(project) ? project : await this.projectId(project);
      found = found.filter((n) => n.project_id === id);
    }
    if (found.length === 0) throw new CniError(CniCode.invalidConfig, `unknown network '${ref}'${project ? ` in project ${project}` : ""}`);
    if (found.length > 1) throw new CniError(CniCode.invalidConfig, `more than one network is named '${ref}'; give its id or 'project'`);
    return found[0]!;
  }
  /** A project name as the identity service knows it (with --auth local); the name itself otherwise. */
  private async projectId(name: string): Promise<string> {
    const r = await this.api<{ projects?: { id: string }[] }>("GET", `/v3/projects?name=${encodeURIComponent(name)}`).catch(() => null);
    return r?.body?.projects?.[0]?.id ?? name;
  }

  // ---- verbs --------------------------------------------------------------------

  private async add(version: string, config: Record<string, unknown>, env: Record<string, string | undefined>, containerId: string, ifname: string): Promise<unknown> {
    const t0 = performance.now();
    const netns = need(env, "CNI_NETNS");
    if (!existsSync(netns)) throw new CniError(CniCode.unknownContainer, `network namespace ${netns} does not exist`);
    const args = parseCniArgs(env.CNI_ARGS);
    const existing = this.readRecord(containerId, ifname);
    // A repeated ADD for the same container returns what the first made, if it is still there.
    if (existing?.attachment && (await this.interfaceMatches(existing.attachment))) return addResult(version, existing.attachment);

    const net = await this.network(config);
    const record: AttachmentRecord = existing ? { ...existing, attempted: true } : { containerId, ifname, netns, network: net.id };
    this.writeRecord(record); // before anything exists: a crash from here on leaves a trail
    try {
      const trace = process.env.SEAM_CNI_TRACE ? (what: string) => this.log(`ADD ${containerId.slice(0, 12)} ${what} +${(performance.now() - t0).toFixed(1)} ms`) : () => {};
      trace("network");
      const port = await this.findOrCreatePort(record, net, args, containerId);
      trace("port");
      record.portId = port.id;
      this.writeRecord(record);
      const attachment = await this.plumb(port, net, netns, ifname);
      record.attachment = attachment;
      this.writeRecord(record);
      trace("plumbed");
      const plugged = (await this.agent.attachNow(port.id)) || (await this.agent.waitPlugged(port.id, 15_000));
      trace("plugged");
      if (!plugged) {
        throw new CniError(CniCode.tryAgainLater, "the port did not become ready on this host in 15 s", `port ${port.id}: is the agent connected to the controller?`);
      }
      return addResult(version, attachment);
    } catch (e) {
      // Nothing half-made stays behind a failed ADD.
      await this.del(containerId, ifname, netns).catch((err) => this.log(`cleanup after a failed ADD: ${(err as Error).message}`));
      throw e;
    }
  }

  private async findOrCreatePort(record: AttachmentRecord, net: { id: string; project_id: string }, args: Record<string, string>, containerId: string): Promise<Port> {
    if (record.portId) {
      const r = await this.api<{ port: Port }>("GET", `/v2.0/ports/${record.portId}`);
      if (r.status === 200) return r.body.port;
    }
    const tag = containerTag(containerId);
    // A port for this container can exist without a record naming it only if an ADD died between
    // creating it and recording it; a fresh ADD (no record before this one) skips the look-up.
    if (record.attempted) {
      const found = await this.api<{ ports: Port[] }>("GET", `/v2.0/ports?tags=${tag}&network_id=${net.id}`);
      if (found.body?.ports?.length) return found.body.ports[0]!;
    }
    const name = args.K8S_POD_NAME ? `${args.K8S_POD_NAMESPACE ? `${args.K8S_POD_NAMESPACE}/` : ""}${args.K8S_POD_NAME}` : containerId.slice(0, 64);
    const r = await this.api<{ port?: Port; NeutronError?: { type: string; message: string } }>("POST", "/v2.0/ports", {
      port: {
        network_id: net.id,
        project_id: net.project_id,
        name,
        device_owner: "compute:kubernetes",
        device_id: args.K8S_POD_UID || containerId.slice(0, 64),
        "binding:host_id": this.agent.host,
        tags: [MANAGED_TAG, tag],
      },
    });
    if (r.status === 201 && r.body.port) return r.body.port;
    const err = r.body?.NeutronError;
    if (err?.type === "IpAddressGenerationFailure") throw new CniError(CniCode.noAddress, `no free address on network ${net.id}`, err.message);
    if (r.status >= 500 || r.status === 401) throw new CniError(CniCode.tryAgainLater, "the controller could not create the port", err?.message ?? String(r.status));
    throw new CniError(CniCode.invalidConfig, "the controller refused the port", err?.message ?? String(r.status));
  }

  /** Subnets change rarely and every ADD on a network needs the same one: cached briefly. */
  private readonly subnets = new Map<string, { at: number; cidr: string; gateway: string | null }>();
  private async subnet(id: string): Promise<{ cidr: string; gateway: string | null }> {
    const hit = this.subnets.get(id);
    if (hit && performance.now() - hit.at < 10_000) return hit;
    const r = await this.api<{ subnet: { cidr: string; gateway_ip: string | null } }>("GET", `/v2.0/subnets/${id}`);
    if (r.status !== 200) throw new CniError(CniCode.tryAgainLater, `subnet ${id} could not be read`, String(r.status));
    const v = { at: performance.now(), cidr: r.body.subnet.cidr, gateway: r.body.subnet.gateway_ip };
    this.subnets.set(id, v);
    return v;
  }

  /** veth: `ifname` in the container with the port's MAC/address/route/MTU, the tap-named peer here. */
  private async plumb(port: Port, net: { mtu: number; dns_domain?: string }, netns: string, ifname: string): Promise<Attachment> {
    const v4 = port.fixed_ips.find((f) => !f.ip_address.includes(":")) ?? port.fixed_ips[0];
    if (!v4) throw new CniError(CniCode.noAddress, `port ${port.id} has no address`);
    const subnet = await this.subnet(v4.subnet_id);
    const address = `${v4.ip_address}/${subnet.cidr.split("/")[1]}`;
    const device = tapName(port.id);
    const mtu = net.mtu;
    if (existsSync(`/sys/class/net/${device}`)) await run("ip", ["link", "del", device]).catch(() => {}); // a crashed attempt's
    // One process: the pair is made inside the container, configured there, and its peer sent to this
    // namespace (attaching it to the bridge, which also sets it up, is the agent's next step).
    const inside = [
      `link add ${ifname} mtu ${mtu} address ${port.mac_address} type veth peer name ${device} netns ${process.pid}`,
      `link set lo up`,
      `link set ${ifname} up`,
      `addr add ${address} dev ${ifname}`,
      ...(subnet.gateway ? [`route add default via ${subnet.gateway} dev ${ifname}`] : []),
    ];
    try {
      await run("nsenter", [`--net=${netns}`, "ip", "-batch", "-"], `${inside.join("\n")}\n`);
    } catch (e) {
      throw new CniError(CniCode.io, `could not wire ${ifname} into ${netns}`, e instanceof CommandError ? e.stderr.trim() : String(e));
    }
    const hostMac = readFileSync(`/sys/class/net/${device}/address`, "utf8").trim();
    return { hostDevice: device, hostMac, ifname, mac: port.mac_address, netns, address, gateway: subnet.gateway, mtu, dnsDomain: net.dns_domain ?? null };
  }

  private async interfaceMatches(a: Attachment): Promise<boolean> {
    if (!existsSync(a.netns)) return false;
    try {
      const out = await run("nsenter", [`--net=${a.netns}`, "ip", "-j", "addr", "show", "dev", a.ifname]);
      const [link] = JSON.parse(out) as { address: string; addr_info: { local: string; prefixlen: number }[] }[];
      if (!link || link.address !== a.mac) return false;
      if (!link.addr_info.some((i) => `${i.local}/${i.prefixlen}` === a.address)) return false;
      if (a.gateway) {
        const routes = JSON.parse(await run("nsenter", [`--net=${a.netns}`, "ip", "-j", "route", "show", "default"])) as { gateway?: string }[];
        if (!routes.some((r) => r.gateway === a.gateway)) return false;
      }
      return existsSync(`/sys/class/net/${a.hostDevice}`);
    } catch {
      return false;
    }
  }

  private async check(containerId: string, ifname: string, env: Record<string, string | undefined>): Promise<unknown> {
    need(env, "CNI_NETNS");
    const r = this.readRecord(containerId, ifname);
    if (!r?.attachment) throw new CniError(CniCode.unknownContainer, `no attachment for container ${containerId} interface ${ifname}`);
    if (!(await this.interfaceMatches(r.attachment))) throw new CniError(CniCode.checkFailed, `${ifname} in ${r.attachment.netns} is not as ADD left it (interface, MAC, address ${r.attachment.address} or route)`);
    const port = await this.api("GET", `/v2.0/ports/${r.portId}`);
    if (port.status !== 200) throw new CniError(CniCode.checkFailed, `port ${r.portId} no longer exists`);
    return null;
  }

  /** Removes everything an ADD made; succeeds when there is nothing left. */
  async del(containerId: string, ifname: string, netns: string): Promise<unknown> {
    const r = this.readRecord(containerId, ifname);
    let portIds = r?.portId ? [r.portId] : [];
    if (!portIds.length) {
      const found = await this.api<{ ports: Port[] }>("GET", `/v2.0/ports?tags=${containerTag(containerId)}`);
      portIds = (found.body?.ports ?? []).map((p) => p.id);
    }
    const ns = netns || r?.netns || "";
    if (ns && existsSync(ns)) await run("nsenter", [`--net=${ns}`, "ip", "link", "del", ifname]).catch(() => {});
    for (const id of portIds) {
      await run("ip", ["link", "del", tapName(id)]).catch(() => {});
      const res = await this.api("DELETE", `/v2.0/ports/${id}`);
      if (res.status !== 204 && res.status !== 404) throw new CniError(CniCode.tryAgainLater, `could not delete port ${id}`, String(res.status));
    }
    rmSync(this.recordPath(containerId, ifname), { force: true });
    return null;
  }

  /** Removes attachments the runtime no longer knows (`cni.dev/attachments` lists the valid ones). */
  private async gc(config: Record<string, unknown>): Promise<unknown> {
    const valid = (config["cni.dev/attachments"] as { containerID: string; ifname: string }[] | undefined) ?? [];
    if (!Array.isArray(valid)) throw new CniError(CniCode.invalidConfig, "cni.dev/attachments must be a list");
    const keep = new Set(valid.map((v) => `${v.containerID}/${v.ifname}`));
    const keepTags = new Set(valid.map((v) => containerTag(v.containerID)));
    for (const r of this.records()) if (!keep.has(`${r.containerId}/${r.ifname}`)) await this.del(r.containerId, r.ifname, r.netns);
    // Ports a crash left without a record: ours (tagged), bound here, for no valid container.
    const net = typeof config.network === "string" ? await this.network(config).catch(() => null) : null;
    const ports = await this.api<{ ports: Port[] }>("GET", `/v2.0/ports?tags=${MANAGED_TAG}&binding:host_id=${encodeURIComponent(this.agent.host)}${net ? `&network_id=${net.id}` : ""}`);
    for (const p of ports.body?.ports ?? []) {
      if ((p.tags ?? []).some((t) => keepTags.has(t))) continue;
      await run("ip", ["link", "del", tapName(p.id)]).catch(() => {});
      await this.api("DELETE", `/v2.0/ports/${p.id}`);
    }
    return null;
  }

  private async status(): Promise<unknown> {
    const res = await this.agent.client.call("GET", "/", undefined, AbortSignal.timeout(3000)).catch(() => null);
    if (!res || !res.ok) throw new CniError(CniCode.notAvailable, "the Seam controller is not reachable from this host", res ? String(res.status) : "no answer");
    return null;
  }
}

function need(env: Record<string, string | undefined>, name: string): string {
  const v = env[name];
  if (!v) throw new CniError(CniCode.invalidEnvironment, `${name} is not set`);
  return v;
}
