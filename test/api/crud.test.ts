// Create/get/list/update/delete for every kind, the metadata the server maintains, optimistic
// concurrency, the status subresource split and dry runs.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  expectFailure,
  expectStatus,
  get,
  leaseBody,
  mergePatch,
  names,
  nodeBody,
  podBody,
  revision,
} from "./helpers.ts";

const NS = "crud";
const PODS = `/api/v1/namespaces/${NS}/pods`;
const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe("CRUD", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await createNamespace(c, NS);
  });
  afterAll(async () => {
    await c?.close();
  });

  it("creates namespaces with defaults and server-maintained metadata", async () => {
    const ns = await create(c, "/api/v1/namespaces", { metadata: { name: "team-a", labels: { team: "a" } } });
    expect(ns).toMatchObject({
      kind: "Namespace",
      apiVersion: "v1",
      metadata: {
        name: "team-a",
        labels: { team: "a", "kubernetes.io/metadata.name": "team-a" },
        generation: 1,
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
    expect(ns.metadata.uid).toMatch(UID);
    expect(ns.metadata.creationTimestamp).toMatch(TIMESTAMP);
    expect(ns.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await get(c, "/api/v1/namespaces/team-a")).toEqual(ns);
    const list = await get(c, "/api/v1/namespaces");
    expect(list).toMatchObject({ kind: "NamespaceList", apiVersion: "v1" });
    expect(names(list)).toEqual(
      expect.arrayContaining(["crud", "default", "kube-node-lease", "kube-public", "kube-system", "team-a"]),
    );
    expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(ns.metadata.resourceVersion));
  });

  it("creates, reads, updates and deletes pods", async () => {
    const pod = await create(c, PODS, podBody("web", { labels: { app: "web" } }));
    expect(pod).toMatchObject({
      kind: "Pod",
      apiVersion: "v1",
      metadata: { name: "web", namespace: NS, generation: 1, labels: { app: "web" } },
      spec: { restartPolicy: "Always", dnsPolicy: "ClusterFirst", schedulerName: "default-scheduler" },
      status: { phase: "Pending", qosClass: "BestEffort" },
    });
    expect(pod.spec.containers[0]).toMatchObject({ imagePullPolicy: "IfNotPresent" });
    // The DefaultTolerationSeconds admission plugin's tolerations.
    expect(pod.spec.tolerations).toEqual(
      expect.arrayContaining([
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ]),
    );
    expect(await get(c, `${PODS}/web`)).toEqual(pod);

    const list = await get(c, PODS);
    expect(list.kind).toBe("PodList");
    expect(names(list)).toContain("web");
    // The all-namespaces list sees it too.
    const all = await get(c, "/api/v1/pods");
    expect(all.items.some((p: any) => p.metadata.namespace === NS && p.metadata.name === "web")).toBe(true);

    const updated = expectStatus(
      await c.request("PUT", `${PODS}/web`, {
        body: { ...pod, metadata: { ...pod.metadata, labels: { app: "web", v: "2" } } },
      }),
      200,
    ).json;
    expect(updated.metadata.labels).toEqual({ app: "web", v: "2" });
    expect(updated.metadata.uid).toBe(pod.metadata.uid);
    expect(updated.metadata.creationTimestamp).toBe(pod.metadata.creationTimestamp);
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(pod.metadata.resourceVersion));

    const deleted = expectStatus(await c.request("DELETE", `${PODS}/web`), 200).json;
    expect(deleted.metadata.name).toBe("web");
    expectFailure(await c.request("GET", `${PODS}/web`), 404, "NotFound");
  });

  it("ignores client-set uid, creationTimestamp and generation on create", async () => {
    const body = podBody("spoofed");
    Object.assign(body.metadata, {
      uid: "00000000-0000-0000-0000-000000000000",
      creationTimestamp: "2000-01-01T00:00:00Z",
      generation: 42,
    });
    const pod = await create(c, PODS, body);
    expect(pod.metadata.uid).not.toBe("00000000-0000-0000-0000-000000000000");
    expect(pod.metadata.uid).toMatch(UID);
    expect(pod.metadata.creationTimestamp).not.toBe("2000-01-01T00:00:00Z");
    expect(pod.metadata.generation).toBe(1);
  });

  it("keeps uid and creationTimestamp across updates that try to change them", async () => {
    const pod = await create(c, PODS, podBody("keep-meta"));
    const res = expectStatus(
      await c.request("PUT", `${PODS}/keep-meta`, {
        body: {
          ...pod,
          metadata: {
            ...pod.metadata,
            uid: "11111111-1111-1111-1111-111111111111",
            creationTimestamp: "2000-01-01T00:00:00Z",
          },
        },
      }),
      200,
    ).json;
    expect(res.metadata.uid).toBe(pod.metadata.uid);
    expect(res.metadata.creationTimestamp).toBe(pod.metadata.creationTimestamp);
  });

  it("generates names from generateName", async () => {
    const a = await create(c, PODS, { ...podBody(""), metadata: { generateName: "gen-" } });
    const b = await create(c, PODS, { ...podBody(""), metadata: { generateName: "gen-" } });
    expect(a.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
    expect(b.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
    expect(a.metadata.name).not.toBe(b.metadata.name);
    expect(a.metadata.generateName).toBe("gen-");
    expect((await get(c, `${PODS}/${a.metadata.name}`)).metadata.uid).toBe(a.metadata.uid);
  });

  it("bumps resourceVersion on every write, across objects", async () => {
    const seen: number[] = [];
    const a = await create(c, PODS, podBody("rv-a"));
    seen.push(Number(a.metadata.resourceVersion));
    const b = await create(c, PODS, podBody("rv-b"));
    seen.push(Number(b.metadata.resourceVersion));
    const a2 = await mergePatch(c, `${PODS}/rv-a`, { metadata: { labels: { x: "1" } } });
    seen.push(Number(a2.metadata.resourceVersion));
    const b2 = await mergePatch(c, `${PODS}/rv-b`, { metadata: { labels: { x: "1" } } });
    seen.push(Number(b2.metadata.resourceVersion));
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    expect(await revision(c)).toBe(seen[seen.length - 1]);
  });

  it("does not write when an update changes nothing", async () => {
    const pod = await create(c, PODS, podBody("noop"));
    const before = await revision(c);
    const same = expectStatus(await c.request("PUT", `${PODS}/noop`, { body: pod }), 200).json;
    expect(same.metadata.resourceVersion).toBe(pod.metadata.resourceVersion);
    expect(await revision(c)).toBe(before);
  });

  it("maintains generation: spec changes bump it, metadata and status changes do not", async () => {
    const node = await create(c, "/api/v1/nodes", nodeBody("gen-node"));
    expect(node.metadata.generation).toBe(1);

    const labelled = await mergePatch(c, "/api/v1/nodes/gen-node", { metadata: { labels: { zone: "a" } } });
    expect(labelled.metadata.generation).toBe(1);

    const status = await mergePatch(c, "/api/v1/nodes/gen-node/status", {
      status: { capacity: { pods: "10" } },
    });
    expect(status.status.capacity).toEqual({ pods: "10" });
    expect(status.metadata.generation).toBe(1);

    const cordoned = await mergePatch(c, "/api/v1/nodes/gen-node", { spec: { unschedulable: true } });
    expect(cordoned.metadata.generation).toBe(2);

    const put = expectStatus(
      await c.request("PUT", "/api/v1/nodes/gen-node", {
        body: { ...cordoned, spec: { ...cordoned.spec, unschedulable: false } },
      }),
      200,
    ).json;
    expect(put.metadata.generation).toBe(3);

    // A pod's mutable spec field: the container image.
    const pod = await create(c, PODS, podBody("gen-pod"));
    const bumped = expectStatus(
      await c.request("PATCH", `${PODS}/gen-pod`, {
        body: [{ op: "replace", path: "/spec/containers/0/image", value: "nginx:1.28" }],
        headers: { "content-type": "application/json-patch+json" },
      }),
      200,
    ).json;
    expect(bumped.spec.containers[0].image).toBe("nginx:1.28");
    expect(bumped.metadata.generation).toBe(pod.metadata.generation + 1);
  });

  it("defaults update bodies like create bodies (kubectl replace with a minimal manifest)", async () => {
    // Upstream decodes every request body with the scheme's defaulting codec, so a PUT of the
    // original manifest with only the image changed is a valid pod update.
    await create(c, PODS, podBody("replace-me"));
    const manifest = podBody("replace-me", { containers: [{ name: "main", image: "nginx:1.28" }] });
    const res = expectStatus(await c.request("PUT", `${PODS}/replace-me`, { body: manifest }), 200).json;
    expect(res.spec.containers[0]).toMatchObject({
      image: "nginx:1.28",
      imagePullPolicy: "IfNotPresent",
      terminationMessagePolicy: "File",
    });
    // A merge patch replacing the container list is defaulted the same way.
    const patched = await mergePatch(c, `${PODS}/replace-me`, {
      spec: { containers: [{ name: "main", image: "nginx:1.29" }] },
    });
    expect(patched.spec.containers[0]).toMatchObject({
      image: "nginx:1.29",
      imagePullPolicy: "IfNotPresent",
    });
  });

  it("rejects an update with a stale resourceVersion with 409 Conflict", async () => {
    const pod = await create(c, PODS, podBody("occ"));
    const fresh = await mergePatch(c, `${PODS}/occ`, { metadata: { labels: { step: "1" } } });
    const before = await revision(c);

    const stale = { ...pod, metadata: { ...pod.metadata, labels: { step: "stale" } } };
    const put = expectFailure(await c.request("PUT", `${PODS}/occ`, { body: stale }), 409, "Conflict");
    expect(put.message).toBe(
      'Operation cannot be fulfilled on pods "occ": the object has been modified; please apply your changes to the latest version and try again',
    );
    expect(put.details).toMatchObject({ name: "occ", kind: "pods" });

    const patch = await c.request("PATCH", `${PODS}/occ`, {
      body: { metadata: { resourceVersion: pod.metadata.resourceVersion, labels: { step: "stale" } } },
    });
    expectFailure(patch, 409, "Conflict");

    const del = await c.request("DELETE", `${PODS}/occ`, {
      body: { preconditions: { resourceVersion: pod.metadata.resourceVersion } },
    });
    expectFailure(del, 409, "Conflict");
    const delUid = await c.request("DELETE", `${PODS}/occ`, {
      body: { preconditions: { uid: "22222222-2222-2222-2222-222222222222" } },
    });
    expectFailure(delUid, 409, "Conflict");

    expect(await revision(c)).toBe(before);
    expect(await get(c, `${PODS}/occ`)).toEqual(fresh);

    // The current resourceVersion succeeds.
    const ok = expectStatus(
      await c.request("PUT", `${PODS}/occ`, {
        body: { ...fresh, metadata: { ...fresh.metadata, labels: { step: "2" } } },
      }),
      200,
    ).json;
    expect(ok.metadata.labels).toEqual({ step: "2" });
  });

  it("accepts an update without resourceVersion (unconditional)", async () => {
    const pod = await create(c, PODS, podBody("uncond"));
    await mergePatch(c, `${PODS}/uncond`, { metadata: { labels: { a: "1" } } });
    const { resourceVersion: _rv, ...meta } = pod.metadata;
    const res = expectStatus(
      await c.request("PUT", `${PODS}/uncond`, {
        body: { ...pod, metadata: { ...meta, labels: { b: "2" } } },
      }),
      200,
    ).json;
    expect(res.metadata.labels).toEqual({ b: "2" });
  });

  it("splits status from the main resource", async () => {
    const pod = await create(c, PODS, podBody("split"));

    // The main resource ignores status.
    const main = expectStatus(
      await c.request("PUT", `${PODS}/split`, {
        body: { ...pod, metadata: { ...pod.metadata, labels: { l: "1" } }, status: { phase: "Running" } },
      }),
      200,
    ).json;
    expect(main.status.phase).toBe("Pending");
    expect(main.metadata.labels).toEqual({ l: "1" });

    // The status subresource ignores spec and metadata changes.
    const status = expectStatus(
      await c.request("PUT", `${PODS}/split/status`, {
        body: {
          ...main,
          metadata: { ...main.metadata, labels: { l: "changed" } },
          spec: { ...main.spec, containers: [{ ...main.spec.containers[0], image: "busybox:1" }] },
          status: { ...main.status, phase: "Running", podIP: "10.244.0.5", podIPs: [{ ip: "10.244.0.5" }] },
        },
      }),
      200,
    ).json;
    expect(status.status).toMatchObject({ phase: "Running", podIP: "10.244.0.5" });
    expect(status.spec.containers[0].image).toBe("nginx:1.27");
    expect(status.metadata.labels).toEqual({ l: "1" });
    expect(status.metadata.generation).toBe(main.metadata.generation);
    expect(await get(c, `${PODS}/split/status`)).toEqual(status);

    // A merge patch of the main resource also leaves status alone.
    const patched = await mergePatch(c, `${PODS}/split`, { status: { phase: "Failed" } });
    expect(patched.status.phase).toBe("Running");
  });

  it("writes nothing with dryRun=All", async () => {
    const before = await revision(c);
    const created = expectStatus(
      await c.request("POST", `${PODS}?dryRun=All`, { body: podBody("dry") }),
      201,
    ).json;
    expect(created.metadata.name).toBe("dry");
    expect(created.metadata.uid).toMatch(UID);
    expectFailure(await c.request("GET", `${PODS}/dry`), 404, "NotFound");
    expect(await revision(c)).toBe(before);

    const pod = await create(c, PODS, podBody("dry-existing", { labels: { a: "1" } }));
    const mid = await revision(c);
    const patched = expectStatus(
      await c.request("PATCH", `${PODS}/dry-existing?dryRun=All`, {
        body: { metadata: { labels: { a: "2" } } },
      }),
      200,
    ).json;
    expect(patched.metadata.labels).toEqual({ a: "2" });
    const put = expectStatus(
      await c.request("PUT", `${PODS}/dry-existing?dryRun=All`, {
        body: { ...pod, metadata: { ...pod.metadata, labels: { a: "3" } } },
      }),
      200,
    ).json;
    expect(put.metadata.labels).toEqual({ a: "3" });
    const statusPut = expectStatus(
      await c.request("PATCH", `${PODS}/dry-existing/status?dryRun=All`, {
        body: { status: { phase: "Running" } },
      }),
      200,
    ).json;
    expect(statusPut.status.phase).toBe("Running");
    expectStatus(await c.request("DELETE", `${PODS}/dry-existing?dryRun=All`), 200);
    expectStatus(await c.request("DELETE", `${PODS}?dryRun=All`), 200);
    expect(await get(c, `${PODS}/dry-existing`)).toEqual(pod);
    expect(await revision(c)).toBe(mid);

    expectFailure(
      await c.request("POST", `${PODS}?dryRun=Everything`, { body: podBody("dry2") }),
      400,
      "BadRequest",
    );
  });

  it("creates objects from YAML", async () => {
    const yaml = [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: from-yaml",
      "  labels: {app: yaml}",
      "spec:",
      "  containers:",
      "  - name: main",
      "    image: nginx:1.27",
      "    ports:",
      "    - containerPort: 80",
    ].join("\n");
    const res = expectStatus(
      await c.request("POST", PODS, { body: yaml, headers: { "content-type": "application/yaml" } }),
      201,
    );
    expect(res.json.metadata.labels).toEqual({ app: "yaml" });
    expect(res.json.spec.containers[0].ports).toEqual([{ containerPort: 80, protocol: "TCP" }]);
  });

  it("serves nodes, including the status subresource", async () => {
    const node = await create(c, "/api/v1/nodes", nodeBody("crud-node", { labels: { role: "worker" } }));
    expect(node).toMatchObject({ kind: "Node", metadata: { name: "crud-node", labels: { role: "worker" } } });
    expect(node.metadata.namespace).toBeUndefined();
    const status = expectStatus(
      await c.request("PUT", "/api/v1/nodes/crud-node/status", {
        body: {
          ...node,
          status: {
            addresses: [{ type: "InternalIP", address: "192.168.1.10" }],
            capacity: { pods: "110", cpu: "2" },
          },
        },
      }),
      200,
    ).json;
    expect(status.status.addresses).toEqual([{ type: "InternalIP", address: "192.168.1.10" }]);
    expect(names(await get(c, "/api/v1/nodes"))).toContain("crud-node");
    // Nodes are cluster-scoped: no namespaced path.
    expectFailure(await c.request("GET", "/api/v1/namespaces/default/nodes/crud-node"), 404, "NotFound");
    expectStatus(await c.request("DELETE", "/api/v1/nodes/crud-node"), 200);
    expectFailure(await c.request("GET", "/api/v1/nodes/crud-node"), 404, "NotFound");
  });

  it("serves leases", async () => {
    const lease = await create(
      c,
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
      leaseBody("n1"),
    );
    expect(lease).toMatchObject({
      kind: "Lease",
      apiVersion: "coordination.k8s.io/v1",
      metadata: { name: "n1", namespace: "kube-node-lease" },
      spec: { holderIdentity: "n1", leaseDurationSeconds: 40 },
    });
    const renewed = await mergePatch(c, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", {
      spec: { renewTime: "2030-01-01T00:00:00.000000Z" },
    });
    expect(renewed.spec.renewTime).toBe("2030-01-01T00:00:00.000000Z");
    const list = await get(c, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
    expect(list).toMatchObject({ kind: "LeaseList", apiVersion: "coordination.k8s.io/v1" });
    expect(names(list)).toContain("n1");
    expect(names(await get(c, "/apis/coordination.k8s.io/v1/leases"))).toContain("n1");
    expectStatus(
      await c.request("DELETE", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
      200,
    );
    expectFailure(
      await c.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
      404,
      "NotFound",
    );
  });

  it("serves core events and reads them through events.k8s.io/v1", async () => {
    const ev = await create(c, `/api/v1/namespaces/${NS}/events`, {
      metadata: { name: "web.1" },
      involvedObject: { kind: "Pod", namespace: NS, name: "web", apiVersion: "v1" },
      reason: "Started",
      message: "Started container main",
      type: "Normal",
      source: { component: "kubelet", host: "n1" },
      firstTimestamp: "2025-01-01T00:00:00Z",
      lastTimestamp: "2025-01-01T00:00:05Z",
      count: 2,
    });
    expect(ev).toMatchObject({ kind: "Event", apiVersion: "v1", reason: "Started", count: 2 });

    const v1 = await get(c, `/apis/events.k8s.io/v1/namespaces/${NS}/events/web.1`);
    expect(v1).toMatchObject({
      kind: "Event",
      apiVersion: "events.k8s.io/v1",
      metadata: {
        name: "web.1",
        namespace: NS,
        uid: ev.metadata.uid,
        resourceVersion: ev.metadata.resourceVersion,
      },
      regarding: { kind: "Pod", namespace: NS, name: "web" },
      note: "Started container main",
      reason: "Started",
      type: "Normal",
      deprecatedSource: { component: "kubelet", host: "n1" },
      deprecatedFirstTimestamp: "2025-01-01T00:00:00Z",
      deprecatedLastTimestamp: "2025-01-01T00:00:05Z",
      deprecatedCount: 2,
    });
    const list = await get(c, `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    expect(list).toMatchObject({ kind: "EventList", apiVersion: "events.k8s.io/v1" });
    expect(list.items.map((i: any) => i.note)).toContain("Started container main");
    const selected = await get(
      c,
      `/apis/events.k8s.io/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent("regarding.name=web")}`,
    );
    expect(names(selected)).toEqual(["web.1"]);
    const coreSelected = await get(
      c,
      `/api/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent("involvedObject.name=web,reason=Started")}`,
    );
    expect(names(coreSelected)).toEqual(["web.1"]);

    const updated = await mergePatch(c, `/api/v1/namespaces/${NS}/events/web.1`, { count: 3 });
    expect(updated.count).toBe(3);
    expect((await get(c, `/apis/events.k8s.io/v1/namespaces/${NS}/events/web.1`)).deprecatedCount).toBe(3);
    expectStatus(await c.request("DELETE", `/api/v1/namespaces/${NS}/events/web.1`), 200);
    expectFailure(
      await c.request("GET", `/apis/events.k8s.io/v1/namespaces/${NS}/events/web.1`),
      404,
      "NotFound",
    );
  });

  it("answers pod logs with 400 before scheduling and 503 until an agent serves them", async () => {
    await create(c, PODS, podBody("log-unbound"));
    expectFailure(await c.request("GET", `${PODS}/log-unbound/log`), 400, "BadRequest");
    await create(c, PODS, podBody("log-bound", { nodeName: "somewhere" }));
    const s = expectFailure(await c.request("GET", `${PODS}/log-bound/log`), 503, "ServiceUnavailable");
    expect(s.message).toContain("somewhere");
    expectFailure(await c.request("GET", `${PODS}/log-missing/log`), 404, "NotFound");
  });

  it("finalizes a terminating namespace through the finalize subresource", async () => {
    // No controllers here: the client plays the namespace controller.
    await createNamespace(c, "to-finalize");
    const deleting = expectStatus(await c.request("DELETE", "/api/v1/namespaces/to-finalize"), 200).json;
    expect(deleting.status.phase).toBe("Terminating");
    expect(deleting.spec.finalizers).toEqual(["kubernetes"]);
    // The main resource cannot drop spec.finalizers; only /finalize can.
    const put = expectStatus(
      await c.request("PUT", "/api/v1/namespaces/to-finalize", {
        body: { ...deleting, spec: { finalizers: [] } },
      }),
      200,
    ).json;
    expect(put.spec.finalizers).toEqual(["kubernetes"]);
    expectStatus(
      await c.request("PUT", "/api/v1/namespaces/to-finalize/finalize", {
        body: { ...deleting, spec: { finalizers: [] } },
      }),
      200,
    );
    expectFailure(await c.request("GET", "/api/v1/namespaces/to-finalize"), 404, "NotFound");
  });

  it("prints tables for kubectl", async () => {
    await create(c, PODS, podBody("table-pod"));
    const res = expectStatus(
      await c.request("GET", `${PODS}?fieldSelector=metadata.name%3Dtable-pod`, {
        headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" },
      }),
      200,
    ).json;
    expect(res).toMatchObject({ kind: "Table", apiVersion: "meta.k8s.io/v1" });
    const columns = res.columnDefinitions.map((d: any) => d.name);
    expect(columns.slice(0, 5)).toEqual(["Name", "Ready", "Status", "Restarts", "Age"]);
    expect(res.rows).toHaveLength(1);
    expect(res.rows[0].cells.slice(0, 4)).toEqual(["table-pod", "0/1", "Pending", "0"]);
    expect(res.rows[0].object.metadata.name).toBe("table-pod");
  });
});
