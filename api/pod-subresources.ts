// Pod subresources that are more than a field split: `binding` (how the scheduler assigns a node)
// and `log` (served by the node's agent once one is connected).

import type { Context } from "hono";
import { rfc3339 } from "../emulator/duration.ts";
import type { KindSpec } from "../emulator/kind.ts";
import type { Condition, KubeObject } from "../emulator/types.ts";
import { ApiError, errors } from "./errors.ts";
import { readObject } from "./http/body.ts";
import { jsonResponse, type SubresourceHandler, successStatus } from "./http/resource-routes.ts";
import type { Resources } from "./resources.ts";

function setCondition(conditions: Condition[] | undefined, next: Condition): Condition[] {
  const out = (conditions ?? []).filter((c) => c.type !== next.type);
  const old = conditions?.find((c) => c.type === next.type);
  const lastTransitionTime =
    old && old.status === next.status ? old.lastTransitionTime : next.lastTransitionTime;
  return [...out, { ...next, lastTransitionTime }];
}

/** Assigns a pod to a node exactly once, as POST pods/<name>/binding does upstream. */
export async function bindPod(
  resources: Resources,
  pods: KindSpec,
  namespace: string,
  name: string,
  nodeName: string,
  now = new Date(),
): Promise<KubeObject> {
  return resources.mutate(pods, namespace, name, (pod) => {
    if (pod.metadata.deletionTimestamp) {
      throw errors.conflict("pods", "", name, `pod ${name} is being deleted, cannot be assigned to a host`);
    }
    if (pod.spec.nodeName) {
      throw errors.conflict(
        "pods",
        "",
        name,
        `pod ${name} is already assigned to node "${pod.spec.nodeName}"`,
      );
    }
    pod.spec.nodeName = nodeName;
    pod.status = {
      ...pod.status,
      conditions: setCondition(pod.status?.conditions, {
        type: "PodScheduled",
        status: "True",
        lastProbeTime: null,
        lastTransitionTime: rfc3339(now),
      }),
    };
    return pod;
  });
}

/** Records why a pod could not be scheduled, as the PodScheduled=False condition. */
export async function markUnschedulable(
  resources: Resources,
  pods: KindSpec,
  pod: KubeObject,
  message: string,
  now = new Date(),
): Promise<void> {
  await resources.mutate(pods, pod.metadata.namespace, pod.metadata.name!, (p) => {
    if (p.spec.nodeName) return p;
    p.status = {
      ...p.status,
      conditions: setCondition(p.status?.conditions, {
        type: "PodScheduled",
        status: "False",
        reason: "Unschedulable",
        message,
        lastProbeTime: null,
        lastTransitionTime: rfc3339(now),
      }),
    };
    return p;
  });
}

export const bindingSubresource: SubresourceHandler = {
  key: "core/pods/binding",
  async handle(c: Context, t, resources) {
    if (c.req.method !== "POST") throw errors.methodNotAllowed(c.req.method);
    const body = (await readObject(c.req.raw)) as any;
    const target = body?.target;
    if (!target?.name || (target.kind && target.kind !== "Node")) {
      throw errors.invalid(
        "Binding",
        "",
        t.name,
        `Binding "${t.name}" is invalid: target.name: Required value`,
        [{ reason: "FieldValueRequired", field: "target.name", message: "Required value" }],
      );
    }
    await bindPod(resources, t.spec, t.namespace!, t.name, target.name);
    return jsonResponse(successStatus({}), 201);
  },
};

/** Where pod logs come from; the agent issue plugs in a proxy to the pod's node. */
export type PodLogSource = (pod: KubeObject, query: Record<string, string>) => Promise<Response>;

export function logSubresource(source?: PodLogSource): SubresourceHandler {
  return {
    key: "core/pods/log",
    async handle(c: Context, t, resources) {
      if (c.req.method !== "GET") throw errors.methodNotAllowed(c.req.method);
      const pod = await resources.get(t.spec, t.namespace, t.name);
      if (!pod.spec.nodeName) throw errors.badRequest(`pod ${t.name} does not have a host assigned`);
      if (!source) {
        throw new ApiError(
          503,
          "ServiceUnavailable",
          `no node agent serves logs for node "${pod.spec.nodeName}" (pod ${t.namespace}/${t.name})`,
        );
      }
      return source(pod, c.req.query());
    },
  };
}
