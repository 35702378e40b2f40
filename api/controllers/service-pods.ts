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

/** The pods in the Service's namespace its selector matches. */
export function selectedPods(svc: Service, pods: Informer<Pod>): Pod[] {
  if (!hasSelector(svc)) return [];
  const sel = labelSelectorFromSet(svc.spec.selector!);
  const ns = svc.metadata.namespace;
  return pods.list().filter((p) => p.metadata.namespace === ns && matchesLabels(sel, p.metadata.labels));
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
}
