// The endpoints, endpointslice and mirroring controllers, driven the way a node agent drives
// them: a registered node, pods bound to it, their status patched as the agent reports them.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  expectStatus,
  get,
  mergePatch,
  podBody,
  registerNode,
  rfc3339,
} from "./helpers.ts";

const NS = "eps";
const PODS = `/api/v1/namespaces/${NS}/pods`;
const SVCS = `/api/v1/namespaces/${NS}/services`;
const EPS = `/api/v1/namespaces/${NS}/endpoints`;
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
const WAIT = 10_000;
const NODE = "node-a";
const ZONE = "zone-1";

describe("endpoint controllers", () => {
  let c: TestCluster;
  let nextIP = 10;

  beforeAll(async () => {
    c = await startTestCluster({ nodeMonitorGracePeriodMs: 3_600_000 });
    await createNamespace(c, NS);
    await registerNode(c, NODE, { labels: { "topology.kubernetes.io/zone": ZONE } });
  });
  afterAll(async () => {
    await c?.close();
  });

  /** A pod bound to the node, optionally declaring named container ports. */
  async function pod(
    name: string,
    labels: Record<string, string>,
    ports: { name: string; containerPort: number }[] = [],
  ) {
    return create(
      c,
      PODS,
      podBody(name, { labels, nodeName: NODE, containers: [{ name: "app", image: "nginx:1.27", ports }] }),
    );
  }

  /** Reports the pod running with an IP, ready or not, as the agent would. */
  async function report(name: string, ready: boolean, phase = "Running"): Promise<string> {
    const existing = (await get(c, `${PODS}/${name}`)).status?.podIP;
    const ip = existing ?? `10.244.0.${nextIP++}`;
    const now = rfc3339();
    await mergePatch(c, `${PODS}/${name}/status`, {
      status: {
        phase,
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [
          { type: "Ready", status: ready ? "True" : "False", lastProbeTime: null, lastTransitionTime: now },
        ],
      },
    });
    return ip;
  }

  async function slicesOf(service: string): Promise<any[]> {
    const list = await get(
      c,
      `${SLICES}?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
    );
    return list.items;
  }

  /** Every endpoint of a Service's slices as [address, ports, conditions], sorted. */
  async function sliceEndpoints(service: string): Promise<[string, number[], any][]> {
    const out: [string, number[], any][] = [];
    for (const s of await slicesOf(service)) {
      for (const ep of s.endpoints ?? []) {
        out.push([ep.addresses[0], (s.ports ?? []).map((p: any) => p.port).sort(), ep.conditions]);
      }
    }
    return out.sort((a, b) => a[0].localeCompare(b[0]));
  }

  it("lists ready and not-ready pods in Endpoints and EndpointSlices, named ports resolved per pod", async () => {
    await create(c, SVCS, {
      metadata: { name: "web", labels: { team: "a" } },
      spec: {
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: "http" },
          { name: "metrics", port: 9090 },
        ],
      },
    });
    await pod("web-1", { app: "web" }, [{ name: "http", containerPort: 8080 }]);
    await pod("web-2", { app: "web" });
    const ip1 = await report("web-1", true);
    const ip2 = await report("web-2", true);
    const ref = (name: string, uid: string) => ({ kind: "Pod", namespace: NS, name, uid });
    const uid1 = (await get(c, `${PODS}/web-1`)).metadata.uid;
    const uid2 = (await get(c, `${PODS}/web-2`)).metadata.uid;

    const ep = await eventually(async () => {
      const e = await get(c, `${EPS}/web`);
      return e.subsets?.length === 2 && e.subsets.every((s: any) => s.addresses) ? e : undefined;
    }, WAIT);
    expect(ep.metadata.labels).toEqual({ team: "a" });
    expect(ep.subsets).toEqual([
      {
        addresses: [{ ip: ip1, nodeName: NODE, targetRef: ref("web-1", uid1) }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      {
        addresses: [
          { ip: ip1, nodeName: NODE, targetRef: ref("web-1", uid1) },
          { ip: ip2, nodeName: NODE, targetRef: ref("web-2", uid2) },
        ],
        ports: [{ name: "metrics", port: 9090, protocol: "TCP" }],
      },
    ]);

    const ready = { ready: true, serving: true, terminating: false };
    expect(
      await eventually(
        async () => ((await sliceEndpoints("web")).length === 2 ? sliceEndpoints("web") : undefined),
        WAIT,
      ),
    ).toEqual([
      [ip1, [8080, 9090], ready],
      [ip2, [9090], ready],
    ]);
    const slices = await slicesOf("web");
    const svcUid = (await get(c, `${SVCS}/web`)).metadata.uid;
    for (const s of slices) {
      expect(s.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
      expect(s.metadata.labels).toEqual({
        team: "a",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      });
      expect(s.metadata.ownerReferences).toEqual([
        {
          apiVersion: "v1",
          kind: "Service",
          name: "web",
          uid: svcUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(s.addressType).toBe("IPv4");
      expect(s.endpoints[0]).toMatchObject({
        nodeName: NODE,
        zone: ZONE,
        targetRef: { kind: "Pod", namespace: NS },
      });
    }

    // web-1 stops being ready: it moves to notReadyAddresses and its slice endpoint turns not ready.
    await report("web-1", false);
    await eventually(
      async () => (await get(c, `${EPS}/web`)).subsets.some((s: any) => s.notReadyAddresses),
      WAIT,
    );
    expect((await get(c, `${EPS}/web`)).subsets).toEqual([
      {
        notReadyAddresses: [{ ip: ip1, nodeName: NODE, targetRef: ref("web-1", uid1) }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      {
        addresses: [{ ip: ip2, nodeName: NODE, targetRef: ref("web-2", uid2) }],
        notReadyAddresses: [{ ip: ip1, nodeName: NODE, targetRef: ref("web-1", uid1) }],
        ports: [{ name: "metrics", port: 9090, protocol: "TCP" }],
      },
    ]);
    expect(
      await eventually(async () => {
        const eps = await sliceEndpoints("web");
        return eps[0]?.[2].ready === false ? eps : undefined;
      }, WAIT),
    ).toEqual([
      [ip1, [8080, 9090], { ready: false, serving: false, terminating: false }],
      [ip2, [9090], ready],
    ]);
    await report("web-1", true);
  });

  it("keeps a terminating pod in slices as terminating, drops it from Endpoints", async () => {
    await eventually(async () => (await sliceEndpoints("web")).every(([, , cond]) => cond.ready), WAIT);
    // Bound to a node, the pod waits for the node to confirm its deletion: it is terminating.
    expectStatus(await c.request("DELETE", `${PODS}/web-2`), 200);
    const ip2 = (await get(c, `${PODS}/web-2`)).status.podIP;
    await eventually(
      async () => !JSON.stringify((await get(c, `${EPS}/web`)).subsets).includes(`"${ip2}"`),
      WAIT,
    );
    const terminating = await eventually(async () => {
      const eps = await sliceEndpoints("web");
      const found = eps.find(([ip]) => ip === ip2);
      return found?.[2].terminating ? found : undefined;
    }, WAIT);
    expect(terminating?.[2]).toEqual({ ready: false, serving: true, terminating: true });
    // The node confirms: gone from the slices too.
    expectStatus(await c.request("DELETE", `${PODS}/web-2`, { body: { gracePeriodSeconds: 0 } }), 200);
    await eventually(async () => (await sliceEndpoints("web")).every(([ip]) => ip !== ip2), WAIT);
  });

  it("skips pods without an IP and pods that finished", async () => {
    await create(c, SVCS, {
      metadata: { name: "jobs" },
      spec: { selector: { app: "jobs" }, ports: [{ port: 80 }] },
    });
    await pod("job-pending", { app: "jobs" });
    await pod("job-done", { app: "jobs" });
    await pod("job-running", { app: "jobs" });
    await report("job-done", false, "Succeeded");
    const running = await report("job-running", true);
    const ep = await eventually(
      async () => (await get(c, `${EPS}/jobs`).catch(() => undefined))?.subsets,
      WAIT,
    );
    expect(ep).toEqual([
      { addresses: [expect.objectContaining({ ip: running })], ports: [{ port: 80, protocol: "TCP" }] },
    ]);
    expect(
      await eventually(
        async () => ((await sliceEndpoints("jobs")).length ? sliceEndpoints("jobs") : undefined),
        WAIT,
      ),
    ).toEqual([[running, [80], { ready: true, serving: true, terminating: false }]]);
  });

  it("publishes not-ready pods when publishNotReadyAddresses is set", async () => {
    await create(c, SVCS, {
      metadata: { name: "peers" },
      spec: {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: { app: "peers" },
        ports: [{ port: 7000 }],
      },
    });
    await pod("peer-0", { app: "peers" });
    const ip = await report("peer-0", false);
    const ep = await eventually(
      async () => (await get(c, `${EPS}/peers`).catch(() => undefined))?.subsets,
      WAIT,
    );
    expect(ep).toEqual([
      { addresses: [expect.objectContaining({ ip })], ports: [{ port: 7000, protocol: "TCP" }] },
    ]);
    expect((await get(c, `${EPS}/peers`)).metadata.labels).toEqual({ "service.kubernetes.io/headless": "" });
    expect(
      await eventually(
        async () => ((await sliceEndpoints("peers")).length ? sliceEndpoints("peers") : undefined),
        WAIT,
      ),
    ).toEqual([[ip, [7000], { ready: true, serving: false, terminating: false }]]);
    const [slice] = await slicesOf("peers");
    expect(slice.metadata.labels["service.kubernetes.io/headless"]).toBe("");
  });

  it("gives a Service without pods empty Endpoints and one placeholder slice; ExternalName gets neither", async () => {
    await create(c, SVCS, {
      metadata: { name: "lonely" },
      spec: { selector: { app: "nobody" }, ports: [{ port: 80 }] },
    });
    await create(c, SVCS, {
      metadata: { name: "alias" },
      spec: { type: "ExternalName", externalName: "example.com", selector: { app: "web" } },
    });
    const ep = await eventually(
      () => c.request("GET", `${EPS}/lonely`).then((r) => (r.status === 200 ? r.json : undefined)),
      WAIT,
    );
    expect(ep.subsets).toBeUndefined();
    const [placeholder, ...more] = (await eventually(
      async () => ((await slicesOf("lonely")).length ? slicesOf("lonely") : undefined),
      WAIT,
    ))!;
    expect(more).toEqual([]);
    expect(placeholder).toMatchObject({ addressType: "IPv4", endpoints: null, ports: [] });
    expect((await c.request("GET", `${EPS}/alias`)).status).toBe(404);
    expect(await slicesOf("alias")).toEqual([]);
  });

  it("puts back a managed slice someone deleted, and removes everything with the Service", async () => {
    const [slice] = await slicesOf("lonely");
    expectStatus(await c.request("DELETE", `${SLICES}/${slice.metadata.name}`), 200);
    await eventually(async () => {
      const now = await slicesOf("lonely");
      return now.length === 1 && now[0].metadata.name !== slice.metadata.name;
    }, WAIT);
    expectStatus(await c.request("DELETE", `${SVCS}/web`), 200);
    await eventually(async () => (await c.request("GET", `${EPS}/web`)).status === 404, WAIT);
    await eventually(async () => (await slicesOf("web")).length === 0, WAIT);
  });

  it("mirrors manual Endpoints of a selector-less Service into EndpointSlices", async () => {
    await create(c, SVCS, {
      metadata: { name: "external-db" },
      spec: { ports: [{ name: "pg", port: 5432 }] },
    });
    const ep = await create(c, EPS, {
      metadata: { name: "external-db", labels: { owner: "dba" } },
      subsets: [
        {
          addresses: [{ ip: "192.0.2.50" }],
          notReadyAddresses: [{ ip: "192.0.2.51" }],
          ports: [{ name: "pg", port: 5432 }],
        },
      ],
    });
    const [mirrored, ...more] = (await eventually(
      async () => ((await slicesOf("external-db")).length ? slicesOf("external-db") : undefined),
      WAIT,
    ))!;
    expect(more).toEqual([]);
    expect(mirrored.metadata.name).toMatch(/^external-db-[a-z0-9]{5}$/);
    expect(mirrored.metadata.labels).toEqual({
      owner: "dba",
      "kubernetes.io/service-name": "external-db",
      "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
    });
    expect(mirrored.metadata.ownerReferences).toEqual([
      {
        apiVersion: "v1",
        kind: "Endpoints",
        name: "external-db",
        uid: ep.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(mirrored).toMatchObject({
      addressType: "IPv4",
      ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
      endpoints: [
        { addresses: ["192.0.2.50"], conditions: { ready: true } },
        { addresses: ["192.0.2.51"], conditions: { ready: false } },
      ],
    });
    // The endpoints controller leaves manual Endpoints alone.
    expect((await get(c, `${EPS}/external-db`)).subsets[0].addresses).toEqual([{ ip: "192.0.2.50" }]);

    await mergePatch(c, `${EPS}/external-db`, {
      subsets: [{ addresses: [{ ip: "192.0.2.60" }], ports: [{ name: "pg", port: 5432 }] }],
    });
    await eventually(
      async () => (await sliceEndpoints("external-db")).map(([ip]) => ip).join() === "192.0.2.60",
      WAIT,
    );

    // skip-mirror: the mirrored slices go.
    await mergePatch(c, `${EPS}/external-db`, {
      metadata: { labels: { "endpointslice.kubernetes.io/skip-mirror": "true" } },
    });
    await eventually(async () => (await slicesOf("external-db")).length === 0, WAIT);
    await mergePatch(c, `${EPS}/external-db`, {
      metadata: { labels: { "endpointslice.kubernetes.io/skip-mirror": null } },
    });
    await eventually(async () => (await slicesOf("external-db")).length === 1, WAIT);
    expectStatus(await c.request("DELETE", `${EPS}/external-db`), 200);
    await eventually(async () => (await slicesOf("external-db")).length === 0, WAIT);
    // The kubernetes Service's Endpoints are never mirrored.
    expect((await slicesOf("kubernetes").catch(() => [])).length).toBe(0);
  });

  it("follows a pod's label change in and out of a selector", async () => {
    await create(c, SVCS, {
      metadata: { name: "canary" },
      spec: { selector: { track: "canary" }, ports: [{ port: 80 }] },
    });
    await pod("api-1", { app: "api" });
    const ip = await report("api-1", true);
    await mergePatch(c, `${PODS}/api-1`, { metadata: { labels: { track: "canary" } } });
    await eventually(async () => (await sliceEndpoints("canary")).some(([a]) => a === ip), WAIT);
    await eventually(
      async () => JSON.stringify((await get(c, `${EPS}/canary`)).subsets ?? []).includes(ip),
      WAIT,
    );
    await mergePatch(c, `${PODS}/api-1`, { metadata: { labels: { track: null } } });
    await eventually(async () => (await sliceEndpoints("canary")).length === 0, WAIT);
    await eventually(async () => (await get(c, `${EPS}/canary`)).subsets === undefined, WAIT);
  });
});
