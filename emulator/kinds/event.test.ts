import { describe, expect, it } from "vitest";
import type { CoreEvent } from "../types.ts";
import { formatFieldError } from "../validation.ts";
import { coreEventToEventsV1, eventKind, eventsV1EventKind, eventsV1ToCoreEvent } from "./event.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

const coreEvent: CoreEvent = {
  kind: "Event",
  apiVersion: "v1",
  metadata: {
    name: "web-1.17a2b3c4d5e6f708",
    namespace: "default",
    creationTimestamp: "2026-11-24T11:50:00Z",
  },
  involvedObject: {
    kind: "Pod",
    namespace: "default",
    name: "web-1",
    uid: "u1",
    apiVersion: "v1",
    fieldPath: "spec.containers{web}",
  },
  reason: "Pulled",
  message: 'Successfully pulled image "nginx"',
  source: { component: "kubelet", host: "node-1" },
  firstTimestamp: "2026-11-24T11:50:00Z",
  lastTimestamp: "2026-11-24T11:58:00Z",
  count: 3,
  type: "Normal",
  eventTime: null,
  reportingComponent: "kubelet",
  reportingInstance: "node-1",
};

const v1Event = {
  kind: "Event",
  apiVersion: "events.k8s.io/v1",
  metadata: { name: "web-1.abc", namespace: "default" },
  eventTime: "2026-11-24T11:59:00.123456Z",
  series: { count: 4, lastObservedTime: "2026-11-24T11:59:30.000000Z" },
  reportingController: "kemu.io/scheduler",
  reportingInstance: "kemu-scheduler-1",
  action: "Binding",
  reason: "Scheduled",
  regarding: { kind: "Pod", namespace: "default", name: "web-1" },
  related: { kind: "Node", name: "node-1" },
  note: "Successfully assigned default/web-1 to node-1",
  type: "Normal",
  deprecatedSource: {},
  deprecatedFirstTimestamp: null,
  deprecatedLastTimestamp: null,
};

describe("events.k8s.io/v1 view", () => {
  it("converts core events field by field", () => {
    expect(coreEventToEventsV1(coreEvent)).toEqual({
      kind: "Event",
      apiVersion: "events.k8s.io/v1",
      metadata: coreEvent.metadata,
      eventTime: null,
      reportingController: "kubelet",
      reportingInstance: "node-1",
      reason: "Pulled",
      regarding: coreEvent.involvedObject,
      note: coreEvent.message,
      type: "Normal",
      deprecatedSource: { component: "kubelet", host: "node-1" },
      deprecatedFirstTimestamp: "2026-11-24T11:50:00Z",
      deprecatedLastTimestamp: "2026-11-24T11:58:00Z",
      deprecatedCount: 3,
    });
  });

  it("converts new-API events back to core", () => {
    expect(eventsV1ToCoreEvent(v1Event)).toEqual({
      kind: "Event",
      apiVersion: "v1",
      metadata: v1Event.metadata,
      involvedObject: v1Event.regarding,
      reason: "Scheduled",
      message: v1Event.note,
      source: {},
      firstTimestamp: null,
      lastTimestamp: null,
      type: "Normal",
      eventTime: v1Event.eventTime,
      series: v1Event.series,
      action: "Binding",
      related: v1Event.related,
      reportingComponent: "kemu.io/scheduler",
      reportingInstance: "kemu-scheduler-1",
    });
  });

  it("round-trips both ways", () => {
    expect(eventsV1ToCoreEvent(coreEventToEventsV1(coreEvent))).toEqual(coreEvent);
    expect(coreEventToEventsV1(eventsV1ToCoreEvent(v1Event))).toEqual(v1Event);
  });

  it("selects on the renamed fields", () => {
    const f = eventsV1EventKind.selectableFields!;
    const ext = coreEventToEventsV1(coreEvent);
    expect(f["regarding.name"](ext)).toBe("web-1");
    expect(f["regarding.fieldPath"](ext)).toBe("spec.containers{web}");
    expect(f.reportingController(ext)).toBe("kubelet");
    expect(f.source(ext)).toBe("kubelet");
    expect(f.source(v1Event)).toBe("kemu.io/scheduler");
    expect(eventsV1EventKind.storage?.resource).toBe("events");
  });

  it("applies the strict new-API validation", () => {
    expect(eventsV1EventKind.validate(v1Event)).toEqual([]);
    const bad = { ...v1Event, eventTime: null, type: "Info", deprecatedCount: 2, series: { count: 1 } };
    expect(eventsV1EventKind.validate(bad).map(formatFieldError)).toEqual([
      'series.count: Invalid value: "": should be at least 2',
      "series.lastObservedTime: Required value",
      "eventTime: Required value",
      'type: Invalid value: "": has invalid value: Info',
      'count: Invalid value: "": needs to be unset',
    ]);
  });

  it("prints through the core printer", () => {
    expect(eventsV1EventKind.table.cells(v1Event, NOW)).toEqual([
      "30s",
      "Normal",
      "Scheduled",
      "pod/web-1",
      "",
      "kemu.io/scheduler, kemu-scheduler-1",
      "Successfully assigned default/web-1 to node-1",
      "59s",
      4,
      "web-1.abc",
    ]);
  });
});

describe("core/v1 Event", () => {
  it("prints LAST SEEN TYPE REASON OBJECT MESSAGE and the wide columns", () => {
    expect(eventKind.table.columns.filter((c) => !c.priority).map((c) => c.name)).toEqual([
      "Last Seen",
      "Type",
      "Reason",
      "Object",
      "Message",
    ]);
    expect(eventKind.table.cells(coreEvent, NOW)).toEqual([
      "2m",
      "Normal",
      "Pulled",
      "pod/web-1",
      "spec.containers{web}",
      "kubelet, node-1",
      'Successfully pulled image "nginx"',
      "10m",
      3,
      "web-1.17a2b3c4d5e6f708",
    ]);
  });

  it("defaults old-style events", () => {
    const ev: CoreEvent = {
      metadata: { name: "e", namespace: "default", creationTimestamp: "2026-11-24T11:00:00Z" },
      involvedObject: { kind: "Pod", name: "web-1", namespace: "default" },
      reason: "Started",
    };
    eventKind.defaults!(ev);
    expect(ev).toMatchObject({
      type: "Normal",
      count: 1,
      firstTimestamp: "2026-11-24T11:00:00Z",
      lastTimestamp: "2026-11-24T11:00:00Z",
      eventTime: null,
      source: {},
      reportingComponent: "",
      reportingInstance: "",
    });
    expect(eventKind.validate(ev)).toEqual([]);
  });

  it("checks the namespace against the involved object", () => {
    const ev = structuredClone(coreEvent);
    ev.involvedObject.namespace = "other";
    expect(eventKind.validate(ev).map(formatFieldError)).toEqual([
      'involvedObject.namespace: Invalid value: "other": does not match event.namespace',
    ]);
    ev.involvedObject.namespace = "default";
    ev.metadata.name = "a/b";
    expect(eventKind.validate(ev).map(formatFieldError)).toEqual([
      "metadata.name: Invalid value: \"a/b\": may not contain '/'",
    ]);
  });

  it("selects on involvedObject, source and reportingComponent", () => {
    const f = eventKind.selectableFields!;
    expect(f["involvedObject.kind"](coreEvent)).toBe("Pod");
    expect(f["involvedObject.uid"](coreEvent)).toBe("u1");
    expect(f.source(coreEvent)).toBe("kubelet");
    expect(f.reportingComponent(coreEvent)).toBe("kubelet");
    expect(f.type(coreEvent)).toBe("Normal");
  });
});
