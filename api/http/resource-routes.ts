// Kubernetes REST paths for every registered kind, routed generically:
//   /api/v1/<resource>[/<name>[/<sub>]]
//   /api/v1/namespaces/<ns>/<resource>[/<name>[/<sub>]]
//   /apis/<group>/<version>/... (same shapes)
// plus discovery documents at each level. Kind-specific subresources (binding, log, finalize)
// plug in through `SubresourceHandler`s.

import type { Context } from "hono";
import type { KindSpec } from "../../emulator/kind.ts";
import type { FieldError, KubeObject } from "../../emulator/types.ts";
import { formatInvalidMessage, invalid, notSupported } from "../../emulator/validation.ts";
import { ApiError, errors } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { DeleteOptions, Resources, WatchEvent } from "../resources.ts";
import { readObject, readPatch } from "./body.ts";
import { apiGroupDoc, apiResourceList } from "./discovery.ts";
import { includeObjectParam, toTable, wantsTable } from "./table.ts";
import { streamWatch } from "./watch-stream.ts";

export interface Target {
  spec: KindSpec;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface SubresourceHandler {
  /** `core/pods/binding`-style key: group (or "core"), resource, subresource. */
  key: string;
  handle(c: Context, target: Target & { name: string }, resources: Resources): Promise<Response>;
}

const JSON_TYPE = { "content-type": "application/json" };

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: JSON_TYPE });
}

/** Splits a path after /api/v1 or /apis/<g>/<v> into a target; undefined = not a resource path. */
export function resolveTarget(
  registry: Registry,
  group: string,
  version: string,
  rest: string[],
): Target | undefined {
  const find = (resource: string) => registry.find(group, version, resource);
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const nsSpec = find("namespaces");
    // /api/v1/namespaces/<name>/<sub> is a namespace subresource, not a namespaced collection.
    if (group === "" && nsSpec?.subresources?.includes(rest[2]) && rest.length === 3) {
      return { spec: nsSpec, name: rest[1], subresource: rest[2] };
    }
    const spec = find(rest[2]);
    if (!spec?.namespaced || rest.length > 5) return undefined;
    return { spec, namespace: rest[1], name: rest[3], subresource: rest[4] };
  }
  const spec = find(rest[0]);
  if (!spec || rest.length > 3) return undefined;
  return { spec, name: rest[1], subresource: rest[2] };
}

function query(c: Context, name: string): string | undefined {
  return c.req.query(name) ?? undefined;
}

function boolParam(c: Context, name: string): boolean {
  const v = query(c, name);
  return v === "1" || v === "true";
}

function dryRun(c: Context): boolean {
  const v = c.req.queries("dryRun") ?? [];
  for (const d of v) if (d !== "All") throw errors.badRequest(`unsupported dry run mode: ${d}`);
  return v.length > 0;
}

/** Only top-level and metadata fields are known without schemas; those are checked strictly. */
const KNOWN_META = new Set([
  "name",
  "generateName",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
  "selfLink",
]);

function strictFieldCheck(c: Context, body: unknown): void {
  if (query(c, "fieldValidation") !== "Strict") return;
  if (typeof body !== "object" || body === null) return;
  const meta = (body as KubeObject).metadata;
  if (meta && typeof meta === "object") {
    const unknown = Object.keys(meta).filter((k) => !KNOWN_META.has(k));
    if (unknown.length) {
      throw errors.badRequest(
        `strict decoding error: ${unknown.map((k) => `unknown field "metadata.${k}"`).join(", ")}`,
      );
    }
  }
}

function send(c: Context, spec: KindSpec, obj: KubeObject, status = 200): Response {
  if (wantsTable(c.req.header("accept"))) {
    const include = includeObjectParam(query(c, "includeObject"));
    return jsonResponse(
      toTable(spec, [obj], { resourceVersion: obj.metadata.resourceVersion, include }),
      status,
    );
  }
  return jsonResponse(obj, status);
}

function listKind(spec: KindSpec): string {
  return `${spec.kind}List`;
}

async function handleList(c: Context, t: Target, resources: Resources): Promise<Response> {
  const opts = {
    labelSelector: query(c, "labelSelector"),
    fieldSelector: query(c, "fieldSelector"),
    limit: query(c, "limit") ? Number(query(c, "limit")) : undefined,
    continue: query(c, "continue"),
  };
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0)) {
    throw errors.badRequest(`invalid limit: ${query(c, "limit")}`);
  }
  const result = await resources.list(t.spec, t.namespace, opts);
  if (wantsTable(c.req.header("accept"))) {
    const include = includeObjectParam(query(c, "includeObject"));
    return jsonResponse(
      toTable(
        t.spec,
        result.items.map((i) => i.object),
        { ...result, include },
      ),
    );
  }
  const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
  if (result.continue) meta.continue = result.continue;
  if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
  const apiVersion = t.spec.group ? `${t.spec.group}/${t.spec.version}` : t.spec.version;
  // Items are spliced in as their stored JSON: no re-serialization of large lists.
  const head = `{"kind":"${listKind(t.spec)}","apiVersion":"${apiVersion}","metadata":${JSON.stringify(meta)},"items":[`;
  return jsonResponse(`${head}${result.items.map((i) => i.json).join(",")}]}`);
}

function handleWatch(c: Context, t: Target, resources: Resources): Response {
  const table = wantsTable(c.req.header("accept"));
  const include = includeObjectParam(query(c, "includeObject"));
  const encode = (ev: WatchEvent): string => {
    if (table && ev.type !== "BOOKMARK") {
      const obj = toTable(t.spec, [ev.object], {
        resourceVersion: ev.object.metadata.resourceVersion,
        include,
      });
      return `{"type":"${ev.type}","object":${JSON.stringify(obj)}}\n`;
    }
    return `{"type":"${ev.type}","object":${ev.json ?? JSON.stringify(ev.object)}}\n`;
  };
  const timeout = query(c, "timeoutSeconds");
  const options = {
    labelSelector: query(c, "labelSelector"),
    fieldSelector: query(c, "fieldSelector"),
    resourceVersion: query(c, "resourceVersion"),
    sendInitialEvents: boolParam(c, "sendInitialEvents"),
  };
  resources.checkWatchOptions(t.spec, options);
  return streamWatch(c.req.raw, {
    encode,
    start: (push) => resources.watch(t.spec, t.namespace, options, push),
    bookmark: boolParam(c, "allowWatchBookmarks")
      ? () => resources.bookmark(t.spec, String(resources.store.revision()))
      : undefined,
    timeoutMs: timeout ? Number(timeout) * 1000 : undefined,
  });
}

const PROPAGATION_POLICIES = ["Foreground", "Background", "Orphan"];

async function readDeleteOptions(c: Context): Promise<DeleteOptions> {
  const hasBody = Number(c.req.header("content-length") ?? "0") > 0 || c.req.header("transfer-encoding");
  const body = (hasBody ? ((await readObject(c.req.raw)) ?? {}) : {}) as Record<string, any>;
  const grace = query(c, "gracePeriodSeconds") ?? body.gracePeriodSeconds;
  const opts: DeleteOptions = {
    preconditions: body.preconditions,
    dryRun: dryRun(c) || !!body.dryRun?.length,
  };
  if (grace !== undefined && grace !== null) {
    const n = Number(grace);
    if (!Number.isInteger(n)) throw errors.badRequest(`invalid gracePeriodSeconds: ${grace}`);
    opts.gracePeriodSeconds = n;
  }
  const policy = query(c, "propagationPolicy") ?? body.propagationPolicy;
  const orphan = query(c, "orphanDependents") ?? body.orphanDependents;
  const problems: FieldError[] = [];
  if (policy != null && !PROPAGATION_POLICIES.includes(policy))
    problems.push(notSupported("propagationPolicy", policy, PROPAGATION_POLICIES));
  if (policy != null && orphan != null)
    problems.push(
      invalid("propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set"),
    );
  if (problems.length) {
    const message = formatInvalidMessage("DeleteOptions", "", problems, "meta.k8s.io");
    throw errors.invalid("DeleteOptions", "meta.k8s.io", "", message, problems);
  }
  if (policy != null) opts.propagationPolicy = policy;
  else if (orphan != null) opts.orphanDependents = orphan === true || orphan === "true";
  return opts;
}

function successStatus(details: Record<string, unknown>): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details };
}

export async function handleResource(
  c: Context,
  t: Target,
  resources: Resources,
  subresources: Map<string, SubresourceHandler>,
): Promise<Response> {
  const method = c.req.method;
  const { spec } = t;
  if (spec.namespaced && t.namespace === undefined && t.name !== undefined) throw errors.pathNotFound();
  if (t.subresource) {
    const name = t.name!;
    if (t.subresource === "status") {
      if (!spec.subresources?.includes("status")) throw errors.pathNotFound();
      if (method === "GET") return send(c, spec, await resources.get(spec, t.namespace, name));
      if (method === "PUT") {
        const body = await readObject(c.req.raw);
        return send(
          c,
          spec,
          await resources.update(spec, t.namespace, name, body, { subresource: "status", dryRun: dryRun(c) }),
        );
      }
      if (method === "PATCH") {
        const { type, patch } = await readPatch(c.req.raw);
        return send(
          c,
          spec,
          await resources.patch(spec, t.namespace, name, type, patch, {
            subresource: "status",
            dryRun: dryRun(c),
          }),
        );
      }
      throw errors.methodNotAllowed(method);
    }
    const handler = subresources.get(`${spec.group || "core"}/${spec.resource}/${t.subresource}`);
    if (!handler || !spec.subresources?.includes(t.subresource)) throw errors.pathNotFound();
    return handler.handle(c, { ...t, name }, resources);
  }
  if (t.name === undefined) {
    // Across all namespaces a namespaced kind is read-only (list and watch), as upstream.
    if (spec.namespaced && t.namespace === undefined && method !== "GET")
      throw errors.methodNotAllowed(method);
    if (method === "GET")
      return boolParam(c, "watch") ? handleWatch(c, t, resources) : handleList(c, t, resources);
    if (method === "POST") {
      const body = await readObject(c.req.raw);
      strictFieldCheck(c, body);
      return send(c, spec, await resources.create(spec, t.namespace, body, { dryRun: dryRun(c) }), 201);
    }
    if (method === "DELETE") {
      const opts = await readDeleteOptions(c);
      const deleted = await resources.deleteCollection(
        spec,
        t.namespace,
        { labelSelector: query(c, "labelSelector"), fieldSelector: query(c, "fieldSelector") },
        opts,
      );
      const apiVersion = spec.group ? `${spec.group}/${spec.version}` : spec.version;
      return jsonResponse({ kind: listKind(spec), apiVersion, metadata: {}, items: deleted });
    }
    throw errors.methodNotAllowed(method);
  }
  const name = t.name;
  switch (method) {
    case "GET":
      return send(c, spec, await resources.get(spec, t.namespace, name));
    case "PUT": {
      const body = await readObject(c.req.raw);
      strictFieldCheck(c, body);
      return send(c, spec, await resources.update(spec, t.namespace, name, body, { dryRun: dryRun(c) }));
    }
    case "PATCH": {
      const { type, patch } = await readPatch(c.req.raw);
      strictFieldCheck(c, patch);
      return send(
        c,
        spec,
        await resources.patch(spec, t.namespace, name, type, patch, { dryRun: dryRun(c) }),
      );
    }
    case "DELETE": {
      const opts = await readDeleteOptions(c);
      return send(c, spec, await resources.delete(spec, t.namespace, name, opts));
    }
    default:
      throw errors.methodNotAllowed(method);
  }
}

/** /api/v1/... and /apis/<group>/<version>/... including their discovery documents. */
export async function routeApi(
  c: Context,
  registry: Registry,
  resources: Resources,
  subresources: Map<string, SubresourceHandler>,
): Promise<Response> {
  const segs = new URL(c.req.url).pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let group = "";
  let version: string | undefined;
  let rest: string[];
  if (segs[0] === "api") {
    version = segs[1];
    rest = segs.slice(2);
  } else {
    group = segs[1] ?? "";
    version = segs[2];
    rest = segs.slice(3);
    if (!version) {
      const doc = apiGroupDoc(registry, group);
      if (!doc || c.req.method !== "GET") throw errors.pathNotFound();
      return jsonResponse(doc);
    }
  }
  if (rest.length === 0) {
    if (c.req.method !== "GET" || registry.inGroupVersion(group, version).length === 0)
      throw errors.pathNotFound();
    return jsonResponse(apiResourceList(registry, group, version));
  }
  const target = resolveTarget(registry, group, version, rest);
  if (!target) throw errors.pathNotFound();
  return handleResource(c, target, resources, subresources);
}

export { ApiError, successStatus };
