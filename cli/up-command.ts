// `kemu up`: a local multi-node cluster from plain network namespaces, returning once every node
// is Ready; the control plane, the API forwarder and one agent per node keep running in the
// background until `kemu down`.

import { resolve } from "node:path";
import { durationFlag, intFlag, parseFlags, UsageError } from "./args.ts";
import { DEFAULT_UP_TIMEOUT_MS, defaultDataDir, upCluster } from "./local/cluster.ts";
import {
  DEFAULT_CLUSTER_NAME,
  DEFAULT_NODES,
  DEFAULT_OVERLAY,
  DEFAULT_POD_CIDR,
  DEFAULT_PROXY_MODE,
  MAX_NODE_CIDR_MASK,
  MAX_NODES,
  MIN_NODE_CIDR_MASK,
  NODE_POD_CIDR_MASK,
  type Overlay,
  type ProxyMode,
  validateClusterInput,
} from "./local/plan.ts";

export const upHelp = `Usage: kemu up [flags]

Starts a local Kubernetes cluster made of network namespaces and returns once every node is Ready.
Each node is a namespace (kemu-NAME-node-I) wired by a veth to a bridge in the underlay namespace
kemu-NAME-net (172.30.K.0/24), where the control plane runs; one agent per node runs inside its
node. Nothing routes to the host's uplink. The API is forwarded to the host's 127.0.0.1.

Flags:
  --name NAME        cluster name, a DNS-1123 label of at most 20 characters (default ${DEFAULT_CLUSTER_NAME})
  --nodes N          number of nodes, 1 to ${MAX_NODES} (default ${DEFAULT_NODES})
  --overlay MODE     pod network between nodes: vxlan or host-gw (default ${DEFAULT_OVERLAY})
  --pod-cidr CIDR    IPv4 pod network, one /24 per node (default ${DEFAULT_POD_CIDR})
  --node-cidr-mask-size N
                     prefix length of each node's podCIDR, ${MIN_NODE_CIDR_MASK} to ${MAX_NODE_CIDR_MASK} (default ${NODE_POD_CIDR_MASK})
  --proxy-mode MODE  kube-proxy mode on every node: iptables or nftables (default ${DEFAULT_PROXY_MODE})
  --lb-pool CIDR     LoadBalancer addresses, reachable from the host (default 172.30.K.192/27 on the underlay)
  --cluster-domain NAME
                     the cluster DNS zone (default cluster.local)
  --dns-upstream IP[:PORT]
                     a resolver cluster DNS forwards names outside cluster.local to (repeatable;
                     default none: nothing leaves the machine)
  --data-dir DIR     state, logs and kubeconfig (default /var/lib/kemu/NAME)
  --timeout D        how long to wait for every node to be Ready (default ${DEFAULT_UP_TIMEOUT_MS / 1000}s)
  -h, --help         show this help

Example:
  kemu up --nodes 3 && export KUBECONFIG=/var/lib/kemu/kemu/kubeconfig && kubectl get nodes
`;

const flags = {
  name: { type: "string" },
  nodes: { type: "string" },
  overlay: { type: "string" },
  "pod-cidr": { type: "string" },
  "node-cidr-mask-size": { type: "string" },
  "data-dir": { type: "string" },
  "proxy-mode": { type: "string" },
  "lb-pool": { type: "string" },
  "dns-upstream": { type: "string", multiple: true },
  "cluster-domain": { type: "string" },
  timeout: { type: "string" },
} as const;

export async function upCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("up", argv, flags);
  if (values.help) {
    process.stdout.write(upHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu up: unexpected argument "${positionals[0]}"`);
  const name = (values.name as string | undefined) ?? DEFAULT_CLUSTER_NAME;
  const nodes = intFlag("up", "nodes", values.nodes, 1, MAX_NODES) ?? DEFAULT_NODES;
  const overlay = ((values.overlay as string | undefined) ?? DEFAULT_OVERLAY) as Overlay;
  const podCidr = (values["pod-cidr"] as string | undefined) ?? DEFAULT_POD_CIDR;
  const nodeCidrMaskSize =
    intFlag(
      "up",
      "node-cidr-mask-size",
      values["node-cidr-mask-size"],
      MIN_NODE_CIDR_MASK,
      MAX_NODE_CIDR_MASK,
    ) ?? NODE_POD_CIDR_MASK;
  const proxyMode = (values["proxy-mode"] as ProxyMode | undefined) ?? DEFAULT_PROXY_MODE;
  const lbPool = values["lb-pool"] as string | undefined;
  const dataDir = resolve((values["data-dir"] as string | undefined) ?? defaultDataDir(name));
  const timeoutMs = durationFlag("up", "timeout", values.timeout) ?? DEFAULT_UP_TIMEOUT_MS;
  try {
    validateClusterInput({
      name,
      nodes,
      overlay,
      podCidr,
      dataDir,
      nodeCidrMaskSize,
      proxyMode,
      lbPool,
      dnsUpstreams: values["dns-upstream"] as string[] | undefined,
      clusterDomain: values["cluster-domain"] as string | undefined,
    });
  } catch (e) {
    throw new UsageError(`kemu up: ${(e as Error).message}`);
  }

  // Ctrl-C while waiting tears down what was made instead of leaving half a cluster.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const t0 = Date.now();
  try {
    const { plan, nodes: ready } = await upCluster({
      name,
      nodes,
      overlay,
      podCidr,
      nodeCidrMaskSize,
      proxyMode,
      ...(lbPool ? { lbPool } : {}),
      ...(values["dns-upstream"] ? { dnsUpstreams: values["dns-upstream"] as string[] } : {}),
      ...(values["cluster-domain"] ? { clusterDomain: values["cluster-domain"] as string } : {}),
      dataDir,
      timeoutMs,
      signal: abort.signal,
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    const nameFlag = name === DEFAULT_CLUSTER_NAME ? "" : ` --name ${name}`;
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    process.stdout.write(
      `Cluster "${name}" is up: ${ready.length} nodes Ready in ${seconds}s ` +
        `(${plan.overlay} overlay, kube-proxy ${plan.proxyMode}, pods ${plan.podCidr}, underlay ${plan.underlay.subnet}, ` +
        `LoadBalancer pool ${plan.loadBalancer.pool}).\n\n` +
        `API:         ${plan.api.hostUrl}\n` +
        `kubeconfig:  export KUBECONFIG=${plan.files.kubeconfig}\n` +
        `logs:        ${plan.files.logs}\n\n` +
        `Look inside a node:  kemu node exec${nameFlag} node-1 -- ip addr\n` +
        `Status and teardown: kemu status${nameFlag}   kemu down${nameFlag}\n`,
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
