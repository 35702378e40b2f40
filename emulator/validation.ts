// Field validation with upstream's wording. Every helper returns FieldError values whose `message`
// is what k8s.io/apimachinery's field.Error.ErrorBody() prints (`Invalid value: "x": detail`), so
// `kubectl` shows the same text a real apiserver would. String checks (DNS names, ports, CIDRs)
// follow k8s.io/apimachinery/pkg/util/validation; metadata checks follow
// k8s.io/apimachinery/pkg/api/validation.ValidateObjectMetaAccessor.

import { Address6 } from "ip-address";
import { validateLabelKey, validateLabelValue } from "./label-selector.ts";
import type { FieldError, ObjectMeta, OwnerReference } from "./types.ts";

// ---- value rendering (Go's %q / %v / %#v as field.Error prints them) ----

/** A value already rendered the way Go's %#v would print it (structs, slices). */
export class GoValue {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.Quote / %q: double quotes, C-style escapes, printable Unicode kept as-is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp >= 0xd800 && cp <= 0xdfff) out += "\\ufffd";
    else if (PRINTABLE.test(ch)) out += ch;
    else if (ch === "\x07") out += "\\a";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\v") out += "\\v";
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

/** Renders a bad value as field.Error does: strings quoted, numbers/bools bare, nil as null. */
export function formatValue(value: unknown): string {
  if (value instanceof GoValue) return value.text;
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return goQuote(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return `[]string{${value.map(goQuote).join(", ")}}`;
  }
  return JSON.stringify(value);
}

// ---- FieldError constructors (field.Required, field.Invalid, ...) ----

export function required(field: string, detail = ""): FieldError {
  return { reason: "FieldValueRequired", field, message: withDetail("Required value", detail) };
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return {
    reason: "FieldValueInvalid",
    field,
    message: withDetail(`Invalid value: ${formatValue(value)}`, detail),
  };
}

export function notSupported(field: string, value: unknown, supported: readonly string[]): FieldError {
  const detail = supported.length ? `supported values: ${supported.map(goQuote).join(", ")}` : "";
  return {
    reason: "FieldValueNotSupported",
    field,
    message: withDetail(`Unsupported value: ${formatValue(value)}`, detail),
  };
}

export function duplicate(field: string, value: unknown, detail = ""): FieldError {
  return {
    reason: "FieldValueDuplicate",
    field,
    message: withDetail(`Duplicate value: ${formatValue(value)}`, detail),
  };
}

export function forbidden(field: string, detail: string): FieldError {
  return { reason: "FieldValueForbidden", field, message: withDetail("Forbidden", detail) };
}

/** field.TooLong: the value itself is never printed. */
export function tooLong(field: string, maxBytes: number): FieldError {
  return {
    reason: "FieldValueTooLong",
    field,
    message: `Too long: may not be more than ${maxBytes} ${maxBytes === 1 ? "byte" : "bytes"}`,
  };
}

export function notFound(field: string, value: unknown): FieldError {
  return { reason: "FieldValueNotFound", field, message: `Not found: ${formatValue(value)}` };
}

function withDetail(head: string, detail: string): string {
  return detail ? `${head}: ${detail}` : head;
}

/** `field: message`, as field.Error.Error() prints one error. */
export function formatFieldError(e: FieldError): string {
  return `${e.field}: ${e.message}`;
}

/**
 * The metav1.Status message of a 422 Invalid response, as errors.NewInvalid builds it:
 * `Pod "web" is invalid: spec.containers[0].image: Required value`, bracketed when several distinct
 * errors remain after de-duplication. `group` qualifies the kind (`Lease.coordination.k8s.io`).
 */
export function formatInvalidMessage(
  kind: string,
  name: string,
  errors: readonly FieldError[],
  group = "",
): string {
  const qualified = group ? `${kind}.${group}` : kind;
  const head = `${qualified} ${goQuote(name)} is invalid`;
  const unique: string[] = [];
  for (const e of errors) {
    const text = formatFieldError(e);
    if (!unique.includes(text)) unique.push(text);
  }
  if (unique.length === 0) return head;
  if (unique.length === 1) return `${head}: ${unique[0]}`;
  return `${head}: [${unique.join(", ")}]`;
}

// ---- message builders (k8s.io/apimachinery/pkg/util/validation) ----

export function maxLenError(length: number): string {
  return `must be no more than ${length} characters`;
}

export function inclusiveRangeError(lo: number, hi: number): string {
  return `must be between ${lo} and ${hi}, inclusive`;
}

export function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  let out = `${msg} (e.g. `;
  examples.forEach((ex, i) => {
    if (i > 0) out += " or ";
    out += `'${ex}', `;
  });
  return `${out}regex used for validation is '${fmt}')`;
}

export const isNegativeErrorMsg = "must be greater than or equal to 0";
export const fieldImmutableErrorMsg = "field is immutable";

// ---- DNS names ----

const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT_UNDERSCORE = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT_UNDERSCORE = `${DNS1123_LABEL_FMT_UNDERSCORE}(\\.${DNS1123_LABEL_FMT_UNDERSCORE})*`;
const DNS1123_SUBDOMAIN_MSG_UNDERSCORE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

const dns1123LabelRe = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const dns1123SubdomainRe = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const dns1123SubdomainUnderscoreRe = new RegExp(`^${DNS1123_SUBDOMAIN_FMT_UNDERSCORE}$`);
const dns1035LabelRe = new RegExp(`^${DNS1035_LABEL_FMT}$`);

/** Byte length, as Go's len() counts a string. */
function byteLength(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

export function isDNS1123Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenError(63));
  if (!dns1123LabelRe.test(value)) {
    if (dns1123SubdomainRe.test(value)) errs.push("must not contain dots");
    else errs.push(regexError(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"));
  }
  return errs;
}

export function isDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 253) errs.push(maxLenError(253));
  if (!dns1123SubdomainRe.test(value))
    errs.push(regexError(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"));
  return errs;
}

/** IsDNS1123SubdomainWithUnderscore: DNS search domains (RelaxedDNSSearchValidation). */
export function isDNS1123SubdomainWithUnderscore(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 253) errs.push(maxLenError(253));
  if (!dns1123SubdomainUnderscoreRe.test(value)) {
    errs.push(regexError(DNS1123_SUBDOMAIN_MSG_UNDERSCORE, DNS1123_SUBDOMAIN_FMT_UNDERSCORE, "example.com"));
  }
  return errs;
}

export function isDNS1035Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenError(63));
  if (!dns1035LabelRe.test(value))
    errs.push(regexError(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"));
  return errs;
}

/** Validates a name (or, with prefix=true, a generateName prefix); returns upstream messages. */
export type NameValidator = (name: string, prefix: boolean) => string[];

/** A generateName may end in '-': check it as if a character followed. */
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith("-") ? `${name.slice(0, -1)}a` : name;
}

export const nameIsDNSSubdomain: NameValidator = (name, prefix) =>
  isDNS1123Subdomain(prefix ? maskTrailingDash(name) : name);
export const nameIsDNSLabel: NameValidator = (name, prefix) =>
  isDNS1123Label(prefix ? maskTrailingDash(name) : name);
export const nameIsDNS1035Label: NameValidator = (name, prefix) =>
  isDNS1035Label(prefix ? maskTrailingDash(name) : name);

/** path.ValidatePathSegmentName: the only rule for kinds without a stricter one (core Events). */
export const pathSegmentName: NameValidator = (name, prefix) => {
  if (!prefix) {
    for (const bad of [".", ".."]) if (name === bad) return [`may not be '${bad}'`];
  }
  const errs: string[] = [];
  for (const bad of ["/", "%"]) if (name.includes(bad)) errs.push(`may not contain '${bad}'`);
  return errs;
};

export function validateDNS1123Label(value: string, field: string): FieldError[] {
  return isDNS1123Label(value).map((m) => invalid(field, value, m));
}

export function validateDNS1123Subdomain(value: string, field: string): FieldError[] {
  return isDNS1123Subdomain(value).map((m) => invalid(field, value, m));
}

export function validateDNS1035Label(value: string, field: string): FieldError[] {
  return isDNS1035Label(value).map((m) => invalid(field, value, m));
}

/** validation.IsQualifiedName, reported as field.Invalid(field, value, msg). */
export function validateQualifiedName(value: string, field: string): FieldError[] {
  return validateLabelKey(value).map((m) => invalid(field, value, m));
}

// ---- ports and env ----

export function isValidPortNum(port: number): string[] {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? [] : [inclusiveRangeError(1, 65535)];
}

/** IANA_SVC_NAME: what container and service port names must be. */
export function isValidPortName(port: string): string[] {
  const errs: string[] = [];
  if (byteLength(port) > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(port))
    errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!/[a-z]/.test(port)) errs.push("must contain at least one letter (a-z)");
  if (port.includes("--")) errs.push("must not contain consecutive hyphens");
  if (port.length > 0 && (port.startsWith("-") || port.endsWith("-")))
    errs.push("must not begin or end with a hyphen");
  return errs;
}

/** A port number field (containerPort, hostPort, service port): 1-65535. */
export function validatePortNumber(value: unknown, field: string): FieldError[] {
  return isValidPortNum(value as number).map((m) => invalid(field, value, m));
}

export function validatePortName(value: string, field: string): FieldError[] {
  return isValidPortName(value).map((m) => invalid(field, value, m));
}

/** IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation, on by default since 1.32). */
export function isEnvVarName(value: string): string[] {
  if (value.length === 0) return ["environment variable name must be non-empty"];
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0x7e || cp < 0x20 || ch === "=") {
      return [
        "a valid environment variable name must consist only of printable ASCII characters other than '='",
      ];
    }
  }
  return [];
}

// ---- IP addresses and CIDRs ----

export interface ParsedIP {
  family: 4 | 6;
  /** The address as an unsigned integer (32 or 128 bits). */
  value: bigint;
  /** The text had IPv4 octets with leading zeros (accepted by the legacy "sloppy" parser only). */
  leadingZeros: boolean;
  /** An IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
  mapped4: boolean;
}

function parseIPv4(s: string): { value: bigint; leadingZeros: boolean } | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  let leadingZeros = false;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    if (p.length > 1 && p.startsWith("0")) leadingZeros = true;
    value = (value << 8n) | BigInt(n);
  }
  return { value, leadingZeros };
}

/** Parses an IP as k8s.io/utils/net.ParseIPSloppy does (IPv4 octets may carry leading zeros). */
export function parseIP(s: string): ParsedIP | undefined {
  if (s.includes(":")) {
    if (s.includes("%") || s.includes("/") || !Address6.isValid(s)) return undefined;
    const value = new Address6(s).bigInt();
    return { family: 6, value, leadingZeros: false, mapped4: value >> 32n === 0xffffn };
  }
  const v4 = parseIPv4(s);
  return v4 && { family: 4, value: v4.value, leadingZeros: v4.leadingZeros, mapped4: false };
}

export interface ParsedCIDR {
  family: 4 | 6;
  ip: ParsedIP;
  prefix: number;
  /** Bits are set after the prefix length (10.0.0.1/24 rather than 10.0.0.0/24). */
  hostBits: boolean;
  leadingZeros: boolean;
}

/** Parses a CIDR as netutils.ParseCIDRSloppy does. */
export function parseCIDR(s: string): ParsedCIDR | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const prefixText = s.slice(slash + 1);
  if (!ip || !/^[0-9]+$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const bits = ip.family === 4 ? 32 : 128;
  if (prefix > bits) return undefined;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  return {
    family: ip.family,
    ip,
    prefix,
    hostBits: (ip.value & hostMask) !== 0n,
    leadingZeros: ip.leadingZeros || (prefixText.length > 1 && prefixText.startsWith("0")),
  };
}

/**
 * IsValidIPForLegacyField with strict validation (StrictIPCIDRValidation): every existing IP field
 * of the core API (podIP, hostAliases, nameservers, node addresses).
 */
export function validateIP(value: string, field: string): FieldError[] {
  const ip = parseIP(value);
  if (!ip) return [invalid(field, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")];
  const errs: FieldError[] = [];
  if (ip.leadingZeros) errs.push(invalid(field, value, "must not have leading 0s"));
  if (ip.mapped4) errs.push(invalid(field, value, "must not be an IPv4-mapped IPv6 address"));
  return errs;
}

/**
 * IsValidCIDRForLegacyField with strict validation: a subnet CIDR (podCIDRs, serviceCIDR,
 * NetworkPolicy ipBlock). Host bits set after the prefix are rejected.
 */
export function validateCIDR(value: string, field: string): FieldError[] {
  const cidr = parseCIDR(value);
  if (!cidr)
    return [invalid(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")];
  if (cidr.leadingZeros) return [invalid(field, value, "must not have leading 0s in IP or prefix length")];
  if (cidr.ip.mapped4) return [invalid(field, value, "must not have an IPv4-mapped IPv6 address")];
  if (cidr.hostBits) return [invalid(field, value, "must not have bits set beyond the prefix length")];
  return [];
}

// ---- metadata ----

/** 256 KiB: the total size of all annotation keys and values. */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

/** v1validation.ValidateLabels: every problem reported on the map's own path. */
export function validateLabels(labels: Record<string, string> | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const m of validateLabelKey(k)) errs.push(invalid(field, k, m));
    for (const m of validateLabelValue(String(v))) errs.push(invalid(field, v, m));
  }
  return errs;
}

export function validateAnnotations(
  annotations: Record<string, string> | undefined,
  field: string,
): FieldError[] {
  const errs: FieldError[] = [];
  let total = 0;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    // Qualified names, except that case does not matter.
    for (const m of validateLabelKey(k.toLowerCase())) errs.push(invalid(field, k, m));
    total += byteLength(k) + byteLength(String(v ?? ""));
  }
  if (total > TOTAL_ANNOTATION_SIZE_LIMIT) errs.push(tooLong(field, TOTAL_ANNOTATION_SIZE_LIMIT));
  return errs;
}

function ownerReferenceGoValue(r: OwnerReference): GoValue {
  const ptr = (b: boolean | undefined) => (b === undefined ? "(*bool)(nil)" : `(*bool)(${b})`);
  return new GoValue(
    `v1.OwnerReference{APIVersion:${goQuote(r.apiVersion ?? "")}, Kind:${goQuote(r.kind ?? "")}, Name:${goQuote(r.name ?? "")}, UID:${goQuote(r.uid ?? "")}, Controller:${ptr(r.controller)}, BlockOwnerDeletion:${ptr(r.blockOwnerDeletion)}}`,
  );
}

export function validateOwnerReferences(refs: OwnerReference[] | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  let firstController = "";
  for (const r of refs ?? []) {
    const apiVersion = r.apiVersion ?? "";
    const slash = apiVersion.indexOf("/");
    const group = slash >= 0 ? apiVersion.slice(0, slash) : "";
    const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
    if (!version) errs.push(invalid(`${field}.apiVersion`, apiVersion, "version must not be empty"));
    if (!r.kind) errs.push(invalid(`${field}.kind`, r.kind ?? "", "must not be empty"));
    if (!r.name) errs.push(invalid(`${field}.name`, r.name ?? "", "must not be empty"));
    if (!r.uid) errs.push(invalid(`${field}.uid`, r.uid ?? "", "must not be empty"));
    if (group === "" && version === "v1" && r.kind === "Event") {
      errs.push(
        invalid(field, ownerReferenceGoValue(r), "/v1, Kind=Event is disallowed from being an owner"),
      );
    }
    if (r.controller) {
      const current = `${r.kind}/${r.name}`;
      if (firstController) {
        errs.push(
          invalid(
            field,
            new GoValue(
              `[]v1.OwnerReference{${(refs ?? []).map((x) => ownerReferenceGoValue(x).text).join(", ")}}`,
            ),
            `Only one reference can have Controller set to true. Found "true" in references for ${firstController} and ${current}`,
          ),
        );
      } else {
        firstController = current;
      }
    }
  }
  return errs;
}

const STANDARD_FINALIZERS = ["kubernetes", "orphan", "foregroundDeletion"];

/**
 * ValidateFinalizers (qualified names, orphan vs foreground). With `kube`, also the core API's
 * extra rule that an unqualified finalizer must be a standard one.
 */
export function validateFinalizers(
  finalizers: string[] | undefined,
  field: string,
  kube = false,
): FieldError[] {
  const errs: FieldError[] = [];
  const list = finalizers ?? [];
  for (const f of list) for (const m of validateLabelKey(f)) errs.push(invalid(field, f, m));
  if (list.includes("orphan") && list.includes("foregroundDeletion")) {
    errs.push(invalid(field, list, "finalizer orphan and foregroundDeletion cannot be both set"));
  }
  if (kube) {
    list.forEach((f, i) => {
      if (!f.includes("/") && !STANDARD_FINALIZERS.includes(f)) {
        errs.push(
          invalid(`${field}[${i}]`, f, "name is neither a standard finalizer name nor is it fully qualified"),
        );
      }
    });
  }
  return errs;
}

export interface ObjectMetaOptions {
  namespaced: boolean;
  nameValidator: NameValidator;
  /** Path of the metadata, "metadata" unless nested (pod templates). */
  path?: string;
  /** Core (legacy group) kinds also check finalizer names against the standard set. */
  kubeFinalizers?: boolean;
}

/**
 * ValidateObjectMetaAccessor on create. A missing name with a generateName is accepted: the server
 * generates the name before it validates.
 */
export function validateObjectMeta(meta: ObjectMeta | undefined, opts: ObjectMetaOptions): FieldError[] {
  const m: ObjectMeta = meta ?? {};
  const path = opts.path ?? "metadata";
  const errs: FieldError[] = [];
  if (m.generateName) {
    for (const msg of opts.nameValidator(m.generateName, true)) {
      errs.push(invalid(`${path}.generateName`, m.generateName, msg));
    }
  }
  if (!m.name) {
    if (!m.generateName) errs.push(required(`${path}.name`, "name or generateName is required"));
  } else {
    for (const msg of opts.nameValidator(m.name, false)) errs.push(invalid(`${path}.name`, m.name, msg));
  }
  if (opts.namespaced) {
    if (!m.namespace) {
      errs.push(required(`${path}.namespace`));
    } else {
      for (const msg of nameIsDNSLabel(m.namespace, false))
        errs.push(invalid(`${path}.namespace`, m.namespace, msg));
    }
  } else if (m.namespace) {
    errs.push(forbidden(`${path}.namespace`, "not allowed on this type"));
  }
  if (typeof m.generation === "number" && m.generation < 0) {
    errs.push(invalid(`${path}.generation`, m.generation, isNegativeErrorMsg));
  }
  errs.push(...validateLabels(m.labels, `${path}.labels`));
  errs.push(...validateAnnotations(m.annotations, `${path}.annotations`));
  errs.push(...validateOwnerReferences(m.ownerReferences, `${path}.ownerReferences`));
  errs.push(...validateFinalizers(m.finalizers, `${path}.finalizers`, opts.kubeFinalizers));
  return errs;
}

// ---- comparisons used by update validation ----

/** Go zero values (and empty slices/maps) read the same as an absent field. */
function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v as object).every(isZero);
  return false;
}

/**
 * apiequality.Semantic.DeepEqual over JSON: nil and empty slices/maps are equal, and so are an
 * absent field and its zero value (Go cannot tell them apart for non-pointer fields).
 */
export function semanticEqual(a: unknown, b: unknown): boolean {
  if (isZero(a) && isZero(b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => semanticEqual(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!semanticEqual((a as any)[k], (b as any)[k])) return false;
    return true;
  }
  return a === b;
}
