// A keyed work queue: bursts of events for one key collapse into one sync, a key is never synced
// twice at once, and failures retry with exponential back-off. Level-triggered controllers only
// need "something about this key changed".

export interface WorkQueueOptions {
  /** First retry delay; doubles per consecutive failure up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Keys synced at once; the scheduler uses 1 so each decision sees the previous binding. */
  concurrency?: number;
  onError?: (key: string, err: unknown) => void;
}

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly order: string[] = [];
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly worker: (key: string) => Promise<void>;
  private readonly opts: Required<Omit<WorkQueueOptions, "onError">> & Pick<WorkQueueOptions, "onError">;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(worker: (key: string) => Promise<void>, opts: WorkQueueOptions = {}) {
    this.worker = worker;
    this.opts = { baseDelayMs: 50, maxDelayMs: 10_000, concurrency: Number.POSITIVE_INFINITY, ...opts };
  }

  add(key: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs > 0) {
      if (this.timers.has(key)) return;
      this.timers.set(
        key,
        setTimeout(() => {
          this.timers.delete(key);
          this.add(key);
        }, delayMs),
      );
      return;
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.order.push(key);
    queueMicrotask(() => this.next());
  }

  /** Starts queued keys, oldest first, while under the concurrency limit. */
  private next(): void {
    while (!this.stopped && this.running.size < this.opts.concurrency && this.order.length) {
      const key = this.order.shift()!;
      if (!this.pending.delete(key)) continue;
      if (this.running.has(key)) {
        this.dirty.add(key);
        continue;
      }
      void this.run(key);
    }
    this.checkIdle();
  }

  private async run(key: string): Promise<void> {
    this.running.add(key);
    try {
      await this.worker(key);
      this.failures.delete(key);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      this.opts.onError?.(key, err);
      this.add(key, Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (n - 1)));
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.next();
    }
  }

  private checkIdle(): void {
    if (this.pending.size || this.running.size) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is queued or running (delayed retries excluded); for tests. */
  idle(): Promise<void> {
    if (!this.pending.size && !this.running.size) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
    this.order.length = 0;
  }
}
