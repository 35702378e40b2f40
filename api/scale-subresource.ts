// The `scale` subresource of Deployments and ReplicaSets: an autoscaling/v1 Scale view of
// spec.replicas (GET, PUT, PATCH), which is what `kubectl scale` and autoscalers write. A change
// goes through the owning object's normal update, so it is validated, bumps the generation and
// wakes the controllers like any spec change.

import type { Context } from "hono";
import type { KindSpec } from "../emulator/kind.ts";
import { parseSelectorSpec } from "../emulator/kinds/pod-template.ts";
import { selectorToString } from "../emulator/label-selector.ts";
import { applyJsonPatch, applyMergePatch } from "../emulator/patch.ts";
import type { KubeObject } from "../emulator/types.ts";
import { formatInvalidMessage, invalid } from "../emulator/validation.ts";
import { ApiError, conflictModified, errors } from "./errors.ts";
import { readObject, readPatch } from "./http/body.ts";
import { jsonResponse, type SubresourceHandler } from "./http/resource-routes.ts";
import type { Resources } from "./resources.ts";

const MAX_CONFLICT_RETRIES = 8;

/** scaleFromDeployment / scaleFromReplicaSet: identity of the object, its replicas and selector. */
export function scaleOf(obj: KubeObject): Record<string, unknown> {
  const m = obj.metadata;
  const selector = parseSelectorSpec(obj.spec?.selector);
  const replicas = obj.spec?.replicas ?? 0;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: replicas ? { replicas } : {},
    status: {
      replicas: obj.status?.replicas ?? 0,
      ...(selector && selectorToString(selector) ? { selector: selectorToString(selector) } : {}),
    },
  };
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** ValidateScale: a Scale body naming this object with a non-negative replica count. */
function checkScale(body: unknown, name: string): { replicas: number; resourceVersion?: string } {
  if (!isObject(body)) throw errors.badRequest("the body of the request must be a JSON or YAML object");
  if (body.kind !== undefined && body.kind !== "Scale") {
    throw errors.badRequest(`the kind in the data (${body.kind}) does not match the expected kind (Scale)`);
  }
  const meta = isObject(body.metadata) ? body.metadata : {};
  if (meta.name !== undefined && meta.name !== name) {
    throw errors.badRequest(
      `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
    );
  }
  const replicas = isObject(body.spec) ? (body.spec.replicas ?? 0) : 0;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
    const problems = [
      invalid(
        "spec.replicas",
        replicas,
        typeof replicas === "number" && Number.isInteger(replicas)
          ? "must be greater than or equal to 0"
          : "must be an integer",
      ),
    ];
    throw errors.invalid(
      "Scale",
      "autoscaling",
      name,
      formatInvalidMessage("Scale", name, problems, "autoscaling"),
      problems,
    );
  }
  return { replicas, resourceVersion: meta.resourceVersion || undefined };
}

/**
 * Sets spec.replicas through a normal update of the whole object. A Scale that names a
 * resourceVersion is a precondition; without one, concurrent writes are retried.
 */
async function writeReplicas(
  resources: Resources,
  spec: KindSpec,
  namespace: string | undefined,
  name: string,
  scale: (current: KubeObject) => { replicas: number; resourceVersion?: string },
  dryRun: boolean,
): Promise<KubeObject> {
  for (let attempt = 0; ; attempt++) {
    const current = await resources.get(spec, namespace, name);
    const wanted = scale(current);
    if (wanted.resourceVersion && wanted.resourceVersion !== current.metadata.resourceVersion) {
      throw errors.conflict(spec.resource, spec.group, name, conflictModified);
    }
    const next = structuredClone(current);
    next.spec = { ...next.spec, replicas: wanted.replicas };
    try {
      return await resources.update(spec, namespace, name, next, { dryRun });
    } catch (e) {
      const retry = e instanceof ApiError && e.code === 409 && !wanted.resourceVersion;
      if (!retry || attempt >= MAX_CONFLICT_RETRIES) throw e;
    }
  }
}

function dryRun(c: Context): boolean {
  const v = c.req.queries("dryRun") ?? [];
  for (const d of v) if (d !== "All") throw errors.badRequest(`unsupported dry run mode: ${d}`);
  return v.length > 0;
}

export function scaleSubresource(group: string, resource: string): SubresourceHandler {
  return {
    key: `${group || "core"}/${resource}/scale`,
    async handle(c, t, resources) {
      const method = c.req.method;
      if (method === "GET") return jsonResponse(scaleOf(await resources.get(t.spec, t.namespace, t.name)));
      if (method === "PUT") {
        const body = await readObject(c.req.raw);
        const wanted = checkScale(body, t.name);
        const updated = await writeReplicas(resources, t.spec, t.namespace, t.name, () => wanted, dryRun(c));
        return jsonResponse(scaleOf(updated));
      }
      if (method === "PATCH") {
        const { type, patch } = await readPatch(c.req.raw);
        const updated = await writeReplicas(
          resources,
          t.spec,
          t.namespace,
          t.name,
          (current) => {
            const base = scaleOf(current);
            let patched: unknown;
            try {
              if (type === "json") patched = applyJsonPatch(base, patch as any);
              else if (!isObject(patch)) throw new Error("patch body must be a JSON object");
              // A Scale has no lists, so a strategic merge patch is a merge patch.
              else patched = applyMergePatch(base, patch);
            } catch (e) {
              throw new ApiError(
                422,
                "Invalid",
                `the server rejected our request due to an error in our request: ${(e as Error).message}`,
              );
            }
            const wanted = checkScale(patched, t.name);
            // The patched Scale carries the current version unless the patch set one.
            if (wanted.resourceVersion === current.metadata.resourceVersion) delete wanted.resourceVersion;
            return wanted;
          },
          dryRun(c),
        );
        return jsonResponse(scaleOf(updated));
      }
      throw errors.methodNotAllowed(method);
    },
  };
}
