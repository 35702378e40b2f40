import { describe, expect, it } from "vitest";
import { formatFieldError } from "../validation.ts";
import {
  defaultService,
  prepareServiceUpdate,
  type Service,
  serviceKind,
  serviceTableCells,
  validateService,
  validateServiceUpdate,
} from "./service.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

function svc(spec: Record<string, unknown>, name = "web"): Service {
  return {
    metadata: { name, namespace: "default", creationTimestamp: "2026-11-24T11:00:00Z" },
    spec,
  } as Service;
}

/** Defaults then validates, as the API does on create; returns the formatted errors. */
function problems(spec: Record<string, unknown>, name = "web"): string[] {
  const s = svc(structuredClone(spec), name);
  defaultService(s);
  return validateService(s).map(formatFieldError);
}

describe("Service defaults", () => {
  it("fills type, protocol, targetPort, affinity and traffic policies as SetDefaults_Service", () => {
    const s = svc({
      selector: { app: "web" },
      ports: [{ port: 80 }, { name: "dns", port: 53, protocol: "UDP", targetPort: "dns" }],
    });
    defaultService(s);
    expect(s.spec).toEqual({
      selector: { app: "web" },
      ports: [
        { port: 80, protocol: "TCP", targetPort: 80 },
        { name: "dns", port: 53, protocol: "UDP", targetPort: "dns" },
      ],
      sessionAffinity: "None",
      type: "ClusterIP",
      internalTrafficPolicy: "Cluster",
    });
    expect(s.status).toEqual({ loadBalancer: {} });
  });

  it("gives NodePort and LoadBalancer an externalTrafficPolicy, LoadBalancer allocateLoadBalancerNodePorts", () => {
    const np = svc({ type: "NodePort", ports: [{ port: 80 }] });
    defaultService(np);
    expect(np.spec.externalTrafficPolicy).toBe("Cluster");
    expect(np.spec.allocateLoadBalancerNodePorts).toBeUndefined();
    const lb = svc({ type: "LoadBalancer", ports: [{ port: 80 }] });
    defaultService(lb);
    expect(lb.spec).toMatchObject({ externalTrafficPolicy: "Cluster", allocateLoadBalancerNodePorts: true });
    const ext = svc({ type: "ExternalName", externalName: "example.com" });
    defaultService(ext);
    expect(ext.spec.internalTrafficPolicy).toBeUndefined();
    expect(ext.spec.externalTrafficPolicy).toBeUndefined();
  });

  it("defaults the ClientIP timeout to 10800 s and drops a config for None", () => {
    const a = svc({ sessionAffinity: "ClientIP", ports: [{ port: 80 }] });
    defaultService(a);
    expect(a.spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
    const b = svc({
      sessionAffinity: "None",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } },
      ports: [{ port: 80 }],
    });
    defaultService(b);
    expect(b.spec.sessionAffinityConfig).toBeUndefined();
  });

  it("copies a lone clusterIP into clusterIPs", () => {
    const s = svc({ clusterIP: "None", ports: [{ port: 80 }] });
    defaultService(s);
    expect(s.spec.clusterIPs).toEqual(["None"]);
  });
});

describe("Service validation", () => {
  it("accepts a defaulted minimal Service", () => {
    expect(problems({ selector: { app: "web" }, ports: [{ port: 80 }] })).toEqual([]);
  });

  it("requires DNS-1035 names", () => {
    expect(problems({ ports: [{ port: 80 }] }, "1web")).toEqual([
      "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ]);
  });

  it("requires ports, unique names when there are several, valid numbers and protocols", () => {
    expect(problems({})).toEqual(["spec.ports: Required value"]);
    expect(problems({ ports: [{ port: 80 }, { port: 81 }] })).toEqual([
      "spec.ports[0].name: Required value",
      "spec.ports[1].name: Required value",
    ]);
    expect(
      problems({
        ports: [
          { name: "a", port: 80 },
          { name: "a", port: 81 },
        ],
      }),
    ).toEqual(['spec.ports[1].name: Duplicate value: "a"']);
    expect(problems({ ports: [{ name: "Web", port: 70000, protocol: "ICMP" }] })).toEqual([
      "spec.ports[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
      "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    ]);
  });

  it("checks targetPort as a number or an IANA service name", () => {
    expect(problems({ ports: [{ port: 80, targetPort: "http_port" }] })).toEqual([
      'spec.ports[0].targetPort: Invalid value: "http_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ]);
    expect(problems({ ports: [{ port: 80, targetPort: "8080" }] })).toEqual([
      'spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)',
    ]);
    expect(problems({ ports: [{ port: 80, targetPort: "http" }] })).toEqual([]);
  });

  it("rejects duplicate (protocol, port) pairs and node ports", () => {
    expect(
      problems({
        type: "NodePort",
        ports: [
          { name: "a", port: 80, nodePort: 30080 },
          { name: "b", port: 80, nodePort: 30080 },
          { name: "c", port: 80, protocol: "UDP" },
        ],
      }),
    ).toEqual([
      "spec.ports[1].nodePort: Duplicate value: 30080",
      'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ]);
  });

  it("forbids nodePort on ClusterIP and externalTrafficPolicy where nothing is external", () => {
    expect(problems({ ports: [{ port: 80, nodePort: 30080 }], externalTrafficPolicy: "Local" })).toEqual([
      "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
      'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services',
    ]);
    expect(problems({ type: "NodePort", ports: [{ port: 80 }], externalTrafficPolicy: "Nearest" })).toEqual([
      'spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", "Local"',
    ]);
  });

  it("checks types, affinity timeouts and internal traffic policy", () => {
    expect(problems({ type: "Ingress", ports: [{ port: 80 }] })).toEqual([
      'spec.type: Unsupported value: "Ingress": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]);
    for (const t of [0, 86401]) {
      expect(
        problems({
          sessionAffinity: "ClientIP",
          sessionAffinityConfig: { clientIP: { timeoutSeconds: t } },
          ports: [{ port: 80 }],
        }),
      ).toEqual([
        `spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: ${t}: must be greater than 0 and less than 86400`,
      ]);
    }
    expect(problems({ sessionAffinity: "Sticky", ports: [{ port: 80 }] })).toEqual([
      'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
    ]);
    expect(problems({ internalTrafficPolicy: "Nearby", ports: [{ port: 80 }] })).toEqual([
      'spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", "Local"',
    ]);
  });

  it("handles headless and ExternalName Services", () => {
    expect(problems({ clusterIP: "None" })).toEqual([]);
    expect(problems({ type: "NodePort", clusterIP: "None", ports: [{ port: 80 }] })).toEqual([
      "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
    ]);
    expect(problems({ type: "ExternalName" })).toEqual(["spec.externalName: Required value"]);
    expect(problems({ type: "ExternalName", externalName: "db.example.com." })).toEqual([]);
    expect(problems({ type: "ExternalName", externalName: "Bad_Name", clusterIP: "10.96.0.9" })).toEqual([
      "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
      "spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ]);
  });

  it("checks cluster IPs and their families", () => {
    expect(problems({ clusterIP: "10.96.0.300", ports: [{ port: 80 }] })).toEqual([
      'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]);
    expect(problems({ clusterIP: "10.96.0.5", clusterIPs: ["10.96.0.6"], ports: [{ port: 80 }] })).toEqual([
      'spec.clusterIPs: Invalid value: []string{"10.96.0.6"}: first value must match `clusterIP`',
    ]);
    expect(problems({ clusterIP: "10.96.0.5", ipFamilies: ["IPv6"], ports: [{ port: 80 }] })).toEqual([
      'spec.clusterIPs[0]: Invalid value: "10.96.0.5": expected an IPv6 value as indicated by `ipFamilies[0]`',
    ]);
  });

  it("validates selector labels and external IPs", () => {
    expect(
      problems({ selector: { "app/x/y": "web" }, ports: [{ port: 80 }], externalIPs: ["127.0.0.1"] }),
    ).toEqual([
      expect.stringMatching(/^spec\.selector: Invalid value: "app\/x\/y": a qualified name must consist of/),
      'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ]);
  });

  it("checks LoadBalancer-only fields", () => {
    expect(
      problems({
        ports: [{ port: 80 }],
        loadBalancerSourceRanges: ["10.0.0.0/8"],
        loadBalancerClass: "example.com/lb",
      }),
    ).toEqual([
      "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
      "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'",
    ]);
    const lb = svc({ type: "LoadBalancer", ports: [{ port: 80 }] });
    defaultService(lb);
    lb.status = { loadBalancer: { ingress: [{ ip: "192.0.2.1", ipMode: "Magic" }] } };
    expect(validateService(lb).map(formatFieldError)).toEqual([
      'status.loadBalancer.ingress[0].ipMode: Unsupported value: "Magic": supported values: "Proxy", "VIP"',
    ]);
    const cip = svc({ ports: [{ port: 80 }] });
    defaultService(cip);
    cip.status = { loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } };
    expect(validateService(cip).map(formatFieldError)).toEqual([
      "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'",
    ]);
  });
});

describe("Service updates", () => {
  function stored(spec: Record<string, unknown>): Service {
    const s = svc(spec);
    defaultService(s);
    return s;
  }

  it("keeps the allocated clusterIP and node ports when a PUT omits them", () => {
    const old = stored({
      type: "NodePort",
      clusterIP: "10.96.0.20",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ name: "http", port: 80, nodePort: 30080 }],
    });
    const next = stored({ type: "NodePort", ports: [{ name: "http", port: 80 }] });
    prepareServiceUpdate(next, old);
    expect(next.spec.clusterIP).toBe("10.96.0.20");
    expect(next.spec.clusterIPs).toEqual(["10.96.0.20"]);
    expect(next.spec.ports![0].nodePort).toBe(30080);
    expect(validateServiceUpdate(next, old)).toEqual([]);
  });

  it("refuses a changed clusterIP", () => {
    const old = stored({ clusterIP: "10.96.0.20", ports: [{ port: 80 }] });
    const next = stored({ clusterIP: "10.96.0.21", ports: [{ port: 80 }] });
    prepareServiceUpdate(next, old);
    expect(validateServiceUpdate(next, old).map(formatFieldError)).toEqual([
      'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.21"}: may not change once set',
    ]);
  });

  it("clears what the old type allocated when switching to ExternalName or ClusterIP", () => {
    const old = stored({
      type: "LoadBalancer",
      clusterIP: "10.96.0.20",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ port: 80, nodePort: 30080 }],
    });
    old.status = { loadBalancer: { ingress: [{ ip: "192.0.2.1", ipMode: "VIP" }] } };
    const next = structuredClone(old);
    next.spec.type = "ExternalName";
    next.spec.externalName = "example.com";
    prepareServiceUpdate(next, old);
    expect(next.spec.clusterIP).toBeUndefined();
    expect(next.spec.clusterIPs).toBeUndefined();
    expect(next.spec.ipFamilies).toBeUndefined();
    expect(next.spec.ipFamilyPolicy).toBeUndefined();
    expect(next.spec.ports![0].nodePort).toBeUndefined();
    expect(next.spec.allocateLoadBalancerNodePorts).toBeUndefined();
    expect(next.spec.externalTrafficPolicy).toBeUndefined();
    expect(next.status).toEqual({ loadBalancer: {} });
    defaultService(next);
    next.status = { loadBalancer: {} };
    expect(validateService(next)).toEqual([]);
    expect(validateServiceUpdate(next, old)).toEqual([]);
  });
});

describe("Service table", () => {
  it("prints the kubectl get svc columns, -o wide adding the selector", () => {
    expect(serviceKind.table.columns.map((c) => [c.name, c.priority ?? 0])).toEqual([
      ["Name", 0],
      ["Type", 0],
      ["Cluster-IP", 0],
      ["External-IP", 0],
      ["Port(s)", 0],
      ["Age", 0],
      ["Selector", 1],
    ]);
    const s = svc({
      type: "NodePort",
      clusterIPs: ["10.96.0.20"],
      selector: { tier: "front", app: "web" },
      ports: [
        { port: 80, nodePort: 30080, protocol: "TCP" },
        { port: 53, protocol: "UDP" },
      ],
    });
    expect(serviceTableCells(s, NOW)).toEqual([
      "web",
      "NodePort",
      "10.96.0.20",
      "<none>",
      "80:30080/TCP,53/UDP",
      "60m",
      "app=web,tier=front",
    ]);
    const lb = svc({
      type: "LoadBalancer",
      clusterIPs: ["10.96.0.21"],
      ports: [{ port: 443, protocol: "TCP" }],
    });
    expect(serviceTableCells(lb, NOW).slice(3, 5)).toEqual(["<pending>", "443/TCP"]);
    lb.status = { loadBalancer: { ingress: [{ ip: "192.0.2.9" }, { ip: "192.0.2.10" }] } };
    expect(serviceTableCells(lb, NOW)[3]).toBe("192.0.2.10,192.0.2.9");
    const ext = svc({ type: "ExternalName", externalName: "db.example.com" });
    expect(serviceTableCells(ext, NOW).slice(1, 7)).toEqual([
      "ExternalName",
      "<none>",
      "db.example.com",
      "<none>",
      "60m",
      "<none>",
    ]);
  });
});
