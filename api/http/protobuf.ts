// Request bodies in the Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf), decoded into
// the JSON objects the same client would have sent as JSON. kubectl's typed "create" generators
// (`kubectl create namespace|deployment|service|configmap|secret ...`) send protobuf whenever the server
// advertises it, and nothing else in kemu speaks protobuf, so this is a decoder only.
//
// The body is the 4-byte magic "k8s\0" and then a runtime.Unknown message whose typeMeta names the kind
// and whose raw field holds the object's own message. A small wire-format reader walks that message
// with a schema table below: message name -> field number -> [json name, type, ...flags]. The field
// numbers come from upstream's generated.proto files (k8s.io/apimachinery meta/v1 and runtime,
// k8s.io/api core/v1 and apps/v1).
//
// Only tabled fields are decoded. Any other field (one we never tabled, a newer one, managedFields,
// volumes, probes, ...) is skipped by its wire type, so an exotic field a client sets is dropped
// rather than misread. Kinds without a schema are refused with a message asking for JSON.
//
// Turning Go's protobuf (gogo-protobuf, as Kubernetes uses it) back into Go's JSON:
// - Go encodes every non-pointer field, zero values included, and pointer fields only when set.
// - Go's JSON drops zero strings/numbers/bools with `omitempty` (most fields), keeps the non-omitempty
//   ones (Container.name, ContainerPort.containerPort, ...) and keeps pointer fields whenever set.
//   So a scalar field is emitted when non-zero, or when flagged "keep" (a non-omitempty field, or a
//   pointer field whose presence on the wire means it was set, e.g. Deployment replicas: 0).
// - `omitempty` never drops a struct, and a nil pointer is simply not on the wire, so a message field
//   present on the wire is always emitted, empty or not ("status": {}, "resources": {}), which is what
//   kubectl's own JSON contains. A meta/v1 Time left zero is encoded as an empty message and becomes
//   null, as Go writes it ("creationTimestamp": null).
// - Repeated fields and maps are emitted only when they have entries (nil and empty look alike here).

export const PROTOBUF_MEDIA_TYPE = "application/vnd.kubernetes.protobuf";

const MAGIC = [0x6b, 0x38, 0x73, 0x00]; // "k8s\0"

export class ProtobufError extends Error {
  /** "malformed": the bytes are not a valid body; "unsupported": a valid body of a kind we have no schema for. */
  readonly reason: "malformed" | "unsupported";
  constructor(message: string, reason: "malformed" | "unsupported" = "malformed") {
    super(message);
    this.name = "ProtobufError";
    this.reason = reason;
  }
}

/** True for the Kubernetes protobuf media type, parameters and case aside. */
export function isProtobufMediaType(type: string): boolean {
  return type.split(";")[0].trim().toLowerCase() === PROTOBUF_MEDIA_TYPE;
}

// ---------------------------------------------------------------------------------------------------
// Schema table

type MapValue = "string" | "bytes" | "quantity";
type FieldType =
  | "string"
  | "int32"
  | "int64"
  | "bool"
  | "bytes" // base64 in JSON
  | "time" // meta/v1 Time: seconds=1, nanos=2 -> RFC 3339 in UTC, whole seconds
  | "intOrString" // util/intstr IntOrString: type=1 (0 int, 1 string), intVal=2, strVal=3
  | "quantity" // api/resource Quantity: string=1
  | `message:${string}`
  | `map<string,${MapValue}>`;
type Flag = "repeated" | "keep";
type FieldDef = readonly [json: string, type: FieldType, ...flags: Flag[]];
type MessageDef = Readonly<Record<number, FieldDef>>;

const OBJECT_META = "message:ObjectMeta";

export const SCHEMAS: Readonly<Record<string, MessageDef>> = {
  // k8s.io/apimachinery/pkg/apis/meta/v1
  ObjectMeta: {
    1: ["name", "string"],
    2: ["generateName", "string"],
    3: ["namespace", "string"],
    4: ["selfLink", "string"],
    5: ["uid", "string"],
    6: ["resourceVersion", "string"],
    7: ["generation", "int64"],
    8: ["creationTimestamp", "time"],
    9: ["deletionTimestamp", "time"],
    10: ["deletionGracePeriodSeconds", "int64", "keep"],
    11: ["labels", "map<string,string>"],
    12: ["annotations", "map<string,string>"],
    13: ["ownerReferences", "message:OwnerReference", "repeated"],
    14: ["finalizers", "string", "repeated"],
    // 17 managedFields is not tabled: clients do not send it on create.
  },
  OwnerReference: {
    5: ["apiVersion", "string", "keep"],
    1: ["kind", "string", "keep"],
    3: ["name", "string", "keep"],
    4: ["uid", "string", "keep"],
    6: ["controller", "bool", "keep"],
    7: ["blockOwnerDeletion", "bool", "keep"],
  },
  LabelSelector: {
    1: ["matchLabels", "map<string,string>"],
    2: ["matchExpressions", "message:LabelSelectorRequirement", "repeated"],
  },
  LabelSelectorRequirement: {
    1: ["key", "string", "keep"],
    2: ["operator", "string", "keep"],
    3: ["values", "string", "repeated"],
  },
  DeleteOptions: {
    1: ["gracePeriodSeconds", "int64", "keep"],
    2: ["preconditions", "message:Preconditions"],
    3: ["orphanDependents", "bool", "keep"],
    4: ["propagationPolicy", "string", "keep"],
    5: ["dryRun", "string", "repeated"],
  },
  Preconditions: {
    1: ["uid", "string", "keep"],
    2: ["resourceVersion", "string", "keep"],
  },

  // k8s.io/api/core/v1
  Namespace: {
    1: ["metadata", OBJECT_META],
    2: ["spec", "message:NamespaceSpec"],
    3: ["status", "message:NamespaceStatus"],
  },
  NamespaceSpec: {
    1: ["finalizers", "string", "repeated"],
  },
  NamespaceStatus: {
    1: ["phase", "string"],
  },
  ConfigMap: {
    1: ["metadata", OBJECT_META],
    2: ["data", "map<string,string>"],
    3: ["binaryData", "map<string,bytes>"],
    4: ["immutable", "bool", "keep"],
  },
  Secret: {
    1: ["metadata", OBJECT_META],
    2: ["data", "map<string,bytes>"],
    4: ["stringData", "map<string,string>"],
    3: ["type", "string"],
    5: ["immutable", "bool", "keep"],
  },
  Pod: {
    1: ["metadata", OBJECT_META],
    2: ["spec", "message:PodSpec"],
    3: ["status", "message:PodStatus"],
  },
  PodTemplateSpec: {
    1: ["metadata", OBJECT_META],
    2: ["spec", "message:PodSpec"],
  },
  PodSpec: {
    20: ["initContainers", "message:Container", "repeated"],
    2: ["containers", "message:Container", "repeated"],
    3: ["restartPolicy", "string"],
    4: ["terminationGracePeriodSeconds", "int64", "keep"],
    5: ["activeDeadlineSeconds", "int64", "keep"],
    6: ["dnsPolicy", "string"],
    7: ["nodeSelector", "map<string,string>"],
    8: ["serviceAccountName", "string"],
    9: ["serviceAccount", "string"],
    21: ["automountServiceAccountToken", "bool", "keep"],
    10: ["nodeName", "string"],
    11: ["hostNetwork", "bool"],
    12: ["hostPID", "bool"],
    13: ["hostIPC", "bool"],
    27: ["shareProcessNamespace", "bool", "keep"],
    15: ["imagePullSecrets", "message:LocalObjectReference", "repeated"],
    16: ["hostname", "string"],
    17: ["subdomain", "string"],
    19: ["schedulerName", "string"],
    22: ["tolerations", "message:Toleration", "repeated"],
    24: ["priorityClassName", "string"],
    25: ["priority", "int32", "keep"],
    30: ["enableServiceLinks", "bool", "keep"],
  },
  PodStatus: {
    1: ["phase", "string"],
    3: ["message", "string"],
    4: ["reason", "string"],
    11: ["nominatedNodeName", "string"],
    5: ["hostIP", "string"],
    6: ["podIP", "string"],
    9: ["qosClass", "string"],
  },
  Container: {
    1: ["name", "string", "keep"],
    2: ["image", "string"],
    3: ["command", "string", "repeated"],
    4: ["args", "string", "repeated"],
    5: ["workingDir", "string"],
    6: ["ports", "message:ContainerPort", "repeated"],
    7: ["env", "message:EnvVar", "repeated"],
    8: ["resources", "message:ResourceRequirements"],
    13: ["terminationMessagePath", "string"],
    20: ["terminationMessagePolicy", "string"],
    14: ["imagePullPolicy", "string"],
    16: ["stdin", "bool"],
    17: ["stdinOnce", "bool"],
    18: ["tty", "bool"],
  },
  ContainerPort: {
    1: ["name", "string"],
    2: ["hostPort", "int32"],
    3: ["containerPort", "int32", "keep"],
    4: ["protocol", "string"],
    5: ["hostIP", "string"],
  },
  EnvVar: {
    1: ["name", "string", "keep"],
    2: ["value", "string"],
    // 3 valueFrom is not tabled.
  },
  ResourceRequirements: {
    1: ["limits", "map<string,quantity>"],
    2: ["requests", "map<string,quantity>"],
  },
  LocalObjectReference: {
    1: ["name", "string"],
  },
  Toleration: {
    1: ["key", "string"],
    2: ["operator", "string"],
    3: ["value", "string"],
    4: ["effect", "string"],
    5: ["tolerationSeconds", "int64", "keep"],
  },
  Service: {
    1: ["metadata", OBJECT_META],
    2: ["spec", "message:ServiceSpec"],
    3: ["status", "message:ServiceStatus"],
  },
  ServiceSpec: {
    1: ["ports", "message:ServicePort", "repeated"],
    2: ["selector", "map<string,string>"],
    3: ["clusterIP", "string"],
    18: ["clusterIPs", "string", "repeated"],
    4: ["type", "string"],
    5: ["externalIPs", "string", "repeated"],
    7: ["sessionAffinity", "string"],
    8: ["loadBalancerIP", "string"],
    9: ["loadBalancerSourceRanges", "string", "repeated"],
    10: ["externalName", "string"],
    11: ["externalTrafficPolicy", "string"],
    12: ["healthCheckNodePort", "int32"],
    13: ["publishNotReadyAddresses", "bool"],
    14: ["sessionAffinityConfig", "message:SessionAffinityConfig"],
    19: ["ipFamilies", "string", "repeated"],
    17: ["ipFamilyPolicy", "string", "keep"],
    20: ["allocateLoadBalancerNodePorts", "bool", "keep"],
    21: ["loadBalancerClass", "string", "keep"],
    22: ["internalTrafficPolicy", "string", "keep"],
  },
  ServicePort: {
    1: ["name", "string"],
    2: ["protocol", "string"],
    6: ["appProtocol", "string", "keep"],
    3: ["port", "int32", "keep"],
    4: ["targetPort", "intOrString"],
    5: ["nodePort", "int32"],
  },
  SessionAffinityConfig: {
    1: ["clientIP", "message:ClientIPConfig"],
  },
  ClientIPConfig: {
    1: ["timeoutSeconds", "int32", "keep"],
  },
  ServiceStatus: {
    1: ["loadBalancer", "message:LoadBalancerStatus"],
  },
  LoadBalancerStatus: {
    1: ["ingress", "message:LoadBalancerIngress", "repeated"],
  },
  LoadBalancerIngress: {
    1: ["ip", "string"],
    2: ["hostname", "string"],
  },
  Binding: {
    1: ["metadata", OBJECT_META],
    2: ["target", "message:ObjectReference"],
  },
  ObjectReference: {
    1: ["kind", "string"],
    2: ["namespace", "string"],
    3: ["name", "string"],
    4: ["uid", "string"],
    5: ["apiVersion", "string"],
    6: ["resourceVersion", "string"],
    7: ["fieldPath", "string"],
  },

  // k8s.io/api/apps/v1
  Deployment: {
    1: ["metadata", OBJECT_META],
    2: ["spec", "message:DeploymentSpec"],
    3: ["status", "message:DeploymentStatus"],
  },
  DeploymentSpec: {
    1: ["replicas", "int32", "keep"],
    2: ["selector", "message:LabelSelector"],
    3: ["template", "message:PodTemplateSpec"],
    4: ["strategy", "message:DeploymentStrategy"],
    5: ["minReadySeconds", "int32"],
    6: ["revisionHistoryLimit", "int32", "keep"],
    7: ["paused", "bool"],
    9: ["progressDeadlineSeconds", "int32", "keep"],
  },
  DeploymentStrategy: {
    1: ["type", "string"],
    2: ["rollingUpdate", "message:RollingUpdateDeployment"],
  },
  RollingUpdateDeployment: {
    1: ["maxUnavailable", "intOrString"],
    2: ["maxSurge", "intOrString"],
  },
  DeploymentStatus: {
    1: ["observedGeneration", "int64"],
    2: ["replicas", "int32"],
    3: ["updatedReplicas", "int32"],
    7: ["readyReplicas", "int32"],
    4: ["availableReplicas", "int32"],
    5: ["unavailableReplicas", "int32"],
    8: ["collisionCount", "int32", "keep"],
    // 6 conditions is not tabled.
  },
};

/** "apiVersion kind" -> top-level message. */
const KINDS: Readonly<Record<string, string>> = {
  "v1 Namespace": "Namespace",
  "v1 ConfigMap": "ConfigMap",
  "v1 Secret": "Secret",
  "v1 Pod": "Pod",
  "v1 Service": "Service",
  "v1 Binding": "Binding",
  "apps/v1 Deployment": "Deployment",
};

/** Option kinds that meta/v1 registers into every group version. */
const OPTION_KINDS: ReadonlySet<string> = new Set(["DeleteOptions"]);

// ---------------------------------------------------------------------------------------------------
// Wire format

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const MAX_FIELD_NUMBER = 2 ** 29 - 1;
const utf8 = new TextDecoder("utf-8"); // replaces invalid bytes with U+FFFD, as Go's JSON encoder does

class Reader {
  readonly buf: Uint8Array;
  readonly what: string;
  pos = 0;
  constructor(buf: Uint8Array, what: string) {
    this.buf = buf;
    this.what = what;
  }

  eof(): boolean {
    return this.pos >= this.buf.length;
  }

  private byte(): number {
    if (this.pos >= this.buf.length) throw new ProtobufError(`truncated varint in ${this.what}`);
    return this.buf[this.pos++];
  }

  varint(): bigint {
    // Four bytes (28 bits) fit a small integer; longer values continue in BigInt.
    let small = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = this.byte();
      small |= (b & 0x7f) << shift;
      if (b < 0x80) return BigInt(small);
    }
    let value = BigInt(small);
    for (let shift = 28n; shift < 70n; shift += 7n) {
      const b = this.byte();
      if (shift === 63n && b > 1) throw new ProtobufError(`varint overflows 64 bits in ${this.what}`);
      value |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return value;
    }
    throw new ProtobufError(`varint longer than 10 bytes in ${this.what}`);
  }

  /** A field tag: [field number, wire type]. */
  tag(): [number, number] {
    const tag = this.varint();
    const field = tag >> 3n;
    if (field === 0n || field > BigInt(MAX_FIELD_NUMBER))
      throw new ProtobufError(`invalid field number ${field} in ${this.what}`);
    return [Number(field), Number(tag & 7n)];
  }

  /** The payload of a length-delimited field. */
  bytes(): Uint8Array {
    const len = this.varint();
    if (len > BigInt(this.buf.length - this.pos))
      throw new ProtobufError(`truncated field in ${this.what}: length ${len} runs past the end`);
    const start = this.pos;
    this.pos += Number(len);
    return this.buf.subarray(start, this.pos);
  }

  private fixed(size: number): void {
    if (this.buf.length - this.pos < size)
      throw new ProtobufError(`truncated fixed-width field in ${this.what}`);
    this.pos += size;
  }

  skip(wire: number, field: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.fixed(8);
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_I32:
        this.fixed(4);
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${wire} for field ${field} in ${this.what}`);
    }
  }
}

function toInt64(v: bigint, where: string): number {
  const n = BigInt.asIntN(64, v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER))
    throw new ProtobufError(`${where}: int64 value ${n} does not fit a JSON number exactly`);
  return Number(n);
}

function toInt32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function decodeTime(buf: Uint8Array, where: string): string | null {
  // Go writes a zero Time as an empty message and reads it back as zero, which JSON renders as null.
  if (buf.length === 0) return null;
  const r = new Reader(buf, where);
  let seconds = 0n;
  while (!r.eof()) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WIRE_VARINT) seconds = BigInt.asIntN(64, r.varint());
    else r.skip(wire, field); // nanos: metav1.Time's JSON has whole seconds only
  }
  const date = new Date(Number(seconds) * 1000);
  const year = date.getUTCFullYear();
  if (Number.isNaN(date.getTime()) || year < 0 || year > 9999)
    throw new ProtobufError(`${where}: time ${seconds}s is outside years 0000-9999`);
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function decodeIntOrString(buf: Uint8Array, where: string): number | string {
  const r = new Reader(buf, where);
  let type = 0n;
  let intVal = 0;
  let strVal = "";
  while (!r.eof()) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WIRE_VARINT) type = r.varint();
    else if (field === 2 && wire === WIRE_VARINT) intVal = toInt32(r.varint());
    else if (field === 3 && wire === WIRE_LEN) strVal = utf8.decode(r.bytes());
    else r.skip(wire, field);
  }
  if (type === 0n) return intVal;
  if (type === 1n) return strVal;
  throw new ProtobufError(`${where}: IntOrString has unknown type ${type}`);
}

function decodeQuantity(buf: Uint8Array, where: string): string {
  const r = new Reader(buf, where);
  let value = "";
  while (!r.eof()) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WIRE_LEN) value = utf8.decode(r.bytes());
    else r.skip(wire, field);
  }
  // Passed through as written; Go would canonicalize it ("0.1" -> "100m"). A zero Quantity is "0".
  return value || "0";
}

function decodeMapEntry(buf: Uint8Array, valueType: MapValue, where: string): [string, unknown] {
  const r = new Reader(buf, where);
  let key = "";
  let value: unknown;
  while (!r.eof()) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WIRE_LEN) key = utf8.decode(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) {
      const bytes = r.bytes();
      value =
        valueType === "string"
          ? utf8.decode(bytes)
          : valueType === "bytes"
            ? base64(bytes)
            : decodeQuantity(bytes, where);
    } else r.skip(wire, field);
  }
  return [key, value ?? (valueType === "quantity" ? "0" : "")];
}

/** A Go scalar's zero value, which `omitempty` drops. Time, IntOrString and Quantity are structs: never dropped. */
function isOmittedZero(type: FieldType, value: unknown): boolean {
  if (type === "time" || type === "intOrString" || type === "quantity") return false;
  return value === "" || value === 0 || value === false;
}

/** Reads one scalar (non-message) value of a field whose wire type has already been checked. */
function readScalar(r: Reader, type: FieldType, where: string): unknown {
  switch (type) {
    case "string":
      return utf8.decode(r.bytes());
    case "bytes":
      return base64(r.bytes());
    case "int32":
      return toInt32(r.varint());
    case "int64":
      return toInt64(r.varint(), where);
    case "bool":
      return r.varint() !== 0n;
    case "time":
      return decodeTime(r.bytes(), where);
    case "intOrString":
      return decodeIntOrString(r.bytes(), where);
    case "quantity":
      return decodeQuantity(r.bytes(), where);
    default:
      throw new Error(`unhandled protobuf field type ${type}`);
  }
}

function isVarintType(type: FieldType): boolean {
  return type === "int32" || type === "int64" || type === "bool";
}

function append(into: Record<string, unknown>, json: string, value: unknown): void {
  const list = (into[json] ?? []) as unknown[];
  list.push(value);
  into[json] = list;
}

function decodeMessage(
  buf: Uint8Array,
  name: string,
  into: Record<string, unknown> = {},
): Record<string, unknown> {
  const def = SCHEMAS[name];
  if (!def) throw new Error(`protobuf schema names unknown message ${name}`);
  const r = new Reader(buf, name);
  while (!r.eof()) {
    const [field, wire] = r.tag();
    const fd = def[field];
    if (!fd) {
      r.skip(wire, field);
      continue;
    }
    const [json, type, ...flags] = fd;
    const repeated = flags.includes("repeated");
    const where = `${name}.${json}`;
    // No tabled field is a repeated number, so packed encoding never applies.
    const expected = isVarintType(type) ? WIRE_VARINT : WIRE_LEN;
    if (wire !== expected)
      throw new ProtobufError(`${where} (field ${field}) has wire type ${wire}, expected ${expected}`);

    if (type.startsWith("map<")) {
      const valueType = type.slice("map<string,".length, -1) as MapValue;
      const [key, value] = decodeMapEntry(r.bytes(), valueType, where);
      const map = (into[json] ?? {}) as Record<string, unknown>;
      // defineProperty keeps a "__proto__" key as data, the way JSON.parse does.
      Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
      into[json] = map;
      continue;
    }
    if (type.startsWith("message:")) {
      const sub = type.slice("message:".length);
      const bytes = r.bytes();
      if (repeated) append(into, json, decodeMessage(bytes, sub));
      else {
        // A message field seen twice merges, as protobuf specifies.
        const existing = into[json];
        into[json] = decodeMessage(
          bytes,
          sub,
          existing && typeof existing === "object" ? (existing as Record<string, unknown>) : {},
        );
      }
      continue;
    }
    const value = readScalar(r, type, where);
    if (repeated) append(into, json, value);
    else if (isOmittedZero(type, value) && !flags.includes("keep")) delete into[json];
    else into[json] = value;
  }
  return into;
}

// ---------------------------------------------------------------------------------------------------
// Envelope

interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
  contentEncoding: string;
  contentType: string;
}

function decodeEnvelope(buf: Uint8Array): Envelope {
  const env: Envelope = {
    apiVersion: "",
    kind: "",
    raw: new Uint8Array(),
    contentEncoding: "",
    contentType: "",
  };
  const r = new Reader(buf, "runtime.Unknown");
  while (!r.eof()) {
    const [field, wire] = r.tag();
    if (wire !== WIRE_LEN || field > 4) {
      r.skip(wire, field);
      continue;
    }
    const bytes = r.bytes();
    if (field === 1) {
      const t = new Reader(bytes, "runtime.TypeMeta");
      while (!t.eof()) {
        const [f, w] = t.tag();
        if (f === 1 && w === WIRE_LEN) env.apiVersion = utf8.decode(t.bytes());
        else if (f === 2 && w === WIRE_LEN) env.kind = utf8.decode(t.bytes());
        else t.skip(w, f);
      }
    } else if (field === 2) env.raw = bytes;
    else if (field === 3) env.contentEncoding = utf8.decode(bytes);
    else env.contentType = utf8.decode(bytes);
  }
  return env;
}

/**
 * Decodes a Kubernetes protobuf request body into the JSON object the client would have sent, with
 * apiVersion and kind taken from the envelope. Throws ProtobufError for malformed bytes
 * (reason "malformed") and for kinds without a schema (reason "unsupported").
 */
export function decodeKubeProtobuf(body: Uint8Array): {
  apiVersion: string;
  kind: string;
  object: Record<string, unknown>;
} {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b))
    throw new ProtobufError("not a Kubernetes protobuf body: it does not start with the k8s\\0 prefix");
  const env = decodeEnvelope(body.subarray(MAGIC.length));
  if (!env.kind) throw new ProtobufError("the protobuf envelope does not name a kind");
  if (env.contentEncoding)
    throw new ProtobufError(`unsupported protobuf content encoding ${JSON.stringify(env.contentEncoding)}`);
  if (env.contentType && !isProtobufMediaType(env.contentType))
    throw new ProtobufError(
      `unsupported content type ${JSON.stringify(env.contentType)} inside the protobuf envelope`,
    );
  const message =
    KINDS[`${env.apiVersion} ${env.kind}`] ?? (OPTION_KINDS.has(env.kind) ? env.kind : undefined);
  if (!message)
    throw new ProtobufError(
      `no protobuf schema for ${env.apiVersion ? `${env.apiVersion} ` : ""}${env.kind}; send JSON instead`,
      "unsupported",
    );
  const fields = decodeMessage(env.raw, message);
  return {
    apiVersion: env.apiVersion,
    kind: env.kind,
    object: { kind: env.kind, apiVersion: env.apiVersion, ...fields },
  };
}
