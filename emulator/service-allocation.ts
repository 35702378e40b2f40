// Cluster IP and node port allocation for Services, as upstream's service REST storage does it
// (pkg/registry/core/service/storage/alloc.go): IP family fields first, then cluster IPs, then node
// ports and the health-check node port, each step inside a transaction that the caller commits
// after the store write succeeded (releasing what the update freed) or reverts when it failed
// (releasing what it took). Repair compares the allocators with the stored Services.

import {
  CLUSTER_IP_NONE,
  hasSelector,
  needsClusterIP,
  needsHealthCheck,
  needsNodePort,
  type Service,
} from "./kinds/service.ts";
import { type NodePortRange, RangeAllocationError, type ServiceIPRange } from "./range-allocator.ts";
import type { FieldError } from "./types.ts";
import { invalid } from "./validation.ts";

export interface ServiceAllocators {
  /** The cluster's one service CIDR (kemu clusters are single-stack). */
  ips: ServiceIPRange;
  nodePorts: NodePortRange;
}

/** A refused allocation: field errors become a 422, `internal` a 500, as upstream answers. */
export class AllocationFailure extends Error {
  readonly fieldErrors: FieldError[];
  readonly internal: boolean;
  constructor(message: string, fieldErrors: FieldError[] = [], internal = false) {
    super(message);
    this.fieldErrors = fieldErrors;
    this.internal = internal;
  }
}

function invalidFields(errors: FieldError[]): AllocationFailure {
  return new AllocationFailure(errors.map((e) => `${e.field}: ${e.message}`).join(", "), errors);
}

function internalError(message: string): AllocationFailure {
  return new AllocationFailure(message, [], true);
}

/** What one write took and what it will free once it is durable. */
export class AllocationTransaction {
  private readonly alloc: ServiceAllocators;
  private readonly takenIPs: string[] = [];
  private readonly takenPorts: number[] = [];
  private readonly freedIPs: string[] = [];
  private readonly freedPorts: number[] = [];
  private done = false;

  constructor(alloc: ServiceAllocators) {
    this.alloc = alloc;
  }

  allocateIP(ip: string): void {
    this.alloc.ips.allocate(ip);
    this.takenIPs.push(ip);
  }

  nextIP(): string {
    const ip = this.alloc.ips.allocateNext();
    this.takenIPs.push(ip);
    return ip;
  }

  allocatePort(port: number): void {
    this.alloc.nodePorts.allocate(port);
    this.takenPorts.push(port);
  }

  nextPort(): number {
    const port = this.alloc.nodePorts.allocateNext();
    this.takenPorts.push(port);
    return port;
  }

  releaseIPLater(ip: string): void {
    if (ip && ip !== CLUSTER_IP_NONE) this.freedIPs.push(ip);
  }

  releasePortLater(port: number | undefined): void {
    if (port) this.freedPorts.push(port);
  }

  /** The write is stored: free what it gave up. */
  commit(): void {
    if (this.done) return;
    this.done = true;
    for (const ip of this.freedIPs) this.alloc.ips.release(ip);
    for (const port of this.freedPorts) this.alloc.nodePorts.release(port);
  }

  /** The write failed (or was a dry run): give back what it took. */
  revert(): void {
    if (this.done) return;
    this.done = true;
    for (const ip of this.takenIPs) this.alloc.ips.release(ip);
    for (const port of this.takenPorts) this.alloc.nodePorts.release(port);
  }
}

function familyOf(ip: string): "IPv4" | "IPv6" {
  return ip.includes(":") ? "IPv6" : "IPv4";
}

/**
 * initIPFamilyFields for a single-stack cluster: defaults ipFamilyPolicy and ipFamilies and
 * refuses families or policies the cluster cannot serve. Headless selector-less Services get
 * RequireDualStack with both families, as upstream gives them even on single-stack clusters.
 */
export function initIPFamilyFields(svc: Service, old: Service | undefined, clusterFamily: string): void {
  const spec = svc.spec;
  if (spec.type === "ExternalName") return;
  const headlessSelectorless = spec.clusterIP === CLUSTER_IP_NONE && !hasSelector(svc);
  if (old?.spec.ipFamilyPolicy === "PreferDualStack" && spec.ipFamilyPolicy === "PreferDualStack") {
    const same = (a?: string[], b?: string[]) => JSON.stringify(a ?? []) === JSON.stringify(b ?? []);
    if (same(old.spec.clusterIPs, spec.clusterIPs) && same(old.spec.ipFamilies, spec.ipFamilies)) return;
  }
  if (spec.ipFamilyPolicy === undefined || spec.ipFamilyPolicy === null) {
    if (old?.spec.ipFamilyPolicy) spec.ipFamilyPolicy = old.spec.ipFamilyPolicy;
    else spec.ipFamilyPolicy = headlessSelectorless ? "RequireDualStack" : "SingleStack";
  }
  const errs: FieldError[] = [];
  const ips = spec.clusterIPs ?? [];
  spec.ipFamilies = [...(spec.ipFamilies ?? [])];
  if (spec.ipFamilyPolicy === "SingleStack") {
    if (ips.length === 2) {
      errs.push(
        invalid(
          "spec.ipFamilyPolicy",
          spec.ipFamilyPolicy,
          "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
        ),
      );
    }
    if (spec.ipFamilies.length === 2) {
      errs.push(
        invalid(
          "spec.ipFamilyPolicy",
          spec.ipFamilyPolicy,
          "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ),
      );
    }
  }
  for (let i = 0; i < ips.length; i++) {
    if (ips[i] === CLUSTER_IP_NONE) break;
    const fam = familyOf(ips[i]);
    if (i >= spec.ipFamilies.length) {
      if (fam !== clusterFamily) {
        errs.push(invalid(`spec.clusterIPs[${i}]`, ips, `${fam} is not configured on this cluster`));
      } else spec.ipFamilies.push(fam);
    }
  }
  if (errs.length) throw invalidFields(errs);
  if (headlessSelectorless) {
    if (spec.ipFamilies.length === 0) spec.ipFamilies = [clusterFamily];
    if (spec.ipFamilies.length < 2 && spec.ipFamilyPolicy !== "SingleStack") {
      spec.ipFamilies.push(spec.ipFamilies[0] === "IPv4" ? "IPv6" : "IPv4");
    }
    return;
  }
  if (spec.ipFamilyPolicy === "RequireDualStack") {
    errs.push(
      invalid(
        "spec.ipFamilyPolicy",
        spec.ipFamilyPolicy,
        "this cluster is not configured for dual-stack services",
      ),
    );
  }
  spec.ipFamilies.forEach((f, i) => {
    if (f !== clusterFamily) errs.push(invalid(`spec.ipFamilies[${i}]`, f, "not configured on this cluster"));
  });
  if (errs.length) throw invalidFields(errs);
  if (spec.ipFamilies.length === 0) spec.ipFamilies = [clusterFamily];
}

function allocClusterIPs(svc: Service, txn: AllocationTransaction): void {
  const spec = svc.spec;
  if (spec.type === "ExternalName") return;
  if (spec.clusterIPs?.[0] === CLUSTER_IP_NONE) return;
  const ips = [...(spec.clusterIPs ?? [])];
  // Only the cluster's family reaches here (initIPFamilyFields refused the others).
  const families = spec.ipFamilies ?? [];
  while (ips.length < families.length) ips.push("");
  const requested = ips[0] ?? "";
  let ip: string;
  if (!requested) {
    try {
      ip = txn.nextIP();
    } catch (e) {
      throw internalError(`failed to allocate a serviceIP: ${(e as Error).message}`);
    }
  } else {
    try {
      txn.allocateIP(requested);
    } catch (e) {
      if (!(e instanceof RangeAllocationError)) throw e;
      throw invalidFields([
        invalid("spec.clusterIPs", ips, `failed to allocate IP ${requested}: ${e.message}`),
      ]);
    }
    ip = requested;
  }
  ips[0] = ip;
  spec.clusterIPs = ips;
  spec.clusterIP = ip;
}

function shouldAllocateNodePorts(svc: Service): boolean {
  if (svc.spec.type === "NodePort") return true;
  if (svc.spec.type === "LoadBalancer") return svc.spec.allocateLoadBalancerNodePorts !== false;
  return false;
}

function portError(index: number, port: number, e: unknown): AllocationFailure {
  if (!(e instanceof RangeAllocationError)) throw e;
  return invalidFields([invalid(`spec.ports[${index}].nodePort`, port, e.message)]);
}

/** initNodePorts: requested ports are taken as asked; one service port number shares a node port. */
function initNodePorts(svc: Service, txn: AllocationTransaction): void {
  const ports = svc.spec.ports ?? [];
  const byServicePort = new Map<number, number>();
  ports.forEach((sp, i) => {
    if (!sp.nodePort && !shouldAllocateNodePorts(svc)) return;
    const allocated = byServicePort.get(sp.port) ?? 0;
    if (!allocated) {
      const requested = ports.find((p) => p.port === sp.port && p.nodePort)?.nodePort ?? 0;
      if (requested) {
        try {
          txn.allocatePort(requested);
        } catch (e) {
          throw portError(i, requested, e);
        }
        sp.nodePort = requested;
        byServicePort.set(sp.port, requested);
      } else {
        let port: number;
        try {
          port = txn.nextPort();
        } catch (e) {
          throw internalError(`failed to allocate a nodePort: ${(e as Error).message}`);
        }
        sp.nodePort = port;
        byServicePort.set(sp.port, port);
      }
    } else if (sp.nodePort !== allocated) {
      if (!sp.nodePort) sp.nodePort = allocated;
      else {
        try {
          txn.allocatePort(sp.nodePort);
        } catch (e) {
          throw portError(i, sp.nodePort, e);
        }
      }
    }
  });
}

function allocHealthCheckNodePort(svc: Service, txn: AllocationTransaction): void {
  const requested = svc.spec.healthCheckNodePort ?? 0;
  if (requested) {
    try {
      txn.allocatePort(requested);
    } catch (e) {
      throw internalError(
        `failed to allocate requested HealthCheck NodePort ${requested}: ${(e as Error).message}`,
      );
    }
    return;
  }
  try {
    svc.spec.healthCheckNodePort = txn.nextPort();
  } catch (e) {
    throw internalError(`failed to allocate a HealthCheck NodePort 0: ${(e as Error).message}`);
  }
}

/** Runs `body` in a fresh transaction; a failure gives back whatever it took so far. */
function transact(
  alloc: ServiceAllocators,
  body: (txn: AllocationTransaction) => void,
): AllocationTransaction {
  const txn = new AllocationTransaction(alloc);
  try {
    body(txn);
  } catch (e) {
    txn.revert();
    throw e;
  }
  return txn;
}

/** allocateCreate: fills clusterIP(s), IP families and node ports of a Service being created. */
export function allocateForCreate(svc: Service, alloc: ServiceAllocators): AllocationTransaction {
  return transact(alloc, (txn) => {
    initIPFamilyFields(svc, undefined, alloc.ips.family);
    allocClusterIPs(svc, txn);
    if (needsNodePort(svc)) initNodePorts(svc, txn);
    if (needsHealthCheck(svc)) allocHealthCheckNodePort(svc, txn);
  });
}

function nodePortsOf(svc: Service): number[] {
  return (svc.spec?.ports ?? []).map((p) => p.nodePort ?? 0).filter((n) => n);
}

/** allocateUpdate: type changes to and from ExternalName, node ports added, changed or dropped. */
export function allocateForUpdate(
  svc: Service,
  old: Service,
  alloc: ServiceAllocators,
): AllocationTransaction {
  return transact(alloc, (txn) => {
    initIPFamilyFields(svc, old, alloc.ips.family);
    // Cluster IPs: only a change to or from ExternalName allocates or releases one.
    if (!needsClusterIP(old) && needsClusterIP(svc)) allocClusterIPs(svc, txn);
    else if (needsClusterIP(old) && !needsClusterIP(svc) && old.spec.clusterIPs?.[0] !== CLUSTER_IP_NONE) {
      for (const ip of old.spec.clusterIPs ?? []) txn.releaseIPLater(ip);
    }
    // Node ports.
    const oldPorts = nodePortsOf(old);
    if (needsNodePort(old) && !needsNodePort(svc)) for (const p of oldPorts) txn.releasePortLater(p);
    if (needsNodePort(svc)) {
      const taken = new Set<number>();
      (svc.spec.ports ?? []).forEach((sp, i) => {
        if (!sp.nodePort && !shouldAllocateNodePorts(svc)) return;
        if (sp.nodePort) {
          if (!oldPorts.includes(sp.nodePort) && !taken.has(sp.nodePort)) {
            try {
              txn.allocatePort(sp.nodePort);
            } catch (e) {
              throw portError(i, sp.nodePort, e);
            }
            taken.add(sp.nodePort);
          }
        } else {
          try {
            sp.nodePort = txn.nextPort();
          } catch (e) {
            throw internalError(`failed to allocate a nodePort: ${(e as Error).message}`);
          }
        }
      });
      const newPorts = nodePortsOf(svc);
      for (const p of oldPorts) if (!newPorts.includes(p)) txn.releasePortLater(p);
    }
    // The health-check node port follows type LoadBalancer with externalTrafficPolicy Local.
    if (!needsHealthCheck(old) && needsHealthCheck(svc)) allocHealthCheckNodePort(svc, txn);
    else if (needsHealthCheck(old) && !needsHealthCheck(svc))
      txn.releasePortLater(old.spec.healthCheckNodePort);
  });
}

/** Deleting a Service frees everything it held once the delete is stored. */
export function releaseForDelete(svc: Service, alloc: ServiceAllocators): AllocationTransaction {
  const txn = new AllocationTransaction(alloc);
  const claims = serviceClaims(svc);
  for (const ip of claims.ips) txn.releaseIPLater(ip);
  for (const port of claims.nodePorts) txn.releasePortLater(port);
  return txn;
}

/** What a stored Service holds: its cluster IPs and every node port (health check included). */
export function serviceClaims(svc: Service): { ips: string[]; nodePorts: number[] } {
  const spec = svc.spec ?? {};
  const ips =
    spec.type === "ExternalName"
      ? []
      : (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).filter(
          (ip) => ip && ip !== CLUSTER_IP_NONE,
        );
  const nodePorts = [...new Set(nodePortsOf(svc))];
  if (spec.healthCheckNodePort && !nodePorts.includes(spec.healthCheckNodePort)) {
    nodePorts.push(spec.healthCheckNodePort);
  }
  return { ips, nodePorts };
}

export interface RepairProblem {
  /** namespace/name of the Service the problem is reported on. */
  service: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** Leak sightings needed before an allocation no Service holds is released (upstream uses 3). */
export const REPAIRS_BEFORE_LEAK_CLEANUP = 3;

export interface RepairResult {
  problems: RepairProblem[];
  /** Allocations no Service held for REPAIRS_BEFORE_LEAK_CLEANUP runs, now released. */
  released: { ips: string[]; nodePorts: number[] };
}

/**
 * The repair loops of upstream's ipallocator and portallocator controllers in one pass: every
 * stored claim is marked allocated (a missing one is a "not allocated; repairing" warning, unless
 * `initial`, when the allocators are being rebuilt from nothing), claims outside the range or held
 * twice are reported, and allocations held by no Service are released after they have been seen
 * leaked on several runs in a row (an allocation between its reservation and its write looks
 * leaked for a moment). `leaks` carries the sightings from one run to the next.
 */
export function repairAllocations(
  services: Service[],
  alloc: ServiceAllocators,
  leaks: Map<string, number>,
  initial = false,
): RepairResult {
  const problems: RepairProblem[] = [];
  const seenIPs = new Set<string>();
  const seenPorts = new Set<number>();
  const ordered = [...services].sort((a, b) =>
    (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""),
  );
  for (const svc of ordered) {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const claims = serviceClaims(svc);
    for (const ip of claims.ips) {
      const fam = familyOf(ip);
      if (fam !== alloc.ips.family) continue; // a family this cluster does not serve
      if (!alloc.ips.contains(ip)) {
        problems.push({
          service: key,
          type: "Warning",
          reason: "ClusterIPOutOfRange",
          message: `Cluster IP [${fam}]:${ip} is not within the configured Service CIDR ${alloc.ips.cidr}; please recreate service`,
        });
        continue;
      }
      if (seenIPs.has(ip)) {
        problems.push({
          service: key,
          type: "Warning",
          reason: "ClusterIPAlreadyAllocated",
          message: `Cluster IP [${fam}]:${ip} was assigned to multiple services; please recreate service`,
        });
        continue;
      }
      seenIPs.add(ip);
      if (!alloc.ips.has(ip)) {
        alloc.ips.allocate(ip);
        if (!initial) {
          problems.push({
            service: key,
            type: "Warning",
            reason: "ClusterIPNotAllocated",
            message: `Cluster IP [${fam}]:${ip} is not allocated; repairing`,
          });
        }
      }
    }
    for (const port of claims.nodePorts) {
      if (!alloc.nodePorts.contains(port)) {
        problems.push({
          service: key,
          type: "Warning",
          reason: "PortOutOfRange",
          message: `Port ${port} is not within the port range ${alloc.nodePorts.range}; please recreate service`,
        });
        continue;
      }
      if (seenPorts.has(port)) {
        problems.push({
          service: key,
          type: "Warning",
          reason: "PortAlreadyAllocated",
          message: `Port ${port} was assigned to multiple services; please recreate service`,
        });
        continue;
      }
      seenPorts.add(port);
      if (!alloc.nodePorts.has(port)) {
        alloc.nodePorts.allocate(port);
        if (!initial) {
          problems.push({
            service: key,
            type: "Warning",
            reason: "PortNotAllocated",
            message: `Port ${port} is not allocated; repairing`,
          });
        }
      }
    }
  }
  const released = { ips: [] as string[], nodePorts: [] as number[] };
  const stillLeaked = new Set<string>();
  const sighting = (key: string): boolean => {
    stillLeaked.add(key);
    const n = (leaks.get(key) ?? 0) + 1;
    if (n >= REPAIRS_BEFORE_LEAK_CLEANUP) {
      leaks.delete(key);
      return true;
    }
    leaks.set(key, n);
    return false;
  };
  for (const ip of alloc.ips.allocated()) {
    if (seenIPs.has(ip)) continue;
    if (sighting(`ip/${ip}`)) {
      alloc.ips.release(ip);
      released.ips.push(ip);
    }
  }
  for (const port of alloc.nodePorts.allocated()) {
    if (seenPorts.has(port)) continue;
    if (sighting(`port/${port}`)) {
      alloc.nodePorts.release(port);
      released.nodePorts.push(port);
    }
  }
  for (const key of [...leaks.keys()]) if (!stillLeaked.has(key)) leaks.delete(key);
  return { problems, released };
}
