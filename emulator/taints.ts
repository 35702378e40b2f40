// Taint/toleration matching, as upstream's v1 Toleration.ToleratesTaint and
// v1helper.TolerationsTolerateTaint / FindMatchingUntoleratedTaint.

import type { Taint, Toleration } from "./types.ts";

// Well-known taint keys (k8s.io/api/core/v1 well_known_taints.go).
export const TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";
export const TAINT_NODE_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure";
export const TAINT_NODE_DISK_PRESSURE = "node.kubernetes.io/disk-pressure";
export const TAINT_NODE_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable";
export const TAINT_NODE_PID_PRESSURE = "node.kubernetes.io/pid-pressure";

export type TaintEffect = Taint["effect"];

/** The effects that keep new pods off a node (what the scheduler's TaintToleration filter checks). */
export const DO_NOT_SCHEDULE_EFFECTS: readonly TaintEffect[] = ["NoSchedule", "NoExecute"];

/**
 * Whether one toleration tolerates one taint. An empty effect matches every effect and an empty
 * key matches every key; the operator defaults to Equal, so `{ operator: "Exists" }` alone
 * tolerates everything while `{ key: "k" }` alone only tolerates `k` taints with an empty value.
 */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? "Equal") {
    case "Equal":
      return (toleration.value ?? "") === (taint.value ?? "");
    case "Exists":
      return true;
    default:
      // Unknown operators (e.g. the alpha Gt/Lt) tolerate nothing, as upstream without the gate.
      return false;
  }
}

/** Whether any of the tolerations tolerates the taint. */
export function tolerationsTolerateTaint(
  tolerations: readonly Toleration[] | undefined,
  taint: Taint,
): boolean {
  return (tolerations ?? []).some((t) => tolerates(t, taint));
}

/** The first taint (in node order) with one of `effects` that no toleration tolerates. */
export function untoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
  effects: readonly TaintEffect[],
): Taint | undefined {
  return (taints ?? []).find(
    (taint) => effects.includes(taint.effect) && !tolerationsTolerateTaint(tolerations, taint),
  );
}
