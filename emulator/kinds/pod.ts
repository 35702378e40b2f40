// core/v1 Pod: upstream defaulting (SetDefaults_Pod/PodSpec/Container, the DefaultTolerationSeconds
// admission plugin, the pod strategy's PrepareForCreate), validation (ValidatePodCreate and
// ValidatePodUpdate in pkg/apis/core/validation), field selectors (pod strategy
// ToSelectableFields) and `kubectl get pods` columns (printPod in pkg/printers/internalversion).
//
// Also home of what every kind shares: metadata merge keys and the NAME/AGE column definitions.

import { ageSince, humanDuration, parseTimestamp } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import { validateLabelValue } from "../label-selector.ts";
import type { Container, FieldError, Pod, PodSpec, Toleration } from "../types.ts";
import {
  duplicate,
  forbidden,
  inclusiveRangeError,
  invalid,
  isDNS1123SubdomainWithUnderscore,
  isEnvVarName,
  isNegativeErrorMsg,
  nameIsDNSSubdomain,
  notFound,
  notSupported,
  required,
  semanticEqual,
  validateDNS1123Label,
  validateDNS1123Subdomain,
  validateIP,
  validateLabels,
  validateObjectMeta,
  validatePortName,
  validatePortNumber,
  validateQualifiedName,
} from "../validation.ts";

// ---- shared by every kind ----

export const NAME_DESCRIPTION =
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
export const AGE_DESCRIPTION =
  "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

export const nameColumn: TableColumn = {
  name: "Name",
  type: "string",
  format: "name",
  description: NAME_DESCRIPTION,
};
export const ageColumn: TableColumn = {
  name: "Age",
  type: "string",
  format: "",
  description: AGE_DESCRIPTION,
};

/** ObjectMeta's strategic-merge lists: finalizers merge as a set, ownerReferences by uid. */
export const metadataMergeKeys: Record<string, string> = {
  "metadata.finalizers": "",
  "metadata.ownerReferences": "uid",
};

/** PodSpec's `patchStrategy:"merge"` lists under `prefix` ("spec", "spec.template.spec"). */
export function podSpecMergeKeys(prefix: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const list of ["containers", "initContainers", "ephemeralContainers"]) {
    const p = `${prefix}.${list}`;
    keys[p] = "name";
    keys[`${p}.ports`] = "containerPort";
    keys[`${p}.env`] = "name";
    keys[`${p}.volumeMounts`] = "mountPath";
    keys[`${p}.volumeDevices`] = "devicePath";
  }
  keys[`${prefix}.volumes`] = "name";
  keys[`${prefix}.imagePullSecrets`] = "name";
  keys[`${prefix}.hostAliases`] = "ip";
  keys[`${prefix}.topologySpreadConstraints`] = "topologyKey";
  keys[`${prefix}.schedulingGates`] = "name";
  keys[`${prefix}.resourceClaims`] = "name";
  return keys;
}

// ---- defaulting ----

/** The DefaultTolerationSeconds admission plugin's default (--default-not-ready-toleration-seconds). */
export const DEFAULT_TOLERATION_SECONDS = 300;

/** Does the image reference resolve to the `latest` tag (explicitly, or by having no tag or digest)? */
export function imageUsesLatestTag(image: string | undefined): boolean {
  if (!image || /\s/.test(image)) return false; // unparseable: upstream falls back to IfNotPresent
  const at = image.indexOf("@");
  const named = at >= 0 ? image.slice(0, at) : image;
  const lastSegment = named.slice(named.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  if (colon >= 0) return lastSegment.slice(colon + 1) === "latest";
  return at < 0;
}

function defaultProbe(probe: any): void {
  if (!probe || typeof probe !== "object") return;
  probe.timeoutSeconds ??= 1;
  probe.periodSeconds ??= 10;
  probe.successThreshold ??= 1;
  probe.failureThreshold ??= 3;
  if (probe.httpGet) {
    probe.httpGet.path ||= "/";
    probe.httpGet.scheme ||= "HTTP";
  }
}

/** SetDefaults_Container and the defaults of what it holds (ports, env, probes). */
export function defaultContainer(c: Container, hostNetwork = false): void {
  if (!c.imagePullPolicy) c.imagePullPolicy = imageUsesLatestTag(c.image) ? "Always" : "IfNotPresent";
  if (!c.terminationMessagePath) c.terminationMessagePath = "/dev/termination-log";
  if (!c.terminationMessagePolicy) c.terminationMessagePolicy = "File";
  for (const p of c.ports ?? []) {
    if (!p.protocol) p.protocol = "TCP";
    if (hostNetwork && !p.hostPort) p.hostPort = p.containerPort;
  }
  for (const e of c.env ?? []) {
    const fieldRef = (e.valueFrom as any)?.fieldRef;
    if (fieldRef && !fieldRef.apiVersion) fieldRef.apiVersion = "v1";
  }
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  // requests default to limits (SetDefaults_Pod does this for pods only, not templates).
}

const VOLUME_SOURCE_MODE: Record<string, true> = {
  secret: true,
  configMap: true,
  downwardAPI: true,
  projected: true,
};

/** SetDefaults_PodSpec and everything nested in it; shared with pod templates. */
export function defaultPodSpec(spec: PodSpec): void {
  if (!spec.dnsPolicy) spec.dnsPolicy = "ClusterFirst";
  if (!spec.restartPolicy) spec.restartPolicy = "Always";
  if (!spec.securityContext) spec.securityContext = {};
  if (spec.terminationGracePeriodSeconds === undefined || spec.terminationGracePeriodSeconds === null) {
    spec.terminationGracePeriodSeconds = 30;
  }
  if (!spec.schedulerName) spec.schedulerName = "default-scheduler";
  for (const v of (spec.volumes as any[] | undefined) ?? []) {
    if (v && Object.keys(v).every((k) => k === "name")) v.emptyDir = {};
    for (const kind of Object.keys(VOLUME_SOURCE_MODE)) {
      if (v?.[kind] && v[kind].defaultMode === undefined) v[kind].defaultMode = 420;
    }
  }
  for (const c of spec.containers ?? []) defaultContainer(c, !!spec.hostNetwork);
  for (const c of spec.initContainers ?? []) defaultContainer(c, !!spec.hostNetwork);
  for (const c of (spec.ephemeralContainers as Container[] | undefined) ?? []) defaultContainer(c);
}

/** Adds the not-ready/unreachable NoExecute tolerations unless the pod already tolerates them. */
export function addDefaultTolerations(spec: PodSpec, seconds = DEFAULT_TOLERATION_SECONDS): void {
  const tolerations = spec.tolerations ?? [];
  const tolerates = (key: string) =>
    tolerations.some((t) => (t.key === key || !t.key) && (t.effect === "NoExecute" || !t.effect));
  const added: Toleration[] = [];
  for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]) {
    if (!tolerates(key))
      added.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: seconds });
  }
  if (added.length) spec.tolerations = [...tolerations, ...added];
}

/** A resource quantity ("100m", "1.5Gi", 2) as a number; NaN when unparseable. */
export function parseQuantity(q: unknown): number {
  if (typeof q === "number") return q;
  if (typeof q !== "string") return Number.NaN;
  const m =
    /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/.exec(
      q.trim(),
    );
  if (!m) return Number.NaN;
  const base = Number(m[1]);
  const suffix = m[2] ?? "";
  const binary: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
  const decimal: Record<string, number> = {
    n: -9,
    u: -6,
    m: -3,
    "": 0,
    k: 3,
    M: 6,
    G: 9,
    T: 12,
    P: 15,
    E: 18,
  };
  if (suffix in binary) return base * 1024 ** binary[suffix];
  if (suffix in decimal) return base * 10 ** decimal[suffix];
  return base * 10 ** Number(suffix.slice(1));
}

/** qos.GetPodQOS over cpu and memory of regular and init containers. */
export function podQOSClass(pod: Pod): "Guaranteed" | "Burstable" | "BestEffort" {
  const requests = new Map<string, number>();
  const limits = new Map<string, number>();
  let guaranteed = true;
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    const res = (c.resources ?? {}) as {
      requests?: Record<string, unknown>;
      limits?: Record<string, unknown>;
    };
    for (const [name, q] of Object.entries(res.requests ?? {})) {
      if (name !== "cpu" && name !== "memory") continue;
      const v = parseQuantity(q);
      if (v > 0) requests.set(name, (requests.get(name) ?? 0) + v);
    }
    const found = new Set<string>();
    for (const [name, q] of Object.entries(res.limits ?? {})) {
      if (name !== "cpu" && name !== "memory") continue;
      const v = parseQuantity(q);
      if (v > 0) {
        found.add(name);
        limits.set(name, (limits.get(name) ?? 0) + v);
      }
    }
    if (!found.has("cpu") || !found.has("memory")) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return "BestEffort";
  if (guaranteed) {
    for (const [name, req] of requests) {
      if (limits.get(name) !== req) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? "Guaranteed" : "Burstable";
}

/**
 * Create-time defaulting of a pod: v1 defaults, then admission (default tolerations, priority),
 * then the strategy's PrepareForCreate (status reset to Pending with its QoS class).
 */
export function defaultPod(pod: Pod, tolerationSeconds = DEFAULT_TOLERATION_SECONDS): void {
  pod.spec ??= { containers: [] };
  const spec = pod.spec;
  // SetDefaults_Pod: requests default to limits.
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    const res = c.resources as
      | { requests?: Record<string, unknown>; limits?: Record<string, unknown> }
      | undefined;
    if (res?.limits) {
      res.requests ??= {};
      for (const [k, v] of Object.entries(res.limits)) if (!(k in res.requests)) res.requests[k] = v;
    }
  }
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null)
    spec.enableServiceLinks = true;
  defaultPodSpec(spec);
  if (typeof spec.terminationGracePeriodSeconds === "number" && spec.terminationGracePeriodSeconds < 0) {
    spec.terminationGracePeriodSeconds = 1; // negative grace periods are treated as 1s
  }
  addDefaultTolerations(spec, tolerationSeconds);
  // Priority admission without a PriorityClass.
  if (spec.priority === undefined && !spec.priorityClassName) spec.priority = 0;
  if (!spec.preemptionPolicy) spec.preemptionPolicy = "PreemptLowerPriority";

  pod.status = { phase: "Pending", qosClass: podQOSClass(pod) };
  if (((spec.schedulingGates as unknown[] | undefined) ?? []).length > 0) {
    pod.status.conditions = [
      {
        type: "PodScheduled",
        status: "False",
        lastProbeTime: null,
        reason: "SchedulingGated",
        message: "Scheduling is blocked due to non-empty scheduling gates",
      },
    ];
  }
}

// ---- validation ----

const PULL_POLICIES = ["Always", "IfNotPresent", "Never"];
const PROTOCOLS = ["SCTP", "TCP", "UDP"];
const RESTART_POLICIES = ["Always", "OnFailure", "Never"];
const DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"];
const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const MAX_INT32 = 2147483647;

function validateContainerPorts(ports: Container["ports"], path: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  (ports ?? []).forEach((port, i) => {
    const p = `${path}[${i}]`;
    if (port.name) {
      const nameErrs = validatePortName(port.name, `${p}.name`);
      if (nameErrs.length) errs.push(...nameErrs);
      else if (names.has(port.name)) errs.push(duplicate(`${p}.name`, port.name));
      else names.add(port.name);
    }
    if (!port.containerPort) errs.push(required(`${p}.containerPort`));
    else errs.push(...validatePortNumber(port.containerPort, `${p}.containerPort`));
    if (port.hostPort) errs.push(...validatePortNumber(port.hostPort, `${p}.hostPort`));
    if (!port.protocol) errs.push(required(`${p}.protocol`));
    else if (!PROTOCOLS.includes(port.protocol))
      errs.push(notSupported(`${p}.protocol`, port.protocol, PROTOCOLS));
  });
  return errs;
}

function validateEnv(env: Container["env"], path: string): FieldError[] {
  const errs: FieldError[] = [];
  (env ?? []).forEach((ev, i) => {
    const p = `${path}[${i}].name`;
    if (!ev.name) errs.push(required(p));
    else for (const m of isEnvVarName(ev.name)) errs.push(invalid(p, ev.name, m));
  });
  return errs;
}

function validateVolumeMounts(c: Container, volumes: Set<string>, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  ((c.volumeMounts as { name?: string; mountPath?: string }[] | undefined) ?? []).forEach((m, i) => {
    const p = `${path}[${i}]`;
    if (!m.name) errs.push(required(`${p}.name`));
    else if (!volumes.has(m.name)) errs.push(notFound(`${p}.name`, m.name));
    if (!m.mountPath) errs.push(required(`${p}.mountPath`));
    else if (seen.has(m.mountPath)) errs.push(invalid(`${p}.mountPath`, m.mountPath, "must be unique"));
    else seen.add(m.mountPath);
  });
  return errs;
}

/** validateContainerCommon: what regular, init and ephemeral containers share. */
const PROBE_HANDLERS = ["exec", "httpGet", "tcpSocket", "grpc"] as const;

/** A probe port: a number 1-65535 or an IANA service name declared by some container port. */
function validateProbePort(port: unknown, field: string): FieldError[] {
  if (typeof port === "number") return validatePortNumber(port, field);
  if (typeof port === "string")
    return /^\d+$/.test(port) ? validatePortNumber(Number(port), field) : validatePortName(port, field);
  return [required(field)];
}

/** upstream validateProbe / validateHandler, plus the kind-specific threshold and grace rules. */
export function validateProbe(
  probe: any,
  kind: "liveness" | "readiness" | "startup",
  path: string,
): FieldError[] {
  if (probe === undefined || probe === null) return [];
  const errs: FieldError[] = [];
  const handlers = PROBE_HANDLERS.filter((h) => probe[h] !== undefined && probe[h] !== null);
  if (handlers.length === 0) errs.push(required(path, "must specify a handler type"));
  for (const h of handlers.slice(1))
    errs.push(forbidden(`${path}.${h}`, "may not specify more than 1 handler type"));
  for (const f of [
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
  ]) {
    const v = probe[f];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0)) {
      errs.push(invalid(`${path}.${f}`, v, isNegativeErrorMsg));
    }
  }
  if (kind !== "readiness" && probe.successThreshold !== undefined && probe.successThreshold !== 1) {
    errs.push(invalid(`${path}.successThreshold`, probe.successThreshold, "must be 1"));
  }
  if (probe.terminationGracePeriodSeconds !== undefined && probe.terminationGracePeriodSeconds !== null) {
    if (kind === "readiness")
      errs.push(
        invalid(
          `${path}.terminationGracePeriodSeconds`,
          probe.terminationGracePeriodSeconds,
          "must not be set for readinessProbes",
        ),
      );
    else if (
      typeof probe.terminationGracePeriodSeconds !== "number" ||
      probe.terminationGracePeriodSeconds <= 0
    ) {
      errs.push(
        invalid(
          `${path}.terminationGracePeriodSeconds`,
          probe.terminationGracePeriodSeconds,
          "must be greater than 0",
        ),
      );
    }
  }
  if (probe.httpGet) {
    errs.push(...validateProbePort(probe.httpGet.port, `${path}.httpGet.port`));
    if (probe.httpGet.scheme && !["HTTP", "HTTPS"].includes(probe.httpGet.scheme)) {
      errs.push(notSupported(`${path}.httpGet.scheme`, probe.httpGet.scheme, ["HTTP", "HTTPS"]));
    }
  }
  if (probe.tcpSocket) errs.push(...validateProbePort(probe.tcpSocket.port, `${path}.tcpSocket.port`));
  if (probe.exec && !(Array.isArray(probe.exec.command) && probe.exec.command.length)) {
    errs.push(required(`${path}.exec.command`));
  }
  if (probe.grpc && typeof probe.grpc.port === "number")
    errs.push(...validatePortNumber(probe.grpc.port, `${path}.grpc.port`));
  return errs;
}

function validateContainerCommon(c: Container, volumes: Set<string>, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!c.name) errs.push(required(`${path}.name`));
  else errs.push(...validateDNS1123Label(c.name, `${path}.name`));
  if (!c.image) errs.push(required(`${path}.image`));
  const tmp = c.terminationMessagePolicy as string | undefined;
  if (!tmp) errs.push(required(`${path}.terminationMessagePolicy`));
  else if (!TERMINATION_MESSAGE_POLICIES.includes(tmp)) {
    errs.push(notSupported(`${path}.terminationMessagePolicy`, tmp, TERMINATION_MESSAGE_POLICIES));
  }
  errs.push(...validateContainerPorts(c.ports, `${path}.ports`));
  errs.push(...validateEnv(c.env, `${path}.env`));
  errs.push(...validateVolumeMounts(c, volumes, `${path}.volumeMounts`));
  const pull = c.imagePullPolicy as string | undefined;
  if (!pull) errs.push(required(`${path}.imagePullPolicy`));
  else if (!PULL_POLICIES.includes(pull))
    errs.push(notSupported(`${path}.imagePullPolicy`, pull, PULL_POLICIES));
  return errs;
}

/** AccumulateUniqueHostPorts: one hostIP/protocol/hostPort per pod. */
function checkHostPortConflicts(
  containers: Container[],
  path: string,
  seen = new Set<string>(),
): FieldError[] {
  const errs: FieldError[] = [];
  containers.forEach((c, ci) => {
    (c.ports ?? []).forEach((p, pi) => {
      if (!p.hostPort) return;
      const key = `${p.hostIP ?? ""}/${p.protocol ?? ""}/${p.hostPort}`;
      if (seen.has(key)) errs.push(duplicate(`${path}[${ci}].ports[${pi}].hostPort`, key));
      else seen.add(key);
    });
  });
  return errs;
}

function validateTaintEffect(effect: string | undefined, allowEmpty: boolean, path: string): FieldError[] {
  if (!effect) return allowEmpty ? [] : [required(path)];
  return TAINT_EFFECTS.includes(effect) ? [] : [notSupported(path, effect, TAINT_EFFECTS)];
}

/** ValidateTolerations. */
export function validateTolerations(tolerations: Toleration[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  (tolerations ?? []).forEach((t, i) => {
    const p = `${path}[${i}]`;
    const operator = (t.operator ?? "") as string;
    if (t.key) errs.push(...validateQualifiedName(t.key, `${p}.key`));
    if (!t.key && operator !== "Exists") {
      errs.push(
        invalid(
          `${p}.operator`,
          operator,
          'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        ),
      );
    }
    if (t.tolerationSeconds !== undefined && t.tolerationSeconds !== null && t.effect !== "NoExecute") {
      errs.push(
        invalid(`${p}.effect`, t.effect ?? "", "effect must be 'NoExecute' when `tolerationSeconds` is set"),
      );
    }
    if (operator === "Equal" || operator === "") {
      const msgs = validateLabelValue(t.value ?? "");
      if (msgs.length) errs.push(invalid(`${p}.operator`, t.value ?? "", msgs.join(";")));
    } else if (operator === "Exists") {
      if (t.value)
        errs.push(invalid(`${p}.operator`, t.value, "value must be empty when `operator` is 'Exists'"));
    } else {
      errs.push(notSupported(`${p}.operator`, operator, ["Equal", "Exists"]));
    }
    errs.push(...validateTaintEffect(t.effect, true, `${p}.effect`));
  });
  return errs;
}

function validatePodDNSConfig(spec: PodSpec, path: string): FieldError[] {
  const dnsConfig = spec.dnsConfig as {
    nameservers?: string[];
    searches?: string[];
    options?: { name?: string }[];
  };
  if (spec.dnsPolicy === "None") {
    if (!dnsConfig) return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")];
    if (!dnsConfig.nameservers?.length) {
      return [
        required(`${path}.nameservers`, "must provide at least one DNS nameserver when `dnsPolicy` is None"),
      ];
    }
  }
  if (!dnsConfig) return [];
  const errs: FieldError[] = [];
  const nameservers = dnsConfig.nameservers ?? [];
  if (nameservers.length > 3) {
    errs.push(invalid(`${path}.nameservers`, nameservers, "must not have more than 3 nameservers"));
  }
  nameservers.forEach((ns, i) => {
    errs.push(...validateIP(ns, `${path}.nameservers[${i}]`));
  });
  const searches = dnsConfig.searches ?? [];
  if (searches.length > 32) {
    errs.push(invalid(`${path}.searches`, searches, "must not have more than 32 search paths"));
  }
  if (searches.join(" ").length > 2048) {
    errs.push(
      invalid(
        `${path}.searches`,
        searches,
        "must not have more than 2048 characters (including spaces) in the search list",
      ),
    );
  }
  searches.forEach((search, i) => {
    if (search === ".") return; // RelaxedDNSSearchValidation: "." and underscores are accepted
    const trimmed = search.endsWith(".") ? search.slice(0, -1) : search;
    for (const m of isDNS1123SubdomainWithUnderscore(trimmed))
      errs.push(invalid(`${path}.searches[${i}]`, trimmed, m));
  });
  (dnsConfig.options ?? []).forEach((o, i) => {
    if (!o?.name) errs.push(required(`${path}.options[${i}]`, "must not be empty"));
  });
  return errs;
}

export interface PodSpecValidationOptions {
  /** The spec belongs to a Pod (not a template): hostPort must equal containerPort under hostNetwork. */
  resourceIsPod?: boolean;
}

/** ValidatePodSpec: the checks shared by pods and pod templates. */
export function validatePodSpec(
  spec: PodSpec | undefined,
  path = "spec",
  opts: PodSpecValidationOptions = {},
): FieldError[] {
  const s: PodSpec = spec ?? ({ containers: [] } as PodSpec);
  const errs: FieldError[] = [];

  if (s.terminationGracePeriodSeconds === undefined || s.terminationGracePeriodSeconds === null) {
    errs.push(required(`${path}.terminationGracePeriodSeconds`));
  } else if (s.terminationGracePeriodSeconds < 0) {
    errs.push(
      invalid(`${path}.terminationGracePeriodSeconds`, s.terminationGracePeriodSeconds, isNegativeErrorMsg),
    );
  }

  // Volumes: names are DNS labels, unique.
  const volumes = new Set<string>();
  ((s.volumes as { name?: string }[] | undefined) ?? []).forEach((v, i) => {
    const p = `${path}.volumes[${i}].name`;
    const el: FieldError[] = [];
    if (!v?.name) el.push(required(p));
    else el.push(...validateDNS1123Label(v.name, p));
    if (v?.name && volumes.has(v.name)) el.push(duplicate(p, v.name));
    if (el.length === 0) volumes.add(v.name!);
    errs.push(...el);
  });

  // Regular containers.
  const containers = s.containers ?? [];
  if (containers.length === 0) {
    errs.push(required(`${path}.containers`));
  } else {
    const names = new Set<string>();
    containers.forEach((c, i) => {
      const p = `${path}.containers[${i}]`;
      errs.push(...validateContainerCommon(c, volumes, p));
      errs.push(
        ...validateProbe(c.livenessProbe, "liveness", `${p}.livenessProbe`),
        ...validateProbe(c.readinessProbe, "readiness", `${p}.readinessProbe`),
        ...validateProbe(c.startupProbe, "startup", `${p}.startupProbe`),
      );
      if (names.has(c.name)) errs.push(duplicate(`${p}.name`, c.name));
      else names.add(c.name);
      if (c.restartPolicy !== undefined && c.restartPolicy !== null) {
        errs.push(forbidden(`${p}.restartPolicy`, "may not be set for non-init containers"));
      }
    });
    errs.push(...checkHostPortConflicts(containers, `${path}.containers`));
  }

  // Init containers: names unique across both lists.
  const allNames = new Set(containers.map((c) => c.name));
  (s.initContainers ?? []).forEach((c, i) => {
    const p = `${path}.initContainers[${i}]`;
    errs.push(...validateContainerCommon(c, volumes, p));
    const restartPolicy = c.restartPolicy as string | undefined | null;
    if (restartPolicy !== undefined && restartPolicy !== null && restartPolicy !== "Always") {
      errs.push(notSupported(`${p}.restartPolicy`, restartPolicy, ["Always"]));
    }
    if (allNames.has(c.name)) errs.push(duplicate(`${p}.name`, c.name));
    else if (c.name) allNames.add(c.name);
    errs.push(...checkHostPortConflicts([c], `${path}.initContainers`));
    if (restartPolicy !== "Always") {
      for (const f of ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"]) {
        if (c[f] !== undefined && c[f] !== null) {
          errs.push(
            forbidden(`${p}.${f}`, "may not be set for init containers without restartPolicy=Always"),
          );
        }
      }
    }
  });
  ((s.ephemeralContainers as Container[] | undefined) ?? []).forEach((c, i) => {
    const p = `${path}.ephemeralContainers[${i}]`;
    errs.push(...validateContainerCommon(c, volumes, p));
    if (allNames.has(c.name)) errs.push(duplicate(`${p}.name`, c.name));
    else allNames.add(c.name);
  });

  // hostNetwork: a pod's hostPorts must equal its containerPorts.
  if (s.hostNetwork) {
    containers.forEach((c, ci) => {
      (c.ports ?? []).forEach((port, pi) => {
        const hp = port.hostPort ?? 0;
        if ((opts.resourceIsPod || hp !== 0) && hp !== port.containerPort) {
          errs.push(
            invalid(
              `${path}.containers[${ci}].ports[${pi}].hostPort`,
              hp,
              "must match `containerPort` when `hostNetwork` is true",
            ),
          );
        }
      });
    });
  }

  const restartPolicy = (s.restartPolicy ?? "") as string;
  if (!restartPolicy) errs.push(required(`${path}.restartPolicy`));
  else if (!RESTART_POLICIES.includes(restartPolicy)) {
    errs.push(notSupported(`${path}.restartPolicy`, restartPolicy, RESTART_POLICIES));
  }
  const dnsPolicy = (s.dnsPolicy ?? "") as string;
  if (!dnsPolicy) errs.push(required(`${path}.dnsPolicy`));
  else if (!DNS_POLICIES.includes(dnsPolicy))
    errs.push(notSupported(`${path}.dnsPolicy`, dnsPolicy, DNS_POLICIES));
  errs.push(...validateLabels(s.nodeSelector, `${path}.nodeSelector`));
  errs.push(...validatePodDNSConfig(s, `${path}.dnsConfig`));
  ((s.readinessGates as { conditionType?: string }[] | undefined) ?? []).forEach((g, i) => {
    errs.push(...validateQualifiedName(g?.conditionType ?? "", `${path}.readinessGates[${i}].conditionType`));
  });
  const gates = new Set<string>();
  ((s.schedulingGates as { name?: string }[] | undefined) ?? []).forEach((g, i) => {
    const name = g?.name ?? "";
    errs.push(...validateQualifiedName(name, `${path}.schedulingGates[${i}]`));
    if (gates.has(name)) errs.push(duplicate(`${path}.schedulingGates[${i}]`, name));
    gates.add(name);
  });
  if (s.serviceAccountName) {
    for (const m of nameIsDNSSubdomain(s.serviceAccountName as string, false)) {
      errs.push(invalid(`${path}.serviceAccountName`, s.serviceAccountName, m));
    }
  }
  if (s.nodeName) {
    for (const m of nameIsDNSSubdomain(s.nodeName, false))
      errs.push(invalid(`${path}.nodeName`, s.nodeName, m));
  }
  const ads = s.activeDeadlineSeconds as number | undefined | null;
  if (ads !== undefined && ads !== null && (ads < 1 || ads > MAX_INT32)) {
    errs.push(invalid(`${path}.activeDeadlineSeconds`, ads, inclusiveRangeError(1, MAX_INT32)));
  }
  if (s.hostname) errs.push(...validateDNS1123Label(s.hostname, `${path}.hostname`));
  if (s.subdomain) errs.push(...validateDNS1123Label(s.subdomain, `${path}.subdomain`));
  if (s.tolerations?.length) errs.push(...validateTolerations(s.tolerations, `${path}.tolerations`));
  ((s.hostAliases as { ip?: string; hostnames?: string[] }[] | undefined) ?? []).forEach((a, i) => {
    errs.push(...validateIP(a?.ip ?? "", `${path}.hostAliases[${i}].ip`));
    (a?.hostnames ?? []).forEach((h, j) => {
      errs.push(...validateDNS1123Subdomain(h, `${path}.hostAliases[${i}].hostnames[${j}]`));
    });
  });
  if (s.priorityClassName) {
    for (const m of nameIsDNSSubdomain(s.priorityClassName as string, false)) {
      errs.push(invalid(`${path}.priorityClassName`, s.priorityClassName, m));
    }
  }
  return errs;
}

/** ValidatePodCreate: metadata, spec, then the pod-only image whitespace check. */
export function validatePod(pod: Pod): FieldError[] {
  const errs = validateObjectMeta(pod.metadata, {
    namespaced: true,
    nameValidator: nameIsDNSSubdomain,
    kubeFinalizers: true,
  });
  errs.push(...validatePodSpec(pod.spec, "spec", { resourceIsPod: true }));
  for (const list of ["containers", "initContainers"] as const) {
    (pod.spec?.[list] ?? []).forEach((c, i) => {
      if (typeof c.image === "string" && c.image.trim() !== c.image) {
        errs.push(
          invalid(`spec.${list}[${i}].image`, c.image, "must not have leading or trailing whitespace"),
        );
      }
    });
  }
  return errs;
}

/** The spec fields a pod update may change, as ValidatePodUpdate lists them. */
export const POD_UPDATABLE_FIELDS_MESSAGE =
  "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

function validateContainerUpdates(
  next: Container[],
  old: Container[],
  path: string,
): [FieldError[], boolean] {
  if (next.length !== old.length)
    return [[forbidden(path, "pod updates may not add or remove containers")], true];
  const errs: FieldError[] = [];
  next.forEach((c, i) => {
    if (!c.image) errs.push(required(`${path}[${i}].image`));
    if (typeof c.image === "string" && c.image.trim() !== c.image) {
      errs.push(invalid(`${path}[${i}].image`, c.image, "must not have leading or trailing whitespace"));
    }
  });
  return [errs, false];
}

function validateOnlyAddedTolerations(next: Toleration[], old: Toleration[], path: string): FieldError[] {
  for (const o of old) {
    const found = next.some((n) => semanticEqual({ ...o, tolerationSeconds: n.tolerationSeconds }, n));
    if (!found)
      return [forbidden(path, "existing toleration can not be modified except its tolerationSeconds")];
  }
  return validateTolerations(next, path);
}

function goFieldName(key: string): string {
  const special: Record<string, string> = {
    dnsPolicy: "DNSPolicy",
    dnsConfig: "DNSConfig",
    hostIPC: "HostIPC",
    hostPID: "HostPID",
    os: "OS",
  };
  return special[key] ?? key.charAt(0).toUpperCase() + key.slice(1);
}

/** A compact stand-in for the cmp.Diff upstream appends: one -/+ pair per changed spec field. */
function specDiff(old: Record<string, unknown>, next: Record<string, unknown>): string {
  const lines = ["  core.PodSpec{"];
  let identical = 0;
  const keys = [...new Set([...Object.keys(old), ...Object.keys(next)])];
  for (const k of keys) {
    if (semanticEqual(old[k], next[k])) {
      identical++;
      continue;
    }
    const show = (v: unknown) => (v === undefined ? "nil" : JSON.stringify(v));
    lines.push(`- \t${goFieldName(k)}: ${show(old[k])},`);
    lines.push(`+ \t${goFieldName(k)}: ${show(next[k])},`);
  }
  if (identical) lines.push(`  \t... // ${identical} identical fields`);
  lines.push("  }");
  return lines.join("\n");
}

/**
 * ValidatePodUpdate beyond metadata: only images, activeDeadlineSeconds (downwards), added
 * tolerations and a negative grace period turned into 1 may change. spec.nodeName may go from
 * unset to a node once (that is how kemu's binding subresource assigns pods); never after.
 */
export function validatePodUpdate(pod: Pod, old: Pod): FieldError[] {
  const next = (pod.spec ?? {}) as PodSpec;
  const prev = (old.spec ?? {}) as PodSpec;
  const errs: FieldError[] = [];
  for (const list of ["containers", "initContainers"] as const) {
    const [e, stop] = validateContainerUpdates(next[list] ?? [], prev[list] ?? [], `spec.${list}`);
    errs.push(...e);
    if (stop) return errs;
  }
  const newADS = next.activeDeadlineSeconds as number | undefined | null;
  const oldADS = prev.activeDeadlineSeconds as number | undefined | null;
  if (newADS !== undefined && newADS !== null) {
    if (newADS < 0 || newADS > MAX_INT32) {
      errs.push(invalid("spec.activeDeadlineSeconds", newADS, inclusiveRangeError(0, MAX_INT32)));
      return errs;
    }
    if (oldADS !== undefined && oldADS !== null && oldADS < newADS) {
      errs.push(
        invalid("spec.activeDeadlineSeconds", newADS, "must be less than or equal to previous value"),
      );
      return errs;
    }
  } else if (oldADS !== undefined && oldADS !== null) {
    errs.push(
      invalid("spec.activeDeadlineSeconds", null, "must not update from a positive integer to nil value"),
    );
  }
  errs.push(
    ...validateOnlyAddedTolerations(next.tolerations ?? [], prev.tolerations ?? [], "spec.tolerations"),
  );
  const newGates = (next.schedulingGates as { name: string }[] | undefined) ?? [];
  const oldGates = new Set(
    ((prev.schedulingGates as { name: string }[] | undefined) ?? []).map((g) => g.name),
  );
  newGates.forEach((g, i) => {
    if (!oldGates.has(g.name)) {
      errs.push(
        forbidden(
          `spec.schedulingGates[${i}].name`,
          `only deletion is allowed, but found new scheduling gate '${g.name}'`,
        ),
      );
    }
  });
  if (semanticEqual(next, prev)) return errs;

  const munged: Record<string, unknown> = structuredClone(next) as Record<string, unknown>;
  const swapImages = (list: "containers" | "initContainers") => {
    const cs = munged[list] as Container[] | undefined;
    cs?.forEach((c, i) => {
      c.image = prev[list]?.[i]?.image;
    });
  };
  swapImages("containers");
  swapImages("initContainers");
  munged.activeDeadlineSeconds = prev.activeDeadlineSeconds;
  munged.schedulingGates = prev.schedulingGates;
  munged.tolerations = prev.tolerations;
  const oldGrace = prev.terminationGracePeriodSeconds;
  if (typeof oldGrace === "number" && oldGrace < 0 && munged.terminationGracePeriodSeconds === 1) {
    munged.terminationGracePeriodSeconds = oldGrace;
  }
  if (!prev.nodeName) munged.nodeName = prev.nodeName;
  if (!semanticEqual(munged, prev)) {
    const diff = specDiff(prev as Record<string, unknown>, munged);
    errs.push(forbidden("spec", `${POD_UPDATABLE_FIELDS_MESSAGE}\n${diff}`));
  }
  return errs;
}

// ---- printing ----

interface ContainerState {
  waiting?: { reason?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode?: number; signal?: number; reason?: string; finishedAt?: string };
}

interface ContainerStatus {
  name: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerState;
  lastState?: ContainerState;
}

function conditionTrue(pod: Pod, type: string): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === type && c.status === "True");
}

/** The READY, STATUS and RESTARTS cells, computed exactly as printPod does. */
export function podPrintInfo(pod: Pod, now: Date): { ready: string; status: string; restarts: string } {
  const status = pod.status ?? {};
  let restarts = 0;
  let restartableInitRestarts = 0;
  let totalContainers = pod.spec?.containers?.length ?? 0;
  let readyContainers = 0;
  let lastRestart = 0;
  let lastRestartableInitRestart = 0;

  const phase = status.phase ?? "";
  let reason: string = status.reason || phase;
  for (const c of status.conditions ?? []) {
    if (c.type === "PodScheduled" && c.reason === "SchedulingGated") reason = "SchedulingGated";
  }

  const initSpecs = new Map<string, Container>();
  for (const c of pod.spec?.initContainers ?? []) {
    initSpecs.set(c.name, c);
    if (c.restartPolicy === "Always") totalContainers++;
  }
  const restartable = (name: string) => initSpecs.get(name)?.restartPolicy === "Always";
  const finishedAt = (cs: ContainerStatus) => parseTimestamp(cs.lastState?.terminated?.finishedAt) ?? 0;

  let initializing = false;
  const initStatuses = (status.initContainerStatuses as ContainerStatus[] | undefined) ?? [];
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i];
    restarts += cs.restartCount ?? 0;
    if (cs.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(cs));
    if (restartable(cs.name)) {
      restartableInitRestarts += cs.restartCount ?? 0;
      if (cs.lastState?.terminated)
        lastRestartableInitRestart = Math.max(lastRestartableInitRestart, finishedAt(cs));
    }
    const terminated = cs.state?.terminated;
    const waiting = cs.state?.waiting;
    if (terminated && (terminated.exitCode ?? 0) === 0) continue;
    if (restartable(cs.name) && cs.started) {
      if (cs.ready) readyContainers++;
      continue;
    }
    if (terminated) {
      if (!terminated.reason) {
        reason = terminated.signal
          ? `Init:Signal:${terminated.signal}`
          : `Init:ExitCode:${terminated.exitCode ?? 0}`;
      } else {
        reason = `Init:${terminated.reason}`;
      }
    } else if (waiting?.reason && waiting.reason !== "PodInitializing") {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${pod.spec?.initContainers?.length ?? 0}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(pod, "Initialized")) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = (status.containerStatuses as ContainerStatus[] | undefined) ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i];
      restarts += cs.restartCount ?? 0;
      if (cs.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(cs));
      const waiting = cs.state?.waiting;
      const terminated = cs.state?.terminated;
      if (waiting?.reason) reason = waiting.reason;
      else if (terminated?.reason) reason = terminated.reason;
      else if (terminated) {
        reason = terminated.signal ? `Signal:${terminated.signal}` : `ExitCode:${terminated.exitCode ?? 0}`;
      } else if (cs.ready && cs.state?.running) {
        hasRunning = true;
        readyContainers++;
      }
    }
    if (reason === "Completed" && hasRunning) reason = conditionTrue(pod, "Ready") ? "Running" : "NotReady";
  }

  const terminal = phase === "Succeeded" || phase === "Failed";
  if (pod.metadata.deletionTimestamp && status.reason === "NodeLost") reason = "Unknown";
  else if (pod.metadata.deletionTimestamp && !terminal) reason = "Terminating";

  let restartsText = String(restarts);
  if (restarts !== 0 && lastRestart > 0)
    restartsText = `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`;
  return { ready: `${readyContainers}/${totalContainers}`, status: reason, restarts: restartsText };
}

function podIPOf(pod: Pod): string {
  return pod.status?.podIPs?.[0]?.ip ?? pod.status?.podIP ?? "";
}

export function podTableCells(pod: Pod, now: Date): unknown[] {
  const info = podPrintInfo(pod, now);
  const gates = (pod.spec?.readinessGates as { conditionType: string }[] | undefined) ?? [];
  let readinessGates = "<none>";
  if (gates.length) {
    const conditions = pod.status?.conditions ?? [];
    const trueCount = gates.filter(
      (g) => conditions.find((c) => c.type === g.conditionType)?.status === "True",
    ).length;
    readinessGates = `${trueCount}/${gates.length}`;
  }
  return [
    pod.metadata.name,
    info.ready,
    info.status,
    info.restarts,
    ageSince(pod.metadata.creationTimestamp, now),
    podIPOf(pod) || "<none>",
    pod.spec?.nodeName || "<none>",
    (pod.status?.nominatedNodeName as string | undefined) || "<none>",
    readinessGates,
  ];
}

export const podColumns: TableColumn[] = [
  nameColumn,
  {
    name: "Ready",
    type: "string",
    format: "",
    description: "The aggregate readiness state of this pod for accepting traffic.",
  },
  {
    name: "Status",
    type: "string",
    format: "",
    description: "The aggregate status of the containers in this pod.",
  },
  {
    name: "Restarts",
    type: "string",
    format: "",
    description:
      "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
  },
  ageColumn,
  {
    name: "IP",
    type: "string",
    format: "",
    priority: 1,
    description:
      "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
  },
  {
    name: "Node",
    type: "string",
    format: "",
    priority: 1,
    description:
      "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
  },
  {
    name: "Nominated Node",
    type: "string",
    format: "",
    priority: 1,
    description:
      "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
  },
  {
    name: "Readiness Gates",
    type: "string",
    format: "",
    priority: 1,
    description:
      'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
  },
];

// ---- the kind ----

export interface PodKindOptions {
  /** Seconds for the default not-ready/unreachable tolerations (upstream flag default 300). */
  defaultTolerationSeconds?: number;
}

export function createPodKind(opts: PodKindOptions = {}): KindSpec<Pod> {
  const tolerationSeconds = opts.defaultTolerationSeconds ?? DEFAULT_TOLERATION_SECONDS;
  return {
    group: "",
    version: "v1",
    kind: "Pod",
    resource: "pods",
    singular: "pod",
    namespaced: true,
    shortNames: ["po"],
    categories: ["all"],
    subresources: ["status", "binding", "log", "exec"],
    defaults: (pod) => defaultPod(pod, tolerationSeconds),
    validate: validatePod,
    validateUpdate: validatePodUpdate,
    selectableFields: {
      "spec.nodeName": (p) => p.spec?.nodeName ?? "",
      "spec.restartPolicy": (p) => p.spec?.restartPolicy ?? "",
      "spec.schedulerName": (p) => p.spec?.schedulerName ?? "",
      "spec.serviceAccountName": (p) => (p.spec?.serviceAccountName as string | undefined) ?? "",
      "spec.hostNetwork": (p) => String(!!p.spec?.hostNetwork),
      "status.phase": (p) => p.status?.phase ?? "",
      "status.podIP": (p) => podIPOf(p),
      "status.nominatedNodeName": (p) => (p.status?.nominatedNodeName as string | undefined) ?? "",
    },
    table: { columns: podColumns, cells: podTableCells },
    mergeKeys: {
      ...metadataMergeKeys,
      ...podSpecMergeKeys("spec"),
      "status.conditions": "type",
      "status.podIPs": "ip",
      "status.hostIPs": "ip",
      "status.resourceClaimStatuses": "name",
    },
    statusSubresource: true,
  };
}

export const podKind: KindSpec<Pod> = createPodKind();
