// `kemu api`: the control plane in the foreground until SIGINT/SIGTERM.

import { startApiServer } from "../api/server.ts";
import { parseDnsUpstream } from "../dns/host-port.ts";
import { validateNodeIpamConfig } from "../emulator/node-ipam.ts";
import { AddressPool, parsePortRange, ServiceIPRange } from "../emulator/range-allocator.ts";
import { parseIP } from "../emulator/validation.ts";
import { durationFlag, intFlag, parseFlags, UsageError } from "./args.ts";

export const apiHelp = `Usage: kemu api --data-dir DIR [flags]

Runs the kemu control plane (Kubernetes API, store, scheduler, node IPAM, node lifecycle) in the
foreground. Writes DIR/token and DIR/kubeconfig (context "kemu"); point kubectl at it with
  KUBECONFIG=DIR/kubeconfig kubectl get nodes

Flags:
  --data-dir DIR                 state directory (sqlite store, token, kubeconfig); required
  --port N                       listen port (default 6443; 0 picks a free one)
  --host ADDR                    listen address (default 127.0.0.1)
  --cluster-cidr CIDR            pod network split into node podCIDRs (default 10.244.0.0/16)
  --node-cidr-mask-size N        prefix length of each node's podCIDR (default 24)
  --node-monitor-grace-period D  lease age after which a node turns NotReady (default 40s)
  --pod-eviction-timeout D       how long pods tolerate an unreachable node (default 5m)
  --event-ttl D                  how long Events are kept (default 1h)
  --service-cluster-ip-range CIDR
                                 Service cluster IPs (default 10.96.0.0/12; the first address is
                                 the kubernetes Service's)
  --service-node-port-range MIN-MAX
                                 NodePorts of NodePort and LoadBalancer Services (default 30000-32767)
  --load-balancer-pool CIDR|A-B  addresses for LoadBalancer Services (default none: they stay pending)
  --advertise-address IP         the API server's address in the kubernetes Endpoints (default --host)
  --route-pod-cidrs              route every node's podCIDR via its InternalIP from this namespace
                                 (local clusters: puts the control plane on the pod network)
  --cluster-dns                  deploy cluster DNS: Service kube-system/kube-dns at the tenth
                                 service address and Deployment coredns running kemu/dns
  --cluster-domain NAME          the DNS zone (default cluster.local)
  --dns-upstream IP[:PORT]       resolver cluster DNS forwards other names to (repeatable; default
                                 none: names outside the zone are not forwarded)
  --unix-socket PATH             also serve on this Unix socket (local clusters forward to it)
  --tls-name NAME                extra name or address for the serving certificate (repeatable)
  --kubeconfig-server URL        server URL written into kubeconfigs (default: the listening
                                 address; e.g. a published port on the host)
  --publish-dir DIR              also write token, ca.crt and kubeconfig here (Docker mode: read by
                                 the node containers and the host)
  --ready-file PATH              create PATH once the API serves (a container health check)
  --docker-socket PATH           manage node containers through this Docker socket
                                 (/kemu/v1/nodes: add, remove, stop, start)
  --docker-nodes N               with --docker-socket: once started, add or remove node
                                 containers until there are N (docker-compose.yml's KEMU_NODES)
  -h, --help                     show this help
`;

const flags = {
  "data-dir": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  "cluster-cidr": { type: "string" },
  "node-cidr-mask-size": { type: "string" },
  "node-monitor-grace-period": { type: "string" },
  "pod-eviction-timeout": { type: "string" },
  "event-ttl": { type: "string" },
  "service-cluster-ip-range": { type: "string" },
  "service-node-port-range": { type: "string" },
  "load-balancer-pool": { type: "string" },
  "advertise-address": { type: "string" },
  "route-pod-cidrs": { type: "boolean" },
  "cluster-dns": { type: "boolean" },
  "cluster-domain": { type: "string" },
  "dns-upstream": { type: "string", multiple: true },
  "unix-socket": { type: "string" },
  "tls-name": { type: "string", multiple: true },
  "kubeconfig-server": { type: "string" },
  "publish-dir": { type: "string" },
  "ready-file": { type: "string" },
  "docker-socket": { type: "string" },
  "docker-nodes": { type: "string" },
} as const;

export async function apiCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("api", argv, flags);
  if (values.help) {
    process.stdout.write(apiHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu api: unexpected argument "${positionals[0]}"`);
  const dataDir = values["data-dir"];
  if (typeof dataDir !== "string" || !dataDir) throw new UsageError("kemu api: --data-dir is required");
  const clusterCidr = values["cluster-cidr"] as string | undefined;
  const nodeCidrMaskSize = intFlag("api", "node-cidr-mask-size", values["node-cidr-mask-size"], 1, 128);
  try {
    validateNodeIpamConfig({ clusterCidr, nodeCidrMaskSize });
  } catch (e) {
    throw new UsageError(`kemu api: --cluster-cidr/--node-cidr-mask-size: ${(e as Error).message}`);
  }
  const serviceCidr = values["service-cluster-ip-range"] as string | undefined;
  const nodePortRange = values["service-node-port-range"] as string | undefined;
  const loadBalancerPool = values["load-balancer-pool"] as string | undefined;
  const advertiseAddress = values["advertise-address"] as string | undefined;
  checkServiceFlags(serviceCidr, nodePortRange, loadBalancerPool, advertiseAddress);
  const zone = (values["cluster-domain"] as string | undefined) ?? "cluster.local";
  if (
    !/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(zone) ||
    zone.length > 253
  ) {
    throw new UsageError(`kemu api: --cluster-domain must be a DNS-1123 subdomain, got "${zone}"`);
  }
  const upstreams = (values["dns-upstream"] as string[] | undefined) ?? [];
  for (const u of upstreams) {
    try {
      parseDnsUpstream(u);
    } catch (e) {
      throw new UsageError(`kemu api: --dns-upstream must be IP or IP:PORT: ${(e as Error).message}`);
    }
  }
  if ((values["cluster-domain"] !== undefined || upstreams.length) && !values["cluster-dns"]) {
    throw new UsageError("kemu api: --cluster-domain and --dns-upstream need --cluster-dns");
  }
  const kubeconfigServer = values["kubeconfig-server"] as string | undefined;
  if (kubeconfigServer !== undefined && !/^https:\/\/[^/\s]+\/?$/.test(kubeconfigServer)) {
    throw new UsageError(
      `kemu api: --kubeconfig-server must be an https://HOST[:PORT] URL, got "${kubeconfigServer}"`,
    );
  }
  const dockerSocket = values["docker-socket"] as string | undefined;
  if (dockerSocket !== undefined && !dockerSocket)
    throw new UsageError("kemu api: --docker-socket needs a path");
  const nodeCount = intFlag("api", "docker-nodes", values["docker-nodes"], 1, 100);
  if (nodeCount !== undefined && !dockerSocket)
    throw new UsageError("kemu api: --docker-nodes needs --docker-socket");
  const evictionMs = durationFlag("api", "pod-eviction-timeout", values["pod-eviction-timeout"]);
  const server = await startApiServer({
    dataDir,
    port: intFlag("api", "port", values.port, 0, 65535),
    host: values.host as string | undefined,
    clusterCidr,
    nodeCidrMaskSize,
    nodeMonitorGracePeriodMs: durationFlag(
      "api",
      "node-monitor-grace-period",
      values["node-monitor-grace-period"],
    ),
    podEvictionTimeoutSeconds: evictionMs === undefined ? undefined : Math.round(evictionMs / 1000),
    eventTtlMs: durationFlag("api", "event-ttl", values["event-ttl"]),
    unixSocket: values["unix-socket"] as string | undefined,
    tlsNames: values["tls-name"] as string[] | undefined,
    serviceCidr,
    nodePortRange,
    loadBalancerPool,
    advertiseAddress,
    routePodCidrs: values["route-pod-cidrs"] === true,
    kubeconfigServer: kubeconfigServer?.replace(/\/$/, ""),
    publishDir: values["publish-dir"] as string | undefined,
    readyFile: values["ready-file"] as string | undefined,
    nodeCount,
    // Loaded only when asked for: dockerode and its dependencies cost every other kemu process.
    ...(dockerSocket
      ? { nodeProvider: new (await import("../api/docker-nodes.ts")).DockerNodes(dockerSocket) }
      : {}),
    ...(values["cluster-dns"] ? { clusterDns: { zone, upstreams } } : {}),
  });
  // Handlers first: whoever reads the line below may signal us at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  process.stdout.write(`kemu api listening on ${server.url}\nkubeconfig: ${server.kubeconfigPath}\n`);
  await stopped;
  await server.close();
}

/** Refuses bad Service ranges up front, naming the flag, instead of failing at the first Service. */
export function checkServiceFlags(
  serviceCidr: string | undefined,
  nodePortRange: string | undefined,
  loadBalancerPool: string | undefined,
  advertiseAddress?: string,
): void {
  let range: ServiceIPRange | undefined;
  try {
    range = new ServiceIPRange(serviceCidr ?? "10.96.0.0/12");
  } catch (e) {
    throw new UsageError(`kemu api: --service-cluster-ip-range: ${(e as Error).message}`);
  }
  if (nodePortRange !== undefined) {
    try {
      parsePortRange(nodePortRange);
    } catch (e) {
      throw new UsageError(`kemu api: --service-node-port-range: ${(e as Error).message}`);
    }
  }
  if (loadBalancerPool !== undefined) {
    let pool: AddressPool;
    try {
      pool = new AddressPool(loadBalancerPool);
    } catch (e) {
      throw new UsageError(`kemu api: --load-balancer-pool: ${(e as Error).message}`);
    }
    if (pool.overlapsCidr(range.cidr)) {
      throw new UsageError(
        `kemu api: --load-balancer-pool ${pool.text} overlaps the service range ${range.cidr}; pick addresses outside it`,
      );
    }
  }
  if (advertiseAddress !== undefined && !parseIP(advertiseAddress)) {
    throw new UsageError(`kemu api: --advertise-address must be an IP address, got "${advertiseAddress}"`);
  }
}
