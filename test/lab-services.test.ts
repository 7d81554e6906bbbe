// F2 and F22 through a real Kubernetes (issue 11): a Deployment of two pods
// behind a ClusterIP Service, and a VM (qemu) on another network that a
// router joins to the pods' network and to the service subnet. The VM reaches
// both backends through the ClusterIP, translated on its own host; with the
// Deployment scaled to zero the ClusterIP refuses at once; scaled back, it
// answers again. The ClusterIP is reserved in Seam's IPAM by the service's
// VIP port, which goes with the Service.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { BUSYBOX_IMAGE, labKubectl } from "../src/lab/kubelet.ts";
import { kubernetesMissing, SERVICE_SUBNET } from "../src/lab/kubernetes.ts";
import { LAB } from "../src/lab/base.ts";
import { down, waitFor } from "../src/lab/lab.ts";
import { bootVm, vmExec } from "../src/lab/vm.ts";
import { ROOT } from "./support/http.ts";
import { isRoot, labApi, projectId } from "./support/lab.ts";

const exec = promisify(execFile);
type Port = { id: string; name: string; device_id: string; device_owner: string; fixed_ips: { subnet_id: string; ip_address: string }[] };

const missing = !isRoot ? "needs root for namespaces" : kubernetesMissing();

/** One Deployment `web` in namespace `web`: busybox httpd answering its pod's name on 8080, one pod per host. */
export const webDeployment = (replicas: number) => ({
  apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "web" },
  spec: {
    replicas, selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        terminationGracePeriodSeconds: 1,
        affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: "web" } }, topologyKey: "kubernetes.io/hostname" }] } },
        containers: [{
          name: "httpd", image: BUSYBOX_IMAGE, imagePullPolicy: "Never",
          command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
        }],
      },
    },
  },
});

describe("F2: a VM reaches a Kubernetes Service's ClusterIP", { skip: missing ?? false, timeout: 900_000 }, () => {
  let dir: string;
  let k8s: string;
  let clusterIp: string;
  const apply = async (name: string, manifest: object) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(manifest));
    await labKubectl(["apply", "-f", f]);
  };
  /** What the VM gets from the ClusterIP: the answering pod's name, or how it failed, and how long it took. */
  const fetchFromVm = async (ip: string) => {
    // nc, not wget: the guest's busybox wget crashes writing to stdout
    const r = await vmExec("vm1", `t0=$(cut -d' ' -f1 /proc/uptime); printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80 > /tmp/body 2>&1; rc=$?; t1=$(cut -d' ' -f1 /proc/uptime); tail -n 1 /tmp/body; echo "rc=$rc t=$t0 $t1"`, 30_000);
    const m = /rc=(\d+) t=([\d.]+) ([\d.]+)/.exec(r.output);
    const body = r.output.replace(/rc=\d+ t=.*$/s, "").trim();
    return { ok: m?.[1] === "0" && !/can't connect/.test(body), ms: m ? Math.round((Number(m[3]) - Number(m[2])) * 1000) : -1, body };
  };
  const readyPods = async () => {
    const eps = JSON.parse(await labKubectl(["get", "endpoints", "web", "-n", "web", "-o", "json"])) as { subsets?: { addresses?: { targetRef?: { name: string } }[] }[] };
    return (eps.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.targetRef?.name ?? "").sort();
  };
  const vipPorts = async () => (await labApi<{ ports: Port[] }>("GET", `/v2.0/ports?device_owner=seam:service_vip&fixed_ips=ip_address=${clusterIp}`)).ports;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "seam-lab-svc-"));
    await down();
    await exec(`${ROOT}/bin/seam`, ["lab", "up", "--hosts", "2", "--kubernetes"], { timeout: 300_000 });
    k8s = await projectId("k8s");
  });
  after(async () => {
    if (process.env.SEAM_KEEP_LAB) return;
    await down();
    rmSync(dir, { recursive: true, force: true });
  });

  it("F22: has the controller's service subnet, which a router joins to the VM's and the pods' networks", async () => {
    const svcSubnet = await waitFor("the service subnet", 30_000, async () => (await labApi<{ subnets: { id: string; gateway_ip: string; enable_dhcp: boolean }[] }>("GET", `/v2.0/subnets?cidr=${SERVICE_SUBNET}`)).subnets[0] ?? null);
    assert.equal(svcSubnet.gateway_ip, "10.96.255.254", "its last address, outside the apiserver's ClusterIP range, is the routers'");
    assert.equal(svcSubnet.enable_dhcp, false, "no DHCP port takes a ClusterIP's address");
    const pods = await labApi("POST", "/v2.0/networks", { network: { name: "pods", project_id: k8s } });
    const podSubnet = await labApi("POST", "/v2.0/subnets", { subnet: { network_id: pods.network.id, project_id: k8s, cidr: "192.168.100.0/24", ip_version: 4 } });
    const vms = await labApi("POST", "/v2.0/networks", { network: { name: "vms", project_id: k8s } });
    const vmSubnet = await labApi("POST", "/v2.0/subnets", { subnet: { network_id: vms.network.id, project_id: k8s, cidr: "192.168.200.0/24", ip_version: 4 } });
    const { router } = await labApi("POST", "/v2.0/routers", { router: { name: "services", project_id: k8s } });
    for (const s of [podSubnet.subnet.id, vmSubnet.subnet.id, svcSubnet.id]) await labApi("PUT", `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: s });

    const { security_group: vmSg } = await labApi("POST", "/v2.0/security-groups", { security_group: { name: "vms", project_id: k8s } });
    const { security_groups } = await labApi<{ security_groups: { id: string }[] }>("GET", `/v2.0/security-groups?name=default&project_id=${k8s}`);
    // A Service's traffic meets the backend's ingress as the client's own: the pods' group admits the VMs on 8080.
    await labApi("POST", "/v2.0/security-group-rules", { security_group_rule: { security_group_id: security_groups[0]!.id, direction: "ingress", ethertype: "IPv4", protocol: "tcp", port_range_min: 8080, port_range_max: 8080, remote_group_id: vmSg.id } });
    const { port } = await labApi<{ port: Port }>("POST", "/v2.0/ports", { port: { network_id: vms.network.id, project_id: k8s, name: "vm1", device_owner: "compute:nova", device_id: "vm1", "binding:host_id": "host-1", security_groups: [vmSg.id] } });
    await bootVm("vm1", "host-1", port.id);
  });

  it("reserves the ClusterIP in Seam's IPAM with the service's VIP port", async () => {
    await apply("ns", { apiVersion: "v1", kind: "Namespace", metadata: { name: "web", annotations: { "seam.io/network": JSON.stringify({ project: "k8s", name: "pods" }) } } });
    await waitFor("the namespace's default service account", 30_000, async () => (await labKubectl(["get", "serviceaccount", "default", "-n", "web", "-o", "name"]).catch(() => "")).trim());
    await apply("svc", { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "web" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] } });
    clusterIp = (await labKubectl(["get", "service", "web", "-n", "web", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    assert.match(clusterIp, /^10\.96\./);
    const [vip] = await waitFor("the VIP port", 20_000, async () => ((await vipPorts()).length ? vipPorts() : null));
    assert.equal(vip!.fixed_ips[0]!.ip_address, clusterIp);
    await assert.rejects(labApi("DELETE", `/v2.0/ports/${vip!.id}`), /409/, "the VIP port goes with the service, not on its own");
    const resolver = new Resolver();
    resolver.setServers([`${LAB.serverAddress}:53`]);
    assert.deepEqual(await waitFor("the Service's name in the controller's DNS", 10_000, async () => resolver.resolve4("web.web.svc.cluster.local").catch(() => null)), [clusterIp]);
  });

  it("load-balances the VM's requests to the ClusterIP across both pods", async () => {
    await apply("web", webDeployment(2));
    await waitFor("two ready backends", 180_000, async () => (await readyPods()).length === 2, 500);
    const names = await readyPods();
    await waitFor("the VM to reach the ClusterIP", 20_000, async () => (await fetchFromVm(clusterIp)).ok, 300);
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const r = await fetchFromVm(clusterIp);
      assert.ok(r.ok, `request ${i} failed: ${r.body}`);
      seen.add(r.body);
    }
    assert.deepEqual([...seen].sort(), names, "both backends answered, each with its own name");
  });

  it("is reached from a pod as well, through its own host's translation", async () => {
    await apply("client", {
      apiVersion: "v1", kind: "Pod", metadata: { name: "client", namespace: "web" },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: "c", image: BUSYBOX_IMAGE, imagePullPolicy: "Never", command: ["sleep", "100000"] }] },
    });
    await waitFor("pod client Running", 120_000, async () => (await labKubectl(["get", "pod", "client", "-n", "web", "-o", "jsonpath={.status.phase}"])).trim() === "Running", 500);
    const fromPod = () => labKubectl(["exec", "-n", "web", "client", "--", "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${clusterIp} 80 | tail -n 1`], 30_000).then((o) => o.trim(), () => "");
    const names = await readyPods();
    const seen = new Set<string>();
    await waitFor("the pod to reach both backends", 30_000, async () => {
      seen.add(await fromPod());
      return names.every((n) => seen.has(n));
    }, 100);
  });

  it("refuses at once with no backend, and answers again when scaled back", async () => {
    await apply("web", webDeployment(0));
    await waitFor("no backend", 60_000, async () => (await readyPods()).length === 0, 300);
    const refused = await waitFor("the ClusterIP to refuse", 20_000, async () => {
      const r = await fetchFromVm(clusterIp);
      return !r.ok && /refused/i.test(r.body) ? r : null;
    }, 300);
    assert.ok(refused.ms < 1000, `refused in ${refused.ms} ms, not after a timeout`);
    await apply("web", webDeployment(2));
    await waitFor("two ready backends again", 180_000, async () => (await readyPods()).length === 2, 500);
    await waitFor("the VM to reach the ClusterIP again", 20_000, async () => (await fetchFromVm(clusterIp)).ok, 300);
  });

  it("releases the VIP when the Service is deleted", async () => {
    await labKubectl(["delete", "service", "web", "-n", "web"]);
    await waitFor("the VIP port to go", 20_000, async () => (await vipPorts()).length === 0);
    const resolver = new Resolver();
    resolver.setServers([`${LAB.serverAddress}:53`]);
    // the last name of its domain gone, the listener is no longer authoritative there: REFUSED, else NXDOMAIN
    await assert.rejects(resolver.resolve4("web.web.svc.cluster.local"), /ENOTFOUND|EREFUSED/, "its name goes with it");
    await waitFor("the hosts to stop translating the ClusterIP", 20_000, async () => !(await fetchFromVm(clusterIp)).ok, 300);
  });
});
