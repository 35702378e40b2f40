// Cluster IPs and node ports for Services, allocated inside the write as upstream's service REST
// storage does: an admission hook on the Service kind reserves what a create or update needs
// after validation and before the store write, keeps it when the write is stored and gives it back
// when the write fails; a stored delete frees everything.
//
// The allocators live in memory and are rebuilt from the stored Services when the control plane
// starts, and compared with them periodically (upstream's repair controllers), so a crash at any
// moment can neither leak an address nor hand one out twice: the store is the only truth.

import type { KindSpec } from "../emulator/kind.ts";
import type { Service } from "../emulator/kinds/service.ts";
import { NodePortRange, ServiceIPRange } from "../emulator/range-allocator.ts";
import {
  AllocationFailure,
  type AllocationTransaction,
  allocateForCreate,
  allocateForUpdate,
  type RepairResult,
  releaseForDelete,
  repairAllocations,
  type ServiceAllocators,
} from "../emulator/service-allocation.ts";
import type { EventRecorder } from "./controllers/event-recorder.ts";
import { errors } from "./errors.ts";
import type { Registry } from "./registry.ts";
import { AdmissionError, type AdmissionRequest, type AdmissionTicket, type Resources } from "./resources.ts";

export const DEFAULT_SERVICE_CIDR = "10.96.0.0/12";
export const DEFAULT_NODE_PORT_RANGE = "30000-32767";
/** Upstream repairs every 3 minutes; kemu's store is local, so a minute costs nothing. */
const DEFAULT_REPAIR_INTERVAL_MS = 60_000;

export interface ServiceAllocationOptions {
  serviceCidr?: string;
  nodePortRange?: string;
  repairIntervalMs?: number;
}

export class ServiceAllocation {
  readonly allocators: ServiceAllocators;
  private readonly resources: Resources;
  private readonly spec: KindSpec;
  private readonly recorder: EventRecorder;
  private readonly leaks = new Map<string, number>();
  private readonly repairIntervalMs: number;
  private unregister: () => void = () => {};
  private timer: NodeJS.Timeout | undefined;
  private repairing: Promise<RepairResult> | undefined;

  /** Throws on a bad range (the CLI checks the flags first and words the error). */
  constructor(
    resources: Resources,
    registry: Registry,
    recorder: EventRecorder,
    opts: ServiceAllocationOptions = {},
  ) {
    this.resources = resources;
    this.recorder = recorder;
    this.spec = registry.find("", "v1", "services")!;
    this.allocators = {
      ips: new ServiceIPRange(opts.serviceCidr ?? DEFAULT_SERVICE_CIDR),
      nodePorts: new NodePortRange(opts.nodePortRange ?? DEFAULT_NODE_PORT_RANGE),
    };
    this.repairIntervalMs = opts.repairIntervalMs ?? DEFAULT_REPAIR_INTERVAL_MS;
  }

  /** The `kubernetes` Service's address: the first of the range. */
  get kubernetesServiceIP(): string {
    return this.allocators.ips.first();
  }

  /** Rebuilds the allocators from the store and starts admitting Service writes. */
  async start(): Promise<void> {
    const services = await this.storedServices();
    const result = repairAllocations(services, this.allocators, this.leaks, true);
    this.report(result, services);
    this.unregister = this.resources.admit(this.spec, (req) => this.admitWrite(req));
    this.timer = setInterval(
      () => void this.repair().catch((e) => console.error("kemu service repair:", e)),
      this.repairIntervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    this.unregister();
    if (this.timer) clearInterval(this.timer);
  }

  /** One repair pass (also what the periodic loop runs). */
  repair(): Promise<RepairResult> {
    this.repairing ??= (async () => {
      try {
        const services = await this.storedServices();
        const result = repairAllocations(services, this.allocators, this.leaks);
        this.report(result, services);
        return result;
      } finally {
        this.repairing = undefined;
      }
    })();
    return this.repairing;
  }

  private async storedServices(): Promise<Service[]> {
    return (await this.resources.listStored(this.spec)).map((s) => s.object as Service);
  }

  private report(result: RepairResult, services: Service[]): void {
    const byKey = new Map(services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
    for (const p of result.problems) {
      const svc = byKey.get(p.service);
      if (svc) this.recorder.record(svc, p.type, p.reason, p.message);
      console.error(`kemu service allocation: ${p.service}: ${p.message}`);
    }
  }

  private admitWrite(req: AdmissionRequest): AdmissionTicket | undefined {
    // Status writes keep the stored spec, so they never change what a Service holds.
    if (req.subresource) return undefined;
    let txn: AllocationTransaction;
    try {
      if (req.operation === "CREATE") txn = allocateForCreate(req.object as Service, this.allocators);
      else if (req.operation === "UPDATE") {
        txn = allocateForUpdate(req.object as Service, req.old as Service, this.allocators);
      } else txn = releaseForDelete((req.old ?? req.object) as Service, this.allocators);
    } catch (e) {
      if (!(e instanceof AllocationFailure)) throw e;
      if (e.internal) throw errors.internal(e.message);
      throw new AdmissionError(e.fieldErrors);
    }
    return { commit: () => txn.commit(), abort: () => txn.revert() };
  }
}
