// Benchmark helpers for `npm run bench:services` (not a test): a synthetic ProxyState of N
// services × M endpoints, its rendering, and timed syncs of it into a network namespace (a fresh
// throwaway one unless given): a full sync into an empty table, a sync after one endpoint changed
// (only that service's chains are rewritten) and an identical sync (nothing is written).

import { randomBytes } from "node:crypto";
import { run } from "../../exec.ts";
import type { EndpointInfo, ProxyState, ServicePortState } from "../model.ts";
import { NftablesProxier } from "./proxier.ts";
import { type NftRuleset, renderRuleset } from "./rules.ts";

/** n-th address of PREFIX.0.0/16 counted from .0.1 (n < 65534). */
function address(prefix: string, n: number): string {
  const k = n + 1;
  return `${prefix}.${Math.floor(k / 256)}.${k % 256}`;
}

/**
 * ClusterIP services web-00000… in namespace bench, each with M ready endpoints on 8080 (the first
 * of each local). Every tenth service also has a NodePort and every twentieth ClientIP affinity,
 * so the external and affinity paths are part of the figure.
 */
export function benchmarkState(services = 1000, endpointsPerService = 10): ProxyState {
  const out: ServicePortState[] = [];
  for (let i = 0; i < services; i++) {
    const endpoints: EndpointInfo[] = [];
    for (let j = 0; j < endpointsPerService; j++) {
      const ip = address("10.244", i * endpointsPerService + j);
      endpoints.push({ ip, port: 8080, ready: true, serving: true, terminating: false, isLocal: j === 0 });
    }
    out.push({
      service: {
        namespace: "bench",
        name: `web-${String(i).padStart(5, "0")}`,
        portName: "http",
        protocol: "TCP",
        clusterIP: address("10.96", i),
        port: 80,
        nodePort: i % 10 === 0 ? 30000 + (i % 2768) : 0,
        loadBalancerIPs: [],
        externalIPs: [],
        affinitySeconds: i % 20 === 0 ? 10800 : 0,
        externalPolicyLocal: false,
        internalPolicyLocal: false,
      },
      endpoints,
    });
  }
  return { nodeName: "bench-node", nodeIPs: ["172.31.0.11"], clusterCidr: "10.244.0.0/16", services: out };
}

/** The full sync text of benchmarkState(services, endpointsPerService). */
export function renderBenchmark(services = 1000, endpointsPerService = 10): NftRuleset {
  return renderRuleset(benchmarkState(services, endpointsPerService));
}

export interface SyncBenchmark {
  services: number;
  endpoints: number;
  /** renderRuleset alone. */
  renderMs: number;
  /** The first sync into an empty namespace: checks, render and one nft -f of everything. */
  fullSyncMs: number;
  /** A sync after one endpoint changed: base, maps and that one service rewritten. */
  changeSyncMs: number;
  /** A sync of the same state again: rendered and compared, nothing written. */
  noopSyncMs: number;
  bytes: number;
  changeBytes: number;
  rules: number;
}

/** Times syncs of benchmarkState(). Needs root; removes the namespace it makes. */
export async function benchmarkFullSync(
  opts: { netns?: string; services?: number; endpointsPerService?: number } = {},
): Promise<SyncBenchmark> {
  const state = benchmarkState(opts.services ?? 1000, opts.endpointsPerService ?? 10);
  const netns = opts.netns ?? `kemu-bench-nft-${randomBytes(3).toString("hex")}`;
  if (!opts.netns) await run(["ip", "netns", "add", netns]);
  const proxier = new NftablesProxier({ netns });
  try {
    let t = performance.now();
    const rendered = renderRuleset(state);
    const renderMs = performance.now() - t;

    t = performance.now();
    const first = await proxier.sync(state);
    const fullSyncMs = performance.now() - t;

    const changed = structuredClone(state);
    changed.services[0].endpoints[0] = { ...changed.services[0].endpoints[0], ip: "10.244.250.250" };
    t = performance.now();
    const change = await proxier.sync(changed);
    const changeSyncMs = performance.now() - t;

    t = performance.now();
    await proxier.sync(changed);
    const noopSyncMs = performance.now() - t;

    return {
      services: state.services.length,
      endpoints: state.services.reduce((n, s) => n + s.endpoints.length, 0),
      renderMs,
      fullSyncMs,
      changeSyncMs,
      noopSyncMs,
      bytes: first.bytes,
      changeBytes: change.bytes,
      rules: rendered.text.split("\n").filter((l) => l.startsWith("add rule ")).length,
    };
  } finally {
    await proxier.cleanup().catch(() => {});
    if (!opts.netns) await run(["ip", "netns", "del", netns], { allowFail: true });
  }
}
