import { describe, expect, it } from "vitest";
import {
  duplicate,
  formatFieldError,
  formatInvalidMessage,
  goQuote,
  invalid,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isValidPortName,
  nameIsDNSSubdomain,
  notSupported,
  parseCIDR,
  required,
  semanticEqual,
  tooLong,
  validateCIDR,
  validateIP,
  validateObjectMeta,
  validatePortNumber,
} from "./validation.ts";

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

describe("error bodies", () => {
  it("prints values the way field.Error does", () => {
    expect(required("spec.containers[0].image").message).toBe("Required value");
    expect(required("metadata.name", "name or generateName is required").message).toBe(
      "Required value: name or generateName is required",
    );
    expect(invalid("x", 70000, "must be between 1 and 65535, inclusive").message).toBe(
      "Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    expect(invalid("x", null, "d").message).toBe("Invalid value: null: d");
    expect(duplicate("spec.containers[1].name", "web").message).toBe('Duplicate value: "web"');
    expect(notSupported("spec.restartPolicy", "Foo", ["Always", "OnFailure", "Never"]).message).toBe(
      'Unsupported value: "Foo": supported values: "Always", "OnFailure", "Never"',
    );
    expect(tooLong("metadata.annotations", 262144).message).toBe(
      "Too long: may not be more than 262144 bytes",
    );
    expect(invalid("f", ["a", "b"], "d").message).toBe('Invalid value: []string{"a", "b"}: d');
  });

  it("quotes like Go's %q", () => {
    expect(goQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(goQuote("tab\there\n")).toBe('"tab\\there\\n"');
    expect(goQuote("\x01é")).toBe('"\\x01é"');
  });
});

describe("formatInvalidMessage", () => {
  const nameErr = invalid("metadata.name", "Bad_Name", SUBDOMAIN_MSG);
  const imageErr = required("spec.containers[0].image");

  it("prints a single error without brackets", () => {
    expect(formatInvalidMessage("Pod", "web", [imageErr])).toBe(
      'Pod "web" is invalid: spec.containers[0].image: Required value',
    );
  });

  it("brackets several errors, de-duplicated", () => {
    expect(formatInvalidMessage("Pod", "Bad_Name", [nameErr, imageErr, imageErr])).toBe(
      `Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": ${SUBDOMAIN_MSG}, spec.containers[0].image: Required value]`,
    );
  });

  it("collapses duplicates of one error to the unbracketed form", () => {
    expect(formatInvalidMessage("Pod", "web", [imageErr, imageErr])).toBe(
      'Pod "web" is invalid: spec.containers[0].image: Required value',
    );
  });

  it("qualifies kinds outside the core group and handles no errors", () => {
    expect(formatInvalidMessage("Lease", "l", [], "coordination.k8s.io")).toBe(
      'Lease.coordination.k8s.io "l" is invalid',
    );
    expect(formatFieldError(imageErr)).toBe("spec.containers[0].image: Required value");
  });
});

describe("names", () => {
  it("checks DNS-1123 subdomains", () => {
    expect(isDNS1123Subdomain("example.com")).toEqual([]);
    expect(isDNS1123Subdomain("Bad_Name")).toEqual([SUBDOMAIN_MSG]);
    expect(isDNS1123Subdomain("a".repeat(254))).toEqual(["must be no more than 253 characters"]);
  });

  it("checks DNS-1123 labels, with the dots special case", () => {
    expect(isDNS1123Label("web-1")).toEqual([]);
    expect(isDNS1123Label("a.b")).toEqual(["must not contain dots"]);
    expect(isDNS1123Label("-x")).toEqual([LABEL_MSG]);
    expect(isDNS1123Label("a".repeat(64))).toEqual(["must be no more than 63 characters"]);
  });

  it("checks DNS-1035 labels", () => {
    expect(isDNS1035Label("svc")).toEqual([]);
    expect(isDNS1035Label("1svc")).toEqual([
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ]);
  });

  it("lets a generateName end in a dash", () => {
    expect(nameIsDNSSubdomain("web-", true)).toEqual([]);
    expect(nameIsDNSSubdomain("web-", false)).toEqual([SUBDOMAIN_MSG]);
  });
});

describe("ports", () => {
  it("checks numbers", () => {
    expect(validatePortNumber(70000, "p")).toEqual([
      {
        reason: "FieldValueInvalid",
        field: "p",
        message: "Invalid value: 70000: must be between 1 and 65535, inclusive",
      },
    ]);
    expect(validatePortNumber(80, "p")).toEqual([]);
  });

  it("checks IANA service names", () => {
    expect(isValidPortName("http")).toEqual([]);
    expect(isValidPortName("a-very-long-port-name")).toEqual(["must be no more than 15 characters"]);
    expect(isValidPortName("8080")).toEqual(["must contain at least one letter (a-z)"]);
    expect(isValidPortName("-a--b")).toEqual([
      "must not contain consecutive hyphens",
      "must not begin or end with a hyphen",
    ]);
    expect(isValidPortName("HTTP")).toEqual([
      "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
      "must contain at least one letter (a-z)",
    ]);
  });
});

describe("IPs and CIDRs", () => {
  it("parses both families", () => {
    expect(parseCIDR("10.0.0.0/24")).toMatchObject({ family: 4, prefix: 24, hostBits: false });
    expect(parseCIDR("10.0.0.1/24")).toMatchObject({ hostBits: true });
    expect(parseCIDR("fd00:10:244::/64")).toMatchObject({ family: 6, prefix: 64, hostBits: false });
    expect(parseCIDR("10.0.0.0/33")).toBeUndefined();
    expect(parseCIDR("10.0.0.0")).toBeUndefined();
  });

  it("rejects CIDRs as upstream does", () => {
    const msg = (v: string) => validateCIDR(v, "spec.podCIDRs[0]").map((e) => e.message);
    expect(msg("10.244.1.0/24")).toEqual([]);
    expect(msg("2001:db8::/64")).toEqual([]);
    expect(msg("bogus")).toEqual([
      'Invalid value: "bogus": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ]);
    expect(msg("10.0.0.1/24")).toEqual([
      'Invalid value: "10.0.0.1/24": must not have bits set beyond the prefix length',
    ]);
    expect(msg("010.0.0.0/24")).toEqual([
      'Invalid value: "010.0.0.0/24": must not have leading 0s in IP or prefix length',
    ]);
    expect(msg("::ffff:10.0.0.0/120")).toEqual([
      'Invalid value: "::ffff:10.0.0.0/120": must not have an IPv4-mapped IPv6 address',
    ]);
  });

  it("rejects IPs as upstream does", () => {
    expect(validateIP("10.1.2.3", "ip")).toEqual([]);
    expect(validateIP("fe80::1", "ip")).toEqual([]);
    expect(validateIP("300.1.1.1", "ip")[0].message).toBe(
      'Invalid value: "300.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    );
    expect(validateIP("10.01.1.1", "ip")[0].message).toBe(
      'Invalid value: "10.01.1.1": must not have leading 0s',
    );
  });
});

describe("validateObjectMeta", () => {
  const opts = { namespaced: true, nameValidator: nameIsDNSSubdomain };

  it("requires a name or generateName", () => {
    expect(validateObjectMeta({ namespace: "default" }, opts)).toEqual([
      {
        reason: "FieldValueRequired",
        field: "metadata.name",
        message: "Required value: name or generateName is required",
      },
    ]);
    expect(validateObjectMeta({ generateName: "web-", namespace: "default" }, opts)).toEqual([]);
  });

  it("requires a namespace iff namespaced", () => {
    expect(validateObjectMeta({ name: "a" }, opts).map(formatFieldError)).toEqual([
      "metadata.namespace: Required value",
    ]);
    expect(
      validateObjectMeta({ name: "a", namespace: "x" }, { ...opts, namespaced: false }).map(formatFieldError),
    ).toEqual(["metadata.namespace: Forbidden: not allowed on this type"]);
  });

  it("checks labels, annotations and their total size", () => {
    const errs = validateObjectMeta(
      {
        name: "a",
        namespace: "default",
        labels: { app: "web", "bad key": "v" },
        annotations: { "Example.com/Key": "ok", big: "x".repeat(256 * 1024) },
      },
      opts,
    );
    expect(errs.map((e) => e.field)).toEqual(["metadata.labels", "metadata.annotations"]);
    expect(errs[0].message).toMatch(/^Invalid value: "bad key": name part must consist of/);
    expect(errs[1]).toEqual(tooLong("metadata.annotations", 262144));
  });

  it("checks finalizers and owner references", () => {
    const errs = validateObjectMeta(
      {
        name: "a",
        namespace: "default",
        finalizers: ["foo"],
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "", uid: "u" }],
      },
      { ...opts, kubeFinalizers: true },
    );
    expect(errs.map(formatFieldError)).toEqual([
      'metadata.ownerReferences.name: Invalid value: "": must not be empty',
      'metadata.finalizers[0]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified',
    ]);
  });
});

describe("semanticEqual", () => {
  it("treats absent and zero values alike", () => {
    expect(semanticEqual({ a: [], b: "", c: { d: 0 } }, {})).toBe(true);
    expect(semanticEqual({ a: [1] }, { a: [1] })).toBe(true);
    expect(semanticEqual({ a: [1] }, { a: [2] })).toBe(false);
    expect(semanticEqual({ a: "x" }, {})).toBe(false);
  });
});
