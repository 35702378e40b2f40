// Node pod-CIDR allocation, after kube-controller-manager's range allocator (nodeipam with
// --allocate-node-cidrs): each node gets one /maskSize slice of the cluster CIDR in spec.podCIDR.
// Pure: the caller passes every node and writes the returned assignments back.

import { type Cidr, formatCidr, parseCidr } from "./cidr.ts";
import type { NodeObject } from "./types.ts";

export const DEFAULT_CLUSTER_CIDR = "10.244.0.0/16";
/** kube-controller-manager's --node-cidr-mask-size-ipv4 / -ipv6 defaults. */
export const DEFAULT_NODE_CIDR_MASK_SIZE_IPV4 = 24;
export const DEFAULT_NODE_CIDR_MASK_SIZE_IPV6 = 64;
/**
 * The most bits a node mask may add to the cluster prefix (at most 65536 node ranges). Upstream's
 * cidrset enforces this for IPv6 because of its bitmap; we apply it to IPv4 too, since a larger
 * split is always a misconfiguration for an emulated cluster.
 */
export const MAX_NODE_CIDR_MASK_DIFF = 16;

export interface NodeIpamConfig {
  /** The cluster-wide pod range (--cluster-cidr). Default 10.244.0.0/16. */
  clusterCidr?: string;
  /** Prefix length of each node's range. Default 24 for IPv4, 64 for IPv6. */
  nodeCidrMaskSize?: number;
}

export interface NodeCidrAllocation {
  /** Node name to the CIDR to write into its spec.podCIDR (and spec.podCIDRs). */
  assign: Map<string, string>;
  /** Nodes that need a range but none was free, in input order. */
  exhausted: string[];
}

export interface ValidNodeIpamConfig {
  cluster: Cidr;
  maskSize: number;
  /** Addresses in one node range. */
  rangeSize: bigint;
  rangeCount: bigint;
}

/** Checks the config and throws a clear error for a cluster CIDR or mask size that can't work. */
export function validateNodeIpamConfig(config: NodeIpamConfig = {}): ValidNodeIpamConfig {
  const cluster = parseCidr(config.clusterCidr ?? DEFAULT_CLUSTER_CIDR);
  const maskSize = config.nodeCidrMaskSize ?? defaultMaskSize(cluster);
  const where = `node CIDR mask size /${maskSize} for cluster CIDR ${formatCidr(cluster)}`;
  if (!Number.isInteger(maskSize) || maskSize > cluster.bits) {
    throw new Error(`invalid ${where}: must be an integer no larger than ${cluster.bits}`);
  }
  if (maskSize < cluster.prefixLength) {
    throw new Error(
      `invalid ${where}: a node range must fit inside the cluster range, so the mask must be at least /${cluster.prefixLength}`,
    );
  }
  if (maskSize - cluster.prefixLength > MAX_NODE_CIDR_MASK_DIFF) {
    const most = cluster.prefixLength + MAX_NODE_CIDR_MASK_DIFF;
    throw new Error(
      `invalid ${where}: it would split the cluster into 2^${maskSize - cluster.prefixLength} node ranges; ` +
        `at most 2^${MAX_NODE_CIDR_MASK_DIFF} are supported (use a mask of at most /${most}, or a larger cluster CIDR)`,
    );
  }
  return {
    cluster,
    maskSize,
    rangeSize: 1n << BigInt(cluster.bits - maskSize),
    rangeCount: 1n << BigInt(maskSize - cluster.prefixLength),
  };
}

/**
 * Picks a pod CIDR for every node without one: the lowest range of the cluster CIDR that overlaps
 * no range any node already holds. Existing podCIDRs are never changed, even outside the cluster
 * CIDR, but are never handed out again (a larger existing range blocks every slice inside it).
 * Nodes are served in input order, so pass them in a stable order (e.g. by creation time).
 *
 * Upstream's allocator hands out the next free range round-robin from the last allocation rather
 * than the lowest one; lowest-free keeps results reproducible from the node list alone.
 */
export function allocatePodCidrs(
  nodes: readonly NodeObject[],
  config: NodeIpamConfig = {},
): NodeCidrAllocation {
  const ipam = validateNodeIpamConfig(config);
  const taken = takenRanges(nodes, ipam.cluster);
  const assign = new Map<string, string>();
  const exhausted: string[] = [];
  let next = 0n;
  for (const node of nodes) {
    const name = node.metadata.name ?? "";
    if (hasPodCidr(node) || assign.has(name)) continue;
    next = lowestFreeIndex(ipam, taken, next);
    if (next >= ipam.rangeCount) {
      exhausted.push(name);
      continue;
    }
    const range = rangeAt(ipam, next);
    assign.set(name, formatCidr(range));
    taken.push(toSpan(range));
    next++;
  }
  return { assign, exhausted };
}

function defaultMaskSize(cluster: Cidr): number {
  return cluster.family === 4 ? DEFAULT_NODE_CIDR_MASK_SIZE_IPV4 : DEFAULT_NODE_CIDR_MASK_SIZE_IPV6;
}

function hasPodCidr(node: NodeObject): boolean {
  return Boolean(node.spec?.podCIDR) || (node.spec?.podCIDRs?.length ?? 0) > 0;
}

interface Span {
  first: bigint;
  last: bigint;
}

/**
 * Address spans already held by nodes, in the cluster's family. Host bits are tolerated here (as
 * Go's net.ParseCIDR does) since the range is in use either way; unparseable values are ignored.
 */
function takenRanges(nodes: readonly NodeObject[], cluster: Cidr): Span[] {
  const spans: Span[] = [];
  for (const node of nodes) {
    for (const text of new Set([node.spec?.podCIDR, ...(node.spec?.podCIDRs ?? [])])) {
      const range = text ? tryParseCidr(text) : undefined;
      if (range && range.family === cluster.family) spans.push(toSpan(range));
    }
  }
  return spans;
}

/** From `start`, skips past every range index that overlaps a taken span. */
function lowestFreeIndex(ipam: ValidNodeIpamConfig, taken: readonly Span[], start: bigint): bigint {
  let index = start;
  while (index < ipam.rangeCount) {
    const candidate = toSpan(rangeAt(ipam, index));
    const clash = taken.find((span) => span.first <= candidate.last && candidate.first <= span.last);
    if (!clash) return index;
    // Jump straight past the clash: a big existing range can cover many node ranges.
    index = (clash.last - ipam.cluster.network) / ipam.rangeSize + 1n;
  }
  return index;
}

function rangeAt(ipam: ValidNodeIpamConfig, index: bigint): Cidr {
  return {
    ...ipam.cluster,
    network: ipam.cluster.network + index * ipam.rangeSize,
    prefixLength: ipam.maskSize,
  };
}

function toSpan(range: Cidr): Span {
  return { first: range.network, last: range.network + (1n << BigInt(range.bits - range.prefixLength)) - 1n };
}

function tryParseCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text, { allowHostBits: true });
  } catch {
    return undefined;
  }
}
