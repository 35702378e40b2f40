// GET /kemu/v1/events upgraded to a WebSocket: the live change feed with kind, namespace and label
// filters, resume from a resourceVersion, bearer auth, and a bounded buffer for slow clients.

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import { create, createNamespace, expectStatus, get, leaseBody, mergePatch, podBody } from "./helpers.ts";

interface Feed {
  ws: WebSocket;
  messages: any[];
  closed: Promise<{ code: number; reason: string }>;
}

function wsUrl(c: TestCluster, query = ""): string {
  return `${c.server.url.replace(/^https:/, "wss:")}/kemu/v1/events${query ? `?${query}` : ""}`;
}

/** Opens the feed with the admin token and resolves once the upgrade completed. */
async function openFeed(c: TestCluster, query = "", opts: WebSocket.ClientOptions = {}): Promise<Feed> {
  const ws = new WebSocket(wsUrl(c, query), {
    ca: c.server.caPem,
    headers: { authorization: `Bearer ${c.server.token}` },
    ...opts,
  });
  const messages: any[] = [];
  ws.on("message", (data) => messages.push(JSON.parse(data.toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, messages, closed };
}

/** The HTTP status a refused upgrade answered with. */
function refusedWith(url: string, opts: WebSocket.ClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      ws.terminate();
      reject(new Error("upgrade was accepted"));
    });
    ws.on("error", () => {});
  });
}

function summary(messages: any[]): string[] {
  return messages.map(
    (m) => `${m.type} ${m.kind} ${m.object.metadata.namespace ?? ""}/${m.object.metadata.name}`,
  );
}

describe("WebSocket live events", () => {
  const clusters: TestCluster[] = [];
  const feeds: Feed[] = [];
  afterEach(async () => {
    for (const f of feeds.splice(0)) f.ws.terminate();
    for (const c of clusters.splice(0)) await c.close();
  });

  async function cluster(): Promise<TestCluster> {
    const c = await startTestCluster({ controllers: false });
    clusters.push(c);
    return c;
  }

  async function feed(c: TestCluster, query = "", opts: WebSocket.ClientOptions = {}): Promise<Feed> {
    const f = await openFeed(c, query, opts);
    feeds.push(f);
    return f;
  }

  it("streams changes filtered by kind, namespace and label selector", async () => {
    const c = await cluster();
    await createNamespace(c, "ws-a");
    await createNamespace(c, "ws-b");
    const f = await feed(c, `kind=Pod&namespace=ws-a&labelSelector=${encodeURIComponent("app=web")}`);

    await createNamespace(c, "ws-c");
    const web = await create(c, "/api/v1/namespaces/ws-a/pods", podBody("web1", { labels: { app: "web" } }));
    await create(c, "/api/v1/namespaces/ws-a/pods", podBody("db1", { labels: { app: "db" } }));
    await create(c, "/api/v1/namespaces/ws-b/pods", podBody("web2", { labels: { app: "web" } }));
    const lease = leaseBody("web-lease", new Date(), "ws-a");
    lease.metadata.labels = { app: "web" };
    await create(c, "/apis/coordination.k8s.io/v1/namespaces/ws-a/leases", lease);
    await mergePatch(c, "/api/v1/namespaces/ws-a/pods/web1", { metadata: { annotations: { touched: "1" } } });
    // Leaving the selector looks like a deletion; coming back like an addition.
    await mergePatch(c, "/api/v1/namespaces/ws-a/pods/db1", { metadata: { labels: { app: "web" } } });
    await mergePatch(c, "/api/v1/namespaces/ws-a/pods/db1", { metadata: { labels: { app: "db" } } });
    expectStatus(await c.request("DELETE", "/api/v1/namespaces/ws-a/pods/web1"), 200);
    await create(c, "/api/v1/namespaces/ws-a/pods", podBody("sentinel", { labels: { app: "web" } }));

    await eventually(() => f.messages.some((m) => m.object.metadata.name === "sentinel"));
    expect(summary(f.messages)).toEqual([
      "ADDED Pod ws-a/web1",
      "MODIFIED Pod ws-a/web1",
      "ADDED Pod ws-a/db1",
      "DELETED Pod ws-a/db1",
      "DELETED Pod ws-a/web1",
      "ADDED Pod ws-a/sentinel",
    ]);
    expect(f.messages[0].object).toEqual(web);
  });

  it("streams every kind without filters, Events included, each exactly once", async () => {
    const c = await cluster();
    const f = await feed(c);
    await createNamespace(c, "ws-all");
    await create(c, "/api/v1/nodes", { metadata: { name: "ws-node" } });
    await create(c, "/api/v1/namespaces/ws-all/pods", podBody("p"));
    await create(c, "/api/v1/namespaces/ws-all/events", {
      metadata: { name: "p.1" },
      involvedObject: { kind: "Pod", namespace: "ws-all", name: "p" },
      reason: "Testing",
      message: "hello",
      type: "Normal",
    });
    await create(
      c,
      "/apis/coordination.k8s.io/v1/namespaces/ws-all/leases",
      leaseBody("l", new Date(), "ws-all"),
    );
    await eventually(() => f.messages.some((m) => m.kind === "Lease"));
    expect(summary(f.messages)).toEqual([
      "ADDED Namespace /ws-all",
      "ADDED Node /ws-node",
      "ADDED Pod ws-all/p",
      "ADDED Event ws-all/p.1",
      "ADDED Lease ws-all/l",
    ]);
    const event = f.messages[3].object;
    expect(event).toMatchObject({ apiVersion: "v1", kind: "Event", reason: "Testing", message: "hello" });
  });

  it("filters several kinds at once", async () => {
    const c = await cluster();
    const f = await feed(c, "kind=Event,Node");
    await createNamespace(c, "ws-k");
    await create(c, "/api/v1/namespaces/ws-k/pods", podBody("p"));
    await create(c, "/api/v1/nodes", { metadata: { name: "k-node" } });
    await create(c, "/api/v1/namespaces/ws-k/events", {
      metadata: { name: "e" },
      involvedObject: { kind: "Pod", namespace: "ws-k", name: "p" },
      reason: "R",
      message: "m",
    });
    await eventually(() => f.messages.length >= 2);
    await create(c, "/api/v1/nodes", { metadata: { name: "k-sentinel" } });
    await eventually(() => f.messages.some((m) => m.object.metadata.name === "k-sentinel"));
    expect(summary(f.messages)).toEqual([
      "ADDED Node /k-node",
      "ADDED Event ws-k/e",
      "ADDED Node /k-sentinel",
    ]);
  });

  it("resumes after a resourceVersion", async () => {
    const c = await cluster();
    await createNamespace(c, "ws-r");
    const rv = (await get(c, "/api/v1/namespaces/ws-r/pods")).metadata.resourceVersion;
    await create(c, "/api/v1/namespaces/ws-r/pods", podBody("missed"));
    const f = await feed(c, `kind=Pod&resourceVersion=${rv}`);
    await create(c, "/api/v1/namespaces/ws-r/pods", podBody("live"));
    await eventually(() => f.messages.length >= 2);
    expect(summary(f.messages)).toEqual(["ADDED Pod ws-r/missed", "ADDED Pod ws-r/live"]);
  });

  it("refuses connections without the token with 401", async () => {
    const c = await cluster();
    expect(await refusedWith(wsUrl(c), { ca: c.server.caPem })).toBe(401);
    expect(
      await refusedWith(wsUrl(c), { ca: c.server.caPem, headers: { authorization: "Bearer not-the-token" } }),
    ).toBe(401);
  });

  it("accepts the token as a Kubernetes bearer subprotocol", async () => {
    const c = await cluster();
    const bearer = `base64url.bearer.authorization.k8s.io.${Buffer.from(c.server.token).toString("base64url")}`;
    const ws = new WebSocket(wsUrl(c, "kind=Namespace"), [bearer, "kemu.events"], { ca: c.server.caPem });
    const messages: any[] = [];
    ws.on("message", (d) => messages.push(JSON.parse(d.toString())));
    feeds.push({ ws, messages, closed: Promise.resolve({ code: 0, reason: "" }) });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    // The token itself is never echoed back as the chosen protocol.
    expect(ws.protocol).toBe("kemu.events");
    await createNamespace(c, "ws-proto");
    await eventually(() => messages.some((m) => m.object.metadata.name === "ws-proto"));
  });

  it("refuses an unknown kind with 400", async () => {
    const c = await cluster();
    const status = await refusedWith(wsUrl(c, "kind=Widget"), {
      ca: c.server.caPem,
      headers: { authorization: `Bearer ${c.server.token}` },
    });
    expect(status).toBe(400);
  });

  it("closes a client that stops reading with 1013", async () => {
    const c = await cluster();
    await createNamespace(c, "ws-slow");
    const f = await feed(c, "kind=Pod&namespace=ws-slow");
    // Stop reading: the server's send buffer fills once the kernel buffers are full.
    (f.ws as any)._socket.pause();
    const pods = "/api/v1/namespaces/ws-slow/pods";
    await create(c, pods, podBody("big"));
    // 120 changes of ~250 KB each: ~30 MB, far more than kernel buffers plus the 4 MiB limit.
    const chunk = "x".repeat(250 * 1024);
    for (let i = 0; i < 120; i++) {
      await mergePatch(c, `${pods}/big`, {
        metadata: { annotations: { "example.com/blob": `${i}${chunk}` } },
      });
    }
    // Read again: the buffered messages drain, then the close frame arrives.
    (f.ws as any)._socket.resume();
    const { code, reason } = await f.closed;
    expect(code).toBe(1013);
    expect(reason).toMatch(/too slow/);
    expect(f.messages.length).toBeGreaterThan(0);
    expect(f.messages.length).toBeLessThan(121);
    // The server is unharmed: new clients are served.
    const next = await feed(c, "kind=Pod&namespace=ws-slow");
    await create(c, pods, podBody("after"));
    await eventually(() => next.messages.some((m) => m.object.metadata.name === "after"));
  });
});
