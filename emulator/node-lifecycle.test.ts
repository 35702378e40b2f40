import { describe, expect, it } from "vitest";
import {
  DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS,
  nodeLifecycle,
  podsToEvict,
  TAINT_EVICTION_CONDITION,
  taintEvictionEvent,
} from "./node-lifecycle.ts";
import type { Condition, Lease, NodeObject, Pod, Taint, Toleration } from "./types.ts";

const T0 = Date.parse("2025-01-01T00:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const iso = (seconds: number) => at(seconds).toISOString().replace(".000Z", "Z");

function condition(type: string, status: Condition["status"], heartbeat = 0): Condition {
  return {
    type,
    status,
    reason: "KubeletReady",
    lastHeartbeatTime: iso(heartbeat),
    lastTransitionTime: iso(0),
  };
}

function healthyConditions(heartbeat = 0): Condition[] {
  return [
    condition("MemoryPressure", "False", heartbeat),
    condition("DiskPressure", "False", heartbeat),
    condition("PIDPressure", "False", heartbeat),
    condition("Ready", "True", heartbeat),
  ];
}

function node(
  opts: { conditions?: Condition[]; taints?: Taint[]; unschedulable?: boolean; created?: number } = {},
): NodeObject {
  return {
    metadata: { name: "n1", creationTimestamp: iso(opts.created ?? 0) },
    spec: { taints: opts.taints, unschedulable: opts.unschedulable },
    status: { conditions: opts.conditions ?? healthyConditions() },
  };
}

function lease(renewSeconds: number): Lease {
  return {
    metadata: { name: "n1", namespace: "kube-node-lease" },
    spec: { holderIdentity: "n1", renewTime: iso(renewSeconds) },
  };
}

describe("nodeLifecycle heartbeat", () => {
  it("leaves a node with a fresh lease alone", () => {
    const d = nodeLifecycle(node(), lease(100), at(120));
    expect(d.conditions).toBeUndefined();
    expect(d.readyCondition).toBeUndefined();
    expect(d.taints).toEqual([]);
    expect(d.taintsChanged).toBe(false);
    expect(d.staleAt).toEqual(new Date(T0 + 140_000 + 1));
  });

  it("keeps the node healthy exactly at the grace period and goes Unknown just after", () => {
    expect(nodeLifecycle(node(), lease(100), at(140)).conditions).toBeUndefined();
    const d = nodeLifecycle(node(), lease(100), new Date(T0 + 140_001));
    expect(d.readyCondition).toMatchObject({ type: "Ready", status: "Unknown" });
    expect(d.staleAt).toBeUndefined();
  });

  it("marks Ready and the pressure conditions Unknown once the lease is stale", () => {
    const n = node({ conditions: [...healthyConditions(50), condition("NetworkUnavailable", "False", 50)] });
    const d = nodeLifecycle(n, lease(100), at(200));
    expect(d.readyCondition).toEqual({
      type: "Ready",
      status: "Unknown",
      reason: "NodeStatusUnknown",
      message: "Kubelet stopped posting node status.",
      lastHeartbeatTime: iso(50),
      lastTransitionTime: iso(200),
    });
    const byType = Object.fromEntries((d.conditions ?? []).map((c) => [c.type, c.status]));
    expect(byType).toEqual({
      MemoryPressure: "Unknown",
      DiskPressure: "Unknown",
      PIDPressure: "Unknown",
      Ready: "Unknown",
      NetworkUnavailable: "False",
    });
    // The input is not mutated.
    expect(n.status?.conditions?.[3].status).toBe("True");
  });

  it("uses the Ready heartbeat (or creation) without a lease, whichever is later", () => {
    expect(
      nodeLifecycle(node({ conditions: healthyConditions(100) }), undefined, at(130)).conditions,
    ).toBeUndefined();
    expect(
      nodeLifecycle(node({ conditions: healthyConditions(100) }), undefined, at(141)).readyCondition?.status,
    ).toBe("Unknown");
    // A node re-created with a leftover old heartbeat still gets its grace period from creation.
    expect(nodeLifecycle(node({ created: 500 }), lease(10), at(520)).conditions).toBeUndefined();
  });

  it("trusts a renewed lease over an old status heartbeat", () => {
    expect(
      nodeLifecycle(node({ conditions: healthyConditions(0) }), lease(300), at(310)).conditions,
    ).toBeUndefined();
  });

  it("honours a custom grace period", () => {
    expect(nodeLifecycle(node(), lease(0), at(15), { gracePeriodMs: 10_000 }).readyCondition?.status).toBe(
      "Unknown",
    );
    expect(DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS).toBe(40_000);
  });

  it("does not rewrite conditions that are already Unknown", () => {
    const unknown = healthyConditions().map((c) => ({
      ...c,
      status: "Unknown" as const,
      reason: "NodeStatusUnknown",
    }));
    const d = nodeLifecycle(node({ conditions: unknown }), lease(0), at(500));
    expect(d.conditions).toBeUndefined();
    expect(d.taints.map((t) => `${t.key}:${t.effect}`)).toEqual([
      "node.kubernetes.io/unreachable:NoSchedule",
      "node.kubernetes.io/unreachable:NoExecute",
    ]);
  });

  it("gives a node that never posted status the startup grace period, then NodeStatusNeverUpdated", () => {
    expect(nodeLifecycle(node({ conditions: [] }), undefined, at(60)).conditions).toBeUndefined();
    const d = nodeLifecycle(node({ conditions: [] }), undefined, at(61));
    expect(d.conditions?.map((c) => c.type)).toEqual([
      "Ready",
      "MemoryPressure",
      "DiskPressure",
      "PIDPressure",
    ]);
    expect(d.readyCondition).toEqual({
      type: "Ready",
      status: "Unknown",
      reason: "NodeStatusNeverUpdated",
      message: "Kubelet never posted node status.",
      lastHeartbeatTime: iso(0),
      lastTransitionTime: iso(61),
    });
    expect(d.taints.map((t) => t.key)).toEqual([
      "node.kubernetes.io/unreachable",
      "node.kubernetes.io/unreachable",
    ]);
  });

  it("treats a renewing lease as alive even without any status, like upstream", () => {
    expect(nodeLifecycle(node({ conditions: [] }), lease(100), at(130)).conditions).toBeUndefined();
  });
});

describe("nodeLifecycle taints", () => {
  const now = at(1000);
  const stamp = iso(1000);

  it("adds unreachable NoSchedule+NoExecute when the node goes Unknown, stamped now", () => {
    const d = nodeLifecycle(node(), lease(0), now);
    expect(d.taints).toEqual([
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule", timeAdded: stamp },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: stamp },
    ]);
    expect(d.taintsChanged).toBe(true);
  });

  it("adds not-ready taints when Ready is False", () => {
    const conditions = [...healthyConditions(999).slice(0, 3), condition("Ready", "False", 999)];
    const d = nodeLifecycle(node({ conditions }), lease(999), now);
    expect(d.conditions).toBeUndefined();
    expect(d.taints.map((t) => `${t.key}:${t.effect}`)).toEqual([
      "node.kubernetes.io/not-ready:NoSchedule",
      "node.kubernetes.io/not-ready:NoExecute",
    ]);
  });

  it("swaps not-ready for unreachable, keeping every other taint in place", () => {
    const taints: Taint[] = [
      { key: "dedicated", value: "gpu", effect: "NoSchedule" },
      { key: "node.kubernetes.io/not-ready", effect: "NoSchedule", timeAdded: iso(10) },
      { key: "node.kubernetes.io/not-ready", effect: "NoExecute", timeAdded: iso(10) },
      { key: "custom", effect: "NoExecute" },
      { key: "node.kubernetes.io/not-ready", effect: "PreferNoSchedule" },
    ];
    const d = nodeLifecycle(node({ taints }), lease(0), now);
    expect(d.taints).toEqual([
      taints[0],
      taints[3],
      taints[4],
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule", timeAdded: stamp },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: stamp },
    ]);
  });

  it("keeps the original timeAdded of taints that are still wanted", () => {
    const taints: Taint[] = [
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule", timeAdded: iso(50) },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: iso(50) },
    ];
    const d = nodeLifecycle(node({ taints }), lease(0), now);
    expect(d.taints).toEqual(taints);
    expect(d.taintsChanged).toBe(false);
  });

  it("removes the readiness taints once the node is Ready again", () => {
    const taints: Taint[] = [
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule", timeAdded: iso(50) },
      { key: "keep-me", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: iso(50) },
    ];
    const d = nodeLifecycle(node({ taints, conditions: healthyConditions(995) }), lease(995), now);
    expect(d.taints).toEqual([{ key: "keep-me", effect: "NoSchedule" }]);
    expect(d.taintsChanged).toBe(true);
  });

  it("taints pressure conditions and cordoned nodes NoSchedule only", () => {
    const conditions = [
      condition("MemoryPressure", "True", 999),
      condition("DiskPressure", "True", 999),
      condition("PIDPressure", "True", 999),
      condition("NetworkUnavailable", "True", 999),
      condition("Ready", "True", 999),
    ];
    const d = nodeLifecycle(node({ conditions, unschedulable: true }), lease(999), now);
    expect(d.taints.map((t) => `${t.key}:${t.effect}`)).toEqual([
      "node.kubernetes.io/memory-pressure:NoSchedule",
      "node.kubernetes.io/disk-pressure:NoSchedule",
      "node.kubernetes.io/pid-pressure:NoSchedule",
      "node.kubernetes.io/network-unavailable:NoSchedule",
      "node.kubernetes.io/unschedulable:NoSchedule",
    ]);
  });

  it("drops the unschedulable taint when the node is uncordoned", () => {
    const taints: Taint[] = [
      { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule", timeAdded: iso(1) },
    ];
    expect(
      nodeLifecycle(node({ taints, conditions: healthyConditions(999) }), lease(999), now).taints,
    ).toEqual([]);
  });

  it("leaves a controller-looking NoExecute taint with another key alone", () => {
    const taints: Taint[] = [{ key: "node.kubernetes.io/unschedulable", effect: "NoExecute" }];
    expect(
      nodeLifecycle(node({ taints, conditions: healthyConditions(999) }), lease(999), now).taints,
    ).toEqual(taints);
  });
});

function pod(name: string, tolerations?: Toleration[], extra: Partial<Pod["metadata"]> = {}): Pod {
  return {
    metadata: { name, namespace: "default", ...extra },
    spec: { nodeName: "n1", containers: [{ name: "c" }], tolerations },
  };
}

function taintedNode(taints: Taint[]): NodeObject {
  return { metadata: { name: "n1" }, spec: { taints } };
}

const unreachableNoExecute: Taint = {
  key: "node.kubernetes.io/unreachable",
  effect: "NoExecute",
  timeAdded: iso(0),
};
const notReadyNoExecute: Taint = {
  key: "node.kubernetes.io/not-ready",
  effect: "NoExecute",
  timeAdded: iso(0),
};
const tolerate = (key: string, seconds?: number): Toleration => ({
  key,
  operator: "Exists",
  effect: "NoExecute",
  tolerationSeconds: seconds,
});

describe("podsToEvict", () => {
  it("evicts nothing without NoExecute taints", () => {
    const n = taintedNode([
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule", timeAdded: iso(0) },
    ]);
    expect(podsToEvict(n, [pod("a")], at(1000))).toEqual({ evict: [] });
  });

  it("evicts pods that don't tolerate a NoExecute taint at once", () => {
    const a = pod("a");
    const b = pod("b", [tolerate("node.kubernetes.io/unreachable")]);
    expect(podsToEvict(taintedNode([unreachableNoExecute]), [a, b], at(1))).toEqual({ evict: [a] });
  });

  it("needs every NoExecute taint tolerated", () => {
    const a = pod("a", [tolerate("node.kubernetes.io/unreachable")]);
    expect(podsToEvict(taintedNode([unreachableNoExecute, notReadyNoExecute]), [a], at(1)).evict).toEqual([
      a,
    ]);
  });

  it("evicts once tolerationSeconds have passed since timeAdded, and reports the next deadline", () => {
    const short = pod("short", [tolerate("node.kubernetes.io/unreachable", 300)]);
    const long = pod("long", [tolerate("node.kubernetes.io/unreachable", 600)]);
    const n = taintedNode([unreachableNoExecute]);
    expect(podsToEvict(n, [short, long], at(299))).toEqual({ evict: [], nextEvictionAt: at(300) });
    expect(podsToEvict(n, [short, long], at(300))).toEqual({ evict: [short], nextEvictionAt: at(600) });
    expect(podsToEvict(n, [short, long], at(601))).toEqual({ evict: [short, long] });
  });

  it("treats tolerationSeconds <= 0 as evict now", () => {
    const zero = pod("zero", [tolerate("node.kubernetes.io/unreachable", 0)]);
    const negative = pod("negative", [tolerate("node.kubernetes.io/unreachable", -5)]);
    expect(podsToEvict(taintedNode([unreachableNoExecute]), [zero, negative], at(0)).evict).toEqual([
      zero,
      negative,
    ]);
  });

  it("times each taint from its own timeAdded and takes the earliest deadline", () => {
    const n = taintedNode([unreachableNoExecute, { ...notReadyNoExecute, timeAdded: iso(100) }]);
    const p = pod("p", [
      tolerate("node.kubernetes.io/unreachable", 300),
      tolerate("node.kubernetes.io/not-ready", 60),
    ]);
    expect(podsToEvict(n, [p], at(10))).toEqual({ evict: [], nextEvictionAt: at(160) });
  });

  it("uses the first matching toleration, as upstream does", () => {
    const forever = pod("forever", [{ operator: "Exists" }, tolerate("node.kubernetes.io/unreachable", 1)]);
    const bounded = pod("bounded", [tolerate("node.kubernetes.io/unreachable", 1), { operator: "Exists" }]);
    expect(podsToEvict(taintedNode([unreachableNoExecute]), [forever, bounded], at(5)).evict).toEqual([
      bounded,
    ]);
  });

  it("never times out a bounded toleration of a taint without timeAdded", () => {
    const p = pod("p", [tolerate("custom", 10)]);
    expect(podsToEvict(taintedNode([{ key: "custom", effect: "NoExecute" }]), [p], at(1e6))).toEqual({
      evict: [],
    });
  });

  it("skips pods already being deleted or bound elsewhere", () => {
    const deleting = pod("deleting", undefined, { deletionTimestamp: iso(0) });
    const elsewhere: Pod = { ...pod("elsewhere"), spec: { ...pod("elsewhere").spec, nodeName: "n2" } };
    expect(podsToEvict(taintedNode([unreachableNoExecute]), [deleting, elsewhere], at(1))).toEqual({
      evict: [],
    });
  });

  it("describes the eviction like upstream", () => {
    expect(TAINT_EVICTION_CONDITION).toMatchObject({
      type: "DisruptionTarget",
      reason: "DeletionByTaintManager",
    });
    expect(taintEvictionEvent(pod("web"))).toEqual({
      reason: "TaintManagerEviction",
      message: "Marking for deletion Pod default/web",
    });
  });
});

describe("nodeLifecycle and podsToEvict together", () => {
  it("evicts default-tolerating pods 300s after the node goes unreachable", () => {
    const first = nodeLifecycle(node(), lease(0), at(41));
    const tainted: NodeObject = { ...node(), spec: { taints: first.taints } };
    const p = pod("web", [
      tolerate("node.kubernetes.io/unreachable", 300),
      tolerate("node.kubernetes.io/not-ready", 300),
    ]);
    expect(podsToEvict(tainted, [p], at(41))).toEqual({ evict: [], nextEvictionAt: at(341) });
    expect(podsToEvict(tainted, [p], at(341)).evict).toEqual([p]);
  });
});
