import { describe, expect, it } from "vitest";
import {
  AddressPool,
  NodePortRange,
  OffsetAllocator,
  parsePortRange,
  type RangeAllocationError,
  ServiceIPRange,
  validateServiceCidr,
} from "./range-allocator.ts";

describe("OffsetAllocator", () => {
  it("picks above the static band first, then inside it, then reports full", () => {
    const a = new OffsetAllocator(20, 16, () => 0);
    const picks = Array.from({ length: 20 }, () => a.next());
    expect(picks.slice(0, 4).sort()).toEqual([16, 17, 18, 19]);
    expect(new Set(picks).size).toBe(20);
    expect(a.next()).toBeUndefined();
    a.release(3);
    expect(a.next()).toBe(3);
  });

  it("refuses an offset twice", () => {
    const a = new OffsetAllocator(10, 0);
    expect(a.take(4)).toBe(true);
    expect(a.take(4)).toBe(false);
    expect(a.count).toBe(1);
  });
});

describe("ServiceIPRange", () => {
  it("hands out addresses between the network and broadcast addresses", () => {
    const r = new ServiceIPRange("10.96.0.0/29");
    expect(r.first()).toBe("10.96.0.1");
    const got = new Set(Array.from({ length: 6 }, () => r.allocateNext()));
    expect([...got].sort()).toEqual([
      "10.96.0.1",
      "10.96.0.2",
      "10.96.0.3",
      "10.96.0.4",
      "10.96.0.5",
      "10.96.0.6",
    ]);
    expect(() => r.allocateNext()).toThrow("range is full");
  });

  it("keeps the low addresses for users of a large range", () => {
    const r = new ServiceIPRange("10.96.0.0/12", () => 0);
    // 2^20/16 clamps to a 256-address static band: random picks start above it.
    expect(r.allocateNext()).toBe("10.96.1.1");
  });

  it("says why a requested address cannot be had, in upstream's words", () => {
    const r = new ServiceIPRange("10.96.0.0/12");
    r.allocate("10.96.0.10");
    expect(r.has("10.96.0.10")).toBe(true);
    expect(() => r.allocate("10.96.0.10")).toThrow("provided IP is already allocated");
    for (const ip of ["1.2.3.4", "10.96.0.0", "10.111.255.255", "fd00::1"]) {
      expect(() => r.allocate(ip)).toThrow(
        `the provided IP (${ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/12`,
      );
    }
    try {
      r.allocate("1.2.3.4");
    } catch (e) {
      expect((e as RangeAllocationError).code).toBe("not-in-range");
    }
    r.release("10.96.0.10");
    expect(r.has("10.96.0.10")).toBe(false);
    r.allocate("10.96.0.10");
  });

  it("refuses service CIDRs that are too large, too small or malformed", () => {
    expect(validateServiceCidr("10.96.0.0/12")).toBe("10.96.0.0/12");
    expect(() => validateServiceCidr("10.0.0.0/8")).toThrow(
      "specified 10.0.0.0/8 is too large; for 32-bit addresses, the mask must be >= 12",
    );
    expect(() => validateServiceCidr("10.0.0.0/31")).toThrow("too small");
    expect(() => validateServiceCidr("10.96.0.1/12")).toThrow(
      "host bits are set (did you mean 10.96.0.0/12?)",
    );
    expect(() => validateServiceCidr("fd00::/64")).toThrow("for 128-bit addresses, the mask must be >= 108");
    expect(new ServiceIPRange("fd00:10:96::/112").first()).toBe("fd00:10:96::1");
  });
});

describe("NodePortRange", () => {
  it("parses MIN-MAX and MIN+SIZE and rejects the rest", () => {
    expect(parsePortRange("30000-32767")).toEqual({ base: 30000, size: 2768 });
    expect(parsePortRange("30000+9")).toEqual({ base: 30000, size: 10 });
    expect(parsePortRange("8080")).toEqual({ base: 8080, size: 1 });
    expect(() => parsePortRange("32767-30000")).toThrow("the end (30000) is below the start (32767)");
    expect(() => parsePortRange("30000-70000")).toThrow("ports must be between 1 and 65535");
    expect(() => parsePortRange("a-b")).toThrow(
      'invalid port range "a-b": expected MIN-MAX, e.g. 30000-32767',
    );
  });

  it("allocates in range with upstream's errors", () => {
    const r = new NodePortRange("30000-30009");
    r.allocate(30005);
    expect(() => r.allocate(30005)).toThrow("provided port is already allocated");
    expect(() => r.allocate(80)).toThrow(
      "provided port is not in the valid range. The range of valid ports is 30000-30009",
    );
    const all = new Set([30005, ...Array.from({ length: 9 }, () => r.allocateNext())]);
    expect(all.size).toBe(10);
    expect(() => r.allocateNext()).toThrow("range is full");
    expect(r.allocated()).toHaveLength(10);
  });
});

describe("AddressPool", () => {
  it("takes the lowest free address of a CIDR, every address included", () => {
    const p = new AddressPool("192.0.2.240/30");
    expect([p.takeLowest(), p.takeLowest(), p.takeLowest(), p.takeLowest(), p.takeLowest()]).toEqual([
      "192.0.2.240",
      "192.0.2.241",
      "192.0.2.242",
      "192.0.2.243",
      undefined,
    ]);
    p.release("192.0.2.241");
    expect(p.takeLowest()).toBe("192.0.2.241");
  });

  it("accepts A-B ranges and specific requests", () => {
    const p = new AddressPool("172.30.0.200 - 172.30.0.210");
    expect(p.text).toBe("172.30.0.200-172.30.0.210");
    expect(p.size).toBe(11n);
    expect(p.take("172.30.0.205")).toBe(true);
    expect(p.take("172.30.0.205")).toBe(false);
    expect(p.take("172.30.0.211")).toBe(false);
    expect(p.contains("172.30.0.210")).toBe(true);
    expect(p.overlapsCidr("172.30.0.208/29")).toBe(true);
    expect(p.overlapsCidr("10.96.0.0/12")).toBe(false);
  });

  it("explains malformed pools", () => {
    expect(() => new AddressPool("10.0.0.9-10.0.0.1")).toThrow("the end address is below the start address");
    expect(() => new AddressPool("10.0.0.1-fd00::1")).toThrow("same IP family");
    expect(() => new AddressPool("10.0.0.1/24")).toThrow("host bits are set");
    expect(() => new AddressPool("pool")).toThrow('invalid address pool "pool"');
  });
});
