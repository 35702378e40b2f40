// The endpointslice controller: for every Service with a selector, discovery.k8s.io/v1
// EndpointSlices named `<service>-<random>`, labelled with the Service's name and this
// controller, owned by the Service, listing the selected pods with ready/serving/terminating
// conditions, node and zone. Event-driven (pod, Service, node zone and slice changes queue the
// Service) with a periodic resync. kemu has no garbage collector, so slices whose Service is gone
// (or no longer wants them) are deleted here rather than by owner references.

import {
  desiredServiceSlices,
  type NodeInfo,
  planSlices,
  type SlicePlan,
  serviceAddressTypes,
  serviceSliceMeta,
  ZONE_LABEL,
} from "../../emulator/endpoint-slices.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import {
  ENDPOINTSLICE_CONTROLLER,
  type EndpointSlice,
  MANAGED_BY_LABEL,
  SERVICE_NAME_LABEL,
} from "../../emulator/kinds/endpoint-slice.ts";
import { hasSelector, type Service } from "../../emulator/kinds/service.ts";
import type { NodeObject, Pod } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import { Informer, objectKey } from "./informer.ts";
import { ServiceKeyedController } from "./service-keyed-controller.ts";
import {
  FULL_RESYNC_MS,
  LabelIndex,
  PodSelectorIndex,
  podEndpointSignature,
  servicesForPodChange,
} from "./service-pods.ts";

/** A pod on a node not seen yet is retried after this long (upstream retries with back-off). */
const MISSING_NODE_RETRY_MS = 1000;

export interface EndpointSliceControllerOptions {
  resyncMs?: number;
  maxEndpointsPerSlice?: number;
}

/** Writes a plan: creates and updates first, so consumers never see a gap, then removals. */
export async function applySlicePlan(resources: Resources, spec: KindSpec, plan: SlicePlan): Promise<void> {
  const tolerate = (e: unknown, codes: number[]) => {
    if (!(e instanceof ApiError && codes.includes(e.code))) throw e;
  };
  for (const slice of plan.create) {
    try {
      await resources.create(spec, slice.metadata.namespace, slice);
    } catch (e) {
      tolerate(e, [403, 404]); // the namespace is going away
    }
  }
  for (const slice of plan.update) {
    try {
      await resources.mutate(spec, slice.metadata.namespace, slice.metadata.name!, (cur) => ({
        ...slice,
        metadata: { ...slice.metadata, resourceVersion: cur.metadata.resourceVersion },
      }));
    } catch (e) {
      tolerate(e, [404]);
    }
  }
  for (const slice of plan.remove) {
    try {
      await resources.delete(spec, slice.metadata.namespace, slice.metadata.name!, {
        preconditions: { uid: slice.metadata.uid },
      });
    } catch (e) {
      tolerate(e, [404, 409]);
    }
  }
}

export class EndpointSliceController extends ServiceKeyedController {
  private readonly resources: Resources;
  private readonly sliceSpec: KindSpec;
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly podIndex: PodSelectorIndex;
  private readonly nodes: Informer<NodeObject>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly byService: LabelIndex<EndpointSlice>;
  private readonly maxPerSlice: number | undefined;

  constructor(resources: Resources, registry: Registry, opts: EndpointSliceControllerOptions = {}) {
    super("endpointslice controller", opts.resyncMs ?? FULL_RESYNC_MS);
    this.resources = resources;
    this.maxPerSlice = opts.maxEndpointsPerSlice;
    this.sliceSpec = registry.find("discovery.k8s.io", "v1", "endpointslices")!;
    this.services = new Informer<Service>(resources, registry.find("", "v1", "services")!);
    this.pods = new Informer<Pod>(resources, registry.find("", "v1", "pods")!);
    this.podIndex = new PodSelectorIndex(this.pods);
    this.nodes = new Informer<NodeObject>(resources, registry.find("", "v1", "nodes")!);
    this.slices = new Informer<EndpointSlice>(resources, this.sliceSpec, {
      labelSelector: `${MANAGED_BY_LABEL}=${ENDPOINTSLICE_CONTROLLER}`,
    });
    this.byService = new LabelIndex(this.slices, SERVICE_NAME_LABEL);
    this.services.on((_type, svc) => this.queue.add(objectKey(svc)));
    this.pods.on((type, pod, old) => {
      if (type === "MODIFIED" && old && podEndpointSignature(pod) === podEndpointSignature(old)) return;
      for (const key of servicesForPodChange(this.services, pod, old)) this.queue.add(key);
    });
    this.nodes.on((type, node, old) => {
      // Only a node's arrival, departure or zone matters to slices (heartbeats do not).
      if (type === "MODIFIED" && old?.metadata.labels?.[ZONE_LABEL] === node.metadata.labels?.[ZONE_LABEL])
        return;
      const name = node.metadata.name;
      const affected = new Set<string>();
      for (const pod of this.pods.list()) {
        if (pod.spec?.nodeName !== name) continue;
        for (const key of servicesForPodChange(this.services, pod)) affected.add(key);
      }
      for (const key of affected) this.queue.add(key);
    });
    this.slices.on((_type, slice) => {
      const key = this.byService.ownerKey(slice);
      if (key) this.queue.add(key);
    });
  }

  protected informers() {
    return [this.nodes, this.services, this.pods, this.slices];
  }

  protected resyncKeys(): string[] {
    return this.services.list().map(objectKey);
  }

  /** Slices of Services deleted while the controller was away. */
  protected startupKeys(): string[] {
    return this.byService.ownerKeys(this.slices.list());
  }

  private nodeInfo = (name: string): NodeInfo | undefined => {
    const node = this.nodes.get(undefined, name);
    return node ? { zone: node.metadata.labels?.[ZONE_LABEL] || undefined } : undefined;
  };

  protected async sync(namespace: string, name: string, key: string): Promise<void> {
    const svc = this.services.get(namespace, name);
    const owned = this.byService.get(key);
    const wanted =
      svc && hasSelector(svc) && svc.spec.type !== "ExternalName" && !svc.metadata.deletionTimestamp;
    if (!wanted) {
      // Deleted or selector-less: its slices are not ours to keep (a selector-less Service's
      // slices come from the mirroring controller).
      await applySlicePlan(this.resources, this.sliceSpec, { create: [], update: [], remove: owned });
      return;
    }
    const { groups, missingNodes } = desiredServiceSlices(svc, this.podIndex.selected(svc), this.nodeInfo);
    const plan = planSlices(
      groups,
      owned,
      serviceSliceMeta(svc),
      serviceAddressTypes(svc)[0],
      this.maxPerSlice,
    );
    await applySlicePlan(this.resources, this.sliceSpec, plan);
    if (missingNodes.length) this.queue.add(key, MISSING_NODE_RETRY_MS);
  }
}
