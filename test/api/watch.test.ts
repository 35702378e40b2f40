// ?watch=1 streams: resume from a resourceVersion, initial ADDED events, selector transitions,
// bookmarks, 410 Gone for compacted revisions and resumption across a server restart.

import { rmSync } from "node:fs";
import https from "node:https";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster, tempDir } from "../harness.ts";
import { create, createNamespace, expectStatus, get, mergePatch, podBody } from "./helpers.ts";

type Watch = ReturnType<TestCluster["watch"]>;

/** [type, name] of each non-bookmark event. */
function summary(events: any[]): [string, string][] {
  return events.filter((e) => e.type !== "BOOKMARK").map((e) => [e.type, e.object.metadata.name]);
}

/** Waits until an event for `name` of `type` has arrived. */
async function seen(w: Watch, type: string, name: string): Promise<void> {
  await eventually(() => w.events.some((e) => e.type === type && e.object.metadata?.name === name));
}

const TABLE_ACCEPT =
  "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/** A watch with kubectl's Accept header (the harness's watch sends none). */
function tableWatch(c: TestCluster, path: string): Watch {
  const url = new URL(c.server.url);
  const events: any[] = [];
  let done!: () => void;
  const closed = new Promise<void>((r) => {
    done = r;
  });
  const req = https.request({
    host: url.hostname,
    port: url.port,
    path,
    ca: c.server.caPem,
    headers: { authorization: `Bearer ${c.server.token}`, accept: TABLE_ACCEPT },
  });
  req.on("response", (res) => {
    let buf = "";
    res.on("data", (d) => {
      buf += d;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        events.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
    res.on("close", done);
  });
  req.on("error", done);
  req.end();
  return { events, close: () => req.destroy(), closed };
}

describe("watch", () => {
  const clusters: TestCluster[] = [];
  const watches: Watch[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const w of watches.splice(0)) w.close();
    for (const c of clusters.splice(0)) await c.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function cluster(opts: Parameters<typeof startTestCluster>[0] = {}): Promise<TestCluster> {
    const c = await startTestCluster({ controllers: false, ...opts });
    clusters.push(c);
    return c;
  }

  function watch(c: TestCluster, path: string): Watch {
    const w = c.watch(path);
    watches.push(w);
    return w;
  }

  it("from a resourceVersion delivers exactly the later changes, in order", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    await create(c, pods, podBody("before"));
    const rv = (await get(c, pods)).metadata.resourceVersion;

    await create(c, pods, podBody("a"));
    await create(c, pods, podBody("b"));
    const a2 = await mergePatch(c, `${pods}/a`, { metadata: { labels: { v: "2" } } });
    expectStatus(await c.request("DELETE", `${pods}/b`), 200);
    await create(c, "/api/v1/namespaces/default/pods", podBody("elsewhere"));

    const w = watch(c, `${pods}?watch=1&resourceVersion=${rv}`);
    await seen(w, "DELETED", "b");
    // A sentinel written after the watch opened proves nothing else was queued in between.
    await create(c, pods, podBody("sentinel"));
    await seen(w, "ADDED", "sentinel");
    expect(summary(w.events)).toEqual([
      ["ADDED", "a"],
      ["ADDED", "b"],
      ["MODIFIED", "a"],
      ["DELETED", "b"],
      ["ADDED", "sentinel"],
    ]);
    expect(w.events[2].object).toEqual(a2);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    for (let i = 1; i < rvs.length; i++) expect(rvs[i]).toBeGreaterThan(rvs[i - 1]);
    expect(rvs[0]).toBeGreaterThan(Number(rv));
  });

  it("without a resourceVersion sends the current objects as ADDED first, then changes", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    await create(c, pods, podBody("one"));
    await create(c, pods, podBody("two"));
    expectStatus(await c.request("DELETE", `${pods}/two`), 200);
    await create(c, pods, podBody("three"));

    const w = watch(c, `${pods}?watch=true`);
    await eventually(() => w.events.length >= 2);
    await mergePatch(c, `${pods}/one`, { metadata: { labels: { x: "1" } } });
    await seen(w, "MODIFIED", "one");
    expect(summary(w.events)).toEqual([
      ["ADDED", "one"],
      ["ADDED", "three"],
      ["MODIFIED", "one"],
    ]);
    // resourceVersion=0 means the same ("any"): the current state first.
    const w0 = watch(c, `${pods}?watch=1&resourceVersion=0`);
    await eventually(() => w0.events.length >= 2);
    expect(summary(w0.events)).toEqual([
      ["ADDED", "one"],
      ["ADDED", "three"],
    ]);
  });

  it("watches across namespaces and cluster-scoped kinds", async () => {
    const c = await cluster();
    const rv = (await get(c, "/api/v1/pods")).metadata.resourceVersion;
    const pods = watch(c, `/api/v1/pods?watch=1&resourceVersion=${rv}`);
    const nodes = watch(c, `/api/v1/nodes?watch=1&resourceVersion=${rv}`);
    await createNamespace(c, "w1");
    await createNamespace(c, "w2");
    await create(c, "/api/v1/namespaces/w1/pods", podBody("p1"));
    await create(c, "/api/v1/namespaces/w2/pods", podBody("p2"));
    await create(c, "/api/v1/nodes", { metadata: { name: "n1" } });
    await seen(pods, "ADDED", "p2");
    await seen(nodes, "ADDED", "n1");
    expect(pods.events.map((e) => `${e.object.metadata.namespace}/${e.object.metadata.name}`)).toEqual([
      "w1/p1",
      "w2/p2",
    ]);
    expect(summary(nodes.events)).toEqual([["ADDED", "n1"]]);
  });

  it("filters by label selector; an object leaving the selector appears as DELETED", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    await create(c, pods, podBody("web-1", { labels: { app: "web" } }));
    await create(c, pods, podBody("db-1", { labels: { app: "db" } }));

    const w = watch(c, `${pods}?watch=1&labelSelector=${encodeURIComponent("app=web")}`);
    await seen(w, "ADDED", "web-1");
    await mergePatch(c, `${pods}/db-1`, { metadata: { labels: { app: "db", touched: "1" } } });
    await mergePatch(c, `${pods}/web-1`, { metadata: { labels: { app: "web", touched: "1" } } });
    await mergePatch(c, `${pods}/web-1`, { metadata: { labels: { app: "other" } } });
    await mergePatch(c, `${pods}/db-1`, { metadata: { labels: { app: "web" } } });
    await create(c, pods, podBody("web-2", { labels: { app: "web" } }));
    await create(c, pods, podBody("db-2", { labels: { app: "db" } }));
    expectStatus(await c.request("DELETE", `${pods}/db-1`), 200);
    expectStatus(await c.request("DELETE", `${pods}/db-2`), 200);
    await create(c, pods, podBody("web-sentinel", { labels: { app: "web" } }));
    await seen(w, "ADDED", "web-sentinel");
    expect(summary(w.events)).toEqual([
      ["ADDED", "web-1"],
      ["MODIFIED", "web-1"],
      ["DELETED", "web-1"],
      ["ADDED", "db-1"],
      ["ADDED", "web-2"],
      ["DELETED", "db-1"],
      ["ADDED", "web-sentinel"],
    ]);
    // The DELETED event for an object leaving the selector carries its new state.
    expect(w.events[2].object.metadata.labels).toEqual({ app: "other", touched: "1" });
  });

  it("filters by field selector", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    const rv = (await get(c, pods)).metadata.resourceVersion;
    const w = watch(
      c,
      `${pods}?watch=1&resourceVersion=${rv}&fieldSelector=${encodeURIComponent("status.phase=Running")}`,
    );
    await create(c, pods, podBody("p"));
    await create(c, pods, podBody("q"));
    await mergePatch(c, `${pods}/p/status`, { status: { phase: "Running" } });
    await mergePatch(c, `${pods}/p/status`, { status: { phase: "Succeeded" } });
    await mergePatch(c, `${pods}/q/status`, { status: { phase: "Running" } });
    await seen(w, "ADDED", "q");
    expect(summary(w.events)).toEqual([
      ["ADDED", "p"],
      ["DELETED", "p"],
      ["ADDED", "q"],
    ]);
    // A resumed watch with a selector sees the same transitions from the change log.
    const resumed = watch(
      c,
      `${pods}?watch=1&resourceVersion=${rv}&fieldSelector=${encodeURIComponent("status.phase=Running")}`,
    );
    await seen(resumed, "ADDED", "q");
    expect(summary(resumed.events)).toEqual(summary(w.events));
  });

  it("sends the initial-events-end bookmark with sendInitialEvents=true", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    await create(c, pods, podBody("x"));
    const y = await create(c, pods, podBody("y"));
    const w = watch(
      c,
      `${pods}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`,
    );
    await eventually(() => w.events.some((e) => e.type === "BOOKMARK"));
    expect(w.events.map((e) => e.type)).toEqual(["ADDED", "ADDED", "BOOKMARK"]);
    const bookmark = w.events[2].object;
    expect(bookmark.kind).toBe("Pod");
    expect(bookmark.apiVersion).toBe("v1");
    expect(bookmark.metadata.annotations).toEqual({ "k8s.io/initial-events-end": "true" });
    expect(Number(bookmark.metadata.resourceVersion)).toBeGreaterThanOrEqual(
      Number(y.metadata.resourceVersion),
    );

    await create(c, pods, podBody("z"));
    await seen(w, "ADDED", "z");
    expect(summary(w.events)).toEqual([
      ["ADDED", "x"],
      ["ADDED", "y"],
      ["ADDED", "z"],
    ]);
  });

  it("answers a compacted resourceVersion with an ERROR event carrying 410 Expired", async () => {
    const c = await cluster({ retainChanges: 5 });
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    for (let i = 0; i < 12; i++) await create(c, pods, podBody(`p${i}`));
    const w = watch(c, `${pods}?watch=1&resourceVersion=1`);
    await w.closed;
    expect(w.events).toHaveLength(1);
    expect(w.events[0].type).toBe("ERROR");
    expect(w.events[0].object).toMatchObject({
      kind: "Status",
      status: "Failure",
      code: 410,
      reason: "Expired",
    });
    expect(w.events[0].object.message).toMatch(/too old resource version/);

    // A recent resourceVersion still resumes.
    const rv = (await get(c, pods)).metadata.resourceVersion;
    const ok = watch(c, `${pods}?watch=1&resourceVersion=${rv}`);
    await create(c, pods, podBody("after"));
    await seen(ok, "ADDED", "after");
    expect(summary(ok.events)).toEqual([["ADDED", "after"]]);
  });

  it("closes the stream after timeoutSeconds", async () => {
    const c = await cluster();
    const w = watch(c, "/api/v1/namespaces?watch=1&timeoutSeconds=1");
    await w.closed;
    expect(summary(w.events).map(([, name]) => name)).toContain("default");
  });

  it("resumes from a resourceVersion after a server restart on the same data dir", async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const first = await startTestCluster({ dataDir, controllers: false });
    let rv: string;
    let token: string;
    let listBefore: any;
    try {
      token = first.server.token;
      await createNamespace(first, "w");
      const pods = "/api/v1/namespaces/w/pods";
      await create(first, pods, podBody("old"));
      rv = (await get(first, pods)).metadata.resourceVersion;
      await create(first, pods, podBody("missed-1"));
      await mergePatch(first, `${pods}/old`, { metadata: { labels: { v: "2" } } });
      await create(first, pods, podBody("missed-2"));
      expectStatus(await first.request("DELETE", `${pods}/missed-1`), 200);
      listBefore = await get(first, pods);
    } finally {
      await first.close();
    }

    const second = await cluster({ dataDir });
    expect(second.server.token).toBe(token);
    const pods = "/api/v1/namespaces/w/pods";
    // The same objects with the same resourceVersions (the list's own revision may have moved on:
    // a starting control plane writes its defaults, such as the kubernetes Service's endpoints).
    expect((await get(second, pods)).items).toEqual(listBefore.items);
    const w = watch(second, `${pods}?watch=1&resourceVersion=${rv}`);
    await seen(w, "DELETED", "missed-1");
    await create(second, pods, podBody("live"));
    await seen(w, "ADDED", "live");
    expect(summary(w.events)).toEqual([
      ["ADDED", "missed-1"],
      ["MODIFIED", "old"],
      ["ADDED", "missed-2"],
      ["DELETED", "missed-1"],
      ["ADDED", "live"],
    ]);
    // Revisions keep increasing across the restart.
    const live = w.events[4].object;
    expect(Number(live.metadata.resourceVersion)).toBeGreaterThan(
      Number(w.events[3].object.metadata.resourceVersion),
    );
  });

  it("streams Table rows for kubectl get -w", async () => {
    const c = await cluster();
    await createNamespace(c, "w");
    const pods = "/api/v1/namespaces/w/pods";
    await create(c, pods, podBody("existing"));
    const w = tableWatch(c, `${pods}?watch=1`);
    watches.push(w);
    await eventually(() => w.events.length >= 1);
    await mergePatch(c, `${pods}/existing/status`, { status: { phase: "Running" } });
    await eventually(() => w.events.length >= 2);
    expect(w.events.map((e) => e.type)).toEqual(["ADDED", "MODIFIED"]);
    for (const e of w.events) {
      expect(e.object).toMatchObject({ kind: "Table", apiVersion: "meta.k8s.io/v1" });
      expect(e.object.rows).toHaveLength(1);
      expect(e.object.rows[0].cells[0]).toBe("existing");
    }
    expect(w.events[0].object.rows[0].cells[2]).toBe("Pending");
    expect(w.events[1].object.rows[0].cells[2]).toBe("Running");
  });
});
