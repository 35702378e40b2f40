// A minimal OpenAPI v3 surface. kubectl reads it for one decision: whether the server validates
// fields itself (a `fieldValidation` parameter on each kind's PATCH operation). When it does,
// kubectl skips client-side schema validation, which would otherwise need the full protobuf
// OpenAPI v2 document. Object schemas are not published (so `kubectl explain` is unsupported);
// kubectl then builds strategic merge patches from its compiled-in types, as it does for any server
// without schemas.

import { createHash } from "node:crypto";
import type { KindSpec } from "../../emulator/kind.ts";
import type { Registry } from "../registry.ts";

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function itemPath(spec: KindSpec): string {
  const base = `/${gvPath(spec.group, spec.version)}`;
  return spec.namespaced
    ? `${base}/namespaces/{namespace}/${spec.resource}/{name}`
    : `${base}/${spec.resource}/{name}`;
}

const queryParam = (name: string) => ({ name, in: "query", schema: { type: "string", uniqueItems: true } });

function operation(spec: KindSpec, action: string, params: string[]) {
  return {
    operationId: `${action}${spec.kind}`,
    parameters: params.map(queryParam),
    responses: { "200": { description: "OK" } },
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": { group: spec.group, version: spec.version, kind: spec.kind },
  };
}

export function openApiGroupVersion(
  registry: Registry,
  group: string,
  version: string,
): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const spec of registry.inGroupVersion(group, version)) {
    const writable = !spec.verbs || spec.verbs.includes("patch");
    paths[itemPath(spec)] = {
      get: operation(spec, "get", []),
      ...(writable
        ? {
            put: operation(spec, "put", ["dryRun", "fieldManager", "fieldValidation"]),
            patch: operation(spec, "patch", ["dryRun", "fieldManager", "fieldValidation", "force"]),
          }
        : {}),
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes (kemu)", version: "v1.32.0" },
    paths,
    components: { schemas: {} },
  };
}

export function openApiRoot(registry: Registry): Record<string, unknown> {
  const gvs = new Map<string, { group: string; version: string }>();
  for (const k of registry.kinds) gvs.set(gvPath(k.group, k.version), { group: k.group, version: k.version });
  const paths: Record<string, unknown> = {};
  for (const [path, gv] of gvs) {
    const hash = createHash("sha256")
      .update(JSON.stringify(openApiGroupVersion(registry, gv.group, gv.version)))
      .digest("hex")
      .slice(0, 32)
      .toUpperCase();
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { paths };
}
