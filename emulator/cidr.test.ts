import { describe, expect, it } from "vitest";
import {
  addressCount,
  cidrContains,
  cidrOverlaps,
  formatCidr,
  nthAddress,
  nthSubnet,
  parseCidr,
  subnetCount,
} from "./cidr.ts";

describe("parseCidr", () => {
  it("parses IPv4 and IPv6 ranges", () => {
    expect(parseCidr("10.244.0.0/16")).toEqual({
      family: 4,
      network: 0x0af40000n,
      prefixLength: 16,
      bits: 32,
    });
    const v6 = parseCidr("fd00:10:244::/56");
    expect(v6.family).toBe(6);
    expect(v6.bits).toBe(128);
    expect(v6.prefixLength).toBe(56);
    expect(formatCidr(v6)).toBe("fd00:10:244::/56");
  });

  it("accepts /0 and full-length prefixes", () => {
    expect(parseCidr("0.0.0.0/0").prefixLength).toBe(0);
    expect(parseCidr("10.0.0.1/32").network).toBe(0x0a000001n);
    expect(parseCidr("::/0").network).toBe(0n);
    expect(formatCidr(parseCidr("fd00::1/128"))).toBe("fd00::1/128");
  });

  it("canonicalises IPv6 spelling", () => {
    expect(formatCidr(parseCidr("FD00:0:0:0::/64"))).toBe("fd00::/64");
  });

  it("rejects host bits set and suggests the network", () => {
    expect(() => parseCidr("10.0.0.1/8")).toThrow(/host bits are set \(did you mean 10\.0\.0\.0\/8\?\)/);
    expect(() => parseCidr("fd00::1/64")).toThrow(/did you mean fd00::\/64/);
  });

  it("masks host bits away when asked, like Go's net.ParseCIDR", () => {
    expect(formatCidr(parseCidr("10.244.1.7/24", { allowHostBits: true }))).toBe("10.244.1.0/24");
    expect(formatCidr(parseCidr("fd00::1/64", { allowHostBits: true }))).toBe("fd00::/64");
  });

  it.each([
    ["10.0.0.0", /missing prefix length/],
    ["10.0.0.0/33", /prefix length must be an integer from 0 to 32/],
    ["fd00::/129", /from 0 to 128/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.0/ 8", /prefix length/],
    ["10.0.0.0/8/8", /prefix length/],
    ["10.0.0.256/8", /invalid CIDR "10\.0\.0\.256\/8"/],
    ["010.0.0.0/8", /leading zeroes/],
    ["1.2.3/24", /invalid CIDR/],
    ["fe80::/64%eth0", /prefix length/],
    ["fe80::%eth0/64", /zone identifiers are not allowed/],
    ["", /missing prefix length/],
    ["nonsense/8", /invalid CIDR/],
  ])("rejects %j", (text, error) => {
    expect(() => parseCidr(text)).toThrow(error);
  });
});

describe("cidrContains / cidrOverlaps", () => {
  it("checks nested ranges", () => {
    expect(cidrContains("10.244.0.0/16", "10.244.3.0/24")).toBe(true);
    expect(cidrContains("10.244.0.0/16", "10.244.0.0/16")).toBe(true);
    expect(cidrContains("10.244.3.0/24", "10.244.0.0/16")).toBe(false);
    expect(cidrContains("10.244.0.0/16", "10.245.0.0/24")).toBe(false);
    expect(cidrContains("0.0.0.0/0", "192.168.1.0/24")).toBe(true);
  });

  it("accepts a bare address as the inner argument", () => {
    expect(cidrContains("10.96.0.0/12", "10.96.0.10")).toBe(true);
    expect(cidrContains("10.96.0.0/12", "10.112.0.1")).toBe(false);
    expect(cidrContains("fd00::/64", "fd00::ffff")).toBe(true);
  });

  it("never mixes families", () => {
    expect(cidrContains("::/0", "10.0.0.0/8")).toBe(false);
    expect(cidrContains("::ffff:0.0.0.0/96", "10.0.0.1")).toBe(false);
    expect(cidrOverlaps("0.0.0.0/0", "::/0")).toBe(false);
  });

  it("detects overlap in either direction", () => {
    expect(cidrOverlaps("10.0.0.0/8", "10.1.0.0/16")).toBe(true);
    expect(cidrOverlaps("10.1.0.0/16", "10.0.0.0/8")).toBe(true);
    expect(cidrOverlaps("10.1.0.0/16", "10.2.0.0/16")).toBe(false);
    expect(cidrOverlaps("fd00::/48", "fd00:0:0:1::/64")).toBe(true);
  });

  it("accepts parsed ranges", () => {
    const cluster = parseCidr("10.244.0.0/16");
    expect(cidrContains(cluster, parseCidr("10.244.1.0/24"))).toBe(true);
  });
});

describe("counts", () => {
  it("counts addresses exactly, even for IPv6", () => {
    expect(addressCount("10.96.0.0/12")).toBe(1048576n);
    expect(addressCount("10.0.0.1/32")).toBe(1n);
    expect(addressCount("fd00::/64")).toBe(2n ** 64n);
    expect(addressCount("::/0")).toBe(2n ** 128n);
  });

  it("counts subnets", () => {
    expect(subnetCount("10.244.0.0/16", 24)).toBe(256n);
    expect(subnetCount("10.244.0.0/16", 16)).toBe(1n);
    expect(subnetCount("fd00::/48", 64)).toBe(65536n);
  });

  it("rejects impossible subnet sizes", () => {
    expect(() => subnetCount("10.244.0.0/16", 8)).toThrow(
      /must be an integer from 16 to 32 to split 10\.244\.0\.0\/16/,
    );
    expect(() => subnetCount("10.244.0.0/16", 33)).toThrow(/from 16 to 32/);
    expect(() => subnetCount("10.244.0.0/16", 24.5)).toThrow(/must be an integer/);
  });
});

describe("nthSubnet", () => {
  it("walks subnets in address order", () => {
    expect(nthSubnet("10.244.0.0/16", 24, 0)).toBe("10.244.0.0/24");
    expect(nthSubnet("10.244.0.0/16", 24, 3)).toBe("10.244.3.0/24");
    expect(nthSubnet("10.244.0.0/16", 24, 255)).toBe("10.244.255.0/24");
    expect(nthSubnet("10.244.0.0/16", 26, 5)).toBe("10.244.1.64/26");
  });

  it("works for IPv6 and bigint indexes", () => {
    expect(nthSubnet("fd00:10:244::/56", 64, 0)).toBe("fd00:10:244::/64");
    expect(nthSubnet("fd00:10:244::/56", 64, 2n)).toBe("fd00:10:244:2::/64");
    expect(nthSubnet("fd00::/48", 112, 1n)).toBe("fd00::1:0/112");
  });

  it("rejects out-of-range indexes", () => {
    expect(() => nthSubnet("10.244.0.0/16", 24, 256)).toThrow(
      /subnet index 256 is out of range for 256 \/24 subnets/,
    );
    expect(() => nthSubnet("10.244.0.0/16", 24, -1)).toThrow(/out of range/);
    expect(() => nthSubnet("10.244.0.0/16", 24, 1.5)).toThrow(/out of range/);
  });
});

describe("nthAddress", () => {
  it("gives the well-known service addresses", () => {
    expect(nthAddress("10.96.0.0/12", 1)).toBe("10.96.0.1");
    expect(nthAddress("10.96.0.0/12", 10)).toBe("10.96.0.10");
    expect(nthAddress("10.96.0.0/12", 0)).toBe("10.96.0.0");
  });

  it("counts negative indexes from the end", () => {
    expect(nthAddress("10.96.0.0/12", -1)).toBe("10.111.255.255");
    expect(nthAddress("10.244.1.0/24", -2)).toBe("10.244.1.254");
  });

  it("works for IPv6", () => {
    expect(nthAddress("fd00:10:96::/112", 10)).toBe("fd00:10:96::a");
    expect(nthAddress("fd00::/64", -1)).toBe("fd00::ffff:ffff:ffff:ffff");
  });

  it("rejects out-of-range indexes", () => {
    expect(() => nthAddress("10.0.0.0/30", 4)).toThrow(
      /address index 4 is out of range for 10\.0\.0\.0\/30 \(4 addresses\)/,
    );
    expect(() => nthAddress("10.0.0.0/30", -5)).toThrow(/out of range/);
    expect(() => nthAddress("10.0.0.0/30", 0.5)).toThrow(/out of range/);
  });
});
