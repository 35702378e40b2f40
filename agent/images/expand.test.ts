import { describe, expect, it } from "vitest";
import { expand, expandEnv, lookupIn } from "./expand.ts";

const vars = lookupIn({ VAR_A: "A", VAR_B: "B", EMPTY: "", "odd name": "odd" });
const x = (s: string) => expand(s, vars);

// Cases from the kubelet's expansion tests (third_party/forked/golang/expansion/expand_test.go).
describe("expand", () => {
  it("substitutes defined references", () => {
    expect(x("$(VAR_A)")).toBe("A");
    expect(x("___$(VAR_B)___")).toBe("___B___");
    expect(x("$(VAR_A)-$(VAR_B)")).toBe("A-B");
    expect(x("$(VAR_A)$(VAR_B)")).toBe("AB");
    expect(x("$(EMPTY)")).toBe("");
    expect(x("$(odd name)")).toBe("odd");
  });

  it("keeps undefined references verbatim", () => {
    expect(x("$(VAR_NOPE)")).toBe("$(VAR_NOPE)");
    expect(x("foo $(VAR_NOPE) $(VAR_A)")).toBe("foo $(VAR_NOPE) A");
    expect(x("$()")).toBe("$()");
  });

  it("treats $$ as an escaped $", () => {
    expect(x("$$(VAR_A)")).toBe("$(VAR_A)");
    expect(x("$$$(VAR_A)")).toBe("$A");
    expect(x("$$$$(VAR_A)")).toBe("$$(VAR_A)");
    expect(x("$$")).toBe("$");
    expect(x("$$$")).toBe("$$");
    expect(x("foo$$bar")).toBe("foo$bar");
  });

  it("copies other operators and incomplete references", () => {
    expect(x("$VAR_A")).toBe("$VAR_A");
    const braces = "$" + "{VAR_A}"; // shell syntax, not a reference
    expect(x(braces)).toBe(braces);
    expect(x("$")).toBe("$");
    expect(x("foo$")).toBe("foo$");
    expect(x("$(VAR_A")).toBe("$(VAR_A");
    expect(x("$(")).toBe("$(");
    expect(x("$(VAR_A)$(")).toBe("A$(");
    expect(x("$((VAR_A))")).toBe("$((VAR_A))");
    expect(x("$(VAR_A))")).toBe("A)");
    expect(x("no refs")).toBe("no refs");
    expect(x("")).toBe("");
  });

  it("does not recurse into substituted values", () => {
    expect(expand("$(A)", lookupIn({ A: "$(B)", B: "b" }))).toBe("$(B)");
  });

  it("keeps non-ASCII text intact", () => {
    expect(x("é$(VAR_A)😀$😀")).toBe("éA😀$😀");
  });

  it("searches maps in order", () => {
    expect(expand("$(K)", lookupIn({}, { K: "second" }, { K: "third" }))).toBe("second");
  });
});

describe("expandEnv", () => {
  it("lets a value reference variables declared before it", () => {
    expect(expandEnv({ A: "a", B: "$(A)-b", C: "$(B)-$(D)", D: "d", E: "$$(A)" })).toEqual({
      A: "a",
      B: "a-b",
      C: "a-b-$(D)",
      D: "d",
      E: "$(A)",
    });
  });

  it("does not let a value reference itself", () => {
    expect(expandEnv({ A: "x$(A)" })).toEqual({ A: "x$(A)" });
  });

  it("falls back to base variables", () => {
    expect(expandEnv({ A: "$(SVC_HOST)" }, { SVC_HOST: "10.96.0.1" })).toEqual({ A: "10.96.0.1" });
  });
});
