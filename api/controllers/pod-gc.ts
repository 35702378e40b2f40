// Pod garbage collection: pods bound to a node that no longer exists can never be confirmed
// deleted by that node, so they are removed at once (upstream's PodGC "orphaned pods").

import type { NodeObject, Pod } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer, objectKey } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

export class PodGcController {
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<NodeObject>;
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly registry: Registry;

  constructor(resources: Resources, registry: Registry, recorder: EventRecorder) {
    this.resources = resources;
    this.registry = registry;
    this.recorder = recorder;
    this.pods = new Informer<Pod>(resources, registry.find("", "v1", "pods")!);
    this.nodes = new Informer<NodeObject>(resources, registry.find("", "v1", "nodes")!);
    this.queue = new WorkQueue((key) => this.sync(key));
    this.pods.on((type, pod) => {
      if (type !== "DELETED" && pod.spec.nodeName && !this.nodes.get(undefined, pod.spec.nodeName)) {
        this.queue.add(objectKey(pod));
      }
    });
    this.nodes.on((type, node) => {
      if (type !== "DELETED") return;
      for (const pod of this.pods.list())
        if (pod.spec.nodeName === node.metadata.name) this.queue.add(objectKey(pod));
    });
  }

  async start(): Promise<void> {
    await this.nodes.start();
    await this.pods.start();
  }

  stop(): void {
    this.queue.stop();
    this.pods.stop();
    this.nodes.stop();
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split("/");
    const pod = this.pods.get(namespace, name);
    if (!pod?.spec.nodeName || this.nodes.get(undefined, pod.spec.nodeName)) return;
    try {
      await this.resources.delete(this.registry.find("", "v1", "pods")!, namespace, name, {
        gracePeriodSeconds: 0,
        preconditions: { uid: pod.metadata.uid },
      });
      this.recorder.record(pod, "Normal", "PodGC", `Deleted pod bound to missing node ${pod.spec.nodeName}`);
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
    }
  }
}
