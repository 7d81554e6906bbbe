// The controller's DNS listener (`seam server --dns-listen`, Node and
// dns-packet) against dnsmasq serving the same names, on loopback, in the
// same run: a server on a SQLite file with --names ports that have a dns_name,
// then dnsperf -c 10 at full speed against each, rounds interleaved. This is
// the one resolver Seam writes itself (the networks' resolvers are dnsmasq:
// bench/dhcp-dns-bench.ts). Prints; asserts nothing.
//
//   node --import tsx bench/dns-listener-bench.ts [--names 1000] [--seconds 5] [--rounds 3]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopDaemon } from "../src/os/daemons.ts";
import { run } from "../src/os/exec.ts";
import { openDb } from "../src/core/store/open.ts";
import { buildServer } from "../src/server.ts";
import { arg, median } from "./support.ts";

const NAMES = arg("names", 1000);
const SECONDS = arg("seconds", 5);
const ROUNDS = arg("rounds", 3);
const SEAM_PORT = 25354;
const PLAIN_PORT = 25355;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "seambench-dnsl-"));
  const db = await openDb(`sqlite:${join(dir, "seam.db")}`);
  const server = await buildServer({ db, auth: "noauth", logLevel: "fatal", dnsListen: { address: "127.0.0.1", port: SEAM_PORT } });
  const admin = { "x-project-id": "admin", "x-roles": "admin", "content-type": "application/json" };
  const call = async (url: string, body: unknown) => JSON.parse((await server.app.inject({ method: "POST", url, headers: admin, payload: JSON.stringify(body) })).body);
  try {
    const { network } = await call("/v2.0/networks", { network: { name: "bench", dns_domain: "openstack.local." } });
    await call("/v2.0/subnets", { subnet: { network_id: network.id, cidr: "10.0.0.0/16", ip_version: 4 } });
    const names: string[] = [];
    for (let i = 0; i < NAMES; i += 500) {
      const { ports } = await call("/v2.0/ports", { ports: Array.from({ length: Math.min(500, NAMES - i) }, (_, j) => ({ network_id: network.id, dns_name: `vm${i + j}` })) });
      for (const p of ports) names.push(`${p.fixed_ips[0].ip_address}\t${p.dns_assignment[0].fqdn.replace(/\.$/, "")}`);
    }
    writeFileSync(join(dir, "names"), names.join("\n") + "\n");
    writeFileSync(join(dir, "queries"), names.map((l) => `${l.split("\t")[1]} A`).join("\n") + "\n");
    await run("dnsmasq", ["--conf-file=/dev/null", "--no-resolv", "--no-hosts", `--addn-hosts=${dir}/names`, "--listen-address=127.0.0.1", "--bind-interfaces", `--port=${PLAIN_PORT}`, `--pid-file=${dir}/pid`, `--log-facility=${dir}/log`]);
    await new Promise((r) => setTimeout(r, 300)); // the listener follows the log: let it catch up
    const perf = async (port: number) => {
      const out = await run("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", `${dir}/queries`, "-c", "10", "-l", String(SECONDS)], undefined, { timeoutMs: 120_000 });
      return { qps: Number(/Queries per second:\s+([\d.]+)/.exec(out)![1]), avg: Number(/Average Latency \(s\):\s+([\d.]+)/.exec(out)![1]) * 1000, lost: Number(/Queries lost:\s+(\d+)/.exec(out)![1]) };
    };
    const seam: { qps: number; avg: number; lost: number }[] = [];
    const plain: typeof seam = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2) {
        plain.push(await perf(PLAIN_PORT));
        seam.push(await perf(SEAM_PORT));
      } else {
        seam.push(await perf(SEAM_PORT));
        plain.push(await perf(PLAIN_PORT));
      }
    }
    const m = (xs: typeof seam, k: "qps" | "avg" | "lost") => median(xs.map((x) => x[k]));
    console.log(`DNS on loopback, ${NAMES} names, dnsperf -c 10, ${SECONDS} s per run, ${ROUNDS} rounds (medians)`);
    console.log(`  controller listener  ${m(seam, "qps").toFixed(0)} q/s, average ${m(seam, "avg").toFixed(3)} ms, lost ${m(seam, "lost")}`);
    console.log(`  plain dnsmasq        ${m(plain, "qps").toFixed(0)} q/s, average ${m(plain, "avg").toFixed(3)} ms, lost ${m(plain, "lost")}`);
    console.log(`  ratio listener/dnsmasq: ${(m(seam, "qps") / m(plain, "qps")).toFixed(2)} (target >= 1.00)`);
  } finally {
    await stopDaemon("dnsmasq", join(dir, "pid"), `--pid-file=${dir}/pid`);
    await server.app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`dns-listener-bench: ${(e as Error).stack}`);
  process.exit(1);
});
