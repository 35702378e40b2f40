import { describe, expect, it } from "vitest";
import { parseDnsUpstream, parseHostPort } from "./host-port.ts";

describe("parseHostPort / parseDnsUpstream", () => {
  it("takes IPv4, bare IPv6 and bracketed IPv6 with ports", () => {
    expect(parseHostPort("10.0.0.1", 53)).toEqual({ host: "10.0.0.1", port: 53 });
    expect(parseHostPort("10.0.0.1:5353", 53)).toEqual({ host: "10.0.0.1", port: 5353 });
    expect(parseHostPort("fd00::1", 53)).toEqual({ host: "fd00::1", port: 53 });
    expect(parseHostPort("[fd00::1]:5353", 53)).toEqual({ host: "fd00::1", port: 5353 });
  });
  it("refuses names, bad ports, port 0 for upstreams, and IPv6 where only IPv4 reaches", () => {
    expect(() => parseHostPort("dns.google", 53)).toThrow("the address must be an IP address");
    expect(() => parseHostPort("10.0.0.1:99999", 53)).toThrow("between 0 and 65535");
    expect(() => parseDnsUpstream("10.0.0.1:0")).toThrow("between 1 and 65535");
    expect(() => parseDnsUpstream("[fd00::1]:53", { ipv4Only: true })).toThrow("only IPv4");
    expect(parseDnsUpstream("[fd00::1]:53")).toEqual({ host: "fd00::1", port: 53 });
  });
});
