// Wires the pure scheduler (emulator/scheduler.ts) to the cluster: every pending pod without a
// node is placed on a Ready node through pods/binding, or gets PodScheduled=False and a
// FailedScheduling event. Unschedulable pods are retried whenever nodes change.

import type { KindSpec } from "../../emulator/kind.ts";
import { schedulePod } from "../../emulator/scheduler.ts";
import type { NodeObject, Pod } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import { bindPod, markUnschedulable } from "../pod-subresources.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer, objectKey } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

const SCHEDULER_NAME = "default-scheduler";
/** Unschedulable pods are retried with back-off (10 s doubling to 5 min) even without node changes. */
const RETRY_BASE_MS = 10_000;
const RETRY_MAX_MS = 300_000;

/** Could this node change make a waiting pod schedulable? Heartbeats alone cannot. */
function schedulingRelevant(node: NodeObject, old?: NodeObject): boolean {
  if (!old) return true;
  const ready = (n: NodeObject) => n.status?.conditions?.find((c) => c.type === "Ready")?.status;
  return (
    ready(node) !== ready(old) ||
    JSON.stringify(node.metadata.labels) !== JSON.stringify(old.metadata.labels) ||
    JSON.stringify(node.spec?.taints) !== JSON.stringify(old.spec?.taints) ||
    node.spec?.unschedulable !== old.spec?.unschedulable ||
    JSON.stringify(node.status?.allocatable) !== JSON.stringify(old.status?.allocatable)
  );
}

function wantsScheduling(pod: Pod): boolean {
  return (
    !pod.spec.nodeName &&
    !pod.metadata.deletionTimestamp &&
    (pod.spec.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME &&
    pod.status?.phase !== "Succeeded" &&
    pod.status?.phase !== "Failed"
  );
}

function occupiesNode(pod: Pod): boolean {
  return !!pod.spec.nodeName && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";
}

export class SchedulerController {
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<NodeObject>;
  private readonly queue: WorkQueue;
  private readonly podSpec: KindSpec;
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  /** Pods currently assumed on each node: bound ones plus bindings in flight. */
  private readonly podsByNode = new Map<string, number>();
  private readonly lastFailure = new Map<string, string>();
  private readonly attempts = new Map<string, number>();
  /** Keys of pods waiting for a node, so retries never scan every pod. */
  private readonly waiting = new Set<string>();

  constructor(resources: Resources, registry: Registry, recorder: EventRecorder) {
    this.resources = resources;
    this.recorder = recorder;
    this.podSpec = registry.find("", "v1", "pods")!;
    this.pods = new Informer<Pod>(resources, this.podSpec);
    this.nodes = new Informer<NodeObject>(resources, registry.find("", "v1", "nodes")!);
    this.queue = new WorkQueue((key) => this.sync(key), {
      concurrency: 1,
      onError: (key, e) => console.error(`kemu scheduler: ${key}:`, (e as Error).message),
    });
    this.pods.on((type, pod, old) => {
      if (old && occupiesNode(old)) this.count(old.spec.nodeName!, -1);
      if (type !== "DELETED" && occupiesNode(pod)) this.count(pod.spec.nodeName!, 1);
      const key = objectKey(pod);
      if (type !== "DELETED" && wantsScheduling(pod)) {
        this.waiting.add(key);
        this.queue.add(key);
      } else {
        this.waiting.delete(key);
        this.lastFailure.delete(key);
        this.attempts.delete(key);
      }
      if (type === "DELETED" || (old && occupiesNode(old) && !occupiesNode(pod))) this.retryPending();
    });
    this.nodes.on((type, node, old) => {
      if (type === "DELETED" || schedulingRelevant(node, old)) this.retryPending();
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

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private count(node: string, delta: number): void {
    this.podsByNode.set(node, (this.podsByNode.get(node) ?? 0) + delta);
  }

  private retryPending(): void {
    for (const key of this.waiting) this.queue.add(key);
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split("/");
    const pod = this.pods.get(namespace, name);
    if (!pod || !wantsScheduling(pod)) return;
    const decision = schedulePod(pod, this.nodes.list(), this.podsByNode);
    if ("node" in decision) {
      try {
        await bindPod(this.resources, this.podSpec, namespace, name, decision.node);
      } catch (e) {
        if (e instanceof ApiError && (e.code === 404 || e.code === 409)) return; // deleted or bound meanwhile
        throw e;
      }
      this.recorder.record(
        pod,
        "Normal",
        "Scheduled",
        `Successfully assigned ${namespace}/${name} to ${decision.node}`,
      );
      return;
    }
    if (this.lastFailure.get(key) !== decision.message) {
      this.lastFailure.set(key, decision.message);
      await markUnschedulable(this.resources, this.podSpec, pod, decision.message).catch(() => {});
    }
    this.recorder.record(pod, "Warning", "FailedScheduling", decision.message);
    const n = this.attempts.get(key) ?? 0;
    this.attempts.set(key, n + 1);
    this.queue.add(key, Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** n));
  }
}
