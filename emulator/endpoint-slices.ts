// The EndpointSlice controllers' decisions: what a Service's slices should hold
// (staging/src/k8s.io/endpointslice: podToEndpoint, getEndpointPorts, one group of slices per
// address type and port set), what a selector-less Service's manual Endpoints mirror into
// (pkg/controller/endpointslicemirroring), and the writes that turn the existing slices into the
// desired ones while moving as few endpoints as possible.

import { compareIPs } from "./compare.ts";
import {
  findPort,
  isPodReady,
  podIPs,
  shouldPodBeInEndpoints,
  shouldSetHostname,
  stableStringify,
} from "./endpoints.ts";
import {
  ENDPOINTSLICE_CONTROLLER,
  type EndpointSlice,
  MANAGED_BY_LABEL,
  MIRRORING_CONTROLLER,
  SERVICE_NAME_LABEL,
  type SliceEndpoint,
  type SlicePort,
} from "./kinds/endpoint-slice.ts";
import type { Endpoints } from "./kinds/endpoints.ts";
import { CLUSTER_IP_NONE, HEADLESS_LABEL, type Service } from "./kinds/service.ts";
import type { OwnerReference, Pod } from "./types.ts";
import { nameIsDNSSubdomain, parseIP } from "./validation.ts";

/** kube-controller-manager's --max-endpoints-per-slice default. */
export const MAX_ENDPOINTS_PER_SLICE = 100;
export const ZONE_LABEL = "topology.kubernetes.io/zone";
const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";
const TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time";

/** Endpoints of one address type sharing one port list; becomes one or more slices. */
export interface SliceGroup {
  addressType: string;
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
}

/** Everything a controller stamps on the slices it owns. */
export interface SliceMeta {
  namespace: string;
  generateName: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences: OwnerReference[];
}

export interface SlicePlan {
  create: EndpointSlice[];
  update: EndpointSlice[];
  remove: EndpointSlice[];
}

/** getEndpointSlicePrefix: `<name>-`, or "endpointslice-" when that would not be a valid name. */
export function slicePrefix(name: string): string {
  const prefix = `${name}-`;
  return nameIsDNSSubdomain(prefix, true).length ? "endpointslice-" : prefix;
}

/** getAddressTypesForService. */
export function serviceAddressTypes(svc: Service): string[] {
  const types = new Set<string>();
  for (const f of svc.spec?.ipFamilies ?? []) {
    if (f === "IPv4" || f === "IPv6") types.add(f);
  }
  if (types.size) return [...types];
  const ip = svc.spec?.clusterIP;
  if (ip && ip !== CLUSTER_IP_NONE) return [ip.includes(":") ? "IPv6" : "IPv4"];
  return ["IPv4", "IPv6"];
}

/** getEndpointPorts: a pod missing a named target port simply lacks that port. */
export function endpointPortsFor(svc: Service, pod: Pod): SlicePort[] {
  const ports = svc.spec?.ports ?? [];
  const out: SlicePort[] = [];
  if (ports.length === 0 && svc.spec?.clusterIP === CLUSTER_IP_NONE) return out;
  for (const sp of ports) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    out.push({
      name: sp.name ?? "",
      port,
      protocol: sp.protocol ?? "TCP",
      ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
    });
  }
  return sortPorts(out);
}

function sortPorts(ports: SlicePort[]): SlicePort[] {
  return ports.sort(
    (a, b) =>
      (a.name ?? "").localeCompare(b.name ?? "") ||
      (a.port ?? 0) - (b.port ?? 0) ||
      (a.protocol ?? "").localeCompare(b.protocol ?? ""),
  );
}

/**
 * podToEndpoint: ready means serving and not terminating (or publishNotReadyAddresses); a
 * terminating pod stays listed, not ready, serving while its readiness holds.
 */
export function podToEndpoint(pod: Pod, svc: Service, addressType: string, zone?: string): SliceEndpoint {
  const serving = isPodReady(pod);
  const terminating = !!pod.metadata.deletionTimestamp;
  const ready = !!svc.spec?.publishNotReadyAddresses || (serving && !terminating);
  const ep: SliceEndpoint = {
    addresses: podIPs(pod).filter((ip) => ip.includes(":") === (addressType === "IPv6")),
    conditions: { ready, serving, terminating },
  };
  if (shouldSetHostname(pod, svc)) ep.hostname = pod.spec.hostname;
  ep.targetRef = {
    kind: "Pod",
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    uid: pod.metadata.uid,
  };
  if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
  if (zone) ep.zone = zone;
  return ep;
}

export interface NodeInfo {
  zone?: string;
}

/**
 * The slice groups of a Service with a selector, from the pods it selects. Pods whose node is
 * unknown are left out and reported, so the caller can retry once the node shows up.
 */
export function desiredServiceSlices(
  svc: Service,
  pods: Pod[],
  nodeOf: (name: string) => NodeInfo | undefined,
): { groups: SliceGroup[]; missingNodes: string[] } {
  const groups = new Map<string, SliceGroup>();
  const missing = new Set<string>();
  for (const addressType of serviceAddressTypes(svc)) {
    for (const pod of pods) {
      if (!shouldPodBeInEndpoints(pod, true)) continue;
      const ports = endpointPortsFor(svc, pod);
      const key = groupKey(addressType, ports);
      if (!groups.has(key)) groups.set(key, { addressType, ports, endpoints: [] });
      const nodeName = pod.spec?.nodeName ?? "";
      const node = nodeName ? nodeOf(nodeName) : undefined;
      if (!node) {
        missing.add(nodeName);
        continue;
      }
      const ep = podToEndpoint(pod, svc, addressType, node.zone);
      if (ep.addresses.length) groups.get(key)!.endpoints.push(ep);
    }
  }
  return { groups: [...groups.values()].filter((g) => g.endpoints.length), missingNodes: [...missing] };
}

/** setEndpointSliceLabels and the controller reference for a Service's own slices. */
export function serviceSliceMeta(svc: Service): SliceMeta {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata.labels ?? {})) {
    if (k !== SERVICE_NAME_LABEL && k !== MANAGED_BY_LABEL) labels[k] = v;
  }
  const ip = svc.spec?.clusterIP;
  if (!ip || ip === CLUSTER_IP_NONE) labels[HEADLESS_LABEL] = "";
  else delete labels[HEADLESS_LABEL];
  labels[SERVICE_NAME_LABEL] = svc.metadata.name!;
  labels[MANAGED_BY_LABEL] = ENDPOINTSLICE_CONTROLLER;
  return {
    namespace: svc.metadata.namespace!,
    generateName: slicePrefix(svc.metadata.name!),
    labels,
    ownerReferences: [
      {
        apiVersion: "v1",
        kind: "Service",
        name: svc.metadata.name!,
        uid: svc.metadata.uid!,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

/** The mirroring controller's slices of manual Endpoints: their labels and annotations, owned by them. */
export function mirroredSliceMeta(ep: Endpoints): SliceMeta {
  const labels: Record<string, string> = { ...(ep.metadata.labels ?? {}) };
  labels[SERVICE_NAME_LABEL] = ep.metadata.name!;
  labels[MANAGED_BY_LABEL] = MIRRORING_CONTROLLER;
  const annotations: Record<string, string> = { ...(ep.metadata.annotations ?? {}) };
  delete annotations[LAST_APPLIED_ANNOTATION];
  delete annotations[TRIGGER_TIME_ANNOTATION];
  return {
    namespace: ep.metadata.namespace!,
    generateName: slicePrefix(ep.metadata.name!),
    labels,
    annotations,
    ownerReferences: [
      {
        apiVersion: "v1",
        kind: "Endpoints",
        name: ep.metadata.name!,
        uid: ep.metadata.uid!,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

/** The mirroring controller's view of manual Endpoints: one endpoint per address, ready or not. */
export function mirrorGroups(ep: Endpoints): SliceGroup[] {
  const groups = new Map<string, SliceGroup>();
  const seen = new Set<string>();
  for (const ss of ep.subsets ?? []) {
    const ports = sortPorts(
      (ss.ports ?? []).map((p) => ({
        name: p.name ?? "",
        port: p.port,
        protocol: p.protocol ?? "TCP",
        ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
      })),
    );
    const add = (list: typeof ss.addresses, ready: boolean) => {
      for (const a of list ?? []) {
        const ip = parseIP(a.ip ?? "");
        if (!ip) continue; // upstream skips addresses it cannot parse
        const addressType = ip.family === 6 ? "IPv6" : "IPv4";
        const key = groupKey(addressType, ports);
        if (seen.has(`${key}\u0000${a.ip}`)) continue;
        seen.add(`${key}\u0000${a.ip}`);
        if (!groups.has(key)) groups.set(key, { addressType, ports, endpoints: [] });
        const endpoint: SliceEndpoint = { addresses: [a.ip], conditions: { ready } };
        if (a.hostname) endpoint.hostname = a.hostname;
        if (a.targetRef) endpoint.targetRef = a.targetRef;
        if (a.nodeName) endpoint.nodeName = a.nodeName;
        groups.get(key)!.endpoints.push(endpoint);
      }
    };
    add(ss.addresses, true);
    add(ss.notReadyAddresses, false);
  }
  return [...groups.values()];
}

function groupKey(addressType: string, ports: SlicePort[] | null | undefined): string {
  return `${addressType}\u0000${stableStringify(sortPorts([...(ports ?? [])]))}`;
}

function endpointKey(ep: SliceEndpoint): string {
  return `${ep.addresses?.[0] ?? ""}\u0000${ep.targetRef?.uid ?? ""}`;
}

function compareEndpoints(a: SliceEndpoint, b: SliceEndpoint): number {
  return (
    compareIPs(a.addresses?.[0] ?? "", b.addresses?.[0] ?? "") || endpointKey(a).localeCompare(endpointKey(b))
  );
}

function content(s: EndpointSlice): string {
  return stableStringify([
    s.addressType,
    s.endpoints ?? [],
    s.ports ?? [],
    s.metadata.labels ?? {},
    s.metadata.annotations ?? {},
    s.metadata.ownerReferences ?? [],
  ]);
}

/**
 * Turns `existing` (the slices this controller owns for one Service) into slices holding `groups`:
 * endpoints stay in the slice that already holds them, new ones fill slices with room before new
 * slices are made, emptied slices go. With nothing to hold and a `placeholderType`, one slice
 * without ports or endpoints remains, as the endpointslice controller keeps one so consumers can
 * tell "no endpoints" from "not synced yet".
 */
export function planSlices(
  groups: SliceGroup[],
  existing: EndpointSlice[],
  meta: SliceMeta,
  placeholderType?: string,
  maxPerSlice = MAX_ENDPOINTS_PER_SLICE,
): SlicePlan {
  const plan: SlicePlan = { create: [], update: [], remove: [] };
  const wanted = new Map<
    string,
    { group: SliceGroup; byKey: Map<string, SliceEndpoint>; placed: Set<string> }
  >();
  const nonEmpty = groups.filter((g) => g.endpoints.length);
  const all: SliceGroup[] =
    nonEmpty.length || !placeholderType
      ? nonEmpty
      : [{ addressType: placeholderType, ports: [], endpoints: [] }];
  for (const g of all) {
    const key = groupKey(g.addressType, g.ports);
    const entry = wanted.get(key) ?? {
      group: { ...g, endpoints: [] as SliceEndpoint[] },
      byKey: new Map<string, SliceEndpoint>(),
      placed: new Set<string>(),
    };
    for (const ep of g.endpoints) {
      const k = endpointKey(ep);
      if (!entry.byKey.has(k)) {
        entry.byKey.set(k, ep);
        entry.group.endpoints.push(ep);
      }
    }
    wanted.set(key, entry);
  }
  const kept = new Map<string, { slice: EndpointSlice; endpoints: SliceEndpoint[] }[]>();
  const ordered = [...existing].sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
  for (const slice of ordered) {
    const key = groupKey(slice.addressType, slice.ports);
    const entry = wanted.get(key);
    if (!entry) {
      plan.remove.push(slice);
      continue;
    }
    const endpoints: SliceEndpoint[] = [];
    for (const ep of slice.endpoints ?? []) {
      const k = endpointKey(ep);
      const want = entry.byKey.get(k);
      if (want && !entry.placed.has(k) && endpoints.length < maxPerSlice) {
        entry.placed.add(k);
        endpoints.push(want);
      }
    }
    const list = kept.get(key) ?? [];
    list.push({ slice, endpoints });
    kept.set(key, list);
  }
  const build = (g: SliceGroup, endpoints: SliceEndpoint[], base?: EndpointSlice): EndpointSlice => {
    const metadata = base
      ? { ...base.metadata }
      : { generateName: meta.generateName, namespace: meta.namespace };
    metadata.labels = { ...meta.labels };
    if (meta.annotations && Object.keys(meta.annotations).length)
      metadata.annotations = { ...meta.annotations };
    else if (meta.annotations) delete metadata.annotations;
    metadata.ownerReferences = meta.ownerReferences.map((r) => ({ ...r }));
    return {
      ...(base ?? {}),
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata,
      addressType: g.addressType,
      endpoints: endpoints.length ? endpoints : null,
      ports: g.ports,
    };
  };
  for (const [key, entry] of wanted) {
    const slices = kept.get(key) ?? [];
    const pending = entry.group.endpoints
      .filter((ep) => !entry.placed.has(endpointKey(ep)))
      .sort(compareEndpoints);
    for (const s of slices) {
      while (pending.length && s.endpoints.length < maxPerSlice) s.endpoints.push(pending.shift()!);
    }
    const isPlaceholder = entry.group.endpoints.length === 0;
    slices.forEach((s, i) => {
      if (s.endpoints.length === 0 && !(isPlaceholder && i === 0)) {
        plan.remove.push(s.slice);
        return;
      }
      const next = build(entry.group, s.endpoints, s.slice);
      if (content(next) !== content(s.slice)) plan.update.push(next);
    });
    while (pending.length) plan.create.push(build(entry.group, pending.splice(0, maxPerSlice)));
    if (isPlaceholder && slices.length === 0) plan.create.push(build(entry.group, []));
  }
  return plan;
}
