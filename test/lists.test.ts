// Lists cut in SQL (core/service/list.ts) against the definition of a list
// (core/model/query.ts: filter and paginate over every visible view), on both
// stores: generated queries (filters on columns, on derived attributes and on
// the JSON body, sorts on columns and on what is not a column, limits,
// markers both ways) must give the same pages, and walking the pages must
// give the whole list once, in order. Mixed-case names check that PostgreSQL
// orders text as SQLite and query.ts do.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { makeContext, type RequestContext } from "../src/core/model/context.ts";
import { filterViews, paginate, parseListQuery, type Raw } from "../src/core/model/query.ts";
import { createModel, type Model } from "../src/core/service/index.ts";
import { planList } from "../src/core/service/list-sql.ts";
import type { View } from "../src/core/service/model.ts";
import type { Db } from "../src/core/store/db.ts";
import { openDb } from "../src/core/store/open.ts";
import { makeStore, type Store } from "./support/api.ts";

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}

const NAMES = ["web", "Web", "db", "a", "B", "", "web-2", "zeta"];
const OWNERS = ["compute:nova", "compute:kubernetes", ""];

for (const storeKind of ["sqlite", "postgres"] as const) {
  describe(`lists in SQL on ${storeKind}`, () => {
    let store: Store;
    let db: Db;
    let m: Model;
    const admin = makeContext("admin", "admin", ["admin"]);
    const alice = makeContext("a", "alice", ["member"]);
    const seen: { ports: View[]; sg: string; subnets: string[]; addresses: string[]; macs: string[]; networks: string[] } = {
      ports: [],
      sg: "",
      subnets: [],
      addresses: [],
      macs: [],
      networks: [],
    };

    before(async () => {
      store = await makeStore(storeKind);
      db = await openDb(store.url);
      m = createModel(db);
      const r = rng(7);
      for (const [i, project] of ["a", "b"].entries()) {
        const [net] = await m.create(admin, "network", [{ name: `net-${project}`, project_id: project, shared: i === 1 }]);
        seen.networks.push(net!.id as string);
        const subs = await m.create(admin, "subnet", [
          { network_id: net!.id, project_id: project, cidr: `10.${i}.0.0/24`, ip_version: 4 },
          { network_id: net!.id, project_id: project, cidr: `fd00:${i}::/64`, ip_version: 6, ipv6_address_mode: "dhcpv6-stateful", ipv6_ra_mode: "dhcpv6-stateful" },
        ]);
        seen.subnets.push(...subs.map((s) => s.id as string));
      }
      const [sg] = await m.create(admin, "security_group", [{ name: "g", project_id: "a" }]);
      seen.sg = sg!.id as string;
      for (let b = 0; b < 4; b++) {
        const bodies = Array.from({ length: 30 }, (_, k) => {
          const project = r.next() < 0.6 ? "a" : "b";
          const body: Record<string, unknown> = {
            network_id: seen.networks[project === "a" ? 0 : 1],
            project_id: project,
            name: r.pick(NAMES),
            device_owner: r.pick(OWNERS),
            device_id: `dev-${(b * 30 + k) % 17}`,
            admin_state_up: r.next() < 0.7,
            tags: r.next() < 0.3 ? ["red"] : r.next() < 0.5 ? ["blue", "red"] : [],
            "binding:host_id": r.pick(["host-1", "host-2", ""]),
          };
          if (project === "a" && r.next() < 0.4) body.security_groups = [seen.sg];
          return body;
        });
        seen.ports.push(...(await m.create(admin, "port", bodies)));
      }
      for (const p of seen.ports) {
        seen.macs.push(p.mac_address as string);
        for (const f of p.fixed_ips as { ip_address: string }[]) seen.addresses.push(f.ip_address);
      }
    });
    after(async () => {
      await db?.close();
      await store?.cleanup();
    });

    /** The list as query.ts defines it: every view the caller may see, filtered, then one page. */
    async function reference(ctx: RequestContext, singular: string, raw: Raw) {
      const def = m.kindOf(singular).def;
      const all = (await m.list(ctx, singular, parseListQuery(def, {}))).items;
      const q = parseListQuery(def, raw);
      return paginate(filterViews(def, all, q), q, (id) => new Error(`marker ${id}`));
    }

    function randomQuery(seed: number): Raw {
      const r = rng(seed);
      const raw: Raw = {};
      const filters: (() => void)[] = [
        () => (raw.name = r.pick(NAMES)),
        () => (raw.device_owner = [r.pick(OWNERS), r.pick(OWNERS)]),
        () => (raw.device_id = `dev-${Math.floor(r.next() * 17)}`),
        () => (raw.network_id = r.pick(seen.networks)),
        () => (raw.mac_address = r.pick(seen.macs).toUpperCase()),
        () => (raw.fixed_ips = `ip_address=${r.pick(seen.addresses)}`),
        () => (raw.fixed_ips = [`subnet_id=${r.pick(seen.subnets)}`, `ip_address_substr=${r.pick(["10.0.", "fd00:1", ".1", "::"])}`]),
        () => (raw.security_groups = seen.sg),
        () => (raw.admin_state_up = r.pick(["true", "false"])),
        () => (raw.tags = r.pick(["red", "blue"])),
        () => (raw["not-tags"] = "red"),
        () => (raw.project_id = r.pick(["a", "b"])),
        () => (raw["binding:host_id"] = r.pick(["host-1", "host-2"])),
      ];
      const n = Math.floor(r.next() * 3);
      for (let i = 0; i < n; i++) r.pick(filters)();
      const sorts = [["name"], ["name", "device_owner"], ["device_id"], ["created_at"], ["id"], ["status"], ["mac_address"], []];
      const keys = r.pick(sorts);
      if (keys.length) {
        raw.sort_key = keys;
        raw.sort_dir = keys.map(() => r.pick(["asc", "desc"]));
      }
      const limit = r.pick([null, 1, 3, 7, 50]);
      if (limit !== null) raw.limit = String(limit);
      return raw;
    }

    it("gives the pages query.ts defines, walking forward and back, for generated queries", async () => {
      let pages = 0;
      let nonEmpty = 0;
      for (let seed = 1; seed <= 120; seed++) {
        const raw = randomQuery(seed);
        const ctx = seed % 3 === 0 ? alice : admin;
        const what = `seed ${seed} as ${ctx.projectId}: ${JSON.stringify(raw)}`;
        const all = await reference(ctx, "port", { ...raw, limit: undefined });
        const first = await m.list(ctx, "port", parseListQuery(m.kindOf("port").def, raw));
        const ref = await reference(ctx, "port", raw);
        assert.deepEqual(first.items.map((p) => p.id), ref.items.map((p) => p.id), `first page, ${what}`);
        assert.deepEqual([first.next, first.previous], [ref.next, ref.previous], `links, ${what}`);
        if (first.items.length) nonEmpty++;
        if (raw.limit === undefined) continue;
        // forward to the end by next links: the whole list, once, in order
        const walked = [...first.items];
        for (let page = first; page.next; ) {
          const at = { ...raw, marker: page.next };
          page = await m.list(ctx, "port", parseListQuery(m.kindOf("port").def, at));
          const expected = await reference(ctx, "port", at);
          assert.deepEqual(page.items.map((p) => p.id), expected.items.map((p) => p.id), `page after ${at.marker}, ${what}`);
          assert.deepEqual([page.next, page.previous], [expected.next, expected.previous], `links after ${at.marker}, ${what}`);
          walked.push(...page.items);
          pages++;
        }
        assert.deepEqual(walked.map((p) => p.id), all.items.map((p) => p.id), `walk forward, ${what}`);
        // back from the last item by page_reverse
        const lastId = all.items.at(-1)?.id as string | undefined;
        if (!lastId) continue;
        const back = { ...raw, marker: lastId, page_reverse: "true" };
        const rev = await m.list(ctx, "port", parseListQuery(m.kindOf("port").def, back));
        const expected = await reference(ctx, "port", back);
        assert.deepEqual(rev.items.map((p) => p.id), expected.items.map((p) => p.id), `page before the last, ${what}`);
        assert.deepEqual([rev.next, rev.previous], [expected.next, expected.previous], `links before the last, ${what}`);
      }
      // the generated queries must exercise something: non-empty answers and walks of many pages
      assert.ok(nonEmpty >= 60 && pages >= 200, `non-empty first pages ${nonEmpty}, pages walked ${pages}`);
    });

    it("filters and pages networks and subnets as a member sees them (own, shared)", async () => {
      for (const [singular, raw] of [
        ["network", { sort_key: "name", sort_dir: "desc", limit: "1" }],
        ["network", { subnets: seen.subnets[2]! }],
        ["network", { shared: "true" }],
        ["subnet", { ip_version: "6", limit: "1" }],
        ["subnet", { network_id: seen.networks[1]!, sort_key: "cidr" }],
        ["security_group", { name: "g" }],
      ] as const) {
        for (const ctx of [alice, makeContext("c", "carol", ["member"]), admin]) {
          const got = await m.list(ctx, singular, parseListQuery(m.kindOf(singular).def, raw));
          const ref = await reference(ctx, singular, raw);
          assert.deepEqual(got.items.map((x) => x.id), ref.items.map((x) => x.id), `${singular} ${JSON.stringify(raw)} as ${ctx.projectId}`);
        }
      }
      const carol = (await m.list(makeContext("c", "carol", ["member"]), "network", parseListQuery(m.kindOf("network").def, {}))).items;
      assert.deepEqual(carol.map((n) => n.id), [seen.networks[1]], "another project sees only the shared network");
    });

    it("takes a marker the filters do not keep from where it sorts, and refuses one the caller cannot see", async () => {
      const def = m.kindOf("port").def;
      // every port, the subnets' DHCP ports too
      const all = (await m.list(admin, "port", parseListQuery(def, {}))).items;
      const a = all.filter((p) => p.project_id === "a").map((p) => p.id as string).sort();
      const b = all.filter((p) => p.project_id === "b").map((p) => p.id as string).sort();
      const page = await m.list(admin, "port", parseListQuery(def, { project_id: "a", marker: b[0]!, limit: "2" }));
      assert.deepEqual(page.items.map((p) => p.id), a.filter((id) => id > b[0]!).slice(0, 2));
      await assert.rejects(m.list(alice, "port", parseListQuery(def, { marker: b[0]!, limit: "2" })), /Marker .* could not be found/);
    });

    it("cuts the page in SQL where every sort key is a column, in memory where one is not", () => {
      const def = m.kindOf("port").def;
      const plan = (raw: Raw, ctx = admin) => planList({ def, query: parseListQuery(def, raw), scope: undefined, narrow: [], dialect: db.dialect, isAdmin: ctx.isAdmin });
      assert.ok(plan({ sort_key: ["name", "device_owner"], limit: "3" }).order, "name, device_owner: columns");
      assert.equal(plan({ sort_key: "status" }).order, null, "status lives in the JSON body");
      assert.equal(plan({ sort_key: "binding:host_id" }, alice).order, null, "a member cannot order by what it cannot see");
      assert.match(plan({ device_id: "dev-1", mac_address: "FA:16:3E:00:00:01" }).where.sql, /device_id = \?.*mac_address IN/);
    });
  });
}
