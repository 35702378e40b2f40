import { describe, expect, it } from "vitest";
import { CNI_VERSION, type PodNetworkOptions, podNetworkConflist } from "./conflist.ts";

const base: PodNetworkOptions = {
  name: "kemu",
  bridge: "cni0",
  podCIDR: "10.244.1.0/24",
  mtu: 1450,
  dataDir: "/var/lib/kemu/cni/ipam",
  hairpin: true,
};

describe("podNetworkConflist", () => {
  it("builds bridge + host-local + portmap at CNI 1.0.0", () => {
    expect(podNetworkConflist(base)).toEqual({
      cniVersion: "1.0.0",
      name: "kemu",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          mtu: 1450,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: "10.244.1.0/24" }]],
            routes: [{ dst: "0.0.0.0/0" }],
            dataDir: "/var/lib/kemu/cni/ipam",
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
    expect(CNI_VERSION).toBe("1.0.0");
  });

  it("never masquerades", () => {
    const conf = podNetworkConflist(base);
    expect(conf.plugins.every((p) => p.ipMasq !== true)).toBe(true);
    expect(conf.plugins[0].ipMasq).toBe(false);
  });

  it("passes hairpin through, defaulting to true", () => {
    expect(podNetworkConflist({ ...base, hairpin: false }).plugins[0].hairpinMode).toBe(false);
    const { hairpin: _, ...noHairpin } = base;
    expect(podNetworkConflist(noHairpin).plugins[0].hairpinMode).toBe(true);
  });

  it("uses ::/0 as the default route for an IPv6 pod range", () => {
    const conf = podNetworkConflist({ ...base, podCIDR: "fd00:10:244:1::/64" });
    expect((conf.plugins[0].ipam as any).routes).toEqual([{ dst: "::/0" }]);
  });

  it("is JSON-serializable as is", () => {
    const conf = podNetworkConflist(base);
    expect(JSON.parse(JSON.stringify(conf))).toEqual(conf);
  });

  it("validates the pod CIDR", () => {
    expect(() => podNetworkConflist({ ...base, podCIDR: "10.244.1.0" })).toThrow(/podCIDR.*prefix length/);
    expect(() => podNetworkConflist({ ...base, podCIDR: "10.244.1.1/24" })).toThrow(
      /podCIDR.*10\.244\.1\.0\/24/,
    );
    expect(() => podNetworkConflist({ ...base, podCIDR: "banana/24" })).toThrow(/podCIDR/);
    expect(() => podNetworkConflist({ ...base, podCIDR: "10.244.1.0/31" })).toThrow(/too small.*\/30/);
    expect(podNetworkConflist({ ...base, podCIDR: "10.244.1.0/30" }).plugins[0].ipam).toMatchObject({
      ranges: [[{ subnet: "10.244.1.0/30" }]],
    });
  });

  it("validates the MTU", () => {
    for (const mtu of [575, 9001, 1450.5, Number.NaN]) {
      expect(() => podNetworkConflist({ ...base, mtu })).toThrow(/MTU.*576 to 9000/);
    }
    expect(podNetworkConflist({ ...base, mtu: 576 }).plugins[0].mtu).toBe(576);
    expect(podNetworkConflist({ ...base, mtu: 9000 }).plugins[0].mtu).toBe(9000);
    expect(() => podNetworkConflist({ ...base, podCIDR: "fd00::/64", mtu: 1000 })).toThrow(/IPv6/);
  });

  it("validates the bridge name", () => {
    expect(() => podNetworkConflist({ ...base, bridge: "a-very-long-bridge" })).toThrow(/bridge name.*15/);
    expect(() => podNetworkConflist({ ...base, bridge: "" })).toThrow(/bridge name/);
    expect(() => podNetworkConflist({ ...base, bridge: "br 0" })).toThrow(/bridge name/);
    expect(() => podNetworkConflist({ ...base, bridge: "br/0" })).toThrow(/bridge name/);
    expect(podNetworkConflist({ ...base, bridge: "fifteen-chars15" }).plugins[0].bridge).toBe(
      "fifteen-chars15",
    );
  });

  it("validates the network name and dataDir", () => {
    expect(() => podNetworkConflist({ ...base, name: "bad name" })).toThrow(/network name/);
    expect(() => podNetworkConflist({ ...base, name: "-x" })).toThrow(/network name/);
    expect(() => podNetworkConflist({ ...base, dataDir: "relative/ipam" })).toThrow(/absolute/);
  });
});
