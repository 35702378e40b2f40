// Load-balancer addresses for type=LoadBalancer Services, the way MetalLB's controller (or
// cloud-provider-kind) hands them out: the lowest free address of the configured pool, or
// spec.loadBalancerIP when it is in the pool and free, written to status.loadBalancer.ingress
// with ipMode VIP. The address goes back to the pool when the Service is deleted or stops being a
// LoadBalancer. Without a pool a Service stays <pending> with an event saying why. Services with
// a spec.loadBalancerClass belong to another implementation and are left alone.
//
// Which Service holds which address is rebuilt from the Services' status on start, so restarts
// keep every assignment.

import type { KindSpec } from "../../emulator/kind.ts";
import type { LoadBalancerIngress, Service } from "../../emulator/kinds/service.ts";
import { AddressPool } from "../../emulator/range-allocator.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import type { EventRecorder } from "./event-recorder.ts";
import { Informer, objectKey } from "./informer.ts";
import { WorkQueue } from "./work-queue.ts";

export interface LoadBalancerControllerOptions {
  /** A CIDR or an "A-B" range; undefined leaves LoadBalancer Services pending. */
  pool?: string;
}

function ours(svc: Service): boolean {
  return (
    svc.spec?.type === "LoadBalancer" &&
    !svc.metadata.deletionTimestamp &&
    (svc.spec.loadBalancerClass === undefined || svc.spec.loadBalancerClass === null)
  );
}

function ingressIPs(svc: Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "").filter((ip) => ip);
}

export class LoadBalancerController {
  private readonly resources: Resources;
  private readonly recorder: EventRecorder;
  private readonly spec: KindSpec;
  private readonly services: Informer<Service>;
  private readonly queue: WorkQueue;
  private readonly pool: AddressPool | undefined;
  /** Address → key of the Service holding it, and back. */
  private readonly holder = new Map<string, string>();
  private readonly held = new Map<string, string>();

  /** Throws on a malformed pool (the CLI checks the flag first). */
  constructor(
    resources: Resources,
    registry: Registry,
    recorder: EventRecorder,
    opts: LoadBalancerControllerOptions = {},
  ) {
    this.resources = resources;
    this.recorder = recorder;
    this.pool = opts.pool ? new AddressPool(opts.pool) : undefined;
    this.spec = registry.find("", "v1", "services")!;
    this.services = new Informer<Service>(resources, this.spec);
    this.queue = new WorkQueue((key) => this.sync(key), {
      onError: (key, e) => console.error(`kemu load-balancer controller: ${key}:`, (e as Error).message),
    });
    this.services.on((type, svc, old) => {
      const key = objectKey(svc);
      if (type === "DELETED") {
        this.release(key);
        return;
      }
      if (!ours(svc) && !this.held.has(key) && !(old && ours(old))) return;
      this.queue.add(key);
    });
  }

  async start(): Promise<void> {
    await this.services.start();
    // Rebuild from status, oldest Service first, so a duplicate goes to the newer one to fix.
    const lbs = this.services
      .list()
      .filter(ours)
      .sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""));
    for (const svc of lbs) {
      const ip = ingressIPs(svc)[0];
      if (ip && this.pool?.take(ip)) this.assign(objectKey(svc), ip);
    }
    for (const svc of lbs) this.queue.add(objectKey(svc));
  }

  stop(): void {
    this.queue.stop();
    this.services.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private assign(key: string, ip: string): void {
    this.holder.set(ip, key);
    this.held.set(key, ip);
  }

  private release(key: string): void {
    const ip = this.held.get(key);
    if (!ip) return;
    this.held.delete(key);
    this.holder.delete(ip);
    this.pool?.release(ip);
  }

  private async sync(key: string): Promise<void> {
    const slash = key.indexOf("/");
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const svc = this.services.get(namespace, name);
    if (!svc || !ours(svc)) {
      this.release(key);
      return;
    }
    const requested = svc.spec.loadBalancerIP || undefined;
    let ip = this.held.get(key);
    if (ip && requested && requested !== ip) {
      this.release(key);
      ip = undefined;
    }
    if (!ip) {
      const failed = (why: string) => {
        this.recorder.record(
          svc,
          "Warning",
          "AllocationFailed",
          `Failed to allocate IP for "${key}": ${why}`,
        );
      };
      if (!this.pool) {
        failed(
          "no load-balancer address pool is configured (start the control plane with --load-balancer-pool)",
        );
        await this.writeIngress(namespace, name, []);
        return;
      }
      if (requested) {
        if (!this.pool.contains(requested)) {
          failed(`["${requested}"] is not allowed in config: the pool is ${this.pool.text}`);
          await this.writeIngress(namespace, name, []);
          return;
        }
        if (!this.pool.take(requested)) {
          failed(`["${requested}"] is already in use by ${this.holder.get(requested) ?? "another service"}`);
          await this.writeIngress(namespace, name, []);
          return;
        }
        ip = requested;
      } else {
        ip = this.pool.takeLowest();
        if (!ip) {
          failed("no available IPs");
          await this.writeIngress(namespace, name, []);
          return;
        }
      }
      this.assign(key, ip);
      this.recorder.record(svc, "Normal", "IPAllocated", `Assigned IP ["${ip}"]`);
    }
    await this.writeIngress(namespace, name, [{ ip, ipMode: "VIP" }]);
  }

  /** Sets status.loadBalancer.ingress when it differs. */
  private async writeIngress(namespace: string, name: string, ingress: LoadBalancerIngress[]): Promise<void> {
    const svc = this.services.get(namespace, name);
    const current = svc?.status?.loadBalancer?.ingress ?? [];
    if (JSON.stringify(current) === JSON.stringify(ingress)) return;
    try {
      await this.resources.mutate(this.spec, namespace, name, (cur) => {
        const next = cur as Service;
        if (!ours(next)) return next;
        next.status = { ...(next.status ?? {}), loadBalancer: ingress.length ? { ingress } : {} };
        return next;
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
}
