// The service kind on both stores: its VIP is an address of the one IPAM,
// held by a port that changes only with the service; bad port lists are
// refused with Neutron's 400, a taken VIP with its 409.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { NeutronError } from "../src/core/errors.ts";
import { OWNER } from "../src/core/model/owners.ts";
import { networks, ports, services, subnets } from "../src/core/service/commands.ts";
import { createModel, type Model } from "../src/core/service/index.ts";
import type { Db } from "../src/core/store/db.ts";
import { openDb } from "../src/core/store/open.ts";
import { makeStore, type Store } from "./support/api.ts";

const status = async (p: Promise<unknown>) => p.then(() => 0, (e: unknown) => (e instanceof NeutronError ? e.status : -1));

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`services on ${kind}`, () => {
    let store: Store;
    let db: Db;
    let m: Model;
    let subnet: string;
    before(async () => {
      store = await makeStore(kind);
      db = await openDb(store.url);
      m = createModel(db);
      const net = await networks.create(m, m.system, { name: "svc", project: "p1", tags: [] });
      subnet = (await subnets.create(m, m.system, { network: net.id, project: "p1", cidr: "10.96.0.0/16", name: "svc", tags: [], gateway: "10.96.255.254", dhcp: false })).id;
    });
    after(async () => {
      await db?.close();
      await store?.cleanup();
    });

    const http = (targets: { ip: string; port: number; portId: string | null }[] = []) => [{ name: "http", protocol: "tcp" as const, port: 80, targets }];

    it("holds its VIP with a port that goes with it and changes with it only", async () => {
      const s = await services.create(m, m.system, { name: "web", project: "p1", subnet, vip: "10.96.0.10", ports: http(), tags: [] });
      assert.equal(s.vip, "10.96.0.10");
      const [vip] = await ports.find(m, m.system, { owner: OWNER.serviceVip, device: s.id });
      assert.deepEqual(vip?.addresses, ["10.96.0.10"]);
      assert.equal(await status(ports.remove(m, m.system, vip!.id)), 409, "not deleted through the port API");
      assert.equal(await status(m.update(m.system, "port", vip!.id, { fixed_ips: [{ subnet_id: subnet, ip_address: "10.96.0.11" }] })), 409, "nor moved");
      assert.equal(await status(services.create(m, m.system, { name: "other", project: "p1", subnet, vip: "10.96.0.10", ports: http(), tags: [] })), 409, "a VIP is one service's");
      const moved = await services.setPorts(m, m.system, s.id, http([{ ip: "10.0.0.5", port: 8080, portId: null }]));
      assert.deepEqual(moved.ports[0]!.targets, [{ ip: "10.0.0.5", port: 8080, portId: null }]);
      await services.remove(m, m.system, s.id);
      assert.deepEqual(await ports.find(m, m.system, { owner: OWNER.serviceVip, device: s.id }), [], "the VIP port went with the service");
      const again = await services.create(m, m.system, { name: "web", project: "p1", subnet, vip: "10.96.0.10", ports: http(), tags: [] });
      assert.equal(again.vip, "10.96.0.10", "and its address is free again");
    });

    it("refuses port lists it could not tell apart, and VIPs outside the subnet", async () => {
      const two = [{ name: "", protocol: "tcp" as const, port: 80, targets: [] }, { name: "", protocol: "udp" as const, port: 53, targets: [] }];
      assert.equal(await status(services.create(m, m.system, { name: "x", project: "p1", subnet, ports: two, tags: [] })), 400);
      const twice = [...http(), ...http()];
      assert.equal(await status(services.create(m, m.system, { name: "x", project: "p1", subnet, ports: twice, tags: [] })), 400);
      assert.equal(await status(services.create(m, m.system, { name: "x", project: "p1", subnet, vip: "192.0.2.1", ports: http(), tags: [] })), 400);
      const auto = await services.create(m, m.system, { name: "auto", project: "p1", subnet, ports: http(), tags: [] });
      assert.match(auto.vip, /^10\.96\./, "without a VIP the subnet's IPAM picks one");
    });
  });
}
