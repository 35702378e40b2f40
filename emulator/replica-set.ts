// The ReplicaSet controller's decisions as pure functions (pkg/controller/replicaset and the pod
// helpers of pkg/controller): which pods a ReplicaSet owns, adopts or releases (ClaimPods), which
// surplus pods go first (ActivePodsWithRanks), what a new pod looks like (GetPodFromTemplate) and
// the status it reports (calculateStatus), including availability after minReadySeconds.

import { parseTimestamp } from "./duration.ts";
import type { LabelSelector } from "./label-selector.ts";
import { matchesLabels } from "./label-selector.ts";
import type { KubeObject, OwnerReference, Pod, ReplicaSet } from "./types.ts";

export const REPLICA_SET_API_VERSION = "apps/v1";
/** Upstream's --replicaset burst: at most this many creations or deletions per sync. */
export const BURST_REPLICAS = 500;
/** slowStartBatch starts with one creation, then doubles. */
export const SLOW_START_INITIAL_BATCH = 1;

// ---- owner references ----

export function controllerRefOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** metav1.NewControllerRef: what a controller stamps on what it creates or adopts. */
export function newControllerRef(owner: KubeObject, apiVersion: string, kind: string): OwnerReference {
  return {
    apiVersion,
    kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export interface Claim<T extends KubeObject> {
  /** Already ours and still matching, plus orphans to adopt (once adopted). */
  owned: T[];
  /** Orphans that match: adopt them (add our controller reference). */
  adopt: T[];
  /** Ours but no longer matching: release them (drop our controller reference). */
  release: T[];
}

/**
 * BaseControllerRefManager.ClaimObject over a list: keep what we own and match, release what we own
 * but no longer match (unless we are being deleted), adopt matching orphans that are not being
 * deleted (unless we are). Objects controlled by someone else are never touched.
 */
export function claimObjects<T extends KubeObject>(
  owner: KubeObject,
  selector: LabelSelector,
  objects: T[],
  match: (o: T) => boolean = () => true,
): Claim<T> {
  const out: Claim<T> = { owned: [], adopt: [], release: [] };
  const ownerDeleting = !!owner.metadata.deletionTimestamp;
  for (const o of objects) {
    const matches = matchesLabels(selector, o.metadata.labels) && match(o);
    const ref = controllerRefOf(o);
    if (ref) {
      if (ref.uid !== owner.metadata.uid) continue;
      if (matches) out.owned.push(o);
      else if (!ownerDeleting) out.release.push(o);
      continue;
    }
    if (ownerDeleting || !matches || o.metadata.deletionTimestamp) continue;
    if (owner.metadata.namespace && owner.metadata.namespace !== o.metadata.namespace) continue;
    out.adopt.push(o);
  }
  return out;
}

// ---- pod state ----

/** FilterActivePods: neither finished nor being deleted. */
export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed" && !pod.metadata.deletionTimestamp;
}

function readyCondition(pod: Pod) {
  return pod.status?.conditions?.find((c) => c.type === "Ready");
}

export function isPodReady(pod: Pod): boolean {
  return readyCondition(pod)?.status === "True";
}

/** When the pod last turned Ready, in ms since the epoch (undefined when not ready). */
export function podReadySince(pod: Pod): number | undefined {
  const c = readyCondition(pod);
  return c?.status === "True" ? parseTimestamp(c.lastTransitionTime) : undefined;
}

/** IsPodAvailable: Ready for at least minReadySeconds. */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: Date): boolean {
  if (!isPodReady(pod)) return false;
  if (!minReadySeconds) return true;
  const since = podReadySince(pod);
  return since !== undefined && since + minReadySeconds * 1000 <= now.getTime();
}

/** When a ready pod becomes available, if that is still ahead of `now`. */
export function podAvailableAt(pod: Pod, minReadySeconds: number, now: Date): number | undefined {
  if (!minReadySeconds || !isPodReady(pod)) return undefined;
  const since = podReadySince(pod);
  if (since === undefined) return undefined;
  const at = since + minReadySeconds * 1000;
  return at > now.getTime() ? at : undefined;
}

// ---- which pods to delete first ----

const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

function maxRestarts(pod: Pod): number {
  let max = 0;
  for (const cs of (pod.status?.containerStatuses as { restartCount?: number }[] | undefined) ?? []) {
    max = Math.max(max, cs.restartCount ?? 0);
  }
  return max;
}

/** logarithmicRankDiff: compares how long ago two times were on a log2 scale of nanoseconds. */
function logRank(t: number, now: number): number {
  const d = (now - t) * 1e6;
  return d > 0 ? Math.floor(Math.log2(d)) : -1;
}

/** afterOrZero: a missing time sorts first, then the later one. */
function afterOrZero(a: number | undefined, b: number | undefined): boolean {
  if (a === undefined || b === undefined) return a === undefined;
  return a > b;
}

function uidOf(p: Pod): string {
  return p.metadata.uid ?? "";
}

/**
 * ActivePodsWithRanks.Less with the LogarithmicScaleDown and PodDeletionCost gates on: is `a` a
 * better pod to delete than `b`? `rank` counts related pods on the same node.
 */
function deleteBefore(a: Pod, b: Pod, rank: Map<Pod, number>, now: number): boolean {
  const an = a.spec?.nodeName ?? "";
  const bn = b.spec?.nodeName ?? "";
  if (an !== bn && (an === "" || bn === "")) return an === "";
  const ap = PHASE_ORDINAL[a.status?.phase ?? ""] ?? 0;
  const bp = PHASE_ORDINAL[b.status?.phase ?? ""] ?? 0;
  if (ap !== bp) return ap < bp;
  const ar = isPodReady(a);
  const br = isPodReady(b);
  if (ar !== br) return !ar;
  const cost = (p: Pod) => {
    const v = Number.parseInt(
      p.metadata.annotations?.["controller.kubernetes.io/pod-deletion-cost"] ?? "0",
      10,
    );
    return Number.isFinite(v) ? v : 0;
  };
  if (cost(a) !== cost(b)) return cost(a) < cost(b);
  const ra = rank.get(a) ?? 0;
  const rb = rank.get(b) ?? 0;
  if (ra !== rb) return ra > rb;
  if (ar && br) {
    const ta = podReadySince(a);
    const tb = podReadySince(b);
    if (ta !== tb) {
      if (ta === undefined || tb === undefined) return afterOrZero(ta, tb);
      const diff = logRank(ta, now) - logRank(tb, now);
      return diff === 0 ? uidOf(a) < uidOf(b) : diff < 0;
    }
  }
  const rsA = maxRestarts(a);
  const rsB = maxRestarts(b);
  if (rsA !== rsB) return rsA > rsB;
  const ca = parseTimestamp(a.metadata.creationTimestamp);
  const cb = parseTimestamp(b.metadata.creationTimestamp);
  if (ca !== cb) {
    if (ca === undefined || cb === undefined) return afterOrZero(ca, cb);
    const diff = logRank(ca, now) - logRank(cb, now);
    return diff === 0 ? uidOf(a) < uidOf(b) : diff < 0;
  }
  return false;
}

/**
 * getPodsToDelete: the `count` pods to remove first: unscheduled, then pending, then not ready,
 * then those doubled up on a node with other related pods, then the most recently ready, the most
 * restarted and the newest. `related` are the active pods of every ReplicaSet of the same owner.
 */
export function podsToDelete(pods: Pod[], related: Pod[], count: number, now: Date): Pod[] {
  if (count <= 0) return [];
  if (count >= pods.length) return [...pods];
  const onNode = new Map<string, number>();
  for (const p of related) {
    if (!isPodActive(p) || !p.spec?.nodeName) continue;
    onNode.set(p.spec.nodeName, (onNode.get(p.spec.nodeName) ?? 0) + 1);
  }
  const rank = new Map<Pod, number>();
  for (const p of pods) rank.set(p, p.spec?.nodeName ? (onNode.get(p.spec.nodeName) ?? 0) : 0);
  const t = now.getTime();
  const sorted = [...pods].sort((a, b) =>
    deleteBefore(a, b, rank, t) ? -1 : deleteBefore(b, a, rank, t) ? 1 : 0,
  );
  return sorted.slice(0, count);
}

// ---- creating pods ----

/** getPodsPrefix: `<name>-`, as the generateName of the pods a controller creates. */
export function podNamePrefix(ownerName: string): string {
  return `${ownerName}-`;
}

/** GetPodFromTemplate: labels, annotations, finalizers and spec of the template, owned by the RS. */
export function podFromTemplate(rs: ReplicaSet): Pod {
  const template = rs.spec.template;
  const meta = template?.metadata ?? {};
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: podNamePrefix(rs.metadata.name!),
      namespace: rs.metadata.namespace,
      ownerReferences: [newControllerRef(rs, REPLICA_SET_API_VERSION, "ReplicaSet")],
    },
    spec: structuredClone(template?.spec ?? { containers: [] }),
  };
  if (meta.labels && Object.keys(meta.labels).length) pod.metadata.labels = { ...meta.labels };
  if (meta.annotations && Object.keys(meta.annotations).length)
    pod.metadata.annotations = { ...meta.annotations };
  if (meta.finalizers?.length) pod.metadata.finalizers = [...meta.finalizers];
  return pod;
}

/** slowStartBatch sizes: 1, 2, 4, … summing to `count`. */
export function slowStartBatches(count: number, initial = SLOW_START_INITIAL_BATCH): number[] {
  const out: number[] = [];
  let remaining = count;
  let size = Math.min(remaining, initial);
  while (size > 0) {
    out.push(size);
    remaining -= size;
    size = Math.min(2 * size, remaining);
  }
  return out;
}

// ---- status ----

export type ReplicaSetStatus = NonNullable<ReplicaSet["status"]>;

/**
 * calculateStatus over the active pods the ReplicaSet owns. `failure` is the ReplicaFailure
 * condition to report (a create or delete that failed), undefined to clear it.
 */
export function replicaSetStatus(
  rs: ReplicaSet,
  pods: Pod[],
  now: Date,
  failure?: { reason: string; message: string; at: string },
): ReplicaSetStatus {
  const templateLabels = rs.spec.template?.metadata?.labels ?? {};
  const minReady = rs.spec.minReadySeconds ?? 0;
  let fullyLabeled = 0;
  let ready = 0;
  let available = 0;
  for (const p of pods) {
    const labels = p.metadata.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled++;
    if (isPodReady(p)) {
      ready++;
      if (isPodAvailable(p, minReady, now)) available++;
    }
  }
  const status: ReplicaSetStatus = { replicas: pods.length };
  if (fullyLabeled) status.fullyLabeledReplicas = fullyLabeled;
  if (ready) status.readyReplicas = ready;
  if (available) status.availableReplicas = available;
  status.observedGeneration = rs.metadata.generation;
  const conditions = (rs.status?.conditions ?? []).filter((c) => c.type !== "ReplicaFailure");
  const old = rs.status?.conditions?.find((c) => c.type === "ReplicaFailure");
  if (failure) {
    conditions.push({
      type: "ReplicaFailure",
      status: "True",
      lastTransitionTime: old?.status === "True" ? old.lastTransitionTime : failure.at,
      reason: failure.reason,
      message: failure.message,
    });
  }
  if (conditions.length) status.conditions = conditions;
  return status;
}

/** The earliest moment one of these pods becomes available, for a timed resync. */
export function nextAvailabilityAt(pods: Pod[], minReadySeconds: number, now: Date): number | undefined {
  let next: number | undefined;
  for (const p of pods) {
    const at = podAvailableAt(p, minReadySeconds, now);
    if (at !== undefined && (next === undefined || at < next)) next = at;
  }
  return next;
}
