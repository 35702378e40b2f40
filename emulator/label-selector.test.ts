import { describe, expect, it } from "vitest";
import {
  isEmpty,
  labelSelectorFromObject,
  labelSelectorFromSet,
  matchesLabels,
  parseLabelSelector,
  SelectorError,
  selectorToString,
  validateLabelKey,
  validateLabelValue,
} from "./label-selector.ts";

const NAME_PART_REGEX_ERR =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_REGEX_ERR =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

function parseError(s: string): string {
  try {
    parseLabelSelector(s);
  } catch (e) {
    expect(e).toBeInstanceOf(SelectorError);
    return (e as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(s)} to fail`);
}

const matches = (s: string, labels?: Record<string, string>) => matchesLabels(parseLabelSelector(s), labels);

describe("parseLabelSelector", () => {
  it("parses every operator into sorted requirements", () => {
    const sel = parseLabelSelector("z=1,y==2,x!=3,w in (b,a,b),v notin (c),u,!t,s>5,r<6");
    expect(sel.requirements).toEqual([
      { key: "r", operator: "lt", values: ["6"] },
      { key: "s", operator: "gt", values: ["5"] },
      { key: "t", operator: "!", values: [] },
      { key: "u", operator: "exists", values: [] },
      { key: "v", operator: "notin", values: ["c"] },
      { key: "w", operator: "in", values: ["a", "b"] },
      { key: "x", operator: "!=", values: ["3"] },
      { key: "y", operator: "==", values: ["2"] },
      { key: "z", operator: "=", values: ["1"] },
    ]);
  });

  it("treats the empty and all-blank strings as everything", () => {
    for (const s of ["", "   ", "\t\n"]) {
      const sel = parseLabelSelector(s);
      expect(isEmpty(sel)).toBe(true);
      expect(matchesLabels(sel, undefined)).toBe(true);
      expect(matchesLabels(sel, { a: "b" })).toBe(true);
    }
  });

  it("tolerates whitespace around tokens and parentheses without spaces", () => {
    expect(selectorToString(parseLabelSelector("  a = b ,  c   in(d , e)  , ! f "))).toBe(
      "a=b,c in (d,e),!f",
    );
    expect(selectorToString(parseLabelSelector("a!=b"))).toBe("a!=b");
  });

  it("accepts empty values where upstream does", () => {
    expect(parseLabelSelector("a=").requirements[0].values).toEqual([""]);
    expect(parseLabelSelector("a!=,b=c").requirements[0].values).toEqual([""]);
    expect(parseLabelSelector("a in ()").requirements[0].values).toEqual([""]);
    expect(parseLabelSelector("a in (,b)").requirements[0].values).toEqual(["", "b"]);
    expect(parseLabelSelector("a in (b,)").requirements[0].values).toEqual(["", "b"]);
    expect(parseLabelSelector("a in (b,,c)").requirements[0].values).toEqual(["", "b", "c"]);
  });

  it("reads in/notin as identifiers outside the operator position", () => {
    expect(parseLabelSelector("in in (in,notin)").requirements).toEqual([
      { key: "in", operator: "in", values: ["in", "notin"] },
    ]);
    expect(parseLabelSelector("notin=in").requirements).toEqual([
      { key: "notin", operator: "=", values: ["in"] },
    ]);
  });

  it("accepts prefixed keys", () => {
    expect(parseLabelSelector("app.kubernetes.io/name=web").requirements[0].key).toBe(
      "app.kubernetes.io/name",
    );
  });

  it("reports syntax errors with upstream wording", () => {
    expect(parseError("a b")).toBe(
      "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
    );
    expect(parseError("a=b c")).toBe("found 'c', expected: ',' or 'end of string'");
    expect(parseError("a=b,")).toBe("found '', expected: identifier after ','");
    expect(parseError(",a")).toBe("found ',', expected: !, identifier, or 'end of string'");
    expect(parseError("=a")).toBe("found '=', expected: !, identifier, or 'end of string'");
    expect(parseError("!a=b")).toBe("found '=', expected: ',' or 'end of string'");
    expect(parseError("a in b")).toBe("unable to parse requirement: found 'b' expected: '('");
    expect(parseError("a in (b")).toBe("unable to parse requirement: found '', expected: ',' or ')'");
    expect(parseError("a in (b c)")).toBe("unable to parse requirement: found 'c', expected: ',' or ')'");
    expect(parseError("a in (=)")).toBe(
      "unable to parse requirement: found '=', expected: ',', ')' or identifier",
    );
    expect(parseError("a in (b,=)")).toBe(
      "unable to parse requirement: found '=', expected: ',', or identifier",
    );
    expect(parseError("a==!")).toBe("unable to parse requirement: found '!', expected: identifier");
    expect(parseError("!")).toBe("unable to parse requirement: found '', expected: identifier");
  });

  it("reports invalid keys with the nil field path upstream prints", () => {
    expect(parseError("app:monolith")).toBe(
      `unable to parse requirement: <nil>: Invalid value: "app:monolith": ${NAME_PART_REGEX_ERR}`,
    );
    expect(parseError("a/b/c=d")).toBe(
      `unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    );
  });

  it("reports invalid values with the values[i][key] path", () => {
    expect(parseError("a=b@")).toBe(
      `unable to parse requirement: values[0][a]: Invalid value: "b@": ${VALUE_REGEX_ERR}`,
    );
    const long = "v".repeat(64);
    expect(parseError(`k=${long}`)).toBe(
      `unable to parse requirement: values[0][k]: Invalid value: "${long}": must be no more than 63 characters`,
    );
    expect(parseError("a in (-x,-y)")).toBe(
      `unable to parse requirement: [values[0][a]: Invalid value: "-x": ${VALUE_REGEX_ERR}, values[1][a]: Invalid value: "-y": ${VALUE_REGEX_ERR}]`,
    );
  });

  it("requires integers for gt and lt", () => {
    expect(parseError("a>b")).toBe(
      `unable to parse requirement: values[0]: Invalid value: "b": for 'Gt', 'Lt' operators, the value must be an integer`,
    );
  });
});

describe("matchesLabels", () => {
  const labels = { app: "web", tier: "frontend", replicas: "3" };

  it("matches equality and inequality", () => {
    expect(matches("app=web", labels)).toBe(true);
    expect(matches("app==web", labels)).toBe(true);
    expect(matches("app=db", labels)).toBe(false);
    expect(matches("app!=db", labels)).toBe(true);
    expect(matches("app!=web", labels)).toBe(false);
    // != and notin also match objects without the label at all.
    expect(matches("missing!=x", labels)).toBe(true);
    expect(matches("missing notin (x)", labels)).toBe(true);
  });

  it("matches set-based requirements", () => {
    expect(matches("tier in (frontend,backend)", labels)).toBe(true);
    expect(matches("tier in (backend)", labels)).toBe(false);
    expect(matches("missing in (x)", labels)).toBe(false);
    expect(matches("tier notin (frontend)", labels)).toBe(false);
  });

  it("matches existence", () => {
    expect(matches("app", labels)).toBe(true);
    expect(matches("!app", labels)).toBe(false);
    expect(matches("!missing", labels)).toBe(true);
    expect(matches("missing", labels)).toBe(false);
    expect(matches("!missing", undefined)).toBe(true);
  });

  it("distinguishes an empty value from a missing label", () => {
    expect(matches("a=", { a: "" })).toBe(true);
    expect(matches("a=", {})).toBe(false);
    expect(matches("a in ()", { a: "" })).toBe(true);
  });

  it("ANDs requirements", () => {
    expect(matches("app=web,tier=frontend", labels)).toBe(true);
    expect(matches("app=web,tier=backend", labels)).toBe(false);
  });

  it("compares gt/lt as integers and never matches non-integers", () => {
    expect(matches("replicas>2", labels)).toBe(true);
    expect(matches("replicas>3", labels)).toBe(false);
    expect(matches("replicas<10", labels)).toBe(true);
    expect(matches("app>1", labels)).toBe(false);
    expect(matches("missing<1", labels)).toBe(false);
    expect(matches("n<1", { n: "-5" })).toBe(true);
    expect(matches("n<1", { n: "99999999999999999999" })).toBe(false); // overflows int64
    // A negative bound is not a valid label value, so upstream rejects it at parse time.
    expect(parseError("n>-1")).toContain('values[0][n]: Invalid value: "-1"');
  });

  it("does not treat inherited object properties as labels", () => {
    expect(matches("constructor", {})).toBe(false);
    expect(matches("!toString", {})).toBe(true);
  });
});

describe("selectorToString", () => {
  it("prints the canonical upstream form", () => {
    expect(selectorToString(parseLabelSelector("b in (y,x), a, !c, d notin (z), e>1"))).toBe(
      "a,b in (x,y),!c,d notin (z),e>1",
    );
    expect(selectorToString(parseLabelSelector(""))).toBe("");
  });

  it("round-trips through the parser", () => {
    const s = "a=,b!=x,c in (,y),d notin (p,q),!e,f,g<3";
    const once = selectorToString(parseLabelSelector(s));
    expect(selectorToString(parseLabelSelector(once))).toBe(once);
  });
});

describe("labelSelectorFromObject", () => {
  it("selects nothing for a missing selector and everything for an empty one", () => {
    const nothing = labelSelectorFromObject(undefined);
    expect(matchesLabels(nothing, {})).toBe(false);
    expect(isEmpty(nothing)).toBe(false);
    expect(selectorToString(nothing)).toBe("");
    expect(labelSelectorFromObject(null).nothing).toBe(true);
    const everything = labelSelectorFromObject({});
    expect(isEmpty(everything)).toBe(true);
    expect(matchesLabels(everything, { any: "thing" })).toBe(true);
  });

  it("combines matchLabels and matchExpressions", () => {
    const sel = labelSelectorFromObject({
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["frontend", "edge"] },
        { key: "canary", operator: "DoesNotExist" },
        { key: "env", operator: "NotIn", values: ["dev"] },
        { key: "team", operator: "Exists", values: [] },
      ],
    });
    expect(selectorToString(sel)).toBe("app=web,!canary,env notin (dev),team,tier in (edge,frontend)");
    expect(matchesLabels(sel, { app: "web", tier: "edge", team: "x" })).toBe(true);
    expect(matchesLabels(sel, { app: "web", tier: "edge", team: "x", canary: "1" })).toBe(false);
    expect(matchesLabels(sel, { app: "web", tier: "edge" })).toBe(false);
  });

  it("rejects what metav1.LabelSelectorAsSelector rejects", () => {
    expect(() =>
      labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "Gt", values: ["1"] }] }),
    ).toThrow('"Gt" is not a valid label selector operator');
    expect(() =>
      labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "In", values: [] }] }),
    ).toThrow("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty");
    expect(() => labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "In" }] })).toThrow(
      "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    );
    expect(() =>
      labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }),
    ).toThrow('values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist');
    expect(() => labelSelectorFromObject({ matchLabels: { "bad key": "v" } })).toThrow(
      `key: Invalid value: "bad key": ${NAME_PART_REGEX_ERR}`,
    );
    expect(() => labelSelectorFromObject({ matchLabels: { k: "bad value" } })).toThrow(
      `values[0][k]: Invalid value: "bad value": ${VALUE_REGEX_ERR}`,
    );
  });
});

describe("labelSelectorFromSet", () => {
  it("builds equality requirements and treats an empty set as everything", () => {
    const sel = labelSelectorFromSet({ tier: "db", app: "web" });
    expect(selectorToString(sel)).toBe("app=web,tier=db");
    expect(matchesLabels(sel, { app: "web", tier: "db", extra: "x" })).toBe(true);
    expect(matchesLabels(sel, { app: "web" })).toBe(false);
    expect(isEmpty(labelSelectorFromSet(undefined))).toBe(true);
  });
});

describe("validateLabelKey", () => {
  it("accepts qualified names with optional DNS prefixes", () => {
    for (const k of [
      "a",
      "A-b_c.d",
      "example.com/MyName",
      "k8s.io/x",
      "a".repeat(63),
      `${"p".repeat(253)}/n`,
    ]) {
      expect(validateLabelKey(k)).toEqual([]);
    }
  });

  it("reports each broken part", () => {
    expect(validateLabelKey("")).toEqual(["name part must be non-empty", NAME_PART_REGEX_ERR]);
    expect(validateLabelKey("a".repeat(64))).toEqual(["name part must be no more than 63 characters"]);
    expect(validateLabelKey("/a")).toEqual(["prefix part must be non-empty"]);
    expect(validateLabelKey("Example.com/a")).toEqual([
      "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ]);
    expect(validateLabelKey(`${"p".repeat(254)}/a`)[0]).toBe(
      "prefix part must be no more than 253 characters",
    );
    expect(validateLabelKey("a/-b")).toEqual([NAME_PART_REGEX_ERR]);
  });
});

describe("validateLabelValue", () => {
  it("accepts empty and well-formed values", () => {
    for (const v of ["", "a", "MyValue", "my_value", "12345", "a.b-c_d", "v".repeat(63)]) {
      expect(validateLabelValue(v)).toEqual([]);
    }
  });

  it("reports bad characters and length", () => {
    expect(validateLabelValue("-a")).toEqual([VALUE_REGEX_ERR]);
    expect(validateLabelValue("a b")).toEqual([VALUE_REGEX_ERR]);
    expect(validateLabelValue("v".repeat(64))).toEqual(["must be no more than 63 characters"]);
    expect(validateLabelValue(`-${"v".repeat(63)}`)).toEqual([
      "must be no more than 63 characters",
      VALUE_REGEX_ERR,
    ]);
  });

  it("counts length in UTF-8 bytes like Go", () => {
    expect(validateLabelValue("é".repeat(32))).toContain("must be no more than 63 characters");
  });
});
