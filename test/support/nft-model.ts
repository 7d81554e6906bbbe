// A model of an nftables table that runs Seam's own scripts line by line and
// refuses what nft refuses: a rule or element naming a chain, set or map that
// does not exist, deleting an element that is not there, deleting a chain,
// set or map something still refers to. Lets the agent's incremental plans be
// checked without root. Also prints a table in a canonical order (golden files).
interface Obj {
  decl: string;
  rules?: string[];
  elements?: Map<string, string>;
}

/** Top-level comma split of `{ a, b : c }` (our elements never hold commas). */
function elementsOf(text: string): string[] {
  const inner = text.trim().replace(/^\{\s*/, "").replace(/\s*\}$/, "");
  return inner ? inner.split(/,\s*/) : [];
}

export class NftModel {
  readonly chains = new Map<string, Obj>();
  readonly sets = new Map<string, Obj>();
  readonly maps = new Map<string, Obj>();
  private table = "";

  private refs(name: string): string[] {
    const out: string[] = [];
    const mentions = (text: string) => new RegExp(`(jump ${name}$|jump ${name}[ ;]|@${name}\\b)`).test(text);
    for (const [c, o] of this.chains) for (const r of o.rules!) if (mentions(r)) out.push(`rule in ${c}`);
    for (const [m, o] of this.maps) for (const v of o.elements!.values()) if (mentions(v)) out.push(`element of ${m}`);
    return out;
  }

  private checkTargets(text: string, where: string): void {
    for (const m of text.matchAll(/jump ([\w-]+)/g)) if (!this.chains.has(m[1]!)) throw new Error(`${where}: jump to missing chain ${m[1]}`);
    for (const m of text.matchAll(/@([\w-]+)/g)) if (!this.sets.has(m[1]!) && !this.maps.has(m[1]!)) throw new Error(`${where}: missing set or map ${m[1]}`);
  }

  private obj(kind: "chain" | "set" | "map", name: string): Obj {
    const o = (kind === "chain" ? this.chains : kind === "set" ? this.sets : this.maps).get(name);
    if (!o) throw new Error(`no ${kind} ${name}`);
    return o;
  }

  run(lines: readonly string[]): void {
    for (const line of lines) this.exec(line);
  }

  private exec(line: string): void {
    const m = /^(add|flush|delete) (table|chain|set|map|element|rule) (\w+) (\w+)(?: ([\w-]+))?(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`unparsed: ${line}`);
    const [, verb, what, family, table, name = "", rest = ""] = m;
    this.table = `${family} ${table}`;
    if (what === "table") return;
    const key = `${verb} ${what}`;
    switch (key) {
      case "add chain":
        if (!this.chains.has(name)) this.chains.set(name, { decl: rest, rules: [] });
        return;
      case "add set":
        if (!this.sets.has(name)) this.sets.set(name, { decl: rest, elements: new Map() });
        return;
      case "add map":
        if (!this.maps.has(name)) this.maps.set(name, { decl: rest, elements: new Map() });
        return;
      case "flush chain":
        this.obj("chain", name).rules!.length = 0;
        return;
      case "flush set":
        this.obj("set", name).elements!.clear();
        return;
      case "flush map":
        this.obj("map", name).elements!.clear();
        return;
      case "add rule":
        this.checkTargets(rest, line);
        this.obj("chain", name).rules!.push(rest);
        return;
      case "add element":
      case "delete element": {
        const target = this.sets.get(name) ?? this.maps.get(name);
        if (!target) throw new Error(`${line}: no set or map ${name}`);
        for (const e of elementsOf(rest)) {
          const [k, v = ""] = e.split(" : ");
          if (verb === "add") {
            this.checkTargets(v, line);
            if (this.sets.has(name) && target.elements!.has(k!)) throw new Error(`${line}: element ${k} exists`);
            target.elements!.set(k!, v);
          } else if (!target.elements!.delete(k!)) throw new Error(`${line}: no element ${k}`);
        }
        return;
      }
      case "delete chain":
      case "delete set":
      case "delete map": {
        const refs = this.refs(name);
        if (refs.length) throw new Error(`${line}: still referred to by ${refs.join(", ")}`);
        if (what === "chain" && this.obj("chain", name).rules!.length) throw new Error(`${line}: chain not empty`);
        (what === "chain" ? this.chains : what === "set" ? this.sets : this.maps).delete(name);
        return;
      }
      default:
        throw new Error(`unmodelled: ${line}`);
    }
  }

  /** The table in a canonical order: sets, maps, then chains, each by name; elements sorted. */
  dump(): string {
    const out = [`table ${this.table} {`];
    const sorted = <V>(m: Map<string, V>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [n, o] of sorted(this.sets)) out.push(`  set ${n} ${o.decl}`, ...[...o.elements!.keys()].sort().map((e) => `    ${e}`));
    for (const [n, o] of sorted(this.maps)) out.push(`  map ${n} ${o.decl}`, ...sorted(o.elements!).map(([k, v]) => `    ${k} : ${v}`));
    for (const [n, o] of sorted(this.chains)) out.push(`  chain ${n} ${o.decl}`.trimEnd(), ...o.rules!.map((r) => `    ${r}`));
    out.push("}");
    return `${out.join("\n")}\n`;
  }
}
