// kube-proxy's iptables mode as a pure function: a ProxyState becomes the `iptables-restore` input
// upstream's syncProxyRules (pkg/proxy/iptables/proxier.go) writes, chain for chain and rule for
// rule, so `iptables-save` on a kemu node reads like a real node's:
//
//   nat     PREROUTING, OUTPUT -> KUBE-SERVICES   one rule per ClusterIP / external IP / LB IP,
//                                                 last a jump to KUBE-NODEPORTS for local addresses
//           KUBE-NODEPORTS                        one rule per NodePort -> KUBE-EXT-<hash>
//           KUBE-EXT-<hash>                       external traffic: masquerade (policy Cluster) or
//                                                 pod/host short-circuits (policy Local), then
//                                                 KUBE-SVC-<hash> or KUBE-SVL-<hash>
//           KUBE-SVC-<hash> / KUBE-SVL-<hash>     ClientIP affinity (`-m recent --rcheck`), then one
//                                                 `-m statistic --probability 1/(n-i)` rule per endpoint
//           KUBE-SEP-<hash>                       hairpin masquerade, DNAT to the endpoint
//           KUBE-MARK-MASQ, POSTROUTING -> KUBE-POSTROUTING   mark 0x4000, masquerade what is marked
//   filter  KUBE-SERVICES, KUBE-EXTERNAL-SERVICES  REJECT (no endpoints) / DROP (no local endpoints)
//           KUBE-FORWARD                          accept marked and established forwarded traffic
//           KUBE-NODEPORTS, KUBE-PROXY-FIREWALL   declared and jumped to as upstream (left empty:
//                                                 kemu has no health-check node ports or source ranges)
//           KUBE-FIREWALL                         drop martian 127.0.0.0/8 traffic (localhost NodePorts)
//
// Services and endpoints come sorted from the model, so the text is deterministic. The jumps from
// the built-in chains, stale-chain deletion and cleanup are computed here too (from parsed
// `iptables-save` output); proxier.ts only runs the commands.

import { createHash } from "node:crypto";
import {
  type CategorizedEndpoints,
  categorizeEndpoints,
  type EndpointInfo,
  endpointString,
  externallyAccessible,
  type ProxyState,
  type ServicePortInfo,
  type ServicePortState,
  servicePortName,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from "../model.ts";

export const KUBE_SERVICES = "KUBE-SERVICES";
export const KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES";
export const KUBE_NODEPORTS = "KUBE-NODEPORTS";
export const KUBE_POSTROUTING = "KUBE-POSTROUTING";
export const KUBE_MARK_MASQ = "KUBE-MARK-MASQ";
export const KUBE_FORWARD = "KUBE-FORWARD";
export const KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL";
/** kubelet's copy of the anti-martian rule, which upstream also writes for localhost NodePorts. */
export const KUBE_FIREWALL = "KUBE-FIREWALL";

/** upstream --iptables-masquerade-bit 14. */
export const MASQ_MARK = "0x4000";

/**
 * Above this many endpoints (summed over every service port) upstream switches to "large cluster
 * mode" and drops the comments on per-endpoint rules, which shrinks the ruleset by 40%.
 */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;

const SERVICE_CHAIN_PREFIXES = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"];

/** A chain upstream creates per service port or endpoint (and deletes when it goes stale). */
export function isServiceChainName(chain: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => chain.startsWith(p));
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** base32.StdEncoding of sha256(input), first 16 characters (= the first 10 bytes). */
function hash16(input: string): string {
  const bytes = createHash("sha256").update(input).digest();
  let out = "";
  let bits = 0;
  let value = 0;
  for (let i = 0; i < 10; i++) {
    value = (value << 8) | bytes[i];
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** upstream portProtoHash: the 16 characters shared by a service port's SVC/SVL/EXT/FW chains. */
export function portProtoHash(svcPortName: string, protocol: string): string {
  return hash16(svcPortName + protocol.toLowerCase());
}

export interface ServiceChains {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function serviceChainNames(svcPortName: string, protocol: string): ServiceChains {
  const h = portProtoHash(svcPortName, protocol);
  return {
    cluster: `KUBE-SVC-${h}`,
    local: `KUBE-SVL-${h}`,
    external: `KUBE-EXT-${h}`,
    firewall: `KUBE-FW-${h}`,
  };
}

/** upstream servicePortEndpointChainName: KUBE-SEP- + hash of name, protocol and "ip:port". */
export function endpointChainName(svcPortName: string, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${hash16(svcPortName + protocol.toLowerCase() + endpoint)}`;
}

const probabilities: string[] = [];

/**
 * 1/n as Go's fmt.Sprintf("%0.10f") prints it: the exact binary value rounded to 10 decimals, ties
 * to even (toFixed would round the one exact tie, 1/2048, up).
 */
export function probability(n: number): string {
  const cached = probabilities[n];
  if (cached) return cached;
  const exact = (1 / n).toFixed(100); // exact decimal expansion of the double (it has < 100 digits)
  const dot = exact.indexOf(".");
  const kept = exact.slice(0, dot + 11);
  const rest = exact.slice(dot + 11).replace(/0+$/, "");
  const last = Number(kept[kept.length - 1]);
  const roundUp = rest > "5" || (rest === "5" && last % 2 === 1);
  const out = roundUp ? (Number(kept) + 1e-10).toFixed(10) : kept;
  probabilities[n] = out;
  return out;
}

export interface RenderOptions {
  /**
   * Where NodePorts answer. "all" (default, upstream's default): every local address, via
   * `-m addrtype --dst-type LOCAL`. "nodeIPs": only state.nodeIPs, as upstream's
   * --nodeport-addresses does.
   */
  nodePortAddresses?: "all" | "nodeIPs";
  /**
   * NodePorts on 127.0.0.1 too (default true, upstream's --iptables-localhost-nodeports; needs
   * net.ipv4.conf.all.route_localnet=1), with KUBE-FIREWALL dropping martian traffic to
   * 127.0.0.0/8 from elsewhere. With false, KUBE-SERVICES skips 127.0.0.0/8 for NodePorts.
   */
  localhostNodePorts?: boolean;
}

export interface TableRules {
  /** `:CHAIN - [0:0]` lines: declaring a chain in a --noflush restore flushes it. */
  chains: string[];
  rules: string[];
}

export interface RenderedRules {
  filter: TableRules;
  nat: TableRules;
  /** The per-service nat chains (KUBE-SVC/SVL/EXT/FW/SEP-*) this rendering declares. */
  serviceChains: string[];
  /** Whether per-endpoint comments were left out (upstream's large cluster mode). */
  largeClusterMode: boolean;
  /** The jumps from built-in chains into ours these rules need. */
  jumps: readonly JumpRule[];
  /** The restore input for these rules alone (no stale-chain deletion, no jump inserts). */
  text: string;
}

const chainLine = (chain: string) => `:${chain} - [0:0]`;

/**
 * upstream UsesClusterEndpoints: internal policy Cluster, or any external access at all (even
 * with externalTrafficPolicy Local, the KUBE-EXT short-circuit for pods and the host jumps to
 * KUBE-SVC). model.ts's usesClusterEndpoints leaves out the second case when both policies are
 * Local; the cluster endpoints are added back here for that case.
 */
function categorize(sp: ServicePortState): CategorizedEndpoints {
  const c = categorizeEndpoints(sp);
  const s = sp.service;
  if (usesClusterEndpoints(s) || !externallyAccessible(s)) return c;
  let cluster = sp.endpoints.filter((e) => e.ready);
  if (cluster.length === 0) cluster = sp.endpoints.filter((e) => e.serving && e.terminating);
  const reachable = new Set<EndpointInfo>([...cluster, ...c.localEndpoints]);
  return {
    ...c,
    clusterEndpoints: cluster,
    allReachableEndpoints: sp.endpoints.filter((e) => reachable.has(e)),
    hasAnyEndpoints: c.hasAnyEndpoints || cluster.length > 0,
  };
}

/** The model's order (buildProxyModel sorts), enforced here so the text never depends on the caller. */
function sortedServices(services: readonly ServicePortState[]): readonly ServicePortState[] {
  const keyed = services.map((sp) => ({
    sp,
    key: `${servicePortName(sp.service)}\u0000${sp.service.protocol}`,
  }));
  const sorted = keyed.every((k, i) => i === 0 || keyed[i - 1].key <= k.key);
  return sorted
    ? services
    : keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((k) => k.sp);
}

function upstreamUsesClusterEndpoints(s: ServicePortInfo): boolean {
  return !s.internalPolicyLocal || externallyAccessible(s);
}

/** Renders the filter and nat tables for one full sync, in upstream's order. */
export function renderRules(state: ProxyState, opts: RenderOptions = {}): RenderedRules {
  const filterChains = [
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_NODEPORTS,
    KUBE_PROXY_FIREWALL,
  ].map(chainLine);
  const natChains = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ].map(chainLine);
  const filterRules: string[] = [];
  const localhostNodePorts = opts.localhostNodePorts ?? true;
  const natRules: string[] = [];
  const serviceChains: string[] = [];
  const declare = (chain: string) => {
    natChains.push(chainLine(chain));
    serviceChains.push(chain);
  };

  natRules.push(
    `-A ${KUBE_POSTROUTING} -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    // Clear the mark so a packet that traverses the stack again is not masqueraded twice.
    `-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${MASQ_MARK}`,
    `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
    `-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${MASQ_MARK}`,
  );
  if (localhostNodePorts) {
    // route_localnet lets 127.0.0.1:NODEPORT be DNATed; this closes the hole it opens (upstream #90259).
    filterChains.push(chainLine(KUBE_FIREWALL));
    filterRules.push(
      `-A ${KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    );
  }

  const totalEndpoints = state.services.reduce((n, sp) => n + sp.endpoints.length, 0);
  const largeClusterMode = totalEndpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
  const comment = (text: string) => (largeClusterMode ? "" : ` -m comment --comment ${text}`);
  const cidr = state.clusterCidr;

  for (const sp of sortedServices(state.services)) {
    const s = sp.service;
    const proto = s.protocol.toLowerCase();
    const name = servicePortName(s);
    const chains = serviceChainNames(name, s.protocol);
    const { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints } = categorize(sp);
    const match = `-m ${proto} -p ${proto}`;
    const epChain = (e: EndpointInfo) => endpointChainName(name, s.protocol, endpointString(e));

    const usesClusterChain = clusterEndpoints.length > 0 && upstreamUsesClusterEndpoints(s);
    const usesLocalChain = localEndpoints.length > 0 && usesLocalEndpoints(s);

    let internalChain = chains.cluster;
    let hasInternal = hasAnyEndpoints;
    if (s.internalPolicyLocal) {
      internalChain = chains.local;
      if (localEndpoints.length === 0) hasInternal = false;
    }
    let externalPolicyChain = chains.cluster;
    let hasExternal = hasAnyEndpoints;
    if (s.externalPolicyLocal) {
      externalPolicyChain = chains.local;
      if (localEndpoints.length === 0) hasExternal = false;
    }
    // Based on hasAnyEndpoints, not hasExternal: the short-circuits for local traffic are needed
    // even when no endpoint takes external traffic.
    const usesExternalChain = hasAnyEndpoints && externallyAccessible(s);

    let internalFilter = "";
    let internalFilterComment = "";
    let externalFilter = "";
    let externalFilterComment = "";
    if (!hasAnyEndpoints) {
      internalFilter = externalFilter = "REJECT --reject-with icmp-port-unreachable";
      internalFilterComment = externalFilterComment = `"${name} has no endpoints"`;
    } else {
      if (!hasInternal) {
        internalFilter = "DROP";
        internalFilterComment = `"${name} has no local endpoints"`;
      }
      if (!hasExternal) {
        externalFilter = "DROP";
        externalFilterComment = `"${name} has no local endpoints"`;
      }
    }

    // Capture the ClusterIP.
    const clusterIPMatch = `-m comment --comment "${name} cluster IP" ${match} -d ${s.clusterIP} --dport ${s.port}`;
    if (hasInternal) {
      natRules.push(`-A ${KUBE_SERVICES} ${clusterIPMatch} -j ${internalChain}`);
    } else {
      filterRules.push(
        `-A ${KUBE_SERVICES} -m comment --comment ${internalFilterComment} ${match} -d ${s.clusterIP} --dport ${s.port} -j ${internalFilter}`,
      );
    }

    // Capture external IPs.
    for (const ip of s.externalIPs) {
      if (hasAnyEndpoints) {
        natRules.push(
          `-A ${KUBE_SERVICES} -m comment --comment "${name} external IP" ${match} -d ${ip} --dport ${s.port} -j ${chains.external}`,
        );
      }
      if (!hasExternal) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${match} -d ${ip} --dport ${s.port} -j ${externalFilter}`,
        );
      }
    }

    // Capture load balancer ingress IPs (no loadBalancerSourceRanges in the model, so no KUBE-FW).
    for (const ip of s.loadBalancerIPs) {
      if (hasAnyEndpoints) {
        natRules.push(
          `-A ${KUBE_SERVICES} -m comment --comment "${name} loadbalancer IP" ${match} -d ${ip} --dport ${s.port} -j ${chains.external}`,
        );
      }
    }
    if (!hasExternal) {
      for (const ip of s.loadBalancerIPs) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${match} -d ${ip} --dport ${s.port} -j ${externalFilter}`,
        );
      }
    }

    // Capture the NodePort.
    if (s.nodePort !== 0) {
      if (hasAnyEndpoints) {
        natRules.push(
          `-A ${KUBE_NODEPORTS} -m comment --comment ${name} ${match} --dport ${s.nodePort} -j ${chains.external}`,
        );
      }
      if (!hasExternal) {
        filterRules.push(
          `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} -m addrtype --dst-type LOCAL ${match} --dport ${s.nodePort} -j ${externalFilter}`,
        );
      }
    }

    // Internal traffic: masquerade what comes from outside the pod network (a static route to
    // the service range via any node bridges into the service, and the reply must come back).
    if (hasInternal && cidr) {
      natRules.push(`-A ${internalChain} ${clusterIPMatch} ! -s ${cidr} -j ${KUBE_MARK_MASQ}`);
    }

    // External traffic: every external destination jumps to KUBE-EXT.
    if (usesExternalChain) {
      declare(chains.external);
      if (!s.externalPolicyLocal) {
        // Endpoints may be on other nodes: masquerade so replies come back through this node.
        natRules.push(
          `-A ${chains.external} -m comment --comment "masquerade traffic for ${name} external destinations" -j ${KUBE_MARK_MASQ}`,
        );
      } else {
        // Same-node endpoints only: keep the client's source. Pods reaching an external address
        // of the service are treated as if they went out to the load balancer and back.
        if (cidr) {
          natRules.push(
            `-A ${chains.external} -m comment --comment "pod traffic for ${name} external destinations" -s ${cidr} -j ${chains.cluster}`,
          );
        }
        // The host's own traffic has a local source address: masquerade it and use every endpoint.
        natRules.push(
          `-A ${chains.external} -m comment --comment "masquerade LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`,
          `-A ${chains.external} -m comment --comment "route LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${chains.cluster}`,
        );
      }
      if (hasExternal) natRules.push(`-A ${chains.external} -j ${externalPolicyChain}`);
    }

    const writeEndpointRules = (chain: string, endpoints: EndpointInfo[]) => {
      if (s.affinitySeconds > 0) {
        for (const e of endpoints) {
          natRules.push(
            `-A ${chain}${comment(`"${name} -> ${endpointString(e)}"`)} -m recent --name ${epChain(e)} --rcheck --seconds ${s.affinitySeconds} --reap -j ${epChain(e)}`,
          );
        }
      }
      endpoints.forEach((e, i) => {
        const split =
          i < endpoints.length - 1
            ? ` -m statistic --mode random --probability ${probability(endpoints.length - i)}`
            : "";
        natRules.push(`-A ${chain}${comment(`"${name} -> ${endpointString(e)}"`)}${split} -j ${epChain(e)}`);
      });
    };
    if (usesClusterChain) {
      declare(chains.cluster);
      writeEndpointRules(chains.cluster, clusterEndpoints);
    }
    if (usesLocalChain) {
      declare(chains.local);
      writeEndpointRules(chains.local, localEndpoints);
    }

    // One chain per reachable endpoint: hairpin masquerade (an endpoint reaching itself through
    // the service must see the reply come from the node, not from itself), affinity, DNAT.
    for (const e of allReachableEndpoints) {
      const chain = epChain(e);
      declare(chain);
      const head = `-A ${chain}${comment(name)}`;
      natRules.push(`${head} -s ${e.ip} -j ${KUBE_MARK_MASQ}`);
      const recent = s.affinitySeconds > 0 ? ` -m recent --name ${chain} --set` : "";
      natRules.push(`${head}${recent} ${match} -j DNAT --to-destination ${endpointString(e)}`);
    }
  }

  // Last rule of KUBE-SERVICES: anything for a local address may be a NodePort.
  const nodePortsComment = `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"`;
  if ((opts.nodePortAddresses ?? "all") === "all") {
    natRules.push(
      `-A ${KUBE_SERVICES} ${nodePortsComment} -m addrtype --dst-type LOCAL${localhostNodePorts ? "" : " ! -d 127.0.0.0/8"} -j ${KUBE_NODEPORTS}`,
    );
  } else {
    for (const ip of state.nodeIPs)
      natRules.push(`-A ${KUBE_SERVICES} ${nodePortsComment} -d ${ip} -j ${KUBE_NODEPORTS}`);
  }

  filterRules.push(
    // Without nf_conntrack_tcp_be_liberal, INVALID packets could reset connections (upstream #74839).
    `-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP`,
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`,
    `-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );

  const filter = { chains: filterChains, rules: filterRules };
  const nat = { chains: natChains, rules: natRules };
  const jumps = localhostNodePorts ? [...JUMP_RULES, ...KUBELET_JUMP_RULES] : JUMP_RULES;
  return { filter, nat, serviceChains, largeClusterMode, jumps, text: restoreText(filter, nat) };
}

function restoreText(filter: TableRules, nat: TableRules): string {
  return [
    "*filter",
    ...filter.chains,
    ...filter.rules,
    "COMMIT",
    "*nat",
    ...nat.chains,
    ...nat.rules,
    "COMMIT",
    "",
  ].join("\n");
}

/** A rule in a built-in chain that sends traffic into one of ours (upstream iptablesJumpChains). */
export interface JumpRule {
  table: "filter" | "nat";
  /** The built-in chain the rule lives in. */
  from: string;
  to: string;
  comment: string;
  extra: string;
}

const NEW = "-m conntrack --ctstate NEW";

/** In upstream's order; each is prepended (`-I`) when missing, so the last listed ends up first. */
export const JUMP_RULES: readonly JumpRule[] = [
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_EXTERNAL_SERVICES,
    comment: "kubernetes externally-visible service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_EXTERNAL_SERVICES,
    comment: "kubernetes externally-visible service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_NODEPORTS,
    comment: "kubernetes health check service ports",
    extra: "",
  },
  { table: "filter", from: "FORWARD", to: KUBE_SERVICES, comment: "kubernetes service portals", extra: NEW },
  { table: "filter", from: "OUTPUT", to: KUBE_SERVICES, comment: "kubernetes service portals", extra: NEW },
  { table: "filter", from: "FORWARD", to: KUBE_FORWARD, comment: "kubernetes forwarding rules", extra: "" },
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  {
    table: "filter",
    from: "OUTPUT",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  { table: "nat", from: "OUTPUT", to: KUBE_SERVICES, comment: "kubernetes service portals", extra: "" },
  { table: "nat", from: "PREROUTING", to: KUBE_SERVICES, comment: "kubernetes service portals", extra: "" },
  {
    table: "nat",
    from: "POSTROUTING",
    to: KUBE_POSTROUTING,
    comment: "kubernetes postrouting rules",
    extra: "",
  },
];

/** upstream iptablesKubeletJumpChains: kubelet's KUBE-FIREWALL, written for localhost NodePorts. */
export const KUBELET_JUMP_RULES: readonly JumpRule[] = [
  { table: "filter", from: "INPUT", to: KUBE_FIREWALL, comment: "", extra: "" },
  { table: "filter", from: "OUTPUT", to: KUBE_FIREWALL, comment: "", extra: "" },
];

/** The jump as a restore line; with "-A" it is exactly how iptables-save prints it. */
export function jumpRuleLine(j: JumpRule, op: "-A" | "-I" | "-D"): string {
  const comment = j.comment ? ` -m comment --comment "${j.comment}"` : "";
  return `${op} ${j.from}${j.extra ? ` ${j.extra}` : ""}${comment} -j ${j.to}`;
}

export interface SavedTable {
  chains: Set<string>;
  /** The `-A ...` lines, as printed. */
  rules: string[];
}

/** Parses `iptables-save` output into its tables ("filter", "nat", ...). */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      current = { chains: new Set(), rules: [] };
      tables.set(line.slice(1).trim(), current);
    } else if (current && line.startsWith(":")) current.chains.add(line.slice(1).split(" ")[0]);
    else if (current && line.startsWith("-A ")) current.rules.push(line);
  }
  return tables;
}

/** The jumps iptables-save does not show (to be inserted in the same restore). */
export function missingJumps(
  saved: Map<string, SavedTable>,
  jumps: readonly JumpRule[] = JUMP_RULES,
): JumpRule[] {
  return jumps.filter((j) => !saved.get(j.table)?.rules.includes(jumpRuleLine(j, "-A")));
}

/** Per-service nat chains the kernel has that this rendering no longer declares. */
export function staleServiceChains(existing: Iterable<string>, rendered: RenderedRules): string[] {
  const keep = new Set(rendered.serviceChains);
  return [...existing].filter((c) => isServiceChainName(c) && !keep.has(c)).sort();
}

/**
 * The full restore input: our rules, plus (in the same transaction) the stale service chains
 * flushed and deleted and the missing jumps from the built-in chains inserted.
 */
export function restoreInput(
  rendered: RenderedRules,
  extra: { staleChains?: readonly string[]; missingJumps?: readonly JumpRule[] } = {},
): string {
  const stale = extra.staleChains ?? [];
  const jumps = extra.missingJumps ?? [];
  if (stale.length === 0 && jumps.length === 0) return rendered.text;
  const jumpLines = (table: string) =>
    jumps.filter((j) => j.table === table).map((j) => jumpRuleLine(j, "-I"));
  const filter: TableRules = {
    chains: rendered.filter.chains,
    rules: [...rendered.filter.rules, ...jumpLines("filter")],
  };
  const nat: TableRules = {
    chains: [...rendered.nat.chains, ...stale.map(chainLine)],
    rules: [...rendered.nat.rules, ...stale.map((c) => `-X ${c}`), ...jumpLines("nat")],
  };
  return restoreText(filter, nat);
}

/**
 * upstream CleanupLeftovers, widened to every KUBE-* chain of the nat and filter tables: deletes
 * each rule elsewhere that jumps into one (as printed, so it matches exactly), then flushes and
 * deletes the chains. Returns "" when there is nothing to remove.
 */
export function cleanupInput(saved: Map<string, SavedTable>): string {
  const out: string[] = [];
  for (const table of ["filter", "nat"]) {
    const t = saved.get(table);
    if (!t) continue;
    const ours = [...t.chains].filter((c) => c.startsWith("KUBE-")).sort();
    const jumps = t.rules.filter((r) => {
      const chain = r.split(" ")[1];
      const target = / -[jg] (\S+)/.exec(r)?.[1] ?? "";
      return !chain.startsWith("KUBE-") && target.startsWith("KUBE-");
    });
    if (ours.length === 0 && jumps.length === 0) continue;
    out.push(
      `*${table}`,
      ...ours.map(chainLine),
      ...jumps.map((r) => `-D${r.slice(2)}`),
      ...ours.map((c) => `-X ${c}`),
      "COMMIT",
    );
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

const NAT_BUILTIN_CHAINS = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

/**
 * Works around iptables-nft 1.8.x making a --noflush restore O(commands x chains): per restore it
 * keeps a sorted linked list of every chain a command names (nft_cache_level_set ->
 * cache_chain_list_insert), 3.2 s instead of 0.4 s for 1000 services x 10 endpoints. A command
 * naming no chain, first in the table, sets the cache request's "all chains" flag, which skips
 * that list: `-S`, a listing whose output (the table as it was before this restore) the caller
 * discards. The listing makes iptables-nft take the built-in chains as present, so they are
 * declared too, letting the restore create them in a fresh namespace; in --noflush mode such a
 * line only sets the policy, and nat chains always have ACCEPT. Only the nat table needs this
 * (filter has a handful of chains); input without a nat table is returned as is.
 */
export function withNftCacheWorkaround(input: string): string {
  const marker = "*nat\n";
  const at = input.startsWith(marker) ? 0 : input.indexOf(`\n${marker}`) + 1;
  if (at === 0 && !input.startsWith(marker)) return input;
  const head = [...NAT_BUILTIN_CHAINS.map((c) => `:${c} ACCEPT [0:0]`), "-S", ""].join("\n");
  return input.slice(0, at + marker.length) + head + input.slice(at + marker.length);
}
