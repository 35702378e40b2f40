// kube-proxy's nftables mode on real namespaces: a "node" namespace with a bridge (10.244.8.1/24)
// and an uplink to an "outside" namespace (172.31.8.1 ↔ .2), three "pod" namespaces on the bridge
// running agnhost netexec (each in its own UTS namespace through kemu-init, so /hostname tells
// them apart) and a client pod. The node forwards, passes bridged frames through netfilter
// (br_netfilter), and routes the service range into a dead-end veth as a real node's default route
// would, so that packets to a ClusterIP without endpoints reach the forward hook and are
// rejected. NftablesProxier programs the node; a small Node client run inside the client, pod or
// outside namespace makes the requests. No namespace has a default route out of the test: traffic
// stays inside these namespaces. Needs root, nft, gcc, busybox and br_netfilter.

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inNetns, run } from "../../agent/exec.ts";
import type { EndpointInfo, ProxyState, ServicePortInfo } from "../../agent/proxy/model.ts";
import { NftablesProxier, NftablesUnavailableError } from "../../agent/proxy/nftables/proxier.ts";

const isRoot = process.getuid?.() === 0;
const hasBrNetfilter = existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables");
const ROOT = new URL("../../", import.meta.url).pathname;

const P = `kemu-t-nft-${randomBytes(3).toString("hex")}`;
const NODE = `${P}-node`;
const OUTSIDE = `${P}-out`;
const CLIENT = `${P}-client`;
const PODS = [1, 2, 3];
const podNs = (i: number) => `${P}-pod${i}`;
const podIP = (i: number) => `10.244.8.1${i}`;
const CLIENT_IP = "10.244.8.20";
const BRIDGE_IP = "10.244.8.1";
const NODE_IP = "172.31.8.1";
const OUTSIDE_IP = "172.31.8.2";
const CLUSTER_IP = "10.96.8.10";
const HAIRPIN_IP = "10.96.8.11";
const NODE_PORT = 30080;

/** The client: one operation per invocation, JSON on stdout; `hold` keeps one connection. */
const CLIENT_JS = `
import http from "node:http";
import readline from "node:readline";
const [op, url, n] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + "\\n");
function get(u, agent = false) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const req = http.get(u, { agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body, port: req.socket?.localPort, reused: req.reusedSocket }));
    });
    req.on("error", (e) => resolve({ error: e.code ?? e.message, ms: Date.now() - t0 }));
    req.setTimeout(5000, () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
  });
}
if (op === "get") out(await get(url));
if (op === "many") {
  const res = [];
  for (let i = 0; i < Number(n); i++) res.push(await get(url));
  out(res.map((r) => r.body ?? "ERR:" + r.error));
}
if (op === "hold") {
  // One kept-alive connection: a request per line read, until stdin closes.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for await (const _ of readline.createInterface({ input: process.stdin })) out(await get(url, agent));
  agent.destroy();
}
`;

let dir = "";
const namespaces: string[] = [];
const children = new Set<ChildProcessWithoutNullStreams | ReturnType<typeof spawn>>();
let proxier: NftablesProxier;

const sh = (ns: string, ...argv: string[]) => run(argv, { netns: ns });

async function addNetns(name: string): Promise<void> {
  await run(["ip", "netns", "add", name]);
  namespaces.push(name);
  await sh(name, "ip", "link", "set", "lo", "up");
}

/** A namespace on the node's bridge, as the CNI bridge plugin attaches a pod (hairpin on). */
async function attach(ns: string, port: string, ip: string): Promise<void> {
  await addNetns(ns);
  await sh(NODE, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
  await sh(NODE, "ip", "link", "set", port, "master", "br0", "up");
  await sh(NODE, "ip", "link", "set", "dev", port, "type", "bridge_slave", "hairpin", "on");
  await sh(ns, "ip", "addr", "add", `${ip}/24`, "dev", "eth0");
  await sh(ns, "ip", "link", "set", "eth0", "up");
  await sh(ns, "ip", "route", "add", "default", "via", BRIDGE_IP);
}

async function client<T>(ns: string, ...args: string[]): Promise<T> {
  const { stdout } = await run([process.execPath, join(dir, "client.mjs"), ...args], {
    netns: ns,
    timeoutMs: 60_000,
  });
  return JSON.parse(stdout) as T;
}

interface Reply {
  status?: number;
  body?: string;
  port?: number;
  reused?: boolean;
  error?: string;
  ms?: number;
}

/** A client holding one keep-alive connection; `request()` sends one request over it. */
function holdConnection(url: string): { request: () => Promise<Reply>; close: () => void } {
  const argv = inNetns(CLIENT, [process.execPath, join(dir, "client.mjs"), "hold", url]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    request: async () => {
      child.stdin!.write("go\n");
      const { value, done } = await lines.next();
      if (done) throw new Error("client exited");
      return JSON.parse(value) as Reply;
    },
    close: () => child.stdin!.end(),
  };
}

function service(extra: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    namespace: "default",
    name: "web",
    portName: "",
    protocol: "TCP",
    clusterIP: CLUSTER_IP,
    port: 80,
    nodePort: 0,
    loadBalancerIPs: [],
    externalIPs: [],
    affinitySeconds: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    ...extra,
  };
}

function endpoint(i: number): EndpointInfo {
  return { ip: podIP(i), port: 8080, ready: true, serving: true, terminating: false, isLocal: true };
}

/** The web Service on the given pods, plus a hairpin Service on pod 1 alone. */
function state(extra: Partial<ServicePortInfo> = {}, pods = PODS): ProxyState {
  return {
    nodeName: "node-1",
    nodeIPs: [NODE_IP],
    clusterCidr: "10.244.0.0/16",
    services: [
      { service: service(extra), endpoints: pods.map(endpoint) },
      { service: service({ name: "self", clusterIP: HAIRPIN_IP }), endpoints: [endpoint(1)] },
    ],
  };
}

function counts(bodies: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const b of bodies) c[b] = (c[b] ?? 0) + 1;
  return c;
}

describe.skipIf(!isRoot || !hasBrNetfilter)("kube-proxy nftables mode on real namespaces", () => {
  beforeAll(async () => {
    // Not under /tmp: kemu-init gives each container its own /tmp before it starts agnhost.
    dir = mkdtempSync("/var/tmp/kemu-t-nft-");
    await run([join(ROOT, "agent/images/build.sh"), dir], { timeoutMs: 120_000 });
    writeFileSync(join(dir, "client.mjs"), CLIENT_JS);
    writeFileSync(join(dir, "hosts"), "127.0.0.1 localhost\n");
    writeFileSync(join(dir, "resolv.conf"), "");

    await addNetns(NODE);
    await sh(NODE, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
    await sh(NODE, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1");
    await sh(NODE, "ip", "link", "add", "br0", "type", "bridge");
    await sh(NODE, "ip", "addr", "add", `${BRIDGE_IP}/24`, "dev", "br0");
    await sh(NODE, "ip", "link", "set", "br0", "up");
    // The service range is routed (here into a veth pair going nowhere), as a node's default
    // route does.
    await sh(NODE, "ip", "link", "add", "svc0", "type", "veth", "peer", "name", "svc1");
    await sh(NODE, "ip", "link", "set", "svc1", "up");
    await sh(NODE, "ip", "link", "set", "svc0", "up");
    await sh(NODE, "ip", "route", "add", "10.96.0.0/12", "dev", "svc0");

    await addNetns(OUTSIDE);
    await sh(NODE, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE);
    await sh(NODE, "ip", "addr", "add", `${NODE_IP}/24`, "dev", "eth0");
    await sh(NODE, "ip", "link", "set", "eth0", "up");
    await sh(OUTSIDE, "ip", "addr", "add", `${OUTSIDE_IP}/24`, "dev", "eth0");
    await sh(OUTSIDE, "ip", "link", "set", "eth0", "up");

    await attach(CLIENT, "vc", CLIENT_IP);
    for (const i of PODS) {
      await attach(podNs(i), `vp${i}`, podIP(i));
      const shim = spawn(
        join(dir, "kemu-init"),
        [
          ...["--netns", `/run/netns/${podNs(i)}`, "--hosts", join(dir, "hosts")],
          ...["--resolv", join(dir, "resolv.conf"), "--hostname", `pod-${i}`],
          ...["--exit-file", join(dir, `exit-${i}`), "--"],
          ...[join(dir, "agnhost"), "netexec", "--http-port=8080", "--udp-port=-1"],
        ],
        { stdio: "ignore" },
      );
      children.add(shim);
      shim.once("exit", () => children.delete(shim));
    }
    // Up when each answers straight from the client.
    for (const i of PODS) {
      for (let tries = 0; ; tries++) {
        const r = await client<Reply>(CLIENT, "get", `http://${podIP(i)}:8080/hostname`);
        if (r.body === `pod-${i}`) break;
        if (tries > 50) throw new Error(`agnhost in ${podNs(i)} does not answer: ${JSON.stringify(r)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    proxier = new NftablesProxier({ netns: NODE });
  }, 180_000);

  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await proxier?.cleanup().catch(() => {});
    for (const ns of namespaces.reverse()) await run(["ip", "netns", "del", ns], { allowFail: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("spreads 60 requests to the ClusterIP over all 3 backends", async () => {
    expect((await proxier.sync(state())).applied).toBe(true);
    const bodies = await client<string[]>(CLIENT, "many", `http://${CLUSTER_IP}/hostname`, "60");
    const c = counts(bodies);
    expect(Object.keys(c).sort()).toEqual(["pod-1", "pod-2", "pod-3"]);
    for (const n of Object.values(c)) expect(n).toBeGreaterThanOrEqual(5);
  });

  it("shows its maps in nft list table ip kube-proxy", async () => {
    const { stdout } = await sh(NODE, "nft", "list", "table", "ip", "kube-proxy");
    for (const want of [
      "map service-ips {",
      "map service-nodeports {",
      "map no-endpoint-services {",
      "map no-endpoint-nodeports {",
      "set cluster-ips {",
      "set nodeport-ips {",
      `${CLUSTER_IP} . tcp . 80 : goto service-`,
      "numgen random mod 3 vmap { 0 : goto endpoint-",
      "chain service-",
      "-default/web/tcp/__",
      `dnat to ${podIP(1)}:8080`,
    ]) {
      expect(stdout).toContain(want);
    }
  });

  it("writes nothing for an identical second sync", async () => {
    const before = (await sh(NODE, "nft", "-a", "list", "table", "ip", "kube-proxy")).stdout;
    expect(await proxier.sync(state())).toEqual({ applied: false, bytes: 0 });
    // Rule handles change on any rewrite.
    expect((await sh(NODE, "nft", "-a", "list", "table", "ip", "kube-proxy")).stdout).toBe(before);
  });

  it("keeps the client's source address (no masquerade inside the cluster CIDR)", async () => {
    const r = await client<Reply>(CLIENT, "get", `http://${CLUSTER_IP}/clientip`);
    expect(r.body?.split(":")[0]).toBe(CLIENT_IP);
  });

  it("hairpins: a pod reaches itself through its Service, masqueraded to the node", async () => {
    const r = await client<Reply>(podNs(1), "get", `http://${HAIRPIN_IP}/clientip`);
    expect(r.status).toBe(200);
    expect(r.body?.split(":")[0]).toBe(BRIDGE_IP);
    const h = await client<Reply>(podNs(1), "get", `http://${HAIRPIN_IP}/hostname`);
    expect(h.body).toBe("pod-1");
  });

  it("keeps ClientIP affinity: all 60 requests reach one backend", async () => {
    await proxier.sync(state({ affinitySeconds: 10800 }));
    const bodies = await client<string[]>(CLIENT, "many", `http://${CLUSTER_IP}/hostname`, "60");
    expect(Object.keys(counts(bodies))).toHaveLength(1);
    expect(bodies[0]).toMatch(/^pod-[123]$/);
  });

  it("rejects at once when the Service has no endpoints", async () => {
    await proxier.sync(state({}, []));
    const r = await client<Reply>(CLIENT, "get", `http://${CLUSTER_IP}/hostname`);
    expect(r.error).toBe("ECONNREFUSED");
    expect(r.ms).toBeLessThan(1000);
    // The hairpin Service, still with an endpoint, is unaffected.
    expect((await client<Reply>(CLIENT, "get", `http://${HAIRPIN_IP}/hostname`)).body).toBe("pod-1");
  });

  it("answers a NodePort on the node's address, masqueraded for policy Cluster", async () => {
    await proxier.sync(state({ nodePort: NODE_PORT }));
    const bodies = await client<string[]>(OUTSIDE, "many", `http://${NODE_IP}:${NODE_PORT}/hostname`, "15");
    expect(bodies.every((b) => /^pod-[123]$/.test(b))).toBe(true);
    const r = await client<Reply>(OUTSIDE, "get", `http://${NODE_IP}:${NODE_PORT}/clientip`);
    expect(r.body?.split(":")[0]).toBe(BRIDGE_IP);
  });

  it("preserves the client's address with externalTrafficPolicy Local", async () => {
    await proxier.sync(state({ nodePort: NODE_PORT, externalPolicyLocal: true }));
    const r = await client<Reply>(OUTSIDE, "get", `http://${NODE_IP}:${NODE_PORT}/clientip`);
    expect(r.body?.split(":")[0]).toBe(OUTSIDE_IP);
  });

  it("keeps an established connection working across syncs (endpoint added, proxier restarted)", async () => {
    await proxier.sync(state({}, [1, 2]));
    const conn = holdConnection(`http://${CLUSTER_IP}/hostname`);
    try {
      const first = await conn.request();
      expect(first.body).toMatch(/^pod-[12]$/);
      expect((await proxier.sync(state({}, [1, 2, 3]))).applied).toBe(true);
      const second = await conn.request();
      expect(second).toMatchObject({ status: 200, body: first.body, port: first.port, reused: true });
      // A restarted agent's first sync re-creates the base chains (as upstream's does).
      const restarted = new NftablesProxier({ netns: NODE });
      expect((await restarted.sync(state({}, [1, 2, 3]))).applied).toBe(true);
      const third = await conn.request();
      expect(third).toMatchObject({ status: 200, body: first.body, port: first.port, reused: true });
      // New connections see the new endpoint.
      const bodies = await client<string[]>(CLIENT, "many", `http://${CLUSTER_IP}/hostname`, "45");
      expect(Object.keys(counts(bodies)).sort()).toEqual(["pod-1", "pod-2", "pod-3"]);

      // Syncs back to back while the old connection and new ones keep going: no request fails.
      const fresh = client<string[]>(CLIENT, "many", `http://${CLUSTER_IP}/hostname`, "150");
      const held: Reply[] = [];
      let syncing = true;
      const holder = (async () => {
        while (syncing) held.push(await conn.request());
      })();
      for (let n = 0; n < 10; n++) {
        expect((await proxier.sync(state({}, n % 2 ? [1, 2, 3] : [1, 2]))).applied).toBe(true);
      }
      syncing = false;
      await holder;
      expect(held.length).toBeGreaterThan(5);
      for (const r of held) expect(r).toMatchObject({ status: 200, body: first.body, port: first.port });
      expect((await fresh).filter((b) => !/^pod-[123]$/.test(b))).toEqual([]);
    } finally {
      conn.close();
    }
  });

  it("deletes the chains of a removed endpoint a second after flushing them", async () => {
    await proxier.sync(state({}, [1, 2]));
    const chains = async () =>
      (await sh(NODE, "nft", "list", "chains", "ip")).stdout.split("\n").filter((l) => l.includes(podIP(3)));
    expect((await chains()).length).toBe(1); // flushed, still there
    const listed = (await sh(NODE, "nft", "list", "table", "ip", "kube-proxy")).stdout;
    expect(listed).not.toContain(`dnat to ${podIP(3)}`);
    await new Promise((res) => setTimeout(res, 1100));
    expect((await proxier.sync(state({}, [1, 2]))).applied).toBe(false);
    expect(await chains()).toEqual([]);
  });

  it("names what is missing when nft cannot be run", async () => {
    const broken = new NftablesProxier({ netns: NODE, nft: "/nonexistent/nft" });
    const err = await broken.sync(state()).catch((e) => e);
    expect(err).toBeInstanceOf(NftablesUnavailableError);
    expect(err.message).toContain("needs the nft command");
    await broken.cleanup(); // nothing to clean: no error
  });

  it("cleanup() leaves no table", async () => {
    await proxier.cleanup();
    const { stdout } = await sh(NODE, "nft", "list", "tables");
    expect(stdout).not.toContain("kube-proxy");
    await proxier.cleanup(); // idempotent
    // A later sync starts over.
    expect((await proxier.sync(state())).applied).toBe(true);
    expect((await client<Reply>(CLIENT, "get", `http://${CLUSTER_IP}/hostname`)).body).toMatch(/^pod-[123]$/);
    await proxier.cleanup();
  });
});
