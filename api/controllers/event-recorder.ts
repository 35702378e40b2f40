// Records core/v1 Events the way client-go's recorder does: one Event per (object, type, reason,
// message), repeated occurrences bump `count` and `lastTimestamp` instead of adding objects.

import { rfc3339 } from "../../emulator/duration.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import type { CoreEvent, KubeObject } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  private readonly resources: Resources;
  private readonly events: KindSpec;
  private readonly component: string;
  private readonly now: () => Date;
  /** Aggregation key -> event name/namespace, so repeats update the same object. */
  private readonly seen = new Map<string, { namespace: string; name: string }>();
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    resources: Resources,
    registry: Registry,
    component: string,
    now: () => Date = () => new Date(),
  ) {
    this.resources = resources;
    this.events = registry.find("", "v1", "events")!;
    this.component = component;
    this.now = now;
  }

  /** Fire-and-forget, serialized so aggregation sees its own writes. */
  record(obj: KubeObject, type: EventType, reason: string, message: string): void {
    this.pending = this.pending
      .then(() => this.write(obj, type, reason, message))
      .catch((e) => console.error(`kemu events: ${reason} for ${obj.metadata.name}:`, e.message ?? e));
  }

  /** Resolves when every recorded event so far is written; for tests and shutdown. */
  flush(): Promise<unknown> {
    return this.pending;
  }

  private async write(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace || "default";
    const key = [obj.metadata.uid ?? obj.metadata.name, type, reason, message].join("\u0000");
    const now = rfc3339(this.now());
    const known = this.seen.get(key);
    if (known) {
      try {
        await this.resources.mutate(this.events, known.namespace, known.name, (ev) => ({
          ...ev,
          count: (ev.count ?? 1) + 1,
          lastTimestamp: now,
        }));
        return;
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
        this.seen.delete(key);
      }
    }
    const name = `${obj.metadata.name}.${(BigInt(this.now().getTime()) * 1_000_000n + BigInt(this.seen.size)).toString(16)}`;
    const event: CoreEvent = {
      metadata: { name, namespace },
      involvedObject: {
        kind: obj.kind,
        apiVersion: obj.apiVersion,
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      source: { component: this.component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      eventTime: null,
      reportingComponent: this.component,
      reportingInstance: "",
    };
    await this.resources.create(this.events, namespace, event);
    this.seen.set(key, { namespace, name });
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
  }
}
