import { describe, expect, it } from "vitest";
import {
  computeHash,
  type DeploymentPlan,
  equalIgnoreHash,
  maxSurge,
  maxUnavailable,
  planDeployment,
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  resolveFenceposts,
  safeEncodeString,
  scaledValue,
} from "./deployment.ts";
import { rfc3339 } from "./duration.ts";
import { deploymentKind } from "./kinds/deployment.ts";
import type { Deployment, Pod, ReplicaSet } from "./types.ts";

const T0 = Date.parse("2026-11-24T12:00:00Z");

function deployment(spec: Record<string, unknown> = {}, image = "agnhost:2.52"): Deployment {
  const d: Deployment = {
    metadata: {
      name: "web",
      namespace: "default",
      uid: "d-uid",
      generation: 1,
      creationTimestamp: rfc3339(T0),
    },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image }] } },
      ...spec,
    },
  };
  deploymentKind.defaults!(d);
  return d;
}

/**
 * A tiny cluster: ReplicaSets with pods (true = ready), a ReplicaSet controller whose pod changes
 * and status updates are separate steps, a kubelet that makes pods ready, and the Deployment
 * controller's plan applied as the API would.
 */
class Sim {
  d: Deployment;
  rss: { rs: ReplicaSet; pods: boolean[] }[] = [];
  clock = T0;
  private uids = 0;
  plans: DeploymentPlan[] = [];

  constructor(d: Deployment) {
    this.d = d;
  }

  get now(): Date {
    return new Date(this.clock);
  }

  plan(): DeploymentPlan {
    this.clock += 1000;
    const plan = planDeployment({
      deployment: structuredClone(this.d),
      replicaSets: this.rss.map((x) => structuredClone(x.rs)),
      pods: [],
      now: this.now,
    });
    for (const a of plan.actions) {
      const rs = structuredClone(a.replicaSet);
      const i = this.rss.findIndex((x) => x.rs.metadata.name === rs.metadata.name);
      if (a.type === "create") {
        rs.metadata.uid = `rs-${++this.uids}`;
        rs.metadata.creationTimestamp = rfc3339(this.clock + this.uids);
        rs.metadata.generation = 1;
        this.rss.push({ rs, pods: [] });
      } else if (a.type === "update") {
        const old = this.rss[i].rs;
        if (old.spec.replicas !== rs.spec.replicas)
          rs.metadata.generation = (old.metadata.generation ?? 1) + 1;
        rs.status = old.status;
        this.rss[i].rs = rs;
      } else {
        this.rss.splice(i, 1);
      }
    }
    if (plan.deployment) {
      this.d.metadata.annotations = plan.deployment.annotations;
      this.d.status = plan.deployment.status;
    }
    this.plans.push(plan);
    return plan;
  }

  /** The ReplicaSet controller's pod changes: create up to spec, delete not-ready pods first. */
  rsPods(only?: number): void {
    for (const x of this.pick(only)) {
      const want = x.rs.spec.replicas ?? 0;
      while (x.pods.length < want) x.pods.push(false);
      while (x.pods.length > want) {
        const i = x.pods.indexOf(false);
        x.pods.splice(i >= 0 ? i : x.pods.length - 1, 1);
      }
    }
  }

  /** Each ReplicaSet's status is its own write: with `only`, just one of them catches up. */
  rsStatus(only?: number): void {
    for (const x of this.pick(only)) {
      const ready = x.pods.filter(Boolean).length;
      x.rs.status = {
        replicas: x.pods.length,
        readyReplicas: ready,
        availableReplicas: ready,
        observedGeneration: x.rs.metadata.generation,
      };
    }
  }

  private pick(only?: number) {
    return only === undefined ? this.rss : this.rss.slice(only % Math.max(1, this.rss.length)).slice(0, 1);
  }

  kubelet(): void {
    for (const x of this.rss) x.pods = x.pods.map(() => true);
  }

  counts(): { active: number; ready: number } {
    let active = 0;
    let ready = 0;
    for (const x of this.rss) {
      active += x.pods.length;
      ready += x.pods.filter(Boolean).length;
    }
    return { active, ready };
  }

  settle(limit = 200): void {
    for (let i = 0; i < limit; i++) {
      const plan = this.plan();
      this.rsPods();
      this.kubelet();
      this.rsStatus();
      if (plan.actions.length === 0 && !plan.deployment) return;
    }
    throw new Error("did not settle");
  }

  setTemplate(image: string): void {
    this.d.spec.template!.spec.containers[0].image = image;
    this.d.metadata.generation = (this.d.metadata.generation ?? 1) + 1;
  }
}

/** A seeded PRNG (mulberry32) so a failing interleaving can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("pod-template-hash", () => {
  it("is FNV-1a of the template, safe-encoded, and changes with the collision count", () => {
    const t = deployment().spec.template;
    const h = computeHash(t);
    expect(h).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(computeHash(structuredClone(t))).toBe(h);
    expect(computeHash(t, 1)).not.toBe(h);
    expect(computeHash(t, 1)).not.toBe(computeHash(t, 2));
    expect(computeHash(deployment({}, "agnhost:2.53").spec.template)).not.toBe(h);
    // Key order and empty maps do not change it.
    const reordered = { spec: t!.spec, metadata: { annotations: {}, labels: { app: "web" } } };
    expect(computeHash(reordered as any)).toBe(h);
    // Decimal digits map onto upstream's alphabet.
    expect(safeEncodeString("0123456789")).toBe("456789bcdf");
  });

  it("compares templates ignoring the hash label", () => {
    const a = deployment().spec.template!;
    const b = structuredClone(a);
    b.metadata!.labels!["pod-template-hash"] = "abc";
    expect(equalIgnoreHash(a, b)).toBe(true);
    b.spec.containers[0].image = "other";
    expect(equalIgnoreHash(a, b)).toBe(false);
  });
});

describe("maxSurge and maxUnavailable", () => {
  it("rounds surge up and unavailability down, as ResolveFenceposts", () => {
    expect(scaledValue("25%", 3, true)).toBe(1);
    expect(scaledValue("25%", 3, false)).toBe(0);
    expect(scaledValue(2, 10, true)).toBe(2);
    const d3 = deployment({ replicas: 3 });
    expect([maxSurge(d3), maxUnavailable(d3)]).toEqual([1, 0]);
    const d10 = deployment({ replicas: 10 });
    expect([maxSurge(d10), maxUnavailable(d10)]).toEqual([3, 2]);
    // Both resolving to zero allows one unavailable pod.
    const d1 = deployment({
      replicas: 1,
      strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: "10%" } },
    });
    expect(resolveFenceposts(d1)).toEqual({ surge: 0, unavailable: 1 });
    // Unavailability never exceeds the replica count; Recreate has neither.
    expect(
      maxUnavailable(deployment({ replicas: 2, strategy: { rollingUpdate: { maxUnavailable: 5 } } })),
    ).toBe(2);
    const recreate = deployment({ replicas: 4, strategy: { type: "Recreate" } });
    expect([maxSurge(recreate), maxUnavailable(recreate)]).toEqual([0, 0]);
  });
});

describe("planDeployment", () => {
  it("creates the first ReplicaSet at full size, with revision 1 and replica annotations", () => {
    const d = deployment({ replicas: 3 });
    const plan = planDeployment({ deployment: d, replicaSets: [], pods: [], now: new Date(T0) });
    expect(plan.actions).toHaveLength(1);
    const [create] = plan.actions;
    expect(create.type).toBe("create");
    const rs = create.replicaSet;
    const hash = computeHash(d.spec.template);
    expect(rs.metadata).toMatchObject({
      name: `web-${hash}`,
      namespace: "default",
      labels: { app: "web", "pod-template-hash": hash },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: "web",
          uid: "d-uid",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      annotations: {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
      },
    });
    expect(rs.spec.replicas).toBe(3);
    expect(rs.spec.selector).toEqual({ matchLabels: { app: "web", "pod-template-hash": hash } });
    expect(rs.spec.template!.metadata!.labels).toEqual({ app: "web", "pod-template-hash": hash });
    expect(create.events).toEqual([
      {
        type: "Normal",
        reason: "ScalingReplicaSet",
        message: `Scaled up replica set web-${hash} from 0 to 3`,
      },
    ]);
    expect(plan.deployment!.annotations).toEqual({ [REVISION_ANNOTATION]: "1" });
    const status = plan.deployment!.status;
    expect(status.observedGeneration).toBe(1);
    expect(status.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Progressing", "True", "NewReplicaSetCreated"],
      ["Available", "False", "MinimumReplicasUnavailable"],
    ]);
    expect(status.conditions![0].message).toBe(`Created new replica set "web-${hash}"`);
  });

  it("settles into a complete rollout that kubectl rollout status accepts", () => {
    const sim = new Sim(deployment({ replicas: 3 }));
    sim.settle();
    const s = sim.d.status!;
    expect(s).toMatchObject({
      observedGeneration: 1,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    expect(s.unavailableReplicas).toBeUndefined();
    const byType = Object.fromEntries(s.conditions!.map((c) => [c.type, c]));
    expect(byType.Available).toMatchObject({ status: "True", reason: "MinimumReplicasAvailable" });
    expect(byType.Progressing).toMatchObject({
      status: "True",
      reason: "NewReplicaSetAvailable",
      message: `ReplicaSet "${sim.rss[0].rs.metadata.name}" has successfully progressed.`,
    });
    // A settled deployment plans nothing: no write loops.
    const again = sim.plan();
    expect(again.actions).toEqual([]);
    expect(again.deployment).toBeUndefined();
  });

  for (const [replicas, surge, unavailable] of [
    [3, "25%", "25%"],
    [5, 2, 1],
    [4, 0, 1],
    [10, "30%", "20%"],
    [2, 1, 0],
  ] as const) {
    it(`rolls ${replicas} replicas with maxSurge ${surge} / maxUnavailable ${unavailable} within bounds under any interleaving`, () => {
      for (let seed = 1; seed <= 40; seed++) {
        const d = deployment({
          replicas,
          strategy: { rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } },
        });
        const max = replicas + maxSurge(d);
        const min = replicas - maxUnavailable(d);
        const sim = new Sim(d);
        sim.settle();
        sim.setTemplate("agnhost:2.53");
        const random = rng(seed);
        const any = () => Math.floor(random() * 8);
        const steps = [
          () => sim.plan(),
          () => sim.rsPods(any()),
          () => sim.rsStatus(any()),
          () => sim.kubelet(),
        ];
        let done = false;
        for (let i = 0; i < 3000 && !done; i++) {
          steps[Math.floor(random() * steps.length)]();
          const { active, ready } = sim.counts();
          expect(active, `seed ${seed} step ${i}: pods`).toBeLessThanOrEqual(max);
          expect(ready, `seed ${seed} step ${i}: ready pods`).toBeGreaterThanOrEqual(min);
          const s = sim.d.status!;
          done =
            s.observedGeneration === 2 &&
            s.updatedReplicas === replicas &&
            s.replicas === replicas &&
            s.availableReplicas === replicas;
        }
        expect(done, `seed ${seed}: rollout finished`).toBe(true);
        sim.settle();
        const live = sim.rss.filter((x) => (x.rs.spec.replicas ?? 0) > 0);
        expect(live).toHaveLength(1);
        expect(live[0].rs.spec.template!.spec.containers[0].image).toBe("agnhost:2.53");
        expect(live[0].rs.metadata.annotations![REVISION_ANNOTATION]).toBe("2");
        expect(sim.d.metadata.annotations![REVISION_ANNOTATION]).toBe("2");
      }
    });
  }

  it("scales the old ReplicaSet down only as new pods become available", () => {
    const sim = new Sim(deployment({ replicas: 3 }));
    sim.settle();
    sim.setTemplate("agnhost:2.53");
    const first = sim.plan();
    // maxSurge 1, maxUnavailable 0: one new pod, no old one removed yet.
    expect(first.actions.map((a) => [a.type, a.replicaSet.spec.replicas])).toEqual([["create", 1]]);
    sim.rsPods();
    sim.rsStatus();
    expect(sim.plan().actions).toEqual([]);
    sim.kubelet();
    sim.rsStatus();
    const next = sim.plan();
    expect(next.actions.map((a) => [a.type, a.replicaSet.spec.replicas])).toEqual([["update", 2]]);
    expect(next.actions[0].events[0].message).toMatch(/^Scaled down replica set web-\w+ from 3 to 2$/);
    expect(next.deployment!.status.conditions!.find((c) => c.type === "Progressing")).toMatchObject({
      reason: "ReplicaSetUpdated",
      message: `ReplicaSet "${sim.rss[1].rs.metadata.name}" is progressing.`,
    });
  });

  it("Recreate scales everything down before the new ReplicaSet starts", () => {
    const d = deployment({ replicas: 3, strategy: { type: "Recreate" } });
    const sim = new Sim(d);
    sim.settle();
    sim.setTemplate("agnhost:2.53");
    expect(sim.plan().actions.map((a) => [a.type, a.replicaSet.spec.replicas])).toEqual([["update", 0]]);
    // Old pods still running: nothing new yet.
    expect(sim.plan().actions).toEqual([]);
    const oldPod: Pod = {
      metadata: {
        name: "web-old-1",
        namespace: "default",
        ownerReferences: [
          {
            apiVersion: "apps/v1",
            kind: "ReplicaSet",
            name: "x",
            uid: sim.rss[0].rs.metadata.uid!,
            controller: true,
          },
        ],
        deletionTimestamp: rfc3339(T0),
      },
      spec: { containers: [] },
      status: { phase: "Running" },
    };
    sim.rsPods();
    sim.rsStatus();
    // Terminating pods of the old ReplicaSet still hold the new one back.
    const held = planDeployment({
      deployment: sim.d,
      replicaSets: sim.rss.map((x) => x.rs),
      pods: [oldPod],
      now: sim.now,
    });
    expect(held.actions).toEqual([]);
    const go = sim.plan();
    expect(go.actions.map((a) => [a.type, a.replicaSet.spec.replicas])).toEqual([["create", 3]]);
    sim.settle();
    expect(sim.counts()).toEqual({ active: 3, ready: 3 });
  });

  it("keeps revisionHistoryLimit old ReplicaSets and deletes older idle ones", () => {
    const sim = new Sim(deployment({ replicas: 1, revisionHistoryLimit: 1 }));
    sim.settle();
    for (const image of ["v2", "v3", "v4"]) {
      sim.setTemplate(image);
      sim.settle();
    }
    expect(sim.rss.map((x) => x.rs.spec.template!.spec.containers[0].image)).toEqual(["v3", "v4"]);
    const deleted = sim.plans.flatMap((p) => p.actions.filter((a) => a.type === "delete"));
    expect(deleted.map((a) => a.replicaSet.spec.template!.spec.containers[0].image)).toEqual([
      "agnhost:2.52",
      "v2",
    ]);
  });

  it("rolls back by template: the old ReplicaSet becomes the newest revision and keeps its history", () => {
    const sim = new Sim(deployment({ replicas: 2 }));
    sim.settle();
    sim.setTemplate("agnhost:2.53");
    sim.settle();
    sim.setTemplate("agnhost:2.52"); // what kubectl rollout undo writes
    sim.settle();
    expect(sim.rss).toHaveLength(2);
    const back = sim.rss.find((x) => x.rs.spec.template!.spec.containers[0].image === "agnhost:2.52")!;
    expect(back.rs.spec.replicas).toBe(2);
    expect(back.rs.metadata.annotations![REVISION_ANNOTATION]).toBe("3");
    expect(back.rs.metadata.annotations![REVISION_HISTORY_ANNOTATION]).toBe("1");
    expect(sim.d.metadata.annotations![REVISION_ANNOTATION]).toBe("3");
  });

  it("copies annotations such as change-cause onto the new ReplicaSet", () => {
    const d = deployment({ replicas: 1 });
    d.metadata.annotations = {
      "kubernetes.io/change-cause": "kubectl set image",
      "kubectl.kubernetes.io/last-applied-configuration": "{}",
    };
    const plan = planDeployment({ deployment: d, replicaSets: [], pods: [], now: new Date(T0) });
    const ann = plan.actions[0].replicaSet.metadata.annotations!;
    expect(ann["kubernetes.io/change-cause"]).toBe("kubectl set image");
    expect(ann["kubectl.kubernetes.io/last-applied-configuration"]).toBeUndefined();
  });

  it("does not roll out a paused Deployment but still scales it", () => {
    const sim = new Sim(deployment({ replicas: 2 }));
    sim.settle();
    sim.d.spec.paused = true;
    sim.setTemplate("agnhost:2.53");
    sim.settle();
    expect(sim.rss).toHaveLength(1);
    expect(sim.d.status!.conditions!.find((c) => c.type === "Progressing")).toMatchObject({
      status: "Unknown",
      reason: "DeploymentPaused",
      message: "Deployment is paused",
    });
    sim.d.spec.replicas = 4;
    sim.d.metadata.generation! += 1;
    sim.settle();
    expect(sim.rss.map((x) => x.rs.spec.replicas)).toEqual([4]);
    sim.d.spec.paused = false;
    sim.d.metadata.generation! += 1;
    sim.settle();
    expect(sim.rss.map((x) => [x.rs.spec.template!.spec.containers[0].image, x.rs.spec.replicas])).toEqual([
      ["agnhost:2.52", 0],
      ["agnhost:2.53", 4],
    ]);
  });

  it("scales a rollout in progress proportionally", () => {
    const sim = new Sim(
      deployment({ replicas: 10, strategy: { rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } } }),
    );
    sim.settle();
    sim.setTemplate("agnhost:2.53");
    sim.plan(); // new RS at 3 (surge), old scaled to 8 (unavailable 2)
    expect(sim.rss.map((x) => x.rs.spec.replicas)).toEqual([8, 3]);
    sim.d.spec.replicas = 20;
    sim.d.metadata.generation! += 1;
    const plan = sim.plan();
    // 23 allowed (20 + surge 3... of the new size: 20 + 5 = 25 would be 25% but surge is fixed at 3).
    const sizes = sim.rss.map((x) => x.rs.spec.replicas!);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(23);
    expect(sizes[0]).toBeGreaterThan(sizes[1]);
    expect(plan.actions.every((a) => a.type === "update")).toBe(true);
  });

  it("reports ProgressDeadlineExceeded when nothing progresses in time", () => {
    const d = deployment({ replicas: 1, progressDeadlineSeconds: 5 });
    const sim = new Sim(d);
    sim.plan();
    sim.rsPods();
    sim.rsStatus(); // the pod never turns ready
    expect(sim.plan().requeueAfterMs).toBeGreaterThan(0);
    sim.clock += 10_000;
    const plan = sim.plan();
    expect(plan.deployment!.status.conditions!.find((c) => c.type === "Progressing")).toMatchObject({
      status: "False",
      reason: "ProgressDeadlineExceeded",
      message: `ReplicaSet "${sim.rss[0].rs.metadata.name}" has timed out progressing.`,
    });
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it("names the new ReplicaSet after the collision count", () => {
    const d = deployment({ replicas: 1 });
    d.status = { collisionCount: 1 };
    const plan = planDeployment({ deployment: d, replicaSets: [], pods: [], now: new Date(T0) });
    expect(plan.actions[0].replicaSet.metadata.name).toBe(`web-${computeHash(d.spec.template, 1)}`);
    expect(plan.deployment!.status.collisionCount).toBe(1);
  });

  it("only reports status while being deleted", () => {
    const sim = new Sim(deployment({ replicas: 2 }));
    sim.settle();
    sim.d.metadata.deletionTimestamp = rfc3339(T0);
    sim.setTemplate("agnhost:2.53");
    const plan = sim.plan();
    expect(plan.actions).toEqual([]);
    expect(plan.deployment?.status.observedGeneration).toBe(2);
  });
});
