// The overlay on real namespaces: an "underlay" namespace with a bridge, three node namespaces
// attached to it by veth (eth0 172.31.250.1N/24), and in each node a fake pod (its own namespace,
// 10.244.N.2/24, default route via 10.244.N.1 on the node's end of the veth). The nodes get no
// default route, so nothing can leave these namespaces. Node objects are built by hand as the
// API would serve them, and each node's Overlay runs inside its namespace via `netns`.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inNetns, run, runJson } from "../../agent/exec.ts";
import { VTEP_MAC_ANNOTATION } from "../../agent/overlay/desired.ts";
import { Overlay } from "../../agent/overlay/overlay.ts";
import type { NodeObject } from "../../emulator/types.ts";

const CLUSTER = "10.244.0.0/16";
const PREFIX = `kemu-t-ovl-${randomBytes(3).toString("hex")}`;
const UNDERLAY = `${PREFIX}-u`;
const N = [1, 2, 3];
const nodeNs = (i: number) => `${PREFIX}-n${i}`;
const podNs = (i: number) => `${PREFIX}-p${i}`;
const nodeIP = (i: number) => `172.31.250.${10 + i}`;
const podCIDR = (i: number) => `10.244.${i}.0/24`;
const podIP = (i: number) => `10.244.${i}.2`;

const created: string[] = [];
const children = new Set<ChildProcess>();
const logs: string[] = [];

async function sh(ns: string | undefined, ...argv: string[]) {
  return run(argv, ns ? { netns: ns } : {});
}

async function addNetns(name: string): Promise<void> {
  await run(["ip", "netns", "add", name]);
  created.push(name);
  await sh(name, "ip", "link", "set", "lo", "up");
}

async function buildTopology(): Promise<void> {
  await addNetns(UNDERLAY);
  await sh(UNDERLAY, "ip", "link", "add", "br0", "type", "bridge");
  await sh(UNDERLAY, "ip", "link", "set", "br0", "up");
  for (const i of N) {
    const node = nodeNs(i);
    const pod = podNs(i);
    await addNetns(node);
    await addNetns(pod);
    await sh(UNDERLAY, "ip", "link", "add", `n${i}`, "type", "veth", "peer", "name", "eth0", "netns", node);
    await sh(UNDERLAY, "ip", "link", "set", `n${i}`, "master", "br0", "up");
    await sh(node, "ip", "addr", "add", `${nodeIP(i)}/24`, "dev", "eth0");
    await sh(node, "ip", "link", "set", "eth0", "up");
    await sh(
      node,
      "ip",
      "link",
      "add",
      "pod0",
      "mtu",
      "1450",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      pod,
    );
    await sh(node, "ip", "addr", "add", `10.244.${i}.1/24`, "dev", "pod0");
    await sh(node, "ip", "link", "set", "pod0", "up");
    await sh(pod, "ip", "link", "set", "eth0", "mtu", "1450", "up");
    await sh(pod, "ip", "addr", "add", `${podIP(i)}/24`, "dev", "eth0");
    await sh(pod, "ip", "route", "add", "default", "via", `10.244.${i}.1`);
  }
}

function nodeObject(i: number, mac?: string, extra: Partial<{ ip: string; cidr: string }> = {}): NodeObject {
  return {
    metadata: {
      name: `node-${i}`,
      annotations: mac ? { [VTEP_MAC_ANNOTATION]: JSON.stringify({ VtepMAC: mac }) } : {},
    },
    spec: { podCIDR: extra.cidr ?? podCIDR(i) },
    status: { addresses: [{ type: "InternalIP", address: extra.ip ?? nodeIP(i) }] },
  };
}

function self(i: number, mac?: string) {
  return { name: `node-${i}`, underlayIP: nodeIP(i), podCIDR: podCIDR(i), vtepMAC: mac };
}

function overlay(i: number, mode: "vxlan" | "host-gw"): Overlay {
  return new Overlay({
    mode,
    clusterCidr: CLUSTER,
    underlayDevice: "eth0",
    netns: nodeNs(i),
    log: (m) => logs.push(`${nodeNs(i)}: ${m}`),
  });
}

async function ping(fromNs: string, to: string, ...flags: string[]): Promise<boolean> {
  const r = await run(["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2", ...flags, to], {
    netns: fromNs,
    allowFail: true,
  });
  return r.code === 0;
}

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
}
const routes = (i: number) => runJson<Route[]>(["ip", "-j", "route", "show"], { netns: nodeNs(i) });
const neighs = (i: number) =>
  runJson<{ dst: string; lladdr?: string; state?: string[] }[]>(
    ["ip", "-j", "neigh", "show", "dev", "kemu.1"],
    {
      netns: nodeNs(i),
    },
  );
const fdb = (i: number) =>
  runJson<{ mac: string; dst?: string; state?: string }[]>(["bridge", "-j", "fdb", "show", "dev", "kemu.1"], {
    netns: nodeNs(i),
  });
async function link(i: number): Promise<any | undefined> {
  const r = await run(["ip", "-j", "-d", "link", "show", "dev", "kemu.1"], {
    netns: nodeNs(i),
    allowFail: true,
  });
  return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
}

/** Starts tcpdump for one packet and resolves once it is listening; `done` resolves with its output. */
async function capture(ns: string, filter: string[]): Promise<{ done: Promise<string>; stop: () => void }> {
  const argv = inNetns(ns, ["tcpdump", "-l", "-n", "-i", "eth0", "-c", "1", "-T", "vxlan", ...filter]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  const done = new Promise<string>((resolve) =>
    child.once("exit", () => {
      children.delete(child);
      resolve(out);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    child.stderr!.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited: ${err}`));
    });
  });
  return { done, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, "SIGTERM");
  }
}

describe("overlay on real namespaces (needs root)", () => {
  const macs: Record<number, string> = {};
  const vxlan: Record<number, Overlay> = {};
  const all = () => N.map((i) => nodeObject(i, macs[i]));

  beforeAll(async () => {
    await buildTopology();
  });

  afterAll(async () => {
    for (const child of children) stopChild(child);
    for (const ns of created.reverse()) await run(["ip", "netns", "del", ns], { allowFail: true });
  });

  describe("vxlan", () => {
    it("creates kemu.1 (VNI 1, port 8472, nolearning, MTU - 50, podCIDR network /32) and enables forwarding", async () => {
      for (const i of N) {
        vxlan[i] = overlay(i, "vxlan");
        const mac = await vxlan[i].ensureDevice({ underlayIP: nodeIP(i), podCIDR: podCIDR(i), mtu: 1500 });
        expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        macs[i] = mac!;
        const l = await link(i);
        expect(l.address).toBe(mac);
        expect(l.mtu).toBe(1450);
        expect(l.flags).toContain("UP");
        expect(l.linkinfo.info_kind).toBe("vxlan");
        expect(l.linkinfo.info_data).toMatchObject({ id: 1, local: nodeIP(i), port: 8472, learning: false });
        const addrs = await runJson<any[]>(["ip", "-j", "addr", "show", "dev", "kemu.1"], {
          netns: nodeNs(i),
        });
        expect(addrs[0].addr_info.filter((a: any) => a.family === "inet")).toMatchObject([
          { local: `10.244.${i}.0`, prefixlen: 32 },
        ]);
        const fwd = await sh(nodeNs(i), "cat", "/proc/sys/net/ipv4/ip_forward");
        expect(fwd.stdout.trim()).toBe("1");
      }
      expect(new Set(Object.values(macs)).size).toBe(3);
    });

    it("programs one route, neigh and fdb entry per peer and leaves other routes alone", async () => {
      // Routes the overlay does not own: inside the cluster CIDR on another device, and outside it.
      await sh(nodeNs(1), "ip", "route", "add", "10.244.99.0/24", "dev", "pod0");
      await sh(nodeNs(1), "ip", "route", "add", "192.168.77.0/24", "via", nodeIP(2), "dev", "eth0");
      for (const i of N) {
        const lines = await vxlan[i].sync(self(i, macs[i]), all());
        expect(lines).toHaveLength(6);
        const peers = N.filter((j) => j !== i);
        const r = await routes(i);
        for (const j of peers) {
          expect(r).toContainEqual(
            expect.objectContaining({
              dst: podCIDR(j),
              gateway: `10.244.${j}.0`,
              dev: "kemu.1",
              flags: ["onlink"],
            }),
          );
        }
        expect(r.some((x) => x.dst === "default")).toBe(false);
        expect((await neighs(i)).map((n) => [n.dst, n.lladdr, n.state]).sort()).toEqual(
          peers.map((j) => [`10.244.${j}.0`, macs[j], ["PERMANENT"]]),
        );
        expect((await fdb(i)).map((f) => [f.mac, f.dst, f.state]).sort()).toEqual(
          peers.map((j) => [macs[j], nodeIP(j), "permanent"]).sort(),
        );
      }
      const r1 = await routes(1);
      expect(r1).toContainEqual(expect.objectContaining({ dst: "10.244.99.0/24", dev: "pod0" }));
      expect(r1).toContainEqual(expect.objectContaining({ dst: "192.168.77.0/24", gateway: nodeIP(2) }));
    });

    it("carries pod-to-pod traffic across nodes inside VXLAN on the underlay", async () => {
      const cap = await capture(nodeNs(2), ["udp", "port", "8472", "and", "src", nodeIP(1)]);
      try {
        expect(await ping(podNs(1), podIP(2))).toBe(true);
        const out = await Promise.race([
          cap.done,
          new Promise<string>((_, reject) =>
            setTimeout(() => reject(new Error("no VXLAN packet seen")), 5000),
          ),
        ]);
        expect(out).toContain(`${nodeIP(1)}.`);
        expect(out).toContain(`> ${nodeIP(2)}.8472`);
        expect(out).toMatch(/VXLAN.*vni 1/);
        expect(out).toContain(`${podIP(1)} > ${podIP(2)}`);
      } finally {
        cap.stop();
      }
      for (const [a, b] of [
        [1, 3],
        [2, 3],
        [3, 1],
      ]) {
        expect(await ping(podNs(a), podIP(b)), `pod ${a} -> pod ${b}`).toBe(true);
      }
      // The node itself reaches remote pods too (sourced from its kemu.1 address).
      expect(await ping(nodeNs(1), podIP(3))).toBe(true);
    });

    it("passes a 1400-byte payload with DF set (inner MTU 1450 fits the 1500 underlay)", async () => {
      expect(await ping(podNs(1), podIP(2), "-M", "do", "-s", "1400")).toBe(true);
      expect(await ping(nodeNs(2), podIP(3), "-M", "do", "-s", "1422")).toBe(true);
    });

    it("writes nothing on a sync with no changes", async () => {
      for (const i of N) expect(await vxlan[i].sync(self(i, macs[i]), all())).toEqual([]);
    });

    it("a restarted agent reuses kemu.1 with the same MAC and has nothing to write", async () => {
      const again = overlay(1, "vxlan");
      const mac = await again.ensureDevice({ underlayIP: nodeIP(1), podCIDR: podCIDR(1), mtu: 1500 });
      expect(mac).toBe(macs[1]);
      expect(await again.sync(self(1, mac), all())).toEqual([]);
      vxlan[1] = again;
    });

    it("removes a departed peer's route, neigh and fdb on the next sync", async () => {
      const lines = await vxlan[1].sync(self(1, macs[1]), all().slice(0, 2));
      expect(lines).toEqual([
        `route del ${podCIDR(3)} via 10.244.3.0 dev kemu.1`,
        "neigh del 10.244.3.0 dev kemu.1",
        `fdb del ${macs[3]} dev kemu.1 dst ${nodeIP(3)} self`,
      ]);
      expect((await routes(1)).some((r) => r.dst === podCIDR(3))).toBe(false);
      expect((await neighs(1)).some((n) => n.dst === "10.244.3.0")).toBe(false);
      expect((await fdb(1)).some((f) => f.mac === macs[3])).toBe(false);
      expect(await ping(podNs(1), podIP(3), "-c", "1", "-W", "1")).toBe(false);
      // The unrelated routes are still there.
      expect((await routes(1)).map((r) => r.dst)).toEqual(
        expect.arrayContaining(["10.244.99.0/24", "192.168.77.0/24"]),
      );
      // Back again.
      expect(await vxlan[1].sync(self(1, macs[1]), all())).toHaveLength(3);
      expect(await ping(podNs(1), podIP(3))).toBe(true);
    });

    it("recreates a kemu.1 that cannot be reused (learning on), keeping its MAC", async () => {
      await sh(nodeNs(3), "ip", "link", "del", "kemu.1");
      await sh(
        nodeNs(3),
        ..."ip link add kemu.1 type vxlan id 1 local".split(" "),
        nodeIP(3),
        ..."dev eth0 dstport 8472 learning".split(" "),
      );
      const o = overlay(3, "vxlan");
      const mac = await o.ensureDevice({ underlayIP: nodeIP(3), podCIDR: podCIDR(3), mtu: 1500 });
      expect(logs.some((l) => l.includes("recreating kemu.1: learning is on"))).toBe(true);
      expect(mac).toBe(macs[3]);
      expect((await link(3)).linkinfo.info_data.learning).toBe(false);
      expect(await o.sync(self(3, mac), all())).toHaveLength(6);
      expect(await ping(podNs(3), podIP(1))).toBe(true);
      vxlan[3] = o;
    });

    it("sync repairs a deleted kemu.1", async () => {
      await sh(nodeNs(2), "ip", "link", "del", "kemu.1");
      expect(await vxlan[2].sync(self(2, macs[2]), all())).toHaveLength(6);
      expect(logs.some((l) => l.includes("repairing kemu.1: kemu.1 does not exist"))).toBe(true);
      expect((await link(2)).address).toBe(macs[2]);
      expect(await ping(podNs(2), podIP(1))).toBe(true);
    });

    it("cleanup removes kemu.1 and the overlay's routes", async () => {
      await vxlan[3].cleanup();
      expect(await link(3)).toBeUndefined();
      expect((await routes(3)).filter((r) => r.dev === "kemu.1" || r.dst.startsWith("10.244.1."))).toEqual(
        [],
      );
      expect(await ping(podNs(3), podIP(1), "-c", "1", "-W", "1")).toBe(false);
    });
  });

  describe("host-gw", () => {
    const hostGw: Record<number, Overlay> = {};
    // A node on another subnet: not L2-adjacent, so host-gw must skip it.
    const far = () => [...N.map((i) => nodeObject(i)), nodeObject(9, undefined, { ip: "172.29.0.5" })];

    it("uses no kemu.1 (removing a leftover one) and routes via the peers' underlay IPs", async () => {
      for (const i of N) {
        hostGw[i] = overlay(i, "host-gw");
        expect(await hostGw[i].ensureDevice({ underlayIP: nodeIP(i), podCIDR: podCIDR(i), mtu: 1500 })).toBe(
          undefined,
        );
        expect(await link(i)).toBeUndefined();
        const lines = await hostGw[i].sync(self(i), far());
        const peers = N.filter((j) => j !== i);
        expect(lines.filter((l) => l.startsWith("route replace"))).toEqual(
          peers.map((j) => `route replace ${podCIDR(j)} via ${nodeIP(j)} dev eth0`),
        );
        const r = await routes(i);
        for (const j of peers) {
          expect(r).toContainEqual(
            expect.objectContaining({ dst: podCIDR(j), gateway: nodeIP(j), dev: "eth0" }),
          );
        }
        expect(r.some((x) => x.dst === "10.244.9.0/24" || x.dst === "default" || x.dev === "kemu.1")).toBe(
          false,
        );
      }
      expect(logs.some((l) => l.includes("skipping node node-9: host-gw needs L2 adjacency"))).toBe(true);
    });

    it("carries pod-to-pod traffic with no encapsulation", async () => {
      const cap = await capture(nodeNs(2), ["icmp", "and", "src", podIP(1)]);
      try {
        expect(await ping(podNs(1), podIP(2))).toBe(true);
        const out = await Promise.race([
          cap.done,
          new Promise<string>((_, reject) =>
            setTimeout(() => reject(new Error("no ICMP packet seen")), 5000),
          ),
        ]);
        expect(out).toContain(`${podIP(1)} > ${podIP(2)}: ICMP echo request`);
      } finally {
        cap.stop();
      }
      expect(await ping(podNs(3), podIP(1), "-M", "do", "-s", "1400")).toBe(true);
      expect(await ping(podNs(2), podIP(3))).toBe(true);
    });

    it("writes nothing on a sync with no changes", async () => {
      for (const i of N) expect(await hostGw[i].sync(self(i), far())).toEqual([]);
    });

    it("cleanup removes the routes via the underlay and nothing else", async () => {
      for (const i of N) await hostGw[i].cleanup();
      const r1 = await routes(1);
      expect(r1.filter((r) => r.gateway?.startsWith("172.31.250.") && r.dst.startsWith("10.244."))).toEqual(
        [],
      );
      expect(r1).toContainEqual(expect.objectContaining({ dst: "10.244.99.0/24", dev: "pod0" }));
      expect(r1).toContainEqual(expect.objectContaining({ dst: "192.168.77.0/24", gateway: nodeIP(2) }));
      expect(r1).toContainEqual(expect.objectContaining({ dst: podCIDR(1), dev: "pod0" }));
      expect(await ping(podNs(1), podIP(2), "-c", "1", "-W", "1")).toBe(false);
    });
  });
});
