import { describe, expect, it } from "vitest";
import {
  escapeFieldValue,
  exactFieldValue,
  fieldSelectorFields,
  fieldSelectorToString,
  isEmptyFieldSelector,
  matchesFields,
  parseFieldSelector,
  SelectorError,
} from "./field-selector.ts";

const pod: Record<string, string> = {
  "metadata.name": "web-1",
  "metadata.namespace": "default",
  "spec.nodeName": "node-a",
  "status.phase": "Running",
};
const get = (f: string) => pod[f];
const matches = (s: string, fields: (f: string) => string | undefined = get) =>
  matchesFields(parseFieldSelector(s), fields);

describe("parseFieldSelector", () => {
  it("parses =, == and != terms, sorted as raw strings like upstream", () => {
    expect(parseFieldSelector("status.phase==Running,metadata.name=x,spec.nodeName!=").terms).toEqual([
      { field: "metadata.name", operator: "=", value: "x" },
      { field: "spec.nodeName", operator: "!=", value: "" },
      { field: "status.phase", operator: "=", value: "Running" },
    ]);
  });

  it("treats an empty selector and empty terms as everything", () => {
    expect(isEmptyFieldSelector(parseFieldSelector(""))).toBe(true);
    expect(parseFieldSelector(",,a=b,").terms).toHaveLength(1);
    // A bare "=" has neither field nor value; upstream's Transform turns it into Everything().
    expect(isEmptyFieldSelector(parseFieldSelector("="))).toBe(true);
  });

  it("splits on the first operator, so values may start with '='", () => {
    expect(parseFieldSelector("a==b").terms[0]).toEqual({ field: "a", operator: "=", value: "b" });
    expect(parseFieldSelector("a!=b").terms[0]).toEqual({ field: "a", operator: "!=", value: "b" });
    expect(parseFieldSelector("a=\\=b").terms[0].value).toBe("=b");
  });

  it("unescapes backslash sequences and keeps escaped commas inside a term", () => {
    expect(parseFieldSelector("metadata.name=a\\,b\\=c\\\\d").terms).toEqual([
      { field: "metadata.name", operator: "=", value: "a,b=c\\d" },
    ]);
    // "\\\\," is an escaped backslash followed by a real separator.
    expect(parseFieldSelector("a=x\\\\,b=y").terms.map((t) => t.value)).toEqual(["x\\", "y"]);
  });

  it("does not trim whitespace", () => {
    expect(parseFieldSelector("metadata.name = x").terms[0]).toEqual({
      field: "metadata.name ",
      operator: "=",
      value: " x",
    });
  });

  it("rejects terms without an operator", () => {
    expect(() => parseFieldSelector("a=b,metadata.name")).toThrow(
      new SelectorError("invalid selector: 'a=b,metadata.name'; can't understand 'metadata.name'"),
    );
  });

  it("rejects bad escapes and unescaped special characters with upstream text", () => {
    expect(() => parseFieldSelector("a=b\\x")).toThrow(
      "invalid field selector: invalid escape sequence: \\x",
    );
    expect(() => parseFieldSelector("a=b\\")).toThrow("invalid field selector: invalid escape sequence: \\");
    // Go formats the rune with %v, which prints its code point.
    expect(() => parseFieldSelector("a=b=c")).toThrow(
      "invalid field selector: unescaped character in value: 61",
    );
  });
});

describe("matchesFields", () => {
  it("ANDs equality and inequality terms", () => {
    expect(matches("metadata.name=web-1")).toBe(true);
    expect(matches("metadata.name=web-2")).toBe(false);
    expect(matches("metadata.name=web-1,status.phase=Running")).toBe(true);
    expect(matches("metadata.name=web-1,status.phase!=Running")).toBe(false);
    expect(matches("")).toBe(true);
  });

  it("reads missing fields as the empty string", () => {
    const unscheduled = (f: string) => (f === "spec.nodeName" ? undefined : pod[f]);
    expect(matches("spec.nodeName=", unscheduled)).toBe(true);
    expect(matches("spec.nodeName!=", unscheduled)).toBe(false);
    expect(matches("spec.nodeName!=")).toBe(true);
  });
});

describe("fieldSelectorFields", () => {
  it("lists each mentioned field once", () => {
    expect(
      fieldSelectorFields(parseFieldSelector("spec.nodeName=a,spec.nodeName!=b,status.phase=Running")),
    ).toEqual(["spec.nodeName", "status.phase"]);
  });
});

describe("exactFieldValue", () => {
  it("returns the value pinned by an equality term", () => {
    const sel = parseFieldSelector("status.phase!=Failed,spec.nodeName=node-a");
    expect(exactFieldValue(sel, "spec.nodeName")).toBe("node-a");
    expect(exactFieldValue(sel, "status.phase")).toBeUndefined();
    expect(exactFieldValue(sel, "metadata.name")).toBeUndefined();
    expect(exactFieldValue(parseFieldSelector("spec.nodeName="), "spec.nodeName")).toBe("");
  });
});

describe("fieldSelectorToString", () => {
  it("prints a canonical, re-parseable form", () => {
    const sel = parseFieldSelector("b==x\\,y,a!=");
    expect(fieldSelectorToString(sel)).toBe("a!=,b=x\\,y");
    expect(parseFieldSelector(fieldSelectorToString(sel))).toEqual(sel);
    expect(escapeFieldValue("a\\b,c=d")).toBe("a\\\\b\\,c\\=d");
  });
});
