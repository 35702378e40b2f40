import { describe, expect, it } from "vitest";
import {
  NO_NODES_MESSAGE,
  type NodeSelectorTerm,
  nodeSelectorTermMatches,
  podMatchesNodeAffinity,
  schedulePod,
} from "./scheduler.ts";
import type { NodeObject, Pod, Taint, Toleration } from "./types.ts";

interface NodeOptions {
  ready?: "True" | "False" | "Unknown" | null;
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  allocatablePods?: string;
  capacityPods?: string;
}

function node(name: string, opts: NodeOptions = {}): NodeObject {
  const ready = opts.ready === undefined ? "True" : opts.ready;
  return {
    metadata: { name, labels: opts.labels },
    spec: { taints: opts.taints, unschedulable: opts.unschedulable },
    status: {
      conditions: ready === null ? [] : [{ type: "Ready", status: ready }],
      allocatable: opts.allocatablePods ? { pods: opts.allocatablePods } : undefined,
      capacity: opts.capacityPods ? { pods: opts.capacityPods } : undefined,
    },
  };
}

function pod(spec: Partial<Pod["spec"]> = {}): Pod {
  return { metadata: { name: "p", namespace: "default" }, spec: { containers: [{ name: "c" }], ...spec } };
}

function withTerms(terms: NodeSelectorTerm[], spec: Partial<Pod["spec"]> = {}): Pod {
  return pod({
    ...spec,
    affinity: {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
    },
  });
}

const none = new Map<string, number>();
const unreachableTaint: Taint = { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" };
const controlPlane: Taint = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

describe("schedulePod placement", () => {
  it("spreads by pod count, ties broken by node name", () => {
    const nodes = [node("c"), node("b"), node("a")];
    expect(schedulePod(pod(), nodes, none)).toEqual({ node: "a" });
    expect(
      schedulePod(
        pod(),
        nodes,
        new Map([
          ["a", 2],
          ["b", 1],
          ["c", 1],
        ]),
      ),
    ).toEqual({ node: "b" });
  });

  it("prefers nodes without untolerated PreferNoSchedule taints", () => {
    const nodes = [node("a", { taints: [{ key: "soft", effect: "PreferNoSchedule" }] }), node("b")];
    expect(schedulePod(pod(), nodes, new Map([["b", 5]]))).toEqual({ node: "b" });
    const tolerant = pod({ tolerations: [{ key: "soft", operator: "Exists" }] });
    expect(schedulePod(tolerant, nodes, new Map([["b", 5]]))).toEqual({ node: "a" });
  });

  it("honours nodeSelector", () => {
    const nodes = [node("a"), node("b", { labels: { disk: "ssd" } })];
    expect(schedulePod(pod({ nodeSelector: { disk: "ssd" } }), nodes, none)).toEqual({ node: "b" });
  });

  it("lets tolerating pods onto tainted and cordoned nodes", () => {
    const everything: Toleration[] = [{ operator: "Exists" }];
    expect(
      schedulePod(pod({ tolerations: everything }), [node("a", { taints: [controlPlane] })], none),
    ).toEqual({ node: "a" });
    const cordonTolerant: Toleration[] = [
      { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
    ];
    expect(
      schedulePod(pod({ tolerations: cordonTolerant }), [node("a", { unschedulable: true })], none),
    ).toEqual({ node: "a" });
  });

  it("lets a pod tolerating not-ready onto a NotReady node", () => {
    const tolerant = pod({ tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists" }] });
    expect(schedulePod(tolerant, [node("a", { ready: "False" })], none)).toEqual({ node: "a" });
  });
});

describe("schedulePod failure messages", () => {
  it("matches upstream's format for the brief's example", () => {
    const nodes = [
      node("a", { ready: "Unknown", taints: [unreachableTaint] }),
      node("b", { labels: { zone: "x" } }),
      node("c", { labels: { zone: "y" } }),
    ];
    expect(schedulePod(pod({ nodeSelector: { zone: "z" } }), nodes, none)).toEqual({
      reason: "Unschedulable",
      message:
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, " +
        "2 node(s) didn't match Pod's node affinity/selector. " +
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    });
  });

  it("prints taint values", () => {
    const result = schedulePod(
      pod(),
      [node("a", { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] })],
      none,
    );
    expect(result).toMatchObject({
      message: expect.stringContaining("1 node(s) had untolerated taint {dedicated: gpu}."),
    });
  });

  it("treats a node that isn't Ready as carrying the matching readiness taint", () => {
    const nodes = [
      node("f", { ready: "False" }),
      node("u", { ready: "Unknown" }),
      node("m", { ready: null }),
    ];
    expect(schedulePod(pod(), nodes, none)).toEqual({
      reason: "Unschedulable",
      message:
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, " +
        "2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. " +
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    });
  });

  it("does not add a second readiness taint when one is present", () => {
    const n = node("a", {
      ready: "False",
      taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }],
    });
    expect(schedulePod(pod(), [n], none)).toMatchObject({
      message: expect.stringMatching(
        /^0\/1 nodes are available: 1 node\(s\) had untolerated taint \{node\.kubernetes\.io\/unreachable: \}\./,
      ),
    });
  });

  it("reports only the first failing filter per node, in plugin order", () => {
    // Cordoned + tainted + wrong labels: NodeUnschedulable runs first.
    const n = node("a", { unschedulable: true, taints: [controlPlane] });
    expect(schedulePod(pod({ nodeSelector: { x: "y" } }), [n], none)).toMatchObject({
      message:
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    });
  });

  it("ignores PreferNoSchedule taints when filtering", () => {
    expect(
      schedulePod(pod(), [node("a", { taints: [{ key: "soft", effect: "PreferNoSchedule" }] })], none),
    ).toEqual({ node: "a" });
  });

  it("counts pods against allocatable, then capacity, then 110", () => {
    expect(schedulePod(pod(), [node("a", { allocatablePods: "2" })], new Map([["a", 1]]))).toEqual({
      node: "a",
    });
    expect(schedulePod(pod(), [node("a", { allocatablePods: "2" })], new Map([["a", 2]]))).toEqual({
      reason: "Unschedulable",
      message:
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
    });
    expect(
      schedulePod(pod(), [node("a", { allocatablePods: "5", capacityPods: "1" })], new Map([["a", 3]])),
    ).toEqual({ node: "a" });
    expect(schedulePod(pod(), [node("a", { capacityPods: "3" })], new Map([["a", 3]]))).toMatchObject({
      reason: "Unschedulable",
    });
    expect(schedulePod(pod(), [node("a")], new Map([["a", 109]]))).toEqual({ node: "a" });
    expect(schedulePod(pod(), [node("a")], new Map([["a", 110]]))).toMatchObject({ reason: "Unschedulable" });
    expect(schedulePod(pod(), [node("a", { allocatablePods: "0" })], none)).toMatchObject({
      reason: "Unschedulable",
    });
  });

  it("sorts mixed preemption outcomes as strings", () => {
    const nodes = [
      node("a", { allocatablePods: "1" }),
      node("b", { unschedulable: true }),
      node("c", { unschedulable: true }),
    ];
    expect(schedulePod(pod(), nodes, new Map([["a", 1]]))).toEqual({
      reason: "Unschedulable",
      message:
        "0/3 nodes are available: 1 Too many pods, 2 node(s) were unschedulable. " +
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.",
    });
  });

  it("sorts the histogram as plain strings, so 10 comes before 2", () => {
    const nodes = [
      ...Array.from({ length: 10 }, (_, i) => node(`t${i}`, { taints: [controlPlane] })),
      node("u1", { unschedulable: true }),
      node("u2", { unschedulable: true }),
    ];
    const result = schedulePod(pod(), nodes, none);
    expect(result).toMatchObject({
      message:
        "0/12 nodes are available: 10 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, " +
        "2 node(s) were unschedulable. preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling.",
    });
  });

  it("reports preemptionPolicy=Never as upstream does", () => {
    const result = schedulePod(
      pod({ preemptionPolicy: "Never" }),
      [node("a", { allocatablePods: "1" })],
      new Map([["a", 1]]),
    );
    expect(result).toEqual({
      reason: "Unschedulable",
      message:
        "0/1 nodes are available: 1 Too many pods. preemption: not eligible due to preemptionPolicy=Never.",
    });
  });

  it("uses upstream's no-nodes message for an empty cluster", () => {
    expect(schedulePod(pod(), [], none)).toEqual({ reason: "Unschedulable", message: NO_NODES_MESSAGE });
    expect(NO_NODES_MESSAGE).toBe("no nodes available to schedule pods");
  });
});

describe("node affinity", () => {
  const n = node("worker-1", { labels: { zone: "a", gen: "5", gpu: "" } });

  it.each<[string, NodeSelectorTerm, boolean]>([
    ["In", { matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }, true],
    ["In miss", { matchExpressions: [{ key: "zone", operator: "In", values: ["b"] }] }, false],
    ["In on a missing label", { matchExpressions: [{ key: "rack", operator: "In", values: ["a"] }] }, false],
    ["NotIn", { matchExpressions: [{ key: "zone", operator: "NotIn", values: ["b"] }] }, true],
    ["NotIn hit", { matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, false],
    [
      "NotIn on a missing label",
      { matchExpressions: [{ key: "rack", operator: "NotIn", values: ["a"] }] },
      true,
    ],
    ["Exists with an empty value", { matchExpressions: [{ key: "gpu", operator: "Exists" }] }, true],
    ["Exists miss", { matchExpressions: [{ key: "rack", operator: "Exists" }] }, false],
    ["DoesNotExist", { matchExpressions: [{ key: "rack", operator: "DoesNotExist" }] }, true],
    ["DoesNotExist hit", { matchExpressions: [{ key: "zone", operator: "DoesNotExist" }] }, false],
    ["Gt", { matchExpressions: [{ key: "gen", operator: "Gt", values: ["4"] }] }, true],
    ["Gt equal", { matchExpressions: [{ key: "gen", operator: "Gt", values: ["5"] }] }, false],
    ["Lt", { matchExpressions: [{ key: "gen", operator: "Lt", values: ["10"] }] }, true],
    ["Lt compares numerically", { matchExpressions: [{ key: "gen", operator: "Lt", values: ["40"] }] }, true],
    [
      "Gt on a non-integer label",
      { matchExpressions: [{ key: "zone", operator: "Gt", values: ["1"] }] },
      false,
    ],
    [
      "Gt needs exactly one value",
      { matchExpressions: [{ key: "gen", operator: "Gt", values: ["1", "2"] }] },
      false,
    ],
    ["Gt on a missing label", { matchExpressions: [{ key: "rack", operator: "Gt", values: ["1"] }] }, false],
    [
      "expressions are ANDed",
      {
        matchExpressions: [
          { key: "zone", operator: "In", values: ["a"] },
          { key: "rack", operator: "Exists" },
        ],
      },
      false,
    ],
    [
      "matchFields In",
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["worker-1"] }] },
      true,
    ],
    [
      "matchFields In miss",
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["worker-2"] }] },
      false,
    ],
    [
      "matchFields NotIn",
      { matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["worker-2"] }] },
      true,
    ],
    [
      "matchFields needs one value",
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["worker-1", "x"] }] },
      false,
    ],
    [
      "matchFields only knows metadata.name",
      { matchFields: [{ key: "spec.unschedulable", operator: "In", values: ["false"] }] },
      false,
    ],
    [
      "fields and expressions are ANDed",
      {
        matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }],
        matchFields: [{ key: "metadata.name", operator: "In", values: ["other"] }],
      },
      false,
    ],
    ["an empty term matches nothing", {}, false],
  ])("%s", (_name, term, expected) => {
    expect(nodeSelectorTermMatches(term, n)).toBe(expected);
  });

  it("ORs terms", () => {
    const miss: NodeSelectorTerm = { matchExpressions: [{ key: "zone", operator: "In", values: ["b"] }] };
    const hit: NodeSelectorTerm = { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] };
    expect(podMatchesNodeAffinity(withTerms([miss, hit]), n)).toBe(true);
    expect(podMatchesNodeAffinity(withTerms([miss]), n)).toBe(false);
    expect(podMatchesNodeAffinity(withTerms([]), n)).toBe(false);
  });

  it("requires nodeSelector and affinity together", () => {
    const hit: NodeSelectorTerm = { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] };
    expect(podMatchesNodeAffinity(withTerms([hit], { nodeSelector: { gen: "5" } }), n)).toBe(true);
    expect(podMatchesNodeAffinity(withTerms([hit], { nodeSelector: { gen: "6" } }), n)).toBe(false);
    expect(podMatchesNodeAffinity(pod({ affinity: { nodeAffinity: {} } }), n)).toBe(true);
  });

  it("schedules by matchFields metadata.name", () => {
    const pinned = withTerms([{ matchFields: [{ key: "metadata.name", operator: "In", values: ["b"] }] }]);
    expect(schedulePod(pinned, [node("a"), node("b"), node("c")], none)).toEqual({ node: "b" });
  });
});
