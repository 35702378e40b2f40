// The endpointslice mirroring controller: a Service without a selector gets its endpoints from
// Endpoints a user (or another controller) writes; this mirrors them into EndpointSlices managed
// by endpointslicemirroring-controller.k8s.io and owned by the Endpoints, so slice consumers such
// as kube-proxy see them too. Endpoints labelled endpointslice.kubernetes.io/skip-mirror=true
// (the `kubernetes` Service's) are left alone, as are Endpoints of Services with a selector.

import { mirroredSliceMeta, mirrorGroups, planSlices } from "../../emulator/endpoint-slices.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import {
  type EndpointSlice,
  MANAGED_BY_LABEL,
  MIRRORING_CONTROLLER,
  SERVICE_NAME_LABEL,
  SKIP_MIRROR_LABEL,
} from "../../emulator/kinds/endpoint-slice.ts";
import type { Endpoints } from "../../emulator/kinds/endpoints.ts";
import { hasSelector, type Service } from "../../emulator/kinds/service.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import { applySlicePlan } from "./endpoint-slices.ts";
import { Informer, objectKey } from "./informer.ts";
import { ServiceKeyedController } from "./service-keyed-controller.ts";
import { FULL_RESYNC_MS, LabelIndex } from "./service-pods.ts";

export interface MirroringControllerOptions {
  resyncMs?: number;
}

export class EndpointSliceMirroringController extends ServiceKeyedController {
  private readonly resources: Resources;
  private readonly sliceSpec: KindSpec;
  private readonly services: Informer<Service>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly byService: LabelIndex<EndpointSlice>;

  constructor(resources: Resources, registry: Registry, opts: MirroringControllerOptions = {}) {
    super("endpointslice mirroring", opts.resyncMs ?? FULL_RESYNC_MS);
    this.resources = resources;
    this.sliceSpec = registry.find("discovery.k8s.io", "v1", "endpointslices")!;
    this.services = new Informer<Service>(resources, registry.find("", "v1", "services")!);
    this.endpoints = new Informer<Endpoints>(resources, registry.find("", "v1", "endpoints")!);
    this.slices = new Informer<EndpointSlice>(resources, this.sliceSpec, {
      labelSelector: `${MANAGED_BY_LABEL}=${MIRRORING_CONTROLLER}`,
    });
    this.byService = new LabelIndex(this.slices, SERVICE_NAME_LABEL);
    this.services.on((_type, svc) => this.queue.add(objectKey(svc)));
    this.endpoints.on((_type, ep) => this.queue.add(objectKey(ep)));
    this.slices.on((_type, slice) => {
      const key = this.byService.ownerKey(slice);
      if (key) this.queue.add(key);
    });
  }

  protected informers() {
    return [this.services, this.endpoints, this.slices];
  }

  protected resyncKeys(): string[] {
    return this.endpoints.list().map(objectKey);
  }

  protected startupKeys(): string[] {
    return this.byService.ownerKeys(this.slices.list());
  }

  protected async sync(namespace: string, name: string, key: string): Promise<void> {
    const ep = this.endpoints.get(namespace, name);
    const svc = this.services.get(namespace, name);
    const owned = this.byService.get(key);
    const mirror =
      ep &&
      svc &&
      !hasSelector(svc) &&
      !ep.metadata.deletionTimestamp &&
      ep.metadata.labels?.[SKIP_MIRROR_LABEL] !== "true";
    if (!mirror) {
      await applySlicePlan(this.resources, this.sliceSpec, { create: [], update: [], remove: owned });
      return;
    }
    const plan = planSlices(mirrorGroups(ep), owned, mirroredSliceMeta(ep));
    await applySlicePlan(this.resources, this.sliceSpec, plan);
  }
}
