import { describe, expect, it } from "vitest";
import { announceCommands, announcedAddresses, electNode, LB_LABEL } from "./lb-announce.ts";
import {
  buildProxyModel,
  categorizeEndpoints,
  type EndpointSliceObject,
  type ServiceObject,
  servicePortName,
  servicePorts,
} from "./model.ts";

const svc = (name: string, spec: ServiceObject["spec"], status?: ServiceObject["status"]): ServiceObject => ({
  metadata: { namespace: "default", name },
  spec,
  ...(status ? { status } : {}),
});

const slice = (
  service: string,
  endpoints: EndpointSliceObject["endpoints"],
  portName = "http",
): EndpointSliceObject => ({
  metadata: {
    namespace: "default",
    name: `${service}-abc`,
    labels: { "kubernetes.io/service-name": service },
  },
  addressType: "IPv4",
  ports: [{ name: portName, protocol: "TCP", port: 8080 }],
  endpoints,
});

const ep = (ip: string, node: string, conditions = { ready: true, serving: true, terminating: false }) => ({
  addresses: [ip],
  conditions,
  nodeName: node,
});

describe("proxy model", () => {
  it("takes each port of a ClusterIP service, and nothing of headless or ExternalName ones", () => {
    const ports = servicePorts(
      svc("web", {
        type: "NodePort",
        clusterIP: "10.96.0.20",
        sessionAffinity: "ClientIP",
        externalTrafficPolicy: "Local",
        ports: [
          { name: "http", port: 80, nodePort: 30080 },
          { name: "dns", protocol: "UDP", port: 53, nodePort: 30053 },
        ],
      }),
    );
    expect(
      ports.map((p) => [
        servicePortName(p),
        p.protocol,
        p.nodePort,
        p.affinitySeconds,
        p.externalPolicyLocal,
      ]),
    ).toEqual([
      ["default/web:http", "TCP", 30080, 10800, true],
      ["default/web:dns", "UDP", 30053, 10800, true],
    ]);
    expect(servicePorts(svc("h", { clusterIP: "None", ports: [{ port: 80 }] }))).toEqual([]);
    expect(servicePorts(svc("x", { type: "ExternalName", ports: [{ port: 80 }] }))).toEqual([]);
    // A ClusterIP service ignores stray node ports and LoadBalancer ingress.
    const plain = servicePorts(svc("p", { clusterIP: "10.96.0.5", ports: [{ port: 80, nodePort: 30001 }] }));
    expect(plain[0].nodePort).toBe(0);
  });

  it("matches slice ports by name and protocol and counts an address once", () => {
    const model = buildProxyModel(
      [svc("web", { clusterIP: "10.96.0.20", ports: [{ name: "http", port: 80 }] })],
      [
        slice("web", [ep("10.244.1.3", "node-1"), ep("10.244.0.2", "node-2")]),
        slice("web", [ep("10.244.1.3", "node-1", { ready: false, serving: false, terminating: true })]),
        slice("web", [ep("10.244.2.2", "node-2")], "metrics"),
        slice("other", [ep("10.244.2.9", "node-2")]),
      ],
      "node-1",
    );
    expect(model).toHaveLength(1);
    expect(model[0].endpoints.map((e) => [e.ip, e.port, e.ready, e.isLocal])).toEqual([
      ["10.244.0.2", 8080, true, false],
      ["10.244.1.3", 8080, true, true],
    ]);
  });

  it("categorizes endpoints as upstream does for Cluster, Local and terminating fallbacks", () => {
    const base = svc("web", { clusterIP: "10.96.0.20", ports: [{ name: "http", port: 80 }] });
    const terminating = { ready: false, serving: true, terminating: true };
    const state = (
      spec: Partial<NonNullable<ServiceObject["spec"]>>,
      eps: EndpointSliceObject["endpoints"],
    ) => buildProxyModel([{ ...base, spec: { ...base.spec, ...spec } }], [slice("web", eps)], "node-1")[0];

    const cluster = categorizeEndpoints(
      state({}, [ep("10.244.0.2", "node-2"), ep("10.244.1.2", "node-1", terminating)]),
    );
    expect(cluster.clusterEndpoints.map((e) => e.ip)).toEqual(["10.244.0.2"]);
    expect(cluster.hasAnyEndpoints).toBe(true);

    const fallback = categorizeEndpoints(state({}, [ep("10.244.1.2", "node-1", terminating)]));
    expect(fallback.clusterEndpoints.map((e) => e.ip)).toEqual(["10.244.1.2"]);

    const none = categorizeEndpoints(
      state({}, [ep("10.244.1.2", "node-1", { ready: false, serving: false, terminating: true })]),
    );
    expect(none.hasAnyEndpoints).toBe(false);

    const local = categorizeEndpoints(
      state({ internalTrafficPolicy: "Local" }, [ep("10.244.0.2", "node-2"), ep("10.244.1.2", "node-1")]),
    );
    expect(local.clusterEndpoints).toEqual([]);
    expect(local.localEndpoints.map((e) => e.ip)).toEqual(["10.244.1.2"]);
    expect(local.allReachableEndpoints.map((e) => e.ip)).toEqual(["10.244.1.2"]);

    // External Local with internal Cluster: both sets, and every endpoint reachable.
    const ext = categorizeEndpoints(
      state(
        {
          type: "NodePort",
          externalTrafficPolicy: "Local",
          ports: [{ name: "http", port: 80, nodePort: 30080 }],
        },
        [ep("10.244.0.2", "node-2"), ep("10.244.1.2", "node-1")],
      ),
    );
    expect(ext.clusterEndpoints.map((e) => e.ip)).toEqual(["10.244.0.2", "10.244.1.2"]);
    expect(ext.localEndpoints.map((e) => e.ip)).toEqual(["10.244.1.2"]);

    // Local policy, no local endpoint, but endpoints elsewhere: hasAnyEndpoints stays true (drop, not reject).
    const remoteOnly = categorizeEndpoints(
      state({ internalTrafficPolicy: "Local" }, [ep("10.244.0.2", "node-2")]),
    );
    expect(remoteOnly.localEndpoints).toEqual([]);
    expect(remoteOnly.hasAnyEndpoints).toBe(true);
  });
});

describe("LoadBalancer announcements", () => {
  const lb = (name: string, ip: string, policy = "Cluster") =>
    svc(
      name,
      {
        type: "LoadBalancer",
        clusterIP: "10.96.0.30",
        externalTrafficPolicy: policy,
        ports: [{ name: "http", port: 80 }],
      },
      { loadBalancer: { ingress: [{ ip }] } },
    );
  const nodes = ["node-1", "node-2", "node-3"].map((name) => ({ name, ready: true }));

  it("elects exactly one ready node per address, the same on every node", () => {
    const services = Array.from({ length: 20 }, (_, i) => lb(`s${i}`, `172.30.0.${200 + i}`));
    const held = nodes.map((n) => announcedAddresses(services, [], nodes, n.name));
    expect(held.flat().sort()).toEqual(services.map((s) => s.status!.loadBalancer!.ingress![0].ip).sort());
    expect(held.every((h) => h.length > 0)).toBe(true); // 20 addresses spread over 3 nodes
    expect(electNode("default/s0", "172.30.0.200", ["node-2"])).toBe("node-2");
    expect(
      announcedAddresses(
        services,
        [],
        nodes.map((n) => ({ ...n, ready: false })),
        "node-1",
      ),
    ).toEqual([]);
  });

  it("with externalTrafficPolicy Local, announces only from nodes with a ready endpoint", () => {
    const s = lb("web", "172.30.0.201", "Local");
    const eps = [slice("web", [ep("10.244.2.2", "node-3")])];
    expect(announcedAddresses([s], eps, nodes, "node-3")).toEqual(["172.30.0.201"]);
    expect(announcedAddresses([s], eps, nodes, "node-1")).toEqual([]);
    expect(announcedAddresses([s], [], nodes, "node-3")).toEqual([]);
  });

  it("turns held addresses into desired ones with labelled lo addresses only", () => {
    expect(announceCommands(["172.30.0.201", "172.30.0.202"], ["172.30.0.200", "172.30.0.201"])).toEqual([
      `addr del 172.30.0.200/32 dev lo label ${LB_LABEL}`,
      `addr add 172.30.0.202/32 dev lo label ${LB_LABEL}`,
    ]);
    expect(announceCommands(["172.30.0.201"], ["172.30.0.201"])).toEqual([]);
  });
});
