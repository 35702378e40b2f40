// /kemu/v1/nodes: kemu's own API for adding, removing, stopping and starting node machines (the
// containers or namespaces behind Node objects), the way kind or a cloud's instance API would. The
// machines come from a NodeProvider; without one every call answers 503 saying what is missing.

import type { Hono } from "hono";
import { nextNodeName } from "../emulator/node-names.ts";
import { ApiError, errors } from "./errors.ts";
import { jsonResponse } from "./http/resource-routes.ts";

export interface ManagedNode {
  name: string;
  /** running, stopped (exited/created), or what the provider reports. */
  state: string;
  /** The provider's id for it (a container id in Docker mode). */
  id: string;
  /** Added through this API (and removed again when the control plane stops). */
  addedAtRuntime: boolean;
}

/** The machines; `remove`, `stop` and `start` get a node as `list` returned it. */
export interface NodeProvider {
  list(): Promise<ManagedNode[]>;
  add(name: string): Promise<ManagedNode>;
  remove(node: ManagedNode): Promise<void>;
  stop(node: ManagedNode): Promise<ManagedNode>;
  start(node: ManagedNode): Promise<ManagedNode>;
  /** Brings the machine count to `want` once started (Docker mode's KEMU_NODES). */
  reconcileCount?(
    want: number,
    removed: (name: string) => Promise<void>,
  ): Promise<{ added: string[]; removed: string[] }>;
  /** Called when the control plane stops. */
  close?(): Promise<void>;
}

const API_VERSION = "kemu/v1";
// A Node name that is also a hostname: a DNS-1123 label.
const NODE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Validates POST /kemu/v1/nodes bodies: `{}` or `{"name": "node-4"}`. */
export function parseAddRequest(body: unknown): { name?: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw errors.badRequest('the request body must be a JSON object such as {"name": "node-4"}');
  }
  const unknown = Object.keys(body).filter((k) => k !== "name");
  if (unknown.length)
    throw errors.badRequest(
      `unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}; only "name" is accepted`,
    );
  const { name } = body as { name?: unknown };
  if (name === undefined) return {};
  if (typeof name !== "string" || !NODE_NAME.test(name)) {
    throw errors.invalid(
      "ManagedNode",
      "kemu",
      String(name),
      `ManagedNode "${String(name)}" is invalid: name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters`,
      [{ reason: "FieldValueInvalid", message: "a lowercase RFC 1123 label", field: "name" }],
    );
  }
  return { name };
}

function item(n: ManagedNode) {
  return { apiVersion: API_VERSION, kind: "ManagedNode", ...n };
}

export function mountNodeRoutes(
  app: Hono,
  provider: NodeProvider | undefined,
  unavailable: string,
  hooks: { removed?: (name: string) => Promise<void> } = {},
): void {
  const need = (): NodeProvider => {
    if (!provider) throw new ApiError(503, "ServiceUnavailable", unavailable);
    return provider;
  };
  const find = async (p: NodeProvider, name: string): Promise<ManagedNode> => {
    const found = (await p.list()).find((n) => n.name === name);
    if (!found) throw errors.notFound("managednodes", "kemu", name);
    return found;
  };
  app.get("/kemu/v1/nodes", async () => {
    const items = await need().list();
    return jsonResponse({ apiVersion: API_VERSION, kind: "ManagedNodeList", items: items.map(item) });
  });
  app.post("/kemu/v1/nodes", async (c) => {
    const p = need();
    let body: unknown;
    try {
      const text = await c.req.text();
      body = text.trim() ? JSON.parse(text) : {};
    } catch (e) {
      throw errors.badRequest(`the request body is not JSON: ${(e as Error).message}`);
    }
    const req = parseAddRequest(body);
    const existing = await p.list();
    const name = req.name ?? nextNodeName(existing.map((n) => n.name));
    if (existing.some((n) => n.name === name)) throw errors.alreadyExists("managednodes", "kemu", name);
    return jsonResponse(item(await p.add(name)), 201);
  });
  app.get("/kemu/v1/nodes/:name", async (c) => jsonResponse(item(await find(need(), c.req.param("name")))));
  app.delete("/kemu/v1/nodes/:name", async (c) => {
    const p = need();
    const found = await find(p, c.req.param("name"));
    await p.remove(found);
    await hooks.removed?.(found.name);
    return jsonResponse({
      apiVersion: "v1",
      kind: "Status",
      status: "Success",
      details: { name: found.name, kind: "managednodes" },
    });
  });
  for (const action of ["stop", "start"] as const) {
    app.post(`/kemu/v1/nodes/:name/${action}`, async (c) => {
      const p = need();
      const found = await find(p, c.req.param("name"));
      return jsonResponse(item(await p[action](found)));
    });
  }
}
