// The generic resource layer: every verb on every kind, with upstream semantics (defaults,
// validation, optimistic concurrency, graceful deletion, finalizers, selectors, watches). HTTP
// handlers and in-process controllers both call this, so a controller write is checked exactly like
// a kubectl write. Kind-specific behaviour lives in the KindSpec entries, never here.

import { randomUUID } from "node:crypto";
import { rfc3339 } from "../emulator/duration.ts";
import {
  type FieldSelector,
  fieldSelectorFields,
  matchesFields,
  parseFieldSelector,
} from "../emulator/field-selector.ts";
import { finalizersForDeletion, type PropagationPolicy } from "../emulator/garbage-collection.ts";
import { apiVersionOf, type KindSpec } from "../emulator/kind.ts";
import { type LabelSelector, matchesLabels, parseLabelSelector } from "../emulator/label-selector.ts";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from "../emulator/patch.ts";
import type { FieldError, KubeObject } from "../emulator/types.ts";
import { formatInvalidMessage } from "../emulator/validation.ts";
import { ApiError, conflictModified, errors } from "./errors.ts";
import { type Registry, storageKey, storagePrefix } from "./registry.ts";
import { type Store, type StoredObject, StoreError, type StoreEvent } from "./store/store.ts";

export type PatchType = "merge" | "json" | "strategic";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  /** Objects in external form, each with its JSON. */
  items: { object: KubeObject; json: string }[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Start after this revision; undefined or "0" = send current objects as ADDED first. */
  resourceVersion?: string;
  /** sendInitialEvents=true: initial ADDED events then a bookmark marking their end. */
  sendInitialEvents?: boolean;
}

export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  object: KubeObject;
  /** JSON of `object` when already serialized. */
  json?: string;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
  /** Foreground and Orphan leave a finalizer the garbage collector acts on; Background (default) does not. */
  propagationPolicy?: PropagationPolicy;
  /** The deprecated form of propagationPolicy: Orphan. */
  orphanDependents?: boolean;
}

export interface WriteOptions {
  dryRun?: boolean;
  subresource?: string;
}

export type AdmissionOperation = "CREATE" | "UPDATE" | "DELETE";

export interface AdmissionRequest {
  operation: AdmissionOperation;
  /**
   * CREATE/UPDATE: the object about to be stored, defaulted and validated; a hook may change it in
   * place (allocated values). DELETE: the stored object about to be removed.
   */
  object: KubeObject;
  /** The stored object before the write (UPDATE, DELETE). */
  old?: KubeObject;
  dryRun: boolean;
  /** "status" for status writes; undefined for the main resource and for controllers' mutate(). */
  subresource?: string;
}

/**
 * What a hook reserved for one write. Exactly one of the two runs: `commit` once the store write
 * succeeded, `abort` when it failed, was a dry run, or a later hook refused the write.
 */
export interface AdmissionTicket {
  commit?(): void;
  abort?(): void;
}

/**
 * A per-kind step between validation and the store write (upstream's service REST allocating IPs
 * and ports inside the create/update). Throw AdmissionError for a 422 naming fields, or an
 * ApiError for anything else; the write then does not happen.
 */
export type AdmissionHook = (
  req: AdmissionRequest,
) => AdmissionTicket | undefined | Promise<AdmissionTicket | undefined>;

/** A hook's refusal, answered as 422 Invalid with these causes (`Service "web" is invalid: ...`). */
export class AdmissionError extends Error {
  readonly causes: FieldError[];
  constructor(causes: FieldError[]) {
    super(causes.map((c) => `${c.field}: ${c.message}`).join(", "));
    this.causes = causes;
  }
}

function settle(tickets: AdmissionTicket[], stored: boolean): void {
  for (const t of tickets) {
    try {
      if (stored) t.commit?.();
      else t.abort?.();
    } catch (e) {
      console.error("kemu admission: settling a write:", e);
    }
  }
}

const MAX_CONFLICT_RETRIES = 8;
/** Pseudo-subresource for mutate(): the change function returns the whole object. */
const RAW = "\u0000raw";
const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";
/** Namespaces the NamespaceLifecycle admission plugin refuses to delete. */
const IMMORTAL_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);

/** What a pod's graceful deletion needs to decide; other kinds delete at once. */
function graceSeconds(spec: KindSpec, obj: KubeObject, requested: number | undefined): number {
  if (spec.kind !== "Pod" || spec.group !== "") return 0;
  if (!obj.spec?.nodeName) return 0; // never scheduled: nothing on a node to stop
  const phase = obj.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return 0;
  const grace = requested ?? obj.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, grace);
}

function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
  return s;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Everything except metadata and status: a change here bumps metadata.generation. */
function specPart(obj: KubeObject): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return JSON.stringify(rest);
}

function withoutVersion(obj: KubeObject): string {
  return JSON.stringify({ ...obj, metadata: { ...obj.metadata, resourceVersion: undefined } });
}

interface Continue {
  rv: number;
  start: string;
}

function encodeContinue(c: Continue): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

function decodeContinue(token: string): Continue {
  try {
    const c = JSON.parse(Buffer.from(token, "base64url").toString());
    if (typeof c.rv === "number" && typeof c.start === "string") return c;
  } catch {}
  throw errors.badRequest("continue key is not valid: invalid continue token");
}

export class Resources {
  readonly store: Store;
  readonly registry: Registry;
  private readonly now: () => Date;
  private readonly admission = new Map<string, AdmissionHook[]>();

  constructor(store: Store, registry: Registry, opts: { now?: () => Date } = {}) {
    this.store = store;
    this.registry = registry;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Registers an admission hook for writes to a kind's storage (views of it included). Hooks run
   * in registration order: CREATE before a create, UPDATE before an update (setting a
   * deletionTimestamp excepted), DELETE before the object leaves the store. Returns an unregister
   * function.
   */
  admit(spec: KindSpec, hook: AdmissionHook): () => void {
    const s = this.storageSpec(spec);
    const key = `${s.group}/${s.resource}`;
    const hooks = this.admission.get(key) ?? [];
    hooks.push(hook);
    this.admission.set(key, hooks);
    return () => {
      const i = hooks.indexOf(hook);
      if (i >= 0) hooks.splice(i, 1);
    };
  }

  /** Runs the kind's hooks; if one refuses, what the earlier ones reserved is given back. */
  private async runAdmission(
    spec: KindSpec,
    internal: KindSpec,
    req: AdmissionRequest,
  ): Promise<AdmissionTicket[]> {
    const hooks = this.admission.get(`${internal.group}/${internal.resource}`);
    if (!hooks?.length) return [];
    const tickets: AdmissionTicket[] = [];
    try {
      for (const hook of hooks) {
        const t = await hook(req);
        if (t) tickets.push(t);
      }
    } catch (e) {
      settle(tickets, false);
      if (e instanceof AdmissionError) throw this.invalid(spec, req.object, e.causes);
      throw e;
    }
    return tickets;
  }

  // ---- reads ----

  async get(spec: KindSpec, namespace: string | undefined, name: string): Promise<KubeObject> {
    const stored = await this.store.get(storageKey(spec, namespace, name));
    if (!stored) throw errors.notFound(spec.resource, spec.group, name);
    return this.external(spec, stored.object);
  }

  /** get() that answers undefined instead of NotFound. */
  async find(spec: KindSpec, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const stored = await this.store.get(storageKey(spec, namespace, name));
    return stored ? this.external(spec, stored.object) : undefined;
  }

  async list(spec: KindSpec, namespace: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    const match = this.matcher(spec, opts.labelSelector, opts.fieldSelector);
    const { items, revision } = await this.store.list(storagePrefix(spec, namespace));
    let start = 0;
    let rv = revision;
    if (opts.continue) {
      const c = decodeContinue(opts.continue);
      rv = c.rv;
      start = lowerBound(items, c.start);
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Number.POSITIVE_INFINITY;
    const out: ListResult["items"] = [];
    let i = start;
    for (; i < items.length && out.length < limit; i++) {
      const obj = items[i].object;
      if (!match(obj)) continue;
      out.push(this.externalStored(spec, items[i]));
    }
    const result: ListResult = { items: out, resourceVersion: String(rv) };
    if (i < items.length && out.length >= limit) {
      let remaining = 0;
      for (let j = i; j < items.length; j++) if (match(items[j].object)) remaining++;
      if (remaining > 0) {
        // The token names the last key returned; the next page starts strictly after it.
        result.continue = encodeContinue({ rv, start: items[i - 1].key });
        result.remainingItemCount = remaining;
      }
    }
    return result;
  }

  // ---- writes ----

  async create(
    spec: KindSpec,
    namespace: string | undefined,
    body: unknown,
    opts: WriteOptions = {},
  ): Promise<KubeObject> {
    let obj = this.checkBody(spec, body, namespace);
    if (spec.storage) {
      if (!spec.storage.toInternal) throw errors.methodNotAllowed("create");
      obj = spec.storage.toInternal(obj);
    }
    const internal = this.storageSpec(spec);
    const meta = obj.metadata;
    if (meta.resourceVersion) {
      throw this.invalid(spec, obj, [
        {
          reason: "FieldValueInvalid",
          field: "metadata.resourceVersion",
          message: `Invalid value: "${meta.resourceVersion}": must be empty`,
        },
      ]);
    }
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(this.now());
    meta.generation = 1;
    internal.defaults?.(obj);
    const problems = internal.validate(obj);
    if (problems.length) throw this.invalid(spec, obj, problems);
    if (internal.namespaced) await this.checkNamespaceWritable(meta.namespace!, spec, meta.name!);
    const tickets = await this.runAdmission(spec, internal, {
      operation: "CREATE",
      object: obj,
      dryRun: !!opts.dryRun,
    });
    if (opts.dryRun) {
      settle(tickets, false);
      return this.external(spec, obj);
    }
    let stored = false;
    try {
      const created = await this.store.create(storageKey(internal, meta.namespace, meta.name!), obj);
      stored = true;
      return this.external(spec, created.object);
    } catch (e) {
      if (e instanceof StoreError && e.code === "exists")
        throw errors.alreadyExists(spec.resource, spec.group, meta.name!);
      throw e;
    } finally {
      settle(tickets, stored);
    }
  }

  async update(
    spec: KindSpec,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions = {},
  ): Promise<KubeObject> {
    let obj = this.checkBody(spec, body, namespace);
    if (obj.metadata.name !== name) {
      throw errors.badRequest(
        `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (spec.storage) {
      if (!spec.storage.toInternal) throw errors.methodNotAllowed("update");
      obj = spec.storage.toInternal(obj);
    }
    const wanted = obj.metadata.resourceVersion;
    return this.guaranteedUpdate(
      spec,
      namespace,
      name,
      opts,
      wanted === undefined || wanted === "",
      (current) => {
        if (wanted && wanted !== current.metadata.resourceVersion) {
          throw errors.conflict(spec.resource, spec.group, name, conflictModified);
        }
        return obj;
      },
    );
  }

  async patch(
    spec: KindSpec,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: WriteOptions = {},
  ): Promise<KubeObject> {
    const internal = this.storageSpec(spec);
    return this.guaranteedUpdate(spec, namespace, name, opts, true, (current) => {
      const external = this.external(spec, current);
      let patched: unknown;
      try {
        if (type === "json") patched = applyJsonPatch(external, patch as any);
        else if (!isObject(patch)) throw new Error("patch body must be a JSON object");
        else if (type === "merge") patched = applyMergePatch(external, patch);
        else patched = applyStrategicMergePatch(external, patch, internal.mergeKeys ?? {});
      } catch (e) {
        throw new ApiError(
          422,
          "Invalid",
          `the server rejected our request due to an error in our request: ${(e as Error).message}`,
        );
      }
      let obj = this.checkBody(spec, patched, namespace);
      if (obj.metadata.name !== name) {
        throw errors.badRequest(
          `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      const wanted = obj.metadata.resourceVersion;
      if (wanted && wanted !== current.metadata.resourceVersion) {
        throw errors.conflict(spec.resource, spec.group, name, conflictModified);
      }
      if (spec.storage?.toInternal) obj = spec.storage.toInternal(obj);
      return obj;
    });
  }

  /**
   * Read-modify-write for server-side logic (binding, controllers): `change` gets the current
   * stored object and returns the whole next object; validation, concurrency retries and
   * finalizer-driven removal apply as for any update.
   */
  async mutate(
    spec: KindSpec,
    namespace: string | undefined,
    name: string,
    change: (current: KubeObject) => KubeObject,
  ): Promise<KubeObject> {
    return this.guaranteedUpdate(spec, namespace, name, { subresource: RAW }, true, (current) =>
      change(structuredClone(current)),
    );
  }

  async delete(
    spec: KindSpec,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<KubeObject> {
    const internal = this.storageSpec(spec);
    if (spec.group === "" && spec.resource === "namespaces" && IMMORTAL_NAMESPACES.has(name)) {
      throw errors.forbidden("namespaces", "", name, "this namespace may not be deleted");
    }
    const key = storageKey(internal, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const stored = await this.store.get(key);
      if (!stored) throw errors.notFound(spec.resource, spec.group, name);
      const current = stored.object;
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== current.metadata.uid) {
        throw errors.conflict(
          spec.resource,
          spec.group,
          name,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
        );
      }
      if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
        throw errors.conflict(
          spec.resource,
          spec.group,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
        );
      }
      const gcFinalizers = finalizersForDeletion(current.metadata.finalizers, opts);
      const deleting = gcFinalizers
        ? { ...current, metadata: { ...current.metadata, finalizers: gcFinalizers } }
        : current;
      const next = this.markDeleting(internal, deleting, opts.gracePeriodSeconds);
      if (opts.dryRun) return this.external(spec, next ?? current);
      let tickets: AdmissionTicket[] = [];
      let removed = false;
      try {
        if (next) {
          if (withoutVersion(next) === withoutVersion(current)) return this.external(spec, current);
          const updated = await this.store.update(key, next, stored.revision);
          return this.external(spec, updated.object);
        }
        tickets = await this.runAdmission(spec, internal, {
          operation: "DELETE",
          object: current,
          old: current,
          dryRun: false,
        });
        const deleted = await this.store.delete(key, stored.revision);
        removed = true;
        return this.external(spec, deleted.object);
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict" && attempt < MAX_CONFLICT_RETRIES) continue;
        if (e instanceof StoreError && e.code === "not-found")
          throw errors.notFound(spec.resource, spec.group, name);
        throw e;
      } finally {
        settle(tickets, removed);
      }
    }
  }

  async deleteCollection(
    spec: KindSpec,
    namespace: string | undefined,
    list: ListOptions,
    opts: DeleteOptions = {},
  ): Promise<KubeObject[]> {
    const { items } = await this.list(spec, namespace, { ...list, limit: undefined, continue: undefined });
    const out: KubeObject[] = [];
    for (const { object } of items) {
      try {
        out.push(await this.delete(spec, object.metadata.namespace, object.metadata.name!, opts));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return out;
  }

  // ---- watch ----

  /**
   * Streams changes to `send` synchronously, filtered by selectors. An object that stops matching
   * a selector is sent as DELETED and one that starts matching as ADDED, as the apiserver's watch
   * cache does. Returns a stop function. Throws ApiError 410 when the revision is compacted.
   */
  watch(
    spec: KindSpec,
    namespace: string | undefined,
    opts: WatchOptions,
    send: (e: WatchEvent) => void,
  ): () => void {
    const match = this.matcher(spec, opts.labelSelector, opts.fieldSelector);
    const prefix = storagePrefix(spec, namespace);
    const rvText = opts.resourceVersion;
    if (rvText !== undefined && rvText !== "" && !/^\d+$/.test(rvText)) {
      throw errors.badRequest(`invalid resource version: ${rvText}`);
    }
    const initial = !rvText || rvText === "0" || opts.sendInitialEvents === true;
    if (!initial) return this.subscribe(spec, prefix, Number(rvText), match, send);
    // Replay a consistent snapshot, then follow the change log from the snapshot's revision, so
    // nothing written in between is lost or doubled.
    let stopped = false;
    let stop: () => void = () => {
      stopped = true;
    };
    this.store.list(prefix).then(
      ({ items, revision }) => {
        if (stopped) return;
        for (const it of items) {
          if (match(it.object)) send({ type: "ADDED", ...this.externalStored(spec, it) });
        }
        if (opts.sendInitialEvents) {
          send({
            type: "BOOKMARK",
            object: this.bookmark(spec, String(revision), { "k8s.io/initial-events-end": "true" }),
          });
        }
        stop = this.subscribe(spec, prefix, revision, match, send);
      },
      () => {},
    );
    return () => stop();
  }

  /** Validates watch parameters up front, so bad ones get a 400 before any streaming starts. */
  checkWatchOptions(spec: KindSpec, opts: WatchOptions): void {
    this.matcher(spec, opts.labelSelector, opts.fieldSelector);
    const rv = opts.resourceVersion;
    if (rv !== undefined && rv !== "" && !/^\d+$/.test(rv))
      throw errors.badRequest(`invalid resource version: ${rv}`);
  }

  bookmark(spec: KindSpec, resourceVersion: string, annotations?: Record<string, string>): KubeObject {
    return {
      kind: spec.kind,
      apiVersion: apiVersionOf(spec),
      metadata: { resourceVersion, ...(annotations ? { annotations } : {}) },
    };
  }

  private subscribe(
    spec: KindSpec,
    prefix: string,
    after: number,
    match: (o: KubeObject) => boolean,
    send: (e: WatchEvent) => void,
  ): () => void {
    try {
      return this.store.watch(prefix, after, (ev: StoreEvent) => {
        const now = match(ev.object);
        const before = ev.prev ? match(ev.prev) : false;
        let type: WatchEvent["type"] | undefined;
        if (ev.type === "ADDED") type = now ? "ADDED" : undefined;
        else if (ev.type === "DELETED") type = before || now ? "DELETED" : undefined;
        else if (now && before) type = "MODIFIED";
        else if (now) type = "ADDED";
        else if (before) type = "DELETED";
        if (!type) return;
        send({ type, ...this.externalStored(spec, { object: ev.object, json: ev.json }) });
      });
    } catch (e) {
      if (e instanceof StoreError && e.code === "gone") throw errors.gone(e.message);
      throw e;
    }
  }

  // ---- helpers ----

  private storageSpec(spec: KindSpec): KindSpec {
    if (!spec.storage) return spec;
    const s = this.registry.storageKind(spec.storage.group, spec.storage.resource);
    if (!s) throw errors.internal(`no storage kind for ${spec.storage.group}/${spec.storage.resource}`);
    return s;
  }

  private external(spec: KindSpec, obj: KubeObject): KubeObject {
    return spec.storage ? spec.storage.toExternal(obj) : obj;
  }

  private externalStored(
    spec: KindSpec,
    s: { object: KubeObject; json: string },
  ): { object: KubeObject; json: string } {
    if (!spec.storage) return { object: s.object, json: s.json };
    const object = spec.storage.toExternal(s.object);
    return { object, json: JSON.stringify(object) };
  }

  private invalid(spec: KindSpec, obj: KubeObject, problems: ReturnType<KindSpec["validate"]>): ApiError {
    const name = obj.metadata?.name ?? "";
    return errors.invalid(
      spec.kind,
      spec.group,
      name,
      formatInvalidMessage(spec.kind, name, problems, spec.group),
      problems,
    );
  }

  /** Shape checks shared by create/update/patch: a JSON object of this kind in this namespace. */
  private checkBody(spec: KindSpec, body: unknown, namespace: string | undefined): KubeObject {
    if (!isObject(body)) throw errors.badRequest("the body of the request must be a JSON or YAML object");
    // Bodies are always fresh (parsed JSON or a patch result), so they are edited in place.
    const obj = body as KubeObject;
    const apiVersion = apiVersionOf(spec);
    if (obj.kind !== undefined && obj.kind !== spec.kind) {
      throw errors.badRequest(
        `the kind in the data (${obj.kind}) does not match the expected kind (${spec.kind})`,
      );
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) {
      throw errors.badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersion})`,
      );
    }
    obj.kind = spec.kind;
    obj.apiVersion = apiVersion;
    if (obj.metadata === undefined) obj.metadata = {};
    if (!isObject(obj.metadata)) throw errors.badRequest("metadata must be an object");
    if (spec.namespaced) {
      if (obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace) {
        throw errors.badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      obj.metadata.namespace = obj.metadata.namespace || namespace;
    } else {
      delete obj.metadata.namespace;
    }
    return obj;
  }

  private async checkNamespaceWritable(namespace: string, spec: KindSpec, name: string): Promise<void> {
    const ns = await this.store.get(`/core/namespaces/${namespace}`);
    if (!ns) throw errors.notFound("namespaces", "", namespace);
    if (ns.object.metadata.deletionTimestamp || ns.object.status?.phase === "Terminating") {
      throw errors.forbidden(
        spec.resource,
        spec.group,
        name,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  /**
   * The read-modify-write loop behind update and patch: rebuild from the latest stored object and
   * retry on a storage conflict when the client did not pin a resourceVersion.
   */
  private async guaranteedUpdate(
    spec: KindSpec,
    namespace: string | undefined,
    name: string,
    opts: WriteOptions,
    retryOnConflict: boolean,
    desired: (current: KubeObject) => KubeObject,
  ): Promise<KubeObject> {
    const internal = this.storageSpec(spec);
    const key = storageKey(internal, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const stored = await this.store.get(key);
      if (!stored) throw errors.notFound(spec.resource, spec.group, name);
      const current = stored.object;
      const wanted = desired(current);
      // Every full body is defaulted, as upstream's decoder does (kubectl replace of a minimal
      // manifest); status and server-owned fields then come back from the stored object.
      if (!opts.subresource) internal.defaults?.(wanted);
      const next = this.mergeUpdate(internal, current, wanted, opts.subresource);
      if (!opts.subresource || opts.subresource === RAW) internal.prepareForUpdate?.(next, current);
      const problems = [...internal.validate(next), ...(internal.validateUpdate?.(next, current) ?? [])];
      if (problems.length) throw this.invalid(spec, next, problems);
      if (withoutVersion(next) === withoutVersion(current)) return this.external(spec, current);
      const finished = this.finishedDeleting(next);
      const tickets = await this.runAdmission(spec, internal, {
        operation: finished ? "DELETE" : "UPDATE",
        object: finished ? current : next,
        old: current,
        dryRun: !!opts.dryRun,
        subresource: opts.subresource === RAW ? undefined : opts.subresource,
      });
      if (opts.dryRun) {
        settle(tickets, false);
        return this.external(spec, next);
      }
      let written = false;
      try {
        const result = finished
          ? await this.store.delete(key, stored.revision)
          : await this.store.update(key, next, stored.revision);
        written = true;
        return this.external(spec, result.object);
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") {
          if (retryOnConflict && attempt < MAX_CONFLICT_RETRIES) continue;
          throw errors.conflict(spec.resource, spec.group, name, conflictModified);
        }
        if (e instanceof StoreError && e.code === "not-found")
          throw errors.notFound(spec.resource, spec.group, name);
        throw e;
      } finally {
        settle(tickets, written);
      }
    }
  }

  /** Applies the status-subresource split and keeps server-owned metadata. */
  private mergeUpdate(
    spec: KindSpec,
    current: KubeObject,
    incoming: KubeObject,
    subresource?: string,
  ): KubeObject {
    const cm = current.metadata;
    if (subresource === RAW) return incoming;
    if (subresource === "status") {
      return { ...current, status: incoming.status, metadata: { ...cm } };
    }
    if (subresource === "finalize") {
      return { ...current, spec: { ...current.spec, finalizers: incoming.spec?.finalizers ?? [] } };
    }
    const im = incoming.metadata;
    const next: KubeObject = {
      ...incoming,
      metadata: {
        ...im,
        name: cm.name,
        namespace: cm.namespace,
        uid: cm.uid,
        creationTimestamp: cm.creationTimestamp,
        generation: cm.generation,
        resourceVersion: cm.resourceVersion,
        deletionTimestamp: cm.deletionTimestamp,
        deletionGracePeriodSeconds: cm.deletionGracePeriodSeconds,
      },
    };
    for (const k of [
      "namespace",
      "deletionTimestamp",
      "deletionGracePeriodSeconds",
      "generateName",
    ] as const) {
      if (next.metadata[k] === undefined) delete next.metadata[k];
    }
    if (spec.statusSubresource) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    // Only the finalize subresource edits a namespace's spec.finalizers, as upstream.
    if (current.kind === "Namespace" && spec.group === "") {
      next.spec = { ...next.spec, finalizers: current.spec?.finalizers };
      if (next.spec.finalizers === undefined) delete next.spec.finalizers;
    }
    if (specPart(next) !== specPart(current)) next.metadata.generation = (cm.generation ?? 1) + 1;
    return next;
  }

  /** A terminating object whose finalizers are all gone leaves the store. */
  private finishedDeleting(obj: KubeObject): boolean {
    const m = obj.metadata;
    const nsFinalizers = obj.kind === "Namespace" ? (obj.spec?.finalizers?.length ?? 0) : 0;
    return (
      !!m.deletionTimestamp &&
      !(m.finalizers?.length ?? 0) &&
      nsFinalizers === 0 &&
      (m.deletionGracePeriodSeconds ?? 0) === 0
    );
  }

  /**
   * Decides how a delete proceeds: undefined = remove now; an object = the terminating state to
   * store (pods on a node wait for the node's confirmation; finalizers wait for their owners).
   */
  private markDeleting(spec: KindSpec, current: KubeObject, requestedGrace?: number): KubeObject | undefined {
    const m = current.metadata;
    const grace = graceSeconds(spec, current, requestedGrace);
    const finalizers = m.finalizers?.length ?? 0;
    const nsFinalizers =
      spec.kind === "Namespace" && spec.group === "" ? (current.spec?.finalizers?.length ?? 0) : 0;
    if (grace === 0 && finalizers === 0 && nsFinalizers === 0) return undefined;
    const now = this.now();
    const next: KubeObject = { ...current, metadata: { ...m } };
    if (grace > 0) {
      const deadline = new Date(now.getTime() + grace * 1000);
      // A second delete may only shorten the grace period, as upstream.
      if (!m.deletionTimestamp || Date.parse(m.deletionTimestamp) > deadline.getTime()) {
        next.metadata.deletionTimestamp = rfc3339(deadline);
        next.metadata.deletionGracePeriodSeconds = grace;
      }
    } else {
      next.metadata.deletionTimestamp ??= rfc3339(now);
      next.metadata.deletionGracePeriodSeconds = 0;
      if (finalizers === 0 && nsFinalizers === 0) return undefined;
    }
    if (nsFinalizers) next.status = { ...(current.status ?? {}), phase: "Terminating" };
    return next;
  }

  private matcher(spec: KindSpec, labelSel?: string, fieldSel?: string): (o: KubeObject) => boolean {
    let labels: LabelSelector | undefined;
    let fields: FieldSelector | undefined;
    try {
      if (labelSel) labels = parseLabelSelector(labelSel);
    } catch (e) {
      throw errors.badRequest((e as Error).message);
    }
    try {
      if (fieldSel) fields = parseFieldSelector(fieldSel);
    } catch (e) {
      throw errors.badRequest((e as Error).message);
    }
    const getters = this.fieldGetters(spec);
    if (fields) {
      for (const f of fieldSelectorFields(fields)) {
        if (!getters[f]) throw errors.badRequest(`field label not supported: ${f}`);
      }
    }
    const convert = spec.storage ? spec.storage.toExternal : undefined;
    return (internal) => {
      const o = convert ? convert(internal) : internal;
      if (labels && !matchesLabels(labels, o.metadata.labels)) return false;
      if (fields && !matchesFields(fields, (f) => getters[f]?.(o))) return false;
      return true;
    };
  }

  private fieldGetters(spec: KindSpec): Record<string, (o: KubeObject) => string | undefined> {
    return {
      "metadata.name": (o) => o.metadata.name,
      ...(spec.namespaced ? { "metadata.namespace": (o: KubeObject) => o.metadata.namespace } : {}),
      ...(spec.selectableFields ?? {}),
    };
  }

  /** Internal helper for controllers: the stored form of every object of a kind. */
  async listStored(spec: KindSpec, namespace?: string): Promise<StoredObject[]> {
    return (await this.store.list(storagePrefix(spec, namespace))).items;
  }
}

function lowerBound(items: StoredObject[], afterKey: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].key <= afterKey) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
