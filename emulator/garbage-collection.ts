// Owner-reference garbage collection decisions (pkg/controller/garbagecollector): what happens to
// a dependent given the state of each owner it names, and when an owner deleting in the foreground
// may finally go. The controller looks owners up; these functions only decide.

import type { KubeObject, OwnerReference } from "./types.ts";

export const FOREGROUND_FINALIZER = "foregroundDeletion";
export const ORPHAN_FINALIZER = "orphan";

export type PropagationPolicy = "Foreground" | "Background" | "Orphan";

/**
 * solid: the owner exists and is not waiting for its dependents; dangling: no object with that
 * name and uid; waiting: the owner is being deleted in the foreground (it waits for us).
 */
export type OwnerState = "solid" | "dangling" | "waiting";

export type DependentDecision =
  | { action: "keep" }
  | { action: "removeOwnerReferences"; uids: string[] }
  | { action: "delete"; propagationPolicy: PropagationPolicy; unblockOwners: boolean };

/** Is `obj` being deleted in the foreground, holding on until its own dependents are gone? */
export function isDeletingDependents(obj: KubeObject): boolean {
  return !!obj.metadata.deletionTimestamp && !!obj.metadata.finalizers?.includes(FOREGROUND_FINALIZER);
}

export function isOrphaningDependents(obj: KubeObject): boolean {
  return !!obj.metadata.deletionTimestamp && !!obj.metadata.finalizers?.includes(ORPHAN_FINALIZER);
}

/** The owner state for a looked-up owner (undefined = not found). */
export function ownerState(ref: OwnerReference, owner: KubeObject | undefined): OwnerState {
  if (!owner || owner.metadata.uid !== ref.uid) return "dangling";
  return isDeletingDependents(owner) ? "waiting" : "solid";
}

/**
 * attemptToDeleteItem: a dependent with a solid owner stays (dropping references to owners that
 * are gone or waiting for it); one whose owners wait for it and that has dependents itself goes in
 * the foreground; any other goes as its own finalizers ask (background by default).
 * `dependentsDeletingDependents` flags a possible cycle: then its blocking references are cleared.
 */
export function decideDependent(
  dependent: KubeObject,
  owners: { ref: OwnerReference; state: OwnerState }[],
  hasDependents: boolean,
  dependentsDeletingDependents = false,
): DependentDecision {
  if (owners.length === 0) return { action: "keep" };
  const solid = owners.filter((o) => o.state === "solid");
  const dangling = owners.filter((o) => o.state === "dangling");
  const waiting = owners.filter((o) => o.state === "waiting");
  if (solid.length) {
    if (!dangling.length && !waiting.length) return { action: "keep" };
    return { action: "removeOwnerReferences", uids: [...dangling, ...waiting].map((o) => o.ref.uid) };
  }
  if (waiting.length && hasDependents) {
    return { action: "delete", propagationPolicy: "Foreground", unblockOwners: dependentsDeletingDependents };
  }
  const finalizers = dependent.metadata.finalizers ?? [];
  const propagationPolicy: PropagationPolicy = finalizers.includes(ORPHAN_FINALIZER)
    ? "Orphan"
    : finalizers.includes(FOREGROUND_FINALIZER)
      ? "Foreground"
      : "Background";
  return { action: "delete", propagationPolicy, unblockOwners: false };
}

/** Dependents that hold up an owner's foreground deletion: those whose reference blocks it. */
export function blockingDependents<T extends KubeObject>(ownerUid: string, dependents: T[]): T[] {
  return dependents.filter((d) =>
    d.metadata.ownerReferences?.some((r) => r.uid === ownerUid && r.blockOwnerDeletion === true),
  );
}

/**
 * The finalizers a delete leaves on an object, as the apiserver's
 * deletionFinalizersForGarbageCollection computes them from the DeleteOptions: an explicit policy
 * (or orphanDependents) replaces whatever GC finalizer was there. undefined = leave them alone.
 */
export function finalizersForDeletion(
  finalizers: string[] | undefined,
  opts: { propagationPolicy?: PropagationPolicy; orphanDependents?: boolean },
): string[] | undefined {
  let orphan: boolean;
  let foreground: boolean;
  if (opts.propagationPolicy) {
    orphan = opts.propagationPolicy === "Orphan";
    foreground = opts.propagationPolicy === "Foreground";
  } else if (opts.orphanDependents !== undefined) {
    orphan = opts.orphanDependents;
    foreground = false;
  } else {
    return undefined;
  }
  const current = finalizers ?? [];
  const next = current.filter((f) => f !== ORPHAN_FINALIZER && f !== FOREGROUND_FINALIZER);
  if (orphan) next.push(ORPHAN_FINALIZER);
  if (foreground) next.push(FOREGROUND_FINALIZER);
  const same = next.length === current.length && next.every((f) => current.includes(f));
  return same ? undefined : next;
}
