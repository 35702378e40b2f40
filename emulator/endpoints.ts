// The endpoints controller's decisions (pkg/controller/endpoint): which pods back a Service, on
// which ports, ready or not, and the canonical packed `subsets` they form (RepackSubsets), capped
// at 1000 addresses as upstream truncates them. Shared pod predicates used by the EndpointSlice
// controller live here too.

import { compareIPs } from "./compare.ts";
import type { EndpointAddress, EndpointPort, EndpointSubset, Endpoints } from "./kinds/endpoints.ts";
import { CLUSTER_IP_NONE, HEADLESS_LABEL, type Service, type ServicePort } from "./kinds/service.ts";
import type { Pod } from "./types.ts";

export { compareIPs };

export const MAX_ENDPOINTS_CAPACITY = 1000;
export const OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity";

/** podutil.IsPodReady: the Ready condition is True. */
export function isPodReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** podutil.IsPodTerminal: Succeeded or Failed. */
export function isPodTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** The pod's IPs, podIPs first (podIP alone for writers that set only the singular field). */
export function podIPs(pod: Pod): string[] {
  const list = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip) => !!ip);
  if (list.length) return list;
  return pod.status?.podIP ? [pod.status.podIP] : [];
}

/** endpointsliceutil.ShouldPodBeInEndpoints. */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (podIPs(pod).length === 0) return false;
  if (!includeTerminating && pod.metadata.deletionTimestamp) return false;
  return true;
}

/**
 * podutil.FindPort: a numeric targetPort as is; a named one is the container port of that name
 * and the service port's protocol, or undefined when no container declares it.
 */
export function findPort(pod: Pod, sp: ServicePort): number | undefined {
  const target = sp.targetPort ?? sp.port;
  if (typeof target === "number") return target;
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? "TCP") === (sp.protocol ?? "TCP")) return p.containerPort;
    }
  }
  return undefined;
}

/** endpointutil.ShouldSetHostname: the pod names this Service as its subdomain. */
export function shouldSetHostname(pod: Pod, svc: Service): boolean {
  return (
    !!pod.spec?.hostname &&
    pod.spec.subdomain === svc.metadata.name &&
    pod.metadata.namespace === svc.metadata.namespace
  );
}

function isIPv6(ip: string): boolean {
  return ip.includes(":");
}

/** The family the Service's endpoints carry: its first ipFamily, else its cluster IP's. */
function serviceFamily(svc: Service, pod: Pod): "IPv4" | "IPv6" {
  const families = svc.spec?.ipFamilies ?? [];
  if (families.length) return families[0] === "IPv6" ? "IPv6" : "IPv4";
  const ip = svc.spec?.clusterIP;
  if (ip && ip !== CLUSTER_IP_NONE) return isIPv6(ip) ? "IPv6" : "IPv4";
  return isIPv6(podIPs(pod)[0] ?? "") ? "IPv6" : "IPv4";
}

/** podToEndpointAddressForService. */
export function endpointAddressFor(svc: Service, pod: Pod): EndpointAddress | undefined {
  const v6 = serviceFamily(svc, pod) === "IPv6";
  const ip = podIPs(pod).find((a) => isIPv6(a) === v6);
  if (!ip) return undefined;
  const addr: EndpointAddress = {
    ip,
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    targetRef: {
      kind: "Pod",
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      uid: pod.metadata.uid,
    },
  };
  if (shouldSetHostname(pod, svc)) addr.hostname = pod.spec.hostname;
  return addr;
}

function endpointPortFor(sp: ServicePort, port: number): EndpointPort {
  return {
    ...(sp.name ? { name: sp.name } : {}),
    port,
    protocol: sp.protocol ?? "TCP",
    ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
  };
}

function addressKey(a: EndpointAddress): string {
  return `${a.ip}\u0000${a.targetRef?.uid ?? ""}`;
}

function portKey(p: EndpointPort): string {
  return `${p.name ?? ""}\u0000${p.port}\u0000${p.protocol ?? ""}\u0000${p.appProtocol ?? ""}`;
}

function compareAddresses(a: EndpointAddress, b: EndpointAddress): number {
  return compareIPs(a.ip, b.ip) || (a.targetRef?.uid ?? "").localeCompare(b.targetRef?.uid ?? "");
}

/** Numeric order for IPv4 (10.0.0.9 before 10.0.0.10), text order otherwise. */

/**
 * endpoints.RepackSubsets: every (address, port) pair regrouped so that addresses offering the
 * same ports share one subset; an address both ready and not ready for a port counts as ready.
 * Subsets, addresses and ports come out in a stable order.
 */
export function repackSubsets(subsets: EndpointSubset[]): EndpointSubset[] {
  const addresses = new Map<string, EndpointAddress>();
  const SENTINEL = "\u0000sentinel";
  const byPort = new Map<string, { port?: EndpointPort; ready: Map<string, boolean> }>();
  const note = (port: EndpointPort | undefined, a: EndpointAddress, ready: boolean) => {
    const ak = addressKey(a);
    if (!addresses.has(ak)) addresses.set(ak, a);
    const pk = port ? portKey(port) : SENTINEL;
    let entry = byPort.get(pk);
    if (!entry) {
      entry = { port, ready: new Map() };
      byPort.set(pk, entry);
    }
    if (!entry.ready.get(ak)) entry.ready.set(ak, ready);
  };
  for (const ss of subsets) {
    const ports: (EndpointPort | undefined)[] = ss.ports?.length ? ss.ports : [undefined];
    for (const port of ports) {
      for (const a of ss.addresses ?? []) note(port, a, true);
      for (const a of ss.notReadyAddresses ?? []) note(port, a, false);
    }
  }
  const groups = new Map<string, { ready: Map<string, boolean>; ports: EndpointPort[] }>();
  for (const { port, ready } of byPort.values()) {
    const key = [...ready]
      .map(([k, r]) => `${k}\u0000${r}`)
      .sort()
      .join("\u0001");
    let g = groups.get(key);
    if (!g) {
      g = { ready, ports: [] };
      groups.set(key, g);
    }
    if (port) g.ports.push(port);
  }
  const out: EndpointSubset[] = [];
  for (const g of groups.values()) {
    const ready: EndpointAddress[] = [];
    const notReady: EndpointAddress[] = [];
    for (const [k, r] of g.ready) (r ? ready : notReady).push(addresses.get(k)!);
    ready.sort(compareAddresses);
    notReady.sort(compareAddresses);
    const ss: EndpointSubset = {};
    if (ready.length) ss.addresses = ready;
    if (notReady.length) ss.notReadyAddresses = notReady;
    if (g.ports.length) {
      ss.ports = g.ports.sort(
        (a, b) =>
          (a.name ?? "").localeCompare(b.name ?? "") ||
          a.port - b.port ||
          (a.protocol ?? "").localeCompare(b.protocol ?? ""),
      );
    }
    out.push(ss);
  }
  const first = (ss: EndpointSubset) => (ss.addresses ?? ss.notReadyAddresses ?? [])[0];
  return out.sort((a, b) => {
    const x = first(a);
    const y = first(b);
    if (!x || !y) return x ? -1 : y ? 1 : 0;
    return (
      compareAddresses(x, y) || JSON.stringify(a.ports ?? []).localeCompare(JSON.stringify(b.ports ?? []))
    );
  });
}

/** truncateEndpoints: over 1000 addresses, not-ready ones go first, then ready ones proportionally. */
export function truncateSubsets(subsets: EndpointSubset[]): boolean {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const ss of subsets) {
    totalReady += ss.addresses?.length ?? 0;
    totalNotReady += ss.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= MAX_ENDPOINTS_CAPACITY) return false;
  const truncateReady = totalReady > MAX_ENDPOINTS_CAPACITY;
  const max = truncateReady ? MAX_ENDPOINTS_CAPACITY : MAX_ENDPOINTS_CAPACITY - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let room = max;
  for (const ss of subsets) {
    const n = truncateReady ? (ss.addresses?.length ?? 0) : (ss.notReadyAddresses?.length ?? 0);
    const share = Math.min(Math.ceil((n / total) * max), room);
    if (truncateReady) {
      ss.addresses = (ss.addresses ?? []).slice(0, share);
      delete ss.notReadyAddresses;
      room -= ss.addresses.length;
      if (!ss.addresses.length) delete ss.addresses;
    } else {
      ss.notReadyAddresses = (ss.notReadyAddresses ?? []).slice(0, share);
      room -= ss.notReadyAddresses.length;
      if (!ss.notReadyAddresses.length) delete ss.notReadyAddresses;
    }
  }
  return true;
}

export interface DesiredEndpoints {
  labels: Record<string, string>;
  subsets: EndpointSubset[];
  /** More than 1000 addresses were found and some were left out. */
  truncated: boolean;
}

/**
 * What the endpoints controller writes for a Service with a selector, given the pods its selector
 * matches: a terminating pod is left out unless publishNotReadyAddresses, a pod that lacks a
 * named target port is left out of that port, a headless Service without ports lists bare
 * addresses.
 */
export function desiredEndpoints(svc: Service, pods: Pod[]): DesiredEndpoints {
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const ports = svc.spec?.ports ?? [];
  const raw: EndpointSubset[] = [];
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const addr = endpointAddressFor(svc, pod);
    if (!addr) continue;
    const ready = publishNotReady || isPodReady(pod);
    const put = (epPorts: EndpointPort[] | undefined) =>
      raw.push(ready ? { addresses: [addr], ports: epPorts } : { notReadyAddresses: [addr], ports: epPorts });
    if (ports.length === 0) {
      if (svc.spec?.clusterIP === CLUSTER_IP_NONE) put(undefined);
      continue;
    }
    for (const sp of ports) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      put([endpointPortFor(sp, port)]);
    }
  }
  const subsets = repackSubsets(raw);
  const truncated = truncateSubsets(subsets);
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
  const ip = svc.spec?.clusterIP;
  if (!ip || ip === CLUSTER_IP_NONE) labels[HEADLESS_LABEL] = "";
  else delete labels[HEADLESS_LABEL];
  return { labels, subsets, truncated };
}

/** The Endpoints object to store: `current` (if any) with the desired labels, subsets and capacity note. */
export function endpointsObject(svc: Service, desired: DesiredEndpoints, current?: Endpoints): Endpoints {
  const annotations: Record<string, string> = { ...(current?.metadata.annotations ?? {}) };
  if (desired.truncated) annotations[OVER_CAPACITY_ANNOTATION] = "truncated";
  else delete annotations[OVER_CAPACITY_ANNOTATION];
  const metadata = current
    ? { ...current.metadata }
    : { name: svc.metadata.name, namespace: svc.metadata.namespace };
  metadata.labels = desired.labels;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  else delete metadata.annotations;
  const ep: Endpoints = { ...(current ?? {}), apiVersion: "v1", kind: "Endpoints", metadata };
  if (desired.subsets.length) ep.subsets = desired.subsets;
  else delete ep.subsets;
  return ep;
}

/** JSON with object keys sorted, so equal objects compare equal whatever order they were built in. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

/** Whether storing `next` over `current` would change anything the controller owns. */
export function endpointsDiffer(current: Endpoints, next: Endpoints): boolean {
  const norm = (e: Endpoints) =>
    stableStringify([e.subsets ?? [], e.metadata.labels ?? {}, e.metadata.annotations ?? {}]);
  return norm(current) !== norm(next);
}
