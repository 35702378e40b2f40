// The embedded Store: node:sqlite (a single file, WAL journal) for durability, with every current
// object and the retained change log mirrored in memory so reads never touch sqlite.
//
// Tables:
//   objects(key, revision, json)              current state, one row per key
//   changes(revision, key, type, json, prev)  the change log; `prev` is the state before the change
//                                             (NULL for ADDED), so label-filtered watches resumed
//                                             after a restart still see the transition
//   meta(name, value)                         `compacted`: the highest revision compacted away
//
// A write is one sqlite transaction (object row + change row); the in-memory index, the log and
// the watchers are only touched after COMMIT returned, so a failed write changes nothing.

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { KubeObject } from "../../emulator/types.ts";
import { type ChangeType, type Store, type StoredObject, StoreError, type StoreEvent } from "./store.ts";

export interface SqliteStoreOptions {
  /** Changes kept for watch resumption (in sqlite and in memory). Default 10000, minimum 1. */
  retainChanges?: number;
}

const DEFAULT_RETAIN = 10_000;
const SCHEMA_VERSION = 1;

/** One retained change. Only JSON is kept: old object versions are parsed again on replay, which
 * is rare, instead of holding thousands of parsed historical objects in memory. */
interface LogEntry {
  revision: number;
  key: string;
  type: ChangeType;
  /** The event's object (for DELETED: last state with the delete's revision). */
  json: string;
  /** State before the change; usually the same string instance as the previous entry's json. */
  prevJson: string | undefined;
}

/** Writes sharing one sqlite transaction; their promises resolve only after COMMIT. */
interface Batch {
  done: { entry: LogEntry; event: StoreEvent; stored: StoredObject; resolve: (s: StoredObject) => void }[];
  fail: ((e: unknown) => void)[];
}

interface Watcher {
  prefix: string;
  onEvent: (event: StoreEvent) => void;
  /** Highest revision delivered (or skipped) so far: events at or below it are never re-sent. */
  last: number;
  active: boolean;
}

/** The objects of one `/<group>/<resource>/` prefix, plus a key-sorted view built on demand. */
interface Bucket {
  name: string;
  objects: Map<string, StoredObject>;
  /** Sorted by key; null until a list needs it, then maintained incrementally. */
  sorted: StoredObject[] | null;
}

/**
 * The bucket a key or prefix belongs to: everything up to and including its third "/"
 * (`/core/pods/`), or the whole string when it has fewer than three.
 */
function bucketName(s: string): string {
  let i = -1;
  for (let n = 0; n < 3; n++) {
    i = s.indexOf("/", i + 1);
    if (i < 0) return s;
  }
  return i === s.length - 1 ? s : s.slice(0, i + 1);
}

function hasThreeSlashes(s: string): boolean {
  let i = -1;
  for (let n = 0; n < 3; n++) {
    i = s.indexOf("/", i + 1);
    if (i < 0) return false;
  }
  return true;
}

/** First index whose key is >= key. */
function lowerBound(items: StoredObject[], key: string, lo = 0): number {
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A copy (top level and metadata) of `object` carrying `revision` as its resourceVersion. */
function withRevision(object: KubeObject, revision: number): KubeObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } };
}

function byKey(a: StoredObject, b: StoredObject): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function reportWatcherError(err: unknown): void {
  console.error("kemu store: watch callback threw:", err);
}

export class SqliteStore implements Store {
  private readonly db: DatabaseSync;
  private readonly retain: number;
  /** Log entries beyond `retain` tolerated before compacting, so compaction runs in batches. */
  private readonly slack: number;

  private rev = 0;
  /** Highest revision whose transaction has committed; `rev` runs ahead while a batch is open. */
  private committedRev = 0;
  /** Writes made in the current event-loop turn, committed together (group commit). */
  private batch: Batch | null = null;
  private closed = false;
  private readonly objects = new Map<string, StoredObject>();
  private readonly buckets = new Map<string, Bucket>();
  /** Retained changes, ascending revision. */
  private log: LogEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  /** Events committed but not yet delivered (writes made from inside a watch callback queue here). */
  private readonly pending: StoreEvent[] = [];
  private delivering = false;
  /** > 0 while a watch replays the log: compaction waits so indexes into `log` stay valid. */
  private replaying = 0;

  private readonly stBegin: StatementSync;
  private readonly stCommit: StatementSync;
  private readonly stRollback: StatementSync;
  private readonly stInsertObject: StatementSync;
  private readonly stUpdateObject: StatementSync;
  private readonly stDeleteObject: StatementSync;
  private readonly stInsertChange: StatementSync;
  private readonly stCompactChanges: StatementSync;
  private readonly stSetMeta: StatementSync;

  static open(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
    return new SqliteStore(file, opts);
  }

  private constructor(file: string, opts: SqliteStoreOptions) {
    this.retain = Math.max(1, Math.floor(opts.retainChanges ?? DEFAULT_RETAIN));
    this.slack = Math.max(1, Math.min(2000, Math.floor(this.retain / 10)));
    const db = new DatabaseSync(file);
    this.db = db;
    try {
      // Durability. In WAL mode a COMMIT appends the transaction's pages to the -wal file with
      // write(2) before returning, so once a write's promise resolves its data is in the kernel's
      // page cache, which survives the death of this process (SIGKILL, OOM kill, crash): the next
      // open replays the WAL. synchronous=NORMAL skips the fsync on each commit (it only fsyncs at
      // checkpoints), which is what costs per-write latency; it can lose the last commits on an OS
      // crash or power loss, but never corrupts the database. FULL (an fsync per commit) would only
      // add power-loss durability, which an emulator does not need; OFF would also survive a
      // process crash but could corrupt the file on power loss.
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA temp_store = MEMORY");
      db.exec(`
        CREATE TABLE IF NOT EXISTS objects (
          key TEXT PRIMARY KEY NOT NULL,
          revision INTEGER NOT NULL,
          json TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS changes (
          revision INTEGER PRIMARY KEY NOT NULL,
          key TEXT NOT NULL,
          type TEXT NOT NULL,
          json TEXT NOT NULL,
          prev TEXT
        );
        CREATE TABLE IF NOT EXISTS meta (
          name TEXT PRIMARY KEY NOT NULL,
          value INTEGER NOT NULL
        );
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
      this.stBegin = db.prepare("BEGIN");
      this.stCommit = db.prepare("COMMIT");
      this.stRollback = db.prepare("ROLLBACK");
      this.stInsertObject = db.prepare("INSERT INTO objects (key, revision, json) VALUES (?, ?, ?)");
      this.stUpdateObject = db.prepare("UPDATE objects SET revision = ?, json = ? WHERE key = ?");
      this.stDeleteObject = db.prepare("DELETE FROM objects WHERE key = ?");
      this.stInsertChange = db.prepare(
        "INSERT INTO changes (revision, key, type, json, prev) VALUES (?, ?, ?, ?, ?)",
      );
      this.stCompactChanges = db.prepare("DELETE FROM changes WHERE revision < ?");
      this.stSetMeta = db.prepare(
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      );
      this.load();
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Rebuilds the in-memory state (objects, change log, revision) from the database. */
  private load(): void {
    const db = this.db;
    // The log first, so current objects can share their JSON string with their latest log entry.
    const latest = new Map<string, LogEntry>();
    const rows = db.prepare("SELECT revision, key, type, json, prev FROM changes ORDER BY revision");
    for (const row of rows.iterate() as Iterable<{
      revision: number;
      key: string;
      type: ChangeType;
      json: string;
      prev: string | null;
    }>) {
      const before = latest.get(row.key);
      const entry: LogEntry = {
        revision: row.revision,
        key: row.key,
        type: row.type,
        json: row.json,
        prevJson: row.prev === null ? undefined : before && before.json === row.prev ? before.json : row.prev,
      };
      this.log.push(entry);
      if (row.type === "DELETED") latest.delete(row.key);
      else latest.set(row.key, entry);
      this.rev = row.revision;
    }
    const objs = db.prepare("SELECT key, revision, json FROM objects");
    for (const row of objs.iterate() as Iterable<{ key: string; revision: number; json: string }>) {
      const entry = latest.get(row.key);
      const json = entry && entry.revision === row.revision ? entry.json : row.json;
      this.insertIndex({ key: row.key, revision: row.revision, object: JSON.parse(json), json });
      if (row.revision > this.rev) this.rev = row.revision;
    }
    const meta = db.prepare("SELECT value FROM meta WHERE name = 'compacted'").get() as
      | { value: number }
      | undefined;
    if (meta && meta.value > this.rev) this.rev = meta.value;
    this.committedRev = this.rev;
    if (this.log.length > this.retain) this.compact();
  }

  // ---- reads ----

  revision(): number {
    return this.rev;
  }

  oldestRevision(): number {
    return this.log.length > 0 ? this.log[0].revision : this.rev + 1;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    this.checkOpen();
    return this.objects.get(key);
  }

  async list(prefix: string): Promise<{ items: StoredObject[]; revision: number }> {
    this.checkOpen();
    return { items: this.listSync(prefix), revision: this.rev };
  }

  private listSync(prefix: string): StoredObject[] {
    if (hasThreeSlashes(prefix)) {
      // Every key under the prefix lives in one bucket, where they form a contiguous sorted run.
      const bucket = this.buckets.get(bucketName(prefix));
      if (!bucket) return [];
      const sorted = this.sortedOf(bucket);
      if (prefix === bucket.name) return sorted.slice();
      const lo = lowerBound(sorted, prefix);
      let a = lo;
      let b = sorted.length;
      while (a < b) {
        const mid = (a + b) >>> 1;
        if (sorted[mid].key.startsWith(prefix)) a = mid + 1;
        else b = mid;
      }
      return sorted.slice(lo, a);
    }
    // A prefix above the resource level ("/", "/apps/"): whole buckets. Bucket names are never
    // prefixes of one another's keys except in ways that preserve order, so concatenating the
    // buckets in name order yields key order.
    const names: string[] = [];
    for (const name of this.buckets.keys()) if (name.startsWith(prefix)) names.push(name);
    names.sort();
    const out: StoredObject[] = [];
    for (const name of names) {
      const sorted = this.sortedOf(this.buckets.get(name)!);
      for (let i = 0; i < sorted.length; i++) out.push(sorted[i]);
    }
    return out;
  }

  private sortedOf(bucket: Bucket): StoredObject[] {
    if (!bucket.sorted) bucket.sorted = [...bucket.objects.values()].sort(byKey);
    return bucket.sorted;
  }

  // ---- writes ----

  async create(key: string, object: KubeObject): Promise<StoredObject> {
    this.checkOpen();
    if (this.objects.has(key)) throw new StoreError("exists", `key already exists: ${key}`);
    const revision = this.rev + 1;
    const obj = withRevision(object, revision);
    const json = JSON.stringify(obj);
    this.write(() => {
      this.stInsertObject.run(key, revision, json);
      this.stInsertChange.run(revision, key, "ADDED", json, null);
    });
    this.rev = revision;
    const stored: StoredObject = { key, revision, object: obj, json };
    this.insertIndex(stored);
    return this.acknowledge(
      { revision, key, type: "ADDED", json, prevJson: undefined },
      { ...stored, type: "ADDED" },
      stored,
    );
  }

  async update(key: string, object: KubeObject, expectedRevision?: number): Promise<StoredObject> {
    this.checkOpen();
    const prev = this.current(key, expectedRevision);
    const revision = this.rev + 1;
    const obj = withRevision(object, revision);
    const json = JSON.stringify(obj);
    this.write(() => {
      this.stUpdateObject.run(revision, json, key);
      this.stInsertChange.run(revision, key, "MODIFIED", json, prev.json);
    });
    this.rev = revision;
    const stored: StoredObject = { key, revision, object: obj, json };
    this.replaceIndex(stored);
    return this.acknowledge(
      { revision, key, type: "MODIFIED", json, prevJson: prev.json },
      { ...stored, type: "MODIFIED", prev: prev.object },
      stored,
    );
  }

  async delete(key: string, expectedRevision?: number): Promise<StoredObject> {
    this.checkOpen();
    const prev = this.current(key, expectedRevision);
    const revision = this.rev + 1;
    const obj = withRevision(prev.object, revision);
    const json = JSON.stringify(obj);
    this.write(() => {
      this.stDeleteObject.run(key);
      this.stInsertChange.run(revision, key, "DELETED", json, prev.json);
    });
    this.rev = revision;
    this.removeIndex(key);
    const stored: StoredObject = { key, revision, object: obj, json };
    return this.acknowledge(
      { revision, key, type: "DELETED", json, prevJson: prev.json },
      { ...stored, type: "DELETED", prev: prev.object },
      stored,
    );
  }

  private current(key: string, expectedRevision: number | undefined): StoredObject {
    const cur = this.objects.get(key);
    if (!cur) throw new StoreError("not-found", `key not found: ${key}`);
    if (expectedRevision !== undefined && cur.revision !== expectedRevision) {
      throw new StoreError(
        "conflict",
        `revision mismatch for ${key}: expected ${expectedRevision}, current ${cur.revision}`,
      );
    }
    return cur;
  }

  private transaction(fn: () => void): void {
    this.flush();
    this.stBegin.run();
    try {
      fn();
      this.stCommit.run();
    } catch (e) {
      if (this.db.isTransaction) this.stRollback.run();
      throw e;
    }
  }

  /**
   * Group commit: every write made in one event-loop turn shares one sqlite transaction, committed
   * by setImmediate. The in-memory index changes at once (so conflict checks see every earlier
   * write), but a write is acknowledged, logged and shown to watchers only after COMMIT. A failed
   * statement rolls back only itself; a failed COMMIT poisons the store (nothing of the batch was
   * acknowledged, and a restart reloads exactly what is on disk).
   */
  private write(fn: () => void): void {
    if (!this.batch) {
      this.stBegin.run();
      this.batch = { done: [], fail: [] };
      setImmediate(() => this.flush());
    }
    fn();
  }

  private acknowledge(entry: LogEntry, event: StoreEvent, stored: StoredObject): Promise<StoredObject> {
    const batch = this.batch!;
    return new Promise((resolve, reject) => {
      batch.done.push({ entry, event, stored, resolve });
      batch.fail.push(reject);
    });
  }

  /** Commits the open batch, then logs, publishes and acknowledges its writes in revision order. */
  private flush(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    try {
      this.stCommit.run();
    } catch (e) {
      console.error("kemu store: commit failed; the store is closed to keep memory and disk equal:", e);
      this.closed = true;
      for (const reject of batch.fail) reject(e);
      return;
    }
    for (const { entry, event, stored, resolve } of batch.done) {
      this.committedRev = entry.revision;
      this.committed(entry, event);
      resolve(stored);
    }
  }

  /** After COMMIT: log the change, notify watchers, compact when the log has grown enough. */
  private committed(entry: LogEntry, event: StoreEvent): void {
    this.log.push(entry);
    this.publish(event);
    if (this.log.length - this.retain >= this.slack && this.replaying === 0 && !this.delivering) {
      try {
        this.compact();
      } catch (e) {
        // The write itself is committed; a failed compaction is retried at the next threshold.
        console.error("kemu store: change log compaction failed:", e);
      }
    }
  }

  // ---- index ----

  private bucketFor(key: string): Bucket {
    const name = bucketName(key);
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = { name, objects: new Map(), sorted: null };
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  private insertIndex(stored: StoredObject): void {
    this.objects.set(stored.key, stored);
    const bucket = this.bucketFor(stored.key);
    bucket.objects.set(stored.key, stored);
    const sorted = bucket.sorted;
    if (sorted) {
      const n = sorted.length;
      if (n === 0 || sorted[n - 1].key < stored.key) sorted.push(stored);
      else sorted.splice(lowerBound(sorted, stored.key), 0, stored);
    }
  }

  private replaceIndex(stored: StoredObject): void {
    this.objects.set(stored.key, stored);
    const bucket = this.bucketFor(stored.key);
    bucket.objects.set(stored.key, stored);
    if (bucket.sorted) bucket.sorted[lowerBound(bucket.sorted, stored.key)] = stored;
  }

  private removeIndex(key: string): void {
    this.objects.delete(key);
    const name = bucketName(key);
    const bucket = this.buckets.get(name)!;
    bucket.objects.delete(key);
    if (bucket.objects.size === 0) this.buckets.delete(name);
    else if (bucket.sorted) bucket.sorted.splice(lowerBound(bucket.sorted, key), 1);
  }

  // ---- change log and watches ----

  /**
   * Drops the oldest retained changes down to `retain`, in sqlite and in memory. Runs from the
   * write path every `slack` writes, so each run deletes a batch of rows.
   */
  compact(): void {
    this.checkOpen();
    const excess = this.log.length - this.retain;
    if (excess <= 0) return;
    const firstKept = this.log[excess].revision;
    this.transaction(() => {
      this.stCompactChanges.run(firstKept);
      this.stSetMeta.run("compacted", firstKept - 1);
    });
    this.log = this.log.slice(excess);
  }

  watch(prefix: string, afterRevision: number, onEvent: (event: StoreEvent) => void): () => void {
    this.checkOpen();
    const oldest = this.oldestRevision();
    if (afterRevision < oldest - 1) {
      throw new StoreError("gone", `too old resource version: ${afterRevision} (${oldest - 1})`);
    }
    const watcher: Watcher = { prefix, onEvent, last: afterRevision, active: true };
    const stop = () => {
      watcher.active = false;
      this.watchers.delete(watcher);
    };
    // Replay the retained log. The loop re-reads `log.length`, so writes made by the callback
    // during the replay are replayed too (compaction is held off meanwhile), and the watcher joins
    // the live set only once it has caught up. `last` makes any event queued for live delivery
    // that the replay already covered be skipped.
    this.replaying++;
    try {
      const log = this.log;
      let i = this.firstLogIndexAfter(afterRevision);
      for (; i < log.length && watcher.active; i++) {
        const entry = log[i];
        watcher.last = entry.revision;
        if (!entry.key.startsWith(prefix)) continue;
        try {
          onEvent(this.eventOf(entry));
        } catch (e) {
          reportWatcherError(e);
        }
      }
      // Only committed changes are in the log; uncommitted ones reach this watcher at their COMMIT.
      if (this.committedRev > watcher.last) watcher.last = this.committedRev;
    } finally {
      this.replaying--;
    }
    if (watcher.active && !this.closed) this.watchers.add(watcher);
    return stop;
  }

  private firstLogIndexAfter(revision: number): number {
    const log = this.log;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (log[mid].revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Rebuilds the event for a logged change (replay only; live events reuse the parsed objects). */
  private eventOf(entry: LogEntry): StoreEvent {
    const cur = this.objects.get(entry.key);
    const object = cur && cur.revision === entry.revision ? cur.object : JSON.parse(entry.json);
    const event: StoreEvent = {
      type: entry.type,
      key: entry.key,
      revision: entry.revision,
      object,
      json: entry.json,
    };
    if (entry.prevJson !== undefined) event.prev = JSON.parse(entry.prevJson);
    return event;
  }

  /**
   * Delivers `event` to every matching watcher, synchronously and in revision order. A write made
   * by a callback is queued and delivered after the current event has reached every watcher.
   */
  private publish(event: StoreEvent): void {
    this.pending.push(event);
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let i = 0; i < this.pending.length; i++) {
        const ev = this.pending[i];
        for (const w of this.watchers) {
          if (!w.active || ev.revision <= w.last) continue;
          w.last = ev.revision;
          if (!ev.key.startsWith(w.prefix)) continue;
          try {
            w.onEvent(ev);
          } catch (e) {
            reportWatcherError(e);
          }
        }
      }
    } finally {
      this.pending.length = 0;
      this.delivering = false;
    }
  }

  // ---- lifecycle ----

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    for (const w of this.watchers) w.active = false;
    this.watchers.clear();
    this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("store is closed");
  }
}
