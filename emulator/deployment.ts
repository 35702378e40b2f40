// The Deployment controller's decisions as one pure function (pkg/controller/deployment and its
// util package): given a Deployment, the ReplicaSets it owns and their pods, planDeployment returns
// the ReplicaSet writes to make (create the new one, scale, sync annotations, delete old history)
// and the Deployment's next revision annotation and status, following upstream's sync step by step:
// paused and scaling events (proportional scaling), RollingUpdate (maxSurge/maxUnavailable),
// Recreate, revision history cleanup, and the Available/Progressing conditions.
//
// One deliberate difference: where upstream trusts a ReplicaSet's spec.replicas and status as they
// are in its cache, the rollout counts pods the ReplicaSet has not yet removed (max of spec and
// status replicas) towards maxSurge, and never more available pods than spec.replicas towards
// maxUnavailable. Upstream can overshoot both for a moment when a status update lags a scale-down;
// here the bounds hold at every step.

import { rfc3339 } from "./duration.ts";
import { POD_TEMPLATE_HASH_LABEL } from "./kinds/pod-template.ts";
import { controllerRefOf, newControllerRef } from "./replica-set.ts";
import type {
  Deployment,
  DeploymentCondition,
  LabelSelectorSpec,
  Pod,
  PodTemplateSpec,
  ReplicaSet,
} from "./types.ts";
import { semanticEqual } from "./validation.ts";

export const REVISION_ANNOTATION = "deployment.kubernetes.io/revision";
export const REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history";
export const DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas";
export const MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas";
export const CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause";
const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to";
/** Annotations a Deployment never copies onto its ReplicaSets. */
const ANNOTATIONS_TO_SKIP = new Set([
  LAST_APPLIED_ANNOTATION,
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  ROLLBACK_TO_ANNOTATION,
]);
const MAX_REVISION_HISTORY_CHARS = 2000;
const MAX_INT32 = 2147483647;

// Condition reasons, as kubectl rollout status and describe read them.
export const REASONS = {
  minimumReplicasAvailable: "MinimumReplicasAvailable",
  minimumReplicasUnavailable: "MinimumReplicasUnavailable",
  newReplicaSetCreated: "NewReplicaSetCreated",
  foundNewReplicaSet: "FoundNewReplicaSet",
  newReplicaSetAvailable: "NewReplicaSetAvailable",
  replicaSetUpdated: "ReplicaSetUpdated",
  timedOut: "ProgressDeadlineExceeded",
  paused: "DeploymentPaused",
  resumed: "DeploymentResumed",
} as const;

export const DEPLOYMENT_API_VERSION = "apps/v1";

// ---- pod-template-hash ----

const SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** rand.SafeEncodeString: maps each byte onto consonants and digits that never spell words. */
export function safeEncodeString(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) out += SAFE_ALPHANUMS[b % SAFE_ALPHANUMS.length];
  return out;
}

/** 32-bit FNV-1a, continuing from `hash`. */
export function fnv32a(bytes: Uint8Array, hash = 0x811c9dc5): number {
  let h = hash >>> 0;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Keys sorted, nulls and empty maps/lists dropped: equal templates serialize equally. */
function canonicalJson(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    return `[${v.map((x) => canonicalJson(x) ?? "null").join(",")}]`;
  }
  if (typeof v === "object") {
    const parts: string[] = [];
    for (const k of Object.keys(v as object).sort()) {
      const s = canonicalJson((v as Record<string, unknown>)[k]);
      if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
    }
    return parts.length ? `{${parts.join(",")}}` : undefined;
  }
  return JSON.stringify(v);
}

/**
 * controller.ComputeHash: FNV-1a over the template, then the collision count as 8 little-endian
 * bytes, printed in decimal and safe-encoded. Upstream hashes Go's spew dump of the struct; kemu
 * hashes a canonical JSON of it, so the values differ from a real cluster's but are as stable.
 */
export function computeHash(template: PodTemplateSpec | undefined, collisionCount?: number): string {
  let h = fnv32a(Buffer.from(canonicalJson(template ?? {}) ?? "{}", "utf8"));
  if (collisionCount !== undefined && collisionCount !== null) {
    const bytes = Buffer.alloc(8);
    bytes.writeUInt32LE(collisionCount >>> 0, 0);
    h = fnv32a(bytes, h);
  }
  return safeEncodeString(String(h));
}

/** EqualIgnoreHash: templates equal once the pod-template-hash label is ignored. */
export function equalIgnoreHash(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean {
  const strip = (t: PodTemplateSpec | undefined) => {
    const c = structuredClone(t ?? ({} as PodTemplateSpec));
    if (c.metadata?.labels) {
      const { [POD_TEMPLATE_HASH_LABEL]: _h, ...rest } = c.metadata.labels;
      c.metadata.labels = rest;
    }
    return c;
  };
  return semanticEqual(strip(a), strip(b));
}

// ---- maxSurge / maxUnavailable ----

/** GetScaledValueFromIntOrPercent: "25%" of `total`, rounded up or down; ints as they are. */
export function scaledValue(v: number | string | null | undefined, total: number, roundUp: boolean): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === "number") return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m)
    throw new Error(`invalid value for IntOrString: invalid value "${v}": must be an integer or percentage`);
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

function isRollingUpdate(d: Deployment): boolean {
  return (d.spec.strategy?.type ?? "RollingUpdate") === "RollingUpdate";
}

function replicasOf(obj: { spec: { replicas?: number } }): number {
  return obj.spec.replicas ?? 0;
}

/** ResolveFenceposts: surge rounds up, unavailability down, and both zero means one unavailable. */
export function resolveFenceposts(d: Deployment): { surge: number; unavailable: number } {
  const ru = d.spec.strategy?.rollingUpdate ?? {};
  const desired = replicasOf(d);
  const surge = scaledValue(ru.maxSurge ?? 0, desired, true);
  let unavailable = scaledValue(ru.maxUnavailable ?? 0, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0;
}

export function maxUnavailable(d: Deployment): number {
  if (!isRollingUpdate(d) || replicasOf(d) === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, replicasOf(d));
}

// ---- revisions and sorting ----

export function revisionOf(obj: { metadata: { annotations?: Record<string, string> } }): number {
  const v = obj.metadata.annotations?.[REVISION_ANNOTATION];
  if (v === undefined || !/^-?\d+$/.test(v)) return 0;
  return Number(v);
}

function maxRevision(rss: ReplicaSet[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

function created(rs: ReplicaSet): number {
  return Date.parse(rs.metadata.creationTimestamp ?? "") || 0;
}

/** ReplicaSetsByCreationTimestamp: oldest first, then by name. */
function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  return (
    created(a) - created(b) ||
    (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0)
  );
}

function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  return revisionOf(a) - revisionOf(b) || byCreation(a, b);
}

function activeReplicaSets(rss: (ReplicaSet | undefined)[]): ReplicaSet[] {
  return rss.filter((rs): rs is ReplicaSet => !!rs && replicasOf(rs) > 0);
}

function specTotal(rss: (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs ? replicasOf(rs) : 0), 0);
}

function statusTotal(
  rss: (ReplicaSet | undefined)[],
  field: "replicas" | "readyReplicas" | "availableReplicas",
): number {
  return rss.reduce((n, rs) => n + ((rs?.status?.[field] as number | undefined) ?? 0), 0);
}

/** Pods an RS has or will have: its spec, or more while it has not yet removed the surplus. */
function podCount(rs: ReplicaSet): number {
  return Math.max(replicasOf(rs), rs.status?.replicas ?? 0);
}

/** Available pods an RS will keep: never more than its spec.replicas. */
function keptAvailable(rs: ReplicaSet): number {
  return Math.min(rs.status?.availableReplicas ?? 0, replicasOf(rs));
}

/** FindNewReplicaSet: the oldest ReplicaSet whose template equals the Deployment's. */
export function findNewReplicaSet(d: Deployment, rss: ReplicaSet[]): ReplicaSet | undefined {
  return [...rss].sort(byCreation).find((rs) => equalIgnoreHash(rs.spec.template, d.spec.template));
}

// ---- conditions ----

function condition(status: Deployment["status"], type: string): DeploymentCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** SetDeploymentCondition: no change for the same status and reason; a kept status keeps its transition time. */
function setCondition(status: NonNullable<Deployment["status"]>, next: DeploymentCondition): void {
  const current = condition(status, next.type);
  if (current && current.status === next.status && current.reason === next.reason) return;
  if (current && current.status === next.status) next.lastTransitionTime = current.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== next.type), next];
}

function removeCondition(status: NonNullable<Deployment["status"]>, type: string): void {
  const rest = (status.conditions ?? []).filter((c) => c.type !== type);
  if (rest.length) status.conditions = rest;
  else delete status.conditions;
}

export function hasProgressDeadline(d: Deployment): boolean {
  const pds = d.spec.progressDeadlineSeconds;
  return pds !== undefined && pds !== null && pds !== MAX_INT32;
}

type DeploymentStatus = NonNullable<Deployment["status"]>;

/** DeploymentComplete: every replica updated and available, and the latest generation observed. */
export function deploymentComplete(d: Deployment, status: DeploymentStatus): boolean {
  const want = replicasOf(d);
  return (
    (status.updatedReplicas ?? 0) === want &&
    (status.replicas ?? 0) === want &&
    (status.availableReplicas ?? 0) === want &&
    (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

function deploymentProgressing(d: Deployment, next: DeploymentStatus): boolean {
  const old = d.status ?? {};
  const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
  const newOld = (next.replicas ?? 0) - (next.updatedReplicas ?? 0);
  return (
    (next.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (next.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
    (next.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
  );
}

function deploymentTimedOut(d: Deployment, next: DeploymentStatus, now: Date): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = condition(next, "Progressing");
  if (!c) return false;
  if (c.reason === REASONS.newReplicaSetAvailable) return false;
  if (c.reason === REASONS.timedOut) return true;
  const from = Date.parse(c.lastUpdateTime ?? "");
  if (!Number.isFinite(from)) return false;
  return from + (d.spec.progressDeadlineSeconds ?? 0) * 1000 < now.getTime();
}

// ---- the plan ----

export interface DeploymentEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export type DeploymentAction =
  | { type: "create"; replicaSet: ReplicaSet; events: DeploymentEvent[] }
  | { type: "update"; replicaSet: ReplicaSet; events: DeploymentEvent[] }
  | { type: "delete"; replicaSet: ReplicaSet; events: DeploymentEvent[] };

export interface DeploymentPlan {
  /** ReplicaSet writes, in order; stop at the first that fails and sync again. */
  actions: DeploymentAction[];
  /** The Deployment's annotations and status after the actions, when either changed. */
  deployment?: { annotations: Record<string, string> | undefined; status: DeploymentStatus };
  /** Sync again after this long even without events (the progress deadline). */
  requeueAfterMs?: number;
}

export interface DeploymentInput {
  deployment: Deployment;
  /** The ReplicaSets the Deployment controls (after adoption and release). */
  replicaSets: ReplicaSet[];
  /** Pods of those ReplicaSets, terminating ones included (Recreate waits for them). */
  pods: Pod[];
  now: Date;
}

class Planner {
  readonly d: Deployment;
  readonly rss: ReplicaSet[];
  readonly pods: Pod[];
  readonly now: Date;
  readonly actions: DeploymentAction[] = [];
  private readonly byName = new Map<string, DeploymentAction>();

  constructor(input: DeploymentInput) {
    this.d = structuredClone(input.deployment);
    this.d.status ??= {};
    this.rss = input.replicaSets.map((rs) => structuredClone(rs));
    this.pods = input.pods;
    this.now = input.now;
  }

  private get status(): DeploymentStatus {
    return this.d.status!;
  }

  private newCondition(type: string, status: DeploymentCondition["status"], reason: string, message: string) {
    const at = rfc3339(this.now);
    return { type, status, lastUpdateTime: at, lastTransitionTime: at, reason, message };
  }

  /**
   * Records a write of `rs` (the in-memory object is the desired state) with its events. A later
   * change to a ReplicaSet this plan creates folds into the create.
   */
  private write(type: "create" | "update" | "delete", rs: ReplicaSet, event?: DeploymentEvent): void {
    const name = rs.metadata.name!;
    const known = this.byName.get(name);
    const action: DeploymentAction = known ?? { type, replicaSet: rs, events: [] };
    if (!known) {
      this.byName.set(name, action);
      this.actions.push(action);
    } else if (type === "delete") {
      action.type = "delete";
    }
    if (event) action.events.push(event);
  }

  // -- annotations --

  private setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
    rs.metadata.annotations ??= {};
    const a = rs.metadata.annotations;
    let changed = false;
    if (a[DESIRED_REPLICAS_ANNOTATION] !== String(desired)) {
      a[DESIRED_REPLICAS_ANNOTATION] = String(desired);
      changed = true;
    }
    if (a[MAX_REPLICAS_ANNOTATION] !== String(max)) {
      a[MAX_REPLICAS_ANNOTATION] = String(max);
      changed = true;
    }
    return changed;
  }

  private replicasAnnotationsNeedUpdate(rs: ReplicaSet, desired: number, max: number): boolean {
    const a = rs.metadata.annotations ?? {};
    return a[DESIRED_REPLICAS_ANNOTATION] !== String(desired) || a[MAX_REPLICAS_ANNOTATION] !== String(max);
  }

  /** SetNewReplicaSetAnnotations: copy the Deployment's annotations, raise the revision, keep history. */
  private setNewReplicaSetAnnotations(rs: ReplicaSet, newRevision: number, exists: boolean): boolean {
    let changed = false;
    rs.metadata.annotations ??= {};
    const a = rs.metadata.annotations;
    for (const [k, v] of Object.entries(this.d.metadata.annotations ?? {})) {
      if (ANNOTATIONS_TO_SKIP.has(k) || a[k] === v) continue;
      a[k] = v;
      changed = true;
    }
    const oldText = a[REVISION_ANNOTATION];
    const had = oldText !== undefined;
    let old = 0;
    if (had) {
      if (!/^-?\d+$/.test(oldText)) return changed;
      old = Number(oldText);
    }
    if (old < newRevision) {
      a[REVISION_ANNOTATION] = String(newRevision);
      changed = true;
      if (had) {
        const history = a[REVISION_HISTORY_ANNOTATION] ?? "";
        if (history === "") {
          a[REVISION_HISTORY_ANNOTATION] = oldText;
        } else {
          let revisions = history.split(",");
          let total = history.length + oldText.length + 1;
          let start = 0;
          while (total > MAX_REVISION_HISTORY_CHARS && start < revisions.length) {
            total -= revisions[start].length + 1;
            start++;
          }
          if (total <= MAX_REVISION_HISTORY_CHARS) {
            revisions = [...revisions.slice(start), oldText];
            a[REVISION_HISTORY_ANNOTATION] = revisions.join(",");
          }
        }
      }
    }
    if (
      !exists &&
      this.setReplicasAnnotations(rs, replicasOf(this.d), replicasOf(this.d) + maxSurge(this.d))
    ) {
      changed = true;
    }
    return changed;
  }

  private setDeploymentRevision(revision: string): boolean {
    this.d.metadata.annotations ??= {};
    const a = this.d.metadata.annotations;
    if (a[REVISION_ANNOTATION] === revision) return false;
    a[REVISION_ANNOTATION] = revision;
    return true;
  }

  // -- scaling --

  /** scaleReplicaSet: set spec.replicas and the replicas annotations; true when the size changed. */
  private scaleReplicaSet(rs: ReplicaSet, newScale: number, operation: string): boolean {
    const desired = replicasOf(this.d);
    const max = desired + maxSurge(this.d);
    const sizeChanged = replicasOf(rs) !== newScale;
    if (!sizeChanged && !this.replicasAnnotationsNeedUpdate(rs, desired, max)) return false;
    const old = replicasOf(rs);
    rs.spec.replicas = newScale;
    this.setReplicasAnnotations(rs, desired, max);
    const event = sizeChanged
      ? {
          type: "Normal" as const,
          reason: "ScalingReplicaSet",
          message: `Scaled ${operation} replica set ${rs.metadata.name} from ${old} to ${newScale}`,
        }
      : undefined;
    this.write("update", rs, event);
    return sizeChanged;
  }

  private scaleAndRecord(rs: ReplicaSet, newScale: number): boolean {
    if (replicasOf(rs) === newScale) return false;
    return this.scaleReplicaSet(rs, newScale, replicasOf(rs) < newScale ? "up" : "down");
  }

  /** NewRSNewReplicas: how far the new ReplicaSet may grow now. */
  private newRSNewReplicas(allRSs: ReplicaSet[], newRS: ReplicaSet): number {
    if (!isRollingUpdate(this.d)) return replicasOf(this.d);
    const maxTotal = replicasOf(this.d) + maxSurge(this.d);
    const current = allRSs.reduce((n, rs) => n + podCount(rs), 0);
    if (current >= maxTotal) return replicasOf(newRS);
    const up = Math.min(maxTotal - current, replicasOf(this.d) - replicasOf(newRS));
    return replicasOf(newRS) + up;
  }

  // -- new and old ReplicaSets --

  private getAllReplicaSetsAndSyncRevision(create: boolean): { newRS?: ReplicaSet; oldRSs: ReplicaSet[] } {
    const existing = findNewReplicaSet(this.d, this.rss);
    const oldRSs = this.rss.filter((rs) => rs !== existing && !this.created.has(rs));
    const newRS = this.getNewReplicaSet(existing, oldRSs, create);
    return { newRS, oldRSs: oldRSs.filter((rs) => rs !== newRS) };
  }

  private readonly created = new Set<ReplicaSet>();

  private getNewReplicaSet(
    existing: ReplicaSet | undefined,
    oldRSs: ReplicaSet[],
    create: boolean,
  ): ReplicaSet | undefined {
    const newRevision = maxRevision(oldRSs) + 1;
    if (existing) {
      const annotationsUpdated = this.setNewReplicaSetAnnotations(existing, newRevision, true);
      const minReadyChanged = (existing.spec.minReadySeconds ?? 0) !== (this.d.spec.minReadySeconds ?? 0);
      if (annotationsUpdated || minReadyChanged) {
        existing.spec.minReadySeconds = this.d.spec.minReadySeconds ?? 0;
        this.write("update", existing);
        return existing;
      }
      this.setDeploymentRevision(existing.metadata.annotations?.[REVISION_ANNOTATION] ?? "");
      if (hasProgressDeadline(this.d) && !condition(this.status, "Progressing")) {
        setCondition(
          this.status,
          this.newCondition(
            "Progressing",
            "True",
            REASONS.foundNewReplicaSet,
            `Found new replica set "${existing.metadata.name}"`,
          ),
        );
      }
      return existing;
    }
    const newRS = this.createdRS;
    if (newRS) return newRS;
    if (!create) return undefined;
    const template = structuredClone(
      this.d.spec.template ?? ({ spec: { containers: [] } } as PodTemplateSpec),
    );
    const hash = computeHash(template, this.d.status?.collisionCount);
    template.metadata = { ...(template.metadata ?? {}) };
    template.metadata.labels = { ...(template.metadata.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
    const sel: LabelSelectorSpec = structuredClone(this.d.spec.selector ?? {});
    sel.matchLabels = { ...(sel.matchLabels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
    const rs: ReplicaSet = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name: `${this.d.metadata.name}-${hash}`,
        namespace: this.d.metadata.namespace,
        labels: { ...template.metadata.labels },
        ownerReferences: [newControllerRef(this.d, DEPLOYMENT_API_VERSION, "Deployment")],
      },
      spec: { replicas: 0, minReadySeconds: this.d.spec.minReadySeconds ?? 0, selector: sel, template },
      status: { replicas: 0 },
    };
    rs.spec.replicas = this.newRSNewReplicas([...oldRSs, rs], rs);
    this.setNewReplicaSetAnnotations(rs, newRevision, false);
    this.created.add(rs);
    this.createdRS = rs;
    this.write(
      "create",
      rs,
      replicasOf(rs) > 0
        ? {
            type: "Normal",
            reason: "ScalingReplicaSet",
            message: `Scaled up replica set ${rs.metadata.name} from 0 to ${replicasOf(rs)}`,
          }
        : undefined,
    );
    this.setDeploymentRevision(String(newRevision));
    if (hasProgressDeadline(this.d)) {
      setCondition(
        this.status,
        this.newCondition(
          "Progressing",
          "True",
          REASONS.newReplicaSetCreated,
          `Created new replica set "${rs.metadata.name}"`,
        ),
      );
    }
    return rs;
  }

  private createdRS?: ReplicaSet;

  // -- status --

  private calculateStatus(
    allRSs: (ReplicaSet | undefined)[],
    newRS: ReplicaSet | undefined,
  ): DeploymentStatus {
    const available = statusTotal(allRSs, "availableReplicas");
    const total = specTotal(allRSs);
    const status: DeploymentStatus = {};
    const put = (k: keyof DeploymentStatus, v: number | undefined) => {
      if (v) (status as Record<string, unknown>)[k] = v;
    };
    put("observedGeneration", this.d.metadata.generation);
    put("replicas", statusTotal(allRSs, "replicas"));
    put("updatedReplicas", statusTotal([newRS], "replicas"));
    put("readyReplicas", statusTotal(allRSs, "readyReplicas"));
    put("availableReplicas", available);
    put("unavailableReplicas", Math.max(0, total - available));
    if (this.status.collisionCount !== undefined) status.collisionCount = this.status.collisionCount;
    if (this.status.conditions?.length) status.conditions = this.status.conditions.map((c) => ({ ...c }));
    if (available >= replicasOf(this.d) - maxUnavailable(this.d)) {
      setCondition(
        status,
        this.newCondition(
          "Available",
          "True",
          REASONS.minimumReplicasAvailable,
          "Deployment has minimum availability.",
        ),
      );
    } else {
      setCondition(
        status,
        this.newCondition(
          "Available",
          "False",
          REASONS.minimumReplicasUnavailable,
          "Deployment does not have minimum availability.",
        ),
      );
    }
    return status;
  }

  /** syncDeploymentStatus: the counts and Available condition only. */
  private syncDeploymentStatus(allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet | undefined): void {
    this.d.status = this.calculateStatus(allRSs, newRS);
  }

  /** syncRolloutStatus: counts plus the Progressing condition (progress, completion, deadline). */
  private syncRolloutStatus(allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet | undefined): void {
    const next = this.calculateStatus(allRSs, newRS);
    if (!hasProgressDeadline(this.d)) removeCondition(next, "Progressing");
    const current = condition(this.status, "Progressing");
    const complete =
      (next.replicas ?? 0) === (next.updatedReplicas ?? 0) &&
      current?.reason === REASONS.newReplicaSetAvailable;
    if (hasProgressDeadline(this.d) && !complete) {
      const rsName = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${this.d.metadata.name}"`;
      if (deploymentComplete(this.d, next)) {
        setCondition(
          next,
          this.newCondition(
            "Progressing",
            "True",
            REASONS.newReplicaSetAvailable,
            `${rsName} has successfully progressed.`,
          ),
        );
      } else if (deploymentProgressing(this.d, next)) {
        const c = this.newCondition(
          "Progressing",
          "True",
          REASONS.replicaSetUpdated,
          `${rsName} is progressing.`,
        );
        if (current) {
          if (current.status === "True") c.lastTransitionTime = current.lastTransitionTime!;
          removeCondition(next, "Progressing");
        }
        setCondition(next, c);
      } else if (deploymentTimedOut(this.d, next, this.now)) {
        setCondition(
          next,
          this.newCondition("Progressing", "False", REASONS.timedOut, `${rsName} has timed out progressing.`),
        );
      }
    }
    this.d.status = next;
  }

  /** requeueStuckDeployment: when to look again for the progress deadline. */
  requeueAfter(): number | undefined {
    const c = condition(this.status, "Progressing");
    if (!hasProgressDeadline(this.d) || !c) return undefined;
    if (deploymentComplete(this.d, this.status) || c.reason === REASONS.timedOut) return undefined;
    const from = Date.parse(c.lastUpdateTime ?? "");
    if (!Number.isFinite(from)) return undefined;
    const after = from + (this.d.spec.progressDeadlineSeconds ?? 0) * 1000 - this.now.getTime();
    return after < 1000 ? 1000 : after + 1000;
  }

  // -- the sync paths --

  checkPausedConditions(): void {
    if (!hasProgressDeadline(this.d)) return;
    const c = condition(this.status, "Progressing");
    if (c?.reason === REASONS.timedOut) return;
    const pausedCond = c?.reason === REASONS.paused;
    if (this.d.spec.paused && !pausedCond) {
      setCondition(
        this.status,
        this.newCondition("Progressing", "Unknown", REASONS.paused, "Deployment is paused"),
      );
    } else if (!this.d.spec.paused && pausedCond) {
      setCondition(
        this.status,
        this.newCondition("Progressing", "Unknown", REASONS.resumed, "Deployment is resumed"),
      );
    }
  }

  syncStatusOnly(): void {
    const { newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(false);
    this.syncDeploymentStatus([...oldRSs, newRS], newRS);
  }

  isScalingEvent(): boolean {
    const { newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(false);
    for (const rs of activeReplicaSets([...oldRSs, newRS])) {
      const desired = rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION];
      if (desired === undefined || !/^-?\d+$/.test(desired)) continue;
      if (Number(desired) !== replicasOf(this.d)) return true;
    }
    return false;
  }

  /** sync: scale without rolling out (paused Deployments and scaling events). */
  sync(): void {
    const { newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(false);
    this.scale(newRS, oldRSs);
    if (this.d.spec.paused) this.cleanupDeployment(oldRSs);
    this.syncDeploymentStatus([...oldRSs, newRS], newRS);
  }

  /** scale: one active ReplicaSet takes the whole size; several share a change in proportion. */
  private scale(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): void {
    const want = replicasOf(this.d);
    const activeOrLatest = findActiveOrLatest(newRS, oldRSs);
    if (activeOrLatest) {
      if (replicasOf(activeOrLatest) !== want) this.scaleAndRecord(activeOrLatest, want);
      return;
    }
    if (newRS && this.isSaturated(newRS)) {
      for (const old of activeReplicaSets(oldRSs)) this.scaleAndRecord(old, 0);
      return;
    }
    if (!isRollingUpdate(this.d)) return;
    const all = activeReplicaSets([...oldRSs, newRS]);
    const allReplicas = specTotal(all);
    const allowed = want > 0 ? want + maxSurge(this.d) : 0;
    const toAdd = allowed - allReplicas;
    if (toAdd > 0) all.sort((a, b) => replicasOf(b) - replicasOf(a) || -byCreation(a, b));
    else if (toAdd < 0) all.sort((a, b) => replicasOf(b) - replicasOf(a) || byCreation(a, b));
    let added = 0;
    const sizes = new Map<ReplicaSet, number>();
    for (const rs of all) {
      if (toAdd !== 0) {
        const p = this.proportion(rs, toAdd, added);
        sizes.set(rs, replicasOf(rs) + p);
        added += p;
      } else {
        sizes.set(rs, replicasOf(rs));
      }
    }
    all.forEach((rs, i) => {
      if (i === 0 && toAdd !== 0) sizes.set(rs, Math.max(0, sizes.get(rs)! + toAdd - added));
      this.scaleReplicaSet(rs, sizes.get(rs)!, toAdd > 0 ? "up" : "down");
    });
  }

  private isSaturated(rs: ReplicaSet): boolean {
    const want = replicasOf(this.d);
    const desired = rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION];
    return (
      replicasOf(rs) === want && desired === String(want) && (rs.status?.availableReplicas ?? 0) === want
    );
  }

  /** GetProportion / getReplicaSetFraction. */
  private proportion(rs: ReplicaSet, toAdd: number, added: number): number {
    if (replicasOf(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
    let fraction: number;
    if (replicasOf(this.d) === 0) {
      fraction = -replicasOf(rs);
    } else {
      const deploymentReplicas = replicasOf(this.d) + maxSurge(this.d);
      const text = rs.metadata.annotations?.[MAX_REPLICAS_ANNOTATION];
      const annotated =
        text !== undefined && /^\d+$/.test(text) ? Number(text) : (this.d.status?.replicas ?? 0);
      fraction = annotated
        ? Math.round((replicasOf(rs) * deploymentReplicas) / annotated) - replicasOf(rs)
        : 0;
    }
    const allowed = toAdd - added;
    return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
  }

  rolloutRolling(): void {
    const { newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(true);
    const allRSs = [...oldRSs, newRS];
    if (newRS && this.reconcileNewReplicaSet(allRSs as ReplicaSet[], newRS)) {
      this.syncRolloutStatus(allRSs, newRS);
      return;
    }
    if (newRS && this.reconcileOldReplicaSets(allRSs as ReplicaSet[], activeReplicaSets(oldRSs), newRS)) {
      this.syncRolloutStatus(allRSs, newRS);
      return;
    }
    if (deploymentComplete(this.d, this.status)) this.cleanupDeployment(oldRSs);
    this.syncRolloutStatus(allRSs, newRS);
  }

  private reconcileNewReplicaSet(allRSs: ReplicaSet[], newRS: ReplicaSet): boolean {
    const want = replicasOf(this.d);
    if (replicasOf(newRS) === want) return false;
    if (replicasOf(newRS) > want) return this.scaleAndRecord(newRS, want);
    return this.scaleAndRecord(newRS, this.newRSNewReplicas(allRSs, newRS));
  }

  private reconcileOldReplicaSets(allRSs: ReplicaSet[], oldRSs: ReplicaSet[], newRS: ReplicaSet): boolean {
    if (specTotal(oldRSs) === 0) return false;
    const allPods = specTotal(allRSs);
    const minAvailable = replicasOf(this.d) - maxUnavailable(this.d);
    const newUnavailable = replicasOf(newRS) - keptAvailable(newRS);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    const cleaned = this.cleanupUnhealthyReplicas(oldRSs, maxScaledDown);
    const scaled = this.scaleDownOldForRollingUpdate([...oldRSs, newRS], oldRSs);
    return cleaned + scaled > 0;
  }

  /** Old ReplicaSets lose their unavailable pods first, oldest first. */
  private cleanupUnhealthyReplicas(oldRSs: ReplicaSet[], maxCleanup: number): number {
    let total = 0;
    for (const rs of [...oldRSs].sort(byCreation)) {
      if (total >= maxCleanup) break;
      const size = replicasOf(rs);
      if (size === 0) continue;
      const unhealthy = size - keptAvailable(rs);
      if (unhealthy <= 0) continue;
      const down = Math.min(maxCleanup - total, unhealthy);
      this.scaleAndRecord(rs, size - down);
      total += down;
    }
    return total;
  }

  /** Then available old pods go, as long as minAvailable stays available. */
  private scaleDownOldForRollingUpdate(allRSs: ReplicaSet[], oldRSs: ReplicaSet[]): number {
    const minAvailable = replicasOf(this.d) - maxUnavailable(this.d);
    const available = allRSs.reduce((n, rs) => n + keptAvailable(rs), 0);
    if (available <= minAvailable) return 0;
    const want = available - minAvailable;
    let total = 0;
    for (const rs of [...oldRSs].sort(byCreation)) {
      if (total >= want) break;
      if (replicasOf(rs) === 0) continue;
      const down = Math.min(replicasOf(rs), want - total);
      this.scaleAndRecord(rs, replicasOf(rs) - down);
      total += down;
    }
    return total;
  }

  rolloutRecreate(): void {
    let { newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(false);
    let allRSs: (ReplicaSet | undefined)[] = [...oldRSs, newRS];
    let scaledDown = false;
    for (const rs of activeReplicaSets(oldRSs)) if (this.scaleAndRecord(rs, 0)) scaledDown = true;
    if (scaledDown || this.oldPodsRunning(newRS, oldRSs)) {
      this.syncRolloutStatus(allRSs, newRS);
      return;
    }
    if (!newRS) {
      ({ newRS, oldRSs } = this.getAllReplicaSetsAndSyncRevision(true));
      allRSs = [...oldRSs, newRS];
    }
    if (newRS) this.scaleAndRecord(newRS, replicasOf(this.d));
    if (deploymentComplete(this.d, this.status)) this.cleanupDeployment(oldRSs);
    this.syncRolloutStatus(allRSs, newRS);
  }

  /** oldPodsRunning: old ReplicaSets still report pods, or pods of theirs have not finished. */
  private oldPodsRunning(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): boolean {
    if (statusTotal(oldRSs, "replicas") > 0) return true;
    const owners = new Set(this.rss.map((rs) => rs.metadata.uid));
    for (const pod of this.pods) {
      const ref = controllerRefOf(pod);
      if (!ref || !owners.has(ref.uid) || (newRS && ref.uid === newRS.metadata.uid)) continue;
      const phase = pod.status?.phase;
      if (phase === "Failed" || phase === "Succeeded") continue;
      return true;
    }
    return false;
  }

  /** cleanupDeployment: delete the oldest idle ReplicaSets beyond revisionHistoryLimit. */
  private cleanupDeployment(oldRSs: ReplicaSet[]): void {
    const limit = this.d.spec.revisionHistoryLimit;
    if (limit === undefined || limit === null) return;
    const cleanable = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp);
    const diff = cleanable.length - limit;
    if (diff <= 0) return;
    const sorted = [...cleanable].sort(byRevision);
    for (let i = 0; i < diff; i++) {
      const rs = sorted[i];
      if (
        (rs.status?.replicas ?? 0) !== 0 ||
        replicasOf(rs) !== 0 ||
        (rs.metadata.generation ?? 0) > (rs.status?.observedGeneration ?? 0)
      ) {
        continue;
      }
      this.write("delete", rs);
    }
  }

  result(original: Deployment): DeploymentPlan {
    const plan: DeploymentPlan = { actions: this.actions };
    const annotations = this.d.metadata.annotations;
    const sameAnnotations = semanticEqual(annotations ?? {}, original.metadata.annotations ?? {});
    // Semantic comparison: key order and omitted zeros must never cause a write (and a sync loop).
    if (!sameAnnotations || !semanticEqual(this.d.status, original.status ?? {})) {
      plan.deployment = { annotations, status: this.d.status! };
    }
    const after = this.requeueAfter();
    if (after !== undefined) plan.requeueAfterMs = after;
    return plan;
  }
}

/** FindActiveOrLatest: the only active ReplicaSet, or the newest when none is active. */
function findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): ReplicaSet | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const sortedOld = [...oldRSs].sort((a, b) => -byCreation(a, b));
  const active = activeReplicaSets([...sortedOld, newRS]);
  if (active.length === 0) return newRS ?? sortedOld[0];
  if (active.length === 1) return active[0];
  return undefined;
}

/** syncDeployment: what the controller should write for this Deployment now. */
export function planDeployment(input: DeploymentInput): DeploymentPlan {
  const p = new Planner(input);
  if (p.d.metadata.deletionTimestamp) {
    p.syncStatusOnly();
    return p.result(input.deployment);
  }
  p.checkPausedConditions();
  if (p.d.spec.paused) {
    p.sync();
  } else if (p.isScalingEvent()) {
    p.sync();
  } else if (p.d.spec.strategy?.type === "Recreate") {
    p.rolloutRecreate();
  } else {
    p.rolloutRolling();
  }
  return p.result(input.deployment);
}
