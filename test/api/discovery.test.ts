// Discovery, health and OpenAPI documents: what kubectl reads before anything else.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";
import { expectFailure, expectStatus, get } from "./helpers.ts";

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function entry(list: any, name: string): any {
  const found = list.resources.find((r: any) => r.name === name);
  if (!found) throw new Error(`${list.groupVersion} has no resource ${name}`);
  return found;
}

describe("discovery", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("serves /version", async () => {
    const v = await get(c, "/version");
    expect(v.major).toBe("1");
    expect(v.minor).toMatch(/^\d+$/);
    expect(v.gitVersion).toMatch(/^v1\.\d+\.\d+/);
    expect(v.platform).toMatch(/^\w+\/\w+$/);
  });

  it("serves /api as APIVersions with the server address", async () => {
    const v = await get(c, "/api");
    expect(v.kind).toBe("APIVersions");
    expect(v.versions).toEqual(["v1"]);
    const { port } = new URL(c.server.url);
    expect(v.serverAddressByClientCIDRs).toEqual([
      { clientCIDR: "0.0.0.0/0", serverAddress: `127.0.0.1:${port}` },
    ]);
  });

  it("serves /apis with every group and its preferred version", async () => {
    const list = await get(c, "/apis");
    expect(list.kind).toBe("APIGroupList");
    const byName = Object.fromEntries(list.groups.map((g: any) => [g.name, g]));
    for (const group of ["events.k8s.io", "coordination.k8s.io"]) {
      expect(byName[group]).toEqual({
        name: group,
        versions: [{ groupVersion: `${group}/v1`, version: "v1" }],
        preferredVersion: { groupVersion: `${group}/v1`, version: "v1" },
      });
    }
    expect(byName[""]).toBeUndefined();
    const one = await get(c, "/apis/coordination.k8s.io");
    expect(one).toMatchObject({ kind: "APIGroup", name: "coordination.k8s.io" });
  });

  it("lists core resources with verbs, short names and subresources", async () => {
    const list = await get(c, "/api/v1");
    expect(list).toMatchObject({ kind: "APIResourceList", groupVersion: "v1" });
    const pods = entry(list, "pods");
    expect(pods).toMatchObject({ singularName: "pod", namespaced: true, kind: "Pod", shortNames: ["po"] });
    expect([...pods.verbs].sort()).toEqual(ALL_VERBS);
    expect(pods.categories).toContain("all");
    expect(entry(list, "nodes")).toMatchObject({ namespaced: false, kind: "Node", shortNames: ["no"] });
    expect(entry(list, "namespaces")).toMatchObject({
      namespaced: false,
      kind: "Namespace",
      shortNames: ["ns"],
    });
    expect(entry(list, "events")).toMatchObject({ namespaced: true, kind: "Event", shortNames: ["ev"] });

    expect(entry(list, "pods/status")).toMatchObject({ kind: "Pod", namespaced: true });
    expect([...entry(list, "pods/status").verbs].sort()).toEqual(["get", "patch", "update"]);
    expect(entry(list, "pods/binding")).toMatchObject({ kind: "Binding", verbs: ["create"] });
    expect(entry(list, "pods/log").verbs).toEqual(["get"]);
    expect(entry(list, "nodes/status")).toMatchObject({ kind: "Node", namespaced: false });
    expect(entry(list, "namespaces/status").kind).toBe("Namespace");
    expect(entry(list, "namespaces/finalize").verbs).toEqual(["update"]);
    // No group resources leak into the core list.
    expect(list.resources.some((r: any) => r.name === "leases")).toBe(false);
  });

  it("lists group resources", async () => {
    const leases = await get(c, "/apis/coordination.k8s.io/v1");
    expect(leases).toMatchObject({ kind: "APIResourceList", groupVersion: "coordination.k8s.io/v1" });
    expect(entry(leases, "leases")).toMatchObject({ namespaced: true, kind: "Lease", singularName: "lease" });
    expect([...entry(leases, "leases").verbs].sort()).toEqual(ALL_VERBS);

    const events = await get(c, "/apis/events.k8s.io/v1");
    expect(events.groupVersion).toBe("events.k8s.io/v1");
    expect(entry(events, "events")).toMatchObject({ namespaced: true, kind: "Event", shortNames: ["ev"] });
    expect(entry(events, "events").verbs).toEqual(expect.arrayContaining(["get", "list", "watch"]));
  });

  it("answers 404 for unknown groups and versions", async () => {
    expectFailure(await c.request("GET", "/apis/batch/v1"), 404, "NotFound");
    expectFailure(await c.request("GET", "/apis/apps/v2"), 404, "NotFound");
    expectFailure(await c.request("GET", "/apis/nope.example.com"), 404, "NotFound");
    expectFailure(await c.request("GET", "/api/v2"), 404, "NotFound");
    expectFailure(await c.request("GET", "/apis/coordination.k8s.io/v2"), 404, "NotFound");
  });

  it("serves health endpoints without a token", async () => {
    for (const path of ["/healthz", "/readyz", "/livez"]) {
      const res = expectStatus(await c.request("GET", path, { token: null }), 200);
      expect(res.text).toBe("ok");
    }
  });

  it("refuses discovery without the token", async () => {
    for (const path of ["/version", "/api", "/apis", "/api/v1", "/openapi/v3"]) {
      expectFailure(await c.request("GET", path, { token: null }), 401, "Unauthorized");
    }
  });

  it("serves the OpenAPI v3 root and group documents with fieldValidation on PATCH", async () => {
    const root = await get(c, "/openapi/v3");
    expect(Object.keys(root.paths)).toEqual(
      expect.arrayContaining(["api/v1", "apis/coordination.k8s.io/v1", "apis/events.k8s.io/v1"]),
    );
    const url = root.paths["api/v1"].serverRelativeURL;
    expect(url).toMatch(/^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);

    const core = await get(c, url);
    expect(core.openapi).toMatch(/^3\./);
    const podPath = core.paths["/api/v1/namespaces/{namespace}/pods/{name}"];
    expect(podPath).toBeDefined();
    const params = podPath.patch.parameters.map((p: any) => p.name);
    expect(params).toContain("fieldValidation");
    expect(podPath.patch["x-kubernetes-group-version-kind"]).toEqual({
      group: "",
      version: "v1",
      kind: "Pod",
    });
    expect(core.paths["/api/v1/nodes/{name}"].patch.parameters.map((p: any) => p.name)).toContain(
      "fieldValidation",
    );

    const leases = await get(c, root.paths["apis/coordination.k8s.io/v1"].serverRelativeURL);
    const leasePath = leases.paths["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"];
    expect(leasePath.patch.parameters.map((p: any) => p.name)).toContain("fieldValidation");
  });
});
