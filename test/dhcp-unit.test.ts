// DHCP below the lab: the compiler's dhcp/dhcphost items (on the serving host
// only, one per port, following the network host), dnsmasq's command line and
// files rendered from them, and a real dnsmasq given those files answering a
// real DHCP client in scratch namespaces, before and after a SIGHUP re-read.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { type DhcpHostItem, type DhcpItem, itemsOf, key } from "../src/contract/intent.ts";
import { compileHost } from "../src/core/compiler/compile.ts";
import { World } from "../src/core/compiler/world.ts";
import { stopDnsmasq } from "../src/agent/dhcp/dhcp-manager.ts";
import { dnsmasqArgs, dnsmasqFiles } from "../src/agent/dhcp/dnsmasq.ts";
import { run } from "../src/os/exec.ts";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const isRoot = process.getuid?.() === 0;
let rev = 0;
const put = (w: World, kind: string, object: Record<string, unknown>) => w.put({ revision: ++rev, kind, id: object.id as string, op: "update", object });
const del = (w: World, kind: string, id: string) => w.put({ revision: ++rev, kind, id, op: "delete", object: null });

const NET = "0000000a-0000-4000-8000-000000000000";
const names = (ip: string, hostname: string) => [{ ip_address: ip, hostname, fqdn: `${hostname}.openstack.local.` }];
function port(id: string, ip: string, o: Record<string, unknown> = {}) {
  return {
    id, network_id: NET, mac_address: `fa:16:3e:00:00:${id.slice(-2)}`, fixed_ips: [{ subnet_id: "s4", ip_address: ip }], allowed_address_pairs: [], security_groups: [],
    port_security_enabled: false, "binding:host_id": "", device_owner: "compute:nova", device_id: "", admin_state_up: true, dns_assignment: names(ip, `host-${ip.replace(/\./g, "-")}`), extra_dhcp_opts: [], ...o,
  };
}

function world(): World {
  const w = new World();
  put(w, "agent", { id: "a1", host: "h1", configurations: { tunneling_ip: "172.31.0.11", roles: ["compute", "network"] } });
  put(w, "agent", { id: "a2", host: "h2", configurations: { tunneling_ip: "172.31.0.12", roles: ["compute"] } });
  put(w, "network", { id: NET, name: "n", "provider:network_type": "vxlan", "provider:segmentation_id": 1001, mtu: 1450, dns_domain: "openstack.local." });
  put(w, "subnet", { id: "s4", network_id: NET, cidr: "10.0.0.0/24", gateway_ip: "10.0.0.1", enable_dhcp: true, dns_nameservers: [], host_routes: [{ destination: "10.9.0.0/16", nexthop: "10.0.0.9" }] });
  put(w, "subnet", { id: "s6", network_id: NET, cidr: "fd00::/64", gateway_ip: "fd00::1", enable_dhcp: true, dns_nameservers: ["fd00::53"], host_routes: [], ipv6_address_mode: "dhcpv6-stateful" });
  put(w, "port", port("dhcp0000-0000-4000-8000-0000000000d2", "10.0.0.2", { device_owner: "network:dhcp", device_id: `dhcp-${NET}` }));
  put(w, "port", port("vm000000-0000-4000-8000-000000000003", "10.0.0.3", { "binding:host_id": "h2", dns_name: "hello", dns_assignment: names("10.0.0.3", "hello") }));
  put(w, "port", port("pxe00000-0000-4000-8000-000000000004", "10.0.0.4", { "binding:host_id": "h2", extra_dhcp_opts: [{ opt_name: "bootfile-name", opt_value: "pxelinux.0", ip_version: 4 }, { opt_name: "66", opt_value: "10.0.0.66", ip_version: 4 }] }));
  return w;
}

describe("DHCP items and dnsmasq's configuration", () => {
  it("puts the server and a static assignment per port on the serving host only, and moves them with it", () => {
    const w = world();
    const h1 = compileHost(w, "h1");
    const d = h1.get(key.dhcp(NET)) as DhcpItem;
    assert.equal(d.port, "dhcp0000-0000-4000-8000-0000000000d2");
    assert.equal(d.domain, "openstack.local");
    assert.equal(d.mtu, 1450);
    assert.deepEqual(d.subnets.map((s) => s.id), ["s4", "s6"], "IPv4 first");
    assert.equal(itemsOf(h1, "dhcphost").length, 3);
    assert.equal((h1.get(key.port(d.port)) as { device: string }).device, "sdp-dhcp0000-00", "the serving host plugs the DHCP port's veth");
    const h2 = compileHost(w, "h2");
    assert.equal(itemsOf(h2, "dhcp").length + itemsOf(h2, "dhcphost").length, 0);
    assert.deepEqual((h2.get(key.net(NET)) as unknown as { resolvers: string[] }).resolvers, ["10.0.0.2", "fd00::53"], "per subnet: its dns_nameservers, or the DHCP port");
    put(w, "agent", { id: "a2", host: "h2", configurations: { tunneling_ip: "172.31.0.12", roles: ["compute", "network"] } });
    put(w, "agent", { id: "a1", host: "h1", configurations: { tunneling_ip: "172.31.0.11", roles: ["compute"] } });
    assert.equal(itemsOf(compileHost(w, "h2"), "dhcphost").length, 3, "the new network host serves");
    assert.equal(itemsOf(compileHost(w, "h1"), "dhcp").length, 0);
    del(w, "port", "dhcp0000-0000-4000-8000-0000000000d2");
    assert.equal(itemsOf(compileHost(w, "h2"), "dhcphost").length, 0, "no DHCP port, no server");
  });

  it("renders static assignments, the subnets' options and the extra options as dnsmasq reads them", () => {
    const h1 = compileHost(world(), "h1");
    const d = h1.get(key.dhcp(NET)) as DhcpItem;
    const hosts = itemsOf(h1, "dhcphost") as DhcpHostItem[];
    const args = dnsmasqArgs(d, { dev: "sdi-x", dir: "/d" }, hosts);
    for (const a of ["--dhcp-range=set:s-s4,10.0.0.0,static,255.255.255.0,86400s", "--dhcp-range=set:s-s6,fd00::,static,64,86400s", "--dhcp-option-force=option:mtu,1450", "--domain=openstack.local", "--local=/openstack.local/", "--no-ping", "--leasefile-ro", "--interface=sdi-x"]) {
      assert.ok(args.includes(a), `${a} in ${args.join(" ")}`);
    }
    // the port with extra options is on the command line, tagged; the file's lines carry no tag (dnsmasq 2.90)
    assert.ok(args.includes("--dhcp-host=fa:16:3e:00:00:04,set:p-pxe00000-0000-4000-8000-000000000004,10.0.0.4,host-10-0-0-4"));
    assert.ok(args.includes("--dhcp-option=tag:p-pxe00000-0000-4000-8000-000000000004,option:bootfile-name,pxelinux.0"));
    assert.ok(args.includes("--dhcp-option=tag:p-pxe00000-0000-4000-8000-000000000004,66,10.0.0.66"));
    const f = dnsmasqFiles(d, hosts);
    assert.equal(f.hosts, "fa:16:3e:00:00:d2,10.0.0.2,host-10-0-0-2\nfa:16:3e:00:00:03,10.0.0.3,hello\n");
    assert.doesNotMatch(f.hosts, /set:/);
    assert.equal(
      f.opts,
      [
        "tag:s-s4,option:router,10.0.0.1",
        "tag:s-s4,option:classless-static-route,10.9.0.0/16,10.0.0.9,0.0.0.0/0,10.0.0.1",
        "tag:s-s4,249,10.9.0.0/16,10.0.0.9,0.0.0.0/0,10.0.0.1",
        "tag:s-s6,option6:dns-server,[fd00::53]",
        "",
      ].join("\n"),
    );
    assert.match(f.names, /^10\.0\.0\.3\thello\.openstack\.local\thello$/m);
    assert.equal(f.names.split("\n").filter(Boolean).length, 3);
    // the command line does not change with ports that have no extra options
    const more = [...hosts, { kind: "dhcphost" as const, network: NET, port: "zz", mac: "fa:16:3e:00:00:99", names: [{ ip: "10.0.0.99", hostname: "x", fqdn: "x.openstack.local." }], opts: [] }];
    assert.deepEqual(dnsmasqArgs(d, { dev: "sdi-x", dir: "/d" }, more), args);
  });
});

describe("a real dnsmasq from those files, and a real DHCP client (scratch namespaces)", { skip: !isRoot && "needs root for namespaces" }, () => {
  const A = "seamtest-dhcp-a";
  const B = "seamtest-dhcp-b";
  const dir = "/tmp/seamtest-dhcp";
  // dhcpcd keeps a DUID of its own: the test removes the one it made
  const DUID = "/var/lib/dhcpcd/duid";
  const hadDuid = existsSync(DUID);
  after(async () => {
    if (!hadDuid) rmSync(DUID, { force: true });
    await stopDnsmasq(dir);
    for (const ns of [A, B]) await run("ip", ["netns", "del", ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it("leases the port's fixed IP with MTU, routes and resolver, and again after a SIGHUP re-read following a renewal", async () => {
    const h1 = compileHost(world(), "h1");
    const d = h1.get(key.dhcp(NET)) as DhcpItem;
    const hosts = itemsOf(h1, "dhcphost") as DhcpHostItem[];
    for (const ns of [A, B]) await run("ip", ["netns", "add", ns]);
    await run("ip", ["link", "add", "sdi-x", "netns", A, "type", "veth", "peer", "name", "eth0", "netns", B]);
    await run("ip", ["-n", A, "addr", "add", "10.0.0.2/24", "dev", "sdi-x"]);
    await run("ip", ["-n", A, "link", "set", "sdi-x", "up"]);
    await run("ip", ["-n", B, "link", "set", "eth0", "address", "fa:16:3e:00:00:03", "up"]);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const files = dnsmasqFiles(d, hosts);
    for (const [f, text] of Object.entries(files)) writeFileSync(`${dir}/${f}`, text, { mode: 0o644 });
    // one IPv4 subnet here: the scratch interface has no IPv6 address for the stateful range
    const v4 = { ...d, subnets: d.subnets.filter((s) => !s.cidr.includes(":")) };
    await run("ip", ["netns", "exec", A, "dnsmasq", ...dnsmasqArgs(v4, { dev: "sdi-x", dir }, hosts)]);
    const script = `${dir}/udhcpc.sh`;
    writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] || [ "$1" = renew ] && echo "ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns domain=$domain hostname=$hostname routes=$staticroutes"\nexit 0\n', { mode: 0o755 });
    const lease = () => run("ip", ["netns", "exec", B, "busybox", "udhcpc", "-i", "eth0", "-q", "-n", "-t", "3", "-T", "1", "-O", "mtu", "-O", "staticroutes", "-s", script], undefined, { timeoutMs: 15_000 });
    const first = await lease();
    assert.match(first, /ip=10\.0\.0\.3 mask=24 router=10\.0\.0\.1 mtu=1450 dns=10\.0\.0\.2 domain=openstack\.local hostname=hello routes=10\.9\.0\.0\/16 10\.0\.0\.9 0\.0\.0\.0\/0 10\.0\.0\.1/);
    const pid = Number(readFileSync(`${dir}/pid`, "utf8"));
    process.kill(pid, "SIGHUP");
    await lease();
    process.kill(pid, "SIGHUP"); // the re-read that dnsmasq 2.90 does not survive with tagged host lines
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotThrow(() => process.kill(pid, 0), "dnsmasq survives a re-read after a renewal");
    assert.match(await lease(), /ip=10\.0\.0\.3 /);
  });

  it("assigns a dual-stack port its IPv6 address by stateful DHCPv6, with the subnet's resolver", { skip: !hasDhcpcd() && "dhcpcd (dhcpcd-base) is not installed" }, async () => {
    await stopDnsmasq(dir);
    const w = world();
    put(w, "port", port("vm000000-0000-4000-8000-000000000003", "10.0.0.3", {
      "binding:host_id": "h2", dns_name: "hello",
      fixed_ips: [{ subnet_id: "s4", ip_address: "10.0.0.3" }, { subnet_id: "s6", ip_address: "fd00::3" }],
      dns_assignment: [...names("10.0.0.3", "hello"), ...names("fd00::3", "hello")],
    }));
    const h1 = compileHost(w, "h1");
    const d = h1.get(key.dhcp(NET)) as DhcpItem;
    const hosts = itemsOf(h1, "dhcphost") as DhcpHostItem[];
    await run("ip", ["-n", A, "addr", "add", "fd00::2/64", "dev", "sdi-x", "nodad"]);
    const files = dnsmasqFiles(d, hosts);
    assert.match(files.hosts, /^fa:16:3e:00:00:03,10\.0\.0\.3,\[fd00::3\],hello$/m);
    for (const [f, text] of Object.entries(files)) writeFileSync(`${dir}/${f}`, text, { mode: 0o644 });
    await run("ip", ["netns", "exec", A, "dnsmasq", ...dnsmasqArgs(d, { dev: "sdi-x", dir }, hosts)]);
    // no router advertisement here (Neutron's routers send those): the client asks DHCPv6 at once
    writeFileSync(`${dir}/dhcpcd.conf`, "noipv6rs\nnoipv4\nia_na 1\noption dhcp6_name_servers\n");
    const out = await run("ip", ["netns", "exec", B, "dhcpcd", "-f", `${dir}/dhcpcd.conf`, "-6", "-T", "-1", "-t", "10", "eth0"], undefined, { timeoutMs: 20_000 });
    assert.match(out, /new_dhcp6_ia_na1_ia_addr1='fd00::3'/);
    assert.match(out, /new_dhcp6_name_servers='fd00::53'/);
  });
});

function hasDhcpcd(): boolean {
  try {
    execFileSync("dhcpcd", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
