// What the endpoint controllers share: which Services select a pod, which pod changes can change
// a Service's endpoints, and an index from a Service to the objects labelled with its name.

import { hasSelector, type Service } from "../../emulator/kinds/service.ts";
import { labelSelectorFromSet, matchesLabels } from "../../emulator/label-selector.ts";
import type { KubeObject, Pod } from "../../emulator/types.ts";
import type { Informer } from "./informer.ts";
import { objectKey } from "./informer.ts";

/** How often every Service is synced again even without changes (upstream: 30 s). */
export const FULL_RESYNC_MS = 30_000;

export function selects(svc: Service, labels: Record<string, string> | undefined): boolean {
  if (!hasSelector(svc)) return false;
  return matchesLabels(labelSelectorFromSet(svc.spec.selector!), labels);
}

/**
 * Pods by namespace and label pair, so a Service's pods are found from the smallest matching set
 * instead of a scan of every pod (a sync then costs what the Service selects, not the cluster).
 */
export class PodSelectorIndex {
  private readonly byLabel = new Map<string, Set<string>>();
  private readonly pods: Informer<Pod>;

  constructor(pods: Informer<Pod>) {
    this.pods = pods;
    pods.on((type, pod, old) => {
      if (old) this.update(old, -1);
      if (type !== "DELETED") this.update(pod, 1);
    });
  }

  private update(pod: Pod, delta: 1 | -1): void {
    const key = objectKey(pod);
    for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
      const bucket = `${pod.metadata.namespace}\u0000${k}\u0000${v}`;
      let set = this.byLabel.get(bucket);
      if (delta > 0) {
        if (!set) {
          set = new Set();
          this.byLabel.set(bucket, set);
        }
        set.add(key);
      } else if (set) {
        set.delete(key);
        if (set.size === 0) this.byLabel.delete(bucket);
      }
    }
  }

  /** The pods in the Service's namespace its selector matches. */
  selected(svc: Service): Pod[] {
    if (!hasSelector(svc)) return [];
    const ns = svc.metadata.namespace;
    let smallest: Set<string> | undefined;
    for (const [k, v] of Object.entries(svc.spec.selector!)) {
      const set = this.byLabel.get(`${ns}\u0000${k}\u0000${v}`);
      if (!set) return [];
      if (!smallest || set.size < smallest.size) smallest = set;
    }
    const out: Pod[] = [];
    for (const key of smallest ?? []) {
      const slash = key.indexOf("/");
      const pod = this.pods.get(key.slice(0, slash), key.slice(slash + 1));
      if (pod && selects(svc, pod.metadata.labels)) out.push(pod);
    }
    return out;
  }
}

/**
 * The periodic full resync, spread over the period (a slice of the keys every second) so a
 * large cluster never sees one burst of thousands of syncs. Returns a stop function.
 */
export function startResync(keys: () => string[], add: (key: string) => void, periodMs: number): () => void {
  const tickMs = Math.min(1000, periodMs);
  const ticks = Math.max(1, Math.round(periodMs / tickMs));
  let pending: string[] = [];
  let share = 0;
  const timer = setInterval(() => {
    if (pending.length === 0) {
      pending = [...keys()];
      share = Math.ceil(pending.length / ticks);
    }
    for (const key of pending.splice(0, share)) add(key);
  }, tickMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The fields of a pod endpoints depend on; heartbeats and unrelated status changes leave it as is. */
export function podEndpointSignature(pod: Pod): string {
  const status = pod.status ?? {};
  return JSON.stringify([
    pod.metadata.labels ?? {},
    pod.metadata.deletionTimestamp ?? "",
    pod.metadata.uid,
    pod.spec?.nodeName ?? "",
    pod.spec?.hostname ?? "",
    pod.spec?.subdomain ?? "",
    (pod.spec?.containers ?? []).map((c) => c.ports ?? []),
    status.phase ?? "",
    status.podIP ?? "",
    status.podIPs ?? [],
    (status.conditions ?? []).find((c) => c.type === "Ready")?.status ?? "",
  ]);
}

/** Keys of the Services (in the pod's namespace) that select the pod now or selected it before. */
export function servicesForPodChange(services: Informer<Service>, pod: Pod, old?: Pod): string[] {
  const out: string[] = [];
  for (const svc of services.list()) {
    if (svc.metadata.namespace !== pod.metadata.namespace) continue;
    if (selects(svc, pod.metadata.labels) || (old && selects(svc, old.metadata.labels)))
      out.push(objectKey(svc));
  }
  return out;
}

/** namespace/value of a label → keys of the objects carrying it, kept current by informer events. */
export class LabelIndex<T extends KubeObject> {
  private readonly label: string;
  private readonly byValue = new Map<string, Set<string>>();
  private readonly informer: Informer<T>;

  constructor(informer: Informer<T>, label: string) {
    this.informer = informer;
    this.label = label;
    informer.on((type, obj, old) => {
      if (old) this.remove(old);
      if (type !== "DELETED") this.add(obj);
    });
  }

  private keyOf(obj: KubeObject): string | undefined {
    const v = obj.metadata.labels?.[this.label];
    return v === undefined ? undefined : `${obj.metadata.namespace}/${v}`;
  }

  private add(obj: T): void {
    const k = this.keyOf(obj);
    if (!k) return;
    let set = this.byValue.get(k);
    if (!set) {
      set = new Set();
      this.byValue.set(k, set);
    }
    set.add(objectKey(obj));
  }

  private remove(obj: T): void {
    const k = this.keyOf(obj);
    if (!k) return;
    const set = this.byValue.get(k);
    set?.delete(objectKey(obj));
    if (set?.size === 0) this.byValue.delete(k);
  }

  /** The objects labelled with `namespace/value`, from the informer's cache. */
  get(key: string): T[] {
    const out: T[] = [];
    for (const k of this.byValue.get(key) ?? []) {
      const slash = k.indexOf("/");
      const obj = this.informer.get(k.slice(0, slash), k.slice(slash + 1));
      if (obj) out.push(obj);
    }
    return out;
  }

  /** The label value of `obj` as an index key, for enqueuing its owner. */
  ownerKey(obj: KubeObject): string | undefined {
    return this.keyOf(obj);
  }

  /** The distinct owner keys of `objs`. */
  ownerKeys(objs: Iterable<KubeObject>): string[] {
    const keys = new Set<string>();
    for (const obj of objs) {
      const key = this.keyOf(obj);
      if (key) keys.add(key);
    }
    return [...keys];
  }
}
