// The iptables proxy mode on real namespaces. A "node" namespace holds a bridge br0 (10.244.7.1/24,
// hairpin on its ports as the CNI bridge plugin sets it, br_netfilter, forwarding and
// route_localnet on, as agent/proxy/proxy.ts prepareNode sets them); three
// "pod" namespaces run agnhost netexec (HTTP 8080, UDP 8081) under kemu-init, so each answers
// /hostname with its own name (backend-1..3); a "client" pod namespace sends the traffic, and an
// "ext" namespace on the node's second link (192.168.77.2, node 192.168.77.1) plays a machine
// outside the cluster for NodePorts. The node routes the service range towards ext, as a node's
// default route would, so unanswered service traffic reaches the filter table's REJECT rules.
// Nothing has a default route out of these namespaces; all traffic stays inside them. Needs root,
// gcc and busybox (agent/images/build.sh), iptables and conntrack.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../agent/exec.ts";
import { IptablesProxier } from "../../agent/proxy/iptables/proxier.ts";
import { endpointChainName, serviceChainNames } from "../../agent/proxy/iptables/rules.ts";
import type { EndpointInfo, ProxyState, ServicePortInfo } from "../../agent/proxy/model.ts";
import { signal, startContainer, targetPid } from "../../agent/runtime/process.ts";
import { eventually } from "../harness.ts";

const isRoot = process.getuid?.() === 0;
const ROOT = new URL("../../", import.meta.url).pathname;
const PREFIX = `kemu-t-ipt-${randomBytes(3).toString("hex")}`;
const NODE = `${PREFIX}-node`;
const CLIENT = `${PREFIX}-client`;
const EXT = `${PREFIX}-ext`;
const PODS = [1, 2, 3].map((i) => ({ i, ns: `${PREFIX}-p${i}`, ip: `10.244.7.1${i}`, name: `backend-${i}` }));
const CLIENT_IP = "10.244.7.20";
const GATEWAY = "10.244.7.1";
const NODE_IP = "192.168.77.1";
const EXT_IP = "192.168.77.2";
const VIP = "10.96.7.10";

/** Run inside a namespace with the test's Node: one operation per invocation, JSON on stdout. */
const CLIENT_JS = `
import http from "node:http";
import net from "node:net";
import dgram from "node:dgram";

const [op, ...a] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v));

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", (e) => resolve({ error: e.code ?? e.message }));
    req.setTimeout(3000, () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
  });
}

if (op === "get") {
  const results = [];
  for (let i = 0; i < Number(a[1] ?? 1); i++) results.push(await get(a[0]));
  out(results);
}
if (op === "connect") {
  const t0 = Date.now();
  const s = net.connect(Number(a[1]), a[0]);
  s.setTimeout(Number(a[2] ?? 3000));
  s.on("connect", () => { out({ ok: true, ms: Date.now() - t0 }); s.destroy(); });
  s.on("error", (e) => out({ error: e.code, ms: Date.now() - t0 }));
  s.on("timeout", () => { out({ error: "timeout", ms: Date.now() - t0 }); s.destroy(); });
}
if (op === "udp") {
  const sock = dgram.createSocket("udp4");
  const timer = setTimeout(() => { out({ error: "timeout" }); sock.close(); }, 2000);
  sock.on("message", (m) => { clearTimeout(timer); out({ reply: m.toString() }); sock.close(); });
  sock.bind(Number(a[2]), () => sock.send(a[3], Number(a[1]), a[0]));
}
`;

function service(extra: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    namespace: "default",
    name: "web",
    portName: "",
    protocol: "TCP",
    clusterIP: VIP,
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

function endpoints(port = 8080, pods = PODS, local: number[] = []): EndpointInfo[] {
  return pods.map((p) => ({
    ip: p.ip,
    port,
    ready: true,
    serving: true,
    terminating: false,
    isLocal: local.includes(p.i),
  }));
}

function state(...services: ProxyState["services"]): ProxyState {
  return { nodeName: "node-1", nodeIPs: [NODE_IP], clusterCidr: "10.244.0.0/16", services };
}

describe.skipIf(!isRoot)("kube-proxy iptables mode on real namespaces", () => {
  let dir = "";
  let client = "";
  const namespaces: string[] = [];
  const shims: number[] = [];
  const proxier = new IptablesProxier({ netns: NODE });

  const sh = (ns: string, ...argv: string[]) => run(argv, { netns: ns });
  const ipt = async (table: string) => (await sh(NODE, "iptables-save", "-t", table)).stdout;

  async function node<T>(ns: string, ...args: string[]): Promise<T> {
    const { stdout } = await run([process.execPath, client, ...args], { netns: ns, timeoutMs: 60_000 });
    return JSON.parse(stdout) as T;
  }
  type Reply = { status?: number; body?: string; error?: string };
  const get = (ns: string, url: string, n = 1) => node<Reply[]>(ns, "get", url, String(n));
  const connect = (ns: string, ip: string, port: number, timeoutMs = 3000) =>
    node<{ ok?: boolean; error?: string; ms: number }>(ns, "connect", ip, String(port), String(timeoutMs));
  const udp = (ns: string, ip: string, port: number, srcPort: number, msg: string) =>
    node<{ reply?: string; error?: string }>(ns, "udp", ip, String(port), String(srcPort), msg);

  function counts(replies: Reply[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of replies) {
      const key = r.error ? `error:${r.error}` : (r.body ?? "");
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  async function addNetns(name: string): Promise<void> {
    await run(["ip", "netns", "add", name]);
    namespaces.push(name);
    await sh(name, "ip", "link", "set", "lo", "up");
  }

  /** A veth from the node (nodeSide) into ns (eth0) with addr, default route via gateway. */
  async function attach(ns: string, nodeSide: string, addr: string, gateway?: string): Promise<void> {
    await run([
      "ip",
      "-n",
      NODE,
      "link",
      "add",
      nodeSide,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      ns,
    ]);
    await sh(ns, "ip", "addr", "add", addr, "dev", "eth0");
    await sh(ns, "ip", "link", "set", "eth0", "up");
    if (gateway) await sh(ns, "ip", "route", "add", "default", "via", gateway);
  }

  beforeAll(async () => {
    // Built per run, in the checkout (containers see the node file system).
    mkdirSync(join(ROOT, ".kemu-test"), { recursive: true });
    dir = mkdtempSync(join(ROOT, ".kemu-test", "ipt-"));
    client = join(dir, "client.mjs");
    writeFileSync(client, CLIENT_JS);
    writeFileSync(join(dir, "hosts"), "127.0.0.1\tlocalhost\n");
    writeFileSync(join(dir, "resolv.conf"), "nameserver 10.96.0.10\n");
    await run([join(ROOT, "agent/images/build.sh"), join(dir, "bin")], { timeoutMs: 120_000 });

    await addNetns(NODE);
    await sh(NODE, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    await sh(NODE, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1");
    await sh(NODE, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1");
    await sh(NODE, "ip", "link", "add", "br0", "type", "bridge");
    await sh(NODE, "ip", "addr", "add", `${GATEWAY}/24`, "dev", "br0");
    await sh(NODE, "ip", "link", "set", "br0", "up");
    for (const [ns, side, ip] of [...PODS.map((p) => [p.ns, `v${p.i}`, p.ip]), [CLIENT, "vc", CLIENT_IP]]) {
      await addNetns(ns);
      await attach(ns, side, `${ip}/24`, GATEWAY);
      await sh(NODE, "ip", "link", "set", side, "master", "br0", "up");
      await sh(NODE, "ip", "link", "set", side, "type", "bridge_slave", "hairpin", "on");
    }
    await addNetns(EXT);
    await attach(EXT, "eth1", `${EXT_IP}/24`);
    await sh(NODE, "ip", "addr", "add", `${NODE_IP}/24`, "dev", "eth1");
    await sh(NODE, "ip", "link", "set", "eth1", "up");
    await sh(NODE, "ip", "route", "add", "10.96.0.0/12", "via", EXT_IP);

    for (const p of PODS) {
      shims.push(
        await startContainer({
          init: join(dir, "bin", "kemu-init"),
          netns: p.ns,
          hostname: p.name,
          hostsFile: join(dir, "hosts"),
          resolvFile: join(dir, "resolv.conf"),
          argv: [join(dir, "bin", "agnhost"), "netexec", "--http-port=8080", "--udp-port=8081"],
          env: { PATH: "/usr/bin:/bin" },
          logFile: join(dir, `${p.name}.log`),
          exitFile: join(dir, `${p.name}.exit`),
        }),
      );
    }
    for (const p of PODS) {
      await eventually(
        async () => (await get(CLIENT, `http://${p.ip}:8080/hostname`))[0].body === p.name,
        10_000,
      );
    }
  }, 180_000);

  afterAll(async () => {
    for (const pid of shims) {
      signal(targetPid(pid), "SIGKILL");
      signal(pid, "SIGKILL");
    }
    for (const ns of namespaces.reverse()) await run(["ip", "netns", "del", ns], { allowFail: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const web = () => ({ service: service(), endpoints: endpoints() });

  it("spreads 60 requests to a ClusterIP over all 3 backends, keeping the client's IP", async () => {
    expect((await proxier.sync(state(web()))).applied).toBe(true);
    const replies = await get(CLIENT, `http://${VIP}/hostname`, 60);
    const c = counts(replies);
    expect(Object.keys(c).sort()).toEqual(["backend-1", "backend-2", "backend-3"]);
    for (const n of Object.values(c)) expect(n).toBeGreaterThanOrEqual(5);
    // Pod to pod through a service: no SNAT.
    const [who] = await get(CLIENT, `http://${VIP}/clientip`);
    expect(who.body).toMatch(new RegExp(`^${CLIENT_IP.replaceAll(".", "\\.")}:\\d+$`));
  });

  it("shows upstream's chains in iptables-save and writes nothing on an identical sync", async () => {
    const nat = await ipt("nat");
    const svc = serviceChainNames("default/web", "TCP").cluster;
    const sep = endpointChainName("default/web", "TCP", "10.244.7.11:8080");
    for (const line of [
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
      `-A KUBE-SERVICES -d ${VIP}/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j ${svc}`,
      `-A ${svc} -m comment --comment "default/web -> 10.244.7.11:8080" -m statistic --mode random --probability 0.33333333349 -j ${sep}`,
      `-A ${sep} -s 10.244.7.11/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ`,
      `-A ${sep} -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.7.11:8080`,
      "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]) {
      expect(nat.split("\n")).toContain(line);
    }
    expect(await ipt("filter")).toContain(
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    );

    expect(await proxier.sync(state(web()))).toEqual({ applied: false, bytes: 0 });

    // A restarted proxy (no memory of what it wrote) rewrites its chains but adds no second jump.
    const restarted = new IptablesProxier({ netns: NODE });
    expect((await restarted.sync(state(web()))).applied).toBe(true);
    const again = (await ipt("nat")).split("\n");
    expect(again.filter((l) => l.startsWith("-A PREROUTING") && l.includes("KUBE-SERVICES"))).toHaveLength(1);
    expect((await ipt("filter")).split("\n").filter((l) => l.includes("-j KUBE-FORWARD"))).toHaveLength(1);
  });

  it("sends every request to one backend with ClientIP affinity", async () => {
    await proxier.sync(state({ service: service({ affinitySeconds: 10800 }), endpoints: endpoints() }));
    const c = counts(await get(CLIENT, `http://${VIP}/hostname`, 60));
    expect(Object.values(c)).toEqual([60]);
    expect(Object.keys(c)[0]).toMatch(/^backend-[123]$/);
  });

  it("refuses connections at once when the service has no endpoints", async () => {
    await proxier.sync(state({ service: service(), endpoints: [] }));
    const r = await connect(CLIENT, VIP, 80);
    expect(r.error).toBe("ECONNREFUSED");
    expect(r.ms).toBeLessThan(1000);
    expect(await ipt("filter")).toContain(
      `-A KUBE-SERVICES -d ${VIP}/32 -p tcp -m comment --comment "default/web has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
    );
    // The endpoints' chains went with them, in the same restore.
    expect(await ipt("nat")).not.toMatch(/KUBE-SEP-|KUBE-SVC-/);
  });

  it("lets a backend reach itself through its service (hairpin, masqueraded to the node)", async () => {
    const self = { service: service(), endpoints: endpoints(8080, [PODS[0]]) };
    await proxier.sync(state(self));
    const [host] = await get(PODS[0].ns, `http://${VIP}/hostname`);
    expect(host.body).toBe("backend-1");
    const [who] = await get(PODS[0].ns, `http://${VIP}/clientip`);
    expect(who.body).toMatch(/^10\.244\.7\.1:\d+$/);
  });

  it("serves a NodePort on the node's address to a machine outside the cluster", async () => {
    const np = { service: service({ nodePort: 30080 }), endpoints: endpoints() };
    await proxier.sync(state(np));
    const replies = await get(EXT, `http://${NODE_IP}:30080/hostname`, 30);
    expect(Object.keys(counts(replies)).sort()).toEqual(["backend-1", "backend-2", "backend-3"]);
    // policy Cluster: masqueraded, the backend sees the node.
    const [who] = await get(EXT, `http://${NODE_IP}:30080/clientip`);
    expect(who.body).toMatch(/^10\.244\.7\.1:\d+$/);
    // From the node itself, on 127.0.0.1 too (route_localnet, as upstream's default allows).
    const [fromNode] = await get(NODE, "http://127.0.0.1:30080/hostname");
    expect(fromNode.body).toMatch(/^backend-[123]$/);
  });

  it("keeps the client's address and uses only local endpoints with externalTrafficPolicy Local", async () => {
    const local = service({ nodePort: 30080, externalPolicyLocal: true });
    await proxier.sync(state({ service: local, endpoints: endpoints(8080, PODS, [1]) }));
    expect(counts(await get(EXT, `http://${NODE_IP}:30080/hostname`, 10))).toEqual({ "backend-1": 10 });
    const [who] = await get(EXT, `http://${NODE_IP}:30080/clientip`);
    expect(who.body).toMatch(new RegExp(`^${EXT_IP.replaceAll(".", "\\.")}:\\d+$`));

    // No local endpoint on this node: external traffic is dropped, pods still get through.
    await proxier.sync(state({ service: local, endpoints: endpoints() }));
    expect((await connect(EXT, NODE_IP, 30080, 1000)).error).toBe("timeout");
    const [viaPod] = await get(CLIENT, `http://${GATEWAY}:30080/hostname`);
    expect(viaPod.body).toMatch(/^backend-[123]$/);
  });

  it("flushes a removed UDP endpoint's conntrack entries", async () => {
    const dns = service({ name: "dns", protocol: "UDP", port: 8081 });
    await proxier.sync(state({ service: dns, endpoints: endpoints(8081) }));
    const first = await udp(CLIENT, VIP, 8081, 40000, "hostname");
    expect(first.reply).toMatch(/^backend-[123]$/);
    // Same source port: the same conntrack entry, the same backend.
    expect((await udp(CLIENT, VIP, 8081, 40000, "hostname")).reply).toBe(first.reply);

    const remaining = PODS.filter((p) => p.name !== first.reply);
    await proxier.sync(state({ service: dns, endpoints: endpoints(8081, remaining) }));
    const after = await udp(CLIENT, VIP, 8081, 40000, "hostname");
    expect(remaining.map((p) => p.name)).toContain(after.reply);
  });

  it("removes every KUBE-* chain and jump on cleanup, leaving other rules alone", async () => {
    await sh(NODE, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "RETURN");
    await proxier.cleanup();
    const nat = await ipt("nat");
    const filter = await ipt("filter");
    expect(nat).not.toContain("KUBE-");
    expect(filter).not.toContain("KUBE-");
    expect(nat).toContain("-A POSTROUTING -s 10.99.0.0/16 -j RETURN");
    // And a sync after cleanup builds everything again.
    expect((await proxier.sync(state(web()))).applied).toBe(true);
    expect(await ipt("nat")).toContain("-j KUBE-SERVICES");
  });
});
