// nftables operations as small typed records (what plan.ts decides), and their
// one renderer: lines of an `nft -f` script for one table. Rule expressions,
// set elements and declarations stay nft's own text, as in knftables.

export type NftObject = "set" | "map" | "chain";

export type NftOp =
  /** make sure the table exists (idempotent) */
  | { readonly op: "table" }
  | { readonly op: "add"; readonly what: NftObject; readonly name: string; readonly decl: string }
  | { readonly op: "flush"; readonly what: NftObject; readonly name: string }
  | { readonly op: "delete"; readonly what: NftObject; readonly name: string }
  /** set elements, or map elements as `key : value` */
  | { readonly op: "addElements"; readonly name: string; readonly elements: readonly string[] }
  | { readonly op: "deleteElements"; readonly name: string; readonly keys: readonly string[] }
  | { readonly op: "addRule"; readonly chain: string; readonly rule: string };

type OpOf<K extends NftOp["op"]> = Extract<NftOp, { op: K }>;

const anon = (xs: readonly string[]) => `{ ${xs.join(", ")} }`;

// One line per op kind; a new op without its line does not compile.
const RENDER: { readonly [K in NftOp["op"]]: (o: OpOf<K>, t: string) => string } = {
  table: (_o, t) => `add table ${t}`,
  add: (o, t) => `add ${o.what} ${t} ${o.name} ${o.decl}`.trimEnd(),
  flush: (o, t) => `flush ${o.what} ${t} ${o.name}`,
  delete: (o, t) => `delete ${o.what} ${t} ${o.name}`,
  addElements: (o, t) => `add element ${t} ${o.name} ${anon(o.elements)}`,
  deleteElements: (o, t) => `delete element ${t} ${o.name} ${anon(o.keys)}`,
  addRule: (o, t) => `add rule ${t} ${o.chain} ${o.rule}`,
};

/** The script lines for one table (`family name`) of a plan. */
export function renderNft(ops: readonly NftOp[], family: string, table: string): string[] {
  const t = `${family} ${table}`;
  return ops.map((o) => (RENDER[o.op] as (x: NftOp, t: string) => string)(o, t));
}
