// Detached helpers (a DHCP namespace's dnsmasq and haproxy, a router's radvd), found again by
// their pid files: a helper is "running as specified" when its pid file names
// a live process of that program with exactly the wanted arguments. Detached
// so that they outlive the agent (a restarting agent costs no VM its lease),
// checked by command line so that a recycled pid is never taken for ours.
import { readFileSync } from "node:fs";

export interface Daemon {
  /** the program, as argv[0] ends */
  readonly program: string;
  readonly pidFile: string;
  readonly args: readonly string[];
}

export function pidIn(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/** The pid of the daemon running with exactly these arguments; null if none does. */
export function runningPid(d: Daemon): number | null {
  const pid = pidIn(d.pidFile);
  const argv = pid === null ? null : cmdline(pid);
  if (!argv || !argv[0]?.endsWith(d.program)) return null;
  return argv.slice(1).join("\0") === d.args.join("\0") ? pid : null;
}

/** The arguments the program named in the pid file runs with, if it is that program; null otherwise. */
export function runningArgs(program: string, pidFile: string): string[] | null {
  const pid = pidIn(pidFile);
  const argv = pid === null ? null : cmdline(pid);
  return argv?.[0]?.endsWith(program) ? argv.slice(1) : null;
}

/** Stops the program whose pid file this is, if that process is it and names the file (a recycled pid is left alone). */
export async function stopDaemon(program: string, pidFile: string, marker: string): Promise<void> {
  const pid = pidIn(pidFile);
  const argv = pid === null ? null : cmdline(pid);
  if (pid === null || !argv?.[0]?.endsWith(program) || !argv.some((a) => a.includes(marker))) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 50 && cmdline(pid) !== null; i++) await new Promise((r) => setTimeout(r, 20));
  if (cmdline(pid) !== null) process.kill(pid, "SIGKILL");
}
