// The unmodified `openstack` CLI (Debian's python3-openstackclient) logs in to
// the built-in identity and drives the Neutron API; we check what it prints.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { ChildProcess } from "node:child_process";
import { freePort } from "./support/postgres.ts";
import { spawnServer, stopProcess } from "./support/http.ts";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "seam-cli-"));
let server: ChildProcess | undefined;
let authUrl = "";

const identity = `
projects: [admin, alpha, beta]
users:
  - { name: admin, password: secret, roles: { admin: [admin], alpha: [admin] } }
  - { name: alice, password: wonder, roles: { alpha: [member] } }
  - { name: bob, password: builder, roles: { beta: [member] } }
`;

async function os(user: string, password: string, project: string, args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, LANG: "C.UTF-8" };
  Object.assign(env, {
    OS_AUTH_URL: authUrl, OS_USERNAME: user, OS_PASSWORD: password, OS_PROJECT_NAME: project,
    OS_USER_DOMAIN_NAME: "Default", OS_PROJECT_DOMAIN_NAME: "Default", OS_IDENTITY_API_VERSION: "3", OS_INTERFACE: "public",
  });
  try {
    const { stdout } = await run("openstack", args, { env, timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; code?: number };
    throw Object.assign(new Error(`openstack ${args.join(" ")} failed (${e.code}): ${e.stderr}${e.stdout}`), { stderr: e.stderr ?? "" });
  }
}
const admin = (...a: string[]) => os("admin", "secret", "admin", a);
const alice = (...a: string[]) => os("alice", "wonder", "alpha", a);
const bob = (...a: string[]) => os("bob", "builder", "beta", a);
const json = async (p: Promise<string>) => JSON.parse(await p);

describe("openstack CLI against seam server --auth local", () => {
  before(async () => {
    writeFileSync(join(dir, "identity.yaml"), identity);
    const port = await freePort();
    authUrl = `http://127.0.0.1:${port}/v3`;
    server = await spawnServer(["--db", `sqlite:${join(dir, "seam.db")}`, "--auth", "local", "--identity", join(dir, "identity.yaml")], port);
  });
  after(async () => {
    if (server) await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a wrong password", async () => {
    await assert.rejects(os("alice", "nope", "alpha", ["network", "list"]), /401|authenticat/i);
  });

  it("creates network, subnet, DNS port, router, gateway, floating IP, group, rule and trunk", async () => {
    const ext = await json(admin("network", "create", "public", "--external", "--provider-network-type", "flat", "--provider-physical-network", "physnet1", "-f", "json"));
    assert.equal(ext["router:external"], true);
    await admin("subnet", "create", "--network", "public", "--subnet-range", "172.24.4.0/24", "--no-dhcp", "public-subnet");

    const net = await json(alice("network", "create", "pods", "--dns-domain", "openstack.local.", "-f", "json"));
    assert.equal(net.mtu, 1450);
    assert.equal(net.dns_domain, "openstack.local.");
    const sub = await json(alice("subnet", "create", "--network", "pods", "--subnet-range", "10.42.0.0/24", "pods-subnet", "-f", "json"));
    assert.equal(sub.gateway_ip, "10.42.0.1");
    // S3: the port named hello resolves as hello.openstack.local.
    const hello = await json(alice("port", "create", "--network", "pods", "--dns-name", "hello", "hello", "-f", "json"));
    assert.equal(hello.dns_assignment[0].fqdn, "hello.openstack.local.");
    assert.equal(hello.dns_assignment[0].hostname, "hello");
    // Seam made the DHCP port with the subnet (as Neutron's DHCP agent does): it holds .2, the first port gets .3
    assert.equal(hello.fixed_ips[0].ip_address, "10.42.0.3");
    const dhcp = await json(alice("port", "list", "--network", "pods", "--device-owner", "network:dhcp", "-f", "json"));
    assert.match(JSON.stringify(dhcp.map((p: Record<string, unknown>) => p["Fixed IP Addresses"])), /10\.42\.0\.2"/);
    assert.match(hello.mac_address, /^fa:16:3e:/);

    await alice("router", "create", "router1");
    await alice("router", "add", "subnet", "router1", "pods-subnet");
    await alice("router", "set", "--external-gateway", "public", "router1");
    const router = await json(alice("router", "show", "router1", "-f", "json"));
    assert.equal(router.external_gateway_info.network_id, ext.id);
    assert.match(router.external_gateway_info.external_fixed_ips[0].ip_address, /^172\.24\.4\./);

    const fip = await json(alice("floating", "ip", "create", "public", "-f", "json"));
    await alice("floating", "ip", "set", "--port", "hello", fip.floating_ip_address);
    const shown = await json(alice("floating", "ip", "show", fip.id, "-f", "json"));
    assert.equal(shown.fixed_ip_address, "10.42.0.3");
    assert.equal(shown.port_id, hello.id);

    await alice("security", "group", "create", "web");
    const rule = await json(alice("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "80:81", "web", "-f", "json"));
    assert.equal(rule.port_range_min, 80);
    assert.equal(rule.port_range_max, 81);
    const groups = await json(alice("security", "group", "list", "-f", "json"));
    assert.deepEqual(groups.map((g: { Name: string }) => g.Name).sort(), ["default", "web"]);

    await alice("port", "create", "--network", "pods", "parent");
    await alice("port", "create", "--network", "pods", "child");
    const trunk = await json(alice("network", "trunk", "create", "--parent-port", "parent", "--subport", "port=child,segmentation-type=vlan,segmentation-id=100", "trunk1", "-f", "json"));
    assert.equal(trunk.sub_ports[0].segmentation_id, 100);
    const parent = await json(alice("port", "show", "parent", "-f", "json"));
    assert.equal(parent.trunk_details.trunk_id, trunk.id);
  });

  it("lists with filters and tags", async () => {
    const all = await json(alice("port", "list", "--network", "pods", "-f", "json"));
    assert.equal(all.length, 5 /* DHCP, hello, router interface, parent, child */);
    const byIp = await json(alice("port", "list", "--fixed-ip", "ip-address=10.42.0.3", "-f", "json"));
    assert.deepEqual(byIp.map((p: { Name: string }) => p.Name), ["hello"]);
    const routerPorts = await json(alice("port", "list", "--device-owner", "network:router_interface", "-f", "json"));
    assert.equal(routerPorts.length, 1);
    assert.match(JSON.stringify(routerPorts[0]["Fixed IP Addresses"]), /10\.42\.0\.1/);
    await alice("network", "set", "--tag", "blue", "pods");
    const tagged = await json(alice("network", "list", "--tags", "blue", "-f", "json"));
    assert.deepEqual(tagged.map((n: { Name: string }) => n.Name), ["pods"]);
    const agents = await admin("network", "agent", "list", "-f", "json");
    assert.deepEqual(JSON.parse(agents), []);
  });

  it("lets a member name another project's group as a remote group once that project shares it (RBAC, seeds/001)", async () => {
    const beta = (await admin("project", "show", "beta", "-f", "value", "-c", "id")).trim();
    const web = await json(alice("security", "group", "create", "web", "-f", "json"));
    await bob("security", "group", "create", "db");
    const rule = ["security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "5432", "--remote-group", web.id, "db", "-f", "json"];
    await assert.rejects(bob(...rule), /No SecurityGroup found|could not be found|404/i);
    const pol = await json(alice("network", "rbac", "create", "--type", "security_group", "--action", "access_as_shared", "--target-project", beta, web.id, "-f", "json"));
    assert.equal(pol.object_id, web.id);
    const made = await json(bob(...rule));
    assert.equal(made.remote_group_id, web.id);
    assert.deepEqual(await json(bob("network", "rbac", "list", "-f", "json")), [], "the entry is alice's, not bob's");
    assert.equal((await json(alice("network", "rbac", "list", "-f", "json"))).length, 1);
    await assert.rejects(alice("network", "rbac", "delete", pol.id), /depend|in use|409/i);
    await bob("security", "group", "rule", "delete", made.id);
    await alice("network", "rbac", "delete", pol.id);
    await assert.rejects(bob(...rule), /No SecurityGroup found|could not be found|404/i);
  });

  it("keeps projects apart (F13) and lets both use 10.0.0.0/24", async () => {
    const a = await json(alice("network", "create", "private", "-f", "json"));
    await alice("subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "a-sub");
    await bob("network", "create", "private");
    const bs = await json(bob("subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "b-sub", "-f", "json"));
    assert.equal(bs.cidr, "10.0.0.0/24");
    const seen = await json(bob("network", "list", "-f", "json"));
    assert.ok(!seen.some((n: { ID: string }) => n.ID === a.id), "bob does not see alice's network");
    await assert.rejects(bob("network", "show", a.id), /No Network found|could not be found|404/i);
    await assert.rejects(bob("port", "create", "--network", a.id, "intruder"), /No Network found|could not be found|404/i);
  });
});
