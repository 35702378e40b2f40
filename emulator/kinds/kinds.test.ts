import { describe, expect, it } from "vitest";
import type { KubeObject, Lease, NodeObject } from "../types.ts";
import { formatFieldError } from "../validation.ts";
import { builtinKinds } from "./index.ts";
import { leaseKind } from "./lease.ts";
import { namespaceKind } from "./namespace.ts";
import { nodeKind, nodeStatusText } from "./node.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

describe("registry", () => {
  it("lists each kind once with upstream identity", () => {
    expect(builtinKinds.map((k) => `${k.group || "core"}/${k.version}/${k.resource}`)).toEqual([
      "core/v1/namespaces",
      "core/v1/nodes",
      "core/v1/pods",
      "core/v1/services",
      "core/v1/endpoints",
      "core/v1/events",
      "apps/v1/deployments",
      "apps/v1/replicasets",
      "events.k8s.io/v1/events",
      "coordination.k8s.io/v1/leases",
      "discovery.k8s.io/v1/endpointslices",
    ]);
    const byResource = Object.fromEntries(builtinKinds.map((k) => [`${k.group}/${k.resource}`, k]));
    expect(byResource["/namespaces"].shortNames).toEqual(["ns"]);
    expect(byResource["/nodes"].shortNames).toEqual(["no"]);
    expect(byResource["/pods"].shortNames).toEqual(["po"]);
    expect(byResource["/pods"].categories).toEqual(["all"]);
    expect(byResource["/events"].shortNames).toEqual(["ev"]);
    expect(byResource["/namespaces"].subresources).toEqual(["status", "finalize"]);
    expect(byResource["coordination.k8s.io/leases"].subresources).toBeUndefined();
  });
});

describe("Namespace", () => {
  it("defaults the name label, finalizer and phase", () => {
    const ns: KubeObject = { metadata: { name: "team-a", labels: { env: "dev" } } };
    namespaceKind.defaults!(ns);
    expect(ns.metadata.labels).toEqual({ env: "dev", "kubernetes.io/metadata.name": "team-a" });
    expect(ns.spec).toEqual({ finalizers: ["kubernetes"] });
    expect(ns.status).toEqual({ phase: "Active" });
    expect(namespaceKind.validate(ns)).toEqual([]);
  });

  it("requires a DNS-1123 label name", () => {
    const errs = namespaceKind.validate({
      metadata: { name: "team.a" },
      spec: { finalizers: ["kubernetes"] },
    });
    expect(errs.map(formatFieldError)).toEqual([
      'metadata.name: Invalid value: "team.a": must not contain dots',
    ]);
  });

  it("prints NAME STATUS AGE", () => {
    const ns: KubeObject = {
      metadata: { name: "default", creationTimestamp: "2026-11-20T12:00:00Z" },
      status: { phase: "Active" },
    };
    expect(namespaceKind.table.cells(ns, NOW)).toEqual(["default", "Active", "4d"]);
    expect(namespaceKind.selectableFields!["status.phase"](ns)).toBe("Active");
  });
});

describe("Node", () => {
  const node = (spec: NodeObject["spec"] = {}, labels: Record<string, string> = {}): NodeObject => ({
    metadata: { name: "node-1", labels, creationTimestamp: "2026-11-24T09:00:00Z" },
    spec,
    status: {
      conditions: [{ type: "Ready", status: "True" }],
      addresses: [
        { type: "InternalIP", address: "172.18.0.2" },
        { type: "Hostname", address: "node-1" },
      ],
      nodeInfo: {
        kubeletVersion: "v1.34.0",
        osImage: "Debian GNU/Linux 12 (bookworm)",
        kernelVersion: "6.8.0",
        containerRuntimeVersion: "containerd://2.1.0",
      },
    },
  });

  it("validates pod CIDRs and taints", () => {
    const n = node({
      podCIDRs: ["10.244.1.1/24"],
      taints: [
        { key: "a", effect: "NoSchedule" },
        { key: "a", effect: "NoSchedule" },
        { key: "b", effect: "Sometimes" as any },
      ],
    });
    expect(nodeKind.validate(n).map(formatFieldError)).toEqual([
      'metadata.taints[1]: Duplicate value: core.Taint{Key:"a", Value:"", Effect:"NoSchedule", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair',
      'metadata.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
      'spec.podCIDRs[0]: Invalid value: "10.244.1.1/24": must not have bits set beyond the prefix length',
    ]);
    expect(
      nodeKind.validate(node({ podCIDRs: ["10.244.1.0/24", "10.244.2.0/24"] })).map(formatFieldError),
    ).toEqual([
      'spec.podCIDRs: Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify no more than one CIDR for each IP family',
    ]);
    expect(nodeKind.validate(node({ podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"] }))).toEqual([]);
  });

  it("keeps podCIDR once set", () => {
    const old = node({ podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] });
    const next = node({ podCIDR: "10.244.2.0/24", podCIDRs: ["10.244.2.0/24"] });
    expect(nodeKind.validateUpdate!(next, old).map(formatFieldError)).toEqual([
      'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
    ]);
    expect(nodeKind.validateUpdate!(old, node())).toEqual([]);
  });

  it("defaults the singular and plural pod CIDR fields together", () => {
    const n = node({ podCIDR: "10.244.1.0/24" });
    nodeKind.defaults!(n);
    expect(n.spec?.podCIDRs).toEqual(["10.244.1.0/24"]);
  });

  it("prints status, roles and the wide columns", () => {
    const n = node(
      { unschedulable: true },
      { "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "" },
    );
    expect(nodeKind.table.cells(n, NOW)).toEqual([
      "node-1",
      "Ready,SchedulingDisabled",
      "control-plane,etcd",
      "3h",
      "v1.34.0",
      "172.18.0.2",
      "<none>",
      "Debian GNU/Linux 12 (bookworm)",
      "6.8.0",
      "containerd://2.1.0",
    ]);
    expect(nodeKind.table.cells(node(), NOW)[2]).toBe("<none>");
    expect(
      nodeStatusText({ metadata: {}, status: { conditions: [{ type: "Ready", status: "Unknown" }] } }),
    ).toBe("NotReady");
    expect(nodeStatusText({ metadata: {} })).toBe("Unknown");
    expect(nodeKind.selectableFields!["spec.unschedulable"](n)).toBe("true");
  });
});

describe("Lease", () => {
  it("validates durations and prints the holder", () => {
    const lease: Lease = {
      metadata: { name: "node-1", namespace: "kube-node-lease", creationTimestamp: "2026-11-24T11:59:50Z" },
      spec: { holderIdentity: "node-1", leaseDurationSeconds: 0 },
    };
    expect(leaseKind.validate(lease).map(formatFieldError)).toEqual([
      "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    ]);
    expect(leaseKind.table.cells(lease, NOW)).toEqual(["node-1", "node-1", "10s"]);
  });
});
