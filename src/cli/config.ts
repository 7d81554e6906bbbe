// Where `seam server` and `seam agent` take their settings from, strongest
// first: the command line, SEAM_* environment variables (one per option:
// --tls-cert is SEAM_TLS_CERT), the config file's section for the command
// (/etc/seam/seam.yaml, or --config / SEAM_CONFIG), the defaults. The file's
// keys are the options' long names (tls_cert or tls-cert); a key that is no
// option, or a value the option refuses, is an error naming the file and line.
// Secrets belong in the environment (systemd's EnvironmentFile, mode 0600) or
// in files of their own (--credential-file, --tls-key), never on a command line.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Command, InvalidArgumentError, type Option } from "commander";
import type { Pair } from "yaml";

// Loaded when there is a file to read: the YAML parser is a third of `seam --help`'s start otherwise.
const loadYaml = () => createRequire(import.meta.url)("yaml") as typeof import("yaml");

export const DEFAULT_CONFIG = "/etc/seam/seam.yaml";

/**
 * Names every option of CMD's SEAM_* variable (shown in its help), but the OS_* ones of the
 * credentials and those whose help names their variable already (they read it themselves).
 * The values are read by applyEnvironment: commander reads only variables named before an option is added.
 */
export function withEnvironment(cmd: Command): Command {
  for (const o of cmd.options) {
    const name = `SEAM_${o.attributeName().replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    if (o.envVar || o.attributeName().startsWith("os") || o.description.includes(`env ${name}`)) continue;
    o.envVar = name;
  }
  return cmd;
}

/** Sets CMD's options from their SEAM_* variables (source "env": over the file, under the command line). */
export function applyEnvironment(cmd: Command, env: NodeJS.ProcessEnv = process.env): void {
  for (const o of cmd.options) {
    const text = o.envVar ? env[o.envVar] : undefined;
    if (text === undefined || text === "") continue;
    const where = `env ${o.envVar}`;
    const value = o.required || o.optional ? text : /^(1|true|yes)$/i.test(text) ? true : /^(0|false|no)$/i.test(text) ? false : text;
    cmd.setOptionValueWithSource(o.attributeName(), valueOf(o, value, where), "env");
  }
}

/** Settings from the config file, then the environment, before commander reads the command line over them. */
export function configure(cmd: Command, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const file = configFile(argv, env);
  if (file) applyConfigFile(cmd, file);
  applyEnvironment(cmd, env);
}

/** The config file ARGV names (--config FILE), else SEAM_CONFIG, else the default when it exists; null: none. */
export function configFile(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | null {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--") break;
    if (argv[i] === "--config") return argv[i + 1] ?? null;
    if (argv[i]!.startsWith("--config=")) return argv[i]!.slice("--config=".length);
  }
  if (env.SEAM_CONFIG) return env.SEAM_CONFIG;
  return existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : null;
}

/** Sets CMD's options from FILE's section named after it (source "config": the environment and the command line override it). */
export function applyConfigFile(cmd: Command, file: string): void {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read the config file ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  const { isMap, isScalar, LineCounter, parseDocument } = loadYaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message.split("\n")[0]}`);
  const at = (node: { range?: [number, number, number] | null } | null | undefined) => (node?.range ? `${file}:${lines.linePos(node.range[0]).line}` : file);
  const root = doc.contents;
  if (root === null) return;
  if (!isMap(root)) throw new Error(`${at(root as never)}: expected sections (server:, agent:), not a ${isScalar(root) ? "value" : "list"}`);
  const sections = new Set(["server", "agent"]);
  for (const pair of root.items as Pair[]) {
    const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
    if (!sections.has(name)) throw new Error(`${at(pair.key as never)}: unknown section "${name}" (sections: server, agent)`);
  }
  const section = root.get(cmd.name(), true);
  if (section === undefined || section === null || (isScalar(section) && section.value === null)) return;
  if (!isMap(section)) throw new Error(`${at(section as never)}: ${cmd.name()}: expected keys and values`);
  for (const pair of section.items as Pair[]) {
    const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
    const where = `${at(pair.key as never)}: ${cmd.name()}.${key}`;
    const option = optionFor(cmd, key);
    if (!option) throw new Error(`${where} is not an option of seam ${cmd.name()} (see seam ${cmd.name()} --help)`);
    const attr = option.attributeName();
    const value = (pair.value as { toJSON?: () => unknown } | null)?.toJSON?.() ?? null;
    cmd.setOptionValueWithSource(attr, valueOf(option, value, where), "config");
  }
}

function optionFor(cmd: Command, key: string): Option | undefined {
  const camel = key.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (camel === "config" || camel === "help") return undefined;
  return cmd.options.find((o) => o.attributeName() === camel && !o.attributeName().startsWith("os"));
}

function valueOf(option: Option, value: unknown, where: string): unknown {
  const takesValue = option.required || option.optional;
  if (!takesValue) {
    if (typeof value !== "boolean") throw new Error(`${where}: expected true or false`);
    return value;
  }
  const items = Array.isArray(value) ? value : [value];
  if (!items.length || items.some((v) => v === null || typeof v === "object")) throw new Error(`${where}: expected a value, or a list of values`);
  if (items.length > 1 && !option.parseArg) throw new Error(`${where}: takes one value`);
  let acc: unknown = option.defaultValue;
  for (const v of items) {
    try {
      acc = option.parseArg ? option.parseArg(String(v), acc) : String(v);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new Error(`${where}: ${e.message}`);
      throw e;
    }
  }
  return acc;
}
