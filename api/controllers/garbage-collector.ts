// Owner-reference garbage collection across every kind: an object whose owners are all gone is
// deleted (so deleting a Deployment removes its ReplicaSets, and theirs their pods), an owner
// deleted with propagationPolicy=Foreground waits (finalizer foregroundDeletion) until its blocking
// dependents are gone, and one deleted with Orphan (finalizer orphan) first lets go of them.
// Informers keep a dependents index by owner uid; decisions come from emulator/garbage-collection.ts.
// Events are not watched: nothing owns them here, and they are the most numerous objects.

import {
  blockingDependents,
  decideDependent,
  FOREGROUND_FINALIZER,
  isDeletingDependents,
  isOrphaningDependents,
  ORPHAN_FINALIZER,
  type OwnerState,
  ownerState,
} from "../../emulator/garbage-collection.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import type { KubeObject, OwnerReference } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import { Informer } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

const RESYNC_MS = 30_000;
/** Queue keys: "dependent|<id>" checks an object's owners, "owner|<id>" an owner's finalizers. */
const DEPENDENT = "dependent|";
const OWNER = "owner|";

interface Watched {
  spec: KindSpec;
  informer: Informer;
}

function isApiError(e: unknown, ...codes: number[]): e is ApiError {
  return e instanceof ApiError && codes.includes(e.code);
}

function refsKey(obj: KubeObject | undefined): string {
  return JSON.stringify(obj?.metadata.ownerReferences ?? []);
}

export class GarbageCollector {
  private readonly watched = new Map<string, Watched>();
  /** Owner uid -> ids of the objects that name it. */
  private readonly dependents = new Map<string, Set<string>>();
  /** uid -> id of every watched object, to find owners waiting on a dependent. */
  private readonly byUid = new Map<string, string>();
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly registry: Registry;
  private resync?: NodeJS.Timeout;

  constructor(resources: Resources, registry: Registry) {
    this.resources = resources;
    this.registry = registry;
    this.queue = new WorkQueue((key) => this.process(key), {
      onError: (key, e) => console.error(`kemu garbage collector: ${key}:`, (e as Error).message),
    });
    for (const spec of registry.kinds) {
      if (spec.storage || spec.kind === "Event") continue;
      const informer = new Informer(resources, spec);
      const group = spec.group || "core";
      this.watched.set(`${group}/${spec.resource}`, { spec, informer });
      informer.on((type, obj, old) => this.changed(spec, type, obj, old));
    }
  }

  async start(): Promise<void> {
    for (const w of this.watched.values()) await w.informer.start();
    this.resyncAll();
    this.resync = setInterval(() => this.resyncAll(), RESYNC_MS);
    this.resync.unref();
  }

  stop(): void {
    clearInterval(this.resync);
    this.queue.stop();
    for (const w of this.watched.values()) w.informer.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private idOf(spec: KindSpec, obj: KubeObject): string {
    return `${spec.group || "core"}/${spec.resource}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
  }

  private lookup(id: string): { spec: KindSpec; obj: KubeObject } | undefined {
    const [group, resource, namespace, name] = id.split("/");
    const w = this.watched.get(`${group}/${resource}`);
    const obj = w?.informer.get(namespace || undefined, name);
    return w && obj ? { spec: w.spec, obj } : undefined;
  }

  private resyncAll(): void {
    for (const { spec, informer } of this.watched.values()) {
      for (const obj of informer.list()) {
        const id = this.idOf(spec, obj);
        if (obj.metadata.ownerReferences?.length) this.queue.add(DEPENDENT + id);
        if (isDeletingDependents(obj) || isOrphaningDependents(obj)) this.queue.add(OWNER + id);
      }
    }
  }

  private changed(spec: KindSpec, type: string, obj: KubeObject, old?: KubeObject): void {
    const id = this.idOf(spec, obj);
    const uid = obj.metadata.uid!;
    const before = old?.metadata.ownerReferences ?? [];
    const after = type === "DELETED" ? [] : (obj.metadata.ownerReferences ?? []);
    for (const r of before) {
      if (after.some((a) => a.uid === r.uid)) continue;
      const set = this.dependents.get(r.uid);
      set?.delete(id);
      if (set?.size === 0) this.dependents.delete(r.uid);
    }
    for (const r of after) {
      let set = this.dependents.get(r.uid);
      if (!set) {
        set = new Set();
        this.dependents.set(r.uid, set);
      }
      set.add(id);
    }
    const refsChanged = refsKey(old) !== refsKey(obj);
    if (type === "DELETED") {
      this.byUid.delete(uid);
      // Its dependents may be dangling now; owners waiting for it may finish.
      for (const dep of this.dependents.get(uid) ?? []) this.queue.add(DEPENDENT + dep);
      for (const r of obj.metadata.ownerReferences ?? []) this.ownerChanged(r.uid);
      return;
    }
    this.byUid.set(uid, id);
    if ((type === "ADDED" || refsChanged) && after.length) this.queue.add(DEPENDENT + id);
    if (refsChanged) for (const r of before) this.ownerChanged(r.uid);
    if (isDeletingDependents(obj) || isOrphaningDependents(obj)) {
      this.queue.add(OWNER + id);
      for (const dep of this.dependents.get(uid) ?? []) this.queue.add(DEPENDENT + dep);
    }
  }

  private ownerChanged(ownerUid: string): void {
    const ownerId = this.byUid.get(ownerUid);
    if (ownerId) this.queue.add(OWNER + ownerId);
  }

  private async process(key: string): Promise<void> {
    try {
      if (key.startsWith(OWNER)) await this.processOwner(key.slice(OWNER.length));
      else await this.processDependent(key.slice(DEPENDENT.length));
    } catch (e) {
      if (!isApiError(e, 404, 409)) throw e;
    }
  }

  private dependentObjects(uid: string): { id: string; spec: KindSpec; obj: KubeObject }[] {
    const out: { id: string; spec: KindSpec; obj: KubeObject }[] = [];
    for (const id of this.dependents.get(uid) ?? []) {
      const found = this.lookup(id);
      if (found) out.push({ id, ...found });
    }
    return out;
  }

  /** An owner being deleted with a GC finalizer: orphan its dependents or wait for them. */
  private async processOwner(id: string): Promise<void> {
    const found = this.lookup(id);
    if (!found?.obj.metadata.deletionTimestamp) return;
    const { spec, obj } = found;
    const uid = obj.metadata.uid!;
    if (isOrphaningDependents(obj)) {
      for (const dep of this.dependentObjects(uid)) {
        await this.edit(dep.spec, dep.obj, (o) => {
          o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
          if (o.metadata.ownerReferences.length === 0) delete o.metadata.ownerReferences;
        });
      }
      await this.removeFinalizer(spec, obj, ORPHAN_FINALIZER);
      return;
    }
    if (!isDeletingDependents(obj)) return;
    const deps = this.dependentObjects(uid);
    for (const dep of deps) if (!dep.obj.metadata.deletionTimestamp) this.queue.add(DEPENDENT + dep.id);
    const blocking = blockingDependents(
      uid,
      deps.map((d) => d.obj),
    );
    if (blocking.length === 0) await this.removeFinalizer(spec, obj, FOREGROUND_FINALIZER);
  }

  /** attemptToDeleteItem: look up each owner, then keep, trim references, or delete. */
  private async processDependent(id: string): Promise<void> {
    const found = this.lookup(id);
    if (!found) return;
    const { spec, obj } = found;
    if (obj.metadata.deletionTimestamp) {
      if (isDeletingDependents(obj)) this.queue.add(OWNER + id);
      return;
    }
    const refs = obj.metadata.ownerReferences ?? [];
    if (!refs.length) return;
    const owners: { ref: OwnerReference; state: OwnerState }[] = [];
    for (const ref of refs) {
      const state = await this.ownerStateOf(ref, obj);
      if (!state) return; // an owner of a kind we do not serve: never guess
      owners.push({ ref, state });
    }
    const deps = this.dependentObjects(obj.metadata.uid!);
    const decision = decideDependent(
      obj,
      owners,
      deps.length > 0,
      deps.some((d) => isDeletingDependents(d.obj)),
    );
    if (decision.action === "keep") return;
    if (decision.action === "removeOwnerReferences") {
      const drop = new Set(decision.uids);
      await this.edit(spec, obj, (o) => {
        o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => !drop.has(r.uid));
        if (o.metadata.ownerReferences.length === 0) delete o.metadata.ownerReferences;
      });
      return;
    }
    if (decision.unblockOwners) {
      await this.edit(spec, obj, (o) => {
        o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).map((r) =>
          r.blockOwnerDeletion ? { ...r, blockOwnerDeletion: false } : r,
        );
      });
    }
    await this.resources.delete(spec, obj.metadata.namespace, obj.metadata.name!, {
      preconditions: { uid: obj.metadata.uid },
      propagationPolicy: decision.propagationPolicy,
    });
  }

  /** The served kind an owner reference names (same group and kind; any served version). */
  private kindOf(ref: OwnerReference): KindSpec | undefined {
    const slash = ref.apiVersion.indexOf("/");
    const group = slash >= 0 ? ref.apiVersion.slice(0, slash) : "";
    const kinds = this.registry.kinds.filter((k) => !k.storage && k.group === group && k.kind === ref.kind);
    const version = ref.apiVersion.slice(slash + 1);
    return kinds.find((k) => k.version === version) ?? kinds[0];
  }

  /** isDangling: the cache first, confirmed by a live read before anything is deleted. */
  private async ownerStateOf(ref: OwnerReference, dependent: KubeObject): Promise<OwnerState | undefined> {
    const spec = this.kindOf(ref);
    if (!spec) return undefined;
    // A namespaced owner lives in its dependent's namespace; a cluster-scoped dependent has none.
    if (spec.namespaced && !dependent.metadata.namespace) return "dangling";
    const namespace = spec.namespaced ? dependent.metadata.namespace : undefined;
    const w = this.watched.get(`${spec.group || "core"}/${spec.resource}`);
    const cached = w?.informer.get(namespace, ref.name);
    if (cached && cached.metadata.uid === ref.uid) return ownerState(ref, cached);
    return ownerState(ref, await this.resources.find(spec, namespace, ref.name));
  }

  private async edit(spec: KindSpec, obj: KubeObject, change: (o: KubeObject) => void): Promise<void> {
    try {
      await this.resources.mutate(spec, obj.metadata.namespace, obj.metadata.name!, (o) => {
        if (o.metadata.uid !== obj.metadata.uid) throw new ApiError(404, "NotFound", "replaced");
        change(o);
        return o;
      });
    } catch (e) {
      if (!isApiError(e, 404)) throw e;
    }
  }

  private async removeFinalizer(spec: KindSpec, obj: KubeObject, finalizer: string): Promise<void> {
    await this.edit(spec, obj, (o) => {
      const rest = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      if (rest.length) o.metadata.finalizers = rest;
      else delete o.metadata.finalizers;
    });
  }
}
