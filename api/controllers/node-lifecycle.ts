// Node lifecycle: nodes heartbeat through Leases in kube-node-lease; a node not heard from within
// the grace period turns Ready=Unknown and is tainted unreachable, and pods that do not tolerate
// its NoExecute taints (after their tolerationSeconds) are marked for eviction so controllers can
// replace them. Decisions come from emulator/node-lifecycle.ts; this file only reads and writes.

import { rfc3339 } from "../../emulator/duration.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import {
  type NodeLifecycleOptions,
  nodeLifecycle,
  podsToEvict,
  TAINT_EVICTION_CONDITION,
  taintEvictionEvent,
} from "../../emulator/node-lifecycle.ts";
import type { Lease, NodeObject, Pod } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer, objectKey } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

const LEASE_NAMESPACE = "kube-node-lease";
/** Full resync period, on top of the timers each decision asks for. */
const RESYNC_MS = 5000;

export class NodeLifecycleController {
  private readonly nodes: Informer<NodeObject>;
  private readonly leases: Informer<Lease>;
  private readonly pods: Informer<Pod>;
  private readonly podsByNode = new Map<string, Map<string, Pod>>();
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly nodeSpec: KindSpec;
  private readonly podSpec: KindSpec;
  private readonly opts: NodeLifecycleOptions;
  private resync?: NodeJS.Timeout;

  constructor(
    resources: Resources,
    registry: Registry,
    recorder: EventRecorder,
    opts: NodeLifecycleOptions = {},
  ) {
    this.resources = resources;
    this.recorder = recorder;
    this.opts = opts;
    this.nodeSpec = registry.find("", "v1", "nodes")!;
    this.podSpec = registry.find("", "v1", "pods")!;
    this.nodes = new Informer<NodeObject>(resources, this.nodeSpec);
    this.leases = new Informer<Lease>(resources, registry.find("coordination.k8s.io", "v1", "leases")!, {
      namespace: LEASE_NAMESPACE,
    });
    this.pods = new Informer<Pod>(resources, this.podSpec);
    this.queue = new WorkQueue((name) => this.sync(name), {
      onError: (name, e) => console.error(`kemu node-lifecycle: ${name}:`, (e as Error).message),
    });
    this.nodes.on((_t, node) => this.queue.add(node.metadata.name!));
    this.leases.on((_t, lease) => this.queue.add(lease.metadata.name!));
    this.pods.on((type, pod, old) => {
      if (old?.spec.nodeName) this.podsByNode.get(old.spec.nodeName)?.delete(objectKey(old));
      if (type !== "DELETED" && pod.spec.nodeName) {
        const byNode = this.podsByNode.get(pod.spec.nodeName) ?? new Map();
        byNode.set(objectKey(pod), pod);
        this.podsByNode.set(pod.spec.nodeName, byNode);
        const node = this.nodes.get(undefined, pod.spec.nodeName);
        if (node?.spec?.taints?.some((t) => t.effect === "NoExecute")) this.queue.add(pod.spec.nodeName);
      }
    });
  }

  async start(): Promise<void> {
    await this.nodes.start();
    await this.leases.start();
    await this.pods.start();
    this.resync = setInterval(() => {
      for (const n of this.nodes.list()) this.queue.add(n.metadata.name!);
    }, RESYNC_MS);
    this.resync.unref();
  }

  stop(): void {
    clearInterval(this.resync);
    this.queue.stop();
    this.nodes.stop();
    this.leases.stop();
    this.pods.stop();
  }

  private async sync(name: string): Promise<void> {
    const node = this.nodes.get(undefined, name);
    if (!node) return;
    const now = new Date();
    const decision = nodeLifecycle(node, this.leases.get(LEASE_NAMESPACE, name), now, this.opts);
    let current = node;
    if (decision.conditions || decision.taintsChanged) {
      try {
        current = (await this.resources.mutate(this.nodeSpec, undefined, name, (n) => {
          if (decision.conditions) n.status = { ...n.status, conditions: decision.conditions };
          if (decision.taintsChanged) n.spec = { ...n.spec, taints: decision.taints };
          return n;
        })) as NodeObject;
      } catch (e) {
        if (e instanceof ApiError && (e.code === 404 || e.code === 409)) return this.queue.add(name, 100);
        throw e;
      }
      const ready = decision.readyCondition;
      if (ready && ready.status !== "True") {
        this.recorder.record(node, "Normal", "NodeNotReady", `Node ${name} status is now: NodeNotReady`);
      }
    }
    if (decision.staleAt) this.queue.add(name, Math.max(1, decision.staleAt.getTime() - now.getTime()));
    await this.evict(current, now);
  }

  private async evict(node: NodeObject, now: Date): Promise<void> {
    const pods = [...(this.podsByNode.get(node.metadata.name!)?.values() ?? [])];
    const { evict, nextEvictionAt } = podsToEvict(node, pods, now);
    for (const pod of evict) {
      const { namespace, name } = pod.metadata;
      try {
        await this.resources.mutate(this.podSpec, namespace, name!, (p) => {
          const others = (p.status?.conditions ?? []).filter(
            (c: { type: string }) => c.type !== "DisruptionTarget",
          );
          p.status = {
            ...p.status,
            conditions: [...others, { ...TAINT_EVICTION_CONDITION, lastTransitionTime: rfc3339(now) }],
          };
          return p;
        });
        await this.resources.delete(this.podSpec, namespace, name!, {
          preconditions: { uid: pod.metadata.uid },
        });
        const ev = taintEvictionEvent(pod);
        this.recorder.record(pod, "Normal", ev.reason, ev.message);
      } catch (e) {
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    }
    if (nextEvictionAt) {
      this.queue.add(node.metadata.name!, Math.max(1, nextEvictionAt.getTime() - now.getTime()));
    }
  }
}
