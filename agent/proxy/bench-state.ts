// The synthetic workload of `npm run bench:services` and of the proxy renderers' tests: a
// ProxyState of N Services x M endpoints, the same for both proxy modes so their figures compare.

import type { EndpointInfo, ProxyState, ServicePortState } from "./model.ts";

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
