// A FIFO limit on how many jobs run at once. The agent puts pod sandbox creation (netns + the CNI
// chain, a handful of processes per pod) behind one: with every pod of a burst wired at once, the
// CPU is shared among all of them and they all finish near the end; one after another, in arrival
// order, the first pods are Running while the last are still waiting, at the same throughput.

export class Limiter {
  private readonly limit: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Runs `job` once fewer than `limit` jobs are running, after every job that asked earlier. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await job();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
