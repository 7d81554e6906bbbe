// OpenStack's own API test suite against Seam: Debian's tempest (and
// neutron-tempest-plugin) with dynamic credentials, behind a real Keystone
// whose catalog names Seam as the network service, exactly as a deployment
// would run it against Neutron. Only the extensions Seam lists are enabled,
// so a test skipped for a missing extension is Seam saying "not offered"
// rather than Tempest guessing.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { EXTENSIONS } from "../../src/front/neutron/extensions.ts";
import { Client, expectStatus, listen, makeStore, startServer, type Store, type TestServer } from "./api.ts";
import { ADMIN_PASSWORD, type Keystone, startKeystone } from "./keystone.ts";

const run = promisify(execFile);
const SERVICE_PASSWORD = "seam-service";
/** What Tempest's Python processes load first (sitecustomize.py: why). */
export const TEMPEST_PYTHONPATH = join(import.meta.dirname, "tempest-python");

export interface TempestCloud {
  readonly ks: Keystone;
  readonly seamUrl: string;
  readonly server: TestServer;
  /** the external network Tempest's router and floating IP tests attach to */
  readonly publicNetworkId: string;
  stop(): Promise<void>;
}

/** Keystone, Seam behind it (`--auth keystone`) on a fresh store, the catalog entry and a public network. */
export async function startTempestCloud(storeKind: "sqlite" | "postgres" = "sqlite"): Promise<TempestCloud> {
  const ks = await startKeystone();
  let store: Store | undefined;
  let server: TestServer | undefined;
  try {
    await ks.createProject("service");
    await ks.createUser("seam", SERVICE_PASSWORD, { service: "service" });
    store = await makeStore(storeKind);
    server = await startServer(store.url, {
      auth: "keystone",
      keystone: { url: ks.url, username: "seam", password: SERVICE_PASSWORD, project: "service", cacheSeconds: 60 },
      logLevel: process.env.SEAM_TEST_LOG ?? "warn",
    });
    const seamUrl = await listen(server);
    const { service } = await ks.admin<{ service: { id: string } }>("POST", "/services", { service: { type: "network", name: "neutron" } });
    await ks.admin("POST", "/endpoints", { endpoint: { service_id: service.id, interface: "public", url: seamUrl, region_id: "RegionOne" } });
    const admin = new Client(server, { "x-auth-token": await ks.token("admin", ADMIN_PASSWORD, "admin") });
    const pub = expectStatus(await admin.post("/v2.0/networks", {
      network: { name: "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "external" },
    }), 201).network;
    expectStatus(await admin.post("/v2.0/subnets", { subnet: { network_id: pub.id, name: "public-v4", ip_version: 4, cidr: "172.24.4.0/24", enable_dhcp: false } }), 201);
    expectStatus(await admin.post("/v2.0/subnets", { subnet: { network_id: pub.id, name: "public-v6", ip_version: 6, cidr: "2001:db8:ffff::/64", enable_dhcp: false } }), 201);
    const s = server;
    const st = store;
    return {
      ks, seamUrl, server, publicNetworkId: pub.id,
      async stop() {
        await s.close();
        await st.cleanup();
        await ks.stop();
      },
    };
  } catch (err) {
    await server?.close();
    await store?.cleanup();
    await ks.stop();
    throw err;
  }
}

export function tempestConf(cloud: TempestCloud, dir: string): string {
  const aliases = EXTENSIONS.map((e) => e.alias).join(",");
  return [
    "[DEFAULT]", `log_file = ${join(dir, "tempest.log")}`, "debug = false",
    "[oslo_concurrency]", `lock_path = ${join(dir, "locks")}`,
    "[auth]", "use_dynamic_credentials = true", "create_isolated_networks = true",
    "admin_username = admin", `admin_password = ${ADMIN_PASSWORD}`, "admin_project_name = admin", "admin_domain_name = Default",
    "[identity]", `uri_v3 = ${cloud.ks.url}`, "auth_version = v3", "region = RegionOne", "v3_endpoint_type = public",
    "[identity-feature-enabled]", "api_v2 = false", "api_v3 = true",
    "[service_available]", "neutron = true", "nova = false", "glance = false", "cinder = false", "swift = false", "horizon = false", "heat = false",
    "[network]", `public_network_id = ${cloud.publicNetworkId}`, "floating_network_name = public",
    "project_network_cidr = 10.100.0.0/16", "project_network_mask_bits = 28",
    "project_network_v6_cidr = 2001:db8::/48", "project_network_v6_mask_bits = 64",
    "project_networks_reachable = false", "endpoint_type = public", "region = RegionOne",
    "[network-feature-enabled]", `api_extensions = ${aliases}`, "ipv6 = true", "ipv6_subnet_attributes = true", "port_security = true",
    "[validation]", "run_validation = false",
    "[neutron_plugin_options]", "available_type_drivers = flat,vlan,vxlan", "provider_vlans = physnet1", "create_shared_resources = true",
    "",
  ].join("\n");
}

export interface TempestResult {
  readonly passed: number;
  readonly skipped: number;
  readonly failed: number;
  readonly failures: string[];
  /** the tail of `tempest run`'s output, for a failing test's message */
  readonly output: string;
}

/** `tempest init` of `<workdir>/ws`, registered in a workspace file of its own (not ~/.tempest, where names must be unique). */
export const initArgs = (workdir: string) => ["init", "--name", `seam-${workdir.split("/").pop()}`, "--workspace-path", join(workdir, "workspace.yaml"), join(workdir, "ws")];

/** Runs `tempest run --regex R` in a fresh workspace (removed after); the counts are stestr's for that run. */
export async function runTempest(cloud: TempestCloud, regex: string, opts: { concurrency?: number; onLine?: (line: string) => void } = {}): Promise<TempestResult> {
  if (!existsSync("/usr/bin/tempest")) throw new Error("Tempest is not installed: scripts/setup.sh installs Debian's tempest and neutron-tempest-plugin");
  const workdir = mkdtempSync(join(tmpdir(), "seam-tempest-"));
  try {
    const ws = join(workdir, "ws");
    await run("tempest", initArgs(workdir), { timeout: 60_000 });
    writeFileSync(join(ws, "etc", "tempest.conf"), tempestConf(cloud, ws));
    let output = "";
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn("tempest", ["run", "--regex", regex, "--concurrency", String(opts.concurrency ?? 2)], {
        cwd: ws, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OS_TEST_TIMEOUT: "300", PYTHONPATH: TEMPEST_PYTHONPATH },
      });
      let partial = "";
      const take = (d: Buffer) => {
        output = (output + d).slice(-200_000);
        const lines = (partial + d).split("\n");
        partial = lines.pop()!;
        for (const l of lines) opts.onLine?.(l);
      };
      child.stdout.on("data", take);
      child.stderr.on("data", take);
      child.on("error", reject);
      child.on("exit", (c) => resolve(c ?? 1));
    });
    // subunit2csv exits 1 when the stream holds a failure: its output is what counts
    const csv = (await run("sh", ["-c", "stestr last --subunit | subunit2csv || true"], { cwd: ws, maxBuffer: 64 << 20 })).stdout;
    const result = { ...countResults(csv), output };
    if (code !== 0 && result.failed === 0) throw new Error(`tempest run exited ${code} with no failed test:\n${output.slice(-3000)}`);
    return result;
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

/** subunit2csv's rows counted; a failed test named without its "[id-...,tags]" suffix. */
export function countResults(csv: string): Omit<TempestResult, "output"> {
  let passed = 0;
  let skipped = 0;
  const failures: string[] = [];
  for (const line of csv.split("\n").slice(1)) {
    // test,status,start,stop; an id with tags ("...[id-...,negative]") is quoted
    const m = /^("(?:[^"]|"")*"|[^,]*),([^,]*),/.exec(line);
    if (!m) continue;
    const id = m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!;
    if (m[2] === "success") passed++;
    else if (m[2] === "skip") skipped++;
    else if (m[2] === "failure" || m[2] === "fail") failures.push(id.replace(/\[[^\]]*\]$/, ""));
  }
  return { passed, skipped, failed: failures.length, failures: failures.sort() };
}
