// The node lifecycle controller's decisions (kube-controller-manager's nodelifecycle and
// taint-eviction controllers) as pure functions: when a node stops heartbeating its conditions go
// Unknown, conditions map to taints, and NoExecute taints evict pods that don't tolerate them.
// The caller writes the results back and re-runs these on node/lease/pod changes or at the
// returned times.

import {
  TAINT_NODE_DISK_PRESSURE,
  TAINT_NODE_MEMORY_PRESSURE,
  TAINT_NODE_NETWORK_UNAVAILABLE,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_PID_PRESSURE,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
  tolerates,
} from "./taints.ts";
import type { Condition, Lease, NodeObject, Pod, Taint, Toleration } from "./types.ts";

/** --node-monitor-grace-period: how long a node may go unheard before it turns Unknown. */
export const DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS = 40_000;
/** --node-startup-grace-period: the allowance for a node that has never posted a Ready condition. */
export const DEFAULT_NODE_STARTUP_GRACE_PERIOD_MS = 60_000;

export interface NodeLifecycleOptions {
  gracePeriodMs?: number;
  startupGracePeriodMs?: number;
}

export interface NodeLifecycleDecision {
  /** The node's whole condition list with stale conditions set to Unknown; absent when unchanged. */
  conditions?: Condition[];
  /** The Ready condition from `conditions`, when it changed. */
  readyCondition?: Condition;
  /** Every taint the node should carry: the controller's own reconciled, all others untouched. */
  taints: Taint[];
  taintsChanged: boolean;
  /** When the node turns stale unless it is heard from first; absent once it already is. */
  staleAt?: Date;
}

// Conditions the controller marks Unknown when the kubelet goes quiet. NetworkUnavailable is
// left alone upstream because the network plugin, not the kubelet, owns it.
const HEARTBEAT_CONDITIONS = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

// Condition status to NoSchedule taint key (TaintNodesByCondition).
const CONDITION_TAINTS: Record<string, Partial<Record<Condition["status"], string>>> = {
  Ready: { False: TAINT_NODE_NOT_READY, Unknown: TAINT_NODE_UNREACHABLE },
  MemoryPressure: { True: TAINT_NODE_MEMORY_PRESSURE },
  DiskPressure: { True: TAINT_NODE_DISK_PRESSURE },
  NetworkUnavailable: { True: TAINT_NODE_NETWORK_UNAVAILABLE },
  PIDPressure: { True: TAINT_NODE_PID_PRESSURE },
};

const NO_SCHEDULE_KEYS = new Set([
  ...Object.values(CONDITION_TAINTS).flatMap((byStatus) => Object.values(byStatus)),
  TAINT_NODE_UNSCHEDULABLE,
]);
const NO_EXECUTE_KEYS = new Set([TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE]);

/**
 * Decides a node's health conditions and controller-owned taints. The node counts as heard from
 * at the latest of its lease's renewTime, its Ready heartbeat and its creation; once that is older
 * than the grace period, Ready/MemoryPressure/DiskPressure/PIDPressure become Unknown
 * (NodeStatusUnknown, or NodeStatusNeverUpdated for ones never posted).
 *
 * Taints follow the (possibly updated) conditions: Ready=False gives not-ready and Ready=Unknown
 * gives unreachable, each as NoSchedule and NoExecute; pressure conditions and
 * spec.unschedulable give their NoSchedule taints. New taints get timeAdded=now, as upstream stamps
 * every taint it adds; existing ones keep theirs, which is what NoExecute eviction times from.
 *
 * Unlike upstream, NoExecute taints are added at once rather than through the per-zone rate
 * limiter, and not withheld when every node in the cluster is down (upstream's "full disruption"
 * mode stops evictions then).
 */
export function nodeLifecycle(
  node: NodeObject,
  lease: Lease | undefined,
  now: Date,
  options: NodeLifecycleOptions = {},
): NodeLifecycleDecision {
  const current = node.status?.conditions ?? [];
  const hasReady = current.some((c) => c.type === "Ready");
  const grace = hasReady
    ? (options.gracePeriodMs ?? DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS)
    : (options.startupGracePeriodMs ?? DEFAULT_NODE_STARTUP_GRACE_PERIOD_MS);
  const heard = lastHeardFrom(node, lease);
  const stale = heard !== undefined && now.getTime() > heard + grace;
  const conditions = stale ? markConditionsUnknown(node, now) : undefined;
  const effective = conditions ?? current;
  const taints = reconcileTaints(
    node.spec?.taints ?? [],
    desiredTaints(effective, node.spec?.unschedulable === true),
    now,
  );
  return {
    conditions,
    readyCondition: conditions?.find((c) => c.type === "Ready"),
    taints,
    taintsChanged: !sameTaintList(taints, node.spec?.taints ?? []),
    staleAt: heard === undefined || stale ? undefined : new Date(heard + grace + 1),
  };
}

/** Latest sign of life in epoch ms, or undefined when the node carries no usable timestamp. */
function lastHeardFrom(node: NodeObject, lease: Lease | undefined): number | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const times = [
    lease?.spec?.renewTime ?? lease?.spec?.acquireTime,
    ready?.lastHeartbeatTime,
    node.metadata.creationTimestamp,
  ]
    .map(parseTime)
    .filter((t): t is number => t !== undefined);
  return times.length ? Math.max(...times) : undefined;
}

/** A copy of the node's conditions with the heartbeat ones Unknown; undefined if none changed. */
function markConditionsUnknown(node: NodeObject, now: Date): Condition[] | undefined {
  const stamp = rfc3339(now);
  let changed = false;
  const conditions = (node.status?.conditions ?? []).map((c): Condition => {
    if (!HEARTBEAT_CONDITIONS.includes(c.type) || c.status === "Unknown") return c;
    changed = true;
    // lastHeartbeatTime stays: it records when the kubelet last reported, not when we looked.
    return {
      ...c,
      status: "Unknown",
      reason: "NodeStatusUnknown",
      message: "Kubelet stopped posting node status.",
      lastTransitionTime: stamp,
    };
  });
  for (const type of HEARTBEAT_CONDITIONS) {
    if (conditions.some((c) => c.type === type)) continue;
    changed = true;
    conditions.push({
      type,
      status: "Unknown",
      reason: "NodeStatusNeverUpdated",
      message: "Kubelet never posted node status.",
      lastHeartbeatTime: node.metadata.creationTimestamp,
      lastTransitionTime: stamp,
    });
  }
  return changed ? conditions : undefined;
}

/** The controller-owned taints the conditions call for, without timeAdded. */
function desiredTaints(conditions: readonly Condition[], unschedulable: boolean): Taint[] {
  const taints: Taint[] = [];
  const add = (taint: Taint) => {
    if (!taints.some((t) => sameKeyAndEffect(t, taint))) taints.push(taint);
  };
  for (const condition of conditions) {
    const key = CONDITION_TAINTS[condition.type]?.[condition.status];
    if (key) add({ key, effect: "NoSchedule" });
  }
  if (unschedulable) add({ key: TAINT_NODE_UNSCHEDULABLE, effect: "NoSchedule" });
  const ready = conditions.find((c) => c.type === "Ready")?.status;
  if (ready === "False") add({ key: TAINT_NODE_NOT_READY, effect: "NoExecute" });
  if (ready === "Unknown") add({ key: TAINT_NODE_UNREACHABLE, effect: "NoExecute" });
  return taints;
}

/** Keeps foreign taints and still-wanted controller taints in place; appends the new ones. */
function reconcileTaints(existing: readonly Taint[], desired: readonly Taint[], now: Date): Taint[] {
  const kept = existing.filter((t) => !isControllerTaint(t) || desired.some((d) => sameKeyAndEffect(d, t)));
  const added = desired
    .filter((d) => !existing.some((t) => sameKeyAndEffect(d, t)))
    .map((d) => ({ ...d, timeAdded: rfc3339(now) }));
  return [...kept, ...added];
}

function isControllerTaint(taint: Taint): boolean {
  if (taint.effect === "NoSchedule") return NO_SCHEDULE_KEYS.has(taint.key);
  return taint.effect === "NoExecute" && NO_EXECUTE_KEYS.has(taint.key);
}

/** Upstream's Taint.MatchTaint: a node holds at most one taint per key and effect. */
function sameKeyAndEffect(a: Taint, b: Taint): boolean {
  return a.key === b.key && a.effect === b.effect;
}

function sameTaintList(a: readonly Taint[], b: readonly Taint[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

export interface EvictionDecision {
  /** Pods to delete now, in input order. */
  evict: Pod[];
  /** The earliest later moment another pod on the node becomes due, for the caller's timer. */
  nextEvictionAt?: Date;
}

/** The condition upstream sets on a pod just before the taint manager deletes it. */
export const TAINT_EVICTION_CONDITION: Condition = {
  type: "DisruptionTarget",
  status: "True",
  reason: "DeletionByTaintManager",
  message: "Taint manager: deleting due to NoExecute taint",
};

/** The Normal event upstream records for each eviction. */
export function taintEvictionEvent(pod: Pod): { reason: string; message: string } {
  return {
    reason: "TaintManagerEviction",
    message: `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}`,
  };
}

/**
 * The NoExecute taint manager: a pod on the node is due for eviction when some NoExecute taint is
 * not tolerated at all, or when the toleration matching it (the first one, as upstream picks) has
 * tolerationSeconds that have run out since the taint's timeAdded (<= 0 means at once). A
 * toleration without tolerationSeconds tolerates forever. Pods already being deleted are skipped.
 *
 * Upstream times from when its informer first saw the taint; timeAdded is the persisted form of
 * that. A taint without timeAdded can't be timed, so a bounded toleration of it never runs out:
 * whoever stores a NoExecute taint should stamp timeAdded (nodeLifecycle does).
 */
export function podsToEvict(node: NodeObject, pods: readonly Pod[], now: Date): EvictionDecision {
  const noExecute = (node.spec?.taints ?? []).filter((t) => t.effect === "NoExecute");
  const evict: Pod[] = [];
  let next: number | undefined;
  if (noExecute.length === 0) return { evict };
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp || pod.spec.nodeName !== node.metadata.name) continue;
    const due = evictionTime(noExecute, pod.spec.tolerations ?? [], now.getTime());
    if (due === undefined) continue;
    if (due <= now.getTime()) evict.push(pod);
    else next = next === undefined ? due : Math.min(next, due);
  }
  return { evict, nextEvictionAt: next === undefined ? undefined : new Date(next) };
}

/** When the pod must go (epoch ms), or undefined if its tolerations outlast every taint. */
function evictionTime(
  taints: readonly Taint[],
  tolerations: readonly Toleration[],
  now: number,
): number | undefined {
  let due: number | undefined;
  for (const taint of taints) {
    const toleration = tolerations.find((t) => tolerates(t, taint));
    if (!toleration) return now;
    const seconds = toleration.tolerationSeconds;
    if (seconds == null) continue;
    if (seconds <= 0) return now;
    const added = parseTime(taint.timeAdded);
    if (added === undefined) continue;
    const deadline = added + seconds * 1000;
    due = due === undefined ? deadline : Math.min(due, deadline);
  }
  return due;
}

function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** metav1.Time's wire form: RFC 3339 in UTC with whole seconds. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
