// Real VMs in the lab: qemu in a host namespace on the port's tap device, as
// Nova/libvirt would plug it (the tap exists first; the agent attaches it to
// the network's bridge when it sees it). The VM gets its address, MTU, routes
// and resolver by DHCP from Seam, as a cloud image does (`addressing:
// "static"` puts them on the kernel command line instead). `exec` talks to a
// small loop in the initramfs over the second serial port.
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { run } from "../os/exec.ts";
import { tapName } from "../contract/naming.ts";
import { daemon, ip, isAlive, LAB, readState, ROOT, waitFor, writeState } from "./base.ts";
import { checkName, portFacts, type PortFacts } from "./workload.ts";

export const VM_DIR = process.env.SEAM_VM_DIR ?? join(ROOT, "var/vm");
/** KVM on nested "PVM" hosts hangs stock kernels (MACHINE-NOTES.md): the verdict of one try is kept until reboot. */
const KVM_VERDICT = "/run/seam-kvm-verdict";

export interface VmOptions {
  readonly accel?: "auto" | "kvm" | "tcg";
  readonly memoryMb?: number;
  readonly bootTimeoutMs?: number;
  /** dhcp (default): the VM asks Seam; static: the port's address on the kernel command line */
  readonly addressing?: "dhcp" | "static";
  readonly progress?: (msg: string) => void;
}

/** What the VM's DHCP client was given (the initramfs's udhcpc hook writes it to /run/lease). */
export interface Lease {
  readonly ip: string;
  readonly router: string;
  readonly mtu: string;
  readonly dns: string;
  readonly domain: string;
  readonly hostname: string;
  /** guest seconds since its kernel started */
  readonly uptime: number;
}

function kvmUsable(): boolean {
  try {
    closeSync(openSync("/dev/kvm", "r+"));
    return true;
  } catch {
    return false;
  }
}

function qemuArgs(name: string, host: string, f: PortFacts, accel: string, memoryMb: number, dhcp: boolean): { args: string[]; exec: string; console: string } {
  const exec = join(LAB.stateDir, `vm-${name}.exec.sock`);
  const consoleLog = join(LAB.stateDir, `vm-${name}.console.log`);
  const cmdline = ["console=ttyS0", "quiet", "loglevel=3", "panic=-1", `seam.name=${name}`];
  if (!dhcp) {
    cmdline.push(`seam.ip=${f.address}`, `seam.mtu=${f.mtu}`);
    if (f.gateway) cmdline.push(`seam.gw=${f.gateway}`);
  }
  const args = [
    "netns", "exec", host, "qemu-system-x86_64",
    "-name", `seam-lab-${name}`,
    "-accel", accel,
    ...(accel === "kvm" ? ["-cpu", "host"] : []),
    "-m", String(memoryMb),
    "-smp", "1",
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", join(VM_DIR, "vmlinuz"),
    "-initrd", join(VM_DIR, "initrd.img"),
    "-append", cmdline.join(" "),
    "-netdev", `tap,id=n0,ifname=${f.device},script=no,downscript=no`,
    "-device", `virtio-net-pci,netdev=n0,mac=${f.mac}`,
    "-serial", `file:${consoleLog}`,
    "-serial", `unix:${exec},server=on,wait=off`,
  ];
  return { args, exec, console: consoleLog };
}

export async function bootVm(name: string, host: string, portId: string, o: VmOptions = {}): Promise<{ accel: string; facts: PortFacts; bootMs: number; lease: Lease | null }> {
  checkName(name);
  const say = o.progress ?? (() => {});
  if (!existsSync(join(VM_DIR, "vmlinuz")) || !existsSync(join(VM_DIR, "initrd.img"))) {
    throw new Error(`no VM image in ${VM_DIR}: run scripts/build-vm.sh (scripts/setup.sh does)`);
  }
  const state = readState();
  if (!state.hosts.some((h) => h.name === host)) throw new Error(`no host ${host} in the lab`);
  if (state.vms[name] || state.workloads[name]) throw new Error(`${name} already exists in the lab`);
  const facts = await portFacts(state, portId);
  // The tap exists before qemu opens it, as libvirt does it; the agent plugs it.
  await ip("-n", host, "tuntap", "add", "dev", facts.device, "mode", "tap");
  await ip("-n", host, "link", "set", facts.device, "mtu", String(facts.mtu), "up");

  const wanted = o.accel ?? "auto";
  const verdict = existsSync(KVM_VERDICT) ? readFileSync(KVM_VERDICT, "utf8").trim() : "";
  const tries: string[] = wanted === "tcg" ? ["tcg"] : wanted === "kvm" ? ["kvm"] : kvmUsable() && verdict !== "broken" ? ["kvm", "tcg"] : ["tcg"];
  const started = Date.now();
  for (const accel of tries) {
    const dhcp = (o.addressing ?? "dhcp") === "dhcp";
    const { args, exec, console: consoleLog } = qemuArgs(name, host, facts, accel, o.memoryMb ?? 128, dhcp);
    rmSync(exec, { force: true });
    say(`booting ${name} on ${host} (${accel}${accel === "tcg" ? ", software emulation" : ""}), port ${facts.device} ${facts.address}`);
    const pid = daemon("ip", args, join(LAB.stateDir, `vm-${name}.qemu.log`));
    state.vms[name] = { host, port: portId, pid, exec, console: consoleLog, accel };
    writeState(state);
    const timeout = accel === "kvm" && tries.length > 1 ? 20_000 : (o.bootTimeoutMs ?? 120_000);
    try {
      await waitFor(`${name} to boot (${accel})`, timeout, async () => existsSync(exec) && (await vmExec(name, "true", 3000)).code === 0, 500);
      if (accel === "kvm" && wanted === "auto") writeFileSync(KVM_VERDICT, "works\n");
      if (!dhcp) return { accel, facts, bootMs: Date.now() - started, lease: null };
      say(`${name}: waiting for its DHCP lease`);
      let lease: Lease | null = null;
      await waitFor(`${name} to get a DHCP lease`, o.bootTimeoutMs ?? 120_000, async () => (lease = await vmLease(name)) !== null, 250);
      return { accel, facts, bootMs: Date.now() - started, lease };
    } catch (e) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
      await waitFor("qemu to exit", 5000, async () => !isAlive(pid)).catch(() => {});
      if (accel === "kvm" && tries.length > 1) {
        say("KVM did not boot the guest here (nested PVM-style KVM, see MACHINE-NOTES.md); falling back to TCG");
        writeFileSync(KVM_VERDICT, "broken\n");
        continue;
      }
      delete state.vms[name];
      writeState(state);
      await ip("-n", host, "link", "del", facts.device).catch(() => {});
      const tail = existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").split("\n").slice(-8).join("\n") : "";
      throw new Error(`${(e as Error).message}\nconsole:\n${tail}`);
    }
  }
  throw new Error("unreachable");
}

let execSeq = 0;

/** Runs a shell command in a VM over its exec serial port; output and exit code. */
export function vmExec(name: string, command: string, timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  const vm = readState().vms[name];
  if (!vm) return Promise.reject(new Error(`no VM ${name} in the lab`));
  const id = `${process.pid}-${++execSeq}`;
  return new Promise((resolve, reject) => {
    const sock = connect(vm.exec);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms running in ${name}: ${command}`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${id} ${Buffer.from(command).toString("base64")}\n`));
    sock.on("data", (d: string) => {
      buf += d;
      const m = new RegExp(`@@SEAM-DONE ${id} (\\d+)`).exec(buf);
      if (!m) return;
      clearTimeout(timer);
      sock.destroy();
      // Output of an earlier, abandoned command may precede ours: keep what follows its marker.
      const start = buf.lastIndexOf("@@SEAM-DONE", m.index - 1);
      const out = buf.slice(start < 0 ? 0 : buf.indexOf("\n", start) + 1, m.index);
      resolve({ code: Number(m[1]), output: out.replace(/\r/g, "") });
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The VM's current DHCP lease, null while it has none. */
export async function vmLease(name: string): Promise<Lease | null> {
  const r = await vmExec(name, "cat /run/lease", 5000).catch(() => null);
  if (!r || r.code !== 0) return null;
  const f = Object.fromEntries(r.output.trim().split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return { ip: f.ip ?? "", router: f.router ?? "", mtu: f.mtu ?? "", dns: f.dns ?? "", domain: f.domain ?? "", hostname: f.hostname ?? "", uptime: Number(f.uptime) };
}

export async function stopVm(name: string): Promise<void> {
  const state = readState();
  const vm = state.vms[name];
  if (!vm) throw new Error(`no VM ${name}`);
  try {
    process.kill(vm.pid, "SIGTERM");
  } catch {
    /* gone */
  }
  await waitFor(`${name} to stop`, 5000, async () => !isAlive(vm.pid)).catch(() => {});
  delete state.vms[name];
  writeState(state);
  await run("ip", ["-n", vm.host, "link", "del", tapName(vm.port)]).catch(() => {});
}
