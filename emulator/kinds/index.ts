// The built-in kinds kemu serves, in discovery order (core group first).

import type { KindSpec } from "../kind.ts";
import { deploymentKind } from "./deployment.ts";
import { endpointSliceKind } from "./endpoint-slice.ts";
import { endpointsKind } from "./endpoints.ts";
import { eventKind, eventsV1EventKind } from "./event.ts";
import { leaseKind } from "./lease.ts";
import { namespaceKind } from "./namespace.ts";
import { nodeKind } from "./node.ts";
import { createPodKind, type PodKindOptions } from "./pod.ts";
import { replicaSetKind } from "./replica-set.ts";
import { serviceKind } from "./service.ts";

export { deploymentKind } from "./deployment.ts";
export { endpointSliceKind } from "./endpoint-slice.ts";
export { endpointsKind } from "./endpoints.ts";
export { eventKind, eventsV1EventKind } from "./event.ts";
export { leaseKind } from "./lease.ts";
export { namespaceKind } from "./namespace.ts";
export { nodeKind } from "./node.ts";
export {
  createPodKind,
  DEFAULT_TOLERATION_SECONDS,
  metadataMergeKeys,
  type PodKindOptions,
  podKind,
  podSpecMergeKeys,
} from "./pod.ts";
export { replicaSetKind } from "./replica-set.ts";
export { serviceKind } from "./service.ts";

/** The built-in kinds with control-plane options applied (e.g. --default-not-ready-toleration-seconds). */
export function createBuiltinKinds(opts: PodKindOptions = {}): KindSpec[] {
  return [
    namespaceKind,
    nodeKind,
    createPodKind(opts) as unknown as KindSpec,
    serviceKind as unknown as KindSpec,
    endpointsKind as unknown as KindSpec,
    eventKind as unknown as KindSpec,
    deploymentKind as unknown as KindSpec,
    replicaSetKind as unknown as KindSpec,
    eventsV1EventKind,
    leaseKind as unknown as KindSpec,
    endpointSliceKind as unknown as KindSpec,
  ];
}

export const builtinKinds: KindSpec[] = createBuiltinKinds();
