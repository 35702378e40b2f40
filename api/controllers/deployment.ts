// The Deployment controller: claims the ReplicaSets a Deployment selects, asks
// emulator/deployment.ts what to do (create the new ReplicaSet, scale old and new within
// maxSurge/maxUnavailable, Recreate, clean up history, sync revisions and status) and performs it.
// Every write is made against the version the plan was computed from; a conflict just means a
// newer event is already queued, so the sync stops and the next one recomputes from scratch.

import {
  DEPLOYMENT_API_VERSION,
  type DeploymentAction,
  equalIgnoreHash,
  planDeployment,
  REVISION_ANNOTATION,
} from "../../emulator/deployment.ts";
import { rfc3339 } from "../../emulator/duration.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import { parseSelectorSpec } from "../../emulator/kinds/pod-template.ts";
import { isEmpty, matchesLabels } from "../../emulator/label-selector.ts";
import { claimObjects, controllerRefOf, newControllerRef } from "../../emulator/replica-set.ts";
import type { Deployment, OwnerReference, Pod, ReplicaSet } from "../../emulator/types.ts";
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

/** Stops a sync quietly: the state moved on and an event for it is already queued. */
class Superseded extends Error {}

export class DeploymentController {
  private readonly deployments: Informer<Deployment>;
  private readonly replicaSets: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  /** Pods by the uid of the ReplicaSet controlling them (Recreate waits for old ones to finish). */
  private readonly podsByOwner = new Map<string, Map<string, Pod>>();
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly deploymentSpec: KindSpec;
  private readonly rsSpec: KindSpec;
  private resync?: NodeJS.Timeout;

  constructor(resources: Resources, registry: Registry, recorder: EventRecorder) {
    this.resources = resources;
    this.recorder = recorder;
    this.deploymentSpec = registry.find("apps", "v1", "deployments")!;
    this.rsSpec = registry.find("apps", "v1", "replicasets")!;
    this.deployments = new Informer<Deployment>(resources, this.deploymentSpec);
    this.replicaSets = new Informer<ReplicaSet>(resources, this.rsSpec);
    this.pods = new Informer<Pod>(resources, registry.find("", "v1", "pods")!);
    this.queue = new WorkQueue((key) => this.sync(key), {
      onError: (key, e) => console.error(`kemu deployment controller: ${key}:`, (e as Error).message),
    });
    this.deployments.on((_t, d) => this.queue.add(objectKey(d)));
    this.replicaSets.on((type, rs, old) => this.replicaSetChanged(type, rs, old));
    this.pods.on((type, pod, old) => {
      const ref = controllerRefOf(pod);
      const oldRef = old ? controllerRefOf(old) : undefined;
      if (oldRef && oldRef.uid !== ref?.uid) this.podsByOwner.get(oldRef.uid)?.delete(pod.metadata.name!);
      if (!ref) return;
      let m = this.podsByOwner.get(ref.uid);
      if (type === "DELETED") {
        m?.delete(pod.metadata.name!);
        if (m?.size === 0) this.podsByOwner.delete(ref.uid);
        // Recreate waits for the last old pod to go.
        const d = this.ownerOfReplicaSet(pod.metadata.namespace!, ref);
        if (d?.spec?.strategy?.type === "Recreate") this.queue.add(objectKey(d));
        return;
      }
      if (!m) {
        m = new Map();
        this.podsByOwner.set(ref.uid, m);
      }
      m.set(pod.metadata.name!, pod);
    });
  }

  async start(): Promise<void> {
    await this.replicaSets.start();
    await this.pods.start();
    await this.deployments.start();
    this.resync = setInterval(() => {
      for (const d of this.deployments.list()) this.queue.add(objectKey(d));
    }, RESYNC_MS);
    this.resync.unref();
  }

  stop(): void {
    clearInterval(this.resync);
    this.queue.stop();
    this.deployments.stop();
    this.replicaSets.stop();
    this.pods.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private ownerOf(namespace: string, ref: OwnerReference | undefined): Deployment | undefined {
    if (ref?.kind !== "Deployment") return undefined;
    const d = this.deployments.get(namespace, ref.name);
    return d && d.metadata.uid === ref.uid ? d : undefined;
  }

  /** The Deployment controlling the ReplicaSet that a pod's controller reference names. */
  private ownerOfReplicaSet(namespace: string, podRef: OwnerReference): Deployment | undefined {
    if (podRef.kind !== "ReplicaSet") return undefined;
    const rs = this.replicaSets.get(namespace, podRef.name);
    if (!rs || rs.metadata.uid !== podRef.uid) return undefined;
    return this.ownerOf(namespace, controllerRefOf(rs));
  }

  private selecting(rs: ReplicaSet): Deployment[] {
    return this.deployments.list().filter((d) => {
      if (d.metadata.namespace !== rs.metadata.namespace) return false;
      const sel = parseSelectorSpec(d.spec?.selector);
      return !!sel && !isEmpty(sel) && matchesLabels(sel, rs.metadata.labels);
    });
  }

  private replicaSetChanged(type: string, rs: ReplicaSet, old?: ReplicaSet): void {
    const ns = rs.metadata.namespace!;
    const ref = controllerRefOf(rs);
    const oldRef = old ? controllerRefOf(old) : undefined;
    if (oldRef && oldRef.uid !== ref?.uid) {
      const prev = this.ownerOf(ns, oldRef);
      if (prev) this.queue.add(objectKey(prev));
    }
    if (ref) {
      const d = this.ownerOf(ns, ref);
      if (d) this.queue.add(objectKey(d));
      return;
    }
    if (type === "DELETED") return;
    const labelsChanged = !old || !semanticEqual(old.metadata.labels ?? {}, rs.metadata.labels ?? {});
    if (labelsChanged || oldRef) for (const d of this.selecting(rs)) this.queue.add(objectKey(d));
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split("/");
    const d = this.deployments.get(namespace, name);
    if (!d) return;
    const selector = parseSelectorSpec(d.spec?.selector);
    if (!selector || isEmpty(selector)) return; // validation never lets one in
    try {
      const all = this.replicaSets.list().filter((rs) => rs.metadata.namespace === namespace);
      const claim = claimObjects(d, selector, all);
      const owned = [...claim.owned, ...(await this.adoptAndRelease(d, claim.adopt, claim.release))];
      const pods = owned.flatMap((rs) => [...(this.podsByOwner.get(rs.metadata.uid!)?.values() ?? [])]);
      const plan = planDeployment({ deployment: d, replicaSets: owned, pods, now: new Date() });
      for (const action of plan.actions) await this.perform(d, action);
      if (plan.deployment) await this.writeDeployment(d, plan.deployment.annotations, plan.deployment.status);
      if (plan.requeueAfterMs !== undefined) this.queue.add(key, plan.requeueAfterMs);
    } catch (e) {
      if (e instanceof Superseded || isApiError(e, 404, 409)) return;
      throw e;
    }
  }

  private async adoptAndRelease(
    d: Deployment,
    adopt: ReplicaSet[],
    release: ReplicaSet[],
  ): Promise<ReplicaSet[]> {
    const adopted: ReplicaSet[] = [];
    if (adopt.length) {
      const fresh = await this.resources.find(this.deploymentSpec, d.metadata.namespace, d.metadata.name!);
      if (fresh && fresh.metadata.uid === d.metadata.uid && !fresh.metadata.deletionTimestamp) {
        const ref = newControllerRef(d, DEPLOYMENT_API_VERSION, "Deployment");
        for (const rs of adopt) {
          const updated = await this.editReplicaSet(rs, (r) => {
            if (controllerRefOf(r)) throw new Superseded();
            r.metadata.ownerReferences = [...(r.metadata.ownerReferences ?? []), ref];
          });
          if (updated) adopted.push(updated);
        }
      }
    }
    for (const rs of release) {
      await this.editReplicaSet(rs, (r) => {
        r.metadata.ownerReferences = (r.metadata.ownerReferences ?? []).filter(
          (o) => o.uid !== d.metadata.uid,
        );
        if (r.metadata.ownerReferences.length === 0) delete r.metadata.ownerReferences;
      });
    }
    return adopted;
  }

  private async editReplicaSet(
    rs: ReplicaSet,
    change: (r: ReplicaSet) => void,
  ): Promise<ReplicaSet | undefined> {
    try {
      return (await this.resources.mutate(this.rsSpec, rs.metadata.namespace, rs.metadata.name!, (r) => {
        if (r.metadata.uid !== rs.metadata.uid) throw new Superseded();
        change(r as ReplicaSet);
        return r;
      })) as ReplicaSet;
    } catch (e) {
      if (isApiError(e, 404)) return undefined;
      throw e;
    }
  }

  private async perform(d: Deployment, action: DeploymentAction): Promise<void> {
    const rs = action.replicaSet;
    const ns = rs.metadata.namespace;
    if (action.type === "create") {
      try {
        await this.resources.create(this.rsSpec, ns, rs);
      } catch (e) {
        if (isApiError(e, 409)) await this.collision(d, rs);
        else if (!isApiError(e, 403)) await this.createFailed(d, rs, e as Error);
        throw new Superseded();
      }
    } else if (action.type === "update") {
      await this.resources.update(this.rsSpec, ns, rs.metadata.name!, rs);
    } else {
      try {
        await this.resources.delete(this.rsSpec, ns, rs.metadata.name!, {
          preconditions: { uid: rs.metadata.uid },
        });
      } catch (e) {
        if (!isApiError(e, 404, 409)) throw e;
      }
    }
    for (const ev of action.events) this.recorder.record(d, ev.type, ev.reason, ev.message);
  }

  /**
   * The new ReplicaSet's name is taken. If it is ours with our template, the cache is just behind;
   * otherwise the hash collided, and a higher status.collisionCount gives the next sync a new name.
   */
  private async collision(d: Deployment, rs: ReplicaSet): Promise<void> {
    const existing = (await this.resources.find(this.rsSpec, rs.metadata.namespace, rs.metadata.name!)) as
      | ReplicaSet
      | undefined;
    if (!existing) return;
    if (
      controllerRefOf(existing)?.uid === d.metadata.uid &&
      equalIgnoreHash(d.spec.template, existing.spec.template)
    )
      return;
    await this.resources.mutate(this.deploymentSpec, d.metadata.namespace, d.metadata.name!, (cur) => {
      if (cur.metadata.uid !== d.metadata.uid) throw new Superseded();
      cur.status = { ...cur.status, collisionCount: (cur.status?.collisionCount ?? 0) + 1 };
      return cur;
    });
  }

  private async createFailed(d: Deployment, rs: ReplicaSet, e: Error): Promise<void> {
    const msg = `Failed to create new replica set "${rs.metadata.name}": ${e.message}`;
    this.recorder.record(d, "Warning", "ReplicaSetCreateError", msg);
    await this.resources.mutate(this.deploymentSpec, d.metadata.namespace, d.metadata.name!, (cur) => {
      if (cur.metadata.uid !== d.metadata.uid) throw new Superseded();
      const now = rfc3339(new Date());
      const others = (cur.status?.conditions ?? []).filter((c: { type: string }) => c.type !== "Progressing");
      cur.status = {
        ...cur.status,
        conditions: [
          ...others,
          {
            type: "Progressing",
            status: "False",
            lastUpdateTime: now,
            lastTransitionTime: now,
            reason: "ReplicaSetCreateError",
            message: msg,
          },
        ],
      };
      return cur;
    });
    throw e;
  }

  /** The revision annotation and status, for the generation the plan saw. */
  private async writeDeployment(
    d: Deployment,
    annotations: Record<string, string> | undefined,
    status: NonNullable<Deployment["status"]>,
  ): Promise<void> {
    await this.resources.mutate(this.deploymentSpec, d.metadata.namespace, d.metadata.name!, (cur) => {
      if (cur.metadata.uid !== d.metadata.uid || cur.metadata.generation !== d.metadata.generation)
        throw errors.conflict("deployments", "apps", d.metadata.name!, conflictModified);
      const revision = annotations?.[REVISION_ANNOTATION];
      if (revision !== undefined)
        cur.metadata.annotations = { ...cur.metadata.annotations, [REVISION_ANNOTATION]: revision };
      cur.status = status;
      return cur;
    });
  }
}
