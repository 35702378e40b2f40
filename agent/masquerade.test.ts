import { describe, expect, it } from "vitest";
import { masqueradeRules } from "./masquerade.ts";

describe("masqueradeRules", () => {
  it("rewrites pod traffic to each destination and never pod-to-pod traffic", () => {
    expect(masqueradeRules("10.244.0.0/16", ["172.28.0.5/24"])).toBe(
      [
        "*nat",
        ":KEMU-MASQUERADE - [0:0]",
        '-A KEMU-MASQUERADE -d 10.244.0.0/16 -m comment --comment "kemu: pod to pod, never rewritten" -j RETURN',
        '-A KEMU-MASQUERADE -s 10.244.0.0/16 -d 172.28.0.0/24 -m comment --comment "kemu: pods to 172.28.0.0/24 leave as the node" -j MASQUERADE',
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  it("with no destinations only empties the chain", () => {
    expect(masqueradeRules("10.244.0.0/16", [])).toBe("*nat\n:KEMU-MASQUERADE - [0:0]\nCOMMIT\n");
  });

  it("refuses a bad CIDR", () => {
    expect(() => masqueradeRules("10.244.0.0/16", ["nope"])).toThrow();
  });
});
