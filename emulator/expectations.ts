// ControllerExpectations (pkg/controller/controller_utils.go): a controller records how many
// creations and which deletions it has asked for, and does not act on a key again until its watch
// has seen them all (or a TTL passes, in case an event was lost). This keeps a burst of events from
// making it create the same missing pods twice.

export const EXPECTATIONS_TTL_MS = 5 * 60 * 1000;

interface Expectation {
  add: number;
  /** Keys (namespace/name) of objects whose deletion we asked for and have not yet seen. */
  deletions: Set<string>;
  /** When the expectation was last set. */
  at: number;
}

export class Expectations {
  private readonly byKey = new Map<string, Expectation>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: { ttlMs?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? EXPECTATIONS_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** May the controller act on `key`: everything it asked for observed, or the record expired. */
  satisfied(key: string): boolean {
    const e = this.byKey.get(key);
    if (!e) return true;
    if (e.add <= 0 && e.deletions.size === 0) return true;
    return this.now() - e.at > this.ttlMs;
  }

  expectCreations(key: string, count: number): void {
    this.byKey.set(key, { add: count, deletions: new Set(), at: this.now() });
  }

  expectDeletions(key: string, objectKeys: string[]): void {
    this.byKey.set(key, { add: 0, deletions: new Set(objectKeys), at: this.now() });
  }

  creationObserved(key: string): void {
    const e = this.byKey.get(key);
    if (e && e.add > 0) e.add--;
  }

  deletionObserved(key: string, objectKey: string): void {
    this.byKey.get(key)?.deletions.delete(objectKey);
  }

  /** Pending creations and deletions, for tests and logs. */
  pending(key: string): { add: number; del: number } {
    const e = this.byKey.get(key);
    return { add: Math.max(0, e?.add ?? 0), del: e?.deletions.size ?? 0 };
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }
}
