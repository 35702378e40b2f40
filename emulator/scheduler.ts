// A pure kube-scheduler: filters nodes the way the default plugins do (NodeUnschedulable,
// TaintToleration, NodeAffinity, NodeResourcesFit's pod count), picks the emptiest node, and on
// failure builds the same FailedScheduling / PodScheduled message upstream prints.
//
// The control plane only calls this for pods without spec.nodeName: a pod that names its node is
// already bound (upstream never queues it), so it is neither checked nor placed here.

import { compareStrings } from "./compare.ts";
import {
  DO_NOT_SCHEDULE_EFFECTS,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
  tolerationsTolerateTaint,
  untoleratedTaint,
} from "./taints.ts";
import type { NodeObject, Pod, Taint } from "./types.ts";

export type ScheduleResult = { node: string } | { reason: "Unschedulable"; message: string };

/** Pods a node takes when it reports no allocatable or capacity `pods` (kubelet's --max-pods default). */
export const DEFAULT_MAX_PODS = 110;

/** Upstream's message when the cluster has no nodes at all (scheduler.ErrNoNodesAvailable). */
export const NO_NODES_MESSAGE = "no nodes available to schedule pods";

// Filter reasons, worded exactly as the upstream plugins word them.
export const REASON_UNSCHEDULABLE = "node(s) were unschedulable";
export const REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";
export const REASON_TOO_MANY_PODS = "Too many pods";
const PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling";
const NO_PREEMPTION_VICTIMS = "No preemption victims found for incoming pod";

export interface NodeSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt";
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

/** The part of `spec.affinity` the scheduler reads. */
interface RequiredNodeAffinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] };
  };
}

/** Why one node was filtered out. `resolvable` failures could be fixed by preempting pods. */
interface Rejection {
  reason: string;
  resolvable: boolean;
}

/**
 * Chooses a node for `pod`, or explains why none fits. `podsByNode` counts the pods already bound
 * to each node (including ones not yet running). Among fitting nodes the one with the fewest
 * untolerated PreferNoSchedule taints wins, then the one with the fewest pods, then the first
 * by name, so results are deterministic where upstream breaks ties at random.
 */
export function schedulePod(
  pod: Pod,
  nodes: readonly NodeObject[],
  podsByNode: ReadonlyMap<string, number>,
): ScheduleResult {
  if (nodes.length === 0) return { reason: "Unschedulable", message: NO_NODES_MESSAGE };
  const fitting: NodeObject[] = [];
  const rejections: Rejection[] = [];
  for (const node of nodes) {
    const rejection = filterNode(pod, node, podsByNode.get(nodeName(node)) ?? 0);
    if (rejection) rejections.push(rejection);
    else fitting.push(node);
  }
  if (fitting.length === 0)
    return { reason: "Unschedulable", message: fitErrorMessage(pod, nodes.length, rejections) };
  return { node: nodeName(pickNode(pod, fitting, podsByNode)) };
}

/** Required node affinity: `spec.nodeSelector` and every required nodeAffinity term set must match. */
export function podMatchesNodeAffinity(pod: Pod, node: NodeObject): boolean {
  const labels = node.metadata.labels ?? {};
  const selector = pod.spec.nodeSelector ?? {};
  if (!Object.entries(selector).every(([key, value]) => labels[key] === value)) return false;
  const affinity = pod.spec.affinity as RequiredNodeAffinity | undefined;
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return !required || nodeSelectorTermsMatch(required.nodeSelectorTerms ?? [], node);
}

/** Terms are ORed; an empty list matches nothing, like upstream's NodeSelector. */
export function nodeSelectorTermsMatch(terms: readonly NodeSelectorTerm[], node: NodeObject): boolean {
  return terms.some((term) => nodeSelectorTermMatches(term, node));
}

/** Expressions and fields are ANDed; a term with neither matches nothing. */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: NodeObject): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  return (
    expressions.every((r) => labelRequirementMatches(r, labels)) &&
    fields.every((r) => fieldRequirementMatches(r, node))
  );
}

function labelRequirementMatches(req: NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = labels[req.key];
  const values = req.values ?? [];
  switch (req.operator) {
    case "In":
      return has && values.includes(value);
    case "NotIn":
      return !has || !values.includes(value);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
    case "Gt":
    case "Lt":
      return has && compareIntegers(req.operator, value, values);
    default:
      return false;
  }
}

/** Gt/Lt take exactly one integer; a label that isn't an integer doesn't match. */
function compareIntegers(operator: "Gt" | "Lt", labelValue: string, values: readonly string[]): boolean {
  const label = parseInteger(labelValue);
  const bound = values.length === 1 ? parseInteger(values[0]) : undefined;
  if (label === undefined || bound === undefined) return false;
  return operator === "Gt" ? label > bound : label < bound;
}

function parseInteger(text: string): bigint | undefined {
  return /^[+-]?\d+$/.test(text) ? BigInt(text) : undefined;
}

/** Nodes have one selectable field, metadata.name, and only In/NotIn with a single value. */
function fieldRequirementMatches(req: NodeSelectorRequirement, node: NodeObject): boolean {
  if (req.key !== "metadata.name" || req.values?.length !== 1) return false;
  if (req.operator === "In") return nodeName(node) === req.values[0];
  if (req.operator === "NotIn") return nodeName(node) !== req.values[0];
  return false;
}

/** The first failing filter, in the default profile's plugin order; upstream stops there too. */
function filterNode(pod: Pod, node: NodeObject, podCount: number): Rejection | undefined {
  if (node.spec?.unschedulable && !toleratesUnschedulable(pod))
    return { reason: REASON_UNSCHEDULABLE, resolvable: false };
  const taint = untoleratedTaint(effectiveTaints(node), pod.spec.tolerations, DO_NOT_SCHEDULE_EFFECTS);
  if (taint) return { reason: untoleratedTaintReason(taint), resolvable: false };
  if (!podMatchesNodeAffinity(pod, node)) return { reason: REASON_NODE_AFFINITY, resolvable: false };
  if (podCount + 1 > maxPods(node)) return { reason: REASON_TOO_MANY_PODS, resolvable: true };
  return undefined;
}

/** A pod tolerating the unschedulable taint may land on a cordoned node (DaemonSets do). */
function toleratesUnschedulable(pod: Pod): boolean {
  return tolerationsTolerateTaint(pod.spec.tolerations, {
    key: TAINT_NODE_UNSCHEDULABLE,
    effect: "NoSchedule",
  });
}

/**
 * The node's taints plus the readiness taint the node lifecycle controller would add. Upstream
 * keeps NotReady nodes out only through those taints; adding the implied one here means a node
 * is excluded as soon as it stops being Ready, before the controller has written its taint.
 */
function effectiveTaints(node: NodeObject): Taint[] {
  const taints = node.spec?.taints ?? [];
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status;
  if (
    ready === "True" ||
    taints.some((t) => t.key === TAINT_NODE_NOT_READY || t.key === TAINT_NODE_UNREACHABLE)
  ) {
    return taints;
  }
  return [
    ...taints,
    { key: ready === "Unknown" ? TAINT_NODE_UNREACHABLE : TAINT_NODE_NOT_READY, effect: "NoSchedule" },
  ];
}

/**
 * Upstream v1.33 wording, naming the taint. From v1.34.2/v1.35 kube-scheduler hides taint keys and
 * values and says only "node(s) had untolerated taint(s)".
 */
function untoleratedTaintReason(taint: Taint): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
}

/** status.allocatable.pods, else status.capacity.pods, else the kubelet default. */
function maxPods(node: NodeObject): number {
  const text = node.status?.allocatable?.pods ?? node.status?.capacity?.pods;
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : DEFAULT_MAX_PODS;
}

function pickNode(
  pod: Pod,
  fitting: readonly NodeObject[],
  podsByNode: ReadonlyMap<string, number>,
): NodeObject {
  const ranked = fitting.map((node) => ({
    node,
    softTaints: untoleratedPreferNoScheduleCount(pod, node),
    pods: podsByNode.get(nodeName(node)) ?? 0,
  }));
  ranked.sort(
    (a, b) =>
      a.softTaints - b.softTaints || a.pods - b.pods || compareStrings(nodeName(a.node), nodeName(b.node)),
  );
  return ranked[0].node;
}

/** Upstream's TaintToleration score: fewer untolerated PreferNoSchedule taints is better. */
function untoleratedPreferNoScheduleCount(pod: Pod, node: NodeObject): number {
  return (node.spec?.taints ?? []).filter(
    (t) => t.effect === "PreferNoSchedule" && !tolerationsTolerateTaint(pod.spec.tolerations, t),
  ).length;
}

/**
 * `0/N nodes are available: <histogram>. preemption: <...>` as FitError.Error() and the
 * DefaultPreemption PostFilter build it: each histogram entry is "<count> <reason>", sorted as
 * plain strings (so "10 ..." sorts before "2 ..."), joined by ", ".
 */
function fitErrorMessage(pod: Pod, nodeCount: number, rejections: readonly Rejection[]): string {
  const filters = histogram(rejections.map((r) => r.reason));
  return `${nodesAvailable(nodeCount, filters)} preemption: ${preemptionMessage(pod, nodeCount, rejections)}`;
}

/**
 * Preemption can't help where a filter failed for good (taints, affinity, cordon). Where only the
 * pod count failed it would look for lower-priority victims; kemu doesn't model priorities, so it
 * reports what upstream reports among equal-priority pods: no victims.
 */
function preemptionMessage(pod: Pod, nodeCount: number, rejections: readonly Rejection[]): string {
  if (pod.spec.preemptionPolicy === "Never") return "not eligible due to preemptionPolicy=Never.";
  const outcomes = rejections.map((r) => (r.resolvable ? NO_PREEMPTION_VICTIMS : PREEMPTION_NOT_HELPFUL));
  return nodesAvailable(nodeCount, histogram(outcomes));
}

function nodesAvailable(nodeCount: number, entries: readonly string[]): string {
  return `0/${nodeCount} nodes are available: ${entries.join(", ")}.`;
}

function histogram(reasons: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const reason of reasons) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  return [...counts].map(([reason, count]) => `${count} ${reason}`).sort(compareStrings);
}

function nodeName(node: NodeObject): string {
  return node.metadata.name ?? "";
}
