import { describe, expect, it } from "vitest";
import { testPod, testService } from "../test/endpoint-fixtures.ts";
import { desiredEndpoints, endpointsObject, findPort, repackSubsets, truncateSubsets } from "./endpoints.ts";
import type { EndpointSubset } from "./kinds/endpoints.ts";

const ref = (name: string) => ({ kind: "Pod", namespace: "default", name, uid: `uid-${name}` });

describe("findPort", () => {
  it("resolves numbers as is and names through the pod's container ports and protocol", () => {
    const pod = testPod("a", "10.244.0.5", {
      ports: [
        { name: "http", containerPort: 8080 },
        { name: "dns", containerPort: 53, protocol: "UDP" },
      ],
    });
    expect(findPort(pod, { port: 80, targetPort: 9090, protocol: "TCP" })).toBe(9090);
    expect(findPort(pod, { port: 80, targetPort: "http", protocol: "TCP" })).toBe(8080);
    expect(findPort(pod, { port: 53, targetPort: "dns", protocol: "UDP" })).toBe(53);
    expect(findPort(pod, { port: 53, targetPort: "dns", protocol: "TCP" })).toBeUndefined();
    expect(findPort(pod, { port: 80, targetPort: "metrics", protocol: "TCP" })).toBeUndefined();
  });
});

describe("desiredEndpoints", () => {
  it("splits ready and not-ready pods and skips pods without IP, terminal or terminating ones", () => {
    const svc = testService({ ports: [{ port: 80, targetPort: 8080 }] });
    const pods = [
      testPod("b", "10.244.0.11"),
      testPod("a", "10.244.0.9"),
      testPod("slow", "10.244.0.12", { ready: false }),
      testPod("pending", undefined),
      testPod("done", "10.244.0.13", { phase: "Succeeded" }),
      testPod("leaving", "10.244.0.14", { terminating: true }),
    ];
    const d = desiredEndpoints(svc, pods);
    expect(d.subsets).toEqual([
      {
        addresses: [
          { ip: "10.244.0.9", nodeName: "n1", targetRef: ref("a") },
          { ip: "10.244.0.11", nodeName: "n1", targetRef: ref("b") },
        ],
        notReadyAddresses: [{ ip: "10.244.0.12", nodeName: "n1", targetRef: ref("slow") }],
        ports: [{ port: 8080, protocol: "TCP" }],
      },
    ]);
    expect(d.labels).toEqual({ team: "a" });
    expect(d.truncated).toBe(false);
  });

  it("publishes not-ready and terminating pods when publishNotReadyAddresses", () => {
    const svc = testService({ publishNotReadyAddresses: true, ports: [{ port: 80 }] });
    const d = desiredEndpoints(svc, [
      testPod("slow", "10.244.0.12", { ready: false }),
      testPod("leaving", "10.244.0.14", { terminating: true }),
    ]);
    expect(d.subsets).toEqual([
      {
        addresses: [
          { ip: "10.244.0.12", nodeName: "n1", targetRef: ref("slow") },
          { ip: "10.244.0.14", nodeName: "n1", targetRef: ref("leaving") },
        ],
        ports: [{ port: 80, protocol: "TCP" }],
      },
    ]);
  });

  it("leaves a pod out of a named port it does not declare", () => {
    const svc = testService({
      ports: [
        { name: "http", port: 80, targetPort: "http" },
        { name: "metrics", port: 9090 },
      ],
    });
    const d = desiredEndpoints(svc, [
      testPod("named", "10.244.0.5", { ports: [{ name: "http", containerPort: 8080 }] }),
      testPod("plain", "10.244.0.6"),
    ]);
    // Repacked as upstream: the addresses sharing a port set share a subset.
    expect(d.subsets).toEqual([
      {
        addresses: [{ ip: "10.244.0.5", nodeName: "n1", targetRef: ref("named") }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      {
        addresses: [
          { ip: "10.244.0.5", nodeName: "n1", targetRef: ref("named") },
          { ip: "10.244.0.6", nodeName: "n1", targetRef: ref("plain") },
        ],
        ports: [{ name: "metrics", port: 9090, protocol: "TCP" }],
      },
    ]);
  });

  it("labels a headless Service's Endpoints and lists bare addresses when it has no ports", () => {
    const svc = testService({ clusterIP: "None", clusterIPs: ["None"] });
    const d = desiredEndpoints(svc, [testPod("a", "10.244.0.5")]);
    expect(d.labels).toEqual({ team: "a", "service.kubernetes.io/headless": "" });
    expect(d.subsets).toEqual([{ addresses: [{ ip: "10.244.0.5", nodeName: "n1", targetRef: ref("a") }] }]);
    const ep = endpointsObject(svc, d);
    expect(ep.metadata).toEqual({ name: "web", namespace: "default", labels: d.labels });
  });

  it("sets the hostname of pods naming the Service as their subdomain", () => {
    const svc = testService({ clusterIP: "None", clusterIPs: ["None"], ports: [{ port: 80 }] });
    const pod = testPod("db-0", "10.244.0.5");
    pod.spec.hostname = "db-0";
    pod.spec.subdomain = "web";
    expect(desiredEndpoints(svc, [pod]).subsets[0].addresses![0].hostname).toBe("db-0");
  });
});

describe("repackSubsets and truncateSubsets", () => {
  it("merges addresses offering the same ports and prefers ready over not ready", () => {
    const a = { ip: "10.0.0.1" };
    const b = { ip: "10.0.0.2" };
    const p80 = { name: "http", port: 80, protocol: "TCP" };
    const p443 = { name: "https", port: 443, protocol: "TCP" };
    const packed = repackSubsets([
      { addresses: [a], ports: [p80] },
      { addresses: [a], ports: [p443] },
      { notReadyAddresses: [a], ports: [p80] },
      { addresses: [b], ports: [p80] },
    ]);
    expect(packed).toEqual([
      { addresses: [a, b], ports: [p80] },
      { addresses: [a], ports: [p443] },
    ]);
  });

  it("caps Endpoints at 1000 addresses, not-ready ones dropped first", () => {
    const ips = (n: number, base: number) =>
      Array.from({ length: n }, (_, i) => ({ ip: `10.${base}.${i >> 8}.${i & 255}` }));
    const subsets: EndpointSubset[] = [
      { addresses: ips(900, 1), notReadyAddresses: ips(300, 2), ports: [{ port: 80, protocol: "TCP" }] },
    ];
    expect(truncateSubsets(subsets)).toBe(true);
    expect(subsets[0].addresses).toHaveLength(900);
    expect(subsets[0].notReadyAddresses).toHaveLength(100);
    const over = [{ addresses: ips(1200, 3), ports: [{ port: 80, protocol: "TCP" }] }];
    expect(truncateSubsets(over)).toBe(true);
    expect(over[0].addresses).toHaveLength(1000);
    const svc = testService({ ports: [{ port: 80 }] });
    const many = Array.from({ length: 1001 }, (_, i) => testPod(`p${i}`, `10.244.${i >> 8}.${i & 255}`));
    const d = desiredEndpoints(svc, many);
    expect(d.truncated).toBe(true);
    expect(endpointsObject(svc, d).metadata.annotations).toEqual({
      "endpoints.kubernetes.io/over-capacity": "truncated",
    });
  });
});
