// Scenario S1 in the lab: a real VM (qemu) on host-1 and a real OCI container
// (podman, calling seam-cni itself) on host-2 share one network and one IPAM;
// both hosts' forwarding tables show both; a remote-group rule lets them talk.
// Then 50 containers started and removed by the runtime leave nothing behind.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { run } from "../src/os/exec.ts";
import { containerExec, removeContainer, runContainer } from "../src/lab/container.ts";
import { down, LAB, readState, waitFor } from "../src/lab/lab.ts";
import { bootVm } from "../src/lab/vm.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, pingFromVm, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
type Port = { id: string; name: string; mac_address: string; device_owner: string; status: string; fixed_ips: { ip_address: string }[]; security_groups: string[] };

function ipKey(ip: string): number {
  return ip.split(".").reduce((n, x) => n * 256 + Number(x), 0);
}

/** The address the IPAM must hand out next: the lowest in the pools that no port holds. */
async function nextFree(network: string, pools: { start: string; end: string }[]): Promise<string> {
  const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${network}`);
  const taken = new Set(ports.flatMap((p) => p.fixed_ips.map((f) => ipKey(f.ip_address))));
  for (const pool of pools) for (let a = ipKey(pool.start); a <= ipKey(pool.end); a++) if (!taken.has(a)) return [a >>> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255].join(".");
  throw new Error("pool exhausted");
}

describe("scenario S1: a VM and a container on one network", { skip: !isRoot && "needs root for namespaces", timeout: 600_000 }, () => {
  let net: { id: string };
  let pools: { start: string; end: string }[];
  let k8s: string;
  let vmPort: Port;
  let vmSg: string;
  let containerIp: string;

  before(async () => {
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2"], { timeout: 120_000 });
    k8s = await projectId("k8s");
    ({ network: net } = await labApi("POST", "/v2.0/networks", { network: { name: "seamless", project_id: k8s } }));
    const { subnet } = await labApi("POST", "/v2.0/subnets", { subnet: { network_id: net.id, project_id: k8s, cidr: "192.168.100.0/24", ip_version: 4 } });
    pools = subnet.allocation_pools;
    // the DHCP port Seam made with the subnet takes the first address, as in seeds/001
    const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net.id}&device_owner=network:dhcp`);
    assert.equal(ports[0]!.fixed_ips[0]!.ip_address, "192.168.100.2");
  });
  after(async () => {
    await down();
  });

  it("gives the VM on host-1 the next free address and boots it on its port", async () => {
    const expected = await nextFree(net.id, pools);
    ({ security_group: { id: vmSg } } = await labApi("POST", "/v2.0/security-groups", { security_group: { name: "vms", project_id: k8s } }));
    ({ port: vmPort } = await labApi("POST", "/v2.0/ports", { port: { network_id: net.id, project_id: k8s, name: "vm1", device_owner: "compute:nova", device_id: "vm1", "binding:host_id": "host-1", security_groups: [vmSg] } }));
    assert.equal(vmPort.fixed_ips[0]!.ip_address, expected);
    assert.equal(expected, "192.168.100.3", "with .1 the gateway and .2 the DHCP port");
    await bootVm("vm1", "host-1", vmPort.id);
  });

  it("gives the container the runtime starts on host-2 the next free address, as an ordinary port", async () => {
    const expected = await nextFree(net.id, pools);
    const { stdout } = await exec(`${ROOT}/bin/seam`, ["lab", "container", "c1", "--host", "host-2", "--network", "seamless", "--project", "k8s"], { timeout: 120_000 });
    void stdout;
    const r = await containerExec("c1", "ip -o -4 addr show dev eth0");
    containerIp = /inet (\S+)\//.exec(r.output)![1]!;
    assert.equal(containerIp, expected);
    const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net.id}&device_owner=compute:kubernetes`);
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.fixed_ips[0]!.ip_address, containerIp);
    assert.equal(ports[0]!.status, "ACTIVE");
    const mtu = (await containerExec("c1", "cat /sys/class/net/eth0/mtu")).output.trim();
    assert.equal(mtu, "1450");
  });

  it("shows both on each host's forwarding table", async () => {
    const routes = async (host: string) => (await exec(`${ROOT}/bin/seam`, ["routes", "--host", host, "--network", net.id, "--server", readState().server.url, "--os-username", "admin", "--os-password", "admin"])).stdout;
    const h1 = await routes("host-1");
    assert.match(h1, new RegExp(`192\\.168\\.100\\.3\\s+\\S+\\s+local tap`));
    assert.match(h1, new RegExp(`${containerIp.replace(/\./g, "\\.")}\\s+\\S+\\s+vtep 172\\.31\\.0\\.12 vni \\d+ \\(host-2\\)`));
    const h2 = await routes("host-2");
    assert.match(h2, new RegExp(`192\\.168\\.100\\.3\\s+\\S+\\s+vtep 172\\.31\\.0\\.11 vni \\d+ \\(host-1\\)`));
    assert.match(h2, new RegExp(`${containerIp.replace(/\./g, "\\.")}\\s+\\S+\\s+local tap`));
  });

  it("lets the container and the VM talk once remote-group rules admit each other", async () => {
    assert.equal((await containerExec("c1", "ping -c 2 -W 1 192.168.100.3")).code === 0, false, "the VM's group admits nobody yet");
    assert.equal(await pingFromVm("vm1", containerIp), false, "the container's default group admits only its own members");
    const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${k8s}`);
    const dflt = security_groups[0]!.id;
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: vmSg, direction: "ingress", ethertype: "IPv4", remote_group_id: dflt } });
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: dflt, direction: "ingress", ethertype: "IPv4", remote_group_id: vmSg } });
    await new Promise((r) => setTimeout(r, 700));
    const fromContainer = await containerExec("c1", "ping -c 3 -W 1 192.168.100.3");
    assert.equal(fromContainer.code, 0, fromContainer.output);
    assert.ok(await pingFromVm("vm1", containerIp), "the VM pings the container");
    await removeContainer("c1");
  });

  it("leaves no veth, port, address, record or nft element after 50 containers started and removed by the runtime", async () => {
    const before = (await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net.id}`)).ports.length;
    for (let i = 0; i < 50; i++) {
      await runContainer(`loop${i}`, "host-2", "seamless", "k8s");
      await removeContainer(`loop${i}`);
    }
    const { ports } = await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?network_id=${net.id}`);
    assert.equal(ports.length, before, "no port left");
    assert.equal(ports.filter((p) => p.device_owner === "compute:kubernetes").length, 0);
    const links = (JSON.parse(await run("ip", ["-n", "host-2", "-j", "link", "show"])) as { ifname: string }[]).map((l) => l.ifname);
    assert.deepEqual(links.filter((n) => n.startsWith("tap")), [], "no veth left on host-2");
    const dir = join(LAB.stateDir, "host-2", "cni");
    assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], "no attachment record left");
    await waitFor("host-2's filters to drop the last port", 5000, async () => !(await run("ip", ["netns", "exec", "host-2", "nft", "list", "map", "bridge", "seam", "port_in"])).includes("tap"));
    // the addresses went back: the next port gets the address the first container had
    const expected = await nextFree(net.id, pools);
    assert.equal(expected, containerIp, "the IPAM hands out the freed address again");
  });
});
