import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { nextNodeName } from "../emulator/node-names.ts";
import { ownContainerId } from "./docker-nodes.ts";
import { ApiError } from "./errors.ts";
import { jsonResponse } from "./http/resource-routes.ts";
import { type ManagedNode, mountNodeRoutes, type NodeProvider, parseAddRequest } from "./node-routes.ts";

/** Machines kept in a map: the routes' behaviour without Docker (test/docker drives the real one). */
class MapProvider implements NodeProvider {
  nodes = new Map<string, ManagedNode>([
    ["node-1", { name: "node-1", state: "running", id: "a", addedAtRuntime: false }],
  ]);
  async list() {
    return [...this.nodes.values()];
  }
  async add(name: string) {
    const n = { name, state: "running", id: name, addedAtRuntime: true };
    this.nodes.set(name, n);
    return n;
  }
  async remove(node: ManagedNode) {
    this.nodes.delete(node.name);
  }
  async stop(node: ManagedNode) {
    this.nodes.get(node.name)!.state = "stopped";
    return this.nodes.get(node.name)!;
  }
  async start(node: ManagedNode) {
    this.nodes.get(node.name)!.state = "running";
    return this.nodes.get(node.name)!;
  }
}

function app(provider?: NodeProvider, removed: string[] = []) {
  const a = new Hono();
  a.onError((err) => {
    const e = err instanceof ApiError ? err : new ApiError(500, "InternalError", err.message);
    return jsonResponse(e.toStatus(), e.code);
  });
  mountNodeRoutes(a, provider, "no Docker socket", { removed: async (n) => void removed.push(n) });
  return a;
}

describe("/kemu/v1/nodes", () => {
  it("answers 503 naming what is missing when there is no provider", async () => {
    const r = await app().request("/kemu/v1/nodes", { method: "POST", body: "{}" });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({
      kind: "Status",
      reason: "ServiceUnavailable",
      message: "no Docker socket",
    });
  });

  it("adds the next node-N, refuses duplicates, stops, starts and removes", async () => {
    const p = new MapProvider();
    const removed: string[] = [];
    const a = app(p, removed);
    const added = await a.request("/kemu/v1/nodes", { method: "POST", body: "" });
    expect(added.status).toBe(201);
    expect(await added.json()).toMatchObject({ apiVersion: "kemu/v1", kind: "ManagedNode", name: "node-2" });
    const dup = await a.request("/kemu/v1/nodes", { method: "POST", body: '{"name":"node-2"}' });
    expect(dup.status).toBe(409);
    expect(
      ((await (await a.request("/kemu/v1/nodes/node-2/stop", { method: "POST" })).json()) as ManagedNode)
        .state,
    ).toBe("stopped");
    expect(
      ((await (await a.request("/kemu/v1/nodes/node-2/start", { method: "POST" })).json()) as ManagedNode)
        .state,
    ).toBe("running");
    expect((await a.request("/kemu/v1/nodes/node-2", { method: "DELETE" })).status).toBe(200);
    expect(removed).toEqual(["node-2"]);
    expect((await a.request("/kemu/v1/nodes/node-2")).status).toBe(404);
    expect((await a.request("/kemu/v1/nodes/nope/stop", { method: "POST" })).status).toBe(404);
    const list = (await (await a.request("/kemu/v1/nodes")).json()) as { items: ManagedNode[] };
    expect(list.items.map((n: ManagedNode) => n.name)).toEqual(["node-1"]);
  });

  it("refuses bodies that are not JSON objects, unknown fields and bad names, changing nothing", async () => {
    const p = new MapProvider();
    const a = app(p);
    for (const body of [
      "{",
      "[]",
      '"x"',
      '{"name":"Node_2"}',
      '{"name":""}',
      `{"name":"${"a".repeat(64)}"}`,
      '{"nmae":"x"}',
    ]) {
      const r = await a.request("/kemu/v1/nodes", { method: "POST", body });
      expect([400, 422]).toContain(r.status);
      expect(((await r.json()) as { kind: string }).kind).toBe("Status");
    }
    expect(p.nodes.size).toBe(1);
  });
});

describe("nextNodeName / parseAddRequest", () => {
  it("numbers after the highest node-N", () => {
    expect(nextNodeName([])).toBe("node-1");
    expect(nextNodeName(["node-1", "node-7", "worker"])).toBe("node-8");
  });
  it("accepts {} and a DNS-1123 label", () => {
    expect(parseAddRequest({})).toEqual({});
    expect(parseAddRequest({ name: "edge-1" })).toEqual({ name: "edge-1" });
    expect(() => parseAddRequest({ name: 4 })).toThrow(/RFC 1123/);
  });
});

describe("ownContainerId", () => {
  it("reads the container id from Docker's bind mounts in mountinfo", () => {
    const id = "fc93a4573ff8320047147090273f1e4a94ca7268149fd21eb63eafffdb9df9d2";
    const line = `105 87 254:0 /var/lib/docker/containers/${id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw`;
    expect(ownContainerId(line)).toBe(id);
  });
});
