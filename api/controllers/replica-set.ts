// The ReplicaSet controller: keeps each ReplicaSet's number of active pods at spec.replicas,
// creating pods from its template (in slow-start batches) and deleting the surplus in upstream's
// order, adopts matching orphans and releases pods that stopped matching, and reports the counts
// (ready, available after minReadySeconds) in its status. Expectations keep a burst of events from
// creating the same pods twice. Decisions come from emulator/replica-set.ts.

import { rfc3339 } from "../../emulator/duration.ts";
import { Expectations } from "../../emulator/expectations.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import { parseSelectorSpec } from "../../emulator/kinds/pod-template.ts";
import { matchesLabels } from "../../emulator/label-selector.ts";
import {
  BURST_REPLICAS,
  claimObjects,
  controllerRefOf,
  isPodActive,
  newControllerRef,
  nextAvailabilityAt,
  podFromTemplate,
  podsToDelete,
  REPLICA_SET_API_VERSION,
  replicaSetStatus,
  slowStartBatches,
} from "../../emulator/replica-set.ts";
import type { OwnerReference, Pod, ReplicaSet } from "../../emulator/types.ts";
import { semanticEqual } from "../../emulator/validation.ts";
import { ApiError, conflictModified, errors } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer, objectKey } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

const RESYNC_MS = 15_000;

function isApiError(e: unknown, ...codes: number[]): e is ApiError {
  return e instanceof ApiError && codes.includes(e.code);
}

function sameLabels(a: Pod, b: Pod): boolean {
  return semanticEqual(a.metadata.labels ?? {}, b.metadata.labels ?? {});
}

function sameRef(a: OwnerReference | undefined, b: OwnerReference | undefined): boolean {
  return a?.uid === b?.uid;
}

export class ReplicaSetController {
  private readonly replicaSets: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  /** Pods by namespace, so a sync never scans other namespaces. */
  private readonly podsByNamespace = new Map<string, Map<string, Pod>>();
  private readonly queue: WorkQueue;
  private readonly expectations = new Expectations();
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly rsSpec: KindSpec;
  private readonly podSpec: KindSpec;
  private resync?: NodeJS.Timeout;

  constructor(resources: Resources, registry: Registry, recorder: EventRecorder) {
    this.resources = resources;
    this.recorder = recorder;
    this.rsSpec = registry.find("apps", "v1", "replicasets")!;
    this.podSpec = registry.find("", "v1", "pods")!;
    this.replicaSets = new Informer<ReplicaSet>(resources, this.rsSpec);
    this.pods = new Informer<Pod>(resources, this.podSpec);
    this.queue = new WorkQueue((key) => this.sync(key), {
      onError: (key, e) => console.error(`kemu replicaset controller: ${key}:`, (e as Error).message),
    });
    this.replicaSets.on((type, rs) => {
      if (type === "DELETED") this.expectations.delete(objectKey(rs));
      this.queue.add(objectKey(rs));
    });
    this.pods.on((type, pod, old) => {
      this.index(type, pod);
      if (type === "DELETED") this.podDeleted(pod);
      else if (type === "ADDED" || !old) this.podAdded(pod);
      else this.podUpdated(pod, old);
    });
  }

  async start(): Promise<void> {
    await this.replicaSets.start();
    await this.pods.start();
    this.resync = setInterval(() => {
      for (const rs of this.replicaSets.list()) this.queue.add(objectKey(rs));
    }, RESYNC_MS);
    this.resync.unref();
  }

  stop(): void {
    clearInterval(this.resync);
    this.queue.stop();
    this.replicaSets.stop();
    this.pods.stop();
  }

  /** Resolves when no sync is queued or running; for tests. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private index(type: string, pod: Pod): void {
    const ns = pod.metadata.namespace!;
    let m = this.podsByNamespace.get(ns);
    if (type === "DELETED") {
      m?.delete(pod.metadata.name!);
      if (m?.size === 0) this.podsByNamespace.delete(ns);
      return;
    }
    if (!m) {
      m = new Map();
      this.podsByNamespace.set(ns, m);
    }
    m.set(pod.metadata.name!, pod);
  }

  /** resolveControllerRef: the ReplicaSet a controller reference names, if it is the same object. */
  private ownerOf(namespace: string, ref: OwnerReference | undefined): ReplicaSet | undefined {
    if (ref?.kind !== "ReplicaSet") return undefined;
    const rs = this.replicaSets.get(namespace, ref.name);
    return rs && rs.metadata.uid === ref.uid ? rs : undefined;
  }

  /** ReplicaSets in the pod's namespace that select it (for orphans). */
  private selecting(pod: Pod): ReplicaSet[] {
    return this.replicaSets.list().filter((rs) => {
      if (rs.metadata.namespace !== pod.metadata.namespace) return false;
      const sel = parseSelectorSpec(rs.spec?.selector);
      return !!sel && matchesLabels(sel, pod.metadata.labels);
    });
  }

  private podAdded(pod: Pod): void {
    if (pod.metadata.deletionTimestamp) {
      this.podDeleted(pod);
      return;
    }
    const ref = controllerRefOf(pod);
    if (ref) {
      const rs = this.ownerOf(pod.metadata.namespace!, ref);
      if (!rs) return;
      const key = objectKey(rs);
      this.expectations.creationObserved(key);
      this.queue.add(key);
      return;
    }
    for (const rs of this.selecting(pod)) this.queue.add(objectKey(rs));
  }

  private podUpdated(pod: Pod, old: Pod): void {
    if (pod.metadata.resourceVersion === old.metadata.resourceVersion) return;
    const labelsChanged = !sameLabels(pod, old);
    const ref = controllerRefOf(pod);
    const oldRef = controllerRefOf(old);
    const refChanged = !sameRef(ref, oldRef);
    if (refChanged && oldRef) {
      const oldRs = this.ownerOf(old.metadata.namespace!, oldRef);
      if (oldRs) this.queue.add(objectKey(oldRs));
    }
    if (pod.metadata.deletionTimestamp) {
      // A graceful deletion: the pod no longer counts, and our requested deletion is observed.
      this.podDeleted(pod);
      return;
    }
    if (ref) {
      const rs = this.ownerOf(pod.metadata.namespace!, ref);
      if (rs) this.queue.add(objectKey(rs));
      return;
    }
    if (labelsChanged || refChanged) for (const rs of this.selecting(pod)) this.queue.add(objectKey(rs));
  }

  private podDeleted(pod: Pod): void {
    const rs = this.ownerOf(pod.metadata.namespace!, controllerRefOf(pod));
    if (!rs) return;
    const key = objectKey(rs);
    this.expectations.deletionObserved(key, objectKey(pod));
    this.queue.add(key);
  }

  private podsIn(namespace: string): Pod[] {
    return [...(this.podsByNamespace.get(namespace)?.values() ?? [])];
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split("/");
    const rs = this.replicaSets.get(namespace, name);
    if (!rs) {
      this.expectations.delete(key);
      return;
    }
    const selector = parseSelectorSpec(rs.spec?.selector);
    if (!selector) return;
    const needsSync = this.expectations.satisfied(key);
    const active = this.podsIn(namespace).filter(isPodActive);
    const claim = claimObjects(rs, selector, active);
    const owned = [...claim.owned];
    try {
      owned.push(...(await this.adoptAndRelease(rs, claim.adopt, claim.release)));
    } catch (e) {
      if (isApiError(e, 404, 409)) return;
      throw e;
    }
    let failure: { reason: string; message: string; at: string } | undefined;
    let failed: unknown;
    if (needsSync && !rs.metadata.deletionTimestamp) {
      try {
        await this.manageReplicas(rs, key, owned);
      } catch (e) {
        failed = e;
        failure = {
          reason: owned.length < (rs.spec.replicas ?? 0) ? "FailedCreate" : "FailedDelete",
          message: (e as Error).message,
          at: rfc3339(new Date()),
        };
      }
    }
    // The cache already holds our own writes (watches deliver them before the write returns).
    const now = new Date();
    const current = this.podsIn(namespace).filter(
      (p) =>
        isPodActive(p) &&
        controllerRefOf(p)?.uid === rs.metadata.uid &&
        matchesLabels(selector, p.metadata.labels),
    );
    try {
      await this.writeStatus(rs, replicaSetStatus(rs, current, now, failure));
    } catch (e) {
      if (!isApiError(e, 404, 409)) throw e;
    }
    if (failed) throw failed;
    const at = nextAvailabilityAt(current, rs.spec.minReadySeconds ?? 0, now);
    if (at !== undefined) this.queue.add(key, Math.max(1, at - now.getTime() + 10));
  }

  /** Adopts matching orphans (after re-reading that the ReplicaSet is live) and releases strays. */
  private async adoptAndRelease(rs: ReplicaSet, adopt: Pod[], release: Pod[]): Promise<Pod[]> {
    const adopted: Pod[] = [];
    if (adopt.length) {
      // RecheckDeletionTimestamp: never adopt on behalf of a ReplicaSet that is going away.
      const fresh = await this.resources.find(this.rsSpec, rs.metadata.namespace, rs.metadata.name!);
      if (fresh && fresh.metadata.uid === rs.metadata.uid && !fresh.metadata.deletionTimestamp) {
        const ref = newControllerRef(rs, REPLICA_SET_API_VERSION, "ReplicaSet");
        for (const pod of adopt) {
          const updated = await this.editPod(pod, (p) => {
            if (controllerRefOf(p)) throw errors.conflict("pods", "", p.metadata.name!, conflictModified);
            p.metadata.ownerReferences = [...(p.metadata.ownerReferences ?? []), ref];
          });
          if (updated) adopted.push(updated);
        }
      }
    }
    for (const pod of release) {
      await this.editPod(pod, (p) => {
        p.metadata.ownerReferences = (p.metadata.ownerReferences ?? []).filter(
          (r) => r.uid !== rs.metadata.uid,
        );
        if (p.metadata.ownerReferences.length === 0) delete p.metadata.ownerReferences;
      });
    }
    return adopted;
  }

  /** A read-modify-write of one pod, refused if it was replaced meanwhile; undefined when gone. */
  private async editPod(pod: Pod, change: (p: Pod) => void): Promise<Pod | undefined> {
    try {
      return (await this.resources.mutate(this.podSpec, pod.metadata.namespace, pod.metadata.name!, (p) => {
        if (p.metadata.uid !== pod.metadata.uid) throw errors.notFound("pods", "", pod.metadata.name!);
        change(p as Pod);
        return p;
      })) as Pod;
    } catch (e) {
      if (isApiError(e, 404)) return undefined;
      throw e;
    }
  }

  private async manageReplicas(rs: ReplicaSet, key: string, owned: Pod[]): Promise<void> {
    const diff = owned.length - (rs.spec.replicas ?? 0);
    if (diff < 0) {
      const count = Math.min(-diff, BURST_REPLICAS);
      this.expectations.expectCreations(key, count);
      let created = 0;
      let error: unknown;
      for (const batch of slowStartBatches(count)) {
        const results = await Promise.allSettled(Array.from({ length: batch }, () => this.createPod(rs)));
        for (const r of results) {
          if (r.status === "fulfilled") created++;
          else error ??= r.reason;
        }
        if (error) break;
      }
      // Creations that failed or never started will not be observed.
      for (let i = created; i < count; i++) this.expectations.creationObserved(key);
      // A terminating namespace refuses every creation; that is not the ReplicaSet's failure.
      if (error && !isApiError(error, 403)) throw error;
    } else if (diff > 0) {
      const count = Math.min(diff, BURST_REPLICAS);
      const victims = podsToDelete(owned, this.relatedPods(rs), count, new Date());
      this.expectations.expectDeletions(key, victims.map(objectKey));
      const errs: unknown[] = [];
      await Promise.all(
        victims.map(async (pod) => {
          try {
            await this.resources.delete(this.podSpec, pod.metadata.namespace, pod.metadata.name!, {
              preconditions: { uid: pod.metadata.uid },
            });
            this.recorder.record(rs, "Normal", "SuccessfulDelete", `Deleted pod: ${pod.metadata.name}`);
          } catch (e) {
            this.expectations.deletionObserved(key, objectKey(pod));
            if (isApiError(e, 404, 409)) return;
            this.recorder.record(rs, "Warning", "FailedDelete", `Error deleting: ${(e as Error).message}`);
            errs.push(e);
          }
        }),
      );
      if (errs.length) throw errs[0];
    }
  }

  private async createPod(rs: ReplicaSet): Promise<void> {
    try {
      const pod = await this.resources.create(this.podSpec, rs.metadata.namespace, podFromTemplate(rs));
      this.recorder.record(rs, "Normal", "SuccessfulCreate", `Created pod: ${pod.metadata.name}`);
    } catch (e) {
      if (!isApiError(e, 403))
        this.recorder.record(rs, "Warning", "FailedCreate", `Error creating: ${(e as Error).message}`);
      throw e;
    }
  }

  /** getIndirectlyRelatedPods: active pods of every ReplicaSet with the same controller as `rs`. */
  private relatedPods(rs: ReplicaSet): Pod[] {
    const owner = controllerRefOf(rs)?.uid;
    const siblings = new Set(
      this.replicaSets
        .list()
        .filter(
          (o) =>
            o.metadata.namespace === rs.metadata.namespace &&
            (o.metadata.uid === rs.metadata.uid ||
              (owner !== undefined && controllerRefOf(o)?.uid === owner)),
        )
        .map((o) => o.metadata.uid),
    );
    return this.podsIn(rs.metadata.namespace!).filter(
      (p) => isPodActive(p) && siblings.has(controllerRefOf(p)?.uid ?? ""),
    );
  }

  /** Writes the status when it changed, for the generation it was computed from. */
  private async writeStatus(rs: ReplicaSet, status: NonNullable<ReplicaSet["status"]>): Promise<void> {
    if (semanticEqual(rs.status ?? {}, status) && rs.status?.observedGeneration === rs.metadata.generation)
      return;
    await this.resources.mutate(this.rsSpec, rs.metadata.namespace, rs.metadata.name!, (cur) => {
      if (cur.metadata.uid !== rs.metadata.uid)
        throw errors.notFound("replicasets", "apps", rs.metadata.name!);
      // A newer spec gets its own sync; this status would claim to have observed it.
      if (cur.metadata.generation !== rs.metadata.generation)
        throw errors.conflict("replicasets", "apps", rs.metadata.name!, conflictModified);
      cur.status = status;
      return cur;
    });
  }
}
