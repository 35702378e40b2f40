// Deletion: immediate for unscheduled pods, graceful for pods on a node (the node confirms with a
// second delete), finalizers, namespace termination and deletecollection.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  expectFailure,
  expectStatus,
  get,
  gone,
  leaseBody,
  mergePatch,
  names,
  nodeBody,
  podBody,
  revision,
} from "./helpers.ts";

const NS = "del";
const PODS = `/api/v1/namespaces/${NS}/pods`;

describe("deletion", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster();
    await createNamespace(c, NS);
    // A node that exists but never turns Ready: pods bound to it stay put, nothing schedules there.
    await create(c, "/api/v1/nodes", nodeBody("del-node"));
  });
  afterAll(async () => {
    await c?.close();
  });

  it("deletes a pod that has no node at once", async () => {
    await create(c, PODS, podBody("unbound"));
    const res = expectStatus(await c.request("DELETE", `${PODS}/unbound`), 200).json;
    expect(res.metadata.name).toBe("unbound");
    expectFailure(await c.request("GET", `${PODS}/unbound`), 404, "NotFound");
    expectFailure(await c.request("DELETE", `${PODS}/unbound`), 404, "NotFound");
  });

  it("marks a pod on a node as terminating until the node confirms with a zero grace period", async () => {
    const pod = await create(c, PODS, podBody("bound", { nodeName: "del-node" }));
    const w = c.watch(`${PODS}?watch=1&resourceVersion=${pod.metadata.resourceVersion}`);
    try {
      const first = expectStatus(await c.request("DELETE", `${PODS}/bound`), 200).json;
      expect(first.metadata.deletionGracePeriodSeconds).toBe(30);
      expect(first.metadata.deletionTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const deadline = Date.parse(first.metadata.deletionTimestamp);
      expect(deadline).toBeGreaterThan(Date.now() + 20_000);

      const still = await get(c, `${PODS}/bound`);
      expect(still.metadata.deletionTimestamp).toBe(first.metadata.deletionTimestamp);
      expect(names(await get(c, PODS))).toContain("bound");

      // A longer grace period never extends the deadline; a shorter one shortens it.
      const longer = expectStatus(
        await c.request("DELETE", `${PODS}/bound?gracePeriodSeconds=600`),
        200,
      ).json;
      expect(longer.metadata.deletionTimestamp).toBe(first.metadata.deletionTimestamp);
      expect(longer.metadata.deletionGracePeriodSeconds).toBe(30);
      const shorter = expectStatus(
        await c.request("DELETE", `${PODS}/bound`, {
          body: { kind: "DeleteOptions", gracePeriodSeconds: 10 },
        }),
        200,
      ).json;
      expect(shorter.metadata.deletionGracePeriodSeconds).toBe(10);
      expect(Date.parse(shorter.metadata.deletionTimestamp)).toBeLessThan(deadline);

      // What the node agent does once the containers are gone.
      expectStatus(await c.request("DELETE", `${PODS}/bound?gracePeriodSeconds=0`), 200);
      expectFailure(await c.request("GET", `${PODS}/bound`), 404, "NotFound");
      await eventually(() => w.events.some((e) => e.type === "DELETED"));
      expect(w.events.map((e) => e.type)).toEqual(["MODIFIED", "MODIFIED", "DELETED"]);
      expect(w.events[0].object.metadata.deletionTimestamp).toBe(first.metadata.deletionTimestamp);
    } finally {
      w.close();
    }
  });

  it("accepts the DeleteOptions body kubectl sends", async () => {
    await create(c, PODS, podBody("kubectl-del"));
    const res = await c.request("DELETE", `${PODS}/kubectl-del`, {
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" },
    });
    expectStatus(res, 200);
    expectFailure(await c.request("GET", `${PODS}/kubectl-del`), 404, "NotFound");
  });

  it("uses the pod's terminationGracePeriodSeconds by default", async () => {
    const body = podBody("short-grace", { nodeName: "del-node" });
    body.spec.terminationGracePeriodSeconds = 5;
    await create(c, PODS, body);
    const res = expectStatus(await c.request("DELETE", `${PODS}/short-grace`), 200).json;
    expect(res.metadata.deletionGracePeriodSeconds).toBe(5);
    expectStatus(await c.request("DELETE", `${PODS}/short-grace?gracePeriodSeconds=0`), 200);
    expectFailure(await c.request("GET", `${PODS}/short-grace`), 404, "NotFound");
  });

  it("deletes a finished pod at once even when it is on a node", async () => {
    await create(c, PODS, podBody("finished", { nodeName: "del-node" }));
    await mergePatch(c, `${PODS}/finished/status`, { status: { phase: "Succeeded" } });
    expectStatus(await c.request("DELETE", `${PODS}/finished`), 200);
    expectFailure(await c.request("GET", `${PODS}/finished`), 404, "NotFound");
  });

  it("keeps an object with finalizers until they are removed", async () => {
    await create(c, PODS, podBody("held", { finalizers: ["example.com/hold"] }));
    const deleting = expectStatus(await c.request("DELETE", `${PODS}/held`), 200).json;
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    expect(deleting.metadata.deletionGracePeriodSeconds).toBe(0);
    expect(deleting.metadata.finalizers).toEqual(["example.com/hold"]);
    // Still readable and listed; deleting again changes nothing.
    const again = expectStatus(await c.request("DELETE", `${PODS}/held`), 200).json;
    expect(again.metadata.resourceVersion).toBe((await get(c, `${PODS}/held`)).metadata.resourceVersion);
    expect(names(await get(c, PODS))).toContain("held");
    // Other updates are still allowed while terminating.
    const labelled = await mergePatch(c, `${PODS}/held`, { metadata: { labels: { still: "here" } } });
    expect(labelled.metadata.deletionTimestamp).toBe(deleting.metadata.deletionTimestamp);

    // Removing the last finalizer removes the object.
    expectStatus(await c.request("PATCH", `${PODS}/held`, { body: { metadata: { finalizers: null } } }), 200);
    expectFailure(await c.request("GET", `${PODS}/held`), 404, "NotFound");

    // The same for a cluster-scoped kind and a group kind.
    await create(c, "/api/v1/nodes", {
      metadata: { name: "held-node", finalizers: ["example.com/a", "example.com/b"] },
    });
    expectStatus(await c.request("DELETE", "/api/v1/nodes/held-node"), 200);
    await mergePatch(c, "/api/v1/nodes/held-node", { metadata: { finalizers: ["example.com/b"] } });
    expect((await get(c, "/api/v1/nodes/held-node")).metadata.finalizers).toEqual(["example.com/b"]);
    await mergePatch(c, "/api/v1/nodes/held-node", { metadata: { finalizers: [] } });
    expectFailure(await c.request("GET", "/api/v1/nodes/held-node"), 404, "NotFound");

    const leases = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
    const held = leaseBody("held-lease", new Date(), NS);
    held.metadata.finalizers = ["example.com/x"];
    await create(c, leases, held);
    expectStatus(await c.request("DELETE", `${leases}/held-lease`), 200);
    expect((await get(c, `${leases}/held-lease`)).metadata.deletionTimestamp).toBeDefined();
    await mergePatch(c, `${leases}/held-lease`, { metadata: { finalizers: null } });
    expectFailure(await c.request("GET", `${leases}/held-lease`), 404, "NotFound");
  });

  it("keeps the deletionTimestamp of a terminating object whatever an update says", async () => {
    await create(c, PODS, podBody("sticky", { finalizers: ["example.com/hold"] }));
    const deleting = expectStatus(await c.request("DELETE", `${PODS}/sticky`), 200).json;
    const put = expectStatus(
      await c.request("PUT", `${PODS}/sticky`, {
        body: { ...deleting, metadata: { ...deleting.metadata, deletionTimestamp: undefined } },
      }),
      200,
    ).json;
    expect(put.metadata.deletionTimestamp).toBe(deleting.metadata.deletionTimestamp);
    await mergePatch(c, `${PODS}/sticky`, { metadata: { finalizers: null } });
    await gone(c, `${PODS}/sticky`);
  });

  it("deletes collections by label selector", async () => {
    await createNamespace(c, "del-coll");
    const path = "/api/v1/namespaces/del-coll/pods";
    for (const [name, app] of [
      ["a1", "a"],
      ["a2", "a"],
      ["b1", "b"],
    ]) {
      await create(c, path, podBody(name, { labels: { app } }));
    }
    const res = expectStatus(await c.request("DELETE", `${path}?labelSelector=app%3Da`), 200).json;
    expect(res.kind).toBe("PodList");
    expect(names(res)).toEqual(["a1", "a2"]);
    expect(names(await get(c, path))).toEqual(["b1"]);
    // dryRun deletes nothing.
    const before = await revision(c);
    expectStatus(await c.request("DELETE", `${path}?dryRun=All`), 200);
    expect(names(await get(c, path))).toEqual(["b1"]);
    expect(await revision(c)).toBe(before);
  });

  it("terminates a namespace: Terminating, content deleted, then gone; creation refused meanwhile", async () => {
    const ns = "doomed";
    await createNamespace(c, ns);
    const pods = `/api/v1/namespaces/${ns}/pods`;
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
    await create(c, pods, podBody("loose"));
    // A pod on a node holds the namespace open until its node confirms the deletion.
    await create(c, pods, podBody("running", { nodeName: "del-node" }));
    await create(c, leases, leaseBody("lock", new Date(), ns));
    await create(c, `/api/v1/namespaces/${ns}/events`, {
      metadata: { name: "ev1" },
      involvedObject: { kind: "Pod", namespace: ns, name: "loose" },
      reason: "Test",
      message: "m",
    });

    const deleted = expectStatus(await c.request("DELETE", `/api/v1/namespaces/${ns}`), 200).json;
    expect(deleted.metadata.deletionTimestamp).toBeDefined();
    expect(deleted.status.phase).toBe("Terminating");
    expect((await get(c, `/api/v1/namespaces/${ns}`)).status.phase).toBe("Terminating");

    const refused = expectFailure(await c.request("POST", pods, { body: podBody("late") }), 403, "Forbidden");
    expect(refused.message).toBe(
      `pods "late" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
    );
    expectFailure(
      await c.request("POST", leases, { body: leaseBody("late", new Date(), ns) }),
      403,
      "Forbidden",
    );

    // Content goes; the pod on the node waits, terminating.
    await gone(c, `${pods}/loose`);
    await gone(c, `${leases}/lock`);
    await gone(c, `/api/v1/namespaces/${ns}/events/ev1`);
    await eventually(async () => (await get(c, `${pods}/running`)).metadata.deletionTimestamp);
    expect((await get(c, `/api/v1/namespaces/${ns}`)).status.phase).toBe("Terminating");

    // The node confirms; the namespace finishes.
    expectStatus(await c.request("DELETE", `${pods}/running?gracePeriodSeconds=0`), 200);
    await gone(c, `/api/v1/namespaces/${ns}`);
    expect(names(await get(c, "/api/v1/namespaces"))).not.toContain(ns);
    expectFailure(await c.request("POST", pods, { body: podBody("after") }), 404, "NotFound");
    // The name can be reused.
    const again = await createNamespace(c, ns);
    expect(again.status.phase).toBe("Active");
  });

  it("deletes an empty namespace", async () => {
    await createNamespace(c, "empty-ns");
    expectStatus(await c.request("DELETE", "/api/v1/namespaces/empty-ns"), 200);
    await gone(c, "/api/v1/namespaces/empty-ns");
  });
});

describe("system namespaces", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster();
  });
  afterAll(async () => {
    await c?.close();
  });

  it("refuses to delete the immortal ones, as the NamespaceLifecycle admission plugin does", async () => {
    for (const ns of ["default", "kube-system", "kube-public"]) {
      const s = expectFailure(await c.request("DELETE", `/api/v1/namespaces/${ns}`), 403, "Forbidden");
      expect(s.message).toBe(`namespaces "${ns}" is forbidden: this namespace may not be deleted`);
      expect((await get(c, `/api/v1/namespaces/${ns}`)).metadata.deletionTimestamp).toBeUndefined();
    }
  });
});
