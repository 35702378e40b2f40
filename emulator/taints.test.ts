import { describe, expect, it } from "vitest";
import { DO_NOT_SCHEDULE_EFFECTS, tolerates, tolerationsTolerateTaint, untoleratedTaint } from "./taints.ts";
import type { Taint, Toleration } from "./types.ts";

const gpu: Taint = { key: "gpu", value: "true", effect: "NoSchedule" };
const unreachable: Taint = { key: "node.kubernetes.io/unreachable", effect: "NoExecute" };

describe("tolerates", () => {
  it.each<[string, Toleration, Taint, boolean]>([
    ["empty key + Exists tolerates everything", { operator: "Exists" }, gpu, true],
    ["empty key + Exists tolerates NoExecute too", { operator: "Exists" }, unreachable, true],
    ["empty key + Exists limited by effect", { operator: "Exists", effect: "NoExecute" }, gpu, false],
    ["Exists on the key ignores the value", { key: "gpu", operator: "Exists" }, gpu, true],
    ["Exists on another key", { key: "other", operator: "Exists" }, gpu, false],
    ["Equal matches key and value", { key: "gpu", operator: "Equal", value: "true" }, gpu, true],
    ["Equal with a different value", { key: "gpu", operator: "Equal", value: "false" }, gpu, false],
    ["operator defaults to Equal", { key: "gpu", value: "true" }, gpu, true],
    ["default Equal needs the value", { key: "gpu" }, gpu, false],
    [
      "default Equal with empty values on both sides",
      { key: "node.kubernetes.io/unreachable" },
      unreachable,
      true,
    ],
    ["empty effect matches all effects", { key: "gpu", value: "true", effect: undefined }, gpu, true],
    ["effect must match when given", { key: "gpu", value: "true", effect: "NoExecute" }, gpu, false],
    [
      "PreferNoSchedule toleration does not cover NoSchedule",
      { key: "gpu", operator: "Exists", effect: "PreferNoSchedule" },
      gpu,
      false,
    ],
    // Upstream's helper (unlike validation) lets an empty key with Equal match any key with that value.
    ["empty key + Equal matches any key with that value", { operator: "Equal", value: "true" }, gpu, true],
    ["empty key + Equal with another value", { operator: "Equal", value: "x" }, gpu, false],
  ])("%s", (_name, toleration, taint, expected) => {
    expect(tolerates(toleration, taint)).toBe(expected);
  });

  it("tolerates nothing with an unknown operator", () => {
    expect(tolerates({ key: "gpu", operator: "Gt" as never, value: "1" }, gpu)).toBe(false);
  });
});

describe("tolerationsTolerateTaint", () => {
  it("needs any one toleration to match", () => {
    expect(
      tolerationsTolerateTaint(
        [
          { key: "x", operator: "Exists" },
          { key: "gpu", operator: "Exists" },
        ],
        gpu,
      ),
    ).toBe(true);
    expect(tolerationsTolerateTaint([{ key: "x", operator: "Exists" }], gpu)).toBe(false);
    expect(tolerationsTolerateTaint([], gpu)).toBe(false);
    expect(tolerationsTolerateTaint(undefined, gpu)).toBe(false);
  });
});

describe("untoleratedTaint", () => {
  const taints: Taint[] = [{ key: "soft", effect: "PreferNoSchedule" }, gpu, unreachable];

  it("returns the first untolerated taint with a listed effect", () => {
    expect(untoleratedTaint(taints, [], DO_NOT_SCHEDULE_EFFECTS)).toBe(gpu);
    expect(untoleratedTaint(taints, [{ key: "gpu", operator: "Exists" }], DO_NOT_SCHEDULE_EFFECTS)).toBe(
      unreachable,
    );
    expect(untoleratedTaint(taints, [], ["NoExecute"])).toBe(unreachable);
    expect(untoleratedTaint(taints, [], ["PreferNoSchedule"])?.key).toBe("soft");
  });

  it("returns undefined when everything relevant is tolerated", () => {
    expect(untoleratedTaint(taints, [{ operator: "Exists" }], DO_NOT_SCHEDULE_EFFECTS)).toBeUndefined();
    expect(untoleratedTaint(undefined, undefined, DO_NOT_SCHEDULE_EFFECTS)).toBeUndefined();
    expect(untoleratedTaint(taints, [], [])).toBeUndefined();
  });
});
