// @kubernetes/client-node (the official JavaScript client) against a real control plane, configured
// only from the kubeconfig file kemu writes: typed list calls, a raw Watch and an Informer.

import { CoreV1Api, KubeConfig, makeInformer, type V1Pod, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";

function pod(name: string, labels: Record<string, string>): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: { containers: [{ name: "app", image: "nginx:1.27" }] },
  };
}

describe("@kubernetes/client-node against kemu api", () => {
  let c: TestCluster;
  let kc: KubeConfig;
  let core: CoreV1Api;

  beforeAll(async () => {
    // No controllers: nothing but the test writes pods, so the watch sequence is exact.
    c = await startTestCluster({ controllers: false });
    kc = new KubeConfig();
    kc.loadFromFile(c.server.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
  });

  afterAll(async () => {
    await c?.close();
  });

  it("loads the kubeconfig: context kemu, the server's URL, the admin token", () => {
    expect(kc.getCurrentContext()).toBe("kemu");
    expect(kc.getCurrentCluster()?.server).toBe(c.server.url);
    expect(kc.getCurrentUser()?.token).toBe(c.server.token);
  });

  it("creates and lists pods with CoreV1Api", async () => {
    const created = await core.createNamespacedPod({
      namespace: "default",
      body: pod("list-a", { app: "list" }),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.namespace).toBe("default");
    await core.createNamespacedPod({ namespace: "default", body: pod("list-b", { app: "list" }) });

    const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=list" });
    expect(list.kind).toBe("PodList");
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(created.metadata?.resourceVersion),
    );
    expect(list.items.map((p) => p.metadata?.name).sort()).toEqual(["list-a", "list-b"]);
    // The typed client deserializes dates and nested structs.
    expect(list.items[0].metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(list.items[0].spec?.containers[0].image).toBe("nginx:1.27");

    const page = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=list", limit: 1 });
    expect(page.items).toHaveLength(1);
    expect(page.metadata?._continue).toBeTruthy();
    const rest = await core.listNamespacedPod({
      namespace: "default",
      labelSelector: "app=list",
      limit: 1,
      _continue: page.metadata?._continue,
    });
    expect([page.items[0].metadata?.name, rest.items[0].metadata?.name].sort()).toEqual(["list-a", "list-b"]);

    const missing = await core.readNamespacedPod({ namespace: "default", name: "nope" }).then(
      () => undefined,
      (e) => e,
    );
    expect(missing?.code).toBe(404);

    await core.deleteNamespacedPod({ namespace: "default", name: "list-a" });
    await core.deleteNamespacedPod({ namespace: "default", name: "list-b" });
    const after = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=list" });
    expect(after.items).toEqual([]);
  });

  it("watches pods: ADDED, MODIFIED, DELETED for changes made through the API", async () => {
    const start = await core.listNamespacedPod({ namespace: "default" });
    const events: { type: string; name: string; rv: string; labels: Record<string, string> }[] = [];
    let doneErr: unknown = "not done";
    let watchDone!: () => void;
    const finished = new Promise<void>((r) => {
      watchDone = r;
    });
    const watch = new Watch(kc);
    const controller = await watch.watch(
      "/api/v1/namespaces/default/pods",
      { resourceVersion: start.metadata?.resourceVersion, allowWatchBookmarks: true },
      (type, obj: V1Pod) => {
        if (type === "BOOKMARK") return;
        events.push({
          type,
          name: obj.metadata?.name ?? "",
          rv: obj.metadata?.resourceVersion ?? "",
          labels: obj.metadata?.labels ?? {},
        });
      },
      (err) => {
        doneErr = err;
        watchDone();
      },
    );
    try {
      const created = await c.request("POST", "/api/v1/namespaces/default/pods", {
        body: pod("watched", { app: "watch" }),
      });
      expect(created.status, created.text).toBe(201);
      const patched = await c.request("PATCH", "/api/v1/namespaces/default/pods/watched", {
        body: { metadata: { labels: { step: "two" } } },
      });
      expect(patched.status, patched.text).toBe(200);
      const deleted = await c.request("DELETE", "/api/v1/namespaces/default/pods/watched");
      expect(deleted.status, deleted.text).toBe(200);

      const mine = () => events.filter((e) => e.name === "watched");
      await eventually(() => mine().some((e) => e.type === "DELETED"));
      const seen = mine();
      expect(seen.map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "DELETED"]);
      expect(seen[0].rv).toBe(created.json.metadata.resourceVersion);
      expect(seen[1].rv).toBe(patched.json.metadata.resourceVersion);
      expect(seen[1].labels).toEqual({ app: "watch", step: "two" });
      expect(Number(seen[2].rv)).toBeGreaterThan(Number(seen[1].rv));
      expect(doneErr).toBe("not done");
    } finally {
      controller.abort();
      await finished;
    }
  });

  it("an Informer syncs the initial list, then follows adds, updates and deletes", async () => {
    for (const name of ["inf-a", "inf-b"]) {
      const r = await c.request("POST", "/api/v1/namespaces/default/pods", {
        body: pod(name, { app: "inf" }),
      });
      expect(r.status, r.text).toBe(201);
    }
    const informer = makeInformer(
      kc,
      "/api/v1/namespaces/default/pods",
      () => core.listNamespacedPod({ namespace: "default", labelSelector: "app=inf" }),
      "app=inf",
    );
    const log: string[] = [];
    const errors: unknown[] = [];
    informer.on("add", (p) => log.push(`add ${p.metadata?.name}`));
    informer.on("update", (p) => log.push(`update ${p.metadata?.name} ${p.metadata?.labels?.step ?? ""}`));
    informer.on("delete", (p) => log.push(`delete ${p.metadata?.name}`));
    informer.on("error", (e) => errors.push(e));
    await informer.start();
    try {
      // Synced: the cache holds exactly the listed pods.
      expect(
        informer
          .list("default")
          .map((p) => p.metadata?.name)
          .sort(),
      ).toEqual(["inf-a", "inf-b"]);
      expect(log.slice().sort()).toEqual(["add inf-a", "add inf-b"]);

      const created = await c.request("POST", "/api/v1/namespaces/default/pods", {
        body: pod("inf-c", { app: "inf" }),
      });
      expect(created.status, created.text).toBe(201);
      await eventually(() => informer.get("inf-c", "default"));
      expect(informer.get("inf-c", "default")?.metadata?.uid).toBe(created.json.metadata.uid);

      const patched = await c.request("PATCH", "/api/v1/namespaces/default/pods/inf-a", {
        body: { metadata: { labels: { step: "two" } } },
      });
      expect(patched.status, patched.text).toBe(200);
      await eventually(() => informer.get("inf-a", "default")?.metadata?.labels?.step === "two");
      expect(informer.get("inf-a", "default")?.metadata?.resourceVersion).toBe(
        patched.json.metadata.resourceVersion,
      );

      // Leaving the label selector counts as a delete for a filtered informer.
      const relabeled = await c.request("PATCH", "/api/v1/namespaces/default/pods/inf-b", {
        body: { metadata: { labels: { app: "other" } } },
      });
      expect(relabeled.status, relabeled.text).toBe(200);
      const deleted = await c.request("DELETE", "/api/v1/namespaces/default/pods/inf-c");
      expect(deleted.status, deleted.text).toBe(200);
      await eventually(() => !informer.get("inf-c", "default") && !informer.get("inf-b", "default"));

      expect(
        informer
          .list("default")
          .map((p) => p.metadata?.name)
          .sort(),
      ).toEqual(["inf-a"]);
      expect(log).toEqual(
        expect.arrayContaining(["add inf-c", "update inf-a two", "delete inf-b", "delete inf-c"]),
      );
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });
});
