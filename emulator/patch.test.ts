import { describe, expect, it } from "vitest";
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  type MergeKeys,
  PatchError,
} from "./patch.ts";

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/** Every `$…` key anywhere in a value; strategic merge results must have none. */
function directiveKeys(v: unknown, path = ""): string[] {
  if (Array.isArray(v)) return v.flatMap((item, i) => directiveKeys(item, `${path}[${i}]`));
  if (typeof v !== "object" || v === null) return [];
  return Object.entries(v).flatMap(([k, child]) => [
    ...(k.startsWith("$") ? [`${path}.${k}`] : []),
    ...directiveKeys(child, `${path}.${k}`),
  ]);
}

function patchError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PatchError);
    return (e as Error).message;
  }
  throw new Error("expected a PatchError");
}

describe("applyMergePatch (RFC 7386 appendix A)", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)("merges %j with %j", (target, patch, expected) => {
    expect(applyMergePatch(deepFreeze(target), deepFreeze(patch))).toEqual(expected);
  });

  it("merges a kubectl --type merge label change", () => {
    const pod = deepFreeze({
      metadata: { name: "p", labels: { app: "web", old: "x" } },
      spec: { nodeName: "n1" },
    });
    expect(applyMergePatch(pod, { metadata: { labels: { old: null, tier: "fe" } } })).toEqual({
      metadata: { name: "p", labels: { app: "web", tier: "fe" } },
      spec: { nodeName: "n1" },
    });
  });

  it("returns a result that shares nothing with its inputs", () => {
    const target = { a: { b: [1] } };
    const patch = { c: { d: [2] } };
    const out = applyMergePatch(target, patch);
    out.a.b.push(9);
    out.c.d.push(9);
    expect(target).toEqual({ a: { b: [1] } });
    expect(patch).toEqual({ c: { d: [2] } });
  });

  it("keeps __proto__ as plain data", () => {
    const out = applyMergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}'));
    expect(({} as any).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, "__proto__")).toBe(true);
  });
});

describe("applyJsonPatch (RFC 6902)", () => {
  it("adds object members, array elements and appends with '-'", () => {
    const doc = deepFreeze({ foo: "bar", list: ["a", "c"] });
    expect(
      applyJsonPatch(doc, [
        { op: "add", path: "/baz", value: "qux" },
        { op: "add", path: "/list/1", value: "b" },
        { op: "add", path: "/list/-", value: "d" },
        { op: "add", path: "/list/4", value: "e" },
      ]),
    ).toEqual({ foo: "bar", baz: "qux", list: ["a", "b", "c", "d", "e"] });
  });

  it("replaces an existing member on add and the whole document on an empty path", () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: "add", path: "/a", value: 2 }])).toEqual({ a: 2 });
    expect(applyJsonPatch({ a: 1 }, [{ op: "add", path: "", value: [1] }])).toEqual([1]);
    expect(applyJsonPatch({ a: 1 }, [{ op: "replace", path: "", value: { b: 2 } }])).toEqual({ b: 2 });
  });

  it("removes and replaces", () => {
    const doc = deepFreeze({ metadata: { labels: { a: "1", b: "2" } }, spec: { items: [1, 2, 3] } });
    expect(
      applyJsonPatch(doc, [
        { op: "remove", path: "/metadata/labels/a" },
        { op: "remove", path: "/spec/items/1" },
        { op: "replace", path: "/spec/items/0", value: 10 },
        { op: "replace", path: "/metadata/labels/b", value: "two" },
      ]),
    ).toEqual({ metadata: { labels: { b: "two" } }, spec: { items: [10, 3] } });
  });

  it("moves and copies", () => {
    const doc = deepFreeze({
      foo: { bar: "baz", waldo: "fred" },
      qux: { corge: "grault" },
      list: [1, 2, 3, 4],
    });
    expect(
      applyJsonPatch(doc, [
        { op: "move", from: "/foo/waldo", path: "/qux/thud" },
        { op: "move", from: "/list/1", path: "/list/3" },
        { op: "copy", from: "/qux", path: "/copied" },
      ]),
    ).toEqual({
      foo: { bar: "baz" },
      qux: { corge: "grault", thud: "fred" },
      list: [1, 3, 4, 2],
      copied: { corge: "grault", thud: "fred" },
    });
  });

  it("copies by value, not by reference", () => {
    const out = applyJsonPatch({ a: { x: 1 } }, [{ op: "copy", from: "/a", path: "/b" }]);
    out.b.x = 2;
    expect(out.a.x).toBe(1);
  });

  it("tests values with JSON equality", () => {
    const doc = { a: { b: [1, { c: "d" }] }, n: null };
    expect(applyJsonPatch(doc, [{ op: "test", path: "/a", value: { b: [1, { c: "d" }] } }])).toEqual(doc);
    expect(applyJsonPatch(doc, [{ op: "test", path: "/n", value: null }])).toEqual(doc);
    expect(patchError(() => applyJsonPatch(doc, [{ op: "test", path: "/a/b/0", value: "1" }]))).toBe(
      "testing value /a/b/0 failed",
    );
  });

  it("decodes ~1 and ~0 in pointers, in that order", () => {
    const doc = { metadata: { annotations: { "example.com/a~b": "x", "~1": "y" } } };
    expect(
      applyJsonPatch(doc, [
        { op: "replace", path: "/metadata/annotations/example.com~1a~0b", value: "z" },
        { op: "remove", path: "/metadata/annotations/~01" },
      ]),
    ).toEqual({ metadata: { annotations: { "example.com/a~b": "z" } } });
  });

  it("names the failing operation and path", () => {
    const doc = { spec: { list: [1] } };
    expect(patchError(() => applyJsonPatch(doc, [{ op: "replace", path: "/spec/foo", value: 1 }]))).toBe(
      "replace operation does not apply: doc is missing key: /spec/foo",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "replace", path: "/nope/foo", value: 1 }]))).toBe(
      "replace operation does not apply: doc is missing path: /nope/foo",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "/a/b", value: 1 }]))).toBe(
      "add operation does not apply: doc is missing path: /a/b",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "/spec/list/5", value: 1 }]))).toBe(
      "add operation does not apply: invalid index: /spec/list/5",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "/spec/list/01", value: 1 }]))).toBe(
      "add operation does not apply: invalid index: /spec/list/01",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "remove", path: "/spec/list/1" }]))).toBe(
      "remove operation does not apply: doc is missing path: /spec/list/1",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "remove", path: "/spec/list/-" }]))).toBe(
      "remove operation does not apply: doc is missing path: /spec/list/-",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "move", from: "/x", path: "/y" }]))).toBe(
      "move operation does not apply: doc is missing from path: /x",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "move", from: "/spec", path: "/spec/inner" }]))).toBe(
      "move operation does not apply: cannot move /spec into its own child /spec/inner",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "copy", from: "/x", path: "/y" }]))).toBe(
      "copy operation does not apply: doc is missing from path: /x",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "/a" }]))).toBe(
      "add operation does not apply: missing value",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "a", value: 1 }]))).toBe(
      "add operation does not apply: invalid JSON pointer: a",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "add", path: "/a~2", value: 1 }]))).toBe(
      "add operation does not apply: invalid JSON pointer: /a~2",
    );
    expect(patchError(() => applyJsonPatch(doc, [{ op: "frob", path: "/a" }]))).toBe(
      'unexpected kind of JSON patch operation: "frob"',
    );
    expect(patchError(() => applyJsonPatch(doc, { op: "add" }))).toBe(
      "a JSON patch must be a list of operations",
    );
  });

  it("is atomic and never mutates its input", () => {
    const doc = deepFreeze({ a: [1, 2], b: { c: 1 } });
    expect(() =>
      applyJsonPatch(doc, [
        { op: "add", path: "/a/-", value: 3 },
        { op: "test", path: "/b/c", value: 2 },
      ]),
    ).toThrow(PatchError);
    expect(doc).toEqual({ a: [1, 2], b: { c: 1 } });
  });
});

describe("applyStrategicMergePatch", () => {
  // Patch metadata as the Pod kind declares it (upstream patchMergeKey tags).
  const mergeKeys: MergeKeys = {
    "metadata.finalizers": "",
    "metadata.ownerReferences": "uid",
    "spec.containers": "name",
    "spec.containers.ports": "containerPort",
    "spec.containers.env": "name",
    "spec.volumes": "name",
  };

  const pod = deepFreeze({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "web",
      labels: { app: "web", track: "stable" },
      finalizers: ["example.com/a", "example.com/b"],
    },
    spec: {
      nodeSelector: { disk: "hdd", zone: "a" },
      tolerations: [{ key: "k1", operator: "Exists" }],
      containers: [
        {
          name: "app",
          image: "app:1",
          env: [{ name: "A", value: "1" }],
          ports: [
            { name: "http", containerPort: 80, protocol: "TCP" },
            { name: "metrics", containerPort: 9090, protocol: "TCP" },
          ],
        },
        { name: "sidecar", image: "envoy:1" },
      ],
    },
  });

  const smp = (patch: unknown, target: unknown = pod) => {
    const out = applyStrategicMergePatch(target, deepFreeze(patch), mergeKeys);
    expect(directiveKeys(out)).toEqual([]);
    return out;
  };

  describe("realistic kubectl apply patches", () => {
    it("changes one container image and keeps the container order", () => {
      const out = smp({
        spec: {
          "$setElementOrder/containers": [{ name: "app" }, { name: "sidecar" }],
          containers: [{ image: "app:2", name: "app" }],
        },
      });
      expect(out.spec.containers.map((c: any) => [c.name, c.image])).toEqual([
        ["app", "app:2"],
        ["sidecar", "envoy:1"],
      ]);
      expect(out.spec.containers[0].ports).toEqual(pod.spec.containers[0].ports);
    });

    it("changes the second container, which without $setElementOrder still stays in place", () => {
      const out = smp({ spec: { containers: [{ image: "envoy:2", name: "sidecar" }] } });
      expect(out.spec.containers.map((c: any) => [c.name, c.image])).toEqual([
        ["app", "app:1"],
        ["sidecar", "envoy:2"],
      ]);
    });

    it("adds an env var at the position $setElementOrder gives", () => {
      const out = smp({
        spec: {
          "$setElementOrder/containers": [{ name: "app" }, { name: "sidecar" }],
          containers: [
            {
              "$setElementOrder/env": [{ name: "A" }, { name: "B" }],
              env: [{ name: "B", value: "2" }],
              name: "app",
            },
          ],
        },
      });
      expect(out.spec.containers[0].env).toEqual([
        { name: "A", value: "1" },
        { name: "B", value: "2" },
      ]);
    });

    it("puts new list items first without $setElementOrder, as upstream does", () => {
      const out = smp({ spec: { containers: [{ name: "debug", image: "busybox" }] } });
      expect(out.spec.containers.map((c: any) => c.name)).toEqual(["debug", "app", "sidecar"]);
    });

    it("deletes a port by merge key with $patch: delete", () => {
      const out = smp({
        spec: {
          "$setElementOrder/containers": [{ name: "app" }, { name: "sidecar" }],
          containers: [
            {
              "$setElementOrder/ports": [{ containerPort: 80 }],
              name: "app",
              ports: [{ $patch: "delete", containerPort: 9090 }],
            },
          ],
        },
      });
      expect(out.spec.containers[0].ports).toEqual([{ name: "http", containerPort: 80, protocol: "TCP" }]);
      expect(out.spec.containers[0].image).toBe("app:1");
    });

    it("deletes a whole container", () => {
      const out = smp({ spec: { containers: [{ $patch: "delete", name: "sidecar" }] } });
      expect(out.spec.containers.map((c: any) => c.name)).toEqual(["app"]);
    });

    it("adds a finalizer at the end with $setElementOrder", () => {
      const out = smp({
        metadata: {
          "$setElementOrder/finalizers": ["example.com/a", "example.com/b", "example.com/c"],
          finalizers: ["example.com/c"],
        },
      });
      expect(out.metadata.finalizers).toEqual(["example.com/a", "example.com/b", "example.com/c"]);
    });

    it("adds a finalizer as a set union with kubectl patch", () => {
      expect(
        smp({ metadata: { finalizers: ["example.com/c", "example.com/a"] } }).metadata.finalizers,
      ).toEqual(["example.com/c", "example.com/a", "example.com/b"]);
      expect(smp({ metadata: { finalizers: ["example.com/b"] } }).metadata.finalizers).toEqual([
        "example.com/a",
        "example.com/b",
      ]);
    });

    it("removes a finalizer with $deleteFromPrimitiveList", () => {
      const out = smp({
        metadata: {
          "$deleteFromPrimitiveList/finalizers": ["example.com/a"],
          "$setElementOrder/finalizers": ["example.com/b"],
        },
      });
      expect(out.metadata.finalizers).toEqual(["example.com/b"]);
    });

    it("replaces one finalizer with another in a single apply", () => {
      const out = smp({
        metadata: {
          "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
          "$setElementOrder/finalizers": ["example.com/a", "example.com/c"],
          finalizers: ["example.com/c"],
        },
      });
      expect(out.metadata.finalizers).toEqual(["example.com/a", "example.com/c"]);
    });

    it("removes a label with null and adds another", () => {
      const out = smp({ metadata: { labels: { track: null, version: "v2" } } });
      expect(out.metadata.labels).toEqual({ app: "web", version: "v2" });
    });

    it("switches a Deployment strategy with $retainKeys", () => {
      const deployment = {
        spec: {
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          replicas: 2,
        },
      };
      const out = smp({ spec: { strategy: { $retainKeys: ["type"], type: "Recreate" } } }, deployment);
      expect(out.spec).toEqual({ strategy: { type: "Recreate" }, replicas: 2 });
    });
  });

  describe("maps", () => {
    it("merges nested maps and deletes keys with null", () => {
      const out = smp({ spec: { nodeSelector: { disk: "ssd", zone: null } } });
      expect(out.spec.nodeSelector).toEqual({ disk: "ssd" });
    });

    it("replaces a map whole with $patch: replace", () => {
      expect(smp({ spec: { nodeSelector: { $patch: "replace", gpu: "yes" } } }).spec.nodeSelector).toEqual({
        gpu: "yes",
      });
    });

    it("empties an existing map with $patch: delete and omits a new one", () => {
      const out = smp({ spec: { nodeSelector: { $patch: "delete" }, affinity: { $patch: "delete" } } });
      expect(out.spec.nodeSelector).toEqual({});
      expect(Object.hasOwn(out.spec, "affinity")).toBe(false);
    });

    it("empties the whole object with a top-level $patch: delete", () => {
      expect(smp({ $patch: "delete" })).toEqual({});
    });

    it("lets the patch win when the types differ", () => {
      expect(smp({ spec: { nodeSelector: "x" } }).spec.nodeSelector).toBe("x");
      expect(smp({ metadata: { name: { first: "a", skip: null } } }).metadata.name).toEqual({ first: "a" });
    });

    it("strips nulls and directives from values that have nothing to merge into", () => {
      const out = smp({
        spec: {
          securityContext: { runAsUser: 1000, fsGroup: null, $retainKeys: ["runAsUser"] },
          volumes: [
            { name: "data", emptyDir: {} },
            { $patch: "delete", name: "gone" },
          ],
        },
      });
      expect(out.spec.securityContext).toEqual({ runAsUser: 1000 });
      expect(out.spec.volumes).toEqual([{ name: "data", emptyDir: {} }]);
    });

    it("rejects keys outside $retainKeys and unknown $patch values", () => {
      expect(
        patchError(() =>
          applyStrategicMergePatch(
            pod,
            { spec: { strategy: { $retainKeys: ["type"], other: 1 } } },
            mergeKeys,
          ),
        ),
      ).toBe("invalid patch format of retainKeys");
      expect(
        patchError(() =>
          applyStrategicMergePatch(pod, { spec: { nodeSelector: { $patch: "frob" } } }, mergeKeys),
        ),
      ).toBe('unknown patch type: frob in map: {"$patch":"frob"}');
    });
  });

  describe("lists", () => {
    it("replaces lists without merge metadata whole", () => {
      const out = smp({ spec: { tolerations: [{ key: "k2", operator: "Equal", value: "v" }] } });
      expect(out.spec.tolerations).toEqual([{ key: "k2", operator: "Equal", value: "v" }]);
      const args = smp(
        { spec: { containers: [{ name: "app", args: ["--b"] }] } },
        {
          spec: { containers: [{ name: "app", args: ["--a"] }] },
        },
      );
      expect(args.spec.containers[0].args).toEqual(["--b"]);
    });

    it("replaces a merge list with a $patch: replace element", () => {
      const out = smp({ spec: { containers: [{ $patch: "replace" }, { name: "only", image: "x" }] } });
      expect(out.spec.containers).toEqual([{ name: "only", image: "x" }]);
    });

    it("merges matching elements recursively under nested paths", () => {
      const out = smp({
        spec: {
          containers: [
            {
              name: "app",
              env: [{ name: "A", value: "changed" }],
              ports: [{ containerPort: 80, name: "web" }],
            },
          ],
        },
      });
      expect(out.spec.containers[0].env).toEqual([{ name: "A", value: "changed" }]);
      expect(out.spec.containers[0].ports[0]).toEqual({ name: "web", containerPort: 80, protocol: "TCP" });
      expect(out.spec.containers[0].ports).toHaveLength(2);
    });

    it("interleaves server-only items by their live position (upstream mergeSortedSlice)", () => {
      const target = { spec: { containers: [{ name: "a" }, { name: "b" }, { name: "c" }, { name: "d" }] } };
      // A server-only item goes before the next patch item only if it came first in the live list:
      // a (0) < d (3) and c (2) < d (3), so both precede the reordered d, b.
      const out = smp({ spec: { "$setElementOrder/containers": [{ name: "d" }, { name: "b" }] } }, target);
      expect(out.spec.containers.map((c: any) => c.name)).toEqual(["a", "c", "d", "b"]);
      const out2 = smp({ spec: { "$setElementOrder/containers": [{ name: "b" }, { name: "a" }] } }, target);
      expect(out2.spec.containers.map((c: any) => c.name)).toEqual(["b", "a", "c", "d"]);
    });

    it("creates a list that did not exist, following $setElementOrder", () => {
      const out = smp(
        {
          metadata: { "$setElementOrder/finalizers": ["y", "x"], finalizers: ["y", "x"] },
          spec: {
            "$setElementOrder/volumes": [{ name: "v1" }],
            volumes: [{ name: "v1", secret: { secretName: "s" } }],
          },
        },
        { metadata: {}, spec: {} },
      );
      expect(out.metadata.finalizers).toEqual(["y", "x"]);
      expect(out.spec.volumes).toEqual([{ name: "v1", secret: { secretName: "s" } }]);
    });

    it("deduplicates primitive merge lists", () => {
      expect(
        smp({ metadata: { finalizers: ["x", "x"] } }, { metadata: { finalizers: ["x"] } }).metadata
          .finalizers,
      ).toEqual(["x"]);
    });

    it("reports missing merge keys and mismatched orders", () => {
      expect(
        patchError(() =>
          applyStrategicMergePatch(pod, { spec: { containers: [{ image: "x" }] } }, mergeKeys),
        ),
      ).toBe('map: {"image":"x"} does not contain declared merge key: name');
      expect(
        patchError(() =>
          applyStrategicMergePatch(
            pod,
            { spec: { "$setElementOrder/containers": [{ name: "app" }], containers: [{ name: "sidecar" }] } },
            mergeKeys,
          ),
        ),
      ).toMatch(/^The order in patch list:/);
      expect(
        patchError(() =>
          applyStrategicMergePatch(
            pod,
            { spec: { containers: [{ name: "a", $patch: "merge" }] } },
            mergeKeys,
          ),
        ),
      ).toBe("merging lists cannot yet be specified in the patch");
      expect(
        patchError(() => applyStrategicMergePatch(pod, { metadata: { finalizers: [1, "a"] } }, mergeKeys)),
      ).toBe("list element types are not identical at metadata.finalizers");
      expect(patchError(() => applyStrategicMergePatch(pod, [], mergeKeys))).toBe(
        "a strategic merge patch must be a JSON object",
      );
    });
  });

  it("never mutates or aliases its inputs", () => {
    const target = structuredClone(pod);
    const patch = { spec: { containers: [{ name: "new", env: [{ name: "X", value: "1" }] }] } };
    const out = applyStrategicMergePatch(target, patch, mergeKeys);
    out.spec.containers[0].env[0].value = "mutated";
    out.spec.containers[1].image = "mutated";
    expect(patch.spec.containers[0].env[0].value).toBe("1");
    expect(target).toEqual(pod);
  });
});
