// Every error is a metav1.Status with the upstream code and reason, and a rejected request writes
// nothing: the store's revision and the lists stay as they were.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  expectFailure,
  get,
  names,
  nodeBody,
  podBody,
  revision,
} from "./helpers.ts";

const NS = "errs";
const PODS = `/api/v1/namespaces/${NS}/pods`;

describe("errors", () => {
  let c: TestCluster;
  let rev: number;
  let pods: string[];
  let nodes: string[];

  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await createNamespace(c, NS);
    await create(c, PODS, podBody("existing", { labels: { app: "x" } }));
    await create(c, "/api/v1/nodes", nodeBody("existing-node"));
  });
  afterAll(async () => {
    await c?.close();
  });

  beforeEach(async () => {
    rev = await revision(c);
    pods = names(await get(c, "/api/v1/pods"));
    nodes = names(await get(c, "/api/v1/nodes"));
  });

  /** Nothing was written since the test began. */
  async function expectNothingWritten(): Promise<void> {
    expect(await revision(c)).toBe(rev);
    expect(names(await get(c, "/api/v1/pods"))).toEqual(pods);
    expect(names(await get(c, "/api/v1/nodes"))).toEqual(nodes);
  }

  function invalidCauses(status: any): { field: string; reason: string; message: string }[] {
    expect(status.details.causes.length).toBeGreaterThan(0);
    return status.details.causes;
  }

  it("400 for malformed JSON", async () => {
    const res = await c.request("POST", PODS, { body: '{"metadata": {"name": "x"' });
    const s = expectFailure(res, 400, "BadRequest");
    expect(s.message).toMatch(/json/i);
    await expectNothingWritten();
    const put = await c.request("PUT", `${PODS}/existing`, { body: "{nope" });
    expectFailure(put, 400, "BadRequest");
    const patch = await c.request("PATCH", `${PODS}/existing`, { body: "{nope" });
    expectFailure(patch, 400, "BadRequest");
    await expectNothingWritten();
  });

  it("400 for malformed YAML", async () => {
    const res = await c.request("POST", PODS, {
      body: "metadata:\n  name: [unclosed\nspec: {",
      headers: { "content-type": "application/yaml" },
    });
    expectFailure(res, 400, "BadRequest");
    await expectNothingWritten();
  });

  it("400 for a body that is not an object, or of another kind or version", async () => {
    expectFailure(await c.request("POST", PODS, { body: "[1,2]" }), 400, "BadRequest");
    expectFailure(await c.request("POST", PODS, { body: "" }), 400, "BadRequest");
    expectFailure(
      await c.request("POST", PODS, { body: { ...podBody("wrong-kind"), kind: "Node" } }),
      400,
      "BadRequest",
    );
    expectFailure(
      await c.request("POST", PODS, { body: { ...podBody("wrong-version"), apiVersion: "v2" } }),
      400,
      "BadRequest",
    );
    const otherNs = podBody("other-ns");
    otherNs.metadata.namespace = "default";
    expectFailure(await c.request("POST", PODS, { body: otherNs }), 400, "BadRequest");
    // The name in the body must match the URL.
    const pod = await get(c, `${PODS}/existing`);
    expectFailure(
      await c.request("PUT", `${PODS}/existing`, {
        body: { ...pod, metadata: { ...pod.metadata, name: "renamed" } },
      }),
      400,
      "BadRequest",
    );
    await expectNothingWritten();
  });

  it("401 without a token or with a wrong one", async () => {
    for (const token of [null, "wrong-token"]) {
      const list = await c.request("GET", PODS, { token });
      const s = expectFailure(list, 401, "Unauthorized");
      expect(s.message).toBe("Unauthorized");
      expectFailure(await c.request("POST", PODS, { body: podBody("sneaky"), token }), 401, "Unauthorized");
      expectFailure(await c.request("DELETE", `${PODS}/existing`, { token }), 401, "Unauthorized");
    }
    // A malformed Authorization header.
    const res = await c.request("GET", PODS, { token: null, headers: { authorization: c.server.token } });
    expectFailure(res, 401, "Unauthorized");
    await expectNothingWritten();
  });

  it("404 for a missing object", async () => {
    const s = expectFailure(await c.request("GET", `${PODS}/missing`), 404, "NotFound");
    expect(s.message).toBe('pods "missing" not found');
    expect(s.details).toEqual({ name: "missing", kind: "pods" });
    const lease = expectFailure(
      await c.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/missing"),
      404,
      "NotFound",
    );
    expect(lease.message).toBe('leases.coordination.k8s.io "missing" not found');
    expect(lease.details).toEqual({ name: "missing", group: "coordination.k8s.io", kind: "leases" });
    expectFailure(await c.request("PUT", `${PODS}/missing`, { body: podBody("missing") }), 404, "NotFound");
    expectFailure(await c.request("PATCH", `${PODS}/missing`, { body: { metadata: {} } }), 404, "NotFound");
    expectFailure(await c.request("DELETE", `${PODS}/missing`), 404, "NotFound");
    expectFailure(await c.request("GET", `${PODS}/missing/status`), 404, "NotFound");
    await expectNothingWritten();
  });

  it("404 when creating in a namespace that does not exist", async () => {
    const s = expectFailure(
      await c.request("POST", "/api/v1/namespaces/nowhere/pods", { body: podBody("lost") }),
      404,
      "NotFound",
    );
    expect(s.message).toBe('namespaces "nowhere" not found');
    expect(s.details).toMatchObject({ name: "nowhere", kind: "namespaces" });
    await expectNothingWritten();
  });

  it("404 or 405 for unknown paths and methods", async () => {
    for (const path of [
      "/api/v1/widgets",
      "/api/v1/namespaces/errs/widgets",
      "/apis/batch/v1/jobs",
      "/apis/apps/v1/widgets",
      "/apis/coordination.k8s.io/v1/widgets",
      "/nope",
      "/api/v1/namespaces/errs/pods/existing/exec",
      "/api/v1/namespaces/errs/pods/existing/status/extra",
      "/api/v1/pods/existing",
    ]) {
      const res = await c.request("GET", path);
      expectFailure(res, 404, "NotFound");
    }
    expectFailure(await c.request("POST", "/api/v1/widgets", { body: {} }), 404, "NotFound");
    // Verbs a path does not serve.
    expectFailure(await c.request("PUT", PODS, { body: podBody("x") }), 405, "MethodNotAllowed");
    expectFailure(
      await c.request("POST", `${PODS}/existing`, { body: podBody("existing") }),
      405,
      "MethodNotAllowed",
    );
    expectFailure(await c.request("DELETE", `${PODS}/existing/status`), 405, "MethodNotAllowed");
    expectFailure(await c.request("POST", `${PODS}/existing/log`, { body: {} }), 405, "MethodNotAllowed");
    await expectNothingWritten();
  });

  it("404 for a status subresource the kind does not have", async () => {
    // Leases and events have no status subresource upstream: /status is not a path at all.
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
    await create(c, leases, { metadata: { name: "no-status" }, spec: { holderIdentity: "x" } });
    rev = await revision(c);
    expectFailure(await c.request("GET", `${leases}/no-status/status`), 404, "NotFound");
    expectFailure(
      await c.request("PUT", `${leases}/no-status/status`, {
        body: { metadata: { name: "no-status" }, status: { sneaked: true } },
      }),
      404,
      "NotFound",
    );
    expectFailure(
      await c.request("PATCH", `${leases}/no-status/status`, { body: { status: { sneaked: true } } }),
      404,
      "NotFound",
    );
    expect((await get(c, `${leases}/no-status`)).status).toBeUndefined();
    await expectNothingWritten();
  });

  it("409 AlreadyExists", async () => {
    const s = expectFailure(
      await c.request("POST", PODS, { body: podBody("existing") }),
      409,
      "AlreadyExists",
    );
    expect(s.message).toBe('pods "existing" already exists');
    expect(s.details).toEqual({ name: "existing", kind: "pods" });
    const node = expectFailure(
      await c.request("POST", "/api/v1/nodes", { body: nodeBody("existing-node") }),
      409,
      "AlreadyExists",
    );
    expect(node.message).toBe('nodes "existing-node" already exists');
    await expectNothingWritten();
  });

  it("413 for a body over 3 MiB", async () => {
    const big = podBody("huge");
    big.metadata.annotations = { "x/big": "a".repeat(3 * 1024 * 1024 + 16) };
    const s = expectFailure(await c.request("POST", PODS, { body: big }), 413, "RequestEntityTooLarge");
    expect(s.message).toMatch(/limit is 3145728/);
    // Also when patching.
    const patch = { metadata: { annotations: { "x/big": "b".repeat(3 * 1024 * 1024 + 16) } } };
    expectFailure(
      await c.request("PATCH", `${PODS}/existing`, { body: patch }),
      413,
      "RequestEntityTooLarge",
    );
    await expectNothingWritten();
  });

  it("415 for unsupported media types", async () => {
    const s = expectFailure(
      await c.request("POST", PODS, {
        body: JSON.stringify(podBody("text")),
        headers: { "content-type": "text/plain" },
      }),
      415,
      "UnsupportedMediaType",
    );
    expect(s.message).toContain("text/plain");
    expectFailure(
      await c.request("PATCH", `${PODS}/existing`, {
        body: { metadata: { labels: { a: "b" } } },
        headers: { "content-type": "application/json" },
      }),
      415,
      "UnsupportedMediaType",
    );
    expectFailure(
      await c.request("PATCH", `${PODS}/existing`, {
        body: { metadata: { labels: { a: "b" } } },
        headers: { "content-type": "application/apply-patch+yaml" },
      }),
      415,
      "UnsupportedMediaType",
    );
    await expectNothingWritten();
  });

  it("422 for invalid names", async () => {
    const s = expectFailure(await c.request("POST", PODS, { body: podBody("Bad_Name") }), 422, "Invalid");
    expect(s.details).toMatchObject({ name: "Bad_Name", kind: "Pod" });
    expect(s.message).toMatch(/^Pod "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": /);
    expect(invalidCauses(s)).toContainEqual(
      expect.objectContaining({ field: "metadata.name", reason: "FieldValueInvalid" }),
    );
    // Namespace names are DNS-1123 labels: no dots.
    const ns = expectFailure(
      await c.request("POST", "/api/v1/namespaces", { body: { metadata: { name: "a.b" } } }),
      422,
      "Invalid",
    );
    expect(invalidCauses(ns).map((x) => x.field)).toContain("metadata.name");
    // Missing name and generateName.
    const unnamed = expectFailure(await c.request("POST", PODS, { body: podBody("") }), 422, "Invalid");
    expect(invalidCauses(unnamed)).toContainEqual(
      expect.objectContaining({ field: "metadata.name", reason: "FieldValueRequired" }),
    );
    // Too long.
    const long = expectFailure(
      await c.request("POST", PODS, { body: podBody("a".repeat(254)) }),
      422,
      "Invalid",
    );
    expect(invalidCauses(long).map((x) => x.field)).toContain("metadata.name");
    await expectNothingWritten();
  });

  it("422 for invalid label keys and values", async () => {
    const badKey = expectFailure(
      await c.request("POST", PODS, { body: podBody("lbl", { labels: { "bad key!": "v" } }) }),
      422,
      "Invalid",
    );
    expect(invalidCauses(badKey)).toContainEqual(
      expect.objectContaining({ field: "metadata.labels", reason: "FieldValueInvalid" }),
    );
    const badValue = expectFailure(
      await c.request("POST", PODS, { body: podBody("lbl", { labels: { app: "-starts-with-dash" } }) }),
      422,
      "Invalid",
    );
    expect(invalidCauses(badValue)).toContainEqual(expect.objectContaining({ field: "metadata.labels" }));
    const longValue = expectFailure(
      await c.request("POST", PODS, { body: podBody("lbl", { labels: { app: "v".repeat(64) } }) }),
      422,
      "Invalid",
    );
    expect(invalidCauses(longValue)[0].message).toMatch(/must be no more than 63 characters/);
    // An update that makes labels invalid is refused the same way.
    const upd = expectFailure(
      await c.request("PATCH", `${PODS}/existing`, { body: { metadata: { labels: { "a/b/c": "x" } } } }),
      422,
      "Invalid",
    );
    expect(invalidCauses(upd).map((x) => x.field)).toContain("metadata.labels");
    await expectNothingWritten();
  });

  it("422 for a containerPort out of range", async () => {
    const body = podBody("port", {
      containers: [{ name: "main", image: "nginx", ports: [{ containerPort: 70000 }] }],
    });
    const s = expectFailure(await c.request("POST", PODS, { body }), 422, "Invalid");
    expect(invalidCauses(s)).toContainEqual(
      expect.objectContaining({
        field: "spec.containers[0].ports[0].containerPort",
        reason: "FieldValueInvalid",
      }),
    );
    expect(s.message).toContain(
      "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    const zero = podBody("port0", {
      containers: [{ name: "main", image: "nginx", ports: [{ containerPort: 0 }] }],
    });
    const z = expectFailure(await c.request("POST", PODS, { body: zero }), 422, "Invalid");
    expect(invalidCauses(z).map((x) => x.field)).toContain("spec.containers[0].ports[0].containerPort");
    await expectNothingWritten();
  });

  it("422 for a bad podCIDR", async () => {
    for (const cidr of ["10.0.0.0/33", "not-a-cidr", "10.0.0.1"]) {
      const s = expectFailure(
        await c.request("POST", "/api/v1/nodes", { body: nodeBody("cidr-node", { podCIDR: cidr }) }),
        422,
        "Invalid",
      );
      expect(s.details).toMatchObject({ name: "cidr-node", kind: "Node" });
      expect(invalidCauses(s)).toContainEqual(
        expect.objectContaining({ field: "spec.podCIDRs[0]", reason: "FieldValueInvalid" }),
      );
    }
    await expectNothingWritten();
  });

  it("422 lists every problem at once", async () => {
    const body = podBody("Two_Problems", {
      labels: { "bad key!": "v" },
      containers: [{ name: "main", image: "nginx", ports: [{ containerPort: 70000 }] }],
    });
    const s = expectFailure(await c.request("POST", PODS, { body }), 422, "Invalid");
    const fields = invalidCauses(s).map((x) => x.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        "metadata.name",
        "metadata.labels",
        "spec.containers[0].ports[0].containerPort",
      ]),
    );
    await expectNothingWritten();
  });

  it("422 for an invalid update leaves the object as it was", async () => {
    const before = await get(c, `${PODS}/existing`);
    const s = expectFailure(
      await c.request("PATCH", `${PODS}/existing`, {
        body: [{ op: "replace", path: "/spec/containers/0/name", value: "Not Valid" }],
        headers: { "content-type": "application/json-patch+json" },
      }),
      422,
      "Invalid",
    );
    expect(invalidCauses(s).length).toBeGreaterThan(0);
    expect(await get(c, `${PODS}/existing`)).toEqual(before);
    await expectNothingWritten();
  });

  it("400 for bad list parameters", async () => {
    expectFailure(await c.request("GET", `${PODS}?limit=abc`), 400, "BadRequest");
    expectFailure(await c.request("GET", `${PODS}?continue=garbage`), 400, "BadRequest");
    expectFailure(
      await c.request("GET", `${PODS}?labelSelector=${encodeURIComponent("a in (b")}`),
      400,
      "BadRequest",
    );
    expectFailure(await c.request("DELETE", `${PODS}/existing?gracePeriodSeconds=soon`), 400, "BadRequest");
    await expectNothingWritten();
  });
});

// Separate cluster: if these writes are wrongly accepted they must not disturb the tests above.
describe("errors: the all-namespaces path", () => {
  let c: TestCluster;
  let rev: number;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await createNamespace(c, NS);
    await create(c, PODS, podBody("existing"));
    rev = await revision(c);
  });
  afterAll(async () => {
    await c?.close();
  });

  it("405 for writes to the all-namespaces path of a namespaced kind", async () => {
    // Upstream registers only list and watch on /api/v1/pods; create and deletecollection live
    // under /namespaces/<ns>/. A DELETE there must not wipe every namespace.
    const body = podBody("via-cluster-path");
    body.metadata.namespace = NS;
    const post = await c.request("POST", "/api/v1/pods", { body });
    expect(post.status).toBe(405);
    const del = await c.request("DELETE", "/api/v1/pods");
    expect(del.status).toBe(405);
    expect(names(await get(c, PODS))).toContain("existing");
    expectFailure(await c.request("GET", `${PODS}/via-cluster-path`), 404, "NotFound");
    expect(await revision(c)).toBe(rev);
  });
});
