// kube-proxy's nftables mode as text: the proxy model rendered into one `nft -f` transaction with
// upstream's layout (pkg/proxy/nftables/proxier.go, kernels >= 5.13 era): table `ip kube-proxy`,
// base chains named "<type>-<hook>", dispatch through the verdict maps `service-ips` and
// `service-nodeports`, `no-endpoint-*` maps for drop/reject, and per service port the chains
// `service-HASH-ns/name/proto/port` (cluster policy), `local-...` (local policy), `external-...`
// (NodePort, LoadBalancer and external IPs) and one `endpoint-...__ip/port` per endpoint, picked by
// `numgen random mod N vmap`, with ClientIP affinity in per-endpoint `affinity-...` timeout sets.
//
// Like upstream, a sync never deletes and recreates the table: objects are added (a no-op when they
// exist) and flushed, then refilled, all in one transaction, so packets see either the old or the
// new rules, affinity sets keep their entries, and established connections keep their conntrack
// NAT bindings. The base chains, sets and maps are refilled every time; a service's chains only
// when they changed (upstream's partial sync). What depends on what the kernel already holds
// (those unchanged services, chains no longer used, affinity sets whose timeout changed) is worked
// in by `composeTransaction`. Pure: no I/O, deterministic output for a given state.

import { createHash } from "node:crypto";
import { compareIPs, compareStrings } from "../../../emulator/compare.ts";
import {
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

export const TABLE = "kube-proxy";
/** Upstream's default --masquerade-bit 14. */
export const MASQUERADE_MARK = "0x4000";

const T = `ip ${TABLE}`;

/** upstream nftablesBaseChains: filter chains run before DNAT (dstnat - 10), except post-dnat. */
export const BASE_CHAINS: readonly { name: string; type: string; hook: string; priority: number }[] = [
  { name: "filter-prerouting", type: "filter", hook: "prerouting", priority: -110 },
  { name: "filter-input", type: "filter", hook: "input", priority: -110 },
  { name: "filter-forward", type: "filter", hook: "forward", priority: -110 },
  { name: "filter-output", type: "filter", hook: "output", priority: -110 },
  { name: "filter-output-post-dnat", type: "filter", hook: "output", priority: -90 },
  { name: "nat-prerouting", type: "nat", hook: "prerouting", priority: -100 },
  { name: "nat-output", type: "nat", hook: "output", priority: -100 },
  { name: "nat-postrouting", type: "nat", hook: "postrouting", priority: 100 },
];

/** upstream nftablesJumpChains: [target, from, match]. */
const JUMP_CHAINS: readonly [string, string, string][] = [
  ["nodeport-endpoints-check", "filter-input", "ct state new "],
  ["service-endpoints-check", "filter-input", "ct state new "],
  ["service-endpoints-check", "filter-forward", "ct state new "],
  ["service-endpoints-check", "filter-output", "ct state new "],
  ["firewall-check", "filter-prerouting", "ct state new "],
  ["firewall-check", "filter-output", "ct state new "],
  ["services", "nat-output", ""],
  ["services", "nat-prerouting", ""],
  ["masquerading", "nat-postrouting", ""],
  ["cluster-ips-check", "filter-forward", "ct state new "],
  ["cluster-ips-check", "filter-output-post-dnat", "ct state new "],
];

/** nft limits element comments to 128 bytes; namespace/name:port can be longer. */
const COMMENT_MAX = 128;
/** knftables.NameLengthMax (256) minus the longest chain prefix ("external-" … with room). */
const CHAIN_NAME_BASE_MAX = 256 - 16;

/** One service port's rules, split in the order the transaction needs them (see renderRuleset). */
export interface ServiceRules {
  /** "ns/name:port proto" (sort order and comment). */
  name: string;
  /** Its chains: service-, local-, external- and endpoint-, in creation order. */
  chains: string[];
  /** Its ClientIP affinity sets → timeout in seconds. */
  affinitySets: Map<string, number>;
  /** Lines: chains declared (service chains flushed), affinity sets, service/local chain rules. */
  dispatch: string;
  /** Lines: endpoint and external chains flushed and refilled. */
  endpoints: string;
  /** Lines: its elements of cluster-ips, service-ips, service-nodeports and the no-endpoint maps. */
  elements: string;
}

export interface NftRuleset {
  /** Lines: the table, base and fixed chains with their rules, the sets and maps (flushed), nodeport-ips. */
  base: string;
  services: ServiceRules[];
  /** The whole desired state as one transaction: what a first sync applies. */
  text: string;
  /** Every per-service chain, sorted. */
  serviceChains: string[];
  /** Every ClientIP affinity set → its timeout in seconds. */
  affinitySets: Map<string, number>;
}

const RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const hashCache = new Map<string, string>();

/** The first 8 base32 characters of sha256(name): upstream's hashAndTruncate prefix. */
function hash8(name: string): string {
  let h = hashCache.get(name);
  if (h !== undefined) return h;
  const b = createHash("sha256").update(name).digest();
  // 8 characters of 5 bits are exactly the first 5 bytes.
  const hi = (b[0] << 12) | (b[1] << 4) | (b[2] >> 4); // 20 bits
  const lo = ((b[2] & 15) << 16) | (b[3] << 8) | b[4]; // 20 bits
  h = "";
  for (let i = 3; i >= 0; i--) h += RFC4648[(hi >> (i * 5)) & 31];
  for (let i = 3; i >= 0; i--) h += RFC4648[(lo >> (i * 5)) & 31];
  if (hashCache.size > 200_000) hashCache.clear();
  hashCache.set(name, h);
  return h;
}

function hashAndTruncate(name: string): string {
  const full = `${hash8(name)}-${name}`;
  return full.length > CHAIN_NAME_BASE_MAX ? `${full.slice(0, CHAIN_NAME_BASE_MAX - 3)}...` : full;
}

/** "HASH-ns/name/proto/portname", e.g. "ULMVA6XW-ns1/svc1/tcp/p80" (upstream servicePortChainNameBase). */
export function servicePortChainBase(s: ServicePortInfo): string {
  return hashAndTruncate(`${s.namespace}/${s.name}/${s.protocol.toLowerCase()}/${s.portName}`);
}

/** "HASH-ns/name/proto/portname__ip/port" (upstream servicePortEndpointChainNameBase). */
export function endpointChainBase(s: ServicePortInfo, e: Pick<EndpointInfo, "ip" | "port">): string {
  const ip = e.ip.replaceAll(":", ".");
  return hashAndTruncate(
    `${s.namespace}/${s.name}/${s.protocol.toLowerCase()}/${s.portName}__${ip}/${e.port}`,
  );
}

function quote(comment: string): string {
  let c = comment.replaceAll('"', "'");
  while (Buffer.byteLength(c) > COMMENT_MAX) c = c.slice(0, -1);
  return `"${c}"`;
}

function isUsableIPv4(ip: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) && !ip.startsWith("127.");
}

const addChain = (name: string, spec = "") => `add chain ${T} ${name}${spec}`;
const flushChain = (name: string) => `flush chain ${T} ${name}`;
const addRule = (chain: string, rule: string) => `add rule ${T} ${chain} ${rule}`;

/** Map and set keys already used: the first service (in sorted order) wins, since a conflicting value would fail the whole transaction. */
type SeenKeys = Map<string, Set<string>>;

function element(out: string[], seen: SeenKeys, set: string, key: string, value?: string, comment?: string) {
  let keys = seen.get(set);
  if (!keys) {
    keys = new Set();
    seen.set(set, keys);
  }
  if (keys.has(key)) return;
  keys.add(key);
  const c = comment === undefined ? "" : ` comment ${quote(comment)}`;
  out.push(`add element ${T} ${set} { ${key}${c}${value === undefined ? "" : ` : ${value}`} }`);
}

/** upstream setupNFTables: the table, base chains, jump rules, masquerading, sets and maps. */
function renderBase(state: ProxyState, seen: SeenKeys): string {
  const out: string[] = [`add table ${T} { comment "rules for kube-proxy" ; }`];
  const chain = (name: string, spec = "") => out.push(addChain(name, spec), flushChain(name));
  const rule = (c: string, r: string) => out.push(addRule(c, r));
  for (const bc of BASE_CHAINS)
    chain(bc.name, ` { type ${bc.type} hook ${bc.hook} priority ${bc.priority} ; }`);
  const created = new Set<string>();
  const ensure = (name: string) => {
    if (created.has(name)) return;
    created.add(name);
    chain(name);
  };
  for (const [target, from, match] of JUMP_CHAINS) {
    ensure(target);
    rule(from, `${match}jump ${target}`);
  }
  ensure("mark-for-masquerade");
  rule("mark-for-masquerade", `mark set mark or ${MASQUERADE_MARK}`);
  // Only traffic a service rule marked is masqueraded, never anything else leaving the node.
  rule("masquerading", `mark and ${MASQUERADE_MARK} == 0 return`);
  rule("masquerading", `mark set mark xor ${MASQUERADE_MARK}`);
  rule("masquerading", "masquerade fully-random");

  out.push(`add set ${T} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`);
  out.push(`flush set ${T} cluster-ips`);
  rule(
    "cluster-ips-check",
    `ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
  );

  const nodeIPs = [...new Set(state.nodeIPs.filter(isUsableIPv4))].sort(compareIPs);
  out.push(`add set ${T} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`);
  out.push(`flush set ${T} nodeport-ips`);
  for (const ip of nodeIPs) element(out, seen, "nodeport-ips", ip);

  out.push(
    `add map ${T} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `flush map ${T} no-endpoint-services`,
    `add map ${T} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `flush map ${T} no-endpoint-nodeports`,
  );
  chain("reject-chain", ` { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`);
  rule("reject-chain", "reject");
  rule("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services");
  // With node addresses given, NodePorts answer on those (upstream's --nodeport-addresses primary);
  // without, on every local address but loopback.
  rule(
    "nodeport-endpoints-check",
    `${nodeIPs.length ? "ip daddr @nodeport-ips" : "ip daddr != 127.0.0.0/8"} meta l4proto . th dport vmap @no-endpoint-nodeports`,
  );

  out.push(
    `add map ${T} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `flush map ${T} firewall-ips`,
  );
  rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips");

  out.push(
    `add map ${T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `flush map ${T} service-ips`,
    `add map ${T} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    `flush map ${T} service-nodeports`,
  );
  rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips");
  const nodePortMatch = nodeIPs.length
    ? "ip daddr @nodeport-ips"
    : "fib daddr type local ip daddr != 127.0.0.0/8";
  rule("services", `${nodePortMatch} meta l4proto . th dport vmap @service-nodeports`);
  return `${out.join("\n")}\n`;
}

/** upstream syncProxyRules' loop body for one service port. */
function renderService(st: ServicePortState, clusterCidr: string, seen: SeenKeys): ServiceRules {
  const s = st.service;
  const proto = s.protocol.toLowerCase();
  const base = servicePortChainBase(s);
  const name = servicePortName(s);
  const clusterChain = `service-${base}`;
  const localChain = `local-${base}`;
  const externalChain = `external-${base}`;
  const epBases = new Map<EndpointInfo, string>();
  const epBase = (e: EndpointInfo) => {
    let b = epBases.get(e);
    if (b === undefined) {
      b = endpointChainBase(s, e);
      epBases.set(e, b);
    }
    return b;
  };
  const epChain = (e: EndpointInfo) => `endpoint-${epBase(e)}`;
  const affinitySet = (e: EndpointInfo) => `affinity-${epBase(e)}`;
  const heading = `# ${name} ${proto}`;
  const r = {
    chains: [] as string[],
    affinitySets: new Map<string, number>(),
    dispatch: [heading],
    endpoints: [heading],
    elements: [heading],
  };

  const { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints } =
    categorizeEndpoints(st);

  const usesClusterChain = clusterEndpoints.length > 0 && usesClusterEndpoints(s);
  const usesLocalChain = localEndpoints.length > 0 && usesLocalEndpoints(s);
  const internalChain = s.internalPolicyLocal ? localChain : clusterChain;
  const hasInternal = hasAnyEndpoints && (!s.internalPolicyLocal || localEndpoints.length > 0);
  const externalPolicyChain = s.externalPolicyLocal ? localChain : clusterChain;
  const hasExternal = hasAnyEndpoints && (!s.externalPolicyLocal || localEndpoints.length > 0);
  // Needed even without external endpoints, for the short-circuit rules of local traffic.
  const usesExternalChain = hasAnyEndpoints && externallyAccessible(s);

  // Chains first: rules and elements may only point at chains that exist.
  for (const e of allReachableEndpoints) {
    r.chains.push(epChain(e));
    r.dispatch.push(addChain(epChain(e)));
  }
  for (const [used, chain] of [
    [usesClusterChain, clusterChain],
    [usesLocalChain, localChain],
  ] as const) {
    if (!used) continue;
    r.chains.push(chain);
    r.dispatch.push(addChain(chain), flushChain(chain));
  }
  if (usesExternalChain) {
    r.chains.push(externalChain);
    r.endpoints.push(addChain(externalChain), flushChain(externalChain));
  }

  if (s.affinitySeconds > 0) {
    for (const e of allReachableEndpoints) {
      const set = affinitySet(e);
      r.affinitySets.set(set, s.affinitySeconds);
      r.dispatch.push(
        `add set ${T} ${set} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.affinitySeconds}s ; }`,
      );
    }
  }

  // Off-cluster sources reaching a ClusterIP (a static route for the service range towards a
  // node) are masqueraded, as the reply might otherwise bypass this node.
  if (hasInternal && clusterCidr) {
    r.dispatch.push(
      addRule(
        internalChain,
        `ip daddr ${s.clusterIP} ${proto} dport ${s.port} ip saddr != ${clusterCidr} jump mark-for-masquerade`,
      ),
    );
  }
  const toEndpoints = (chain: string, endpoints: EndpointInfo[]) => {
    if (s.affinitySeconds > 0) {
      for (const e of endpoints)
        r.dispatch.push(addRule(chain, `ip saddr @${affinitySet(e)} goto ${epChain(e)}`));
    }
    const vmap = endpoints.map((e, i) => `${i} : goto ${epChain(e)}`).join(" , ");
    r.dispatch.push(addRule(chain, `numgen random mod ${endpoints.length} vmap { ${vmap} }`));
  };
  if (usesClusterChain) toEndpoints(clusterChain, clusterEndpoints);
  if (usesLocalChain) toEndpoints(localChain, localEndpoints);

  if (usesExternalChain) {
    const rule = (x: string) => r.endpoints.push(addRule(externalChain, x));
    if (!s.externalPolicyLocal) {
      // Endpoints may be on other nodes: masquerade so that replies come back through this one.
      rule("jump mark-for-masquerade");
    } else if (usesClusterChain) {
      // Pods and the node itself reaching an external address are not subject to the policy (as
      // if they went out to the load balancer and back); the node's own traffic is masqueraded,
      // as its source would be the (local) service address.
      if (clusterCidr)
        rule(`ip saddr ${clusterCidr} goto ${clusterChain} comment "short-circuit pod traffic"`);
      rule(`fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`);
      rule(`fib saddr type local goto ${clusterChain} comment "short-circuit local traffic"`);
    }
    if (hasExternal) rule(`goto ${externalPolicyChain}`);
  }
  for (const e of allReachableEndpoints) {
    const chain = epChain(e);
    r.endpoints.push(flushChain(chain));
    // Hairpin: a pod reaching itself through the service must see the reply come from the node.
    r.endpoints.push(addRule(chain, `ip saddr ${e.ip} jump mark-for-masquerade`));
    if (s.affinitySeconds > 0) r.endpoints.push(addRule(chain, `update @${affinitySet(e)} { ip saddr }`));
    r.endpoints.push(addRule(chain, `meta l4proto ${proto} dnat to ${endpointString(e)}`));
  }

  // No endpoints anywhere: reject. Local policy without local endpoints: drop.
  const noEndpoints = hasAnyEndpoints ? "drop" : "goto reject-chain";
  const el = (set: string, key: string, value: string, comment?: string) =>
    element(r.elements, seen, set, key, value, comment);
  element(r.elements, seen, "cluster-ips", s.clusterIP);
  const key = (ip: string) => `${ip} . ${proto} . ${s.port}`;
  if (hasInternal) el("service-ips", key(s.clusterIP), `goto ${internalChain}`);
  else el("no-endpoint-services", key(s.clusterIP), noEndpoints, name);
  for (const ip of [...s.externalIPs, ...s.loadBalancerIPs]) {
    if (hasAnyEndpoints) el("service-ips", key(ip), `goto ${externalChain}`);
    if (!hasExternal) el("no-endpoint-services", key(ip), noEndpoints, name);
  }
  if (s.nodePort) {
    const np = `${proto} . ${s.nodePort}`;
    if (hasAnyEndpoints) el("service-nodeports", np, `goto ${externalChain}`);
    if (!hasExternal) el("no-endpoint-nodeports", np, noEndpoints, name);
  }
  // A section holding only its heading says nothing.
  const lines = (part: string[]) => (part.length > 1 ? `${part.join("\n")}\n` : "");
  return {
    name: `${name} ${proto}`,
    chains: r.chains,
    affinitySets: r.affinitySets,
    dispatch: lines(r.dispatch),
    endpoints: lines(r.endpoints),
    elements: lines(r.elements),
  };
}

function compareServices(a: ServicePortState, b: ServicePortState): number {
  return (
    compareStrings(servicePortName(a.service), servicePortName(b.service)) ||
    compareStrings(a.service.protocol, b.service.protocol)
  );
}

/**
 * The whole desired state, services in "namespace/name:port, protocol" order. The transaction
 * lists, after the base: every service's chains and endpoint choice, then every endpoint and
 * external chain, then every map element. The kernel binds each anonymous `numgen … vmap` set
 * by walking the transaction so far, so binding them before the bulk of the rules keeps a large
 * sync fast (1000 × 10 endpoints: about a third less kernel time than service-by-service order).
 */
export function renderRuleset(state: ProxyState): NftRuleset {
  const seen: SeenKeys = new Map();
  const base = renderBase(state, seen);
  const services = [...state.services]
    .sort(compareServices)
    .map((st) => renderService(st, state.clusterCidr, seen));
  const serviceChains = services.flatMap((s) => s.chains).sort();
  const affinitySets = new Map<string, number>();
  for (const s of services) for (const [set, t] of s.affinitySets) affinitySets.set(set, t);
  const ruleset: NftRuleset = { base, services, text: "", serviceChains, affinitySets };
  ruleset.text = composeTransaction(ruleset, { serviceChains: new Set(), affinitySets: new Map() });
  return ruleset;
}

/** What the kernel holds from earlier syncs (see composeTransaction). */
export interface KernelInventory {
  /** Per-service chains that exist now (including flushed ones waiting to be deleted). */
  serviceChains: ReadonlySet<string>;
  /** Affinity sets that exist now → their timeout in seconds. */
  affinitySets: ReadonlyMap<string, number>;
  /**
   * Services (by ServiceRules.name) whose chains the kernel holds exactly as rendered, with the
   * rendered rules (`serviceRulesKey`): their chains are left alone. Omitted: every service is
   * written.
   */
  appliedServices?: ReadonlyMap<string, string>;
  /**
   * Delete and re-add the base chains first, so that a change of hook or priority (an older
   * kemu) applies, as upstream does on its first sync.
   */
  resetBaseChains?: boolean;
}

/** What decides whether a service's chains must be rewritten. */
export function serviceRulesKey(s: ServiceRules): string {
  return s.dispatch + s.endpoints;
}

/**
 * The one transaction that takes the kernel from `prev` to `ruleset`:
 * - when asked, the base chains are deleted first (the desired state re-adds them);
 * - an affinity set whose timeout changed is deleted and re-added (kernels before 6.x ignore a
 *   new timeout on `add set`), after flushing the chains that reference it;
 * - the base chains, sets and maps are always flushed and refilled; a service's chains only when
 *   they differ from what `prev.appliedServices` says the kernel holds (upstream's partial sync);
 * - chains no longer used are flushed, not deleted: until kernel 6.2 a chain stays referenced a
 *   moment after the map element pointing at it goes, so the caller deletes them in a later
 *   transaction, as upstream does; affinity sets no longer used are deleted at once.
 */
export function composeTransaction(ruleset: NftRuleset, prev: KernelInventory): string {
  const pre: string[] = [];
  const post: string[] = [];
  if (prev.resetBaseChains) {
    for (const bc of BASE_CHAINS) pre.push(`add chain ${T} ${bc.name}`, `delete chain ${T} ${bc.name}`);
  }
  const written = ruleset.services.filter((s) => prev.appliedServices?.get(s.name) !== serviceRulesKey(s));
  const wanted = new Set(ruleset.serviceChains);
  const stale = [...prev.serviceChains].filter((c) => !wanted.has(c)).sort();
  const changed = [...prev.affinitySets]
    .filter(([set, timeout]) => ruleset.affinitySets.has(set) && ruleset.affinitySets.get(set) !== timeout)
    .map(([set]) => set)
    .sort();
  if (changed.length) {
    // Every chain that can reference them is either rewritten below or no longer used.
    const rewritten = new Set(written.flatMap((s) => s.chains));
    for (const chain of [...prev.serviceChains].sort()) {
      if (rewritten.has(chain) || !wanted.has(chain)) pre.push(flushChain(chain));
    }
    for (const set of changed) pre.push(`delete set ${T} ${set}`);
  }
  for (const chain of stale) post.push(flushChain(chain));
  for (const set of [...prev.affinitySets.keys()].sort()) {
    if (!ruleset.affinitySets.has(set)) post.push(`delete set ${T} ${set}`);
  }
  // Concatenated (V8 ropes), not joined: a 1000-service transaction is several megabytes.
  let tx = pre.length ? `add table ${T} { comment "rules for kube-proxy" ; }\n${pre.join("\n")}\n` : "";
  tx += ruleset.base;
  for (const s of written) tx += s.dispatch;
  for (const s of written) tx += s.endpoints;
  for (const s of ruleset.services) tx += s.elements;
  if (post.length) tx += `# no longer used\n${post.join("\n")}\n`;
  return tx;
}

/** The transaction deleting chains that earlier syncs flushed. */
export function deleteChainsTransaction(chains: Iterable<string>): string {
  return [...chains].map((c) => `delete chain ${T} ${c}\n`).join("");
}
