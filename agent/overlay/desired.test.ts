import { describe, expect, it } from "vitest";
import type { NodeObject } from "../../emulator/types.ts";
import {
  type ActualState,
  desiredRecords,
  type IpLinkDetail,
  isBridgeLine,
  type PlanOptions,
  parseVtepMAC,
  planSync,
  type SelfNode,
  VTEP_MAC_ANNOTATION,
  vtepMACFor,
  vtepReuseProblem,
} from "./desired.ts";

const CLUSTER = "10.244.0.0/16";
const self: SelfNode = {
  name: "n1",
  underlayIP: "172.30.0.11",
  podCIDR: "10.244.1.0/24",
  vtepMAC: "02:6b:ac:1e:00:0b",
};
const vxlanOpts = { mode: "vxlan" as const, clusterCidr: CLUSTER, underlayDevice: "eth0" };
const hostGwOpts = { ...vxlanOpts, mode: "host-gw" as const, underlaySubnet: "172.30.0.0/24" };
const plan: PlanOptions = { clusterCidr: CLUSTER, podCIDR: self.podCIDR, underlayDevice: "eth0" };

function node(
  name: string,
  i: number,
  extra: { mac?: string | null; ip?: string; cidr?: string } = {},
): NodeObject {
  const mac = extra.mac === undefined ? `aa:bb:cc:00:00:0${i}` : extra.mac;
  return {
    metadata: {
      name,
      annotations: mac === null ? {} : { [VTEP_MAC_ANNOTATION]: JSON.stringify({ VtepMAC: mac }) },
    },
    spec: { podCIDR: extra.cidr ?? `10.244.${i}.0/24` },
    status: {
      addresses: [
        { type: "Hostname", address: name },
        { type: "InternalIP", address: extra.ip ?? `172.30.0.${10 + i}` },
      ],
    },
  };
}

const nodes = [node("n1", 1), node("n2", 2), node("n3", 3)];

describe("parseVtepMAC", () => {
  it("reads flannel-style backend data and lower-cases the MAC", () => {
    expect(parseVtepMAC('{"VtepMAC":"AA:BB:CC:DD:EE:01"}')).toBe("aa:bb:cc:dd:ee:01");
  });
  it("rejects missing, malformed, zero and multicast MACs", () => {
    for (const bad of [undefined, "", "not json", "null", '{"VtepMAC":1}', '{"VtepMAC":"aa:bb"}']) {
      expect(parseVtepMAC(bad)).toBeUndefined();
    }
    expect(parseVtepMAC('{"VtepMAC":"00:00:00:00:00:00"}')).toBeUndefined();
    expect(parseVtepMAC('{"VtepMAC":"01:00:5e:00:00:01"}')).toBeUndefined();
  });
});

describe("vtepMACFor", () => {
  it("is a locally administered unicast MAC carrying the underlay IPv4", () => {
    expect(vtepMACFor("172.30.0.11")).toBe("02:6b:ac:1e:00:0b");
    expect(parseVtepMAC(JSON.stringify({ VtepMAC: vtepMACFor("10.0.0.1") }))).toBe("02:6b:0a:00:00:01");
  });
});

describe("desiredRecords", () => {
  it("vxlan: one neigh, fdb and onlink route per peer, self excluded", () => {
    const d = desiredRecords(self, nodes, vxlanOpts);
    expect(d.skipped).toEqual([]);
    expect(d.peers).toEqual([
      {
        node: "n2",
        underlayIP: "172.30.0.12",
        podCIDR: "10.244.2.0/24",
        neigh: { dst: "10.244.2.0", lladdr: "aa:bb:cc:00:00:02", dev: "kemu.1" },
        fdb: { mac: "aa:bb:cc:00:00:02", dst: "172.30.0.12", dev: "kemu.1" },
        route: { dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "kemu.1", onlink: true },
      },
      {
        node: "n3",
        underlayIP: "172.30.0.13",
        podCIDR: "10.244.3.0/24",
        neigh: { dst: "10.244.3.0", lladdr: "aa:bb:cc:00:00:03", dev: "kemu.1" },
        fdb: { mac: "aa:bb:cc:00:00:03", dst: "172.30.0.13", dev: "kemu.1" },
        route: { dst: "10.244.3.0/24", gateway: "10.244.3.0", dev: "kemu.1", onlink: true },
      },
    ]);
  });

  it("host-gw: a route via the peer's underlay IP on the underlay device, no L2 records", () => {
    const d = desiredRecords(self, nodes, hostGwOpts);
    expect(d.peers.map((p) => [p.route, p.neigh, p.fdb])).toEqual([
      [{ dst: "10.244.2.0/24", gateway: "172.30.0.12", dev: "eth0", onlink: false }, undefined, undefined],
      [{ dst: "10.244.3.0/24", gateway: "172.30.0.13", dev: "eth0", onlink: false }, undefined, undefined],
    ]);
  });

  it("host-gw skips peers that are not on the underlay subnet (no L2 adjacency)", () => {
    const d = desiredRecords(self, [...nodes, node("far", 9, { ip: "172.29.5.5" })], hostGwOpts);
    expect(d.peers.map((p) => p.node)).toEqual(["n2", "n3"]);
    expect(d.skipped).toEqual([
      { node: "far", reason: expect.stringContaining("host-gw needs L2 adjacency") },
    ]);
  });

  it("skips nodes being deleted or missing data, with a reason each", () => {
    const deleting = node("del", 4);
    deleting.metadata.deletionTimestamp = "2025-01-01T00:00:00Z";
    const noCidr = node("nocidr", 5);
    noCidr.spec = {};
    const noIP = node("noip", 6);
    noIP.status = { addresses: [{ type: "InternalIP", address: "fd00::6" }] };
    const d = desiredRecords(
      self,
      [
        ...nodes,
        deleting,
        noCidr,
        noIP,
        node("nomac", 7, { mac: null }),
        node("badmac", 8, { mac: "zz" }),
        node("outside", 9, { cidr: "10.99.0.0/24" }),
        node("overlap-self", 10, { cidr: "10.244.1.0/25" }),
        node("overlap-peer", 11, { cidr: "10.244.2.0/24" }),
        node("v6", 12, { cidr: "fd00:10::/64" }),
        node("dup-ip", 13, { ip: self.underlayIP }),
      ],
      vxlanOpts,
    );
    expect(d.peers.map((p) => p.node)).toEqual(["n2", "n3"]);
    const reasons = Object.fromEntries(d.skipped.map((s) => [s.node, s.reason]));
    expect(reasons).toEqual({
      del: "being deleted",
      nocidr: "no spec.podCIDR yet",
      noip: "no IPv4 InternalIP in status.addresses yet",
      nomac: expect.stringContaining("no usable VTEP MAC"),
      badmac: expect.stringContaining("no usable VTEP MAC"),
      outside: expect.stringContaining("outside the cluster CIDR"),
      "overlap-self": expect.stringContaining("overlaps this node's"),
      "overlap-peer": expect.stringContaining("overlaps node n2's"),
      v6: expect.stringContaining("not an IPv4 CIDR"),
      "dup-ip": expect.stringContaining("this node's own"),
    });
  });
});

/** What the kernel shows once the vxlan records for `peers` are in place (plus unrelated routes). */
function converged(peers = desiredRecords(self, nodes, vxlanOpts).peers): ActualState {
  return {
    routes: [
      { dst: "172.30.0.0/24", dev: "eth0", protocol: "kernel", flags: [] },
      { dst: "10.244.1.0/24", dev: "cni0", protocol: "kernel" },
      ...peers.map((p) => ({
        dst: p.route.dst,
        gateway: p.route.gateway,
        dev: p.route.dev,
        flags: p.route.onlink ? ["onlink"] : [],
      })),
    ],
    neighs: peers.flatMap((p) =>
      p.neigh ? [{ dst: p.neigh.dst, lladdr: p.neigh.lladdr, state: ["PERMANENT"] }] : [],
    ),
    fdb: peers.flatMap((p) =>
      p.fdb ? [{ mac: p.fdb.mac, dst: p.fdb.dst, flags: ["self"], state: "permanent" }] : [],
    ),
  };
}

describe("planSync", () => {
  const desired = desiredRecords(self, nodes, vxlanOpts).peers;

  it("writes neigh -> fdb -> route with replace on an empty node", () => {
    const lines = planSync(desired, { routes: [], neighs: [], fdb: [] }, plan);
    expect(lines).toEqual([
      "neigh replace 10.244.2.0 lladdr aa:bb:cc:00:00:02 dev kemu.1 nud permanent",
      "neigh replace 10.244.3.0 lladdr aa:bb:cc:00:00:03 dev kemu.1 nud permanent",
      "fdb replace aa:bb:cc:00:00:02 dev kemu.1 dst 172.30.0.12 self permanent",
      "fdb replace aa:bb:cc:00:00:03 dev kemu.1 dst 172.30.0.13 self permanent",
      "route replace 10.244.2.0/24 via 10.244.2.0 dev kemu.1 onlink",
      "route replace 10.244.3.0/24 via 10.244.3.0 dev kemu.1 onlink",
    ]);
    expect(lines.filter(isBridgeLine)).toHaveLength(2);
  });

  it("writes nothing when the kernel already matches", () => {
    expect(planSync(desired, converged(), plan)).toEqual([]);
  });

  it("host-gw writes only routes, and nothing once converged", () => {
    const hg = desiredRecords(self, nodes, hostGwOpts).peers;
    expect(planSync(hg, { routes: [], neighs: [], fdb: [] }, plan)).toEqual([
      "route replace 10.244.2.0/24 via 172.30.0.12 dev eth0",
      "route replace 10.244.3.0/24 via 172.30.0.13 dev eth0",
    ]);
    expect(planSync(hg, converged(hg), plan)).toEqual([]);
  });

  it("removes a departed peer's route, neigh and fdb (route first)", () => {
    const remaining = desired.filter((p) => p.node !== "n3");
    expect(planSync(remaining, converged(), plan)).toEqual([
      "route del 10.244.3.0/24 via 10.244.3.0 dev kemu.1",
      "neigh del 10.244.3.0 dev kemu.1",
      "fdb del aa:bb:cc:00:00:03 dev kemu.1 dst 172.30.0.13 self",
    ]);
  });

  it("rewrites entries that changed (new MAC, new underlay IP)", () => {
    const moved = desiredRecords(
      self,
      [node("n2", 2, { mac: "aa:bb:cc:00:00:22" }), node("n3", 3, { ip: "172.30.0.33" })],
      vxlanOpts,
    ).peers;
    expect(planSync(moved, converged(), plan)).toEqual(
      [
        "fdb del aa:bb:cc:00:00:02 dev kemu.1 dst 172.30.0.12 self",
        "fdb del aa:bb:cc:00:00:03 dev kemu.1 dst 172.30.0.13 self",
        "neigh replace 10.244.2.0 lladdr aa:bb:cc:00:00:22 dev kemu.1 nud permanent",
        "fdb replace aa:bb:cc:00:00:22 dev kemu.1 dst 172.30.0.12 self permanent",
        "fdb replace aa:bb:cc:00:00:03 dev kemu.1 dst 172.30.0.33 self permanent",
      ].sort((a, b) => order(a) - order(b)),
    );
  });

  it("switching vxlan -> host-gw replaces the stale kemu.1 routes", () => {
    const hg = desiredRecords(self, nodes, hostGwOpts).peers;
    const actual = converged();
    expect(planSync(hg, { ...actual, neighs: [], fdb: [] }, plan)).toEqual([
      "route del 10.244.2.0/24 via 10.244.2.0 dev kemu.1",
      "route del 10.244.3.0/24 via 10.244.3.0 dev kemu.1",
      "route replace 10.244.2.0/24 via 172.30.0.12 dev eth0",
      "route replace 10.244.3.0/24 via 172.30.0.13 dev eth0",
    ]);
  });

  it("never touches routes it does not own", () => {
    const actual: ActualState = {
      routes: [
        { dst: "default", gateway: "172.30.0.1", dev: "eth0" },
        { dst: "10.244.1.0/24", gateway: "172.30.0.99", dev: "eth0" }, // our own podCIDR
        { dst: "10.244.1.128/25", dev: "kemu.1" }, // inside our own podCIDR
        { dst: "10.244.50.0/24", dev: "cni1" }, // another device
        { dst: "10.244.51.0/24", dev: "eth0" }, // on the underlay but not via a gateway
        { dst: "10.244.52.0/24", gateway: "172.30.0.9", dev: "eth0", protocol: "kernel" },
        { dst: "10.244.53.0/24", type: "blackhole" },
        { dst: "192.168.7.0/24", gateway: "172.30.0.7", dev: "eth0" }, // outside the cluster CIDR
        { dst: "192.168.8.0/24", dev: "kemu.1" },
        { dst: "fd00::/64", dev: "kemu.1" },
      ],
      neighs: [
        { dst: "10.244.9.5", lladdr: "aa:aa:aa:aa:aa:aa", state: ["REACHABLE"] }, // kernel-managed
        { dst: "10.244.9.6", state: ["FAILED"] },
      ],
      fdb: [],
    };
    expect(planSync([], actual, plan)).toEqual([]);
  });

  it("removes stale owned routes on kemu.1 and via the underlay, and stale permanent entries", () => {
    const actual: ActualState = {
      routes: [
        { dst: "10.244.7.0/24", gateway: "10.244.7.0", dev: "kemu.1", flags: ["onlink"] },
        { dst: "10.244.8.0/24", gateway: "172.30.0.18", dev: "eth0" },
        { dst: "10.244.9.5", dev: "kemu.1" },
      ],
      neighs: [{ dst: "10.244.7.0", lladdr: "aa:aa:aa:aa:aa:07", state: ["PERMANENT"] }],
      fdb: [{ mac: "AA:AA:AA:AA:AA:07", dst: "172.30.0.17", flags: ["self"], state: "permanent" }],
    };
    expect(planSync([], actual, plan)).toEqual([
      "route del 10.244.7.0/24 via 10.244.7.0 dev kemu.1",
      "route del 10.244.8.0/24 via 172.30.0.18 dev eth0",
      "route del 10.244.9.5/32 dev kemu.1",
      "neigh del 10.244.7.0 dev kemu.1",
      "fdb del aa:aa:aa:aa:aa:07 dev kemu.1 dst 172.30.0.17 self",
    ]);
  });

  it("fixes a wrong route for a wanted prefix and a missing onlink flag", () => {
    const actual = converged();
    actual.routes = actual.routes.map((r) =>
      r.dst === "10.244.2.0/24" ? { ...r, gateway: "172.30.0.12", dev: "eth0", flags: [] } : r,
    );
    actual.routes = actual.routes.map((r) => (r.dst === "10.244.3.0/24" ? { ...r, flags: [] } : r));
    expect(planSync(desired, actual, plan)).toEqual([
      "route del 10.244.2.0/24 via 172.30.0.12 dev eth0",
      "route del 10.244.3.0/24 via 10.244.3.0 dev kemu.1",
      "route replace 10.244.2.0/24 via 10.244.2.0 dev kemu.1 onlink",
      "route replace 10.244.3.0/24 via 10.244.3.0 dev kemu.1 onlink",
    ]);
  });

  it("refuses to write a default route or anything outside the cluster CIDR", () => {
    const bad = { ...desired[0], route: { ...desired[0].route, dst: "0.0.0.0/0" } };
    expect(() => planSync([bad], { routes: [], neighs: [], fdb: [] }, plan)).toThrow(/refusing to route/);
    const outside = { ...desired[0], route: { ...desired[0].route, dst: "10.99.0.0/24" } };
    expect(() => planSync([outside], { routes: [], neighs: [], fdb: [] }, plan)).toThrow(/refusing/);
  });
});

function order(line: string): number {
  return ["route del", "neigh del", "neigh replace", "fdb del", "fdb replace", "route replace"].findIndex(
    (p) => line.startsWith(p),
  );
}

describe("vtepReuseProblem", () => {
  const want = { underlayIP: "172.30.0.11", underlayDevice: "eth0" };
  const good: IpLinkDetail = {
    ifname: "kemu.1",
    address: "02:6b:ac:1e:00:0b",
    mtu: 1450,
    flags: ["UP"],
    linkinfo: {
      info_kind: "vxlan",
      info_data: { id: 1, local: "172.30.0.11", link: "eth0", port: 8472, learning: false },
    },
  };
  const withData = (d: object): IpLinkDetail => ({
    ...good,
    linkinfo: { ...good.linkinfo, info_data: { ...good.linkinfo!.info_data, ...d } },
  });

  it("reuses a matching device whatever its MTU or state", () => {
    expect(vtepReuseProblem(good, want)).toBeUndefined();
    expect(vtepReuseProblem({ ...good, mtu: 1500, flags: [] }, want)).toBeUndefined();
  });

  it("names why a device must be recreated", () => {
    expect(vtepReuseProblem(undefined, want)).toBe("kemu.1 does not exist");
    expect(vtepReuseProblem({ ...good, linkinfo: { info_kind: "bridge" } }, want)).toBe(
      "kemu.1 is a bridge device, not vxlan",
    );
    expect(vtepReuseProblem({ ...good, linkinfo: undefined }, want)).toBe(
      "kemu.1 is a plain device, not vxlan",
    );
    expect(vtepReuseProblem(withData({ id: 2 }), want)).toBe("VNI is 2, want 1");
    expect(vtepReuseProblem(withData({ local: "172.30.0.99" }), want)).toBe(
      "local IP is 172.30.0.99, want 172.30.0.11",
    );
    expect(vtepReuseProblem(withData({ port: 4789 }), want)).toBe("UDP port is 4789, want 8472");
    expect(vtepReuseProblem(withData({ learning: true }), want)).toBe("learning is on, want nolearning");
    expect(vtepReuseProblem(withData({ link: "eth1" }), want)).toBe("underlay device is eth1, want eth0");
  });
});
