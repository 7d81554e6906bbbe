// The controller's DNS listener below the lab: the zone's answers (pure), and
// a real listener on loopback, fed by a real model on a SQLite file, answering
// dns-packet queries before and after a port is renamed.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, before, describe, it } from "node:test";
import dnsPacket from "dns-packet";
import { reverseName, Zone } from "../src/front/dns/zone.ts";
import { expectStatus, makeStore, startServer, type Store, type TestServer } from "./support/api.ts";

describe("the DNS zone", () => {
  it("answers A, AAAA and PTR for the ports' names, NXDOMAIN in their domains, REFUSED elsewhere", () => {
    const z = new Zone();
    z.setPort("p1", [{ ip: "10.0.0.3", fqdn: "hello.openstack.local." }, { ip: "fd00::3", fqdn: "hello.openstack.local." }]);
    z.setPort("p2", [{ ip: "10.0.0.4", fqdn: "host-10-0-0-4.openstack.local." }]);
    assert.deepEqual(z.answer("HELLO.openstack.local", "A"), { rcode: "NOERROR", type: "A", data: ["10.0.0.3"] });
    assert.deepEqual(z.answer("hello.openstack.local.", "AAAA"), { rcode: "NOERROR", type: "AAAA", data: ["fd00::3"] });
    assert.deepEqual(z.answer("3.0.0.10.in-addr.arpa", "PTR"), { rcode: "NOERROR", type: "PTR", data: ["hello.openstack.local"] });
    assert.deepEqual(z.answer(reverseName("fd00::3"), "PTR"), { rcode: "NOERROR", type: "PTR", data: ["hello.openstack.local"] });
    assert.equal(reverseName("fd00::3"), "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa");
    assert.deepEqual(z.answer("host-10-0-0-4.openstack.local", "AAAA"), { rcode: "NOERROR", type: null, data: [] }, "a name without that type: NODATA");
    assert.deepEqual(z.answer("nobody.openstack.local", "A"), { rcode: "NXDOMAIN" });
    assert.deepEqual(z.answer("example.com", "A"), { rcode: "REFUSED" });
    z.setPort("p1", [{ ip: "10.0.0.3", fqdn: "world.openstack.local." }]);
    assert.deepEqual(z.answer("hello.openstack.local", "A"), { rcode: "NXDOMAIN" }, "a rename replaces the port's records");
    assert.deepEqual(z.answer("world.openstack.local", "A"), { rcode: "NOERROR", type: "A", data: ["10.0.0.3"] });
    z.setPort("p1", null);
    z.setPort("p2", null);
    assert.deepEqual(z.answer("world.openstack.local", "A"), { rcode: "REFUSED" }, "no port left in the domain: not ours");
  });
});

describe("the DNS listener of a server on a real SQLite file (seam server --dns-listen)", () => {
  let s: TestServer;
  let store: Store;
  const PORT = 25353;
  before(async () => {
    store = await makeStore("sqlite");
    s = await startServer(store.url, { dnsListen: { address: "127.0.0.1", port: PORT } });
  });
  after(async () => {
    await s.close();
    await store.cleanup();
  });

  const rcodeOf = (p: dnsPacket.Packet) => (p as { rcode?: string }).rcode;
  async function query(name: string, type: "A" | "PTR"): Promise<dnsPacket.Packet> {
    const sock = createSocket("udp4");
    try {
      return await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no answer")), 2000);
        sock.on("message", (m) => {
          clearTimeout(t);
          resolve(dnsPacket.decode(m));
        });
        sock.send(dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), PORT, "127.0.0.1");
      });
    } finally {
      sock.close();
    }
  }

  it("answers a port's name from the model, and its new name once it is renamed", async () => {
    const admin = s.admin;
    const net = expectStatus(await admin.post("/v2.0/networks", { network: { name: "n", dns_domain: "openstack.local." } }), 201).network;
    expectStatus(await admin.post("/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.60.0.0/24", ip_version: 4 } }), 201);
    const port = expectStatus(await admin.post("/v2.0/ports", { port: { network_id: net.id, dns_name: "hello" } }), 201).port;
    const ip = port.fixed_ips[0].ip_address as string;
    const until = async (f: () => Promise<boolean>) => {
      for (let i = 0; i < 100 && !(await f()); i++) await new Promise((r) => setTimeout(r, 20));
    };
    await until(async () => (await query("hello.openstack.local", "A")).answers?.length === 1);
    const a = await query("hello.openstack.local", "A");
    assert.equal(a.id, 7);
    assert.equal(rcodeOf(a), "NOERROR");
    assert.ok((a.flags! & dnsPacket.AUTHORITATIVE_ANSWER) !== 0, "authoritative");
    assert.deepEqual(a.answers!.map((x) => (x as { data: string }).data), [ip]);
    const ptr = await query(`${ip.split(".").reverse().join(".")}.in-addr.arpa`, "PTR");
    assert.deepEqual(ptr.answers!.map((x) => (x as { data: string }).data), ["hello.openstack.local"]);
    await admin.put(`/v2.0/ports/${port.id}`, { port: { dns_name: "world" } });
    await until(async () => (await query("world.openstack.local", "A")).answers?.length === 1);
    assert.equal((await query("world.openstack.local", "A")).answers!.length, 1);
    assert.equal(rcodeOf(await query("hello.openstack.local", "A")), "NXDOMAIN");
    assert.equal(rcodeOf(await query("example.com", "A")), "REFUSED");
    // the network's domain changes: its ports' names move with it
    expectStatus(await admin.put(`/v2.0/networks/${net.id}`, { network: { dns_domain: "example.org." } }), 200);
    await until(async () => (await query("world.example.org", "A")).answers?.length === 1);
    assert.deepEqual((await query("world.example.org", "A")).answers!.map((x) => (x as { data: string }).data), [ip]);
  });
});
