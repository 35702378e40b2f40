import { describe, expect, it } from "vitest";
import { rfc3339 } from "./duration.ts";
import { Expectations } from "./expectations.ts";
import { labelSelectorFromObject } from "./label-selector.ts";
import {
  claimObjects,
  isPodAvailable,
  nextAvailabilityAt,
  podFromTemplate,
  podsToDelete,
  replicaSetStatus,
  slowStartBatches,
} from "./replica-set.ts";
import type { Pod, ReplicaSet } from "./types.ts";

const NOW = new Date("2026-11-24T12:00:00Z");
const ago = (s: number) => rfc3339(NOW.getTime() - s * 1000);

function rs(extra: Partial<ReplicaSet["spec"]> = {}): ReplicaSet {
  return {
    metadata: { name: "web-abc", namespace: "default", uid: "rs-uid", generation: 2 },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web", tier: "front" }, annotations: { note: "x" } },
        spec: { containers: [{ name: "app", image: "nginx" }] },
      },
      ...extra,
    },
  };
}

interface PodOpts {
  node?: string;
  phase?: string;
  ready?: boolean;
  readySince?: number;
  created?: number;
  restarts?: number;
  labels?: Record<string, string>;
  owner?: string;
  deleting?: boolean;
}

function pod(name: string, o: PodOpts = {}): Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      labels: o.labels ?? { app: "web" },
      creationTimestamp: ago(o.created ?? 600),
      ...(o.owner
        ? {
            ownerReferences: [
              { apiVersion: "apps/v1", kind: "ReplicaSet", name: "x", uid: o.owner, controller: true },
            ],
          }
        : {}),
      ...(o.deleting ? { deletionTimestamp: ago(0) } : {}),
    },
    spec: { containers: [{ name: "app" }], nodeName: o.node ?? "n1" },
    status: {
      phase: (o.phase ?? "Running") as Pod["status"] extends infer S
        ? S extends { phase?: infer P }
          ? P
          : never
        : never,
      conditions: [
        {
          type: "Ready",
          status: (o.ready ?? true) ? "True" : "False",
          lastTransitionTime: ago(o.readySince ?? 300),
        },
      ],
      containerStatuses: [{ name: "app", restartCount: o.restarts ?? 0 }],
    },
  };
}

describe("claimObjects", () => {
  const sel = labelSelectorFromObject({ matchLabels: { app: "web" } });
  it("keeps ours, adopts matching orphans, releases ours that stopped matching, ignores others", () => {
    const owner = rs();
    const mine = pod("mine", { owner: "rs-uid" });
    const orphan = pod("orphan");
    const stray = pod("stray", { owner: "rs-uid", labels: { app: "db" } });
    const theirs = pod("theirs", { owner: "other" });
    const unmatched = pod("unmatched", { labels: { app: "db" } });
    const dying = pod("dying", { deleting: true });
    const claim = claimObjects(owner, sel, [mine, orphan, stray, theirs, unmatched, dying]);
    expect(claim.owned.map((p) => p.metadata.name)).toEqual(["mine"]);
    expect(claim.adopt.map((p) => p.metadata.name)).toEqual(["orphan"]);
    expect(claim.release.map((p) => p.metadata.name)).toEqual(["stray"]);
  });

  it("neither adopts nor releases while the owner is being deleted", () => {
    const owner = rs();
    owner.metadata.deletionTimestamp = ago(0);
    const claim = claimObjects(owner, sel, [
      pod("mine", { owner: "rs-uid" }),
      pod("orphan"),
      pod("stray", { owner: "rs-uid", labels: {} }),
    ]);
    expect(claim.owned.map((p) => p.metadata.name)).toEqual(["mine"]);
    expect(claim.adopt).toEqual([]);
    expect(claim.release).toEqual([]);
  });
});

describe("podsToDelete", () => {
  const names = (pods: Pod[]) => pods.map((p) => p.metadata.name);
  it("prefers unscheduled, then pending, then not ready", () => {
    const pods = [
      pod("running"),
      pod("pending", { phase: "Pending", ready: false }),
      pod("unscheduled", { node: "", phase: "Pending", ready: false }),
      pod("unknown", { phase: "Unknown" }),
      pod("not-ready", { ready: false }),
    ];
    expect(names(podsToDelete(pods, pods, 4, NOW))).toEqual([
      "unscheduled",
      "pending",
      "unknown",
      "not-ready",
    ]);
    expect(names(podsToDelete(pods, pods, 2, NOW))).toEqual(["unscheduled", "pending"]);
  });

  it("then pods doubled up on a node, recently ready, restarted, and newest", () => {
    const a = pod("alone", { node: "n2" });
    const b = pod("crowded-1", { node: "n1" });
    const c = pod("crowded-2", { node: "n1" });
    expect(names(podsToDelete([a, b], [a, b, c], 1, NOW))).toEqual(["crowded-1"]);
    const fresh = pod("fresh", { readySince: 5 });
    const old = pod("old", { readySince: 5000 });
    expect(names(podsToDelete([old, fresh], [], 1, NOW))).toEqual(["fresh"]);
    const flaky = pod("flaky", { restarts: 4 });
    const steady = pod("steady");
    expect(names(podsToDelete([steady, flaky], [], 1, NOW))).toEqual(["flaky"]);
    const newer = pod("newer", { created: 10, ready: false });
    const older = pod("older", { created: 100000, ready: false });
    expect(names(podsToDelete([older, newer], [], 1, NOW))).toEqual(["newer"]);
  });

  it("returns nothing for zero and everything for more than there are", () => {
    const pods = [pod("a"), pod("b")];
    expect(podsToDelete(pods, pods, 0, NOW)).toEqual([]);
    expect(podsToDelete(pods, pods, 5, NOW)).toHaveLength(2);
  });
});

describe("podFromTemplate", () => {
  it("copies labels, annotations and spec, with generateName and a controller reference", () => {
    const p = podFromTemplate(rs());
    expect(p.metadata).toEqual({
      generateName: "web-abc-",
      namespace: "default",
      labels: { app: "web", tier: "front" },
      annotations: { note: "x" },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "web-abc",
          uid: "rs-uid",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(p.spec).toEqual({ containers: [{ name: "app", image: "nginx" }] });
  });

  it("creates in slow-start batches", () => {
    expect(slowStartBatches(1)).toEqual([1]);
    expect(slowStartBatches(10)).toEqual([1, 2, 4, 3]);
    expect(slowStartBatches(0)).toEqual([]);
  });
});

describe("replicaSetStatus", () => {
  it("counts replicas, fully labeled, ready and available pods", () => {
    const pods = [
      pod("a", { labels: { app: "web", tier: "front" } }),
      pod("b", { labels: { app: "web", tier: "front" }, ready: false }),
      pod("c", { readySince: 2 }),
    ];
    expect(replicaSetStatus(rs({ minReadySeconds: 10 }), pods, NOW)).toEqual({
      replicas: 3,
      fullyLabeledReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 1,
      observedGeneration: 2,
    });
    expect(replicaSetStatus(rs(), [], NOW)).toEqual({ replicas: 0, observedGeneration: 2 });
  });

  it("reports and clears a ReplicaFailure condition", () => {
    const failing = replicaSetStatus(rs(), [], NOW, { reason: "FailedCreate", message: "quota", at: ago(0) });
    expect(failing.conditions).toEqual([
      {
        type: "ReplicaFailure",
        status: "True",
        reason: "FailedCreate",
        message: "quota",
        lastTransitionTime: ago(0),
      },
    ]);
    const r = rs();
    r.status = failing;
    expect(replicaSetStatus(r, [], NOW).conditions).toBeUndefined();
  });

  it("knows when a ready pod becomes available", () => {
    const p = pod("p", { readySince: 3 });
    expect(isPodAvailable(p, 0, NOW)).toBe(true);
    expect(isPodAvailable(p, 5, NOW)).toBe(false);
    expect(nextAvailabilityAt([p, pod("q", { readySince: 100 })], 5, NOW)).toBe(NOW.getTime() + 2000);
    expect(nextAvailabilityAt([p], 0, NOW)).toBeUndefined();
  });
});

describe("Expectations", () => {
  it("holds a key until every creation and deletion it asked for is observed", () => {
    let now = 0;
    const e = new Expectations({ ttlMs: 1000, now: () => now });
    expect(e.satisfied("ns/rs")).toBe(true);
    e.expectCreations("ns/rs", 2);
    expect(e.satisfied("ns/rs")).toBe(false);
    e.creationObserved("ns/rs");
    e.creationObserved("ns/rs");
    expect(e.satisfied("ns/rs")).toBe(true);
    e.expectDeletions("ns/rs", ["ns/a", "ns/b"]);
    e.deletionObserved("ns/rs", "ns/a");
    e.deletionObserved("ns/rs", "ns/a");
    expect(e.pending("ns/rs")).toEqual({ add: 0, del: 1 });
    expect(e.satisfied("ns/rs")).toBe(false);
    now = 1001; // a lost event never wedges the controller
    expect(e.satisfied("ns/rs")).toBe(true);
    e.delete("ns/rs");
    expect(e.pending("ns/rs")).toEqual({ add: 0, del: 0 });
  });
});
