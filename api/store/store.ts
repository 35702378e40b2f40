// The storage interface behind every handler: a revisioned key/value map with a change log, the
// subset of etcd3 semantics the API server needs. The embedded default is sqlite-store.ts; an etcd
// backend would implement the same interface.
//
// Keys look like `/<group or "core">/<resource>/<namespace>/<name>` (cluster-scoped kinds omit the
// namespace). Every write bumps one global revision, stored into `metadata.resourceVersion`.

import type { KubeObject } from "../../emulator/types.ts";

export interface StoredObject {
  key: string;
  /** Revision of the last write to this key (= metadata.resourceVersion). */
  revision: number;
  /** Parsed object; treat as immutable (shared with other readers). */
  object: KubeObject;
  /** The same object serialized, so lists and watches never re-serialize. */
  json: string;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: ChangeType;
  key: string;
  revision: number;
  /** New state; for DELETED the last state, with resourceVersion set to the delete's revision. */
  object: KubeObject;
  json: string;
  /** State before the change (undefined for ADDED): watchers filtering by label need it. */
  prev?: KubeObject;
}

export type StoreErrorCode = "exists" | "not-found" | "conflict" | "gone";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface Store {
  /** Current global revision (the resourceVersion of the last write, 0 when empty). */
  revision(): number;
  /** Oldest revision a watch can resume from; older ones get StoreError("gone"). */
  oldestRevision(): number;
  get(key: string): Promise<StoredObject | undefined>;
  /** Objects whose key starts with `prefix` (which ends with "/"), sorted by key. */
  list(prefix: string): Promise<{ items: StoredObject[]; revision: number }>;
  /** Fails with "exists" if the key is present. */
  create(key: string, object: KubeObject): Promise<StoredObject>;
  /** Fails with "not-found", or "conflict" when expectedRevision is given and differs. */
  update(key: string, object: KubeObject, expectedRevision?: number): Promise<StoredObject>;
  /** Fails with "not-found", or "conflict" when expectedRevision is given and differs. */
  delete(key: string, expectedRevision?: number): Promise<StoredObject>;
  /**
   * Calls `onEvent` synchronously, in revision order, for every change under `prefix` with
   * revision > afterRevision: first replaying the retained log, then live. Throws "gone" when
   * afterRevision < oldestRevision() - 1. Returns a function that stops the watch.
   */
  watch(prefix: string, afterRevision: number, onEvent: (event: StoreEvent) => void): () => void;
  close(): void;
}
