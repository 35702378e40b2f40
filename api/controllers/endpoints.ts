// The endpoints controller: keeps one core/v1 Endpoints per Service with a selector, listing the
// selected pods' addresses (ready and not ready) on each resolved port. Event-driven: a pod or
// Service change queues the Service and the write follows within milliseconds; every Service is
// also resynced periodically. Deleting a Service deletes its Endpoints, as upstream.

import { desiredEndpoints, endpointsDiffer, endpointsObject } from "../../emulator/endpoints.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import type { Endpoints } from "../../emulator/kinds/endpoints.ts";
import { hasSelector, type Service } from "../../emulator/kinds/service.ts";
import type { Pod } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import { Informer, objectKey } from "./informer.ts";
import { ServiceKeyedController } from "./service-keyed-controller.ts";
import {
  FULL_RESYNC_MS,
  PodSelectorIndex,
  podEndpointSignature,
  servicesForPodChange,
} from "./service-pods.ts";

export interface EndpointsControllerOptions {
  resyncMs?: number;
}

function wantsEndpoints(svc: Service): boolean {
  return hasSelector(svc) && svc.spec.type !== "ExternalName" && !svc.metadata.deletionTimestamp;
}

export class EndpointsController extends ServiceKeyedController {
  private readonly resources: Resources;
  private readonly endpointsSpec: KindSpec;
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly podIndex: PodSelectorIndex;
  private readonly endpoints: Informer<Endpoints>;

  constructor(resources: Resources, registry: Registry, opts: EndpointsControllerOptions = {}) {
    super("endpoints controller", opts.resyncMs ?? FULL_RESYNC_MS);
    this.resources = resources;
    this.endpointsSpec = registry.find("", "v1", "endpoints")!;
    this.services = new Informer<Service>(resources, registry.find("", "v1", "services")!);
    this.pods = new Informer<Pod>(resources, registry.find("", "v1", "pods")!);
    this.podIndex = new PodSelectorIndex(this.pods);
    this.endpoints = new Informer<Endpoints>(resources, this.endpointsSpec);
    this.services.on((_type, svc) => this.queue.add(objectKey(svc)));
    this.pods.on((type, pod, old) => {
      if (type === "MODIFIED" && old && podEndpointSignature(pod) === podEndpointSignature(old)) return;
      for (const key of servicesForPodChange(this.services, pod, old)) this.queue.add(key);
    });
    // Put back what someone else changed or deleted in a Service's controller-owned Endpoints.
    this.endpoints.on((_type, ep) => {
      const svc = this.services.get(ep.metadata.namespace, ep.metadata.name!);
      if (svc && wantsEndpoints(svc)) this.queue.add(objectKey(ep));
    });
  }

  protected informers() {
    return [this.services, this.pods, this.endpoints];
  }

  protected resyncKeys(): string[] {
    return this.services.list().map(objectKey);
  }

  /** Leftover Endpoints of Services deleted while the controller was away go too. */
  protected startupKeys(): string[] {
    return this.endpoints
      .list()
      .filter((ep) => !this.services.get(ep.metadata.namespace, ep.metadata.name!))
      .map(objectKey);
  }

  protected async sync(namespace: string, name: string): Promise<void> {
    const svc = this.services.get(namespace, name);
    const current = this.endpoints.get(namespace, name);
    if (!svc) {
      if (current) await this.ignoreMissing(this.resources.delete(this.endpointsSpec, namespace, name));
      return;
    }
    if (!wantsEndpoints(svc)) return;
    const desired = desiredEndpoints(svc, this.podIndex.selected(svc));
    if (current) {
      if (!endpointsDiffer(current, endpointsObject(svc, desired, current))) return;
      await this.ignoreMissing(
        this.resources.mutate(this.endpointsSpec, namespace, name, (cur) =>
          endpointsObject(svc, desired, cur as Endpoints),
        ),
      );
      return;
    }
    try {
      await this.resources.create(this.endpointsSpec, namespace, endpointsObject(svc, desired));
    } catch (e) {
      // Created meanwhile (by a user or a previous sync): the informer event queues another pass.
      if (!(e instanceof ApiError && (e.code === 409 || e.code === 403 || e.code === 404))) throw e;
    }
  }

  private async ignoreMissing(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
}
