// The zone index alone: every record kind of the Kubernetes DNS specification (schema 1.1.0) as
// CoreDNS's kubernetes plugin answers it, NXDOMAIN versus NODATA, the SOA of negative answers, and
// incremental updates.

import { describe, expect, it } from "vitest";
import {
  ClusterZone,
  type DnsEndpointSlice,
  type DnsService,
  dashedIP,
  type LookupResult,
  RCODE,
  reverseName,
} from "./records.ts";

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const SERIAL = NOW / 1000;
const Z = "cluster.local";

function service(name: string, spec: DnsService["spec"], namespace = "default"): DnsService {
  return { metadata: { name, namespace }, spec };
}

function clusterIP(
  name: string,
  ip: string,
  ports: { name?: string; port: number; protocol?: string }[] = [],
) {
  return service(name, { type: "ClusterIP", clusterIP: ip, clusterIPs: [ip], ports });
}

function headless(name: string, ports: { name?: string; port: number; protocol?: string }[] = []) {
  return service(name, { type: "ClusterIP", clusterIP: "None", clusterIPs: ["None"], ports });
}

function slice(
  svc: string,
  endpoints: { ip: string | string[]; ready?: boolean | null; hostname?: string }[],
  ports: { name?: string; port: number; protocol?: string }[] = [],
  opts: { name?: string; namespace?: string; addressType?: string } = {},
): DnsEndpointSlice {
  return {
    metadata: {
      name: opts.name ?? `${svc}-abcde`,
      namespace: opts.namespace ?? "default",
      labels: { "kubernetes.io/service-name": svc },
    },
    addressType: opts.addressType ?? "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: Array.isArray(e.ip) ? e.ip : [e.ip],
      conditions: e.ready === undefined ? { ready: true } : { ready: e.ready },
      ...(e.hostname ? { hostname: e.hostname } : {}),
    })),
    ports: ports.map((p) => ({ name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" })),
  };
}

function zone(o: { localIPs?: string[]; zone?: string } = {}): ClusterZone {
  const z = new ClusterZone({ now: () => NOW, ...o });
  for (const ns of ["default", "kube-system", "other"]) z.setNamespace(ns, { metadata: { name: ns } });
  return z;
}

function put(z: ClusterZone, svc: DnsService, ...slices: DnsEndpointSlice[]): void {
  z.setService(`${svc.metadata.namespace}/${svc.metadata.name}`, svc);
  for (const s of slices) z.setEndpointSlice(`${s.metadata.namespace}/${s.metadata.name}`, s);
}

/** Answers as `name ttl type data` strings, as dig prints them. */
function rr(list: LookupResult["answers"]): string[] {
  return list.map((a: any) => {
    const d = a.data;
    const data =
      a.type === "SRV"
        ? `${d.priority} ${d.weight} ${d.port} ${d.target}`
        : a.type === "TXT"
          ? d.map((b: Buffer) => JSON.stringify(b.toString())).join(" ")
          : a.type === "SOA"
            ? `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`
            : d;
    return `${a.name} ${a.ttl} ${a.type} ${data}`;
  });
}

function answers(z: ClusterZone, name: string, type = "A"): string[] {
  const r = z.lookup(name, type);
  expect(r.rcode, `${name} ${type}`).toBe(RCODE.NOERROR);
  return rr(r.answers);
}

const SOA = `${Z} 5 SOA ns.dns.${Z} hostmaster.${Z} ${SERIAL} 7200 1800 86400 5`;

function expectNxdomain(z: ClusterZone, name: string, type = "A"): void {
  const r = z.lookup(name, type);
  expect(r.rcode, `${name} ${type}`).toBe(RCODE.NXDOMAIN);
  expect(r.authoritative).toBe(true);
  expect(r.answers).toEqual([]);
  expect(rr(r.authorities)).toEqual([SOA]);
}

function expectNodata(z: ClusterZone, name: string, type = "A"): void {
  const r = z.lookup(name, type);
  expect(r.rcode, `${name} ${type}`).toBe(RCODE.NOERROR);
  expect(r.authoritative).toBe(true);
  expect(r.answers).toEqual([]);
  expect(rr(r.authorities)).toEqual([SOA]);
}

describe("schema version", () => {
  it('answers dns-version.<zone> TXT "1.1.0" with CoreDNS\'s TTL, and NODATA for other types', () => {
    const z = zone();
    expect(answers(z, `dns-version.${Z}`, "TXT")).toEqual([`dns-version.${Z} 28800 TXT "1.1.0"`]);
    expectNodata(z, `dns-version.${Z}`, "A");
  });
});

describe("ClusterIP Services", () => {
  const z = zone();
  put(
    z,
    clusterIP("web", "10.96.0.20", [
      { name: "http", port: 80 },
      { name: "dns", port: 53, protocol: "UDP" },
    ]),
  );
  put(z, clusterIP("plain", "10.96.0.21", [{ port: 8080 }]));

  it("answers A with the ClusterIP, TTL 5, and NODATA for other types", () => {
    expect(answers(z, `web.default.svc.${Z}`)).toEqual([`web.default.svc.${Z} 5 A 10.96.0.20`]);
    expectNodata(z, `web.default.svc.${Z}`, "AAAA");
    expectNodata(z, `web.default.svc.${Z}`, "TXT");
    expectNodata(z, `web.default.svc.${Z}`, "MX");
  });

  it("matches names case-insensitively, with or without the trailing dot, echoing the name as asked", () => {
    expect(answers(z, `WEB.Default.SVC.Cluster.Local.`)).toEqual([
      `WEB.Default.SVC.Cluster.Local 5 A 10.96.0.20`,
    ]);
  });

  it("publishes SRV for named ports only, with CoreDNS's priority 0 and weight, target the Service", () => {
    const r = z.lookup(`_http._tcp.web.default.svc.${Z}`, "SRV");
    expect(rr(r.answers)).toEqual([`_http._tcp.web.default.svc.${Z} 5 SRV 0 100 80 web.default.svc.${Z}`]);
    expect(rr(r.additionals)).toEqual([`web.default.svc.${Z} 5 A 10.96.0.20`]);
    expect(answers(z, `_DNS._UDP.web.default.svc.${Z}`, "SRV")).toEqual([
      `_DNS._UDP.web.default.svc.${Z} 5 SRV 0 100 53 web.default.svc.${Z}`,
    ]);
    // The protocol is part of the name; an unnamed port has no _port._proto name at all.
    expectNxdomain(z, `_http._udp.web.default.svc.${Z}`, "SRV");
    expectNxdomain(z, `_8080._tcp.plain.default.svc.${Z}`, "SRV");
    // An SRV name exists for the SRV type only.
    expectNodata(z, `_http._tcp.web.default.svc.${Z}`, "A");
  });

  it("lists every port as SRV at the Service's own name (CoreDNS), weights sharing 100", () => {
    expect(answers(z, `web.default.svc.${Z}`, "SRV")).toEqual([
      `web.default.svc.${Z} 5 SRV 0 50 80 web.default.svc.${Z}`,
      `web.default.svc.${Z} 5 SRV 0 50 53 web.default.svc.${Z}`,
    ]);
    expect(answers(z, `plain.default.svc.${Z}`, "SRV")).toEqual([
      `plain.default.svc.${Z} 5 SRV 0 100 8080 plain.default.svc.${Z}`,
    ]);
  });

  it("answers PTR for the ClusterIP", () => {
    expect(answers(z, "20.0.96.10.in-addr.arpa", "PTR")).toEqual([
      `20.0.96.10.in-addr.arpa 5 PTR web.default.svc.${Z}`,
    ]);
    const r = z.lookup("20.0.96.10.in-addr.arpa", "A");
    expect([r.rcode, r.answers.length]).toEqual([RCODE.NOERROR, 0]);
  });

  it("answers a dual-stack Service with A and AAAA, one SRV per port, ip6.arpa PTR", () => {
    const d = zone();
    put(
      d,
      service("dual", {
        clusterIP: "10.96.0.30",
        clusterIPs: ["10.96.0.30", "fd00:10:96::30"],
        ports: [{ name: "http", port: 80 }],
      }),
    );
    expect(answers(d, `dual.default.svc.${Z}`, "AAAA")).toEqual([
      `dual.default.svc.${Z} 5 AAAA fd00:10:96::30`,
    ]);
    // CoreDNS counts one record per ClusterIP in the weight before dropping the duplicate.
    expect(answers(d, `_http._tcp.dual.default.svc.${Z}`, "SRV")).toEqual([
      `_http._tcp.dual.default.svc.${Z} 5 SRV 0 50 80 dual.default.svc.${Z}`,
    ]);
    expect(reverseName("fd00:10:96::30")).toBe(
      "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
    );
    expect(answers(d, reverseName("fd00:10:96::30"), "PTR")).toEqual([
      `${reverseName("fd00:10:96::30")} 5 PTR dual.default.svc.${Z}`,
    ]);
  });

  it("gives endpoints of a ClusterIP Service names too (CoreDNS), and their addresses PTRs", () => {
    const d = zone();
    put(
      d,
      clusterIP("api", "10.96.0.40", [{ name: "http", port: 80 }]),
      slice(
        "api",
        [{ ip: "10.244.1.5" }, { ip: "10.244.1.6", hostname: "api-0" }],
        [{ name: "http", port: 8080 }],
      ),
    );
    expect(answers(d, `10-244-1-5.api.default.svc.${Z}`)).toEqual([
      `10-244-1-5.api.default.svc.${Z} 5 A 10.244.1.5`,
    ]);
    expect(answers(d, `api-0.api.default.svc.${Z}`)).toEqual([`api-0.api.default.svc.${Z} 5 A 10.244.1.6`]);
    expect(answers(d, "5.1.244.10.in-addr.arpa", "PTR")).toEqual([
      `5.1.244.10.in-addr.arpa 5 PTR 10-244-1-5.api.default.svc.${Z}`,
    ]);
    // The Service name still answers the ClusterIP, not the endpoints.
    expect(answers(d, `api.default.svc.${Z}`)).toEqual([`api.default.svc.${Z} 5 A 10.96.0.40`]);
  });
});

describe("headless Services", () => {
  const ports = [{ name: "http", port: 8080 }, { name: "metrics", port: 9090 }, { port: 7000 }];

  it("answers one A per ready endpoint across slices, skipping not-ready ones (nil ready is ready)", () => {
    const z = zone();
    put(
      z,
      headless("db", [{ name: "http", port: 80 }]),
      slice(
        "db",
        [{ ip: "10.244.0.5" }, { ip: "10.244.0.6", ready: false }, { ip: "10.244.0.7", ready: null }],
        ports,
        {
          name: "db-1",
        },
      ),
      slice("db", [{ ip: "10.244.0.8" }, { ip: "10.244.0.5" }], ports, { name: "db-2" }),
    );
    expect(answers(z, `db.default.svc.${Z}`)).toEqual([
      `db.default.svc.${Z} 5 A 10.244.0.5`,
      `db.default.svc.${Z} 5 A 10.244.0.7`,
      `db.default.svc.${Z} 5 A 10.244.0.8`,
    ]);
    expectNxdomain(z, `10-244-0-6.db.default.svc.${Z}`);
  });

  it("is NXDOMAIN with no ready endpoint, for every type, and exists again once one is ready", () => {
    const z = zone();
    put(z, headless("empty", [{ name: "http", port: 80 }]));
    expectNxdomain(z, `empty.default.svc.${Z}`);
    expectNxdomain(z, `empty.default.svc.${Z}`, "SRV");
    expectNxdomain(z, `_http._tcp.empty.default.svc.${Z}`, "SRV");
    z.setEndpointSlice(
      "default/empty-x",
      slice("empty", [{ ip: "10.244.0.9", ready: false }], ports, { name: "empty-x" }),
    );
    expectNxdomain(z, `empty.default.svc.${Z}`);
    z.setEndpointSlice("default/empty-x", slice("empty", [{ ip: "10.244.0.9" }], ports, { name: "empty-x" }));
    expect(answers(z, `empty.default.svc.${Z}`)).toEqual([`empty.default.svc.${Z} 5 A 10.244.0.9`]);
    expectNodata(z, `empty.default.svc.${Z}`, "TXT");
  });

  it("names each ready endpoint by its hostname, or by its address with dashes", () => {
    const z = zone();
    put(
      z,
      headless("pets"),
      slice(
        "pets",
        [
          { ip: "10.244.0.10", hostname: "pet-0" },
          { ip: "10.244.0.11", hostname: "pet-1" },
          { ip: "10.244.0.12" },
          { ip: "10.244.0.13", hostname: "pet-3", ready: false },
        ],
        ports,
      ),
    );
    expect(answers(z, `pet-0.pets.default.svc.${Z}`)).toEqual([
      `pet-0.pets.default.svc.${Z} 5 A 10.244.0.10`,
    ]);
    expect(answers(z, `PET-1.pets.default.svc.${Z}`)).toEqual([
      `PET-1.pets.default.svc.${Z} 5 A 10.244.0.11`,
    ]);
    expect(answers(z, `10-244-0-12.pets.default.svc.${Z}`)).toEqual([
      `10-244-0-12.pets.default.svc.${Z} 5 A 10.244.0.12`,
    ]);
    // An endpoint with a hostname has no dashed name; a not-ready one has no name at all.
    expectNxdomain(z, `10-244-0-10.pets.default.svc.${Z}`);
    expectNxdomain(z, `pet-3.pets.default.svc.${Z}`);
    expectNodata(z, `pet-0.pets.default.svc.${Z}`, "AAAA");
    expect(dashedIP("fd00::1")).toBe("fd00--1");
  });

  it("gives a hostname with several addresses one A per address", () => {
    const z = zone();
    put(z, headless("multi"), slice("multi", [{ ip: ["10.244.0.20", "10.244.0.21"], hostname: "m" }]));
    expect(answers(z, `m.multi.default.svc.${Z}`)).toEqual([
      `m.multi.default.svc.${Z} 5 A 10.244.0.20`,
      `m.multi.default.svc.${Z} 5 A 10.244.0.21`,
    ]);
  });

  it("publishes SRV per ready endpoint and named port, with the endpoints' ports and names", () => {
    const z = zone();
    put(
      z,
      headless("pets", [{ name: "http", port: 80 }]),
      slice(
        "pets",
        [
          { ip: "10.244.0.10", hostname: "pet-0" },
          { ip: "10.244.0.11", hostname: "pet-1" },
          { ip: "10.244.0.12" },
        ],
        ports,
      ),
    );
    const r = z.lookup(`_http._tcp.pets.default.svc.${Z}`, "SRV");
    expect(rr(r.answers)).toEqual([
      `_http._tcp.pets.default.svc.${Z} 5 SRV 0 33 8080 pet-0.pets.default.svc.${Z}`,
      `_http._tcp.pets.default.svc.${Z} 5 SRV 0 33 8080 pet-1.pets.default.svc.${Z}`,
      `_http._tcp.pets.default.svc.${Z} 5 SRV 0 33 8080 10-244-0-12.pets.default.svc.${Z}`,
    ]);
    expect(rr(r.additionals)).toEqual([
      `pet-0.pets.default.svc.${Z} 5 A 10.244.0.10`,
      `pet-1.pets.default.svc.${Z} 5 A 10.244.0.11`,
      `10-244-0-12.pets.default.svc.${Z} 5 A 10.244.0.12`,
    ]);
    expect(answers(z, `_metrics._tcp.pets.default.svc.${Z}`, "SRV")).toHaveLength(3);
    expectNxdomain(z, `_7000._tcp.pets.default.svc.${Z}`, "SRV");
    // The service name's SRV lists every endpoint × port: 9 records, weight floor(100 / 9).
    const all = answers(z, `pets.default.svc.${Z}`, "SRV");
    expect(all).toHaveLength(9);
    expect(all[0]).toBe(`pets.default.svc.${Z} 5 SRV 0 11 8080 pet-0.pets.default.svc.${Z}`);
  });

  it("answers PTR for endpoint addresses with the endpoint's name", () => {
    const z = zone();
    put(
      z,
      headless("pets"),
      slice("pets", [{ ip: "10.244.0.10", hostname: "pet-0" }, { ip: "10.244.0.12" }], ports),
    );
    expect(answers(z, "10.0.244.10.in-addr.arpa", "PTR")).toEqual([
      `10.0.244.10.in-addr.arpa 5 PTR pet-0.pets.default.svc.${Z}`,
    ]);
    expect(answers(z, "12.0.244.10.IN-ADDR.ARPA.", "PTR")).toEqual([
      `12.0.244.10.IN-ADDR.ARPA 5 PTR 10-244-0-12.pets.default.svc.${Z}`,
    ]);
  });

  it("answers both names when an address backs two Services", () => {
    const z = zone();
    put(z, headless("a"), slice("a", [{ ip: "10.244.0.30" }], [], { name: "a-1" }));
    put(z, headless("b"), slice("b", [{ ip: "10.244.0.30" }], [], { name: "b-1" }));
    expect(answers(z, "30.0.244.10.in-addr.arpa", "PTR")).toEqual([
      `30.0.244.10.in-addr.arpa 5 PTR 10-244-0-30.a.default.svc.${Z}`,
      `30.0.244.10.in-addr.arpa 5 PTR 10-244-0-30.b.default.svc.${Z}`,
    ]);
  });

  it("answers IPv6 endpoints with AAAA and dashed names", () => {
    const z = zone();
    put(
      z,
      headless("v6"),
      slice("v6", [{ ip: "fd00:10:244::5" }], [{ name: "http", port: 80 }], { addressType: "IPv6" }),
    );
    expect(answers(z, `v6.default.svc.${Z}`, "AAAA")).toEqual([`v6.default.svc.${Z} 5 AAAA fd00:10:244::5`]);
    expect(answers(z, `fd00-10-244--5.v6.default.svc.${Z}`, "AAAA")).toEqual([
      `fd00-10-244--5.v6.default.svc.${Z} 5 AAAA fd00:10:244::5`,
    ]);
    expectNodata(z, `v6.default.svc.${Z}`, "A");
  });

  it("ignores FQDN slices", () => {
    const z = zone();
    put(z, headless("f"), slice("f", [{ ip: "example.com" }], [], { addressType: "FQDN" }));
    expectNxdomain(z, `f.default.svc.${Z}`);
  });
});

describe("ExternalName Services", () => {
  const z = zone();
  put(z, service("ext", { type: "ExternalName", externalName: "www.example.com." }));
  put(z, service("alias", { type: "ExternalName", externalName: `web.default.svc.${Z}` }));
  put(z, clusterIP("web", "10.96.0.20", [{ name: "http", port: 80 }]));
  put(z, service("byip", { type: "ExternalName", externalName: "192.0.2.1" }));

  it("answers a CNAME to the external name for any type, leaving the target to an upstream", () => {
    const r = z.lookup(`ext.default.svc.${Z}`, "A");
    expect(rr(r.answers)).toEqual([`ext.default.svc.${Z} 5 CNAME www.example.com`]);
    expect(r.chase).toBe("www.example.com");
    expect(rr(z.lookup(`ext.default.svc.${Z}`, "CNAME").answers)).toEqual([
      `ext.default.svc.${Z} 5 CNAME www.example.com`,
    ]);
    expect(z.lookup(`ext.default.svc.${Z}`, "CNAME").chase).toBeUndefined();
    expect(rr(z.lookup(`ext.default.svc.${Z}`, "TXT").answers)).toEqual([
      `ext.default.svc.${Z} 5 CNAME www.example.com`,
    ]);
  });

  it("follows a target inside the zone", () => {
    expect(answers(z, `alias.default.svc.${Z}`)).toEqual([
      `alias.default.svc.${Z} 5 CNAME web.default.svc.${Z}`,
      `web.default.svc.${Z} 5 A 10.96.0.20`,
    ]);
  });

  it("has no endpoint names, and no record for an address (CoreDNS)", () => {
    expectNxdomain(z, `x.ext.default.svc.${Z}`);
    expectNxdomain(z, `byip.default.svc.${Z}`);
  });
});

describe("pod records (pods insecure)", () => {
  const z = zone();

  it("answers any dashed IPv4 address in an existing namespace", () => {
    expect(answers(z, `10-244-1-7.default.pod.${Z}`)).toEqual([`10-244-1-7.default.pod.${Z} 5 A 10.244.1.7`]);
    expect(answers(z, `1-2-3-4.other.pod.${Z}`)).toEqual([`1-2-3-4.other.pod.${Z} 5 A 1.2.3.4`]);
    expectNodata(z, `10-244-1-7.default.pod.${Z}`, "AAAA");
  });

  it("answers dashed IPv6 with AAAA", () => {
    expect(answers(z, `fd00--7.default.pod.${Z}`, "AAAA")).toEqual([
      `fd00--7.default.pod.${Z} 5 AAAA fd00::7`,
    ]);
  });

  it("is NXDOMAIN for what is no address, deeper names, or a namespace that does not exist", () => {
    expectNxdomain(z, `10-244-1-300.default.pod.${Z}`);
    expectNxdomain(z, `web.default.pod.${Z}`);
    expectNxdomain(z, `x.10-244-1-7.default.pod.${Z}`);
    expectNxdomain(z, `10-244-1-7.nowhere.pod.${Z}`);
  });
});

describe("NXDOMAIN versus NODATA", () => {
  const z = zone();
  put(z, clusterIP("web", "10.96.0.20", [{ name: "http", port: 80 }]));

  it("answers the apex SOA and NODATA for other types there", () => {
    expect(answers(z, Z, "SOA")).toEqual([SOA]);
    expectNodata(z, Z, "A");
  });

  it("is NODATA for the empty non-terminals: svc, pod, dns, <ns>.svc, <ns>.pod, _proto", () => {
    for (const name of [
      `svc.${Z}`,
      `pod.${Z}`,
      `dns.${Z}`,
      `default.svc.${Z}`,
      `other.svc.${Z}`,
      `default.pod.${Z}`,
      `_tcp.web.default.svc.${Z}`,
    ]) {
      expectNodata(z, name);
    }
  });

  it("is NXDOMAIN for names that do not exist", () => {
    for (const name of [
      `nope.default.svc.${Z}`,
      `web.other.svc.${Z}`,
      `nowhere.svc.${Z}`,
      `web.nowhere.svc.${Z}`,
      `nowhere.pod.${Z}`,
      `foo.${Z}`,
      `web.default.svc.${Z}.default.svc.${Z}`,
      `a.b._http._tcp.web.default.svc.${Z}`,
      `_tcp.nope.default.svc.${Z}`,
    ]) {
      expectNxdomain(z, name);
    }
  });

  it("counts a namespace with Services as existing before its Namespace is seen", () => {
    const y = new ClusterZone({ now: () => NOW });
    put(y, clusterIP("web", "10.96.0.20"));
    expect(y.lookup(`default.svc.${Z}`, "A").rcode).toBe(RCODE.NOERROR);
    expect(y.lookup(`1-2-3-4.default.pod.${Z}`, "A").rcode).toBe(RCODE.NOERROR);
    y.setService("default/web", undefined);
    expect(y.lookup(`default.svc.${Z}`, "A").rcode).toBe(RCODE.NXDOMAIN);
  });

  it("puts the reverse zone's SOA in reverse negatives, and flags unknown addresses for fallthrough", () => {
    const r = z.lookup("9.9.9.9.in-addr.arpa", "PTR");
    expect(r.rcode).toBe(RCODE.NXDOMAIN);
    expect(r.fallthrough).toBe(true);
    expect(rr(r.authorities)).toEqual([
      `in-addr.arpa 5 SOA ns.dns.in-addr.arpa hostmaster.in-addr.arpa ${SERIAL} 7200 1800 86400 5`,
    ]);
    // Parents of a PTR name are empty non-terminals.
    for (const name of ["0.96.10.in-addr.arpa", "96.10.in-addr.arpa", "10.in-addr.arpa"]) {
      const e = z.lookup(name, "PTR");
      expect([name, e.rcode, e.answers.length, e.fallthrough]).toEqual([name, RCODE.NOERROR, 0, undefined]);
    }
  });

  it("flags names outside every zone served", () => {
    for (const name of ["example.com", "local", "cluster.local.example.com", "."]) {
      const r = z.lookup(name, "A");
      expect([name, r.outOfZone, r.rcode, r.authoritative]).toEqual([name, true, RCODE.REFUSED, false]);
    }
  });
});

describe("a zone other than cluster.local", () => {
  it("serves the configured zone only", () => {
    const z = zone({ zone: "Corp.Example." });
    put(z, clusterIP("web", "10.96.0.20"));
    expect(answers(z, "web.default.svc.corp.example")).toEqual([
      "web.default.svc.corp.example 5 A 10.96.0.20",
    ]);
    expect(z.lookup(`web.default.svc.${Z}`, "A").outOfZone).toBe(true);
    expect(rr(z.lookup("nope.default.svc.corp.example", "A").authorities)).toEqual([
      `corp.example 5 SOA ns.dns.corp.example hostmaster.corp.example ${SERIAL} 7200 1800 86400 5`,
    ]);
  });
});

describe("name servers", () => {
  it("answers NS at the apex with the kube-dns Service whose endpoint this server is (CoreDNS)", () => {
    const z = zone({ localIPs: ["10.244.2.3"] });
    put(
      z,
      service(
        "kube-dns",
        {
          clusterIP: "10.96.0.10",
          clusterIPs: ["10.96.0.10"],
          ports: [{ name: "dns", port: 53, protocol: "UDP" }],
        },
        "kube-system",
      ),
      slice("kube-dns", [{ ip: "10.244.2.3" }], [{ name: "dns", port: 53, protocol: "UDP" }], {
        namespace: "kube-system",
      }),
    );
    const r = z.lookup(Z, "NS");
    expect(rr(r.answers)).toEqual([`${Z} 5 NS kube-dns.kube-system.svc.${Z}`]);
    expect(rr(r.additionals)).toEqual([`kube-dns.kube-system.svc.${Z} 5 A 10.96.0.10`]);
    expect(answers(z, `ns.dns.${Z}`)).toEqual([`ns.dns.${Z} 5 A 10.96.0.10`]);
  });

  it("falls back to the server's own addresses", () => {
    const z = zone({ localIPs: ["10.244.2.3"] });
    expect(answers(z, `ns.dns.${Z}`)).toEqual([`ns.dns.${Z} 5 A 10.244.2.3`]);
    expect(answers(z, Z, "NS")).toEqual([`${Z} 5 NS ns.dns.${Z}`]);
  });
});

describe("incremental updates", () => {
  it("removes a deleted Service's names, SRV names and PTRs, and bumps the version and serial", () => {
    let now = NOW;
    const z = new ClusterZone({ now: () => now });
    put(
      z,
      headless("pets", [{ name: "http", port: 80 }]),
      slice("pets", [{ ip: "10.244.0.10", hostname: "pet-0" }], [{ name: "http", port: 8080 }]),
    );
    expect(answers(z, `pet-0.pets.default.svc.${Z}`)).toHaveLength(1);
    const v = z.version;
    now += 60_000;
    z.setService("default/pets", undefined);
    expect(z.version).toBeGreaterThan(v);
    expectNxdomainAt(z, `pets.default.svc.${Z}`, SERIAL + 60);
    expectNxdomainAt(z, `pet-0.pets.default.svc.${Z}`, SERIAL + 60);
    expectNxdomainAt(z, `_http._tcp.pets.default.svc.${Z}`, SERIAL + 60, "SRV");
    expectNxdomainAt(z, `_tcp.pets.default.svc.${Z}`, SERIAL + 60);
    expect(z.lookup("10.0.244.10.in-addr.arpa", "PTR").rcode).toBe(RCODE.NXDOMAIN);
    expect(z.lookup("0.244.10.in-addr.arpa", "PTR").rcode).toBe(RCODE.NXDOMAIN);
    // The slice is kept: the Service coming back finds its endpoints.
    put(z, headless("pets", [{ name: "http", port: 80 }]));
    expect(answers(z, `pet-0.pets.default.svc.${Z}`)).toHaveLength(1);
  });

  it("takes a slice's endpoints away with the slice, and follows a slice relabelled to another Service", () => {
    const z = zone();
    put(z, headless("a"), slice("a", [{ ip: "10.244.0.40" }], [], { name: "s" }));
    put(z, headless("b"));
    expect(answers(z, `a.default.svc.${Z}`)).toHaveLength(1);
    z.setEndpointSlice("default/s", slice("b", [{ ip: "10.244.0.40" }], [], { name: "s" }));
    expect(z.lookup(`a.default.svc.${Z}`, "A").rcode).toBe(RCODE.NXDOMAIN);
    expect(answers(z, `b.default.svc.${Z}`)).toEqual([`b.default.svc.${Z} 5 A 10.244.0.40`]);
    z.setEndpointSlice("default/s", undefined);
    expect(z.lookup(`b.default.svc.${Z}`, "A").rcode).toBe(RCODE.NXDOMAIN);
  });

  it("follows a Service turning from ClusterIP into ExternalName", () => {
    const z = zone();
    put(z, clusterIP("web", "10.96.0.20", [{ name: "http", port: 80 }]));
    put(z, service("web", { type: "ExternalName", externalName: "example.org" }));
    expect(rr(z.lookup(`web.default.svc.${Z}`, "A").answers)).toEqual([
      `web.default.svc.${Z} 5 CNAME example.org`,
    ]);
    expect(z.lookup(`_http._tcp.web.default.svc.${Z}`, "SRV").rcode).toBe(RCODE.NXDOMAIN);
    expect(z.lookup("20.0.96.10.in-addr.arpa", "PTR").rcode).toBe(RCODE.NXDOMAIN);
  });

  it("forgets a deleted namespace", () => {
    const z = zone();
    z.setNamespace("other", undefined);
    expect(z.lookup(`other.svc.${Z}`, "A").rcode).toBe(RCODE.NXDOMAIN);
    expect(z.lookup(`1-2-3-4.other.pod.${Z}`, "A").rcode).toBe(RCODE.NXDOMAIN);
  });

  it("indexes 10000 Services and answers from maps", () => {
    const z = zone();
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i++) {
      put(z, clusterIP(`s${i}`, `10.97.${i >> 8}.${i & 255}`, [{ name: "http", port: 80 }]));
    }
    const built = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; i < 100_000; i++) z.lookup(`s${i % 10_000}.default.svc.${Z}`, "A");
    const perLookupUs = ((performance.now() - t1) / 100_000) * 1000;
    console.log(`10000 Services indexed in ${built.toFixed(0)} ms; ${perLookupUs.toFixed(2)} µs per lookup`);
    expect(answers(z, `s9999.default.svc.${Z}`)).toEqual([`s9999.default.svc.${Z} 5 A 10.97.39.15`]);
  });
});

function expectNxdomainAt(z: ClusterZone, name: string, serial: number, type = "A"): void {
  const r = z.lookup(name, type);
  expect(r.rcode, name).toBe(RCODE.NXDOMAIN);
  expect((r.authorities[0] as any).data.serial).toBe(serial);
}
