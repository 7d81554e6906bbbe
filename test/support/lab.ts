// Helpers for end-to-end tests in the lab: the admin API, pings from
// workloads and VMs, captures on the underlay.
import { spawn } from "node:child_process";
import { run } from "../../src/os/exec.ts";
import { api, type LabState, readState } from "../../src/lab/lab.ts";
import { vmExec } from "../../src/lab/vm.ts";
import { passwordLogin } from "./http.ts";

export const isRoot = process.getuid?.() === 0;

export function labApi<T = Record<string, any>>(method: string, path: string, body?: unknown): Promise<T> {
  return api<T>(readState(), method, path, body);
}

export async function projectId(name: string): Promise<string> {
  const state: LabState = readState();
  const res = await fetch(`${state.server.url}/v3/projects?name=${name}`, { headers: { "x-auth-token": await token() } });
  const body = (await res.json()) as { projects: { id: string }[] };
  return body.projects[0]!.id;
}

async function token(user = "admin", password = "admin", project = "admin"): Promise<string> {
  const state = readState();
  const res = await passwordLogin(`${state.server.url}/v3`, user, password, project);
  if (res.status !== 201) throw new Error(`login of ${user} to ${project}: HTTP ${res.status}`);
  return res.headers.get("x-subject-token")!;
}

/** The API as a project's member would call it (etc/identity.yaml's users), answering status and body. */
export function memberApi(user: string, password: string, project: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${readState().server.url}${path}`, {
      method,
      headers: { "x-auth-token": await token(user, password, project), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/** true when `count` pings from a workload namespace all come back. */
export async function pingFromNs(ns: string, ip: string, opts: { count?: number; source?: string } = {}): Promise<boolean> {
  const args = ["netns", "exec", ns, "ping", "-n", "-q", "-c", String(opts.count ?? 2), "-i", "0.2", "-W", "1"];
  if (opts.source) args.push("-I", opts.source);
  try {
    await run("ip", [...args, ip]);
    return true;
  } catch {
    return false;
  }
}

export async function pingFromVm(vm: string, ip: string, count = 2): Promise<boolean> {
  const r = await vmExec(vm, `ping -c ${count} -W 1 ${ip}`, 30_000);
  return r.code === 0;
}

/** Captures on an interface while `during` runs; returns tcpdump's decoded lines. */
export async function capture(where: { ns?: string; dev: string }, filter: string, during: () => Promise<unknown>): Promise<string[]> {
  const args = [...(where.ns ? ["netns", "exec", where.ns] : []), "tcpdump", "-l", "-n", "-e", "-i", where.dev, filter];
  const child = spawn(where.ns ? "ip" : "tcpdump", where.ns ? args : args.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let ready = false;
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    if (d.includes("listening on")) ready = true;
  });
  const until = Date.now() + 5000;
  while (!ready && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  try {
    await during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    child.kill("SIGINT");
    await new Promise((r) => child.once("close", r));
  }
  return out.split("\n").filter(Boolean);
}

/** tcpdump -e prints a VXLAN packet's outer header and its inner frame on two lines: join them. */
export function vxlanPackets(lines: readonly string[]): { outer: string; inner: string }[] {
  const out: { outer: string; inner: string }[] = [];
  for (let i = 0; i + 1 < lines.length; i++) if (lines[i]!.includes("VXLAN")) out.push({ outer: lines[i]!, inner: lines[i + 1]! });
  return out;
}
