import { describe, expect, it } from "vitest";
import { formatFieldError } from "../validation.ts";
import {
  defaultEndpointSlice,
  type EndpointSlice,
  endpointSliceKind,
  validateEndpointSlice,
  validateEndpointSliceUpdate,
} from "./endpoint-slice.ts";
import {
  defaultEndpoints,
  type Endpoints,
  endpointsKind,
  formatEndpoints,
  validateEndpoints,
} from "./endpoints.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

function endpoints(subsets: Endpoints["subsets"]): Endpoints {
  const ep: Endpoints = {
    metadata: { name: "web", namespace: "default", creationTimestamp: "2026-11-24T11:59:00Z" },
    subsets,
  };
  defaultEndpoints(ep);
  return ep;
}

function slice(rest: Partial<EndpointSlice>): EndpointSlice {
  const s = {
    metadata: { name: "web-abcde", namespace: "default", creationTimestamp: "2026-11-24T11:59:00Z" },
    addressType: "IPv4",
    endpoints: [],
    ...rest,
  } as EndpointSlice;
  defaultEndpointSlice(s);
  return s;
}

describe("Endpoints", () => {
  it("defaults port protocols and accepts well-formed subsets", () => {
    const ep = endpoints([{ addresses: [{ ip: "10.244.0.5", nodeName: "n1" }], ports: [{ port: 80 }] }]);
    expect(ep.subsets![0].ports).toEqual([{ port: 80, protocol: "TCP" }]);
    expect(validateEndpoints(ep)).toEqual([]);
  });

  it("refuses empty subsets, special addresses and unnamed ports among several", () => {
    const ep = endpoints([
      {},
      {
        addresses: [{ ip: "127.0.0.1" }, { ip: "10.0.0.300" }],
        ports: [{ port: 80 }, { name: "b", port: 0 }],
      },
    ]);
    expect(validateEndpoints(ep).map(formatFieldError)).toEqual([
      "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
      'subsets[1].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      'subsets[1].addresses[1].ip: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
      'subsets[1].addresses[1].ip: Invalid value: "10.0.0.300": must be a valid IP address',
      "subsets[1].ports[0].name: Required value",
      "subsets[1].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    ]);
  });

  it("prints NAME ENDPOINTS AGE with at most three endpoints", () => {
    expect(endpointsKind.table.columns.map((c) => c.name)).toEqual(["Name", "Endpoints", "Age"]);
    expect(endpointsKind.table.cells(endpoints(undefined), NOW)).toEqual(["web", "<none>", "60s"]);
    const ep = endpoints([
      {
        addresses: [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }],
        notReadyAddresses: [{ ip: "10.0.0.9" }],
        ports: [
          { name: "a", port: 80 },
          { name: "b", port: 443 },
        ],
      },
    ]);
    expect(formatEndpoints(ep)).toBe("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...");
    expect(
      formatEndpoints(endpoints([{ notReadyAddresses: [{ ip: "10.0.0.9" }], ports: [{ port: 80 }] }])),
    ).toBe("<none>");
    expect(formatEndpoints(endpoints([{ addresses: [{ ip: "fd00::1" }] }]))).toBe("fd00::1");
  });
});

describe("EndpointSlice", () => {
  it("defaults port names and protocols, absent endpoints to null", () => {
    const s = slice({ ports: [{ port: 80 }] });
    expect(s.ports).toEqual([{ name: "", port: 80, protocol: "TCP" }]);
    expect(s.endpoints).toEqual([]);
    expect(validateEndpointSlice(s)).toEqual([]);
    const absent = { metadata: { name: "x", namespace: "default" }, addressType: "IPv4" } as EndpointSlice;
    defaultEndpointSlice(absent);
    expect(absent.endpoints).toBeNull();
  });

  it("checks the address type and each endpoint's addresses", () => {
    expect(validateEndpointSlice(slice({ addressType: "IP" })).map(formatFieldError)).toEqual([
      'addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"',
    ]);
    const bad = slice({
      endpoints: [
        { addresses: [] },
        { addresses: ["fd00::1"], nodeName: "Node_1" },
        { addresses: ["169.254.0.1"] },
      ],
      ports: [
        { name: "http", port: 80 },
        { name: "http", port: 81 },
      ],
    });
    expect(validateEndpointSlice(bad).map(formatFieldError)).toEqual([
      "endpoints[0].addresses: Required value: must contain at least 1 address",
      'endpoints[1].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
      expect.stringMatching(
        /^endpoints\[1\]\.nodeName: Invalid value: "Node_1": a lowercase RFC 1123 subdomain/,
      ),
      'endpoints[2].addresses[0]: Invalid value: "169.254.0.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
      'ports[1].name: Duplicate value: "http"',
    ]);
    const fqdn = slice({
      addressType: "FQDN",
      endpoints: [{ addresses: ["db.example.com"] }, { addresses: ["localhost"] }],
    });
    expect(validateEndpointSlice(fqdn).map(formatFieldError)).toEqual([
      'endpoints[1].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots',
    ]);
  });

  it("allows at most 1000 endpoints and an immutable address type", () => {
    const many = slice({
      endpoints: Array.from({ length: 1001 }, (_, i) => ({ addresses: [`10.0.${i >> 8}.${i & 255}`] })),
    });
    expect(validateEndpointSlice(many).map(formatFieldError)).toEqual([
      "endpoints: Too many: 1001: must have at most 1000 items",
    ]);
    expect(
      validateEndpointSliceUpdate(slice({ addressType: "IPv6" }), slice({})).map(formatFieldError),
    ).toEqual(['addressType: Invalid value: "IPv6": field is immutable']);
  });

  it("prints NAME ADDRESSTYPE PORTS ENDPOINTS AGE", () => {
    expect(endpointSliceKind.table.columns.map((c) => c.name)).toEqual([
      "Name",
      "AddressType",
      "Ports",
      "Endpoints",
      "Age",
    ]);
    const s = slice({
      ports: [{ name: "http", port: 80 }],
      endpoints: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"].map((ip) => ({ addresses: [ip] })),
    });
    expect(endpointSliceKind.table.cells(s, NOW)).toEqual([
      "web-abcde",
      "IPv4",
      "80",
      "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
      "60s",
    ]);
    expect(endpointSliceKind.table.cells(slice({}), NOW).slice(2, 4)).toEqual(["<unset>", "<unset>"]);
  });
});
