import { describe, expect, it } from "vitest";
import {
  allocatePodCidrs,
  DEFAULT_CLUSTER_CIDR,
  DEFAULT_NODE_CIDR_MASK_SIZE_IPV4,
  DEFAULT_NODE_CIDR_MASK_SIZE_IPV6,
  validateNodeIpamConfig,
} from "./node-ipam.ts";
import type { NodeObject } from "./types.ts";

function node(name: string, podCIDR?: string, podCIDRs?: string[]): NodeObject {
  return { metadata: { name }, spec: { podCIDR, podCIDRs } };
}

describe("validateNodeIpamConfig", () => {
  it("defaults to 10.244.0.0/16 split into /24s", () => {
    expect(DEFAULT_CLUSTER_CIDR).toBe("10.244.0.0/16");
    const v = validateNodeIpamConfig();
    expect(v.maskSize).toBe(DEFAULT_NODE_CIDR_MASK_SIZE_IPV4);
    expect(v.rangeCount).toBe(256n);
    expect(v.rangeSize).toBe(256n);
  });

  it("defaults IPv6 clusters to /64 node ranges", () => {
    const v = validateNodeIpamConfig({ clusterCidr: "fd00:10:244::/56" });
    expect(v.maskSize).toBe(DEFAULT_NODE_CIDR_MASK_SIZE_IPV6);
    expect(v.rangeCount).toBe(256n);
  });

  it("rejects a mask shorter than the cluster prefix", () => {
    expect(() => validateNodeIpamConfig({ clusterCidr: "10.244.0.0/16", nodeCidrMaskSize: 8 })).toThrow(
      "invalid node CIDR mask size /8 for cluster CIDR 10.244.0.0/16: a node range must fit inside the cluster range, so the mask must be at least /16",
    );
  });

  it("rejects masks wider than the family or non-integers", () => {
    expect(() => validateNodeIpamConfig({ nodeCidrMaskSize: 33 })).toThrow(
      /must be an integer no larger than 32/,
    );
    expect(() => validateNodeIpamConfig({ nodeCidrMaskSize: 24.5 })).toThrow(/must be an integer/);
  });

  it("rejects splits into more than 2^16 ranges", () => {
    expect(() => validateNodeIpamConfig({ clusterCidr: "10.0.0.0/8", nodeCidrMaskSize: 28 })).toThrow(
      /split the cluster into 2\^20 node ranges; at most 2\^16 are supported \(use a mask of at most \/24/,
    );
    expect(() => validateNodeIpamConfig({ clusterCidr: "fd00::/32" })).toThrow(/2\^32 node ranges/);
    expect(validateNodeIpamConfig({ clusterCidr: "10.0.0.0/8", nodeCidrMaskSize: 24 }).rangeCount).toBe(
      65536n,
    );
  });

  it("passes CIDR parse errors through", () => {
    expect(() => validateNodeIpamConfig({ clusterCidr: "10.244.0.1/16" })).toThrow(/host bits are set/);
  });
});

describe("allocatePodCidrs", () => {
  it("hands out the lowest free ranges in node order", () => {
    const result = allocatePodCidrs([node("a"), node("b"), node("c")]);
    expect([...result.assign]).toEqual([
      ["a", "10.244.0.0/24"],
      ["b", "10.244.1.0/24"],
      ["c", "10.244.2.0/24"],
    ]);
    expect(result.exhausted).toEqual([]);
  });

  it("skips nodes that already have a range and never reuses one", () => {
    const result = allocatePodCidrs([
      node("a", "10.244.0.0/24"),
      node("b"),
      node("c", "10.244.1.0/24"),
      node("d"),
    ]);
    expect([...result.assign]).toEqual([
      ["b", "10.244.2.0/24"],
      ["d", "10.244.3.0/24"],
    ]);
  });

  it("fills holes left by deleted nodes", () => {
    const result = allocatePodCidrs([node("a", "10.244.0.0/24"), node("c", "10.244.2.0/24"), node("new")]);
    expect(result.assign.get("new")).toBe("10.244.1.0/24");
  });

  it("treats spec.podCIDRs as taken too", () => {
    const result = allocatePodCidrs([node("a", undefined, ["10.244.0.0/24", "fd00::/64"]), node("b")]);
    expect([...result.assign]).toEqual([["b", "10.244.1.0/24"]]);
  });

  it("keeps ranges outside the cluster CIDR but still never hands them out twice", () => {
    const outside = allocatePodCidrs([node("a", "192.168.0.0/24"), node("b")]);
    expect([...outside.assign]).toEqual([["b", "10.244.0.0/24"]]);
    // A manual range that straddles the cluster start still blocks what it covers.
    const straddling = allocatePodCidrs([node("a", "10.240.0.0/12"), node("b")], {
      clusterCidr: "10.244.0.0/16",
    });
    expect(straddling.assign.size).toBe(0);
    expect(straddling.exhausted).toEqual(["b"]);
  });

  it("blocks every slice inside a larger existing range and accepts host bits in existing values", () => {
    const result = allocatePodCidrs([node("big", "10.244.0.0/22"), node("odd", "10.244.4.9/24"), node("b")]);
    expect(result.assign.get("b")).toBe("10.244.5.0/24");
  });

  it("blocks the containing slice of a smaller existing range", () => {
    const result = allocatePodCidrs([node("small", "10.244.0.128/25"), node("b")]);
    expect(result.assign.get("b")).toBe("10.244.1.0/24");
  });

  it("ignores unparseable existing values", () => {
    const result = allocatePodCidrs([node("junk", "not-a-cidr"), node("b")]);
    expect([...result.assign]).toEqual([["b", "10.244.0.0/24"]]);
  });

  it("reports nodes left without a range when the cluster CIDR is exhausted", () => {
    const result = allocatePodCidrs([node("a"), node("b"), node("c"), node("d")], {
      clusterCidr: "10.0.0.0/23",
      nodeCidrMaskSize: 24,
    });
    expect([...result.assign]).toEqual([
      ["a", "10.0.0.0/24"],
      ["b", "10.0.1.0/24"],
    ]);
    expect(result.exhausted).toEqual(["c", "d"]);
  });

  it("allocates IPv6 node ranges", () => {
    const result = allocatePodCidrs([node("a"), node("b")], { clusterCidr: "fd00:10:244::/56" });
    expect([...result.assign]).toEqual([
      ["a", "fd00:10:244::/64"],
      ["b", "fd00:10:244:1::/64"],
    ]);
  });

  it("ignores existing ranges of the other family", () => {
    const result = allocatePodCidrs([node("v6", "fd00:10:244::/64"), node("b")]);
    expect(result.assign.get("b")).toBe("10.244.0.0/24");
  });

  it("assigns a node listed twice only once", () => {
    const result = allocatePodCidrs([node("a"), node("a")]);
    expect([...result.assign]).toEqual([["a", "10.244.0.0/24"]]);
  });

  it("handles a full 2^16 split quickly", () => {
    const nodes = Array.from({ length: 2000 }, (_, i) => node(`n${i}`));
    const result = allocatePodCidrs(nodes, { clusterCidr: "10.0.0.0/8", nodeCidrMaskSize: 24 });
    expect(result.assign.get("n1999")).toBe("10.7.207.0/24");
  });

  it("throws on invalid config", () => {
    expect(() => allocatePodCidrs([], { nodeCidrMaskSize: 8 })).toThrow(/must be at least \/16/);
  });
});
