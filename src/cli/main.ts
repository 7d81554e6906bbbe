// `seam`: the one executable. Subcommands stay thin: they parse flags and call
// into the server, the core or (later) the agent and lab.
import { Command, InvalidArgumentError, Option } from "commander";
import { defaultConfig, type ModelConfig } from "../core/service/model.ts";
import { credentialsFrom, transportFrom, withCredentials } from "./credentials.ts";
import { registerLab } from "./lab.ts";
import { registerHostCredential } from "./host-credential.ts";
import { DEFAULT_DB, registerDb, storeUrl, where } from "./db.ts";
import { configure, DEFAULT_CONFIG, withEnvironment } from "./config.ts";
// Each subcommand loads its own code when it runs: the agent (150 MiB budget)
// and the CNI path must not carry the server's HTTP framework and database drivers.

function listenAddress(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError("expected HOST:PORT, e.g. 127.0.0.1:9696");
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

function range(value: string): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m || Number(m[1]) > Number(m[2])) throw new InvalidArgumentError("expected MIN:MAX, e.g. 1001:2000");
  return [Number(m[1]), Number(m[2])];
}

function vlanRanges(value: string, previous: Record<string, [number, number]>): Record<string, [number, number]> {
  const m = /^([^:]+):(\d+):(\d+)$/.exec(value);
  if (!m || Number(m[2]) < 1 || Number(m[3]) > 4094 || Number(m[2]) > Number(m[3])) throw new InvalidArgumentError("expected PHYSNET:MIN:MAX with 1 <= MIN <= MAX <= 4094");
  return { ...previous, [m[1]!]: [Number(m[2]), Number(m[3])] };
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError("expected a positive integer");
  return Number(value);
}

const program = new Command();
program.name("seam").description("Seam: one network for virtual machines and containers").showHelpAfterError();

const CONFIG_HELP = `settings for this command from this YAML file's section for it (keys: the long options); default ${DEFAULT_CONFIG} when it exists (env SEAM_CONFIG)`;

const server = program
  .command("server")
  .description("run the controller: Neutron v2.0 API, identity, change log")
  .option("--config <file>", CONFIG_HELP)
  .addOption(new Option("--listen <host:port>", "address to listen on").argParser(listenAddress).default({ host: "127.0.0.1", port: 9696 }, "127.0.0.1:9696"))
  .option("--db <url>", `store: sqlite:PATH (embedded) or postgres://USER@HOST:PORT/DB (a password: env PGPASSWORD); default ${DEFAULT_DB}`)
  .option("--auth <mode>", "noauth (headers X-Project-Id/X-Roles; development only, loopback only), local (built-in Keystone v3 at /v3) or keystone (tokens validated by an external Keystone)", "noauth")
  .option("--identity <file>", "projects and users for --auth local", "etc/identity.yaml")
  .option("--keystone-url <url>", "with --auth keystone: Keystone's v3 endpoint, e.g. http://keystone:5000/v3")
  .option("--keystone-username <name>", "with --auth keystone: Seam's service user (its password: env SEAM_KEYSTONE_PASSWORD)", "seam")
  .option("--keystone-project <name>", "with --auth keystone: the service user's project", "service")
  .option("--token-cache-time <seconds>", "with --auth keystone: how long a validated token is trusted without asking again", positiveInt, 60)
  .option("--noauth-any-address", "with --auth noauth: listen on a non-loopback address anyway (anyone reaching it is admin)")
  .option("--tls-cert <file>", "serve https with this certificate (PEM, chain after it; read again on SIGHUP)")
  .option("--tls-key <file>", "the certificate's private key (PEM, unencrypted: keep it mode 0600)")
  .option("--public-url <url>", "URL clients reach this server at (service catalog); default: the request's Host")
  .option("--vni-range <min:max>", "VXLAN VNIs for tenant networks", range, defaultConfig.vniRange as [number, number])
  .option("--network-vlan-range <physnet:min:max>", "enable VLAN networks on a physnet (repeatable; this kernel has no 802.1Q)", vlanRanges, {})
  .option("--dns-domain <domain>", "DNS domain for ports on networks without dns_domain", defaultConfig.dnsDomain)
  .option("--agent-down-time <seconds>", "an agent silent this long is shown not alive", positiveInt, defaultConfig.agentDownTimeSec)
  .option("--distributed-routers", "routers created without `distributed` route east-west on every host (DVR); default: centralised on the network host")
  .option("--nova-url <url>", "Nova's compute endpoint (e.g. http://nova:8774/v2.1) to send network-vif-* events to")
  .option("--nova-token <token>", "X-Auth-Token for --nova-url")
  .option("--dns-listen <addr:port>", "answer DNS for every port's name (dns_assignment) here, authoritatively, e.g. 192.0.2.10:53", listenAddress)
  .option("--nova-metadata-url <url>", "Nova's metadata API (e.g. http://nova:8775): VMs' metadata requests the model cannot answer go there")
  .option("--metadata-proxy-shared-secret <secret>", "signs the instance id for --nova-metadata-url, as Nova's metadata_proxy_shared_secret (or env SEAM_METADATA_SECRET)")
  .option("--kubeconfig <file>", "run the Kubernetes controller against this cluster: namespaces get networks, pods get ports before the kubelet asks")
  .option("--pod-pool <cidr>", "with --kubeconfig: where a namespace without the seam.io/network annotation gets its own subnet from", "10.244.0.0/16")
  .option("--pod-prefix <bits>", "with --kubeconfig: the prefix length of each such namespace's subnet", positiveInt, 24)
  .option("--service-subnet <cidr>", "with --kubeconfig: the service subnet ClusterIPs are reserved on and Services are reached through (it holds the apiserver's --service-cluster-ip-range; its last address is for routers), e.g. 10.96.0.0/16")
  .option("--log-level <level>", "fatal, error, warn, info, debug", "warn");
withEnvironment(server).action(async (o) => {
    const [{ openDb }, { loadIdentityConfig }, { buildServer }] = await Promise.all([import("../core/store/open.ts"), import("../front/identity/identity.ts"), import("../server.ts")]);
    if (o.auth !== "noauth" && o.auth !== "local" && o.auth !== "keystone") throw new InvalidArgumentError(`--auth must be noauth, local or keystone, not "${o.auth}"`);
    if (o.auth === "noauth" && !isLoopback(o.listen.host) && !o.noauthAnyAddress) {
      throw new InvalidArgumentError(`--auth noauth makes anyone who reaches ${o.listen.host} an admin: listen on a loopback address, use --auth local or keystone, or say --noauth-any-address`);
    }
    if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new InvalidArgumentError("--tls-cert and --tls-key go together");
    const tlsFiles = o.tlsCert ? { certFile: o.tlsCert as string, keyFile: o.tlsKey as string } : null;
    const tls = tlsFiles ? (await import("./server-tls.ts")).readTls(tlsFiles) : undefined;
    const identity = o.auth === "local" ? loadIdentityConfig(o.identity) : undefined;
    const keystone = o.auth === "keystone" ? keystoneOptions(o) : undefined;
    const modelConfig: ModelConfig = { ...defaultConfig, vniRange: o.vniRange, vlanRanges: o.networkVlanRange, dnsDomain: o.dnsDomain.endsWith(".") ? o.dnsDomain : `${o.dnsDomain}.`, agentDownTimeSec: o.agentDownTime, distributedRouters: Boolean(o.distributedRouters) };
    const dbUrl = storeUrl(o);
    const db = await openDb(dbUrl, { onMigration: (m, ms) => process.stderr.write(`seam server: store schema: applied ${m.version} "${m.name}" (${ms.toFixed(0)} ms)\n`) });
    const { app } = await buildServer({ db, auth: o.auth, tls, identity, keystone, modelConfig, logLevel: o.logLevel, publicUrl: o.publicUrl, novaUrl: o.novaUrl, novaToken: o.novaToken ?? process.env.SEAM_NOVA_TOKEN, dnsListen: o.dnsListen ? { address: o.dnsListen.host, port: o.dnsListen.port } : undefined, novaMetadata: o.novaMetadataUrl ? { url: o.novaMetadataUrl, secret: o.metadataProxySharedSecret ?? process.env.SEAM_METADATA_SECRET ?? "" } : undefined, kubernetes: o.kubeconfig ? { kubeconfig: o.kubeconfig, podPool: o.podPool, podPrefix: o.podPrefix, ...(o.serviceSubnet ? { serviceSubnet: o.serviceSubnet } : {}) } : undefined });
    const stop = async (signal: string) => {
      process.stderr.write(`seam server: ${signal}, stopping\n`);
      await app.close();
      await db.close();
      process.exit(0);
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
    await app.listen({ host: o.listen.host, port: o.listen.port });
    const say = (line: string) => process.stderr.write(`seam server: ${line}\n`);
    if (tlsFiles && tls) {
      (await import("./server-tls.ts")).reloadOnHangup(app.server as import("node:https").Server, tlsFiles, say);
      say(`certificate: ${tls.summary}`);
    }
    say(`listening on ${tls ? "https" : "http"}://${o.listen.host.includes(":") ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port} (store ${where(dbUrl)}, auth ${o.auth})`);
  });

program
  .command("demo")
  .description("the lab of B1 (two hosts with agents, a real VM and a workload on one VXLAN network, as root), then a walk-through of the model with the openstack CLI")
  .option("--port <port>", "port for the walk-through's controller", "9797")
  .option("--keep", "leave the lab (and the walk-through's controller) running")
  .option("--no-lab", "only the API walk-through (no root needed)")
  .action(async (o) => {
    const [{ runDemo }, { runLabDemo }] = await Promise.all([import("./demo.ts"), import("./demo-lab.ts")]);
    let code = 0;
    if (o.lab) {
      if (process.getuid?.() !== 0) {
        process.stderr.write("seam demo: the lab needs root (network namespaces); running the API walk-through only\n");
      } else code = await runLabDemo(Boolean(o.keep));
    }
    if (code === 0) code = await runDemo(Number(o.port), Boolean(o.keep));
    process.exitCode = code;
  });

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function keystoneOptions(o: Record<string, string | number | undefined>) {
  const url = (o.keystoneUrl as string | undefined) ?? process.env.SEAM_KEYSTONE_URL;
  const password = process.env.SEAM_KEYSTONE_PASSWORD;
  if (!url) throw new InvalidArgumentError("--auth keystone needs --keystone-url (or env SEAM_KEYSTONE_URL)");
  if (!password) throw new InvalidArgumentError(`--auth keystone needs the password of Keystone user ${o.keystoneUsername} in env SEAM_KEYSTONE_PASSWORD`);
  return { url, username: o.keystoneUsername as string, password, project: o.keystoneProject as string, cacheSeconds: o.tokenCacheTime as number };
}

function ipv4(value: string): string {
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(value) || value.split(".").some((x) => Number(x) > 255)) throw new InvalidArgumentError("expected an IPv4 address");
  return value;
}

function mapping(value: string, previous: Record<string, string>): Record<string, string> {
  const m = /^([^:]+):(\S+)$/.exec(value);
  if (!m) throw new InvalidArgumentError("expected PHYSNET:INTERFACE");
  return { ...previous, [m[1]!]: m[2]! };
}

const agent = withCredentials(
  program
    .command("agent")
    .description("run the host agent: register, watch this host's intent, program bridges, VXLAN, FDB and nftables")
    .option("--config <file>", CONFIG_HELP)
    .requiredOption("--host <name>", "this host's name (binding:host_id of its ports)")
    .requiredOption("--server <url>", "the controller, e.g. http://10.0.0.1:9696")
    .requiredOption("--vtep <address>", "this host's underlay address for VXLAN", ipv4)
    .option("--role <role>", "compute (default) and/or network (carries routers and DHCP); repeatable", (v: string, p: string[]) => [...p, v], [] as string[])
    .option("--physical-interface <physnet:iface>", "interface for flat networks on PHYSNET (repeatable)", mapping, {})
    .option("--report-interval <seconds>", "heartbeat interval", positiveInt, 10)
    .option("--cni-socket <path>", "serve the CNI plugin (seam-cni) on this unix socket", "/run/seam/cni.sock")
    .option("--no-cni", "no CNI service")
    .option("--state-dir <dir>", "what must survive a crash (CNI attachment records); default /var/lib/seam/HOST")
    .option("--netns-suffix <text>", "appended to its router namespaces' names, where several agents share one /run/netns (the lab)", "")
    .option("--dns-upstream <addr[:port]>", "a resolver the networks' DNS servers on this host forward outside names to (repeatable; none: such names are refused)", (v: string, p: string[]) => [...p, v], [] as string[]),
);
withEnvironment(agent).action(async (o) => {
  const { Agent } = await import("../agent/agent.ts");
  const { parseUpstream } = await import("../agent/dhcp/dns-relay.ts");
  let dnsUpstreams;
  try {
    dnsUpstreams = (o.dnsUpstream as string[]).map(parseUpstream);
  } catch (e) {
    process.stderr.write(`seam agent: --dns-upstream: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const agent = new Agent({
    host: o.host,
    server: o.server.replace(/\/$/, ""),
    vtep: o.vtep,
    roles: o.role.length ? o.role : ["compute"],
    physicalInterfaces: o.physicalInterface,
    reportIntervalSec: o.reportInterval,
    credentials: credentialsFrom(o),
    ...transportFrom(o),
    cniSocket: o.cni ? o.cniSocket : undefined,
    stateDir: o.stateDir,
    netnsSuffix: o.netnsSuffix,
    dnsUpstreams,
  });
  const stop = async (signal: string) => {
    process.stderr.write(`seam-agent ${o.host}: ${signal}, stopping (the kernel keeps its state)\n`);
    await agent.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  await agent.start();
});

withCredentials(
  program
    .command("routes")
    .description("a network's forwarding table on one host: addresses, MACs, local ports or remote VTEPs with the VNI")
    .requiredOption("--host <name>", "the host")
    .requiredOption("--network <name-or-id>", "the network")
    .option("--kernel", "also read the host's kernel (bridge, VXLAN, FDB, neighbours, its routers) and show how it differs: run it on that host, or in the lab")
    .option("--server <url>", "the controller (default: env SEAM_SERVER, else the lab's controller when a lab is up, else http://127.0.0.1:9696)"),
).action(async (o) => {
  const [{ showRoutes }, lab] = await Promise.all([import("./routes.ts"), import("../lab/lab.ts")]);
  let server: string = o.server ?? process.env.SEAM_SERVER;
  let creds = credentialsFrom(o);
  const state = (() => {
    try {
      return lab.readState();
    } catch {
      return null;
    }
  })();
  if (!server) {
    server = state?.server.url ?? "http://127.0.0.1:9696";
    // the lab's controller runs with --auth local and the lab's admin
    if (state && creds.kind === "noauth") creds = lab.LAB.credentials;
  }
  // in the lab a host is a namespace of this machine, and its agent's namespaces carry its name
  const labHost = state?.hosts.some((h) => h.name === o.host);
  const kernel = o.kernel ? { netns: labHost ? o.host : null, suffix: labHost ? lab.netnsSuffix(o.host) : "" } : undefined;
  process.stdout.write(`${await showRoutes(server.replace(/\/$/, ""), o.host, o.network, creds, transportFrom(o), kernel)}\n`);
});

registerLab(program);
registerHostCredential(program);
registerDb(program);

// The config file's section and the environment, before parsing: required options (--host, --vtep) may come from them.
try {
  const cmd = [server, agent].find((c) => c.name() === process.argv[2]);
  if (cmd) configure(cmd, process.argv.slice(3));
} catch (err) {
  process.stderr.write(`seam: ${(err as Error).message}\n`);
  process.exit(2);
}

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`seam: ${err.message}\n`);
  process.exit(2);
});
