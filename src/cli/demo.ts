// `seam demo`: a controller on a fresh embedded store, driven by the real
// `openstack` CLI through the seeds' story: one network for a VM and a pod
// with one IPAM (F7), DNS names (F4), a router to an external network with a
// floating IP (F15), and two tenants with the same address space (F13).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { defaultConfig } from "../core/service/model.ts";
import { openDb } from "../core/store/open.ts";
import { loadIdentityConfig } from "../front/identity/identity.ts";
import { buildServer } from "../server.ts";

const run = promisify(execFile);
const root = join(fileURLToPath(import.meta.url), "..", "..", "..");

export async function runDemo(port: number, keep: boolean): Promise<number> {
  try {
    await run("openstack", ["--version"]);
  } catch {
    process.stderr.write("seam demo: the `openstack` CLI is missing; run: bash scripts/setup.sh\n");
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), "seam-demo-"));
  const db = await openDb(`sqlite:${join(dir, "seam.db")}`);
  const { app } = await buildServer({ db, auth: "local", identity: loadIdentityConfig(join(root, "etc", "identity.yaml")), modelConfig: defaultConfig });
  await app.listen({ host: "127.0.0.1", port });
  const url = `http://127.0.0.1:${port}`;
  const say = (text: string) => process.stdout.write(`\n\x1b[1m# ${text}\x1b[0m\n`);
  const os = async (user: string, project: string, args: string[]) => {
    process.stdout.write(`$ openstack ${args.join(" ")}    (as ${user}/${project})\n`);
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      OS_AUTH_URL: `${url}/v3`,
      OS_IDENTITY_API_VERSION: "3",
      OS_USERNAME: user,
      OS_PASSWORD: user,
      OS_PROJECT_NAME: project,
      OS_USER_DOMAIN_NAME: "Default",
      OS_PROJECT_DOMAIN_NAME: "Default",
    };
    const { stdout } = await run("openstack", args, { env, timeout: 60_000 });
    process.stdout.write(stdout);
    return stdout;
  };
  try {
    process.stdout.write(`seam demo: controller on ${url} (embedded store ${dir}/seam.db, built-in identity at ${url}/v3)\n`);
    say("One network for VMs and pods, in project k8s (seeds/001)");
    await os("k8s", "k8s", ["network", "create", "seamless", "--dns-domain", "openstack.local.", "-c", "id", "-c", "mtu", "-c", "dns_domain"]);
    await os("k8s", "k8s", ["subnet", "create", "--network", "seamless", "--subnet-range", "192.168.100.0/24", "seamless-v4", "-c", "cidr", "-c", "gateway_ip", "-c", "allocation_pools"]);
    say("The provider view (admin): VXLAN with its own VNI");
    await os("admin", "admin", ["network", "show", "seamless", "-c", "provider:network_type", "-c", "provider:segmentation_id"]);
    say("A VM port bound to host-1, then a pod port on host-2: one IPAM hands out consecutive addresses (F7)");
    await os("admin", "k8s", ["port", "create", "--network", "seamless", "--project", "k8s", "--device-owner", "compute:nova", "--host", "host-1", "vm", "-c", "fixed_ips", "-c", "binding_vif_type"]);
    await os("admin", "k8s", ["port", "create", "--network", "seamless", "--project", "k8s", "--device-owner", "compute:kubernetes", "--host", "host-2", "cont", "-c", "fixed_ips", "-c", "device_owner"]);
    say("A port with a DNS name gets its FQDN (seeds/000, F4)");
    await os("k8s", "k8s", ["port", "create", "--network", "seamless", "--dns-name", "hello", "hello", "-c", "dns_assignment"]);
    say("A router to an external network, and a floating IP for the VM (F14, F15)");
    await os("admin", "admin", ["network", "create", "public", "--external", "--provider-network-type", "flat", "--provider-physical-network", "external", "-c", "id"]);
    await os("admin", "admin", ["subnet", "create", "--network", "public", "--subnet-range", "172.24.4.0/24", "--no-dhcp", "public-v4", "-c", "cidr"]);
    await os("k8s", "k8s", ["router", "create", "router1", "-c", "id"]);
    await os("k8s", "k8s", ["router", "add", "subnet", "router1", "seamless-v4"]);
    await os("k8s", "k8s", ["router", "set", "--external-gateway", "public", "router1"]);
    const fip = (await os("k8s", "k8s", ["floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address"])).trim();
    await os("k8s", "k8s", ["floating", "ip", "set", "--port", "vm", fip]);
    await os("k8s", "k8s", ["floating", "ip", "show", fip, "-c", "fixed_ip_address", "-c", "router_id"]);
    say("Every port, VM, pod and router alike, in the ordinary port list (seeds/003)");
    await os("k8s", "k8s", ["port", "list", "--network", "seamless", "-c", "Name", "-c", "Fixed IP Addresses", "-c", "Status"]);
    say("Two tenants, one address space each: 10.0.0.0/24 twice, isolated (F13)");
    await os("demo", "demo", ["network", "create", "private", "-c", "id"]);
    await os("demo", "demo", ["subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "demo-private", "-c", "cidr"]);
    await os("k8s", "k8s", ["network", "create", "private", "-c", "id"]);
    await os("k8s", "k8s", ["subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "k8s-private", "-c", "cidr"]);
    await os("demo", "demo", ["network", "list", "-c", "Name", "-c", "Subnets"]);
    const revision = await db.currentRevision();
    say(`The change log holds ${revision} revisions: GET ${url}/api/v1/changes?since=0 (the agents' feed)`);
    if (keep) {
      process.stdout.write(`\nseam demo: controller left running on ${url}; Ctrl-C stops it.\n`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }
    return 0;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    process.stderr.write(`seam demo: ${e.stderr || e.message}\n`);
    return 1;
  } finally {
    await app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
