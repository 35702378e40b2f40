import { describe, expect, it } from "vitest";
import { testPod, testService } from "../test/endpoint-fixtures.ts";
import {
  desiredServiceSlices,
  mirroredSliceMeta,
  mirrorGroups,
  planSlices,
  podToEndpoint,
  type SliceGroup,
  serviceSliceMeta,
  slicePrefix,
} from "./endpoint-slices.ts";
import type { EndpointSlice, SliceEndpoint } from "./kinds/endpoint-slice.ts";
import type { Endpoints } from "./kinds/endpoints.ts";

const nodes = (name: string) => (name === "n1" ? { zone: "zone-a" } : name === "n2" ? {} : undefined);

function ep(ip: string, ready = true): SliceEndpoint {
  return {
    addresses: [ip],
    conditions: { ready, serving: ready, terminating: false },
    targetRef: { kind: "Pod", name: ip, uid: ip },
  };
}

function stored(
  name: string,
  group: SliceGroup,
  endpoints: SliceEndpoint[],
  meta = serviceSliceMeta(testService({ ports: [{ port: 80 }] })),
): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: meta.namespace,
      uid: `uid-${name}`,
      labels: meta.labels,
      ownerReferences: meta.ownerReferences,
    },
    addressType: group.addressType,
    endpoints: endpoints.length ? endpoints : null,
    ports: group.ports,
  };
}

describe("podToEndpoint", () => {
  it("sets ready/serving/terminating as upstream does", () => {
    const svc = testService({ ports: [{ port: 80 }] });
    expect(podToEndpoint(testPod("a", "10.244.0.5"), svc, "IPv4", "zone-a")).toEqual({
      addresses: ["10.244.0.5"],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { kind: "Pod", namespace: "default", name: "a", uid: "uid-a" },
      nodeName: "n1",
      zone: "zone-a",
    });
    expect(podToEndpoint(testPod("t", "10.244.0.6", { terminating: true }), svc, "IPv4").conditions).toEqual({
      ready: false,
      serving: true,
      terminating: true,
    });
    expect(
      podToEndpoint(testPod("u", "10.244.0.7", { terminating: true, ready: false }), svc, "IPv4").conditions,
    ).toEqual({
      ready: false,
      serving: false,
      terminating: true,
    });
    const publish = testService({ publishNotReadyAddresses: true, ports: [{ port: 80 }] });
    expect(
      podToEndpoint(testPod("t", "10.244.0.6", { terminating: true, ready: false }), publish, "IPv4")
        .conditions,
    ).toEqual({
      ready: true,
      serving: false,
      terminating: true,
    });
  });
});

describe("desiredServiceSlices", () => {
  it("groups pods by resolved ports, keeps terminating pods, skips pods on unknown nodes", () => {
    const svc = testService({ ports: [{ name: "http", port: 80, targetPort: "http" }] });
    const { groups, missingNodes } = desiredServiceSlices(
      svc,
      [
        testPod("a", "10.244.0.5", { ports: [{ name: "http", containerPort: 8080 }] }),
        testPod("b", "10.244.1.5", {
          node: "n2",
          terminating: true,
          ports: [{ name: "http", containerPort: 8081 }],
        }),
        testPod("c", "10.244.0.6"),
        testPod("lost", "10.244.9.5", { node: "gone" }),
        testPod("noip", undefined),
      ],
      nodes,
    );
    expect(missingNodes).toEqual(["gone"]);
    expect(groups.map((g) => [g.ports, g.endpoints.map((e) => e.addresses[0])])).toEqual([
      [[{ name: "http", port: 8080, protocol: "TCP" }], ["10.244.0.5"]],
      [[{ name: "http", port: 8081, protocol: "TCP" }], ["10.244.1.5"]],
      [[], ["10.244.0.6"]],
    ]);
    expect(groups[0].endpoints[0].zone).toBe("zone-a");
    expect(groups[1].endpoints[0].zone).toBeUndefined();
  });

  it("labels slices with the service name, manager and headlessness, owned by the Service", () => {
    const svc = testService({ clusterIP: "None", clusterIPs: ["None"], ports: [{ port: 80 }] });
    expect(serviceSliceMeta(svc)).toEqual({
      namespace: "default",
      generateName: "web-",
      labels: {
        team: "a",
        "service.kubernetes.io/headless": "",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      },
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Service",
          name: "web",
          uid: "uid-svc-web",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(slicePrefix("x".repeat(253))).toBe("endpointslice-");
  });
});

describe("planSlices", () => {
  const group = (endpoints: SliceEndpoint[]): SliceGroup => ({
    addressType: "IPv4",
    ports: [{ name: "", port: 80, protocol: "TCP" }],
    endpoints,
  });
  const meta = serviceSliceMeta(testService({ ports: [{ port: 80 }] }));

  it("creates a placeholder when there is nothing, and replaces it once endpoints appear", () => {
    const empty = planSlices([], [], meta, "IPv4");
    expect(empty.create).toHaveLength(1);
    expect(empty.create[0]).toMatchObject({ addressType: "IPv4", endpoints: null, ports: [] });
    expect(empty.create[0].metadata).toMatchObject({ generateName: "web-", labels: meta.labels });
    const placeholder = stored("web-aaaaa", { addressType: "IPv4", ports: [], endpoints: [] }, []);
    expect(planSlices([], [placeholder], meta, "IPv4")).toEqual({ create: [], update: [], remove: [] });
    const filled = planSlices([group([ep("10.0.0.1")])], [placeholder], meta, "IPv4");
    expect(filled.create).toHaveLength(1);
    expect(filled.remove).toEqual([placeholder]);
  });

  it("keeps endpoints where they are, fills slices with room, then opens new ones", () => {
    const g = group([]);
    const existing = [
      stored("web-a", g, [ep("10.0.0.1"), ep("10.0.0.2")]),
      stored("web-b", g, [ep("10.0.0.3")]),
    ];
    const wanted = group([ep("10.0.0.2"), ep("10.0.0.3"), ep("10.0.0.4"), ep("10.0.0.5"), ep("10.0.0.6")]);
    const plan = planSlices([wanted], existing, meta, "IPv4", 2);
    expect(plan.remove).toEqual([]);
    expect(plan.update.map((s) => [s.metadata.name, s.endpoints!.map((e) => e.addresses[0])])).toEqual([
      ["web-a", ["10.0.0.2", "10.0.0.4"]],
      ["web-b", ["10.0.0.3", "10.0.0.5"]],
    ]);
    expect(plan.create.map((s) => s.endpoints!.map((e) => e.addresses[0]))).toEqual([["10.0.0.6"]]);
    // Nothing changed: nothing to write.
    const same = planSlices([group([ep("10.0.0.1"), ep("10.0.0.2")])], [existing[0]], meta, "IPv4");
    expect(same).toEqual({ create: [], update: [], remove: [] });
  });

  it("updates a condition in place and removes slices that emptied or changed ports", () => {
    const g = group([]);
    const a = stored("web-a", g, [ep("10.0.0.1")]);
    const other = stored(
      "web-b",
      { addressType: "IPv4", ports: [{ name: "", port: 81, protocol: "TCP" }], endpoints: [] },
      [ep("10.0.0.2")],
    );
    const plan = planSlices([group([ep("10.0.0.1", false)])], [a, other], meta, "IPv4");
    expect(plan.update).toHaveLength(1);
    expect(plan.update[0].endpoints![0].conditions).toEqual({
      ready: false,
      serving: false,
      terminating: false,
    });
    expect(plan.remove).toEqual([other]);
  });

  it("chunks large groups into slices of at most 100 endpoints", () => {
    const many = Array.from({ length: 250 }, (_, i) => ep(`10.0.${i >> 8}.${i & 255}`));
    const plan = planSlices([group(many)], [], meta, "IPv4");
    expect(plan.create.map((s) => s.endpoints!.length)).toEqual([100, 100, 50]);
  });
});

describe("mirroring", () => {
  const endpoints: Endpoints = {
    metadata: {
      name: "external-db",
      namespace: "default",
      uid: "uid-ep",
      labels: { app: "db" },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", note: "manual" },
    },
    subsets: [
      {
        addresses: [{ ip: "192.0.2.10" }, { ip: "not-an-ip" }],
        notReadyAddresses: [{ ip: "192.0.2.11", nodeName: "n1" }],
        ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
      },
      { addresses: [{ ip: "2001:db8::10" }], ports: [{ name: "pg", port: 5432, protocol: "TCP" }] },
    ],
  };

  it("turns each address into an endpoint of its family, ready or not", () => {
    expect(mirrorGroups(endpoints)).toEqual([
      {
        addressType: "IPv4",
        ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
        endpoints: [
          { addresses: ["192.0.2.10"], conditions: { ready: true } },
          { addresses: ["192.0.2.11"], conditions: { ready: false }, nodeName: "n1" },
        ],
      },
      {
        addressType: "IPv6",
        ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
        endpoints: [{ addresses: ["2001:db8::10"], conditions: { ready: true } }],
      },
    ]);
  });

  it("labels mirrored slices for the mirroring controller and has the Endpoints own them", () => {
    expect(mirroredSliceMeta(endpoints)).toEqual({
      namespace: "default",
      generateName: "external-db-",
      labels: {
        app: "db",
        "kubernetes.io/service-name": "external-db",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
      },
      annotations: { note: "manual" },
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Endpoints",
          name: "external-db",
          uid: "uid-ep",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(planSlices([], [], mirroredSliceMeta(endpoints))).toEqual({ create: [], update: [], remove: [] });
  });
});
