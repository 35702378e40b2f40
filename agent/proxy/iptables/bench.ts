// Benchmark helpers for `npm run bench:services` (not a test): a synthetic ProxyState of N
// services x M endpoints, and a timed full sync of it into a network namespace (a fresh throwaway
// one unless given), so the figure covers render + iptables-save + iptables-restore.

import { randomBytes } from "node:crypto";
import { run } from "../../exec.ts";
import type { EndpointInfo, ProxyState, ServicePortState } from "../model.ts";
import { IptablesProxier } from "./proxier.ts";
import { renderRules } from "./rules.ts";

/** n-th address of 10.A.0.0/16 counted from .0.1, skipping nothing (n < 65534). */
function address(prefix: string, n: number): string {
  const k = n + 1;
  return `${prefix}.${Math.floor(k / 256)}.${k % 256}`;
}

/** ClusterIP services web-0..web-(N-1) in namespace bench, each with M ready endpoints on 8080. */
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
        nodePort: 0,
        loadBalancerIPs: [],
        externalIPs: [],
        affinitySeconds: 0,
        externalPolicyLocal: false,
        internalPolicyLocal: false,
      },
      endpoints,
    });
  }
  return { nodeName: "bench-node", nodeIPs: ["172.31.0.11"], clusterCidr: "10.244.0.0/16", services: out };
}

export interface SyncBenchmark {
  services: number;
  endpoints: number;
  /** renderRules alone. */
  renderMs: number;
  /** The first (full) sync into empty tables: render + iptables-save + iptables-restore. */
  fullSyncMs: number;
  /** The next sync, one endpoint changed: render + one restore (its stale SEP chain deleted in it). */
  changeSyncMs: number;
  bytes: number;
  natRules: number;
}

/** Times full syncs of benchmarkState(). Needs root; removes the namespace it makes. */
export async function benchmarkFullSync(
  opts: { netns?: string; services?: number; endpointsPerService?: number } = {},
): Promise<SyncBenchmark> {
  const state = benchmarkState(opts.services ?? 1000, opts.endpointsPerService ?? 10);
  const netns = opts.netns ?? `kemu-bench-ipt-${randomBytes(3).toString("hex")}`;
  if (!opts.netns) await run(["ip", "netns", "add", netns]);
  const proxier = new IptablesProxier({ netns });
  try {
    let t = performance.now();
    const rendered = renderRules(state);
    const renderMs = performance.now() - t;

    t = performance.now();
    const first = await proxier.sync(state);
    const fullSyncMs = performance.now() - t;

    const changed = structuredClone(state);
    changed.services[0].endpoints[0] = { ...changed.services[0].endpoints[0], ip: "10.244.250.250" };
    t = performance.now();
    await proxier.sync(changed);
    const changeSyncMs = performance.now() - t;

    return {
      services: state.services.length,
      endpoints: state.services.reduce((n, s) => n + s.endpoints.length, 0),
      renderMs,
      fullSyncMs,
      changeSyncMs,
      bytes: first.bytes,
      natRules: rendered.nat.rules.length,
    };
  } finally {
    await proxier.cleanup().catch(() => {});
    if (!opts.netns) await run(["ip", "netns", "del", netns], { allowFail: true });
  }
}
