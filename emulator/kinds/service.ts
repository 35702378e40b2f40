// core/v1 Service: defaulting (SetDefaults_Service), the strategy's update preparation
// (patchAllocatedValues, normalizeClusterIPs, dropTypeDependentFields in
// pkg/registry/core/service), validation (ValidateService / ValidateServiceUpdate /
// ValidateLoadBalancerStatus in pkg/apis/core/validation), field selectors and the
// `kubectl get services` columns (printService).
//
// Allocation of cluster IPs and node ports is not here: it needs the allocators' state and runs as
// an admission step after validation (emulator/service-allocation.ts, api/service-admission.ts).

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import type { FieldError, KubeObject } from "../types.ts";
import {
  duplicate,
  forbidden,
  GoValue,
  goQuote,
  invalid,
  nameIsDNS1035Label,
  notSupported,
  parseCIDR,
  parseIP,
  required,
  validateDNS1123Label,
  validateDNS1123Subdomain,
  validateIP,
  validateLabels,
  validateObjectMeta,
  validatePortName,
  validatePortNumber,
  validateQualifiedName,
} from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";

export interface ServicePort {
  name?: string;
  protocol?: string;
  appProtocol?: string;
  port: number;
  /** IntOrString: a container port number or the name of a container port. */
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceSpec {
  type?: ServiceType | string;
  ports?: ServicePort[];
  selector?: Record<string, string> | null;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  externalIPs?: string[];
  externalName?: string;
  externalTrafficPolicy?: string;
  internalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  sessionAffinity?: string;
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number | null } | null } | null;
  loadBalancerIP?: string;
  loadBalancerSourceRanges?: string[];
  loadBalancerClass?: string | null;
  allocateLoadBalancerNodePorts?: boolean | null;
  publishNotReadyAddresses?: boolean;
  trafficDistribution?: string;
  [extra: string]: unknown;
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  ipMode?: string;
  ports?: unknown[];
}

export interface Service extends KubeObject {
  spec: ServiceSpec;
  status?: {
    loadBalancer?: { ingress?: LoadBalancerIngress[] };
    conditions?: unknown[];
    [extra: string]: unknown;
  };
}

/** Upstream's DefaultClientIPServiceAffinitySeconds (3 hours) and its maximum (1 day). */
export const DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800;
export const MAX_CLIENT_IP_AFFINITY_SECONDS = 86400;
export const CLUSTER_IP_NONE = "None";
export const HEADLESS_LABEL = "service.kubernetes.io/headless";

const SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const SESSION_AFFINITIES = ["ClientIP", "None"];
const PROTOCOLS = ["SCTP", "TCP", "UDP"];
const TRAFFIC_POLICIES = ["Cluster", "Local"];
const IP_FAMILIES = ["IPv4", "IPv6"];
const IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"];
const IP_MODES = ["Proxy", "VIP"];
const TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints";
const TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode";
const SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges";

// ---- helpers shared with allocation and the endpoint controllers ----

/** apiservice.ExternallyAccessible: NodePort, LoadBalancer, or a ClusterIP with external IPs. */
export function externallyAccessible(svc: Service): boolean {
  const t = svc.spec?.type;
  return (
    t === "LoadBalancer" ||
    t === "NodePort" ||
    (t === "ClusterIP" && (svc.spec?.externalIPs?.length ?? 0) > 0)
  );
}

/** apiservice.NeedsHealthCheck: a LoadBalancer that keeps traffic on local endpoints. */
export function needsHealthCheck(svc: Service): boolean {
  return svc.spec?.type === "LoadBalancer" && svc.spec?.externalTrafficPolicy === "Local";
}

export function needsClusterIP(svc: Service): boolean {
  return svc.spec?.type !== "ExternalName";
}

export function needsNodePort(svc: Service): boolean {
  return svc.spec?.type === "NodePort" || svc.spec?.type === "LoadBalancer";
}

/** Headless as validation sees it: clusterIPs is exactly ["None"]. */
export function isHeadless(svc: Service): boolean {
  const ips = svc.spec?.clusterIPs ?? [];
  return ips.length === 1 && ips[0] === CLUSTER_IP_NONE;
}

/** Has a selector the endpoint controllers act on (an empty map reads as none, as after a v1 round trip). */
export function hasSelector(svc: Service): boolean {
  return Object.keys(svc.spec?.selector ?? {}).length > 0;
}

function sameList(a: unknown[] | undefined, b: unknown[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

// ---- defaulting ----

/** SetDefaults_Service plus the create-time half of normalizeClusterIPs and a reset status. */
export function defaultService(svc: Service): void {
  svc.spec ??= {};
  const spec = svc.spec;
  if (!spec.sessionAffinity) spec.sessionAffinity = "None";
  if (spec.sessionAffinity === "None") delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === "ClientIP") {
    const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (timeout === undefined || timeout === null) {
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: DEFAULT_CLIENT_IP_AFFINITY_SECONDS } };
    }
  }
  if (!spec.type) spec.type = "ClusterIP";
  for (const p of spec.ports ?? []) {
    if (!p || typeof p !== "object") continue;
    if (!p.protocol) p.protocol = "TCP";
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === "") {
      p.targetPort = p.port;
    }
  }
  if (externallyAccessible(svc) && !spec.externalTrafficPolicy) spec.externalTrafficPolicy = "Cluster";
  if (
    (spec.internalTrafficPolicy === undefined || spec.internalTrafficPolicy === null) &&
    (spec.type === "NodePort" || spec.type === "LoadBalancer" || spec.type === "ClusterIP")
  ) {
    spec.internalTrafficPolicy = "Cluster";
  }
  if (
    spec.type === "LoadBalancer" &&
    (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null)
  ) {
    spec.allocateLoadBalancerNodePorts = true;
  }
  // Old clients send only the singular field.
  if (spec.clusterIP && !(spec.clusterIPs?.length ?? 0)) spec.clusterIPs = [spec.clusterIP];
  // PrepareForCreate resets status; on updates the stored status comes back (status subresource).
  svc.status = { loadBalancer: {} };
}

// ---- update preparation ----

/**
 * What upstream's service REST does to an update before validation: patchAllocatedValues (a PUT
 * that omits the allocated clusterIP or nodePorts keeps them), normalizeClusterIPs (keeps
 * clusterIP and clusterIPs in step) and dropTypeDependentFields (a type change clears the values
 * the old type had allocated, unless the client changed them too, which validation then reports).
 */
export function prepareServiceUpdate(svc: Service, old: Service): void {
  svc.spec ??= {};
  const spec = svc.spec;
  const prev = old.spec ?? {};

  // patchAllocatedValues
  if (needsClusterIP(old) && needsClusterIP(svc)) {
    if (!spec.clusterIP && prev.clusterIP) spec.clusterIP = prev.clusterIP;
    if (!(spec.clusterIPs?.length ?? 0) && (prev.clusterIPs?.length ?? 0) > 0) {
      spec.clusterIPs = [...prev.clusterIPs!];
    }
  }
  if (needsNodePort(old) && needsNodePort(svc)) {
    const used = (s: ServiceSpec) => new Set((s.ports ?? []).map((p) => p.nodePort ?? 0).filter((n) => n));
    const oldUsed = used(prev);
    const newUsed = used(spec);
    const taken = new Set([...oldUsed].filter((n) => newUsed.has(n)));
    const byName = new Map<string, number>();
    for (const p of prev.ports ?? []) byName.set(p.name ?? "", p.nodePort ?? 0);
    for (const p of spec.ports ?? []) {
      if (!p.nodePort) {
        const was = byName.get(p.name ?? "") ?? 0;
        if (was && !taken.has(was)) p.nodePort = was;
      }
    }
  }
  if (needsHealthCheck(old) && needsHealthCheck(svc) && !spec.healthCheckNodePort) {
    if (prev.healthCheckNodePort) spec.healthCheckNodePort = prev.healthCheckNodePort;
  }

  // normalizeClusterIPs (update half)
  if ((prev.clusterIPs?.length ?? 0) > 0 && !(spec.clusterIPs?.length ?? 0)) {
    if ((prev.clusterIP ?? "") === (spec.clusterIP ?? "")) spec.clusterIPs = [...prev.clusterIPs!];
  }
  if ((prev.clusterIP ?? "") !== (spec.clusterIP ?? "")) {
    if (prev.clusterIP && !spec.clusterIP) {
      if (sameList(prev.clusterIPs, spec.clusterIPs)) delete spec.clusterIPs;
    } else if (sameList(prev.clusterIPs, spec.clusterIPs)) {
      spec.clusterIPs = [spec.clusterIP!];
    }
  }

  // dropTypeDependentFields
  if (needsClusterIP(old) && !needsClusterIP(svc)) {
    if (sameList(prev.clusterIPs, spec.clusterIPs)) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (sameList(prev.ipFamilies, spec.ipFamilies)) delete spec.ipFamilies;
    if ((prev.ipFamilyPolicy ?? "") === (spec.ipFamilyPolicy ?? "")) delete spec.ipFamilyPolicy;
  }
  if (needsNodePort(old) && !needsNodePort(svc)) {
    const ports = (s: ServiceSpec) => (s.ports ?? []).map((p) => p.nodePort ?? 0);
    if (sameList(ports(prev), ports(spec))) for (const p of spec.ports ?? []) delete p.nodePort;
  }
  if (prev.type === "LoadBalancer" && spec.type !== "LoadBalancer") {
    const a = prev.allocateLoadBalancerNodePorts;
    const b = spec.allocateLoadBalancerNodePorts;
    if (a !== undefined && a !== null && b !== undefined && b !== null && a === b) {
      delete spec.allocateLoadBalancerNodePorts;
    }
    if ((prev.loadBalancerClass ?? null) === (spec.loadBalancerClass ?? null)) delete spec.loadBalancerClass;
  }
  if (needsHealthCheck(old) && !needsHealthCheck(svc)) {
    if ((prev.healthCheckNodePort ?? 0) === (spec.healthCheckNodePort ?? 0)) delete spec.healthCheckNodePort;
  }
  if (externallyAccessible(old) && !externallyAccessible(svc)) {
    if ((prev.externalTrafficPolicy ?? "") === (spec.externalTrafficPolicy ?? "")) {
      delete spec.externalTrafficPolicy;
    }
  }
  // The load-balancer status goes with the type (de-provisioning is the controller's business).
  if (spec.type !== "LoadBalancer" && svc.status?.loadBalancer?.ingress?.length) {
    svc.status = { ...svc.status, loadBalancer: {} };
  }
}

// ---- validation ----

function portKeyValue(protocol: string | undefined, port: number | undefined): GoValue {
  return new GoValue(
    `core.ServicePort{Name:"", Protocol:${goQuote(protocol ?? "")}, AppProtocol:(*string)(nil), Port:${port ?? 0}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
  );
}

/** ValidatePortNumOrName: an IntOrString that is a port number or an IANA_SVC_NAME. */
export function validatePortNumOrName(value: unknown, field: string): FieldError[] {
  if (value === undefined || value === null) return validatePortNumber(0, field);
  if (typeof value === "number") return validatePortNumber(value, field);
  if (typeof value === "string") return validatePortName(value, field);
  return [invalid(field, value, "must be a port number or a port name")];
}

function validateServicePort(
  sp: ServicePort,
  requireName: boolean,
  names: Set<string>,
  path: string,
): FieldError[] {
  const errs: FieldError[] = [];
  if (requireName && !sp.name) errs.push(required(`${path}.name`));
  else if (sp.name) {
    errs.push(...validateDNS1123Label(sp.name, `${path}.name`));
    if (names.has(sp.name)) errs.push(duplicate(`${path}.name`, sp.name));
    else names.add(sp.name);
  }
  errs.push(...validatePortNumber(sp.port ?? 0, `${path}.port`));
  if (!sp.protocol) errs.push(required(`${path}.protocol`));
  else if (!PROTOCOLS.includes(sp.protocol))
    errs.push(notSupported(`${path}.protocol`, sp.protocol, PROTOCOLS));
  errs.push(...validatePortNumOrName(sp.targetPort, `${path}.targetPort`));
  if (sp.appProtocol !== undefined && sp.appProtocol !== null) {
    errs.push(...validateQualifiedName(sp.appProtocol, `${path}.appProtocol`));
  }
  return errs;
}

/** ValidateNonSpecialIP: no unspecified, loopback or link-local addresses (Endpoints, external IPs). */
export function validateNonSpecialIP(value: string, field: string): FieldError[] {
  const ip = parseIP(value);
  if (!ip) return [invalid(field, value, "must be a valid IP address")];
  const errs: FieldError[] = [];
  const v = ip.value;
  const v4 = ip.family === 4 ? v : ip.mapped4 ? v & 0xffffffffn : undefined;
  if (v === 0n || (ip.mapped4 && v4 === 0n))
    errs.push(invalid(field, value, `may not be unspecified (${value})`));
  const loopback = v4 !== undefined ? v4 >> 24n === 127n : v === 1n;
  if (loopback) errs.push(invalid(field, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  const linkLocal = v4 !== undefined ? v4 >> 16n === 0xa9fen : v >> 118n === 0x3fan;
  if (linkLocal) {
    errs.push(invalid(field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
  }
  const linkLocalMulticast =
    v4 !== undefined ? v4 >> 8n === 0xe00000n : v >> 120n === 0xffn && ((v >> 112n) & 0x0fn) === 2n;
  if (linkLocalMulticast) {
    errs.push(
      invalid(field, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    );
  }
  return errs;
}

function isIPv6(ip: string): boolean {
  return parseIP(ip)?.family === 6;
}

/** ValidateServiceClusterIPsRelatedFields. */
export function validateClusterIPsRelatedFields(svc: Service): FieldError[] {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return [];
  const errs: FieldError[] = [];
  const ips = spec.clusterIPs ?? [];
  const families = spec.ipFamilies ?? [];
  if (spec.clusterIP) {
    if (ips.length === 0) errs.push(required("spec.clusterIPs"));
    else if (ips[0] !== spec.clusterIP) {
      errs.push(invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"));
    }
  } else if (ips.length !== 0) {
    errs.push(invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"));
  }
  const seen = new Set<string>();
  families.forEach((f, i) => {
    if (!IP_FAMILIES.includes(f)) errs.push(notSupported(`spec.ipFamilies[${i}]`, f, IP_FAMILIES));
    if (seen.has(f)) errs.push(duplicate(`spec.ipFamilies[${i}]`, f));
    seen.add(f);
  });
  if (spec.ipFamilyPolicy !== undefined && spec.ipFamilyPolicy !== null) {
    if (!IP_FAMILY_POLICIES.includes(spec.ipFamilyPolicy)) {
      errs.push(notSupported("spec.ipFamilyPolicy", spec.ipFamilyPolicy, IP_FAMILY_POLICIES));
    }
  }
  let badIPs = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === CLUSTER_IP_NONE) {
      if (ips.length > 1) {
        badIPs = true;
        errs.push(invalid("spec.clusterIPs", ips, "'None' must be the first and only value"));
      }
      return;
    }
    const e = validateIP(ip, `spec.clusterIPs[${i}]`);
    if (e.length) badIPs = true;
    errs.push(...e);
  });
  if (ips.length > 2) errs.push(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"));
  if (badIPs) return errs;
  if (ips.length > 1) {
    const fams = ips.map((ip) => parseIP(ip)?.family);
    if (!(ips.length === 2 && fams[0] !== fams[1])) {
      errs.push(invalid("spec.clusterIPs", ips, "may specify no more than one IP for each IP family"));
    }
  }
  if (!isHeadless(svc) && ips.length > 0 && families.length > 0) {
    ips.forEach((ip, i) => {
      if (i >= families.length) return;
      if (families[i] === "IPv4" && isIPv6(ip)) {
        errs.push(
          invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``),
        );
      }
      if (families[i] === "IPv6" && !isIPv6(ip)) {
        errs.push(
          invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``),
        );
      }
    });
  }
  return errs;
}

function validateLoadBalancerClass(svc: Service, old?: Service): FieldError[] {
  const errs: FieldError[] = [];
  const cls = svc.spec?.loadBalancerClass;
  if (old && old.spec?.type === "LoadBalancer" && svc.spec?.type === "LoadBalancer") {
    if ((old.spec?.loadBalancerClass ?? null) !== (cls ?? null)) {
      errs.push(invalid("spec.loadBalancerClass", cls ?? null, "may not change once set"));
    }
  }
  if (svc.spec?.type === "LoadBalancer") {
    if (cls !== undefined && cls !== null) errs.push(...validateQualifiedName(cls, "spec.loadBalancerClass"));
  } else if (cls !== undefined && cls !== null) {
    errs.push(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"));
  }
  return errs;
}

function validateCIDRLoose(value: string, field: string): FieldError[] {
  return parseCIDR(value)
    ? []
    : [invalid(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")];
}

/** ValidateLoadBalancerStatus (status.loadBalancer of any Service). */
export function validateLoadBalancerStatus(svc: Service): FieldError[] {
  const errs: FieldError[] = [];
  const ingress = svc.status?.loadBalancer?.ingress ?? [];
  if (svc.spec?.type !== "LoadBalancer" && ingress.length) {
    return [forbidden("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'")];
  }
  ingress.forEach((ing, i) => {
    const p = `status.loadBalancer.ingress[${i}]`;
    if (ing.ip) errs.push(...validateIP(ing.ip, `${p}.ip`));
    // ipMode is required with an ip upstream, where decoding defaults it first; kemu does not
    // default status writes, so an absent ipMode is accepted and reads as VIP.
    if (ing.ipMode !== undefined && ing.ipMode !== null) {
      if (!ing.ip) errs.push(forbidden(`${p}.ipMode`, "may not be specified when `ip` is not set"));
      else if (!IP_MODES.includes(ing.ipMode)) errs.push(notSupported(`${p}.ipMode`, ing.ipMode, IP_MODES));
    }
    if (ing.hostname) {
      errs.push(...validateDNS1123Subdomain(ing.hostname, `${p}.hostname`));
      if (parseIP(ing.hostname)) {
        errs.push(invalid(`${p}.hostname`, ing.hostname, "must be a DNS name, not an IP address"));
      }
    }
  });
  return errs;
}

/** ValidateService, plus the load-balancer status (kemu validates whole objects on every write). */
export function validateService(svc: Service): FieldError[] {
  const errs = validateObjectMeta(svc.metadata, {
    namespaced: true,
    nameValidator: nameIsDNS1035Label,
    kubeFinalizers: true,
  });
  const annotations = svc.metadata?.annotations ?? {};
  const hints = annotations[TOPOLOGY_HINTS_ANNOTATION];
  const mode = annotations[TOPOLOGY_MODE_ANNOTATION];
  if (hints !== undefined && mode !== undefined && hints !== mode) {
    errs.push(
      invalid(
        `metadata.annotations[${TOPOLOGY_MODE_ANNOTATION}]`,
        mode,
        `must match annotations[${TOPOLOGY_HINTS_ANNOTATION}] when both are specified`,
      ),
    );
  }
  const spec = svc.spec ?? {};
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  const headless = isHeadless(svc);
  if (ports.length === 0 && !headless && spec.type !== "ExternalName") errs.push(required("spec.ports"));
  switch (spec.type) {
    case "LoadBalancer":
    case "NodePort":
      if (headless) {
        errs.push(
          invalid(
            "spec.clusterIPs[0]",
            spec.clusterIPs![0],
            `may not be set to 'None' for ${spec.type} services`,
          ),
        );
      }
      break;
    case "ExternalName": {
      if ((spec.clusterIPs?.length ?? 0) > 0) {
        errs.push(forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
      }
      if ((spec.ipFamilies?.length ?? 0) > 0) {
        errs.push(forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
      }
      if (spec.ipFamilyPolicy !== undefined && spec.ipFamilyPolicy !== null) {
        errs.push(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
      }
      const cname = (spec.externalName ?? "").replace(/\.$/, "");
      if (cname) errs.push(...validateDNS1123Subdomain(cname, "spec.externalName"));
      else errs.push(required("spec.externalName"));
      break;
    }
  }
  const names = new Set<string>();
  ports.forEach((p, i) => {
    errs.push(...validateServicePort(p ?? ({} as ServicePort), ports.length > 1, names, `spec.ports[${i}]`));
  });
  if (spec.selector !== undefined && spec.selector !== null) {
    errs.push(...validateLabels(spec.selector, "spec.selector"));
  }
  if (!spec.sessionAffinity) errs.push(required("spec.sessionAffinity"));
  else if (!SESSION_AFFINITIES.includes(spec.sessionAffinity)) {
    errs.push(notSupported("spec.sessionAffinity", spec.sessionAffinity, SESSION_AFFINITIES));
  }
  if (spec.sessionAffinity === "ClientIP") {
    const cfg = spec.sessionAffinityConfig;
    const p = "spec.sessionAffinityConfig";
    const why = "when session affinity type is ClientIP";
    if (!cfg) errs.push(required(p, why));
    else if (!cfg.clientIP) errs.push(required(`${p}.clientIP`, why));
    else {
      const t = cfg.clientIP.timeoutSeconds;
      if (t === undefined || t === null) errs.push(required(`${p}.clientIP.timeoutSeconds`, why));
      else if (!Number.isInteger(t) || t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS) {
        errs.push(
          invalid(
            `${p}.clientIP.timeoutSeconds`,
            t,
            `must be greater than 0 and less than ${MAX_CLIENT_IP_AFFINITY_SECONDS}`,
          ),
        );
      }
    }
  } else if (spec.sessionAffinity === "None" && spec.sessionAffinityConfig) {
    errs.push(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
  }
  errs.push(...validateClusterIPsRelatedFields(svc));
  (spec.externalIPs ?? []).forEach((ip, i) => {
    const p = `spec.externalIPs[${i}]`;
    const e = validateIP(ip, p);
    errs.push(...(e.length ? e : validateNonSpecialIP(ip, p)));
  });
  if (!spec.type) errs.push(required("spec.type"));
  else if (!SERVICE_TYPES.includes(spec.type)) errs.push(notSupported("spec.type", spec.type, SERVICE_TYPES));
  if (spec.type === "ClusterIP") {
    ports.forEach((p, i) => {
      if (p?.nodePort)
        errs.push(forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
  }
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    if (!p?.nodePort) return;
    const key = `${p.protocol}/${p.nodePort}`;
    if (nodePorts.has(key)) errs.push(duplicate(`spec.ports[${i}].nodePort`, p.nodePort));
    nodePorts.add(key);
  });
  const seenPorts = new Set<string>();
  ports.forEach((p, i) => {
    const key = `${p?.protocol}/${p?.port}`;
    if (seenPorts.has(key)) errs.push(duplicate(`spec.ports[${i}]`, portKeyValue(p?.protocol, p?.port)));
    seenPorts.add(key);
  });
  if ((spec.loadBalancerSourceRanges?.length ?? 0) > 0) {
    // Upstream's path really is capitalised this way.
    const p = "spec.LoadBalancerSourceRanges";
    if (spec.type !== "LoadBalancer")
      errs.push(forbidden(p, "may only be used when `type` is 'LoadBalancer'"));
    spec.loadBalancerSourceRanges!.forEach((r, i) => {
      errs.push(...validateCIDRLoose(String(r).trim(), `${p}[${i}]`));
    });
  } else if (annotations[SOURCE_RANGES_ANNOTATION] !== undefined) {
    const p = `metadata.annotations[${SOURCE_RANGES_ANNOTATION}]`;
    if (spec.type !== "LoadBalancer")
      errs.push(forbidden(p, "may only be used when `type` is 'LoadBalancer'"));
    const val = annotations[SOURCE_RANGES_ANNOTATION].trim();
    if (val) for (const r of val.split(",")) errs.push(...validateCIDRLoose(r.trim(), p));
  }
  const alloc = spec.allocateLoadBalancerNodePorts;
  if (alloc !== undefined && alloc !== null && spec.type !== "LoadBalancer") {
    errs.push(
      forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"),
    );
  }
  if (spec.type === "LoadBalancer" && (alloc === undefined || alloc === null)) {
    errs.push(required("allocateLoadBalancerNodePorts")); // sic: upstream's path has no "spec."
  }
  errs.push(...validateLoadBalancerClass(svc));
  // validateServiceExternalTrafficPolicy
  if (!externallyAccessible(svc)) {
    if (spec.externalTrafficPolicy) {
      errs.push(
        invalid(
          "spec.externalTrafficPolicy",
          spec.externalTrafficPolicy,
          "may only be set for externally-accessible services",
        ),
      );
    }
  } else if (!spec.externalTrafficPolicy) errs.push(required("spec.externalTrafficPolicy"));
  else if (!TRAFFIC_POLICIES.includes(spec.externalTrafficPolicy)) {
    errs.push(notSupported("spec.externalTrafficPolicy", spec.externalTrafficPolicy, TRAFFIC_POLICIES));
  }
  if (!needsHealthCheck(svc)) {
    if (spec.healthCheckNodePort) {
      errs.push(
        invalid(
          "spec.healthCheckNodePort",
          spec.healthCheckNodePort,
          "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ),
      );
    }
  } else if (spec.healthCheckNodePort) {
    // Zero is fine here: kemu validates before allocation, which assigns one (upstream allocates first).
    errs.push(...validatePortNumber(spec.healthCheckNodePort, "spec.healthCheckNodePort"));
  }
  // validateServiceInternalTrafficFieldsValue
  const itp = spec.internalTrafficPolicy;
  if (itp === undefined || itp === null) {
    if (spec.type === "NodePort" || spec.type === "LoadBalancer" || spec.type === "ClusterIP") {
      errs.push(required("spec.internalTrafficPolicy"));
    }
  } else if (!TRAFFIC_POLICIES.includes(itp)) {
    errs.push(notSupported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES));
  }
  if (spec.trafficDistribution !== undefined && spec.trafficDistribution !== null) {
    if (spec.trafficDistribution !== "PreferClose") {
      errs.push(notSupported("spec.trafficDistribution", spec.trafficDistribution, ["PreferClose"]));
    }
  }
  errs.push(...validateLoadBalancerStatus(svc));
  return errs;
}

/** ValidateServiceUpdate beyond ValidateService: primary cluster IP and family, class, health port. */
export function validateServiceUpdate(svc: Service, old: Service): FieldError[] {
  const errs: FieldError[] = [];
  const spec = svc.spec ?? {};
  const prev = old.spec ?? {};
  if (spec.type !== "ExternalName" && prev.type !== "ExternalName") {
    const ips = spec.clusterIPs ?? [];
    const oldIPs = prev.clusterIPs ?? [];
    if (!(isHeadless(old) && isHeadless(svc))) {
      if (oldIPs.length === ips.length) {
        oldIPs.forEach((ip, i) => {
          if (ip !== ips[i]) errs.push(invalid(`spec.clusterIPs[${i}]`, ips, "may not change once set"));
        });
      } else if (oldIPs.length > ips.length) {
        if (ips.length === 0)
          errs.push(invalid("spec.clusterIPs[0]", ips, "primary clusterIP can not be unset"));
        if (oldIPs.length > 0 && ips.length > 0 && ips[0] !== oldIPs[0]) {
          errs.push(invalid("spec.clusterIPs[0]", ips, "may not change once set"));
        }
        if (ips.length === 1 && spec.ipFamilyPolicy !== "SingleStack") {
          errs.push(
            invalid(
              "spec.ipFamilyPolicy",
              spec.ipFamilyPolicy ?? null,
              "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ),
          );
        }
      } else if (oldIPs.length > 0 && ips[0] !== oldIPs[0]) {
        errs.push(invalid("spec.clusterIPs[0]", ips, "may not change once set"));
      }
    }
    const fams = spec.ipFamilies ?? [];
    const oldFams = prev.ipFamilies ?? [];
    if (isHeadless(svc) === isHeadless(old) && !isHeadless(svc)) {
      if (oldFams.length === fams.length) {
        oldFams.forEach((f, i) => {
          if (f !== fams[i]) errs.push(invalid("spec.ipFamilies[0]", fams, "may not change once set"));
        });
      } else if (oldFams.length > fams.length) {
        if (ips.length === 0)
          errs.push(invalid("spec.ipFamilies[0]", fams, "primary ipFamily can not be unset"));
        if (fams.length > 0 && fams[0] !== oldFams[0]) {
          errs.push(invalid("spec.ipFamilies[0]", ips, "may not change once set"));
        }
        if (fams.length === 1 && spec.ipFamilyPolicy !== "SingleStack") {
          errs.push(
            invalid(
              "spec.ipFamilyPolicy",
              spec.ipFamilyPolicy ?? null,
              "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ),
          );
        }
      } else if (oldFams.length > 0 && fams.length > 0 && fams[0] !== oldFams[0]) {
        errs.push(invalid("spec.ipFamilies[0]", ips, "may not change once set"));
      }
    }
  }
  const lbClass = validateLoadBalancerClass(svc, old).filter((e) =>
    e.message.endsWith("may not change once set"),
  );
  errs.push(...lbClass);
  if (
    needsHealthCheck(old) &&
    needsHealthCheck(svc) &&
    spec.healthCheckNodePort !== prev.healthCheckNodePort
  ) {
    errs.push(forbidden("spec.healthCheckNodePort", "field is immutable"));
  }
  return errs;
}

// ---- printing ----

/** labels.FormatLabels: sorted k=v pairs, "<none>" when empty. */
export function formatLabelSet(set: Record<string, string> | null | undefined): string {
  const keys = Object.keys(set ?? {}).sort();
  if (keys.length === 0) return "<none>";
  return keys.map((k) => `${k}=${set![k]}`).join(",");
}

function portString(ports: ServicePort[] | undefined): string {
  return (ports ?? [])
    .map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`))
    .join(",");
}

/** getServiceExternalIP as the server prints it (always wide, so never clipped). */
export function serviceExternalIP(svc: Service): string {
  const spec = svc.spec ?? {};
  const external = spec.externalIPs ?? [];
  switch (spec.type) {
    case "ClusterIP":
    case "NodePort":
      return external.length ? external.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = [
        ...new Set(
          (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || "").filter((s) => s),
        ),
      ].sort();
      if (external.length) return [...lb, ...external].join(",");
      return lb.length ? lb.join(",") : "<pending>";
    }
    case "ExternalName":
      return spec.externalName ?? "";
  }
  return "<unknown>";
}

export function serviceTableCells(svc: Service, now: Date): unknown[] {
  return [
    svc.metadata.name,
    svc.spec?.type ?? "",
    svc.spec?.clusterIPs?.[0] ?? "<none>",
    serviceExternalIP(svc),
    portString(svc.spec?.ports) || "<none>",
    ageSince(svc.metadata.creationTimestamp, now),
    formatLabelSet(svc.spec?.selector),
  ];
}

export const serviceColumns: TableColumn[] = [
  nameColumn,
  {
    name: "Type",
    type: "string",
    format: "",
    description:
      'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types',
  },
  {
    name: "Cluster-IP",
    type: "string",
    format: "",
    description:
      'clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are "None", empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
  },
  {
    name: "External-IP",
    type: "string",
    format: "",
    description:
      "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
  },
  {
    name: "Port(s)",
    type: "string",
    format: "",
    description:
      "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
  },
  ageColumn,
  {
    name: "Selector",
    type: "string",
    format: "",
    priority: 1,
    description:
      "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
  },
];

// ---- the kind ----

export const serviceKind: KindSpec<Service> = {
  group: "",
  version: "v1",
  kind: "Service",
  resource: "services",
  singular: "service",
  namespaced: true,
  shortNames: ["svc"],
  categories: ["all"],
  subresources: ["status"],
  defaults: defaultService,
  prepareForUpdate: prepareServiceUpdate,
  validate: validateService,
  validateUpdate: validateServiceUpdate,
  selectableFields: {
    "spec.clusterIP": (s) => s.spec?.clusterIP ?? "",
    "spec.type": (s) => s.spec?.type ?? "",
  },
  table: { columns: serviceColumns, cells: serviceTableCells },
  mergeKeys: {
    ...metadataMergeKeys,
    "spec.ports": "port",
    "status.conditions": "type",
  },
  statusSubresource: true,
};
