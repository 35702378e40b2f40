// What kube-proxy programs, as data: every port of every Service with a virtual IP, paired with
// its endpoints from the EndpointSlices, and the upstream rules for which endpoints traffic may
// use (pkg/proxy/topology.go CategorizeEndpoints). Both proxy modes (iptables, nftables) render
// this same model, so they behave alike by construction. Pure: no I/O.

import { compareIPs, compareStrings } from "../../emulator/compare.ts";

/** The fields of a v1 Service the proxy reads. */
export interface ServiceObject {
  metadata: { namespace?: string; name?: string; deletionTimestamp?: string };
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalIPs?: string[];
    sessionAffinity?: string;
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    externalTrafficPolicy?: string;
    internalTrafficPolicy?: string;
    ports?: { name?: string; protocol?: string; port: number; nodePort?: number }[];
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** The fields of a discovery.k8s.io/v1 EndpointSlice the proxy reads. */
export interface EndpointSliceObject {
  metadata: {
    namespace?: string;
    name?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
  };
  addressType?: string;
  ports?: { name?: string; protocol?: string; port?: number }[] | null;
  endpoints?:
    | {
        addresses: string[];
        conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
        nodeName?: string;
        zone?: string;
      }[]
    | null;
}

export type Protocol = "TCP" | "UDP" | "SCTP";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/** Upstream's default sessionAffinityConfig.clientIP.timeoutSeconds (3 h). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** One port of one Service: what upstream calls a ServicePort. */
export interface ServicePortInfo {
  namespace: string;
  name: string;
  /** The port's name ("" for a single unnamed port). */
  portName: string;
  protocol: Protocol;
  clusterIP: string;
  port: number;
  /** 0 when the Service has no node port. */
  nodePort: number;
  loadBalancerIPs: string[];
  externalIPs: string[];
  /** ClientIP affinity timeout in seconds; 0 = no affinity. */
  affinitySeconds: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
}

export interface EndpointInfo {
  ip: string;
  port: number;
  nodeName?: string;
  zone?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** On this node. */
  isLocal: boolean;
}

export interface ServicePortState {
  service: ServicePortInfo;
  /** Every endpoint the slices list for this port, sorted by ip:port (deterministic output). */
  endpoints: EndpointInfo[];
}

/** Everything a proxy mode needs to render one full sync. */
export interface ProxyState {
  nodeName: string;
  /** The node's addresses NodePorts answer on (its InternalIP). */
  nodeIPs: string[];
  /** Pod network; traffic from outside it to a service is masqueraded (upstream --cluster-cidr). */
  clusterCidr: string;
  services: ServicePortState[];
}

/** "ns/name:port" as upstream's ServicePortName.String(); the port part is left out when unnamed. */
export function servicePortName(s: Pick<ServicePortInfo, "namespace" | "name" | "portName">): string {
  return `${s.namespace}/${s.name}${s.portName ? `:${s.portName}` : ""}`;
}

export function endpointString(e: Pick<EndpointInfo, "ip" | "port">): string {
  return e.ip.includes(":") ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

function isIPv4(ip: string | undefined): ip is string {
  return !!ip && /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);
}

/** The Service's ports that a proxy programs (IPv4 ClusterIPs; headless and ExternalName have none). */
export function servicePorts(svc: ServiceObject): ServicePortInfo[] {
  const spec = svc.spec ?? {};
  if (svc.metadata.deletionTimestamp || spec.type === "ExternalName") return [];
  const clusterIP = spec.clusterIPs?.find(isIPv4) ?? spec.clusterIP;
  if (!isIPv4(clusterIP)) return [];
  const external = spec.type === "NodePort" || spec.type === "LoadBalancer";
  const affinity =
    spec.sessionAffinity === "ClientIP"
      ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS)
      : 0;
  const lbIPs =
    spec.type === "LoadBalancer"
      ? (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(isIPv4)
      : [];
  return (spec.ports ?? []).map((p) => ({
    namespace: svc.metadata.namespace ?? "default",
    name: svc.metadata.name ?? "",
    portName: p.name ?? "",
    protocol: (p.protocol ?? "TCP") as Protocol,
    clusterIP,
    port: p.port,
    nodePort: external ? (p.nodePort ?? 0) : 0,
    loadBalancerIPs: lbIPs,
    externalIPs: (spec.externalIPs ?? []).filter(isIPv4),
    affinitySeconds: affinity,
    externalPolicyLocal: external && spec.externalTrafficPolicy === "Local",
    internalPolicyLocal: spec.internalTrafficPolicy === "Local",
  }));
}

/**
 * Pairs every Service port with the endpoints of the Service's slices whose port has the same
 * name and protocol. An address listed by several slices counts once, the most ready copy winning.
 */
export function buildProxyModel(
  services: readonly ServiceObject[],
  slices: readonly EndpointSliceObject[],
  nodeName: string,
): ServicePortState[] {
  const slicesByService = new Map<string, EndpointSliceObject[]>();
  for (const s of slices) {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svc || s.metadata.deletionTimestamp || (s.addressType && s.addressType !== "IPv4")) continue;
    const key = `${s.metadata.namespace}/${svc}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), s]);
  }
  const out: ServicePortState[] = [];
  for (const svc of services) {
    for (const port of servicePorts(svc)) {
      const byAddress = new Map<string, EndpointInfo>();
      for (const slice of slicesByService.get(`${port.namespace}/${port.name}`) ?? []) {
        const sp = (slice.ports ?? []).find(
          (p) => (p.name ?? "") === port.portName && (p.protocol ?? "TCP") === port.protocol,
        );
        if (!sp?.port) continue;
        for (const ep of slice.endpoints ?? []) {
          const ip = ep.addresses[0];
          if (!isIPv4(ip)) continue;
          const c = ep.conditions ?? {};
          // Upstream: ready unset means ready; serving unset means ready; terminating unset means false.
          const ready = c.ready !== false;
          const info: EndpointInfo = {
            ip,
            port: sp.port,
            ready,
            serving: c.serving ?? ready,
            terminating: c.terminating ?? false,
            isLocal: ep.nodeName === nodeName,
            ...(ep.nodeName ? { nodeName: ep.nodeName } : {}),
            ...(ep.zone ? { zone: ep.zone } : {}),
          };
          const key = endpointString(info);
          const known = byAddress.get(key);
          if (!known || (!known.ready && info.ready)) byAddress.set(key, info);
        }
      }
      const endpoints = [...byAddress.values()].sort((a, b) => compareEndpoints(a, b));
      out.push({ service: port, endpoints });
    }
  }
  return out.sort(
    (a, b) =>
      compareStrings(servicePortName(a.service), servicePortName(b.service)) ||
      compareStrings(a.service.protocol, b.service.protocol),
  );
}

function compareEndpoints(a: EndpointInfo, b: EndpointInfo): number {
  return compareIPs(a.ip, b.ip) || a.port - b.port;
}

export function externallyAccessible(s: ServicePortInfo): boolean {
  return s.nodePort !== 0 || s.loadBalancerIPs.length > 0 || s.externalIPs.length > 0;
}

/**
 * Whether the port needs the cluster-wide endpoint set: internal policy Cluster, or any external
 * access at all (even with externalTrafficPolicy Local, traffic from pods to the external address
 * is short-circuited to the cluster endpoints, as upstream does).
 */
export function usesClusterEndpoints(s: ServicePortInfo): boolean {
  return !s.internalPolicyLocal || externallyAccessible(s);
}

export function usesLocalEndpoints(s: ServicePortInfo): boolean {
  return s.internalPolicyLocal || (externallyAccessible(s) && s.externalPolicyLocal);
}

export interface CategorizedEndpoints {
  /** For traffic policy Cluster: ready endpoints, else serving-and-terminating ones. */
  clusterEndpoints: EndpointInfo[];
  /** For traffic policy Local: this node's ready endpoints, else its serving-and-terminating ones. */
  localEndpoints: EndpointInfo[];
  /** Every endpoint some traffic may reach (each gets its per-endpoint chain/rules). */
  allReachableEndpoints: EndpointInfo[];
  /** False means the service has no usable endpoint anywhere: connections are rejected. */
  hasAnyEndpoints: boolean;
}

/** upstream CategorizeEndpoints (without topology hints, which kemu does not implement). */
export function categorizeEndpoints(state: ServicePortState): CategorizedEndpoints {
  const { service: s, endpoints } = state;
  let clusterEndpoints: EndpointInfo[] = [];
  let localEndpoints: EndpointInfo[] = [];
  let hasAnyEndpoints = false;
  if (usesClusterEndpoints(s)) {
    clusterEndpoints = endpoints.filter((e) => e.ready);
    if (clusterEndpoints.length === 0) clusterEndpoints = endpoints.filter((e) => e.serving && e.terminating);
    hasAnyEndpoints = clusterEndpoints.length > 0;
  }
  if (!usesLocalEndpoints(s)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  }
  let localReady = false;
  let localServingTerminating = false;
  for (const e of endpoints) {
    if (e.ready) {
      hasAnyEndpoints = true;
      if (e.isLocal) localReady = true;
    } else if (e.serving && e.terminating) {
      hasAnyEndpoints = true;
      if (e.isLocal) localServingTerminating = true;
    }
  }
  if (localReady) localEndpoints = endpoints.filter((e) => e.isLocal && e.ready);
  else if (localServingTerminating)
    localEndpoints = endpoints.filter((e) => e.isLocal && e.serving && e.terminating);
  if (!usesClusterEndpoints(s)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints };
  }
  const reachable = new Map<string, EndpointInfo>();
  for (const e of [...clusterEndpoints, ...localEndpoints]) reachable.set(endpointString(e), e);
  const allReachableEndpoints = [...reachable.values()].sort(compareEndpoints);
  return { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints };
}

/** The interface every proxy mode implements (the shared contract suite runs against each). */
export interface ProxyBackend {
  readonly mode: "iptables" | "nftables";
  /** Renders the whole state and applies it in one atomic kernel transaction. */
  sync(state: ProxyState): Promise<{ applied: boolean; bytes: number }>;
  /** Removes everything this mode ever created (for switching modes and `kemu down`). */
  cleanup(): Promise<void>;
}
