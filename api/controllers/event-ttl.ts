// Events expire like the apiserver's --event-ttl (default 1h): old ones are deleted periodically.

import type { CoreEvent } from "../../emulator/types.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";

export function startEventTtl(
  resources: Resources,
  registry: Registry,
  ttlMs: number,
  now: () => Date = () => new Date(),
): () => void {
  const spec = registry.find("", "v1", "events")!;
  const sweep = async () => {
    const cutoff = now().getTime() - ttlMs;
    for (const { object } of await resources.listStored(spec)) {
      const ev = object as CoreEvent;
      const last = ev.lastTimestamp ?? ev.eventTime ?? ev.metadata.creationTimestamp;
      if (last && Date.parse(last) < cutoff) {
        await resources.delete(spec, ev.metadata.namespace, ev.metadata.name!).catch(() => {});
      }
    }
  };
  const timer = setInterval(() => void sweep(), Math.min(60_000, ttlMs));
  timer.unref();
  return () => clearInterval(timer);
}
