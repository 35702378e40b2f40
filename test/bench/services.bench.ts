// `npm run bench:services`: kube-proxy's figures. Prints them; never asserts on time.
//
// 1. a full sync of 1000 Services x 10 endpoints into a scratch node namespace, per mode
//    (render + one iptables-restore / nft -f), first and repeated with one endpoint changed
// 2. on a 3-node local cluster: a new endpoint visible in every node's rules after its pod turns
//    Ready (p50/p99 over 20 scale-ups), per mode
// 3. connection rate from a pod's namespace through a ClusterIP versus straight to the pod IP,
//    side by side in one run

import { run } from "../../agent/exec.ts";
import { benchmarkState } from "../../agent/proxy/bench-state.ts";
import type { ProxyState } from "../../agent/proxy/model.ts";
import { renderRuleset } from "../../agent/proxy/nftables/rules.ts";
import { createBackend, type ProxyMode, prepareNode } from "../../agent/proxy/proxy.ts";
import { percentile, printFigures, runCommand, sleep, upBenchCluster } from "./tools.ts";

const MODES: ProxyMode[] = ["iptables", "nftables"];
const figures: [string, string][] = [];

async function fullSyncs(): Promise<void> {
  for (const mode of MODES) {
    const ns = `kemu-bench-svc-${Math.random().toString(36).slice(2, 7)}`;
    await run(["ip", "netns", "add", ns]);
    try {
      await prepareNode(ns);
      const backend = createBackend(mode, ns);
      const times: number[] = [];
      const base = benchmarkState(1000, 10);
      for (let i = 0; i < 5; i++) {
        // The same state each time but for one endpoint's port: a full render, one change.
        const state = structuredClone(base);
        state.services[0].endpoints[0].port += i;
        const t0 = performance.now();
        await backend.sync(state);
        times.push(performance.now() - t0);
      }
      const sorted = [...times.slice(1)].sort((a, b) => a - b);
      figures.push([
        `${mode}: full sync, 1000 Services x 10 endpoints`,
        `first ${times[0].toFixed(0)} ms, then median ${percentile(sorted, 50).toFixed(0)} ms (one endpoint changed each time)`,
      ]);
      await backend.cleanup();
      if (mode === "nftables") figures.push(await nftAlone(ns, base, () => backend.cleanup()));
    } finally {
      await run(["ip", "netns", "del", ns], { allowFail: true });
    }
  }
}

/**
 * The two parts of an nftables first sync apart: rendering the transaction, and nft applying it
 * to an empty table (parsing and evaluating it, then the kernel's work) with nothing of kemu's
 * around it.
 */
async function nftAlone(
  ns: string,
  state: ProxyState,
  emptyTable: () => Promise<void>,
): Promise<[string, string]> {
  const renders: number[] = [];
  const applies: number[] = [];
  let text = "";
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    text = renderRuleset(structuredClone(state)).text;
    renders.push(performance.now() - t0);
    await emptyTable();
    const t1 = performance.now();
    await run(["nft", "-f", "-"], { netns: ns, input: text, timeoutMs: 120_000 });
    applies.push(performance.now() - t1);
  }
  await emptyTable();
  const median = (a: number[]) =>
    percentile(
      [...a].sort((x, y) => x - y),
      50,
    ).toFixed(0);
  return [
    "nftables: that first sync's two parts alone",
    `render ${median(renders)} ms, nft -f into an empty table ${median(applies)} ms (${(Buffer.byteLength(text) / 1e6).toFixed(1)} MB, median of 3)`,
  ];
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
  const cluster = await upBenchCluster(`bsv${mode[0]}`, ["--nodes", "3", "--proxy-mode", mode]);
  const { client, env, plan } = cluster;
  try {
    await runCommand(["kubectl", "apply", "-f", "-"], env, deployment(1));
    await runCommand(
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
    const nodes = plan.nodes.map((n) => n.netns);
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
      `p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms (20 scale-ups, polling rules every ~5 ms)`,
    ]);

    // Connection rate: the same Node client in the client pod's namespace, VIP versus pod IP.
    const pods = await client.get<{ items: any[] }>(
      "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
    );
    const target = pods.items.find((p) => p.status?.podIP)!;
    const svc = await client.get<any>("/api/v1/namespaces/default/services/web");
    await runCommand(
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
      await sleep(100);
      clientPod = await client.get<any>("/api/v1/namespaces/default/pods/client");
    }
    const clientNs = cluster.podNetns(clientPod);
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
  } finally {
    await cluster.down();
  }
}

await fullSyncs();
for (const mode of MODES) await clusterFigures(mode);
printFigures("kemu bench:services", figures);
