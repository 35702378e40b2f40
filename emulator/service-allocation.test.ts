import { describe, expect, it } from "vitest";
import { defaultService, type Service } from "./kinds/service.ts";
import { NodePortRange, ServiceIPRange } from "./range-allocator.ts";
import {
  AllocationFailure,
  allocateForCreate,
  allocateForUpdate,
  REPAIRS_BEFORE_LEAK_CLEANUP,
  releaseForDelete,
  repairAllocations,
  type ServiceAllocators,
  serviceClaims,
} from "./service-allocation.ts";
import { formatFieldError } from "./validation.ts";

function allocators(): ServiceAllocators {
  return { ips: new ServiceIPRange("10.96.0.0/24"), nodePorts: new NodePortRange("30000-30099") };
}

function svc(spec: Record<string, unknown>, name = "web"): Service {
  const s = { metadata: { name, namespace: "default" }, spec } as Service;
  defaultService(s);
  return s;
}

function failure(f: () => unknown): AllocationFailure {
  try {
    f();
  } catch (e) {
    if (e instanceof AllocationFailure) return e;
    throw e;
  }
  throw new Error("expected an AllocationFailure");
}

describe("allocateForCreate", () => {
  it("gives a ClusterIP Service an address and single-stack IPv4 fields", () => {
    const a = allocators();
    const s = svc({ selector: { app: "web" }, ports: [{ port: 80 }] });
    const txn = allocateForCreate(s, a);
    expect(s.spec.clusterIP).toMatch(/^10\.96\.0\.\d+$/);
    expect(s.spec.clusterIPs).toEqual([s.spec.clusterIP]);
    expect(s.spec.ipFamilies).toEqual(["IPv4"]);
    expect(s.spec.ipFamilyPolicy).toBe("SingleStack");
    expect(a.ips.has(s.spec.clusterIP!)).toBe(true);
    txn.commit();
    expect(a.ips.has(s.spec.clusterIP!)).toBe(true);
  });

  it("gives back what it took when reverted (failed write, dry run)", () => {
    const a = allocators();
    const s = svc({ type: "NodePort", clusterIP: "10.96.0.50", ports: [{ port: 80 }] });
    const txn = allocateForCreate(s, a);
    expect(a.nodePorts.has(s.spec.ports![0].nodePort!)).toBe(true);
    txn.revert();
    expect(a.ips.has("10.96.0.50")).toBe(false);
    expect(a.nodePorts.allocated()).toEqual([]);
  });

  it("refuses taken and out-of-range requests with upstream's field errors", () => {
    const a = allocators();
    allocateForCreate(svc({ clusterIP: "10.96.0.50", ports: [{ port: 80 }] }), a).commit();
    const taken = failure(() =>
      allocateForCreate(svc({ clusterIP: "10.96.0.50", ports: [{ port: 80 }] }), a),
    );
    expect(taken.fieldErrors.map(formatFieldError)).toEqual([
      'spec.clusterIPs: Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: provided IP is already allocated',
    ]);
    const outside = failure(() => allocateForCreate(svc({ clusterIP: "1.2.3.4", ports: [{ port: 80 }] }), a));
    expect(outside.fieldErrors.map(formatFieldError)).toEqual([
      'spec.clusterIPs: Invalid value: []string{"1.2.3.4"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/24',
    ]);
    expect(a.ips.allocated()).toEqual(["10.96.0.50"]);
  });

  it("allocates node ports, honours requests, shares one across protocols of a port", () => {
    const a = allocators();
    const s = svc({
      type: "NodePort",
      ports: [
        { name: "dns-udp", port: 53, protocol: "UDP", nodePort: 30053 },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
        { name: "http", port: 80 },
      ],
    });
    allocateForCreate(s, a).commit();
    const ports = s.spec.ports!.map((p) => p.nodePort);
    expect(ports[0]).toBe(30053);
    expect(ports[1]).toBe(30053);
    expect(ports[2]).toBeGreaterThanOrEqual(30000);
    expect(a.nodePorts.allocated().sort()).toEqual([30053, ports[2]].sort());
    const dup = failure(() =>
      allocateForCreate(svc({ type: "NodePort", ports: [{ port: 81, nodePort: 30053 }] }, "b"), a),
    );
    expect(dup.fieldErrors.map(formatFieldError)).toEqual([
      "spec.ports[0].nodePort: Invalid value: 30053: provided port is already allocated",
    ]);
    const low = failure(() =>
      allocateForCreate(svc({ type: "NodePort", ports: [{ port: 81, nodePort: 80 }] }, "c"), a),
    );
    expect(low.fieldErrors.map(formatFieldError)).toEqual([
      "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30099",
    ]);
  });

  it("allocates a health-check node port for LoadBalancer with externalTrafficPolicy Local", () => {
    const a = allocators();
    const s = svc({ type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    allocateForCreate(s, a).commit();
    expect(s.spec.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(serviceClaims(s).nodePorts).toHaveLength(2);
    const noPorts = svc(
      { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }] },
      "b",
    );
    allocateForCreate(noPorts, a).commit();
    expect(noPorts.spec.ports![0].nodePort).toBeUndefined();
  });

  it("leaves headless and ExternalName Services without addresses", () => {
    const a = allocators();
    const headless = svc({ clusterIP: "None", selector: { app: "db" }, ports: [{ port: 5432 }] });
    allocateForCreate(headless, a).commit();
    expect(headless.spec.clusterIPs).toEqual(["None"]);
    expect(headless.spec.ipFamilies).toEqual(["IPv4"]);
    expect(headless.spec.ipFamilyPolicy).toBe("SingleStack");
    // Headless without a selector: RequireDualStack with both families, as upstream.
    const bare = svc({ clusterIP: "None" }, "bare");
    allocateForCreate(bare, a).commit();
    expect(bare.spec.ipFamilyPolicy).toBe("RequireDualStack");
    expect(bare.spec.ipFamilies).toEqual(["IPv4", "IPv6"]);
    const ext = svc({ type: "ExternalName", externalName: "example.com" }, "ext");
    allocateForCreate(ext, a).commit();
    expect(ext.spec.clusterIP).toBeUndefined();
    expect(a.ips.allocated()).toEqual([]);
  });

  it("refuses families and policies a single-stack cluster cannot serve", () => {
    const a = allocators();
    expect(
      failure(() =>
        allocateForCreate(svc({ ipFamilies: ["IPv6"], ports: [{ port: 80 }] }), a),
      ).fieldErrors.map(formatFieldError),
    ).toEqual(['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster']);
    expect(
      failure(() =>
        allocateForCreate(svc({ ipFamilyPolicy: "RequireDualStack", ports: [{ port: 80 }] }), a),
      ).fieldErrors.map(formatFieldError),
    ).toEqual([
      'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services',
    ]);
    expect(
      failure(() =>
        allocateForCreate(svc({ clusterIP: "fd00::5", ports: [{ port: 80 }] }), a),
      ).fieldErrors.map(formatFieldError),
    ).toEqual([
      'spec.clusterIPs[0]: Invalid value: []string{"fd00::5"}: IPv6 is not configured on this cluster',
    ]);
  });
});

describe("allocateForUpdate and releaseForDelete", () => {
  it("frees node ports only once a type change to ClusterIP is committed", () => {
    const a = allocators();
    const old = svc({ type: "NodePort", ports: [{ port: 80, nodePort: 30010 }] });
    allocateForCreate(old, a).commit();
    const next = structuredClone(old);
    next.spec.type = "ClusterIP";
    delete next.spec.ports![0].nodePort;
    delete next.spec.externalTrafficPolicy;
    const txn = allocateForUpdate(next, old, a);
    expect(a.nodePorts.has(30010)).toBe(true);
    txn.commit();
    expect(a.nodePorts.has(30010)).toBe(false);
  });

  it("allocates an address when leaving ExternalName and releases it when going back", () => {
    const a = allocators();
    const ext = svc({ type: "ExternalName", externalName: "example.com", ports: [{ port: 80 }] });
    allocateForCreate(ext, a).commit();
    const cip = structuredClone(ext);
    cip.spec.type = "ClusterIP";
    delete cip.spec.externalName;
    defaultService(cip);
    allocateForUpdate(cip, ext, a).commit();
    expect(a.ips.has(cip.spec.clusterIP!)).toBe(true);
    const back = structuredClone(ext);
    const txn = allocateForUpdate(back, cip, a);
    txn.revert(); // a failed write keeps the address
    expect(a.ips.has(cip.spec.clusterIP!)).toBe(true);
    allocateForUpdate(structuredClone(ext), cip, a).commit();
    expect(a.ips.allocated()).toEqual([]);
  });

  it("takes a newly requested node port and frees the replaced one", () => {
    const a = allocators();
    const old = svc({ type: "NodePort", ports: [{ port: 80, nodePort: 30010 }] });
    allocateForCreate(old, a).commit();
    const next = structuredClone(old);
    next.spec.ports![0].nodePort = 30020;
    allocateForUpdate(next, old, a).commit();
    expect(a.nodePorts.allocated()).toEqual([30020]);
  });

  it("releases everything a deleted Service held", () => {
    const a = allocators();
    const s = svc({ type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    allocateForCreate(s, a).commit();
    expect(a.nodePorts.allocated()).toHaveLength(2);
    releaseForDelete(s, a).commit();
    expect(a.ips.allocated()).toEqual([]);
    expect(a.nodePorts.allocated()).toEqual([]);
  });
});

describe("repairAllocations", () => {
  it("rebuilds from stored Services silently, then reports and fixes drift", () => {
    const a = allocators();
    const one = svc(
      {
        type: "NodePort",
        clusterIP: "10.96.0.10",
        clusterIPs: ["10.96.0.10"],
        ports: [{ port: 80, nodePort: 30001 }],
      },
      "one",
    );
    const two = svc({ clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ port: 80 }] }, "two");
    const far = svc({ clusterIP: "10.200.0.1", clusterIPs: ["10.200.0.1"], ports: [{ port: 80 }] }, "far");
    one.metadata.creationTimestamp = "2026-01-01T00:00:00Z";
    two.metadata.creationTimestamp = "2026-01-02T00:00:00Z";
    const leaks = new Map<string, number>();
    const first = repairAllocations([two, far, one], a, leaks, true);
    expect(first.problems.map((p) => [p.service, p.reason]).sort()).toEqual([
      ["default/far", "ClusterIPOutOfRange"],
      ["default/two", "ClusterIPAlreadyAllocated"],
    ]);
    expect(a.ips.allocated()).toEqual(["10.96.0.10"]);
    expect(a.nodePorts.allocated()).toEqual([30001]);

    // An allocation lost from memory is put back, with a warning.
    a.nodePorts.release(30001);
    const second = repairAllocations([one], a, leaks);
    expect(second.problems).toContainEqual(
      expect.objectContaining({
        reason: "PortNotAllocated",
        message: "Port 30001 is not allocated; repairing",
      }),
    );
    expect(a.nodePorts.has(30001)).toBe(true);
  });

  it("releases a leaked allocation only after it stayed leaked for several passes", () => {
    const a = allocators();
    a.ips.allocate("10.96.0.77");
    const leaks = new Map<string, number>();
    for (let i = 1; i < REPAIRS_BEFORE_LEAK_CLEANUP; i++) {
      expect(repairAllocations([], a, leaks).released.ips).toEqual([]);
      expect(a.ips.has("10.96.0.77")).toBe(true);
    }
    expect(repairAllocations([], a, leaks).released.ips).toEqual(["10.96.0.77"]);
    expect(a.ips.has("10.96.0.77")).toBe(false);
    // A sighting that stops (the write landed) resets the count.
    a.ips.allocate("10.96.0.78");
    repairAllocations([], a, leaks);
    const holder = svc({ clusterIP: "10.96.0.78", clusterIPs: ["10.96.0.78"], ports: [{ port: 80 }] });
    repairAllocations([holder], a, leaks);
    expect(leaks.size).toBe(0);
  });
});
