// labelSelector and fieldSelector on lists, and limit/continue pagination.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";
import { create, createNamespace, expectFailure, get, mergePatch, names, podBody } from "./helpers.ts";

const NS = "sel";
const PODS = `/api/v1/namespaces/${NS}/pods`;

describe("selectors and pagination", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await createNamespace(c, NS);
    await createNamespace(c, "sel-other");
    await create(c, PODS, podBody("web-fe", { labels: { app: "web", tier: "fe" }, nodeName: "n1" }));
    await create(c, PODS, podBody("web-be", { labels: { app: "web", tier: "be" }, nodeName: "n2" }));
    await create(c, PODS, podBody("db", { labels: { app: "db" }, nodeName: "n1" }));
    await create(c, PODS, podBody("bare"));
    await create(c, "/api/v1/namespaces/sel-other/pods", podBody("web-other", { labels: { app: "web" } }));
    await mergePatch(c, `${PODS}/web-fe/status`, { status: { phase: "Running" } });
    await mergePatch(c, `${PODS}/db/status`, { status: { phase: "Running" } });
  });
  afterAll(async () => {
    await c?.close();
  });

  async function byLabel(selector: string, path = PODS): Promise<string[]> {
    return names(await get(c, `${path}?labelSelector=${encodeURIComponent(selector)}`));
  }

  async function byField(selector: string, path = PODS): Promise<string[]> {
    return names(await get(c, `${path}?fieldSelector=${encodeURIComponent(selector)}`));
  }

  it("selects by label equality", async () => {
    expect(await byLabel("app=web")).toEqual(["web-be", "web-fe"]);
    expect(await byLabel("app==web")).toEqual(["web-be", "web-fe"]);
    expect(await byLabel("app=web,tier=fe")).toEqual(["web-fe"]);
    expect(await byLabel("app=nothing")).toEqual([]);
  });

  it("selects by label inequality, including objects without the label", async () => {
    expect(await byLabel("app!=web")).toEqual(["bare", "db"]);
    expect(await byLabel("app=web,tier!=fe")).toEqual(["web-be"]);
  });

  it("selects by set membership", async () => {
    expect(await byLabel("app in (web,db)")).toEqual(["db", "web-be", "web-fe"]);
    expect(await byLabel("app in (db)")).toEqual(["db"]);
    expect(await byLabel("app notin (web)")).toEqual(["bare", "db"]);
    expect(await byLabel("tier notin (fe,be)")).toEqual(["bare", "db"]);
  });

  it("selects by label existence", async () => {
    expect(await byLabel("tier")).toEqual(["web-be", "web-fe"]);
    expect(await byLabel("!tier")).toEqual(["bare", "db"]);
    expect(await byLabel("app,!tier")).toEqual(["db"]);
  });

  it("applies label selectors across namespaces", async () => {
    const list = await get(c, `/api/v1/pods?labelSelector=${encodeURIComponent("app=web")}`);
    expect(list.items.map((p: any) => `${p.metadata.namespace}/${p.metadata.name}`).sort()).toEqual([
      "sel-other/web-other",
      "sel/web-be",
      "sel/web-fe",
    ]);
  });

  it("refuses malformed label selectors with 400", async () => {
    for (const bad of ["app in (web", "app=web=x", "!", "app notin web", "bad key!=x"]) {
      const res = await c.request("GET", `${PODS}?labelSelector=${encodeURIComponent(bad)}`);
      expectFailure(res, 400, "BadRequest");
    }
  });

  it("selects by metadata.name and metadata.namespace", async () => {
    expect(await byField("metadata.name=db")).toEqual(["db"]);
    expect(await byField("metadata.name!=db")).toEqual(["bare", "web-be", "web-fe"]);
    expect(await byField("metadata.namespace=sel-other", "/api/v1/pods")).toEqual(["web-other"]);
    expect(await byField("metadata.name==web-fe")).toEqual(["web-fe"]);
    // Cluster-scoped kinds select by name too.
    expect(await byField("metadata.name=sel", "/api/v1/namespaces")).toEqual(["sel"]);
  });

  it("selects by spec.nodeName, including unscheduled pods with an empty value", async () => {
    expect(await byField("spec.nodeName=n1")).toEqual(["db", "web-fe"]);
    expect(await byField("spec.nodeName=")).toEqual(["bare"]);
    expect(await byField("spec.nodeName!=")).toEqual(["db", "web-be", "web-fe"]);
    expect(await byField("spec.nodeName=n1,status.phase=Running")).toEqual(["db", "web-fe"]);
  });

  it("selects by status.phase", async () => {
    expect(await byField("status.phase=Running")).toEqual(["db", "web-fe"]);
    expect(await byField("status.phase!=Running")).toEqual(["bare", "web-be"]);
    expect(await byField("status.phase=Pending", "/api/v1/pods")).toEqual(["bare", "web-be", "web-other"]);
    expect(await byField("status.phase=Active", "/api/v1/namespaces")).toContain("sel");
  });

  it("combines label and field selectors", async () => {
    const list = await get(
      c,
      `${PODS}?labelSelector=${encodeURIComponent("app=web")}&fieldSelector=${encodeURIComponent("spec.nodeName=n2")}`,
    );
    expect(names(list)).toEqual(["web-be"]);
  });

  it("refuses unsupported fields with 400", async () => {
    const s = expectFailure(
      await c.request("GET", `${PODS}?fieldSelector=${encodeURIComponent("spec.unknown=x")}`),
      400,
      "BadRequest",
    );
    expect(s.message).toContain("spec.unknown");
    // spec.nodeName is a pod field, not a namespace field.
    expectFailure(
      await c.request("GET", `/api/v1/namespaces?fieldSelector=${encodeURIComponent("spec.nodeName=n1")}`),
      400,
      "BadRequest",
    );
  });

  it("refuses bad selectors on a watch with 400 before streaming, as upstream's handler does", async () => {
    // Upstream parses and converts selectors in the list/watch handler and answers 400 before any
    // watch starts; only errors after that (such as 410 Expired) arrive as ERROR events.
    const field = await c.request(
      "GET",
      `${PODS}?watch=1&fieldSelector=${encodeURIComponent("spec.unknown=x")}`,
    );
    expectFailure(field, 400, "BadRequest");
    const label = await c.request("GET", `${PODS}?watch=1&labelSelector=${encodeURIComponent("app in (x")}`);
    expectFailure(label, 400, "BadRequest");
    // So does an unparseable resourceVersion (the cacher returns BadRequest before watching).
    const rv = await c.request("GET", `${PODS}?watch=1&resourceVersion=abc`);
    expectFailure(rv, 400, "BadRequest");
  });

  it("paginates with limit and continue, returning every item exactly once", async () => {
    await createNamespace(c, "pages");
    const path = "/api/v1/namespaces/pages/pods";
    const expected: string[] = [];
    for (let i = 0; i < 23; i++) {
      const name = `p-${String(i).padStart(2, "0")}`;
      expected.push(name);
      await create(c, path, podBody(name, { labels: { parity: i % 2 ? "odd" : "even" } }));
    }
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    let firstRv: string | undefined;
    do {
      const list = await get(c, `${path}?limit=5${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
      pages++;
      firstRv ??= list.metadata.resourceVersion;
      expect(list.metadata.resourceVersion).toBe(firstRv);
      expect(list.items.length).toBeLessThanOrEqual(5);
      seen.push(...list.items.map((p: any) => p.metadata.name));
      token = list.metadata.continue;
      if (token) expect(list.metadata.remainingItemCount).toBe(23 - seen.length);
      else expect(list.metadata.remainingItemCount).toBeUndefined();
    } while (token);
    expect(pages).toBe(5);
    expect(seen).toEqual(expected);

    // With a selector, pages hold matching items only.
    const odd: string[] = [];
    token = undefined;
    do {
      const list = await get(
        c,
        `${path}?limit=4&labelSelector=parity%3Dodd${token ? `&continue=${encodeURIComponent(token)}` : ""}`,
      );
      odd.push(...list.items.map((p: any) => p.metadata.name));
      token = list.metadata.continue;
    } while (token);
    expect(odd).toEqual(expected.filter((_, i) => i % 2 === 1));

    // A limit at least the size of the list returns everything without a token.
    const all = await get(c, `${path}?limit=23`);
    expect(all.items).toHaveLength(23);
    expect(all.metadata.continue).toBeUndefined();
  });
});
