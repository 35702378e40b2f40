// PATCH in the three formats kubectl and client libraries send.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  expectFailure,
  expectStatus,
  get,
  nodeBody,
  podBody,
  readyCondition,
  revision,
} from "./helpers.ts";

const NS = "patching";
const PODS = `/api/v1/namespaces/${NS}/pods`;
const JSON_PATCH = { "content-type": "application/json-patch+json" };
const SMP = { "content-type": "application/strategic-merge-patch+json" };

function twoContainerPod(name: string): Record<string, any> {
  return podBody(name, {
    labels: { app: "web" },
    containers: [
      { name: "web", image: "nginx:1.27", ports: [{ containerPort: 80, name: "http" }] },
      { name: "sidecar", image: "busybox:1.36", env: [{ name: "A", value: "1" }] },
    ],
  });
}

describe("patch", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await createNamespace(c, NS);
  });
  afterAll(async () => {
    await c?.close();
  });

  it("applies a JSON merge patch: set, replace and remove with null", async () => {
    await create(c, PODS, podBody("merge", { labels: { a: "1", b: "2" } }));
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/merge`, {
        body: { metadata: { labels: { a: "10", b: null, c: "3" }, annotations: { note: "hi" } } },
        headers: { "content-type": "application/merge-patch+json" },
      }),
      200,
    ).json;
    expect(res.metadata.labels).toEqual({ a: "10", c: "3" });
    expect(res.metadata.annotations).toEqual({ note: "hi" });
    expect(await get(c, `${PODS}/merge`)).toEqual(res);
  });

  it("applies a JSON patch", async () => {
    const pod = await create(c, PODS, podBody("jp", { labels: { a: "1" } }));
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/jp`, {
        body: [
          { op: "test", path: "/metadata/labels/a", value: "1" },
          { op: "add", path: "/metadata/labels/b", value: "2" },
          { op: "replace", path: "/metadata/labels/a", value: "one" },
          { op: "add", path: "/metadata/annotations", value: { x: "y" } },
          { op: "copy", from: "/metadata/labels/b", path: "/metadata/annotations/copied" },
          { op: "replace", path: "/spec/containers/0/image", value: "nginx:1.28" },
        ],
        headers: JSON_PATCH,
      }),
      200,
    ).json;
    expect(res.metadata.labels).toEqual({ a: "one", b: "2" });
    expect(res.metadata.annotations).toEqual({ x: "y", copied: "2" });
    expect(res.spec.containers[0].image).toBe("nginx:1.28");
    expect(res.metadata.generation).toBe(pod.metadata.generation + 1);

    const removed = expectStatus(
      await c.request("PATCH", `${PODS}/jp`, {
        body: [{ op: "remove", path: "/metadata/labels/b" }],
        headers: JSON_PATCH,
      }),
      200,
    ).json;
    expect(removed.metadata.labels).toEqual({ a: "one" });
  });

  it("rejects a JSON patch whose test op fails, and writes nothing", async () => {
    const pod = await create(c, PODS, podBody("jp-test", { labels: { a: "1" } }));
    const before = await revision(c);
    const s = expectFailure(
      await c.request("PATCH", `${PODS}/jp-test`, {
        body: [
          { op: "add", path: "/metadata/labels/b", value: "2" },
          { op: "test", path: "/metadata/labels/a", value: "not-1" },
        ],
        headers: JSON_PATCH,
      }),
      422,
      "Invalid",
    );
    expect(s.message).toMatch(/test/i);
    expect(await get(c, `${PODS}/jp-test`)).toEqual(pod);
    expect(await revision(c)).toBe(before);

    // A path that does not exist fails as well.
    expectFailure(
      await c.request("PATCH", `${PODS}/jp-test`, {
        body: [{ op: "replace", path: "/metadata/nothing/here", value: 1 }],
        headers: JSON_PATCH,
      }),
      422,
      "Invalid",
    );
    // A JSON patch must be an array of operations.
    const notOps = await c.request("PATCH", `${PODS}/jp-test`, { body: { op: "add" }, headers: JSON_PATCH });
    expect([400, 422]).toContain(notOps.status);
    expect(await revision(c)).toBe(before);
  });

  it("applies kubectl's strategic merge patch for one container's image plus a label", async () => {
    const pod = await create(c, PODS, twoContainerPod("smp"));
    // What `kubectl apply` sends after editing the sidecar image and adding a label.
    const patch = {
      metadata: { labels: { tier: "frontend" } },
      spec: {
        "$setElementOrder/containers": [{ name: "web" }, { name: "sidecar" }],
        containers: [{ name: "sidecar", image: "busybox:1.37" }],
      },
    };
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/smp`, { body: patch, headers: SMP }),
      200,
    ).json;
    expect(res.metadata.labels).toEqual({ app: "web", tier: "frontend" });
    expect(res.spec.containers.map((x: any) => x.name)).toEqual(["web", "sidecar"]);
    expect(res.spec.containers[0]).toEqual(pod.spec.containers[0]);
    expect(res.spec.containers[1]).toEqual({ ...pod.spec.containers[1], image: "busybox:1.37" });
    expect(res.metadata.generation).toBe(pod.metadata.generation + 1);
    // No directive leaks into the stored object.
    expect(JSON.stringify(await get(c, `${PODS}/smp`))).not.toContain("$setElementOrder");
  });

  it("merges strategic patches of lists by key: env by name, ports by containerPort", async () => {
    await create(c, PODS, twoContainerPod("smp-keys"));
    // Pod specs are mostly immutable, so merge keys are exercised through kubectl's `set image`
    // shape and a no-op merge of ports: both must keep every other element.
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/smp-keys`, {
        body: {
          spec: {
            containers: [{ name: "web", image: "nginx:1.29", ports: [{ containerPort: 80, name: "http" }] }],
          },
        },
        headers: SMP,
      }),
      200,
    ).json;
    expect(res.spec.containers).toHaveLength(2);
    expect(res.spec.containers[0].image).toBe("nginx:1.29");
    expect(res.spec.containers[0].ports).toEqual([{ containerPort: 80, name: "http", protocol: "TCP" }]);
    expect(res.spec.containers[1].env).toEqual([{ name: "A", value: "1" }]);
  });

  it("merges node status conditions by type, as a kubelet's status patch does", async () => {
    const now = new Date();
    await create(c, "/api/v1/nodes", {
      ...nodeBody("patch-node"),
      status: {
        conditions: [
          readyCondition("True", now),
          { type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory" },
        ],
      },
    });
    const res = expectStatus(
      await c.request("PATCH", "/api/v1/nodes/patch-node/status", {
        body: {
          status: {
            "$setElementOrder/conditions": [{ type: "Ready" }, { type: "MemoryPressure" }],
            conditions: [{ type: "Ready", status: "False", reason: "KubeletNotReady" }],
          },
        },
        headers: SMP,
      }),
      200,
    ).json;
    expect(res.status.conditions.map((x: any) => [x.type, x.status])).toEqual([
      ["Ready", "False"],
      ["MemoryPressure", "False"],
    ]);
    expect(res.status.conditions[0].lastHeartbeatTime).toBeDefined();
  });

  it("supports $patch: delete and $deleteFromPrimitiveList in strategic merge patches", async () => {
    await create(c, "/api/v1/nodes", {
      ...nodeBody("smp-node"),
      metadata: { name: "smp-node", finalizers: ["example.com/a", "example.com/b"] },
      spec: {
        taints: [
          { key: "a", value: "1", effect: "NoSchedule" },
          { key: "b", value: "2", effect: "NoSchedule" },
        ],
      },
    });
    const res = expectStatus(
      await c.request("PATCH", "/api/v1/nodes/smp-node", {
        body: { metadata: { "$deleteFromPrimitiveList/finalizers": ["example.com/a"] } },
        headers: SMP,
      }),
      200,
    ).json;
    expect(res.metadata.finalizers).toEqual(["example.com/b"]);
    // Taints have no patch strategy upstream: a strategic patch replaces the list whole.
    const taints = expectStatus(
      await c.request("PATCH", "/api/v1/nodes/smp-node", {
        body: { spec: { taints: [{ key: "c", value: "3", effect: "NoExecute" }] } },
        headers: SMP,
      }),
      200,
    ).json;
    expect(taints.spec.taints).toEqual([{ key: "c", value: "3", effect: "NoExecute" }]);
    // Clean up the finalizer so nothing lingers.
    expectStatus(
      await c.request("PATCH", "/api/v1/nodes/smp-node", { body: { metadata: { finalizers: null } } }),
      200,
    );
  });

  it("refuses a patch that makes the object invalid, and writes nothing", async () => {
    const pod = await create(c, PODS, podBody("bad-patch"));
    const before = await revision(c);
    expectFailure(
      await c.request("PATCH", `${PODS}/bad-patch`, { body: { metadata: { labels: { "no spaces": "x" } } } }),
      422,
      "Invalid",
    );
    // Immutable pod fields.
    expectFailure(
      await c.request("PATCH", `${PODS}/bad-patch`, { body: { spec: { restartPolicy: "Never" } } }),
      422,
      "Invalid",
    );
    expect(await get(c, `${PODS}/bad-patch`)).toEqual(pod);
    expect(await revision(c)).toBe(before);
  });

  it("refuses a patch that renames the object with 400, as upstream's checkName does", async () => {
    const pod = await create(c, PODS, podBody("no-rename"));
    const before = await revision(c);
    const s = expectFailure(
      await c.request("PATCH", `${PODS}/no-rename`, { body: { metadata: { name: "other" } } }),
      400,
      "BadRequest",
    );
    expect(s.message).toBe("the name of the object (other) does not match the name on the URL (no-rename)");
    expect(await get(c, `${PODS}/no-rename`)).toEqual(pod);
    expectFailure(await c.request("GET", `${PODS}/other`), 404, "NotFound");
    expect(await revision(c)).toBe(before);
  });

  it("writes nothing for a patch that changes nothing", async () => {
    const pod = await create(c, PODS, podBody("noop-patch", { labels: { a: "1" } }));
    const before = await revision(c);
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/noop-patch`, { body: { metadata: { labels: { a: "1" } } } }),
      200,
    ).json;
    expect(res.metadata.resourceVersion).toBe(pod.metadata.resourceVersion);
    expect(await revision(c)).toBe(before);
  });

  it("patches the status subresource without touching spec or labels", async () => {
    const pod = await create(c, PODS, podBody("status-patch"));
    const res = expectStatus(
      await c.request("PATCH", `${PODS}/status-patch/status`, {
        body: {
          metadata: { labels: { sneaky: "1" } },
          spec: { nodeName: "n1" },
          status: { phase: "Running" },
        },
      }),
      200,
    ).json;
    expect(res.status.phase).toBe("Running");
    expect(res.metadata.labels).toBeUndefined();
    expect(res.spec.nodeName).toBeUndefined();
    expect(res.metadata.generation).toBe(pod.metadata.generation);
  });
});
