// apps/v1 Deployments and ReplicaSets over HTTP: validation, the scale subresource, the ReplicaSet
// controller (creation, adoption, release, deletion order, expectations), the Deployment
// controller (rolling updates checked against maxSurge/maxUnavailable after every pod event,
// Recreate, minReadySeconds, pause, history, progress deadline) and owner-reference garbage
// collection with each propagation policy. A fake kubelet reports bound pods Running and Ready.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeKubelet, isReady, replayPods, startFakeKubelet } from "../fake-kubelet.ts";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  eventsFor,
  expectFailure,
  expectStatus,
  get,
  gone,
  mergePatch,
  podBody,
  registerNode,
} from "./helpers.ts";

const NS = "wl";
const PODS = `/api/v1/namespaces/${NS}/pods`;
const DEPLOYS = `/apis/apps/v1/namespaces/${NS}/deployments`;
const RSS = `/apis/apps/v1/namespaces/${NS}/replicasets`;
const WAIT = 20_000;
const TABLE = { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" };
const SMP = { "content-type": "application/strategic-merge-patch+json" };

function deploymentBody(name: string, spec: Record<string, unknown> = {}, image = "nginx:1.27"): any {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image }] } },
      ...spec,
    },
  };
}

function replicaSetBody(name: string, replicas: number, labels: Record<string, string> = { app: name }): any {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "app", image: "nginx:1.27" }] } },
    },
  };
}

describe("workloads", () => {
  let c: TestCluster;
  let kubelet: FakeKubelet;

  beforeAll(async () => {
    c = await startTestCluster({ nodeMonitorGracePeriodMs: 3_600_000 });
    await createNamespace(c, NS);
    await registerNode(c, "n1");
    await registerNode(c, "n2");
    kubelet = startFakeKubelet(c, NS);
  });
  afterAll(async () => {
    await kubelet?.stop();
    await c?.close();
  });

  async function pods(app: string): Promise<any[]> {
    return (await get(c, `${PODS}?labelSelector=${encodeURIComponent(`app=${app}`)}`)).items;
  }

  async function replicaSets(app: string): Promise<any[]> {
    return (await get(c, `${RSS}?labelSelector=${encodeURIComponent(`app=${app}`)}`)).items;
  }

  /** What `kubectl rollout status` waits for. */
  async function rolledOut(name: string): Promise<any> {
    return eventually(async () => {
      const d = await get(c, `${DEPLOYS}/${name}`);
      const s = d.status ?? {};
      const want = d.spec.replicas;
      const done =
        d.metadata.generation <= (s.observedGeneration ?? 0) &&
        (s.updatedReplicas ?? 0) === want &&
        (s.replicas ?? 0) === want &&
        (s.availableReplicas ?? 0) === want;
      return done ? d : undefined;
    }, WAIT);
  }

  async function removeDeployment(name: string): Promise<void> {
    expectStatus(await c.request("DELETE", `${DEPLOYS}/${name}`), 200);
    await eventually(
      async () => (await pods(name)).length === 0 && (await replicaSets(name)).length === 0,
      WAIT,
    );
  }

  it("is discoverable under apps/v1 with status and scale subresources", async () => {
    const list = await get(c, "/apis/apps/v1");
    const byName = Object.fromEntries(list.resources.map((r: any) => [r.name, r]));
    expect(byName.deployments).toMatchObject({
      kind: "Deployment",
      namespaced: true,
      shortNames: ["deploy"],
      categories: ["all"],
    });
    expect(byName.replicasets).toMatchObject({ kind: "ReplicaSet", shortNames: ["rs"] });
    expect(byName["deployments/scale"]).toMatchObject({ group: "autoscaling", version: "v1", kind: "Scale" });
    expect(byName["replicasets/scale"]).toMatchObject({ group: "autoscaling", version: "v1", kind: "Scale" });
    expect(byName["deployments/status"].kind).toBe("Deployment");
    expect((await get(c, "/apis")).groups.map((g: any) => g.name)).toContain("apps");
  });

  it("runs a Deployment: a ReplicaSet named by template hash, owned pods, and a complete status", async () => {
    const created = await create(c, DEPLOYS, deploymentBody("web"));
    expect(created.spec.strategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" },
    });
    expect(created.metadata.generation).toBe(1);
    const d = await rolledOut("web");
    expect(d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("1");
    expect(d.status).toMatchObject({
      observedGeneration: 1,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    const conditions = Object.fromEntries(d.status.conditions.map((x: any) => [x.type, x]));
    expect(conditions.Available).toMatchObject({ status: "True", reason: "MinimumReplicasAvailable" });
    expect(conditions.Progressing).toMatchObject({ status: "True", reason: "NewReplicaSetAvailable" });

    const [rs] = await replicaSets("web");
    const hash = rs.metadata.labels["pod-template-hash"];
    expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(rs.metadata.name).toBe(`web-${hash}`);
    expect(rs.metadata.ownerReferences).toEqual([
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: "web",
        uid: d.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(rs.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "1",
      "deployment.kubernetes.io/desired-replicas": "3",
      "deployment.kubernetes.io/max-replicas": "4",
    });
    expect(rs.spec.selector.matchLabels).toEqual({ app: "web", "pod-template-hash": hash });
    expect(rs.status).toMatchObject({
      replicas: 3,
      fullyLabeledReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    expect(conditions.Progressing.message).toBe(`ReplicaSet "web-${hash}" has successfully progressed.`);

    const ps = await pods("web");
    expect(ps).toHaveLength(3);
    for (const p of ps) {
      expect(p.metadata.name).toMatch(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      expect(p.metadata.labels).toEqual({ app: "web", "pod-template-hash": hash });
      expect(p.metadata.ownerReferences).toEqual([
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: rs.metadata.name,
          uid: rs.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(p.spec.tolerations).toHaveLength(2); // defaulted as a pod, not as a template
    }
    const scaled = await eventually(
      async () => (await eventsFor(c, NS, "web", "ScalingReplicaSet"))[0],
      WAIT,
    );
    expect(scaled.message).toBe(`Scaled up replica set web-${hash} from 0 to 3`);
    const created1 = await eventually(
      async () => (await eventsFor(c, NS, rs.metadata.name, "SuccessfulCreate")).length === 3,
      WAIT,
    );
    expect(created1).toBe(true);

    const table = expectStatus(await c.request("GET", DEPLOYS, { headers: TABLE }), 200).json;
    expect(table.columnDefinitions.map((x: any) => x.name)).toEqual([
      "Name",
      "Ready",
      "Up-to-date",
      "Available",
      "Age",
      "Containers",
      "Images",
      "Selector",
    ]);
    expect(table.rows[0].cells.slice(0, 4)).toEqual(["web", "3/3", 3, 3]);
    expect(table.rows[0].cells.slice(5)).toEqual(["app", "nginx:1.27", "app=web"]);
    const rsTable = expectStatus(await c.request("GET", RSS, { headers: TABLE }), 200).json;
    expect(rsTable.rows[0].cells.slice(0, 4)).toEqual([rs.metadata.name, 3, 3, 3]);
    expect(rsTable.rows[0].cells.at(-1)).toBe(`app=web,pod-template-hash=${hash}`);
    await removeDeployment("web");
  });

  it("refuses invalid Deployments with upstream's messages and writes nothing", async () => {
    const mismatch = deploymentBody("bad");
    mismatch.spec.selector = { matchLabels: { app: "other" } };
    const s = expectFailure(await c.request("POST", DEPLOYS, { body: mismatch }), 422, "Invalid");
    expect(s.message).toBe(
      'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"bad"}: `selector` does not match template `labels`',
    );
    expect(s.details).toMatchObject({ name: "bad", group: "apps", kind: "Deployment" });
    expect(s.details.causes).toEqual([
      {
        reason: "FieldValueInvalid",
        field: "spec.template.metadata.labels",
        message: 'Invalid value: map[string]string{"app":"bad"}: `selector` does not match template `labels`',
      },
    ]);
    const many = deploymentBody("bad", {
      replicas: -1,
      strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } },
    });
    const m = expectFailure(await c.request("POST", DEPLOYS, { body: many }), 422, "Invalid");
    expect(m.details.causes.map((x: any) => x.field)).toEqual([
      "spec.replicas",
      "spec.strategy.rollingUpdate.maxUnavailable",
    ]);
    expect(m.message).toContain("may not be 0 when `maxSurge` is 0");
    expectFailure(await c.request("GET", `${DEPLOYS}/bad`), 404, "NotFound");

    // The selector is immutable once created.
    await create(c, DEPLOYS, deploymentBody("fixed", { replicas: 0 }));
    const relabel = await c.request("PATCH", `${DEPLOYS}/fixed`, {
      body: {
        spec: {
          selector: { matchLabels: { app: "fixed", v: "2" } },
          template: { metadata: { labels: { app: "fixed", v: "2" } } },
        },
      },
    });
    const r = expectFailure(relabel, 422, "Invalid");
    expect(r.message).toContain("spec.selector: Invalid value: v1.LabelSelector{");
    expect(r.message).toContain("field is immutable");
    const bad = expectFailure(
      await c.request("POST", RSS, {
        body: {
          ...replicaSetBody("rs-bad", 1),
          spec: { ...replicaSetBody("rs-bad", 1).spec, selector: undefined },
        },
      }),
      422,
      "Invalid",
    );
    expect(bad.details.causes[0]).toMatchObject({ field: "spec.selector", message: "Required value" });
    await removeDeployment("fixed");
  });

  it("scales through the autoscaling/v1 scale subresource", async () => {
    await create(c, DEPLOYS, deploymentBody("scaled", { replicas: 1 }));
    await rolledOut("scaled");
    const scale = await get(c, `${DEPLOYS}/scaled/scale`);
    expect(scale).toMatchObject({
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: { name: "scaled", namespace: NS },
      spec: { replicas: 1 },
      status: { replicas: 1, selector: "app=scaled" },
    });
    // kubectl scale sends a merge patch of spec.replicas.
    const patched = expectStatus(
      await c.request("PATCH", `${DEPLOYS}/scaled/scale`, { body: { spec: { replicas: 4 } } }),
      200,
    ).json;
    expect(patched.spec.replicas).toBe(4);
    const d = await rolledOut("scaled");
    expect(d.metadata.generation).toBe(2);
    expect(await pods("scaled")).toHaveLength(4);

    const put = await c.request("PUT", `${DEPLOYS}/scaled/scale`, {
      body: {
        kind: "Scale",
        apiVersion: "autoscaling/v1",
        metadata: { name: "scaled" },
        spec: { replicas: 2 },
      },
    });
    expect(expectStatus(put, 200).json.spec.replicas).toBe(2);
    await rolledOut("scaled");
    await eventually(async () => (await pods("scaled")).length === 2, WAIT);

    const stale = await c.request("PUT", `${DEPLOYS}/scaled/scale`, {
      body: {
        metadata: { name: "scaled", resourceVersion: scale.metadata.resourceVersion },
        spec: { replicas: 9 },
      },
    });
    expectFailure(stale, 409, "Conflict");
    const negative = await c.request("PUT", `${DEPLOYS}/scaled/scale`, { body: { spec: { replicas: -1 } } });
    expect(expectFailure(negative, 422, "Invalid").message).toBe(
      'Scale.autoscaling "scaled" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    );
    expect((await get(c, `${DEPLOYS}/scaled`)).spec.replicas).toBe(2);
    const [rs] = await replicaSets("scaled");
    const rsScale = await get(c, `${RSS}/${rs.metadata.name}/scale`);
    expect(rsScale).toMatchObject({ kind: "Scale", spec: { replicas: 2 }, status: { replicas: 2 } });
    expect(rsScale.status.selector).toBe(
      `app=scaled,pod-template-hash=${rs.metadata.labels["pod-template-hash"]}`,
    );
    expectFailure(await c.request("GET", `${DEPLOYS}/missing/scale`), 404, "NotFound");
    await removeDeployment("scaled");
  });

  it("rolls out a new template within maxSurge and maxUnavailable after every pod event", async () => {
    const strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 2, maxUnavailable: 1 } };
    await create(c, DEPLOYS, deploymentBody("roll", { replicas: 5, strategy }));
    const before = await rolledOut("roll");
    const start = await get(c, `${PODS}?labelSelector=app%3Droll`);
    const w = c.watch(
      `${PODS}?watch=1&labelSelector=app%3Droll&resourceVersion=${start.metadata.resourceVersion}`,
    );
    try {
      const patch = { spec: { template: { spec: { containers: [{ name: "app", image: "nginx:1.28" }] } } } };
      expectStatus(await c.request("PATCH", `${DEPLOYS}/roll`, { body: patch, headers: SMP }), 200);
      const after = await rolledOut("roll");
      expect(after.metadata.generation).toBe(before.metadata.generation + 1);
      await eventually(
        async () => (await pods("roll")).every((p) => p.spec.containers[0].image === "nginx:1.28"),
        WAIT,
      );
      await eventually(async () => (await pods("roll")).length === 5, WAIT);
    } finally {
      w.close();
    }
    const oldHash = start.items[0].metadata.labels["pod-template-hash"];
    let mixed = false;
    replayPods(start.items, w.events, (ps) => {
      const active = [...ps.values()].filter((p) => !p.metadata.deletionTimestamp);
      const ready = active.filter(isReady).length;
      if (new Set(active.map((p) => p.metadata.labels["pod-template-hash"] === oldHash)).size === 2)
        mixed = true;
      expect(active.length, "pods never exceed replicas + maxSurge").toBeLessThanOrEqual(7);
      expect(ready, "ready pods never drop below replicas - maxUnavailable").toBeGreaterThanOrEqual(4);
    });
    expect(w.events.length).toBeGreaterThan(10);
    // Old and new pods served side by side: a rolling update, not a recreate.
    expect(mixed).toBe(true);
    const rss = await replicaSets("roll");
    expect(rss.map((r: any) => [r.spec.template.spec.containers[0].image, r.spec.replicas]).sort()).toEqual([
      ["nginx:1.27", 0],
      ["nginx:1.28", 5],
    ]);
    const revisions = Object.fromEntries(
      rss.map((r: any) => [
        r.spec.template.spec.containers[0].image,
        r.metadata.annotations["deployment.kubernetes.io/revision"],
      ]),
    );
    expect(revisions).toEqual({ "nginx:1.27": "1", "nginx:1.28": "2" });
    const downs = await eventsFor(c, NS, "roll", "ScalingReplicaSet");
    expect(downs.some((e) => /^Scaled down replica set roll-\w+ from \d+ to \d+$/.test(e.message))).toBe(
      true,
    );
    await removeDeployment("roll");
  });

  it("Recreate removes every old pod before it creates a new one", async () => {
    await create(c, DEPLOYS, deploymentBody("recreate", { replicas: 3, strategy: { type: "Recreate" } }));
    await rolledOut("recreate");
    const start = await get(c, `${PODS}?labelSelector=app%3Drecreate`);
    const oldHash = start.items[0].metadata.labels["pod-template-hash"];
    const w = c.watch(
      `${PODS}?watch=1&labelSelector=app%3Drecreate&resourceVersion=${start.metadata.resourceVersion}`,
    );
    try {
      await mergePatch(c, `${DEPLOYS}/recreate`, {
        spec: { template: { metadata: { labels: { app: "recreate", v: "2" } } } },
      });
      await rolledOut("recreate");
      await eventually(async () => (await pods("recreate")).length === 3, WAIT);
    } finally {
      w.close();
    }
    let sawNew = false;
    replayPods(start.items, w.events, (ps) => {
      const all = [...ps.values()];
      const old = all.filter((p) => p.metadata.labels["pod-template-hash"] === oldHash);
      const fresh = all.filter((p) => p.metadata.labels["pod-template-hash"] !== oldHash);
      if (fresh.length) sawNew = true;
      expect(old.length === 0 || fresh.length === 0, "old and new pods never coexist").toBe(true);
    });
    expect(sawNew).toBe(true);
    await removeDeployment("recreate");
  });

  it("counts a pod available only after minReadySeconds", async () => {
    await create(c, DEPLOYS, deploymentBody("slow", { replicas: 2, minReadySeconds: 3 }));
    const w = c.watch(`${RSS}?watch=1&labelSelector=app%3Dslow`);
    try {
      const d = await rolledOut("slow");
      expect(d.status.availableReplicas).toBe(2);
    } finally {
      w.close();
    }
    const statuses = w.events.map((e) => e.object.status ?? {});
    // Ready before available: some status had both pods ready and none available yet.
    expect(statuses.some((s) => s.readyReplicas === 2 && !s.availableReplicas)).toBe(true);
    expect(statuses.at(-1)).toMatchObject({ readyReplicas: 2, availableReplicas: 2 });
    const [rs] = await replicaSets("slow");
    expect(rs.spec.minReadySeconds).toBe(3);
    await removeDeployment("slow");
  });

  it("holds a paused Deployment's rollout until it is resumed, and keeps revisionHistoryLimit ReplicaSets", async () => {
    await create(c, DEPLOYS, deploymentBody("paused", { replicas: 2, revisionHistoryLimit: 1 }));
    await rolledOut("paused");
    await mergePatch(c, `${DEPLOYS}/paused`, { spec: { paused: true } });
    const image = (v: string) => ({
      spec: { template: { spec: { containers: [{ name: "app", image: v }] } } },
    });
    expectStatus(
      await c.request("PATCH", `${DEPLOYS}/paused`, { body: image("nginx:1.28"), headers: SMP }),
      200,
    );
    const held = await eventually(async () => {
      const d = await get(c, `${DEPLOYS}/paused`);
      return d.status.observedGeneration === d.metadata.generation ? d : undefined;
    }, WAIT);
    expect(held.status.conditions.find((x: any) => x.type === "Progressing")).toMatchObject({
      status: "Unknown",
      reason: "DeploymentPaused",
    });
    expect(await replicaSets("paused")).toHaveLength(1);
    // Scaling still works while paused.
    await mergePatch(c, `${DEPLOYS}/paused`, { spec: { replicas: 3 } });
    await eventually(async () => (await pods("paused")).length === 3, WAIT);
    expect((await pods("paused")).every((p) => p.spec.containers[0].image === "nginx:1.27")).toBe(true);

    await mergePatch(c, `${DEPLOYS}/paused`, { spec: { paused: false } });
    await rolledOut("paused");
    await eventually(
      async () => (await pods("paused")).every((p) => p.spec.containers[0].image === "nginx:1.28"),
      WAIT,
    );
    expectStatus(
      await c.request("PATCH", `${DEPLOYS}/paused`, { body: image("nginx:1.29"), headers: SMP }),
      200,
    );
    await rolledOut("paused");
    // revisionHistoryLimit 1: the new ReplicaSet and one old one remain.
    const rss = (await eventually(async () => {
      const list = await replicaSets("paused");
      return list.length === 2 ? list : undefined;
    }, WAIT))!;
    expect(rss.map((r: any) => r.spec.template.spec.containers[0].image).sort()).toEqual([
      "nginx:1.28",
      "nginx:1.29",
    ]);
    await removeDeployment("paused");
  });

  it("reports ProgressDeadlineExceeded when pods never turn ready", async () => {
    kubelet.ready = (p) => p.metadata.labels?.app !== "stuck";
    try {
      await create(c, DEPLOYS, deploymentBody("stuck", { replicas: 1, progressDeadlineSeconds: 1 }));
      const cond = await eventually(async () => {
        const d = await get(c, `${DEPLOYS}/stuck`);
        const p = d.status?.conditions?.find((x: any) => x.type === "Progressing");
        return p?.reason === "ProgressDeadlineExceeded" ? p : undefined;
      }, WAIT);
      expect(cond).toMatchObject({
        status: "False",
        message: expect.stringMatching(/^ReplicaSet "stuck-\w+" has timed out progressing\.$/),
      });
      const d = await get(c, `${DEPLOYS}/stuck`);
      expect(d.status.conditions.find((x: any) => x.type === "Available")).toMatchObject({
        status: "False",
        reason: "MinimumReplicasUnavailable",
      });
      expect(d.status.unavailableReplicas).toBe(1);
    } finally {
      kubelet.ready = () => true;
    }
    await removeDeployment("stuck");
  });

  it("a ReplicaSet adopts matching orphans, releases pods that stop matching, and replaces lost pods", async () => {
    await create(c, PODS, podBody("orphan", { labels: { app: "team" } }));
    const rs = await create(c, RSS, replicaSetBody("team", 2));
    const owned = (await eventually(async () => {
      const ps = await pods("team");
      return ps.length === 2 && ps.every((p) => p.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid)
        ? ps
        : undefined;
    }, WAIT))!;
    expect(owned.map((p: any) => p.metadata.name)).toContain("orphan");
    const status = await eventually(async () => {
      const s = (await get(c, `${RSS}/team`)).status;
      return s.readyReplicas === 2 ? s : undefined;
    }, WAIT);
    expect(status).toMatchObject({
      replicas: 2,
      fullyLabeledReplicas: 2,
      availableReplicas: 2,
      observedGeneration: 1,
    });

    // Relabel one pod out of the selector: it is released and replaced.
    await mergePatch(c, `${PODS}/orphan`, { metadata: { labels: { app: "elsewhere" } } });
    await eventually(async () => !(await get(c, `${PODS}/orphan`)).metadata.ownerReferences, WAIT);
    await eventually(
      async () => (await pods("team")).filter((p) => !p.metadata.deletionTimestamp).length === 2,
      WAIT,
    );
    expectStatus(await c.request("DELETE", `${PODS}/orphan?gracePeriodSeconds=0`), 200);

    // A deleted pod is replaced.
    const [victim] = await pods("team");
    expectStatus(await c.request("DELETE", `${PODS}/${victim.metadata.name}`), 200);
    await eventually(async () => {
      const ps = (await pods("team")).filter((p) => !p.metadata.deletionTimestamp);
      return ps.length === 2 && !ps.some((p) => p.metadata.name === victim.metadata.name);
    }, WAIT);

    // Scaling down removes the not-ready pod first.
    await mergePatch(c, `${RSS}/team`, { spec: { replicas: 3 } });
    const three = (await eventually(async () => {
      const ps = await pods("team");
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    }, WAIT))!;
    const unready = three[1].metadata.name;
    kubelet.ready = (p) => p.metadata.name !== unready;
    try {
      await eventually(async () => !isReady(await get(c, `${PODS}/${unready}`)), WAIT);
      await mergePatch(c, `${RSS}/team`, { spec: { replicas: 2 } });
      await gone(c, `${PODS}/${unready}`, WAIT);
      expect((await pods("team")).map((p) => p.metadata.name).sort()).toEqual(
        three
          .map((p: any) => p.metadata.name)
          .filter((n: string) => n !== unready)
          .sort(),
      );
    } finally {
      kubelet.ready = () => true;
    }
    const deletedEvents = await eventsFor(c, NS, "team", "SuccessfulDelete");
    expect(deletedEvents.map((e) => e.message)).toContain(`Deleted pod: ${unready}`);
    expectStatus(await c.request("DELETE", `${RSS}/team`), 200);
    await eventually(async () => (await pods("team")).length === 0, WAIT);
  });

  it("never creates more pods than replicas, however many events arrive meanwhile", async () => {
    const start = await get(c, PODS);
    const w = c.watch(
      `${PODS}?watch=1&labelSelector=app%3Dburst&resourceVersion=${start.metadata.resourceVersion}`,
    );
    try {
      await create(c, RSS, replicaSetBody("burst", 20));
      // Poke the ReplicaSet repeatedly while it creates, each write queueing another sync.
      for (let i = 0; i < 15; i++) {
        await mergePatch(c, `${RSS}/burst`, { metadata: { annotations: { poke: String(i) } } });
      }
      await eventually(async () => (await get(c, `${RSS}/burst`)).status.readyReplicas === 20, WAIT);
      await mergePatch(c, `${RSS}/burst`, { metadata: { annotations: { poke: "last" } } });
      await eventually(async () => (await get(c, `${RSS}/burst`)).metadata.annotations.poke === "last", WAIT);
    } finally {
      w.close();
    }
    const added = w.events.filter((e) => e.type === "ADDED");
    expect(added).toHaveLength(20);
    expect(await pods("burst")).toHaveLength(20);
    expectStatus(await c.request("DELETE", `${RSS}/burst`), 200);
    await eventually(async () => (await pods("burst")).length === 0, WAIT);
  });

  it("a namespace holding a Deployment terminates without the controllers recreating anything", async () => {
    await createNamespace(c, "wl-doomed");
    const local = startFakeKubelet(c, "wl-doomed");
    try {
      await create(
        c,
        "/apis/apps/v1/namespaces/wl-doomed/deployments",
        deploymentBody("web", { replicas: 3 }),
      );
      await eventually(async () => {
        const d = await get(c, "/apis/apps/v1/namespaces/wl-doomed/deployments/web");
        return d.status?.availableReplicas === 3;
      }, WAIT);
      expectStatus(await c.request("DELETE", "/api/v1/namespaces/wl-doomed"), 200);
      await gone(c, "/api/v1/namespaces/wl-doomed", WAIT);
      for (const path of ["/api/v1/pods", "/apis/apps/v1/replicasets", "/apis/apps/v1/deployments"]) {
        const left = (await get(c, path)).items.filter((o: any) => o.metadata.namespace === "wl-doomed");
        expect(left, path).toEqual([]);
      }
    } finally {
      await local.stop();
    }
  });

  describe("garbage collection", () => {
    it("deleting a Deployment removes its ReplicaSets and their pods (background by default)", async () => {
      await create(c, DEPLOYS, deploymentBody("gc-bg", { replicas: 2 }));
      await rolledOut("gc-bg");
      expect(await pods("gc-bg")).toHaveLength(2);
      expectStatus(await c.request("DELETE", `${DEPLOYS}/gc-bg`), 200);
      expectFailure(await c.request("GET", `${DEPLOYS}/gc-bg`), 404, "NotFound");
      await eventually(async () => (await replicaSets("gc-bg")).length === 0, WAIT);
      await eventually(async () => (await pods("gc-bg")).length === 0, WAIT);
    });

    it("propagationPolicy=Foreground keeps the Deployment until its pods are gone", async () => {
      await create(c, DEPLOYS, deploymentBody("gc-fg", { replicas: 2 }));
      await rolledOut("gc-fg");
      kubelet.confirmDeletes = false;
      try {
        const res = await c.request("DELETE", `${DEPLOYS}/gc-fg`, {
          body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Foreground" },
        });
        const deleting = expectStatus(res, 200).json;
        expect(deleting.metadata.finalizers).toEqual(["foregroundDeletion"]);
        expect(deleting.metadata.deletionTimestamp).toBeDefined();
        // The pods wait for their node; so do the ReplicaSet and the Deployment.
        await eventually(async () => (await pods("gc-fg")).every((p) => p.metadata.deletionTimestamp), WAIT);
        const [rs] = await replicaSets("gc-fg");
        expect(rs.metadata.deletionTimestamp).toBeDefined();
        expect(rs.metadata.finalizers).toEqual(["foregroundDeletion"]);
        expect((await get(c, `${DEPLOYS}/gc-fg`)).metadata.finalizers).toEqual(["foregroundDeletion"]);
      } finally {
        kubelet.confirmDeletes = true;
      }
      await gone(c, `${DEPLOYS}/gc-fg`, WAIT);
      expect(await pods("gc-fg")).toEqual([]);
      expect(await replicaSets("gc-fg")).toEqual([]);
    });

    it("propagationPolicy=Orphan leaves the ReplicaSet and its pods without an owner", async () => {
      await create(c, DEPLOYS, deploymentBody("gc-orphan", { replicas: 1 }));
      await rolledOut("gc-orphan");
      expectStatus(await c.request("DELETE", `${DEPLOYS}/gc-orphan?propagationPolicy=Orphan`), 200);
      await gone(c, `${DEPLOYS}/gc-orphan`, WAIT);
      const [rs] = await replicaSets("gc-orphan");
      expect(rs.metadata.ownerReferences).toBeUndefined();
      expect(rs.metadata.deletionTimestamp).toBeUndefined();
      expect(await pods("gc-orphan")).toHaveLength(1);
      // A new Deployment with the same selector adopts the orphaned ReplicaSet.
      const d = await create(c, DEPLOYS, deploymentBody("gc-orphan", { replicas: 1 }));
      await eventually(
        async () =>
          (await get(c, `${RSS}/${rs.metadata.name}`)).metadata.ownerReferences?.[0]?.uid === d.metadata.uid,
        WAIT,
      );
      await removeDeployment("gc-orphan");
    });

    it("refuses an unknown propagation policy", async () => {
      const res = await c.request("DELETE", `${DEPLOYS}/whatever?propagationPolicy=Sideways`);
      expect(expectFailure(res, 422, "Invalid").message).toBe(
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan"',
      );
    });

    it("deletes a pod whose owner never existed", async () => {
      const body = podBody("stray", { labels: { app: "stray" } });
      body.metadata.ownerReferences = [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "ghost",
          uid: "00000000-0000-0000-0000-000000000000",
        },
      ];
      await create(c, PODS, body);
      await gone(c, `${PODS}/stray`, WAIT);
    });
  });
});
