// The three patch formats the API server accepts on PATCH: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and strategic merge patch (what kubectl apply/edit/patch send for built-in kinds).
// All functions are pure: inputs are never mutated and results never alias them.

export class PatchError extends Error {
  override name = "PatchError";
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// Own-property access only: a patch key "__proto__" is data, and must neither read nor replace a
// prototype (plain `obj[k] = v` would, opening the door to prototype pollution).
function getOwn(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function setOwn(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
    );
  }
  return false;
}

// =============================================================================================
// JSON merge patch (RFC 7386)

/** `null` deletes a key, objects merge recursively, anything else (arrays included) replaces. */
export function applyMergePatch(target: unknown, patch: unknown): any {
  return mergePatchInto(structuredClone(target), patch);
}

/** `target` is our own copy and may be modified in place. */
function mergePatchInto(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result = isObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else setOwn(result, key, mergePatchInto(getOwn(result, key), value));
  }
  return result;
}

// =============================================================================================
// JSON patch (RFC 6902)

export interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

/**
 * Applies the operations in order; any failure throws PatchError naming the operation and path
 * (as the jsonpatch library the API server uses does), and nothing is applied.
 */
export function applyJsonPatch(target: unknown, ops: unknown): any {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be a list of operations");
  let doc = structuredClone(target);
  for (const op of ops) doc = applyOperation(doc, op);
  return doc;
}

function applyOperation(doc: unknown, op: unknown): unknown {
  if (!isObject(op)) throw new PatchError(`invalid JSON patch operation: ${JSON.stringify(op)}`);
  const kind = op.op;
  const path = op.path;
  switch (kind) {
    case "add":
      return addValue(doc, "add", pointer("add", path), requireValue(op, "add"), path as string);
    case "remove":
      return removeValue(doc, "remove", pointer("remove", path), path as string);
    case "replace":
      return replaceValue(doc, pointer("replace", path), requireValue(op, "replace"), path as string);
    case "move":
      return moveValue(doc, op.from, path);
    case "copy": {
      const value = getValue(doc, "copy", pointer("copy", op.from, "from"), op.from as string, "from path");
      return addValue(doc, "copy", pointer("copy", path), structuredClone(value), path as string);
    }
    case "test":
      return testValue(doc, pointer("test", path), requireValue(op, "test"), path as string);
    default:
      throw new PatchError(`unexpected kind of JSON patch operation: ${JSON.stringify(kind ?? null)}`);
  }
}

function requireValue(op: JsonObject, kind: string): unknown {
  if (!Object.hasOwn(op, "value")) throw new PatchError(`${kind} operation does not apply: missing value`);
  return structuredClone(op.value);
}

/** RFC 6901: "" is the whole document; otherwise "/"-separated tokens with ~1 = "/" and ~0 = "~". */
function pointer(kind: string, raw: unknown, field = "path"): string[] {
  if (typeof raw !== "string") throw new PatchError(`${kind} operation does not apply: missing ${field}`);
  if (raw === "") return [];
  if (!raw.startsWith("/") || /~([^01]|$)/.test(raw)) {
    throw new PatchError(`${kind} operation does not apply: invalid JSON pointer: ${raw}`);
  }
  return raw
    .slice(1)
    .split("/")
    .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** Array indexes are decimal without leading zeros; "-" (past the end) only where the caller allows. */
function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (allowEnd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  return i < length || (allowEnd && i === length) ? i : undefined;
}

/** Walks every token but the last, returning the container that holds the target, if it exists. */
function parentOf(doc: unknown, tokens: string[]): JsonObject | unknown[] | undefined {
  let node: unknown = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) {
      const i = arrayIndex(token, node.length, false);
      node = i === undefined ? undefined : node[i];
    } else if (isObject(node)) {
      node = getOwn(node, token);
    } else {
      return undefined;
    }
  }
  return Array.isArray(node) || isObject(node) ? node : undefined;
}

function getValue(doc: unknown, kind: string, tokens: string[], path: string, what = "path"): unknown {
  if (tokens.length === 0) return doc;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, false);
    if (i !== undefined) return parent[i];
  } else if (parent !== undefined && Object.hasOwn(parent, last)) {
    return parent[last];
  }
  throw new PatchError(`${kind} operation does not apply: doc is missing ${what}: ${path}`);
}

function addValue(doc: unknown, kind: string, tokens: string[], value: unknown, path: string): unknown {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens);
  if (parent === undefined)
    throw new PatchError(`${kind} operation does not apply: doc is missing path: ${path}`);
  const last = tokens[tokens.length - 1];
  if (isObject(parent)) {
    setOwn(parent, last, value);
    return doc;
  }
  const i = arrayIndex(last, parent.length, true);
  if (i === undefined) throw new PatchError(`${kind} operation does not apply: invalid index: ${path}`);
  parent.splice(i, 0, value);
  return doc;
}

function removeValue(doc: unknown, kind: string, tokens: string[], path: string): unknown {
  if (tokens.length === 0)
    throw new PatchError(`${kind} operation does not apply: cannot remove the whole document`);
  getValue(doc, kind, tokens, path); // throws when missing
  const parent = parentOf(doc, tokens)!;
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete parent[last];
  return doc;
}

function replaceValue(doc: unknown, tokens: string[], value: unknown, path: string): unknown {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens);
  if (parent === undefined)
    throw new PatchError(`replace operation does not apply: doc is missing path: ${path}`);
  getValue(doc, "replace", tokens, path, "key");
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent[Number(last)] = value;
  else setOwn(parent, last, value);
  return doc;
}

function moveValue(doc: unknown, from: unknown, path: unknown): unknown {
  const fromTokens = pointer("move", from, "from");
  const toTokens = pointer("move", path);
  const value = getValue(doc, "move", fromTokens, from as string, "from path");
  if (from === path) return doc;
  // A location cannot be moved into one of its own children (RFC 6902 section 4.4).
  if ((path as string).startsWith(`${from}/`)) {
    throw new PatchError(`move operation does not apply: cannot move ${from} into its own child ${path}`);
  }
  const removed = removeValue(doc, "move", fromTokens, from as string);
  return addValue(removed, "move", toTokens, value, path as string);
}

function testValue(doc: unknown, tokens: string[], expected: unknown, path: string): unknown {
  const actual = getValue(doc, "test", tokens, path);
  if (!deepEqual(actual, expected)) throw new PatchError(`testing value ${path} failed`);
  return doc;
}

// =============================================================================================
// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, apply side)

/**
 * List merge semantics by dotted path without indexes ("spec.containers", "spec.containers.ports").
 * A value names the merge key; "" marks a list of primitives merged as a set. Lists not listed are
 * atomic: the patch replaces them whole.
 */
export type MergeKeys = Readonly<Record<string, string>>;

const PATCH = "$patch";
const RETAIN_KEYS = "$retainKeys";
const SET_ELEMENT_ORDER = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList";

/**
 * Merges `patch` into `target` the way the API server does for built-in kinds. Differences from
 * upstream are deliberate and only where upstream would leak directive keys into the object.
 */
export function applyStrategicMergePatch(target: unknown, patch: unknown, mergeKeys: MergeKeys): any {
  if (!isObject(patch)) throw new PatchError("a strategic merge patch must be a JSON object");
  return mergeMap(isObject(target) ? structuredClone(target) : undefined, patch, "", mergeKeys);
}

function childPath(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function mergeKeyFor(mergeKeys: MergeKeys, path: string): string | undefined {
  return Object.hasOwn(mergeKeys, path) ? mergeKeys[path] : undefined;
}

/** The list field a `$setElementOrder/<f>` or `$deleteFromPrimitiveList/<f>` key refers to. */
function directiveField(key: string, prefix: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  if (!key.startsWith(`${prefix}/`) || key.length === prefix.length + 1) {
    throw new PatchError(
      prefix === SET_ELEMENT_ORDER
        ? "invalid patch format of setElementOrder list"
        : "invalid patch format of primitive list",
    );
  }
  return key.slice(prefix.length + 1);
}

function isDirectiveKey(key: string): boolean {
  return (
    key === PATCH ||
    key === RETAIN_KEYS ||
    directiveField(key, SET_ELEMENT_ORDER) !== undefined ||
    directiveField(key, DELETE_FROM_PRIMITIVE_LIST) !== undefined
  );
}

/**
 * Merges a patch map into `original` (our own copy, modified in place; undefined when the field
 * is new). Order matters and follows upstream: $retainKeys prunes first, fields merge, merged
 * lists are reordered by $setElementOrder, then $deleteFromPrimitiveList removes values.
 */
function mergeMap(
  original: JsonObject | undefined,
  patch: JsonObject,
  path: string,
  mergeKeys: MergeKeys,
): JsonObject {
  const directive = getOwn(patch, PATCH);
  if (directive !== undefined) return mapDirective(directive, patch, path, mergeKeys);
  const result = original ?? {};
  applyRetainKeys(result, patch);
  // $setElementOrder interleaves server-only items by their position in the list before the merge.
  const listsBefore = new Map<string, unknown>();
  for (const key of Object.keys(patch)) {
    const field = directiveField(key, SET_ELEMENT_ORDER);
    if (field !== undefined) listsBefore.set(field, getOwn(result, field));
  }
  for (const [key, value] of Object.entries(patch)) {
    if (!isDirectiveKey(key)) mergeField(result, key, value, childPath(path, key), mergeKeys);
  }
  applySetElementOrder(result, patch, listsBefore, path, mergeKeys);
  applyDeleteFromPrimitiveList(result, patch);
  return result;
}

/**
 * `$patch: replace` swaps the map for the patch's contents; `$patch: delete` leaves an empty map,
 * which is what upstream's handleDirectiveInMergeMap returns for a map that exists.
 */
function mapDirective(directive: unknown, patch: JsonObject, path: string, mergeKeys: MergeKeys): JsonObject {
  if (directive === "replace") {
    const rest = Object.fromEntries(Object.entries(patch).filter(([k]) => k !== PATCH));
    return mergeMap(undefined, rest, path, mergeKeys);
  }
  if (directive === "delete") return {};
  throw new PatchError(`unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);
}

function mergeField(
  result: JsonObject,
  key: string,
  value: unknown,
  path: string,
  mergeKeys: MergeKeys,
): void {
  if (value === null) {
    delete result[key];
    return;
  }
  const current = getOwn(result, key);
  let merged: unknown;
  if (isObject(current) && isObject(value)) merged = mergeMap(current, value, path, mergeKeys);
  else if (Array.isArray(current) && Array.isArray(value))
    merged = mergeList(current, value, path, mergeKeys);
  else merged = materialize(value, path, mergeKeys); // new field, or the type changed: patch wins
  if (merged === undefined) delete result[key];
  else setOwn(result, key, merged);
}

/**
 * A patch value with nothing to merge into, stripped of directives and nulls (upstream's
 * removeDirectives + discardNullValuesFromPatch). Undefined means "leave the field out": a map
 * that only says `$patch: delete`.
 */
function materialize(value: unknown, path: string, mergeKeys: MergeKeys): unknown {
  if (isObject(value)) {
    if (getOwn(value, PATCH) === "delete") return undefined;
    return mergeMap(undefined, value, path, mergeKeys);
  }
  if (Array.isArray(value)) return mergeList([], value, path, mergeKeys);
  return value;
}

/** $retainKeys: drop every existing key not listed; the patch itself may only set listed keys. */
function applyRetainKeys(result: JsonObject, patch: JsonObject): void {
  const retain = getOwn(patch, RETAIN_KEYS);
  if (retain === undefined) return;
  if (!Array.isArray(retain)) throw new PatchError("invalid patch format of retainKeys");
  const keep = new Set(retain);
  for (const [key, value] of Object.entries(patch)) {
    if (value !== null && !isDirectiveKey(key) && !keep.has(key)) {
      throw new PatchError("invalid patch format of retainKeys");
    }
  }
  for (const key of Object.keys(result)) if (!keep.has(key)) delete result[key];
}

function applyDeleteFromPrimitiveList(result: JsonObject, patch: JsonObject): void {
  for (const [key, values] of Object.entries(patch)) {
    const field = directiveField(key, DELETE_FROM_PRIMITIVE_LIST);
    if (field === undefined) continue;
    if (!Array.isArray(values)) throw new PatchError("invalid patch format of primitive list");
    const current = getOwn(result, field);
    if (Array.isArray(current))
      setOwn(
        result,
        field,
        current.filter((v) => !values.includes(v)),
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Lists

type Identity = (item: unknown) => unknown;

const primitiveIdentity: Identity = (item) => item;

function mergeKeyIdentity(mergeKey: string): Identity {
  return (item) => (isObject(item) ? getOwn(item, mergeKey) : undefined);
}

function elementKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Upstream decides map-vs-primitive merging by the elements actually present, and allows no mix. */
function listElementKind(path: string, ...lists: unknown[][]): string | undefined {
  let kind: string | undefined;
  for (const item of lists.flat()) {
    const k = elementKind(item);
    if (k === "array") throw new PatchError(`lists of lists are not supported (at ${path})`);
    if (kind !== undefined && k !== kind)
      throw new PatchError(`list element types are not identical at ${path}`);
    kind = k;
  }
  return kind;
}

function mergeList(original: unknown[], patch: unknown[], path: string, mergeKeys: MergeKeys): unknown[] {
  const mergeKey = mergeKeyFor(mergeKeys, path);
  if (mergeKey === undefined) return atomicList(patch, path, mergeKeys);
  const kind = listElementKind(path, original, patch);
  if (kind === undefined) return [];
  if (kind !== "object") return mergePrimitiveList(original, patch);
  if (mergeKey === "") throw new PatchError(`cannot merge lists without merge key for ${path}`);
  return mergeMapList(original as JsonObject[], patch as JsonObject[], mergeKey, path, mergeKeys);
}

/** An atomic list is replaced whole; elements carrying `$patch` are dropped like upstream's removeDirectives. */
function atomicList(patch: unknown[], path: string, mergeKeys: MergeKeys): unknown[] {
  return patch
    .filter((item) => !(isObject(item) && Object.hasOwn(item, PATCH)))
    .map((item) => materialize(item, path, mergeKeys));
}

/** Set union; ordering then follows the patch for its items and the live list for the rest. */
function mergePrimitiveList(original: unknown[], patch: unknown[]): unknown[] {
  const merged = [...new Set([...original, ...patch])];
  return enforceOrder(merged, patch, original, primitiveIdentity);
}

function requireMergeKey(item: JsonObject, mergeKey: string): void {
  if (!Object.hasOwn(item, mergeKey)) {
    throw new PatchError(`map: ${JSON.stringify(item)} does not contain declared merge key: ${mergeKey}`);
  }
}

/**
 * Lists of maps merged by key. `{$patch: delete, <key>: v}` removes matching items first;
 * `{$patch: replace}` anywhere makes the remaining patch items the whole list. Matching items merge
 * recursively under the list's own path; new ones are appended and then ordered like primitives.
 */
function mergeMapList(
  original: JsonObject[],
  patch: JsonObject[],
  mergeKey: string,
  path: string,
  mergeKeys: MergeKeys,
): unknown[] {
  const id = mergeKeyIdentity(mergeKey);
  let live = original;
  let replace = false;
  const items: JsonObject[] = [];
  for (const item of patch) {
    const directive = getOwn(item, PATCH);
    if (directive === undefined) {
      requireMergeKey(item, mergeKey);
      items.push(item);
    } else if (directive === "delete") {
      requireMergeKey(item, mergeKey);
      live = live.filter((o) => id(o) !== id(item));
    } else if (directive === "replace") {
      replace = true;
    } else if (directive === "merge") {
      throw new PatchError("merging lists cannot yet be specified in the patch");
    } else {
      throw new PatchError(`unknown patch type: ${String(directive)} in map: ${JSON.stringify(item)}`);
    }
  }
  if (replace) return items.map((item) => mergeMap(undefined, item, path, mergeKeys));
  for (const item of live) requireMergeKey(item, mergeKey);
  const merged: JsonObject[] = [...live];
  for (const item of items) {
    const i = merged.findIndex((o) => id(o) === id(item));
    if (i >= 0) merged[i] = mergeMap(merged[i], item, path, mergeKeys);
    else merged.push(mergeMap(undefined, item, path, mergeKeys));
  }
  return enforceOrder(merged, items, live, id);
}

function applySetElementOrder(
  result: JsonObject,
  patch: JsonObject,
  listsBefore: Map<string, unknown>,
  path: string,
  mergeKeys: MergeKeys,
): void {
  for (const [key, order] of Object.entries(patch)) {
    const field = directiveField(key, SET_ELEMENT_ORDER);
    if (field === undefined) continue;
    if (!Array.isArray(order)) throw new PatchError("invalid patch format of setElementOrder list");
    // On an atomic list the directive carries no meaning; the list was already replaced whole.
    const mergeKey = mergeKeyFor(mergeKeys, childPath(path, field));
    const merged = getOwn(result, field);
    if (mergeKey === undefined || !Array.isArray(merged)) continue;
    const id = isObject(merged[0]) && mergeKey !== "" ? mergeKeyIdentity(mergeKey) : primitiveIdentity;
    const patchList = getOwn(patch, field);
    if (Array.isArray(patchList)) validateOrderList(patchList, order, id);
    const before = listsBefore.get(field);
    setOwn(result, field, enforceOrder(merged, order, Array.isArray(before) ? before : [], id));
  }
}

/** Every non-directive patch item must appear in $setElementOrder, in the same relative order. */
function validateOrderList(patchList: unknown[], order: unknown[], id: Identity): void {
  const items = patchList.filter((item) => !(isObject(item) && Object.hasOwn(item, PATCH)));
  let next = 0;
  for (const entry of order) {
    if (next < items.length && id(items[next]) === id(entry)) next++;
  }
  if (next < items.length) {
    throw new PatchError(
      `The order in patch list:\n${JSON.stringify(patchList)}\n doesn't match ${SET_ELEMENT_ORDER} list:\n${JSON.stringify(order)}\n`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Ordering (upstream's normalizeElementOrder / mergeSortedSlice)

function indexIn(list: unknown[], item: unknown, id: Identity): number {
  const key = id(item);
  return list.findIndex((v) => id(v) === key);
}

/** Stable sort by position in `order`; items `order` does not mention keep their relative order at the end. */
function sortByOrder(items: unknown[], order: unknown[], id: Identity): unknown[] {
  const ranked = items.map((item, i) => ({ item, i, rank: indexIn(order, item, id) }));
  const found = ranked.filter((r) => r.rank >= 0).sort((a, b) => a.rank - b.rank || a.i - b.i);
  const rest = ranked.filter((r) => r.rank < 0);
  return [...found, ...rest].map((r) => r.item);
}

/**
 * Items the patch mentions take the patch's order; items only the server has keep the live
 * order, and are slotted in before a patch item only when both appear in the live list and the
 * server item came first. So new items land before untouched ones, as in real clusters (adding
 * a container via strategic merge puts it first unless `$setElementOrder` says otherwise).
 */
function enforceOrder(
  merged: unknown[],
  patchOrder: unknown[],
  serverOrder: unknown[],
  id: Identity,
): unknown[] {
  const inPatch = (item: unknown) => indexIn(patchOrder, item, id) >= 0;
  const fromPatch = sortByOrder(merged.filter(inPatch), patchOrder, id);
  const serverOnly = sortByOrder(
    merged.filter((item) => !inPatch(item)),
    serverOrder,
    id,
  );
  return interleave(serverOnly, fromPatch, serverOrder, id);
}

function interleave(
  serverOnly: unknown[],
  fromPatch: unknown[],
  serverOrder: unknown[],
  id: Identity,
): unknown[] {
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < fromPatch.length) {
    if (j >= fromPatch.length) out.push(serverOnly[i++]);
    else if (i >= serverOnly.length) out.push(fromPatch[j++]);
    else {
      const si = indexIn(serverOrder, serverOnly[i], id);
      const pj = indexIn(serverOrder, fromPatch[j], id);
      if (si >= 0 && pj >= 0 && si < pj) out.push(serverOnly[i++]);
      else out.push(fromPatch[j++]);
    }
  }
  return out;
}
