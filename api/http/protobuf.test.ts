import { describe, expect, it } from "vitest";
import { ApiError } from "../errors.ts";
import { MAX_BODY_BYTES, readObject } from "./body.ts";
import { decodeKubeProtobuf, isProtobufMediaType, ProtobufError, SCHEMAS } from "./protobuf.ts";

// A tiny encoder for building test messages. Each helper returns the bytes of one field.
type Bytes = number[];

function varint(value: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wire: number): Bytes => varint((field << 3) | wire);
const int = (field: number, value: number | bigint): Bytes => [...tag(field, 0), ...varint(value)];
const bool = (field: number, value: boolean): Bytes => int(field, value ? 1 : 0);
const bytes = (field: number, data: Bytes | Uint8Array): Bytes => [
  ...tag(field, 2),
  ...varint(data.length),
  ...data,
];
const str = (field: number, s: string): Bytes => bytes(field, new TextEncoder().encode(s));
const msg = (field: number, ...parts: Bytes[]): Bytes => bytes(field, parts.flat());
const entry = (field: number, key: string, value: string): Bytes => msg(field, str(1, key), str(2, value));
const time = (field: number, seconds: number): Bytes => msg(field, int(1, seconds), int(2, 0));
const intOrInt = (field: number, n: number): Bytes => msg(field, int(1, 0), int(2, n), str(3, ""));
const intOrStr = (field: number, s: string): Bytes => msg(field, int(1, 1), int(2, 0), str(3, s));

const MAGIC = [0x6b, 0x38, 0x73, 0x00];
function envelope(apiVersion: string, kind: string, raw: Bytes, ...extra: Bytes[]): Uint8Array {
  return Uint8Array.from([
    ...MAGIC,
    ...msg(1, str(1, apiVersion), str(2, kind)),
    ...bytes(2, raw),
    ...str(3, ""),
    ...str(4, ""),
    ...extra.flat(),
  ]);
}
const decode = (apiVersion: string, kind: string, ...fields: Bytes[]) =>
  decodeKubeProtobuf(envelope(apiVersion, kind, fields.flat())).object;

/** ObjectMeta as gogo-protobuf writes it: every non-pointer field, zero or not. */
function objectMeta(field: number, name: string, ...more: Bytes[]): Bytes {
  return msg(
    field,
    str(1, name),
    str(2, ""),
    str(3, ""),
    str(4, ""),
    str(5, ""),
    str(6, ""),
    int(7, 0),
    msg(8),
    ...more,
  );
}

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

function errorOf(fn: () => unknown): ProtobufError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtobufError) return e;
    throw e;
  }
  throw new Error("expected a ProtobufError");
}

// Bodies kubectl 1.32 really sent (captured through a logging proxy), and the JSON each must become:
// the same as `kubectl create ... --dry-run=client -o json` prints for the same command.
describe("bodies captured from kubectl 1.32", () => {
  it("kubectl create namespace demo", () => {
    const hex =
      "6b3873000a0f0a02763112094e616d657370616365121c0a140a0464656d6f12001a0022002a003200380042001200" +
      "1a020a001a002200";
    expect(decodeKubeProtobuf(fromHex(hex))).toEqual({
      apiVersion: "v1",
      kind: "Namespace",
      object: {
        kind: "Namespace",
        apiVersion: "v1",
        metadata: { name: "demo", creationTimestamp: null },
        spec: {},
        status: {},
      },
    });
  });

  it("kubectl create deployment web --image=nginx --replicas=3 --port=80", () => {
    const hex =
      "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0377656212001a0022002a003200" +
      "380042005a0a0a0361707012037765621286010803120c0a0a0a0361707012037765621a6c0a1c0a0012001a002200" +
      "2a003200380042005a0a0a036170701203776562124c122e0a056e67696e7812056e67696e782a00320a0a00100018" +
      "5022002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a01" +
      "00c2010022020a00280038001a0c0800100018002000280038001a002200";
    expect(decodeKubeProtobuf(fromHex(hex)).object).toEqual({
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: "web" } },
          spec: {
            containers: [{ name: "nginx", image: "nginx", ports: [{ containerPort: 80 }], resources: {} }],
          },
        },
        strategy: {},
      },
      status: {},
    });
  });

  it("kubectl create deployment web0 --image=nginx --replicas=0 keeps the pointer field's zero", () => {
    const hex =
      "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047765623012001a0022002a0032" +
      "00380042005a0b0a03617070120477656230127c0800120d0a0b0a036170701204776562301a610a1d0a0012001a00" +
      "22002a003200380042005a0b0a03617070120477656230124012220a056e67696e7812056e67696e782a0042006a00" +
      "7200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a0028" +
      "0038001a0c0800100018002000280038001a002200";
    const spec = decodeKubeProtobuf(fromHex(hex)).object.spec as Record<string, unknown>;
    expect(spec.replicas).toBe(0);
  });

  it("kubectl create service clusterip web --tcp=80:8080 --tcp=443:https", () => {
    const hex =
      "6b3873000a0d0a027631120753657276696365128d010a1f0a0377656212001a0022002a003200380042005a0a0a03" +
      "617070120377656212660a1b0a0738302d38303830120354435018502207080010903f1a0028000a220a093434332d" +
      "6874747073120354435018bb03220b080110001a0568747470732800120a0a0361707012037765621a002209436c75" +
      "7374657249503a00420052005a00600068001a020a001a002200";
    expect(decodeKubeProtobuf(fromHex(hex)).object).toEqual({
      kind: "Service",
      apiVersion: "v1",
      metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
      spec: {
        ports: [
          { name: "80-8080", protocol: "TCP", port: 80, targetPort: 8080 },
          { name: "443-https", protocol: "TCP", port: 443, targetPort: "https" },
        ],
        selector: { app: "web" },
        type: "ClusterIP",
      },
      status: { loadBalancer: {} },
    });
  });

  it("kubectl create configmap and secret generic", () => {
    const configMap =
      "6b3873000a0f0a0276311209436f6e6669674d617012270a130a0363666712001a0022002a00320038004200120" +
      "60a016112013112080a0162120374776f1a002200";
    expect(decodeKubeProtobuf(fromHex(configMap)).object).toEqual({
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: { name: "cfg", creationTimestamp: null },
      data: { a: "1", b: "two" },
    });
    const secret =
      "6b3873000a0c0a0276311206536563726574122b0a130a0373656312001a0022002a00320038004200120c0a0270" +
      "7712067333637265741a064f70617175651a002200";
    expect(decodeKubeProtobuf(fromHex(secret)).object).toEqual({
      kind: "Secret",
      apiVersion: "v1",
      metadata: { name: "sec", creationTimestamp: null },
      data: { pw: Buffer.from("s3cret").toString("base64") },
      type: "Opaque",
    });
  });
});

describe("decodeKubeProtobuf", () => {
  it("decodes a Namespace with labels, annotations, owner references and timestamps", () => {
    const obj = decode(
      "v1",
      "Namespace",
      objectMeta(
        1,
        "team-a",
        time(9, 1795529726),
        int(10, 0),
        entry(11, "kubernetes.io/metadata.name", "team-a"),
        entry(11, "tier", "web"),
        entry(12, "note", "hello"),
        msg(
          13,
          str(5, "v1"),
          str(1, "ConfigMap"),
          str(3, "owner"),
          str(4, "uid-1"),
          bool(6, true),
          bool(7, false),
        ),
        str(14, "example.com/cleanup"),
      ),
      msg(2, str(1, "kubernetes")),
      msg(3, str(1, "Active")),
    );
    expect(obj).toEqual({
      kind: "Namespace",
      apiVersion: "v1",
      metadata: {
        name: "team-a",
        creationTimestamp: null,
        deletionTimestamp: "2026-11-24T14:15:26Z",
        deletionGracePeriodSeconds: 0,
        labels: { "kubernetes.io/metadata.name": "team-a", tier: "web" },
        annotations: { note: "hello" },
        ownerReferences: [
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            name: "owner",
            uid: "uid-1",
            controller: true,
            blockOwnerDeletion: false,
          },
        ],
        finalizers: ["example.com/cleanup"],
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  });

  it("decodes a hand-built Deployment like kubectl create deployment writes, with a rolling update", () => {
    const labels = entry(11, "app", "web");
    const container = msg(
      2,
      str(1, "nginx"),
      str(2, "nginx"),
      str(5, ""),
      msg(6, str(1, ""), int(2, 0), int(3, 80), str(4, ""), str(5, "")),
      msg(8, msg(1, str(1, "cpu"), msg(2, str(1, "500m"))), msg(2, str(1, "memory"), msg(2, str(1, "64Mi")))),
      str(13, "/dev/termination-log"),
      str(14, "IfNotPresent"),
      bool(16, false),
      str(20, "File"),
      msg(10, msg(1, msg(1, str(1, "true")))), // livenessProbe: not tabled, dropped
    );
    const obj = decode(
      "apps/v1",
      "Deployment",
      objectMeta(1, "web", labels),
      msg(
        2,
        int(1, 3),
        msg(2, entry(1, "app", "web"), msg(2, str(1, "tier"), str(2, "In"), str(3, "a"))),
        msg(
          3,
          objectMeta(1, "", labels),
          msg(2, container, str(3, "Always"), int(4, 30), str(6, "ClusterFirst"), entry(7, "disk", "ssd")),
        ),
        msg(4, str(1, "RollingUpdate"), msg(2, intOrStr(1, "25%"), intOrInt(2, 1))),
        int(5, 0),
        int(6, 10),
        bool(7, false),
        int(9, 600),
      ),
      msg(3, int(1, 0), int(2, 0)),
    );
    expect(obj).toEqual({
      kind: "Deployment",
      apiVersion: "apps/v1",
      metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
      spec: {
        replicas: 3,
        selector: {
          matchLabels: { app: "web" },
          matchExpressions: [{ key: "tier", operator: "In", values: ["a"] }],
        },
        template: {
          metadata: { creationTimestamp: null, labels: { app: "web" } },
          spec: {
            containers: [
              {
                name: "nginx",
                image: "nginx",
                ports: [{ containerPort: 80 }],
                resources: { limits: { cpu: "500m" }, requests: { memory: "64Mi" } },
                terminationMessagePath: "/dev/termination-log",
                imagePullPolicy: "IfNotPresent",
                terminationMessagePolicy: "File",
              },
            ],
            restartPolicy: "Always",
            terminationGracePeriodSeconds: 30,
            dnsPolicy: "ClusterFirst",
            nodeSelector: { disk: "ssd" },
          },
        },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: 1 } },
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
      },
      status: {},
    });
  });

  it("decodes a Service whose targetPort is a number or a name", () => {
    const obj = decode(
      "v1",
      "Service",
      objectMeta(1, "web"),
      msg(
        2,
        msg(1, str(1, "http"), str(2, "TCP"), int(3, 80), intOrInt(4, 8080), int(5, 0)),
        msg(1, str(1, "https"), str(2, "TCP"), int(3, 443), intOrStr(4, "https"), int(5, 30443)),
        msg(1, str(1, "empty"), str(2, "UDP"), int(3, 53), msg(4)),
        entry(2, "app", "web"),
        str(3, "None"),
        str(4, "NodePort"),
        str(7, "ClientIP"),
        msg(14, msg(1, int(1, 10800))),
        str(17, "SingleStack"),
        str(19, "IPv4"),
        bool(20, false),
      ),
    );
    expect(obj.spec).toEqual({
      ports: [
        { name: "http", protocol: "TCP", port: 80, targetPort: 8080 },
        { name: "https", protocol: "TCP", port: 443, targetPort: "https", nodePort: 30443 },
        { name: "empty", protocol: "UDP", port: 53, targetPort: 0 },
      ],
      selector: { app: "web" },
      clusterIP: "None",
      type: "NodePort",
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      ipFamilyPolicy: "SingleStack",
      ipFamilies: ["IPv4"],
      allocateLoadBalancerNodePorts: false,
    });
  });

  it("decodes ConfigMap binary data, Secret string data and a set immutable: false", () => {
    const cm = decode(
      "v1",
      "ConfigMap",
      objectMeta(1, "c"),
      msg(3, str(1, "bin"), bytes(2, [0, 255, 1])),
      bool(4, false),
    );
    expect(cm).toMatchObject({ binaryData: { bin: "AP8B" }, immutable: false });
    const secret = decode(
      "v1",
      "Secret",
      objectMeta(1, "s"),
      entry(4, "user", "admin"),
      str(3, ""),
      bool(5, true),
    );
    expect(secret).toEqual({
      kind: "Secret",
      apiVersion: "v1",
      metadata: { name: "s", creationTimestamp: null },
      stringData: { user: "admin" },
      immutable: true,
    });
  });

  it("decodes Pod, Binding and DeleteOptions", () => {
    const pod = decode(
      "v1",
      "Pod",
      objectMeta(1, "p"),
      msg(
        2,
        msg(
          2,
          str(1, "c"),
          str(3, "sleep"),
          str(4, "3600"),
          msg(7, str(1, "A"), str(2, "1")),
          msg(7, str(1, "B"), str(2, "")),
        ),
      ),
    );
    expect(pod.spec).toEqual({
      containers: [
        { name: "c", command: ["sleep"], args: ["3600"], env: [{ name: "A", value: "1" }, { name: "B" }] },
      ],
    });
    const binding = decode("v1", "Binding", objectMeta(1, "p"), msg(2, str(1, "Node"), str(3, "node-1")));
    expect(binding.target).toEqual({ kind: "Node", name: "node-1" });
    const del = decode(
      "v1",
      "DeleteOptions",
      int(1, 0),
      msg(2, str(1, "uid-1")),
      str(4, "Foreground"),
      str(5, "All"),
    );
    expect(del).toEqual({
      kind: "DeleteOptions",
      apiVersion: "v1",
      gracePeriodSeconds: 0,
      preconditions: { uid: "uid-1" },
      propagationPolicy: "Foreground",
      dryRun: ["All"],
    });
    // meta/v1 registers DeleteOptions in every group version.
    expect(decode("apps/v1", "DeleteOptions", bool(3, true))).toMatchObject({ orphanDependents: true });
  });

  it("decodes int32 and int64 exactly, including negatives written as 10-byte varints", () => {
    const big = 2 ** 53 - 1;
    const obj = decode("v1", "Namespace", objectMeta(1, "n", int(10, -5)), msg(99));
    expect((obj.metadata as Record<string, unknown>).deletionGracePeriodSeconds).toBe(-5);
    expect((decode("v1", "Namespace", objectMeta(1, "n", int(7, big))).metadata as any).generation).toBe(big);
    expect(decode("v1", "DeleteOptions", int(1, -30)).gracePeriodSeconds).toBe(-30);
    const svc = decode("v1", "Service", msg(2, msg(1, int(3, -1))));
    expect((svc.spec as any).ports[0].port).toBe(-1);
    expect(errorOf(() => decode("v1", "Namespace", objectMeta(1, "n", int(7, 2n ** 60n)))).message).toMatch(
      /ObjectMeta.generation: int64 value 1152921504606846976 does not fit a JSON number exactly/,
    );
  });

  it("skips unknown fields of every wire type, at the top and inside messages", () => {
    const unknowns = [
      ...int(200, 7),
      ...tag(201, 1),
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      ...str(202, "ignored"),
      ...tag(203, 5),
      ...[1, 2, 3, 4],
    ];
    const obj = decode(
      "v1",
      "ConfigMap",
      unknowns,
      objectMeta(1, "c", unknowns),
      unknowns,
      entry(2, "k", "v"),
    );
    expect(obj).toEqual({
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: { name: "c", creationTimestamp: null },
      data: { k: "v" },
    });
    // Unknown envelope fields are skipped too.
    const env = envelope("v1", "ConfigMap", objectMeta(1, "c"), int(9, 1), str(10, "x"));
    expect(decodeKubeProtobuf(env).object.metadata).toEqual({ name: "c", creationTimestamp: null });
  });

  it("keeps a __proto__ map key as plain data", () => {
    const obj = decode("v1", "ConfigMap", entry(2, "__proto__", "x"));
    const data = obj.data as Record<string, unknown>;
    expect(Object.keys(data)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(obj)).data).toEqual(JSON.parse('{"__proto__":"x"}'));
  });

  it("merges a message field that appears twice and lets a later scalar win", () => {
    const obj = decode(
      "v1",
      "ConfigMap",
      msg(1, str(1, "a")),
      msg(1, entry(11, "x", "y")),
      msg(1, str(1, "b")),
    );
    expect(obj.metadata).toEqual({ name: "b", labels: { x: "y" } });
  });

  it("refuses kinds it has no schema for", () => {
    const e = errorOf(() => decode("apps/v1", "StatefulSet", objectMeta(1, "s")));
    expect(e.message).toBe("no protobuf schema for apps/v1 StatefulSet; send JSON instead");
    expect(e.reason).toBe("unsupported");
    expect(errorOf(() => decode("v2", "Namespace")).reason).toBe("unsupported");
  });

  it("rejects malformed bodies with a clear error", () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.from([0x7b, 0x7d]), /does not start with the k8s\\0 prefix/],
      [Uint8Array.from(MAGIC), /does not name a kind/],
      [Uint8Array.from([...MAGIC, 0x0a]), /truncated varint in runtime.Unknown/],
      [Uint8Array.from([...MAGIC, 0x0a, 0x10, 0x0a]), /truncated field in runtime.Unknown: length 16/],
      [envelope("v1", "Namespace", [0x0a, 0x05, 0x0a, 0x03, 0x61]), /truncated field in Namespace/],
      [envelope("v1", "Namespace", objectMeta(1, "n").slice(0, -2)), /truncated field in Namespace/],
      [envelope("v1", "Namespace", msg(1, [0x38, 0x80])), /truncated varint in ObjectMeta/],
      [
        envelope("v1", "Namespace", msg(1, int(1, 5))),
        /ObjectMeta.name \(field 1\) has wire type 0, expected 2/,
      ],
      [
        envelope("v1", "Namespace", msg(1, str(7, "1"))),
        /ObjectMeta.generation \(field 7\) has wire type 2, expected 0/,
      ],
      [
        envelope("v1", "Namespace", [...tag(50, 3), ...tag(50, 4)]),
        /unsupported wire type 3 for field 50 in Namespace/,
      ],
      [envelope("v1", "Namespace", [...tag(50, 6), 0]), /unsupported wire type 6/],
      [envelope("v1", "Namespace", [0x02, 0x00]), /invalid field number 0 in Namespace/],
      [envelope("v1", "Namespace", [...tag(51, 1), 1, 2, 3]), /truncated fixed-width field in Namespace/],
      [envelope("v1", "Namespace", [0x38, ...Array(10).fill(0xff), 0x01]), /varint overflows 64 bits/],
      [envelope("v1", "Namespace", [0x38, ...Array(9).fill(0x80), 0x80, 0x01]), /varint/],
      [envelope("v1", "Service", msg(2, msg(1, msg(4, int(1, 2))))), /IntOrString has unknown type 2/],
      [envelope("v1", "Namespace", objectMeta(1, "n", msg(9, int(1, 2 ** 40)))), /outside years 0000-9999/],
      [envelope("v1", "Namespace", [], str(3, "gzip")), /unsupported protobuf content encoding "gzip"/],
      [
        envelope("v1", "Namespace", [], str(4, "application/json")),
        /unsupported content type "application\/json"/,
      ],
    ];
    for (const [body, pattern] of cases) {
      const e = errorOf(() => decodeKubeProtobuf(body));
      expect(e.reason).toBe("malformed");
      expect(e.message).toMatch(pattern);
    }
  });

  it("recognizes the protobuf media type", () => {
    expect(isProtobufMediaType("application/vnd.kubernetes.protobuf")).toBe(true);
    expect(isProtobufMediaType("Application/Vnd.Kubernetes.Protobuf; charset=binary")).toBe(true);
    expect(isProtobufMediaType("application/json")).toBe(false);
    expect(isProtobufMediaType("application/vnd.kubernetes.protobuf+json")).toBe(false);
  });

  it("has a consistent schema table", () => {
    for (const [name, def] of Object.entries(SCHEMAS)) {
      const names = new Set<string>();
      for (const [json, type, ...flags] of Object.values(def)) {
        expect(names.has(json), `${name}.${json} is tabled twice`).toBe(false);
        names.add(json);
        if (type.startsWith("message:")) expect(SCHEMAS[type.slice(8)], `${name}.${json}`).toBeDefined();
        // The decoder does not handle packed encoding, so no repeated field may be a number.
        if (flags.includes("repeated")) expect(["int32", "int64", "bool"]).not.toContain(type);
      }
    }
  });
});

describe("readObject with protobuf bodies", () => {
  const request = (body: Uint8Array | string, type = "application/vnd.kubernetes.protobuf") =>
    new Request("http://kemu.test/api/v1/namespaces", {
      method: "POST",
      headers: { "content-type": type },
      body,
    });
  const apiError = async (p: Promise<unknown>): Promise<ApiError> => {
    try {
      await p;
    } catch (e) {
      if (e instanceof ApiError) return e;
      throw e;
    }
    throw new Error("expected an ApiError");
  };

  it("returns the decoded object with apiVersion and kind from the envelope", async () => {
    const body = envelope("v1", "Namespace", objectMeta(1, "demo"), []);
    expect(await readObject(request(body))).toEqual({
      kind: "Namespace",
      apiVersion: "v1",
      metadata: { name: "demo", creationTimestamp: null },
    });
  });

  it("answers 415 for kinds without a schema, 400 for malformed or empty bodies, 413 past the limit", async () => {
    const unsupported = await apiError(readObject(request(envelope("batch/v1", "Job", []))));
    expect([unsupported.code, unsupported.reason]).toEqual([415, "UnsupportedMediaType"]);
    expect(unsupported.message).toBe("no protobuf schema for batch/v1 Job; send JSON instead");
    const malformed = await apiError(readObject(request(Uint8Array.from([...MAGIC, 0x0a, 0x10]))));
    expect(malformed.code).toBe(400);
    expect(malformed.message).toMatch(/^couldn't decode the protobuf body: truncated field/);
    expect((await apiError(readObject(request(new Uint8Array())))).code).toBe(400);
    const huge = new Uint8Array(MAX_BODY_BYTES + 1);
    expect((await apiError(readObject(request(huge)))).code).toBe(413);
  });

  it("still reads JSON", async () => {
    expect(await readObject(request('{"kind":"Namespace"}', "application/json"))).toEqual({
      kind: "Namespace",
    });
  });
});
