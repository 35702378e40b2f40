// `npm run bench:services`: kube-proxy's figures. Prints them; never asserts on time.
//
// 1. a full sync of 1000 Services x 10 endpoints into a scratch node namespace, per mode
//    (render + one iptables-restore / nft -f), first and repeated with one endpoint changed
// 2. on a 3-node local cluster: a new endpoint visible in every node's rules after its pod turns
//    Ready (p50/p99 over 20 scale-ups), per mode
// 3. connection rate from a pod's namespace through a ClusterIP versus straight to the pod IP,
//    side by side in one run

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../../agent/api-client.ts";
import { run } from "../../agent/exec.ts";
import type { ProxyState, ServicePortState } from "../../agent/proxy/model.ts";
import { createBackend, type ProxyMode, prepareNode } from "../../agent/proxy/proxy.ts";
import type { ClusterState } from "../../cli/local/registry.ts";

const KEMU = new URL("../../bin/kemu", import.meta.url).pathname;
const MODES: ProxyMode[] = ["iptables", "nftables"];
const figures: [string, string][] = [];

function sh(argv: string[], env = process.env, input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { env, maxBuffer: 256 << 20, timeout: 600_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as any).code) || 1 : 0, out: stdout + stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

function syntheticState(services: number, endpoints: number, bump = 0): ProxyState {
  const out: ServicePortState[] = [];
  for (let s = 0; s < services; s++) {
    out.push({
      service: {
        namespace: "bench",
        name: `svc-${s}`,
        portName: "http",
        protocol: "TCP",
        clusterIP: `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`,
        port: 80,
        nodePort: s < 200 ? 30000 + s : 0,
        loadBalancerIPs: [],
        externalIPs: [],
        affinitySeconds: 0,
        externalPolicyLocal: false,
        internalPolicyLocal: false,
      },
      endpoints: Array.from({ length: endpoints }, (_, e) => ({
        ip: `10.244.${((s * endpoints + e) >> 8) & 255}.${(s * endpoints + e) & 255 || 1}`,
        port: 8080 + (s === 0 && e === 0 ? bump : 0),
        ready: true,
        serving: true,
        terminating: false,
        isLocal: e % 3 === 0,
        nodeName: `node-${e % 3}`,
      })),
    });
  }
  return { nodeName: "node-0", nodeIPs: ["172.31.254.10"], clusterCidr: "10.244.0.0/16", services: out };
}

async function fullSyncs(): Promise<void> {
  for (const mode of MODES) {
    const ns = `kemu-bench-svc-${Math.random().toString(36).slice(2, 7)}`;
    await run(["ip", "netns", "add", ns]);
    try {
      await prepareNode(ns);
      const backend = createBackend(mode, ns);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const state = syntheticState(1000, 10, i);
        const t0 = performance.now();
        await backend.sync(state);
        times.push(performance.now() - t0);
      }
      const sorted = [...times.slice(1)].sort((a, b) => a - b);
      figures.push([
        `${mode}: full sync, 1000 Services x 10 endpoints`,
        `first ${times[0].toFixed(0)} ms, then median ${pct(sorted, 50).toFixed(0)} ms (one endpoint changed each time)`,
      ]);
      await backend.cleanup();
    } finally {
      await run(["ip", "netns", "del", ns], { allowFail: true });
    }
  }
}

const deployment = (replicas: number) =>
  JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web" },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: "netexec",
              image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
              args: ["netexec", "--http-port=8080", "--udp-port=-1"],
            },
          ],
        },
      },
    },
  });

async function clusterFigures(mode: ProxyMode): Promise<void> {
  const name = `bsv${mode[0]}${Math.random().toString(36).slice(2, 5)}`;
  const work = mkdtempSync(join(tmpdir(), "kemu-bench-svc-"));
  const dataDir = join(work, "data");
  const env = { ...process.env, KEMU_RUN_DIR: join(work, "run"), KUBECONFIG: join(dataDir, "kubeconfig") };
  try {
    const up = await sh(
      [KEMU, "up", "--name", name, "--nodes", "3", "--proxy-mode", mode, "--data-dir", dataDir],
      env,
    );
    if (up.code !== 0) throw new Error(`kemu up failed: ${up.out}`);
    const state = JSON.parse(readFileSync(join(dataDir, "cluster.json"), "utf8")) as ClusterState;
    const client = new ApiClient({
      url: state.plan.api.hostUrl,
      token: readFileSync(state.plan.api.tokenFile, "utf8").trim(),
      ca: readFileSync(state.plan.api.caFile, "utf8"),
    });
    await sh(["kubectl", "apply", "-f", "-"], env, deployment(1));
    await sh(
      ["kubectl", "apply", "-f", "-"],
      env,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web" },
        spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
      }),
    );
    // Pods as they turn Ready, by the clock of a watch on the API.
    const readyAt = new Map<string, { ip: string; t: number }>();
    const stop = client.watch(
      "/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dweb",
      (_t, pod) => {
        const ready = pod?.status?.conditions?.find((c: any) => c.type === "Ready")?.status === "True";
        if (ready && pod.status.podIP && !readyAt.has(pod.metadata.name)) {
          readyAt.set(pod.metadata.name, { ip: pod.status.podIP, t: performance.now() });
        }
      },
      () => {},
    );
    const rulesCommand =
      mode === "iptables" ? ["iptables-save", "-t", "nat"] : ["nft", "list", "table", "ip", "kube-proxy"];
    const nodes = state.plan.nodes.map((n) => n.netns);
    const visibleEverywhere = async (ip: string): Promise<number> => {
      const seen = new Set<string>();
      for (;;) {
        await Promise.all(
          nodes
            .filter((n) => !seen.has(n))
            .map(async (n) => {
              const r = await run(rulesCommand, { netns: n, allowFail: true });
              if (r.stdout.includes(ip)) seen.add(n);
            }),
        );
        if (seen.size === nodes.length) return performance.now();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const lags: number[] = [];
    for (let replicas = 2; replicas <= 21; replicas++) {
      const before = new Set(readyAt.keys());
      await client.request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        { spec: { replicas } },
        "application/merge-patch+json",
      );
      let fresh: { ip: string; t: number } | undefined;
      while (!fresh) {
        await new Promise((r) => setTimeout(r, 2));
        fresh = [...readyAt.entries()].find(([n]) => !before.has(n))?.[1];
      }
      const seen = await visibleEverywhere(fresh.ip);
      lags.push(seen - fresh.t);
    }
    stop();
    lags.sort((a, b) => a - b);
    figures.push([
      `${mode}: new endpoint in every node's rules after its pod turns Ready`,
      `p50 ${pct(lags, 50).toFixed(0)} ms, p99 ${pct(lags, 99).toFixed(0)} ms (20 scale-ups, polling rules every ~5 ms)`,
    ]);

    // Connection rate: the same Node client in the client pod's namespace, VIP versus pod IP.
    const pods = await client.get<{ items: any[] }>(
      "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
    );
    const target = pods.items.find((p) => p.status?.podIP)!;
    const svc = await client.get<any>("/api/v1/namespaces/default/services/web");
    await sh(
      ["kubectl", "apply", "-f", "-"],
      env,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "client" },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }],
        },
      }),
    );
    let clientPod: any;
    while (!clientPod?.status?.podIP) {
      await new Promise((r) => setTimeout(r, 100));
      clientPod = await client.get<any>("/api/v1/namespaces/default/pods/client");
    }
    const clientNs = `kemu-${name}-${clientPod.spec.nodeName}-p-${clientPod.metadata.uid.slice(0, 8)}`;
    const rate = async (host: string, port: number) => {
      const script = `const net=require("net");let n=0;const end=Date.now()+3000;(function go(){if(Date.now()>end){console.log(n);return}const s=net.connect(${port},"${host}",()=>{n++;s.destroy();go()});s.on("error",()=>go())})()`;
      const r = await run([process.execPath, "-e", script], { netns: clientNs });
      return Number(r.stdout.trim()) / 3;
    };
    const direct: number[] = [];
    const viaVip: number[] = [];
    for (let i = 0; i < 3; i++) {
      direct.push(await rate(target.status.podIP, 8080));
      viaVip.push(await rate(svc.spec.clusterIP, 80));
    }
    const d = direct.reduce((a, b) => a + b) / direct.length;
    const v = viaVip.reduce((a, b) => a + b) / viaVip.length;
    figures.push([
      `${mode}: TCP connections/s from a pod's namespace, pod IP vs ClusterIP`,
      `${d.toFixed(0)}/s direct, ${v.toFixed(0)}/s through the ClusterIP (${((100 * v) / d).toFixed(0)}%)`,
    ]);
    client.close();
  } finally {
    await sh([KEMU, "down", "--name", name, "--data-dir", dataDir], env);
    rmSync(work, { recursive: true, force: true });
  }
}

await fullSyncs();
for (const mode of MODES) await clusterFigures(mode);
const width = Math.max(...figures.map(([k]) => k.length));
console.log("\nkemu bench:services (this machine)\n");
for (const [k, v] of figures) console.log(`  ${k.padEnd(width)}  ${v}`);
