// The local cluster as pure data (Mininet's topo: the spec, separate from what builds it): every
// name, address, file and process argv `kemu up` will create, computed from a handful of inputs.
// Nothing here touches the system, so the whole layout is unit tested and recorded verbatim in
// DIR/cluster.json for `kemu down` and `kemu status`.
//
// Layout for cluster NAME with underlay index K:
//   kemu-NAME-net      underlay namespace: bridge br0 172.30.K.1/24, the control plane
//   kemu-NAME-node-I   node I: eth0 172.30.K.(10+I)/24, its agent; the veth peer kKnI is a br0 port
//   kemu-NAME-*        anything else the agents make (pod namespaces) shares the prefix
// No namespace gets a default route: nothing can leave the machine.

import { join } from "node:path";
import { parseDnsUpstream } from "../../dns/host-port.ts";
import { cidrOverlaps, formatCidr, parseCidr } from "../../emulator/cidr.ts";
import { validateNodeIpamConfig } from "../../emulator/node-ipam.ts";
import { nodeName } from "../../emulator/node-names.ts";

export const OVERLAYS = ["vxlan", "host-gw"] as const;
export const PROXY_MODES = ["iptables", "nftables"] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];
export const DEFAULT_PROXY_MODE: ProxyMode = "iptables";
/** The service network, as kube-apiserver's --service-cluster-ip-range default. */
export const SERVICE_CIDR = "10.96.0.0/12";
/** LoadBalancer addresses: by default 172.30.K.192/27 on the underlay; the host reaches them. */
export const LB_POOL_OFFSET = 192;
export const LB_POOL_PREFIX = 27;
/** The host's own address on the underlay (its end of the LoadBalancer link). */
export const HOST_ADDRESS_OFFSET = 254;
export type Overlay = (typeof OVERLAYS)[number];

export const DEFAULT_CLUSTER_NAME = "kemu";
export const DEFAULT_NODES = 3;
export const MAX_NODES = 50;
export const DEFAULT_OVERLAY: Overlay = "vxlan";
export const DEFAULT_POD_CIDR = "10.244.0.0/16";
/** Parent of default data dirs: /var/lib/kemu/NAME. */
export const DEFAULT_DATA_ROOT = "/var/lib/kemu";
/**
 * Cluster names are DNS-1123 labels of at most this many characters. Interface names never embed
 * the cluster name (they must fit IFNAMSIZ, 15 characters), but namespaces, the agents' pod
 * namespaces and kubeconfig contexts do, and a short prefix keeps them readable in `ip netns`.
 */
export const MAX_CLUSTER_NAME_LENGTH = 20;
/** Linux IFNAMSIZ minus the terminating NUL. */
export const MAX_INTERFACE_NAME_LENGTH = 15;
/** sockaddr_un.sun_path is 108 bytes including the NUL. */
export const MAX_UNIX_SOCKET_PATH_LENGTH = 107;
/** Underlays are 172.30.K.0/24 with K in 0..255; pod CIDRs must stay clear of the whole /16. */
export const UNDERLAY_SUPERNET = "172.30.0.0/16";
export const MAX_UNDERLAY_INDEX = 255;
/** The port the API listens on inside the underlay (nodes dial https://172.30.K.1:6443). */
export const API_PORT = 6443;
export const UNDERLAY_MTU = 1500;
export const BRIDGE = "br0";
export const NODE_INTERFACE = "eth0";
/** Node I's underlay address is 172.30.K.(NODE_ADDRESS_OFFSET + I). */
export const NODE_ADDRESS_OFFSET = 10;
/** By default the pod network is split into one /24 per node (as kube-controller-manager does). */
export const NODE_POD_CIDR_MASK = 24;
/** The smallest node range still holds a gateway and one pod (/30); the largest a /16. */
export const MIN_NODE_CIDR_MASK = 16;
export const MAX_NODE_CIDR_MASK = 30;

export interface ClusterInput {
  name: string;
  nodes: number;
  overlay: Overlay;
  podCidr: string;
  /** Absolute path of the cluster's state directory. */
  dataDir: string;
  /** Prefix length of each node's podCIDR (default 24). */
  nodeCidrMaskSize?: number;
  /** kube-proxy mode of every agent (default iptables). */
  proxyMode?: ProxyMode;
  /** LoadBalancer address pool (an IPv4 CIDR); default 172.30.K.192/27. */
  lbPool?: string;
  /** Resolvers cluster DNS forwards names outside the zone to (default none). */
  dnsUpstreams?: string[];
  /** The cluster DNS zone (default cluster.local). */
  clusterDomain?: string;
}

export interface PlanInput extends ClusterInput {
  /** Absolute path of the `kemu` executable the background processes run. */
  kemu: string;
  /** K: the underlay is 172.30.K.0/24 (see pickUnderlayIndex). */
  underlayIndex: number;
  /** Port on the host's 127.0.0.1 where the forwarder exposes the API. */
  hostPort: number;
}

/** A background process: runnable as `argv` as is (the `ip netns exec` prefix is included). */
export interface ProcessPlan {
  /** `api`, `forward`, `agent-node-1`; also names the log file. */
  name: string;
  /** The namespace it runs in; absent for the host's. */
  netns?: string;
  argv: string[];
  /** stdout and stderr go here. */
  log: string;
  /** Added to the inherited environment. */
  env: Record<string, string>;
}

export interface NodePlan {
  /** The Kubernetes Node name: node-1 .. node-N. */
  name: string;
  /** 1-based. */
  index: number;
  netns: string;
  /** The node's end of its veth, inside the node namespace. */
  interface: string;
  /** The other end, a port of the bridge in the underlay namespace. */
  bridgePort: string;
  address: string;
  prefixLength: number;
  /** The agent's own state (CNI config, IPAM, pods): never shared with another node. */
  dataDir: string;
  agent: ProcessPlan;
}

export interface ClusterPlan {
  version: 1;
  name: string;
  overlay: Overlay;
  podCidr: string;
  /** Absent in plans written before `kemu node add` existed. */
  clusterDomain?: string;
  nodeCidrMaskSize: number;
  proxyMode: ProxyMode;
  dataDir: string;
  /** Every namespace the agents make is named with this prefix too; `kemu down` removes them all. */
  netnsPrefix: string;
  underlay: {
    netns: string;
    bridge: string;
    index: number;
    subnet: string;
    /** The bridge's address, where the API listens. */
    address: string;
    prefixLength: number;
    mtu: number;
  };
  /**
   * How the host reaches LoadBalancer addresses (as cloud-provider-kind or MetalLB's layer 2 mode
   * make them reachable): a veth from the host to the underlay bridge, the host's end holding one
   * address and a route for the pool only. The node that announces an address answers ARP for it.
   */
  loadBalancer: {
    pool: string;
    hostInterface: string;
    bridgePort: string;
    hostAddress: string;
  };
  api: {
    dataDir: string;
    /** What nodes dial, over the underlay. */
    url: string;
    /** What the host dials: the forwarder on loopback. */
    hostUrl: string;
    hostPort: number;
    unixSocket: string;
    caFile: string;
    tokenFile: string;
    process: ProcessPlan;
  };
  forward: ProcessPlan;
  nodes: NodePlan[];
  files: {
    /** For the host: https://127.0.0.1:PORT. */
    kubeconfig: string;
    /** For the nodes: https://172.30.K.1:6443. */
    nodeKubeconfig: string;
    state: string;
    logs: string;
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks a cluster name; the message names the flag. */
export function validateClusterName(name: string): void {
  if (!DNS_LABEL.test(name)) {
    throw new Error(
      `--name "${name}" must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit`,
    );
  }
  if (name.length > MAX_CLUSTER_NAME_LENGTH) {
    throw new Error(
      `--name "${name}" is ${name.length} characters; at most ${MAX_CLUSTER_NAME_LENGTH} are allowed`,
    );
  }
}

/** Checks the pod network: IPv4, one /24 per node, clear of the underlay. Returns it canonical. */
export function validatePodCidr(podCidr: string, nodes: number, mask = NODE_POD_CIDR_MASK): string {
  if (!Number.isInteger(mask) || mask < MIN_NODE_CIDR_MASK || mask > MAX_NODE_CIDR_MASK) {
    throw new Error(
      `--node-cidr-mask-size must be an integer from ${MIN_NODE_CIDR_MASK} to ${MAX_NODE_CIDR_MASK}, got ${mask}`,
    );
  }
  let valid: ReturnType<typeof validateNodeIpamConfig>;
  try {
    if (parseCidr(podCidr).family !== 4) throw new Error(`${podCidr}: only IPv4 pod networks are supported`);
    valid = validateNodeIpamConfig({ clusterCidr: podCidr, nodeCidrMaskSize: mask });
  } catch (e) {
    throw new Error(`--pod-cidr: ${(e as Error).message}`);
  }
  const text = formatCidr(valid.cluster);
  if (valid.cluster.family !== 4) throw new Error(`--pod-cidr ${text}: only IPv4 pod networks are supported`);
  if (valid.rangeCount < BigInt(nodes)) {
    throw new Error(
      `--pod-cidr ${text} holds ${valid.rangeCount} /${mask} node ranges but ${nodes} nodes need one each`,
    );
  }
  if (cidrOverlaps(valid.cluster, UNDERLAY_SUPERNET)) {
    throw new Error(`--pod-cidr ${text} overlaps the node underlay ${UNDERLAY_SUPERNET}; pick another range`);
  }
  return text;
}

/** Checks everything the user chose; throws the first problem with the flag it concerns. */
export function validateClusterInput(input: ClusterInput): void {
  validateClusterName(input.name);
  if (!Number.isInteger(input.nodes) || input.nodes < 1 || input.nodes > MAX_NODES) {
    throw new Error(`--nodes must be an integer between 1 and ${MAX_NODES}, got ${input.nodes}`);
  }
  if (input.proxyMode !== undefined && !(PROXY_MODES as readonly string[]).includes(input.proxyMode)) {
    throw new Error(`--proxy-mode must be one of ${PROXY_MODES.join(", ")}, got "${input.proxyMode}"`);
  }
  if (input.lbPool !== undefined) validateLbPool(input.lbPool, input.podCidr);
  if (input.clusterDomain !== undefined) validateClusterDomain(input.clusterDomain);
  for (const u of input.dnsUpstreams ?? []) {
    try {
      parseDnsUpstream(u, { ipv4Only: true });
    } catch (e) {
      throw new Error(
        `--dns-upstream must be an IPv4 address with an optional :PORT: ${(e as Error).message}`,
      );
    }
  }
  if (!(OVERLAYS as readonly string[]).includes(input.overlay)) {
    throw new Error(`--overlay must be one of ${OVERLAYS.join(", ")}, got "${input.overlay}"`);
  }
  validatePodCidr(input.podCidr, input.nodes, input.nodeCidrMaskSize);
  if (!input.dataDir.startsWith("/"))
    throw new Error(`--data-dir must be an absolute path, got "${input.dataDir}"`);
  const socket = apiSocketPath(input.dataDir);
  if (Buffer.byteLength(socket) > MAX_UNIX_SOCKET_PATH_LENGTH) {
    throw new Error(
      `--data-dir "${input.dataDir}" is too long: the API socket ${socket} must fit ${MAX_UNIX_SOCKET_PATH_LENGTH} bytes`,
    );
  }
}

/** The DNS zone: a DNS-1123 subdomain of at most 253 characters. */
export function validateClusterDomain(zone: string): void {
  const label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
  if (zone.length > 253 || !new RegExp(`^${label}(\\.${label})*$`).test(zone)) {
    throw new Error(`--cluster-domain must be a DNS-1123 subdomain such as cluster.local, got "${zone}"`);
  }
}

/** A LoadBalancer pool: an IPv4 CIDR of /16 to /30, clear of the pod and service networks. */
export function validateLbPool(pool: string, podCidr: string): string {
  let cidr: ReturnType<typeof parseCidr>;
  try {
    cidr = parseCidr(pool);
  } catch (e) {
    throw new Error(`--lb-pool: ${(e as Error).message}`);
  }
  const text = formatCidr(cidr);
  if (cidr.family !== 4) throw new Error(`--lb-pool ${text}: only IPv4 pools are supported`);
  if (cidr.prefixLength < 16 || cidr.prefixLength > 30) {
    throw new Error(`--lb-pool ${text}: the prefix length must be between /16 and /30`);
  }
  for (const [what, other] of [
    ["pod network", podCidr],
    ["service network", SERVICE_CIDR],
  ]) {
    let overlaps = false;
    try {
      overlaps = cidrOverlaps(cidr, other);
    } catch {}
    if (overlaps) throw new Error(`--lb-pool ${text} overlaps the ${what} ${other}`);
  }
  return text;
}

export function apiSocketPath(dataDir: string): string {
  return join(dataDir, "api.sock");
}

export function underlayNetns(name: string): string {
  return `kemu-${name}-net`;
}

export function nodeNetns(name: string, node: string): string {
  return `kemu-${name}-${node}`;
}

/** Node I's veth end on the bridge: k<K>n<I>, at most "k255n50" (7 characters). */
export function bridgePortName(underlayIndex: number, nodeIndex: number): string {
  return `k${underlayIndex}n${nodeIndex}`;
}

/** The lowest underlay index no existing cluster uses. */
export function pickUnderlayIndex(used: Iterable<number>): number {
  const taken = new Set(used);
  for (let k = 0; k <= MAX_UNDERLAY_INDEX; k++) if (!taken.has(k)) return k;
  throw new Error(
    `all ${MAX_UNDERLAY_INDEX + 1} underlays 172.30.0-255.0/24 are in use; remove a cluster first`,
  );
}

/** The underlay index K of an address in 172.30.K.0/24, or undefined for anything else. */
export function underlayIndexOf(address: string): number | undefined {
  const m = /^172\.30\.(\d{1,3})\.\d{1,3}$/.exec(address);
  return m && Number(m[1]) <= MAX_UNDERLAY_INDEX ? Number(m[1]) : undefined;
}

/** The cluster name of an underlay namespace (`kemu-NAME-net`), or undefined. */
export function clusterOfUnderlayNetns(netns: string): string | undefined {
  const m = /^kemu-(.+)-net$/.exec(netns);
  return m ? m[1] : undefined;
}

/**
 * Two names nest when one cluster's namespace prefix starts with the other's ("a" and "a-b":
 * kemu-a-b-net starts with kemu-a-). Such clusters could not be told apart by prefix, so `kemu up`
 * refuses a name that nests with an existing cluster.
 */
export function namesNest(a: string, b: string): boolean {
  return a !== b && (`${a}-`.startsWith(`${b}-`) || `${b}-`.startsWith(`${a}-`));
}

/**
 * The namespaces of `all` that belong to cluster `name`: those with its prefix, less those of
 * another known cluster whose longer name shares the prefix.
 */
export function clusterNamespaces(
  name: string,
  all: readonly string[],
  otherClusters: readonly string[],
): string[] {
  const prefix = `kemu-${name}-`;
  const nested = otherClusters.filter((o) => o !== name && o.startsWith(`${name}-`)).map((o) => `kemu-${o}-`);
  return all.filter((ns) => ns.startsWith(prefix) && !nested.some((p) => ns.startsWith(p)));
}

/**
 * argv that runs `command` in a named network namespace but in the host's mount namespace.
 * `ip netns exec` would give the process a private mount namespace, and then the pod namespaces
 * an agent creates (bind mounts under /run/netns) would live and die with that one agent process:
 * invisible to the host's `ip netns exec` and gone for the agent that replaces it after a restart.
 */
export function inNetnsKeepingMounts(netns: string | undefined, command: string[]): string[] {
  return netns ? ["nsenter", `--net=/run/netns/${netns}`, "--", ...command] : command;
}

export function buildPlan(input: PlanInput): ClusterPlan {
  validateClusterInput(input);
  if (
    !Number.isInteger(input.underlayIndex) ||
    input.underlayIndex < 0 ||
    input.underlayIndex > MAX_UNDERLAY_INDEX
  ) {
    throw new Error(
      `underlay index must be an integer from 0 to ${MAX_UNDERLAY_INDEX}, got ${input.underlayIndex}`,
    );
  }
  if (!Number.isInteger(input.hostPort) || input.hostPort < 1 || input.hostPort > 65535) {
    throw new Error(`host port must be an integer from 1 to 65535, got ${input.hostPort}`);
  }
  const { name, dataDir, kemu } = input;
  const podCidr = validatePodCidr(input.podCidr, input.nodes, input.nodeCidrMaskSize);
  const nodeCidrMaskSize = input.nodeCidrMaskSize ?? NODE_POD_CIDR_MASK;
  const proxyMode = input.proxyMode ?? DEFAULT_PROXY_MODE;
  const clusterDomain = input.clusterDomain ?? "cluster.local";
  const lbPool = input.lbPool
    ? validateLbPool(input.lbPool, podCidr)
    : `172.30.${input.underlayIndex}.${LB_POOL_OFFSET}/${LB_POOL_PREFIX}`;
  const k = input.underlayIndex;
  const apiAddress = `172.30.${k}.1`;
  const apiUrl = `https://${apiAddress}:${API_PORT}`;
  const apiDir = join(dataDir, "api");
  const caFile = join(apiDir, "ca.crt");
  const tokenFile = join(apiDir, "token");
  const unixSocket = apiSocketPath(dataDir);
  const logs = join(dataDir, "logs");
  const env = { KEMU_CLUSTER: name };
  const underlay = underlayNetns(name);
  const proc = (procName: string, netns: string | undefined, command: string[]): ProcessPlan => ({
    name: procName,
    ...(netns ? { netns } : {}),
    argv: inNetnsKeepingMounts(netns, command),
    log: join(logs, `${procName}.log`),
    env,
  });

  const nodeCtx: NodeContext = {
    name,
    dataDir,
    kemu,
    underlayIndex: k,
    apiUrl,
    tokenFile,
    caFile,
    overlay: input.overlay,
    podCidr,
    proxyMode,
    clusterDomain,
    logs,
  };
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= input.nodes; i++) nodes.push(nodePlan(nodeCtx, i));

  const plan: ClusterPlan = {
    version: 1,
    name,
    overlay: input.overlay,
    podCidr,
    clusterDomain,
    nodeCidrMaskSize,
    proxyMode,
    dataDir,
    netnsPrefix: `kemu-${name}-`,
    underlay: {
      netns: underlay,
      bridge: BRIDGE,
      index: k,
      subnet: `172.30.${k}.0/24`,
      address: apiAddress,
      prefixLength: 24,
      mtu: UNDERLAY_MTU,
    },
    loadBalancer: {
      pool: lbPool,
      hostInterface: `kemu-h${k}`,
      bridgePort: `h${k}`,
      hostAddress: `172.30.${k}.${HOST_ADDRESS_OFFSET}`,
    },
    api: {
      dataDir: apiDir,
      url: apiUrl,
      hostUrl: `https://127.0.0.1:${input.hostPort}`,
      hostPort: input.hostPort,
      unixSocket,
      caFile,
      tokenFile,
      process: proc("api", underlay, [
        kemu,
        "api",
        "--data-dir",
        apiDir,
        "--host",
        apiAddress,
        "--port",
        String(API_PORT),
        "--unix-socket",
        unixSocket,
        "--tls-name",
        apiAddress,
        "--cluster-cidr",
        podCidr,
        "--node-cidr-mask-size",
        String(nodeCidrMaskSize),
        "--service-cluster-ip-range",
        SERVICE_CIDR,
        "--load-balancer-pool",
        lbPool,
        "--route-pod-cidrs",
        "--cluster-dns",
        "--cluster-domain",
        clusterDomain,
        ...(input.dnsUpstreams ?? []).flatMap((u) => ["--dns-upstream", u]),
      ]),
    },
    forward: proc("forward", undefined, [
      kemu,
      "forward",
      "--listen",
      `127.0.0.1:${input.hostPort}`,
      "--to-unix",
      unixSocket,
    ]),
    nodes,
    files: {
      kubeconfig: join(dataDir, "kubeconfig"),
      nodeKubeconfig: join(dataDir, "node-kubeconfig"),
      state: join(dataDir, "cluster.json"),
      logs,
    },
  };
  const long = interfaceNames(plan).filter((n) => n.length > MAX_INTERFACE_NAME_LENGTH);
  if (long.length)
    throw new Error(`interface names longer than ${MAX_INTERFACE_NAME_LENGTH}: ${long.join(", ")}`);
  return plan;
}

/** What a node's plan is built from: the cluster's settings, none of them per node. */
interface NodeContext {
  name: string;
  dataDir: string;
  kemu: string;
  underlayIndex: number;
  apiUrl: string;
  tokenFile: string;
  caFile: string;
  overlay: Overlay;
  podCidr: string;
  proxyMode: ProxyMode;
  clusterDomain: string;
  logs: string;
}

function nodePlan(c: NodeContext, i: number): NodePlan {
  const node = nodeName(i);
  const netns = nodeNetns(c.name, node);
  const nodeDir = join(c.dataDir, "nodes", node);
  const agent = `agent-${node}`;
  return {
    name: node,
    index: i,
    netns,
    interface: NODE_INTERFACE,
    bridgePort: bridgePortName(c.underlayIndex, i),
    address: `172.30.${c.underlayIndex}.${NODE_ADDRESS_OFFSET + i}`,
    prefixLength: 24,
    dataDir: nodeDir,
    agent: {
      name: agent,
      netns,
      argv: inNetnsKeepingMounts(netns, [
        c.kemu,
        "agent",
        "--api",
        c.apiUrl,
        "--token-file",
        c.tokenFile,
        "--ca-file",
        c.caFile,
        "--node",
        node,
        "--data-dir",
        nodeDir,
        "--overlay",
        c.overlay,
        "--cluster-cidr",
        c.podCidr,
        "--proxy-mode",
        c.proxyMode,
        "--service-cidr",
        SERVICE_CIDR,
        "--cluster-domain",
        c.clusterDomain,
      ]),
      log: join(c.logs, `${agent}.log`),
      env: { KEMU_CLUSTER: c.name },
    },
  };
}

/**
 * The plan with one more node (`kemu node add`): the next free index after the highest, its
 * address on the underlay and an agent like the others'. Refuses when the cluster is at MAX_NODES
 * or its pod CIDR has no podCIDR left for another node.
 */
export function planWithNode(plan: ClusterPlan, kemu: string): { plan: ClusterPlan; node: NodePlan } {
  if (plan.nodes.length >= MAX_NODES) {
    throw new Error(
      `cluster "${plan.name}" already has ${plan.nodes.length} nodes, the most kemu up makes (${MAX_NODES})`,
    );
  }
  const index = Math.max(0, ...plan.nodes.map((n) => n.index)) + 1;
  if (index > MAX_NODES) throw new Error(`node indexes up to ${MAX_NODES} are taken; remove a node first`);
  validatePodCidr(plan.podCidr, plan.nodes.length + 1, plan.nodeCidrMaskSize);
  const node = nodePlan(
    {
      name: plan.name,
      dataDir: plan.dataDir,
      kemu,
      underlayIndex: plan.underlay.index,
      apiUrl: plan.api.url,
      tokenFile: plan.api.tokenFile,
      caFile: plan.api.caFile,
      overlay: plan.overlay,
      podCidr: plan.podCidr,
      proxyMode: plan.proxyMode,
      clusterDomain: plan.clusterDomain ?? "cluster.local",
      logs: plan.files.logs,
    },
    index,
  );
  return { plan: { ...plan, nodes: [...plan.nodes, node] }, node };
}

/** The plan without node `name` (`kemu node remove`), with a clear error naming the nodes there are. */
export function planWithoutNode(plan: ClusterPlan, name: string): { plan: ClusterPlan; node: NodePlan } {
  const node = planNode(plan, name);
  if (plan.nodes.length === 1)
    throw new Error(`${name} is the cluster's only node; use kemu down to remove the cluster`);
  return { plan: { ...plan, nodes: plan.nodes.filter((n) => n !== node) }, node };
}

export function planNode(plan: ClusterPlan, name: string): NodePlan {
  const node = plan.nodes.find((n) => n.name === name);
  if (!node) {
    throw new Error(
      `cluster "${plan.name}" has no node "${name}"; its nodes: ${plan.nodes.map((n) => n.name).join(", ")}`,
    );
  }
  return node;
}

/** Every interface name the topology creates (bridge, both veth ends, the host's LB link). */
export function interfaceNames(plan: ClusterPlan): string[] {
  return [
    plan.underlay.bridge,
    plan.loadBalancer.hostInterface,
    plan.loadBalancer.bridgePort,
    ...plan.nodes.flatMap((n) => [n.interface, n.bridgePort]),
  ];
}

/** Every namespace the launcher itself creates (the agents add pod namespaces under the same prefix). */
export function planNamespaces(plan: ClusterPlan): string[] {
  return [plan.underlay.netns, ...plan.nodes.map((n) => n.netns)];
}

/** Every background process in start order: api, forwarder, agents. */
export function planProcesses(plan: ClusterPlan): ProcessPlan[] {
  return [plan.api.process, plan.forward, ...plan.nodes.map((n) => n.agent)];
}
