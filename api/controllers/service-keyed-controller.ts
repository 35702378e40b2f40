// What the three endpoint controllers (Endpoints, EndpointSlices, their mirroring) share: a work
// queue of "namespace/name" keys, informers started in order and stopped together, keys queued
// once the caches are filled (objects left from while the controller was away), and a periodic
// resync spread over the period (service-pods.ts's startResync).

import type { Informer } from "./informer.ts";
import { startResync } from "./service-pods.ts";
import { WorkQueue } from "./work-queue.ts";

export abstract class ServiceKeyedController {
  protected readonly queue: WorkQueue;
  private readonly resyncMs: number;
  private stopResync: () => void = () => {};

  constructor(name: string, resyncMs: number) {
    this.resyncMs = resyncMs;
    this.queue = new WorkQueue(
      (key) => {
        const slash = key.indexOf("/");
        return this.sync(key.slice(0, slash), key.slice(slash + 1), key);
      },
      { onError: (key, e) => console.error(`kemu ${name}: ${key}:`, (e as Error).message) },
    );
  }

  /** The informers, in the order they start (a cache another's handlers read comes first). */
  protected abstract informers(): Informer<any>[];
  /** Keys synced every resync period. */
  protected abstract resyncKeys(): string[];
  /** Keys to sync once the caches are filled, beyond what their initial events queued. */
  protected abstract startupKeys(): Iterable<string>;
  protected abstract sync(namespace: string, name: string, key: string): Promise<void>;

  async start(): Promise<void> {
    for (const informer of this.informers()) await informer.start();
    for (const key of this.startupKeys()) this.queue.add(key);
    this.stopResync = startResync(
      () => this.resyncKeys(),
      (key) => this.queue.add(key),
      this.resyncMs,
    );
  }

  stop(): void {
    this.stopResync();
    this.queue.stop();
    for (const informer of this.informers()) informer.stop();
  }

  /** Resolves when no sync is queued or running; for tests. */
  idle(): Promise<void> {
    return this.queue.idle();
  }
}
