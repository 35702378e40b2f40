// Events: core/v1 Event is the stored form; events.k8s.io/v1 Event is a view over the same objects,
// converted field by field as pkg/apis/events/v1/conversion.go does (involvedObject <-> regarding,
// message <-> note, source <-> deprecatedSource, firstTimestamp/lastTimestamp/count <->
// deprecated*, reportingComponent <-> reportingController). Validation follows
// pkg/apis/core/validation/events.go: core/v1 writes get the legacy checks only, events.k8s.io/v1
// writes the strict ones. Columns follow printEvent.

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import type { CoreEvent, FieldError, KubeObject, ObjectReference } from "../types.ts";
import {
  GoValue,
  invalid,
  isDNS1123Subdomain,
  nameIsDNSSubdomain,
  pathSegmentName,
  required,
  semanticEqual,
  validateObjectMeta,
  validateQualifiedName,
} from "../validation.ts";
import { metadataMergeKeys, NAME_DESCRIPTION } from "./pod.ts";

const REPORTING_INSTANCE_LIMIT = 128;
const ACTION_LIMIT = 128;
const REASON_LIMIT = 128;
const NOTE_LIMIT = 1024;

function bytes(s: string | undefined): number {
  return Buffer.byteLength(s ?? "", "utf8");
}

// ---- conversion ----

/** core/v1 (storage) -> events.k8s.io/v1. */
export function coreEventToEventsV1(internal: KubeObject): KubeObject {
  const ev = internal as CoreEvent;
  const out: KubeObject = {
    kind: "Event",
    apiVersion: "events.k8s.io/v1",
    metadata: ev.metadata,
    eventTime: ev.eventTime ?? null,
  };
  if (ev.series) out.series = ev.series;
  if (ev.reportingComponent) out.reportingController = ev.reportingComponent;
  if (ev.reportingInstance) out.reportingInstance = ev.reportingInstance;
  if (ev.action) out.action = ev.action;
  if (ev.reason) out.reason = ev.reason;
  out.regarding = ev.involvedObject ?? {};
  if (ev.related) out.related = ev.related;
  if (ev.message) out.note = ev.message;
  if (ev.type) out.type = ev.type;
  out.deprecatedSource = ev.source ?? {};
  out.deprecatedFirstTimestamp = ev.firstTimestamp ?? null;
  out.deprecatedLastTimestamp = ev.lastTimestamp ?? null;
  if (ev.count) out.deprecatedCount = ev.count;
  return out;
}

/** events.k8s.io/v1 -> core/v1 (storage). */
export function eventsV1ToCoreEvent(external: KubeObject): KubeObject {
  const ev = external;
  const out: CoreEvent = {
    kind: "Event",
    apiVersion: "v1",
    metadata: ev.metadata,
    involvedObject: ev.regarding ?? {},
  };
  if (ev.reason) out.reason = ev.reason;
  if (ev.note) out.message = ev.note;
  out.source = ev.deprecatedSource ?? {};
  out.firstTimestamp = ev.deprecatedFirstTimestamp ?? null;
  out.lastTimestamp = ev.deprecatedLastTimestamp ?? null;
  if (ev.deprecatedCount) out.count = ev.deprecatedCount;
  if (ev.type) out.type = ev.type;
  out.eventTime = ev.eventTime ?? null;
  if (ev.series) out.series = ev.series;
  if (ev.action) out.action = ev.action;
  if (ev.related) out.related = ev.related;
  out.reportingComponent = ev.reportingController ?? "";
  out.reportingInstance = ev.reportingInstance ?? "";
  return out;
}

/** The core form of an event given in either form. */
function asCoreEvent(obj: KubeObject): CoreEvent {
  const isCore = obj.involvedObject !== undefined || (obj.apiVersion === "v1" && obj.regarding === undefined);
  return (isCore ? obj : eventsV1ToCoreEvent(obj)) as CoreEvent;
}

// ---- defaults ----

/**
 * Create-time defaults for core events written by older clients: type Normal, a count of 1 and
 * first/last timestamps at creation when no eventTime says otherwise, and the always-serialized
 * fields present.
 */
export function defaultCoreEvent(ev: CoreEvent): void {
  ev.involvedObject ??= {};
  ev.source ??= {};
  if (!ev.type) ev.type = "Normal";
  if (!ev.eventTime) {
    ev.eventTime = null;
    if (!ev.count) ev.count = 1;
    if (!ev.firstTimestamp) ev.firstTimestamp = ev.metadata.creationTimestamp ?? null;
    if (!ev.lastTimestamp) ev.lastTimestamp = ev.firstTimestamp ?? null;
  }
  ev.firstTimestamp ??= null;
  ev.lastTimestamp ??= null;
  ev.reportingComponent ??= "";
  ev.reportingInstance ??= "";
}

// ---- validation ----

/** legacyValidateEvent: what every event must satisfy, whichever API wrote it. */
export function legacyValidateEvent(ev: CoreEvent): FieldError[] {
  const errs: FieldError[] = [];
  const namespace = ev.metadata.namespace ?? "";
  const involvedNamespace = ev.involvedObject?.namespace ?? "";
  const mismatch = () =>
    invalid("involvedObject.namespace", involvedNamespace, "does not match event.namespace");
  if (!ev.eventTime) {
    if (!involvedNamespace) {
      if (namespace !== "" && namespace !== "default") errs.push(mismatch());
    } else if (namespace !== involvedNamespace) {
      errs.push(mismatch());
    }
  } else {
    if (!involvedNamespace && namespace !== "default" && namespace !== "kube-system") errs.push(mismatch());
    const controller = ev.reportingComponent ?? "";
    if (!controller) errs.push(required("reportingController"));
    errs.push(...validateQualifiedName(controller, "reportingController"));
    if (!ev.reportingInstance) errs.push(required("reportingInstance"));
    if (bytes(ev.reportingInstance) > REPORTING_INSTANCE_LIMIT) {
      errs.push(invalid("reportingInstance", "", `can have at most ${REPORTING_INSTANCE_LIMIT} characters`));
    }
    if (!ev.action) errs.push(required("action"));
    if (bytes(ev.action) > ACTION_LIMIT)
      errs.push(invalid("action", "", `can have at most ${ACTION_LIMIT} characters`));
    if (!ev.reason) errs.push(required("reason"));
    if (bytes(ev.reason) > REASON_LIMIT)
      errs.push(invalid("reason", "", `can have at most ${REASON_LIMIT} characters`));
    if (bytes(ev.message) > NOTE_LIMIT)
      errs.push(invalid("message", "", `can have at most ${NOTE_LIMIT} characters`));
  }
  for (const m of isDNS1123Subdomain(namespace)) errs.push(invalid("namespace", namespace, m));
  return errs;
}

/**
 * A core/v1 write: the legacy checks, then (only when they pass, as the apiserver's BeforeCreate
 * does) the generic metadata checks with path-segment names.
 */
export function validateCoreEvent(ev: CoreEvent): FieldError[] {
  const errs = legacyValidateEvent(ev);
  if (errs.length) return errs;
  return validateObjectMeta(ev.metadata, { namespaced: true, nameValidator: pathSegmentName });
}

function validateSeries(ev: CoreEvent): FieldError[] {
  const series = ev.series as { count?: number; lastObservedTime?: string } | undefined | null;
  if (!series) return [];
  const errs: FieldError[] = [];
  if ((series.count ?? 0) < 2) errs.push(invalid("series.count", "", "should be at least 2"));
  if (!series.lastObservedTime) errs.push(required("series.lastObservedTime"));
  return errs;
}

/** ValidateEventCreate for events.k8s.io/v1: legacy checks plus the strict new-API rules. */
export function validateEventsV1(obj: KubeObject): FieldError[] {
  const ev = asCoreEvent(obj);
  const errs = legacyValidateEvent(ev);
  errs.push(...validateObjectMeta(ev.metadata, { namespaced: true, nameValidator: nameIsDNSSubdomain }));
  errs.push(...validateSeries(ev));
  if (!ev.eventTime) errs.push(required("eventTime"));
  if (ev.type !== "Normal" && ev.type !== "Warning") {
    errs.push(invalid("type", "", `has invalid value: ${ev.type ?? ""}`));
  }
  if (ev.firstTimestamp) errs.push(invalid("firstTimestamp", "", "needs to be unset"));
  if (ev.lastTimestamp) errs.push(invalid("lastTimestamp", "", "needs to be unset"));
  if (ev.count) errs.push(invalid("count", "", "needs to be unset"));
  if (ev.source?.component || ev.source?.host) errs.push(invalid("source", "", "needs to be unset"));
  return errs;
}

function immutable(next: unknown, prev: unknown, field: string): FieldError[] {
  if (semanticEqual(next, prev)) return [];
  const value = next !== null && typeof next === "object" ? new GoValue(JSON.stringify(next)) : next;
  return [invalid(field, value === undefined ? "" : value, "field is immutable")];
}

/** ValidateEventUpdate for events.k8s.io/v1: everything but the series and metadata is fixed. */
export function validateEventsV1Update(obj: KubeObject, oldObj: KubeObject): FieldError[] {
  const ev = asCoreEvent(obj);
  const old = asCoreEvent(oldObj);
  const errs = legacyValidateEvent(ev);
  if (!semanticEqual(ev.series, old.series)) errs.push(...validateSeries(ev));
  const fields: [keyof CoreEvent, string][] = [
    ["involvedObject", "involvedObject"],
    ["reason", "reason"],
    ["message", "message"],
    ["source", "source"],
    ["firstTimestamp", "firstTimestamp"],
    ["lastTimestamp", "lastTimestamp"],
    ["count", "count"],
    ["type", "type"],
    ["eventTime", "eventTime"],
    ["action", "action"],
    ["related", "related"],
    ["reportingComponent", "reportingController"],
    ["reportingInstance", "reportingInstance"],
  ];
  for (const [key, field] of fields) errs.push(...immutable(ev[key], old[key], field));
  return errs;
}

// ---- printing ----

function target(ref: ObjectReference | undefined): string {
  const kind = (ref?.kind ?? "").toLowerCase();
  return ref?.name ? `${kind}/${ref.name}` : kind;
}

function eventSource(ev: CoreEvent): string {
  const component = ev.source?.component || ev.reportingComponent || "";
  const instance = ev.source?.host || ev.reportingInstance || "";
  return instance ? `${component}, ${instance}` : component;
}

/** printEvent with Wide set, as the server-side table convertor always calls it. */
export function eventTableCells(obj: KubeObject, now: Date): unknown[] {
  const ev = asCoreEvent(obj);
  const firstSeen = ev.firstTimestamp ? ageSince(ev.firstTimestamp, now) : ageSince(ev.eventTime, now);
  let lastSeen = ev.lastTimestamp ? ageSince(ev.lastTimestamp, now) : firstSeen;
  let count = ev.count ?? 0;
  const series = ev.series as { count?: number; lastObservedTime?: string } | undefined | null;
  if (series) {
    lastSeen = ageSince(series.lastObservedTime, now);
    count = series.count ?? 0;
  } else if (count === 0) {
    count = 1; // singleton events from the new API carry no count
  }
  return [
    lastSeen,
    ev.type ?? "",
    ev.reason ?? "",
    target(ev.involvedObject),
    ev.involvedObject?.fieldPath ?? "",
    eventSource(ev),
    (ev.message ?? "").trim(),
    firstSeen,
    count,
    ev.metadata.name,
  ];
}

export const eventColumns: TableColumn[] = [
  {
    name: "Last Seen",
    type: "string",
    format: "",
    description: "The time at which the most recent occurrence of this event was recorded.",
  },
  {
    name: "Type",
    type: "string",
    format: "",
    description: "Type of this event (Normal, Warning), new types could be added in the future",
  },
  {
    name: "Reason",
    type: "string",
    format: "",
    description:
      "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
  },
  { name: "Object", type: "string", format: "", description: "The object that this event is about." },
  {
    name: "Subobject",
    type: "string",
    format: "",
    priority: 1,
    description:
      'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" (where "name" refers to the name of the container that triggered the event) or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.',
  },
  {
    name: "Source",
    type: "string",
    format: "",
    priority: 1,
    description: "The component reporting this event. Should be a short machine understandable string.",
  },
  {
    name: "Message",
    type: "string",
    format: "",
    description: "A human-readable description of the status of this operation.",
  },
  {
    name: "First Seen",
    type: "string",
    format: "",
    priority: 1,
    description: "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
  },
  {
    name: "Count",
    type: "string",
    format: "",
    priority: 1,
    description: "The number of times this event has occurred.",
  },
  { name: "Name", type: "string", format: "name", priority: 1, description: NAME_DESCRIPTION },
];

// ---- kinds ----

const involved = (field: keyof ObjectReference) => (ev: CoreEvent) => ev.involvedObject?.[field] ?? "";

export const eventKind: KindSpec<CoreEvent> = {
  group: "",
  version: "v1",
  kind: "Event",
  resource: "events",
  singular: "event",
  namespaced: true,
  shortNames: ["ev"],
  defaults: defaultCoreEvent,
  validate: validateCoreEvent,
  selectableFields: {
    "involvedObject.kind": involved("kind"),
    "involvedObject.namespace": involved("namespace"),
    "involvedObject.name": involved("name"),
    "involvedObject.uid": involved("uid"),
    "involvedObject.apiVersion": involved("apiVersion"),
    "involvedObject.resourceVersion": involved("resourceVersion"),
    "involvedObject.fieldPath": involved("fieldPath"),
    reason: (ev) => ev.reason ?? "",
    reportingComponent: (ev) => ev.reportingComponent ?? "",
    source: (ev) => ev.source?.component || ev.reportingComponent || "",
    type: (ev) => ev.type ?? "",
  },
  table: { columns: eventColumns, cells: (ev, now) => eventTableCells(ev, now) },
  mergeKeys: { ...metadataMergeKeys },
};

const regarding = (field: keyof ObjectReference) => (ev: KubeObject) =>
  (ev.regarding?.[field] as string) ?? "";

export const eventsV1EventKind: KindSpec = {
  group: "events.k8s.io",
  version: "v1",
  kind: "Event",
  resource: "events",
  singular: "event",
  namespaced: true,
  shortNames: ["ev"],
  storage: {
    group: "",
    resource: "events",
    toExternal: coreEventToEventsV1,
    toInternal: eventsV1ToCoreEvent,
  },
  validate: validateEventsV1,
  validateUpdate: validateEventsV1Update,
  selectableFields: {
    "regarding.kind": regarding("kind"),
    "regarding.namespace": regarding("namespace"),
    "regarding.name": regarding("name"),
    "regarding.uid": regarding("uid"),
    "regarding.apiVersion": regarding("apiVersion"),
    "regarding.resourceVersion": regarding("resourceVersion"),
    "regarding.fieldPath": regarding("fieldPath"),
    reason: (ev) => ev.reason ?? "",
    reportingController: (ev) => ev.reportingController ?? "",
    source: (ev) => ev.deprecatedSource?.component || ev.reportingController || "",
    type: (ev) => ev.type ?? "",
  },
  table: { columns: eventColumns, cells: eventTableCells },
  mergeKeys: { ...metadataMergeKeys },
};
