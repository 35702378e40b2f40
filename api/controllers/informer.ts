// An in-process informer: a watch with sendInitialEvents feeding a Map cache keyed by
// namespace/name, plus change callbacks. Controllers read the cache instead of listing.

import type { KindSpec } from "../../emulator/kind.ts";
import type { KubeObject } from "../../emulator/types.ts";
import type { Resources, WatchEvent } from "../resources.ts";

export type ChangeHandler<T> = (type: "ADDED" | "MODIFIED" | "DELETED", obj: T, old?: T) => void;

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name!;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: ChangeHandler<T>[] = [];
  private stopWatch: () => void = () => {};
  private readonly resources: Resources;
  private readonly spec: KindSpec;
  private readonly opts: { namespace?: string; labelSelector?: string; fieldSelector?: string };

  constructor(
    resources: Resources,
    spec: KindSpec,
    opts: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {},
  ) {
    this.resources = resources;
    this.spec = spec;
    this.opts = opts;
  }

  on(handler: ChangeHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  /** Resolves once the initial state is in the cache (and its handlers have run). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.stopWatch = this.resources.watch(
        this.spec,
        this.opts.namespace,
        {
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          sendInitialEvents: true,
        },
        (ev) => {
          if (ev.type === "BOOKMARK") {
            if (ev.object.metadata.annotations?.["k8s.io/initial-events-end"]) resolve();
            return;
          }
          this.apply(ev);
        },
      );
    });
  }

  stop(): void {
    this.stopWatch();
  }

  private apply(ev: WatchEvent): void {
    const obj = ev.object as T;
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (ev.type === "DELETED") this.cache.delete(key);
    else this.cache.set(key, obj);
    for (const h of this.handlers) {
      try {
        h(ev.type as "ADDED" | "MODIFIED" | "DELETED", obj, old);
      } catch (e) {
        console.error(`kemu informer ${this.spec.resource}:`, e);
      }
    }
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }
}
