#!/usr/bin/env node
// seam-cni: the CNI plugin (spec 1.1). A thin shim: it reads the network
// configuration on stdin and the CNI_* variables, forwards them to the local
// agent over its unix socket, and prints the agent's answer. Plain JavaScript
// with nothing but node:net loaded, because the runtime starts it once per
// verb and Node's own start is most of the cost.
"use strict";
const net = require("node:net");

// the versions the agent speaks too (one list: contract/cni-versions.json)
const SUPPORTED = require("../contract/cni-versions.json");
const DEFAULT_SOCKET = "/run/seam/cni.sock";

function fail(code, msg, details, cniVersion) {
  process.stdout.write(JSON.stringify({ cniVersion: cniVersion || "1.1.0", code, msg, details: details || "" }) + "\n");
  process.exit(code > 0 && code < 256 ? Math.min(code, 255) : 1);
}

function readStdin() {
  return new Promise((resolve) => {
    if (process.stdin.isTTY) return resolve("");
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (d) => (data += d));
    process.stdin.on("end", () => resolve(data));
  });
}

async function main() {
  const command = process.env.CNI_COMMAND;
  const text = await readStdin();
  if (command === "VERSION") {
    let wanted = "1.1.0";
    try {
      wanted = text.trim() ? JSON.parse(text).cniVersion || wanted : wanted;
    } catch {}
    process.stdout.write(JSON.stringify({ cniVersion: wanted, supportedVersions: SUPPORTED }) + "\n");
    return;
  }
  if (!command) fail(4, "CNI_COMMAND is not set", "one of ADD, DEL, CHECK, STATUS, GC, VERSION");
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    fail(6, "failed to decode the network configuration", String(e.message));
  }
  if (!config || typeof config !== "object" || Array.isArray(config)) fail(6, "failed to decode the network configuration", "a JSON object is required");
  const version = config.cniVersion;
  if (typeof version !== "string" || !SUPPORTED.includes(version)) fail(1, `incompatible CNI version ${JSON.stringify(version)}`, `supported: ${SUPPORTED.join(", ")}`);
  const env = {};
  for (const k of ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"]) if (process.env[k] !== undefined) env[k] = process.env[k];
  const socket = typeof config.agentSocket === "string" && config.agentSocket ? config.agentSocket : DEFAULT_SOCKET;
  const reply = await new Promise((resolve) => {
    const conn = net.connect(socket);
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.end(JSON.stringify({ env, config }) + "\n"));
    conn.on("data", (d) => (buf += d));
    conn.on("end", () => resolve(buf));
    conn.on("error", (e) => resolve({ error: e }));
  });
  if (typeof reply !== "string") {
    if (command === "STATUS") fail(50, "the Seam agent is not reachable", `${socket}: ${reply.error.code || reply.error.message}`, version);
    fail(11, "the Seam agent is not reachable; try again later", `${socket}: ${reply.error.code || reply.error.message}`, version);
  }
  let answer;
  try {
    answer = JSON.parse(reply);
  } catch {
    fail(5, "the Seam agent sent an unreadable answer", reply.slice(0, 200), version);
  }
  if (answer.error) fail(answer.error.code, answer.error.msg, answer.error.details, version);
  if (answer.result !== undefined && answer.result !== null) process.stdout.write(JSON.stringify(answer.result) + "\n");
}

main().catch((e) => fail(999, "seam-cni failed", String(e && e.stack ? e.message : e)));
