// DHCP and DNS benchmark (root), in scratch namespaces: a server namespace
// holding a network's DHCP interface (10.0.0.2) and a client namespace on a
// veth to it (10.0.0.3), as a VM sees its network's server. In the same run,
// rounds interleaved:
//   DNS   Seam's resolver (dnsmasq as the agent runs it: Seam's command line
//         and files, rendered from 1,000 ports' items) against plain dnsmasq
//         serving the same 1,000 names (--addn-hosts, defaults otherwise):
//         dnsperf -c 10 at full speed (queries/s, p99), then at a fixed rate
//         (p99). Target: Seam >= plain's qps, p99 <= 1 ms.
//   DHCP  DISCOVER to ACK for a static assignment (busybox udhcpc, the lab
//         VM's client), Seam's dnsmasq against plain dnsmasq --no-ping with the
//         same dhcp-host: the delay Seam adds (target <= 0.1 s).
// Prints; asserts nothing.
//
//   node --import tsx bench/dhcp-dns-bench.ts [--names 1000] [--seconds 5] [--rounds 3] [--leases 20] [--rate 20000]
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { DhcpHostItem, DhcpItem } from "../src/contract/intent.ts";
import { stopDnsmasq } from "../src/agent/dhcp/dhcp-manager.ts";
import { dnsmasqArgs, dnsmasqFiles } from "../src/agent/dhcp/dnsmasq.ts";
import { run } from "../src/os/exec.ts";
import { arg, median, pct } from "./support.ts";

const NAMES = arg("names", 1000);
const SECONDS = arg("seconds", 5);
const ROUNDS = arg("rounds", 3);
const LEASES = arg("leases", 20);
const RATE = arg("rate", 20000);
const S = "seambench-dns-s";
const C = "seambench-dns-c";
const DIR = "/tmp/seambench-dns";
const DEV = "sdi-bench";

const NET = "0000000b-0000-4000-8000-000000000000";
const dhcp: DhcpItem = {
  kind: "dhcp", network: NET, port: "dhcp", domain: "openstack.local", mtu: 1450,
  subnets: [{ id: "s4", cidr: "10.0.0.0/16", gateway: "10.0.0.1", dns: [], server: "10.0.0.2", routes: [], v6Mode: null }],
};
const ipOf = (i: number) => `10.0.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`;
const hosts: DhcpHostItem[] = Array.from({ length: NAMES }, (_, i) => ({
  kind: "dhcphost", network: NET, port: `p${String(i).padStart(5, "0")}`, mac: `fa:16:3e:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  names: [{ ip: ipOf(i), hostname: `vm${i}`, fqdn: `vm${i}.openstack.local.` }], opts: [],
}));
// the client's own assignment, for the DHCP half
const CLIENT_MAC = "fa:16:3e:00:00:00";
hosts[0] = { ...hosts[0]!, mac: CLIENT_MAC, names: [{ ip: "10.0.0.3", hostname: "client", fqdn: "client.openstack.local." }] };

const sh = (ns: string, cmd: string, ...args: string[]) => run("ip", ["netns", "exec", ns, cmd, ...args], undefined, { timeoutMs: 120_000 });

async function setUp(): Promise<void> {
  await tearDown();
  for (const ns of [S, C]) await run("ip", ["netns", "add", ns]);
  await run("ip", ["link", "add", DEV, "netns", S, "type", "veth", "peer", "name", "eth0", "netns", C]);
  await run("ip", ["-n", S, "addr", "add", "10.0.0.2/16", "dev", DEV]);
  await run("ip", ["-n", S, "link", "set", DEV, "mtu", "1450", "up"]);
  await run("ip", ["-n", C, "link", "set", "eth0", "address", CLIENT_MAC, "mtu", "1450", "up"]);
  await run("ip", ["-n", C, "addr", "add", "10.0.0.3/16", "dev", "eth0"]);
  for (const ns of [S, C]) await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  mkdirSync(`${DIR}/seam`, { recursive: true, mode: 0o755 });
  mkdirSync(`${DIR}/plain`, { recursive: true, mode: 0o755 });
  const files = dnsmasqFiles(dhcp, hosts);
  for (const [f, text] of Object.entries(files)) writeFileSync(`${DIR}/seam/${f}`, text, { mode: 0o644 });
  writeFileSync(`${DIR}/plain/names`, files.names, { mode: 0o644 });
  writeFileSync(`${DIR}/queries`, hosts.map((h) => `${h.names[0]!.fqdn.replace(/\.$/, "")} A`).join("\n") + "\n");
  writeFileSync(`${DIR}/udhcpc.sh`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
}

async function tearDown(): Promise<void> {
  for (const d of ["seam", "plain"]) await stopDnsmasq(`${DIR}/${d}`);
  for (const ns of [S, C]) await run("ip", ["netns", "del", ns]).catch(() => {});
  rmSync(DIR, { recursive: true, force: true });
}

type Server = "seam" | "plain";
function argsOf(which: Server): string[] {
  if (which === "seam") return dnsmasqArgs(dhcp, { dev: DEV, dir: `${DIR}/seam` }, hosts);
  const d = `${DIR}/plain`;
  return [
    "--conf-file=/dev/null", "--no-resolv", "--no-hosts", `--addn-hosts=${d}/names`, "--bind-interfaces", `--interface=${DEV}`, `--pid-file=${d}/pid`, `--log-facility=${d}/log`,
    "--leasefile-ro", "--no-ping", "--dhcp-range=10.0.0.0,static,255.255.0.0,86400s", `--dhcp-host=${CLIENT_MAC},10.0.0.3`,
  ];
}

async function start(which: Server): Promise<void> {
  await sh(S, "dnsmasq", ...argsOf(which));
  await new Promise((r) => setTimeout(r, 200));
}
const stop = (which: Server) => stopDnsmasq(`${DIR}/${which}`);

interface DnsRun {
  qps: number;
  /** ms; from dnsperf's summary */
  avg: number;
  /** ms; percentiles only at a fixed rate, where dnsperf reports every query (-v, which costs it throughput) */
  p50: number;
  p99: number;
  lost: number;
}
async function dnsperf(rate?: number): Promise<DnsRun> {
  const args = ["-s", "10.0.0.2", "-d", `${DIR}/queries`, "-c", "10", "-l", String(SECONDS), ...(rate ? ["-Q", String(rate), "-v"] : [])];
  const out = await sh(C, "dnsperf", ...args);
  const lat: number[] = [];
  for (const m of out.matchAll(/^> \w+ \S+ A ([\d.]+)$/gm)) lat.push(Number(m[1]) * 1000);
  return {
    qps: Number(/Queries per second:\s+([\d.]+)/.exec(out)![1]),
    avg: Number(/Average Latency \(s\):\s+([\d.]+)/.exec(out)![1]) * 1000,
    p50: lat.length ? median(lat) : NaN,
    p99: lat.length ? pct(lat, 99) : NaN,
    lost: Number(/Queries lost:\s+(\d+)/.exec(out)![1]),
  };
}

async function leaseMs(): Promise<number> {
  await run("ip", ["-n", C, "addr", "flush", "dev", "eth0"]);
  const t0 = process.hrtime.bigint();
  try {
    await sh(C, "busybox", "udhcpc", "-i", "eth0", "-q", "-n", "-t", "5", "-T", "1", "-s", `${DIR}/udhcpc.sh`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    await run("ip", ["-n", C, "addr", "add", "10.0.0.3/16", "dev", "eth0"]); // the hook configures nothing: dnsperf needs it back
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("needs root (namespaces)");
  await setUp();
  try {
    const dns: Record<Server, { full: DnsRun[]; fixed: DnsRun[] }> = { seam: { full: [], fixed: [] }, plain: { full: [], fixed: [] } };
    const dhcpMs: Record<Server, number[]> = { seam: [], plain: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const which of (r % 2 ? ["plain", "seam"] : ["seam", "plain"]) as Server[]) {
        await start(which);
        try {
          dns[which].full.push(await dnsperf());
          dns[which].fixed.push(await dnsperf(RATE));
          for (let i = 0; i < Math.ceil(LEASES / ROUNDS); i++) dhcpMs[which].push(await leaseMs());
        } finally {
          await stop(which);
        }
        process.stderr.write(`round ${r + 1}/${ROUNDS} ${which} done\n`);
      }
    }
    const m = (xs: DnsRun[], k: keyof DnsRun) => median(xs.map((x) => x[k]));
    console.log(`DNS, ${NAMES} names, dnsperf -c 10, ${SECONDS} s per run, ${ROUNDS} rounds (medians)`);
    for (const w of ["seam", "plain"] as Server[]) {
      console.log(`  full speed  ${w.padEnd(5)} ${m(dns[w].full, "qps").toFixed(0)} q/s, average ${m(dns[w].full, "avg").toFixed(3)} ms, lost ${m(dns[w].full, "lost")}`);
    }
    console.log(`              ratio seam/plain: ${(m(dns.seam.full, "qps") / m(dns.plain.full, "qps")).toFixed(2)} (target >= 1.00)`);
    for (const w of ["seam", "plain"] as Server[]) {
      console.log(`  at ${RATE} q/s ${w.padEnd(5)} p50 ${m(dns[w].fixed, "p50").toFixed(3)} ms, p99 ${m(dns[w].fixed, "p99").toFixed(3)} ms, average ${m(dns[w].fixed, "avg").toFixed(3)} ms (target p99 <= 1 ms)`);
    }
    const d = (w: Server) => median(dhcpMs[w]);
    console.log(`DHCP, DISCOVER..ACK of a static assignment, ${dhcpMs.seam.length} leases each (medians, p90)`);
    console.log(`  seam ${d("seam").toFixed(1)} ms (p90 ${pct(dhcpMs.seam, 90).toFixed(1)}), plain dnsmasq --no-ping ${d("plain").toFixed(1)} ms (p90 ${pct(dhcpMs.plain, 90).toFixed(1)})`);
    console.log(`  added by Seam: ${(d("seam") - d("plain")).toFixed(1)} ms (target <= 100 ms)`);
  } finally {
    await tearDown();
  }
}

main().catch((e) => {
  console.error(`dhcp-dns-bench: ${(e as Error).stack}`);
  process.exit(1);
});
