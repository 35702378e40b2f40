// Namespace deletion as upstream: a terminating namespace has its content deleted (pods wait for
// their nodes), then its "kubernetes" finalizer is removed and it leaves the store.

import type { KubeObject } from "../../emulator/types.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

const RECHECK_MS = 1000;

export class NamespaceController {
  private readonly namespaces: Informer;
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly registry: Registry;

  constructor(resources: Resources, registry: Registry, _recorder: EventRecorder) {
    this.resources = resources;
    this.registry = registry;
    this.namespaces = new Informer(resources, registry.find("", "v1", "namespaces")!);
    this.queue = new WorkQueue((name) => this.sync(name), {
      onError: (name, e) => console.error(`kemu namespace controller: ${name}:`, (e as Error).message),
    });
    this.namespaces.on((type, ns) => {
      if (type !== "DELETED" && ns.metadata.deletionTimestamp) this.queue.add(ns.metadata.name!);
    });
  }

  start(): Promise<void> {
    return this.namespaces.start();
  }

  stop(): void {
    this.queue.stop();
    this.namespaces.stop();
  }

  private async sync(name: string): Promise<void> {
    const ns = this.namespaces.get(undefined, name);
    if (!ns?.metadata.deletionTimestamp) return;
    let remaining = 0;
    for (const spec of this.registry.kinds) {
      if (!spec.namespaced || spec.storage) continue;
      const left = await this.resources.deleteCollection(spec, name, {});
      remaining += left.filter((o: KubeObject) => o.metadata.deletionTimestamp).length;
      remaining += (await this.resources.listStored(spec, name)).length > 0 ? 1 : 0;
    }
    if (remaining > 0) {
      this.queue.add(name, RECHECK_MS);
      return;
    }
    const nsSpec = this.registry.find("", "v1", "namespaces")!;
    await this.resources.mutate(nsSpec, undefined, name, (current) => ({
      ...current,
      spec: {
        ...current.spec,
        finalizers: (current.spec?.finalizers ?? []).filter((f: string) => f !== "kubernetes"),
      },
    }));
  }
}
