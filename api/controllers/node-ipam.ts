// Node IPAM: hands each node a spec.podCIDR from the cluster CIDR (kube-controller-manager's range
// allocator). Exhaustion is an event plus a NetworkUnavailable condition on the node, never a crash.

import { rfc3339 } from "../../emulator/duration.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import { allocatePodCidrs, type NodeIpamConfig, validateNodeIpamConfig } from "../../emulator/node-ipam.ts";
import type { Condition, NodeObject } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

/** Allocation depends on every node at once, so the whole controller has one sync key. */
const SYNC_KEY = "all";
const NO_CIDR_REASON = "NoCIDRAvailable";

export class NodeIpamController {
  private readonly nodes: Informer<NodeObject>;
  private readonly queue: WorkQueue;
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly nodeSpec: KindSpec;
  private readonly config: NodeIpamConfig;

  constructor(resources: Resources, registry: Registry, recorder: EventRecorder, config: NodeIpamConfig) {
    validateNodeIpamConfig(config); // bad flags fail at startup, not on the first node
    this.resources = resources;
    this.recorder = recorder;
    this.config = config;
    this.nodeSpec = registry.find("", "v1", "nodes")!;
    this.nodes = new Informer<NodeObject>(resources, this.nodeSpec);
    this.queue = new WorkQueue(() => this.sync(), {
      onError: (_k, e) => console.error("kemu node-ipam:", (e as Error).message),
    });
    this.nodes.on((type, node) => {
      if (type !== "DELETED" && !node.spec?.podCIDR) this.queue.add(SYNC_KEY);
      if (type === "DELETED") this.queue.add(SYNC_KEY); // a freed range may serve a waiting node
    });
  }

  start(): Promise<void> {
    return this.nodes.start();
  }

  stop(): void {
    this.queue.stop();
    this.nodes.stop();
  }

  private async sync(): Promise<void> {
    const { assign, exhausted } = allocatePodCidrs(this.nodes.list(), this.config);
    for (const [name, cidr] of assign) {
      await this.write(name, (node) => {
        if (node.spec?.podCIDR) return node;
        node.spec = { ...node.spec, podCIDR: cidr, podCIDRs: [cidr] };
        const conditions = (node.status?.conditions ?? []).filter(
          (c: Condition) => !(c.type === "NetworkUnavailable" && c.reason === NO_CIDR_REASON),
        );
        if (node.status) node.status.conditions = conditions;
        return node;
      });
    }
    for (const name of exhausted) {
      const node = this.nodes.get(undefined, name);
      if (!node || node.status?.conditions?.some((c) => c.reason === NO_CIDR_REASON)) continue;
      this.recorder.record(
        node,
        "Normal",
        "CIDRNotAvailable",
        `Node ${name} status is now: CIDRNotAvailable`,
      );
      await this.write(name, (n) => {
        const now = rfc3339(new Date());
        const others = (n.status?.conditions ?? []).filter((c: Condition) => c.type !== "NetworkUnavailable");
        n.status = {
          ...n.status,
          conditions: [
            ...others,
            {
              type: "NetworkUnavailable",
              status: "True",
              reason: NO_CIDR_REASON,
              message: `no pod CIDR left in cluster CIDR ${this.config.clusterCidr ?? "10.244.0.0/16"}`,
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        };
        return n;
      });
    }
  }

  private async write(name: string, change: (n: NodeObject) => NodeObject): Promise<void> {
    try {
      await this.resources.mutate(this.nodeSpec, undefined, name, (n) => change(n as NodeObject));
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
}
