// The registry entry describing one API kind. Everything generic in the API server (routing,
// discovery, validation, table output, field selectors, strategic merge) reads these entries, so
// adding a kind (Services, Deployments, NetworkPolicies…) means adding one file under kinds/.

import type { FieldError, KubeObject } from "./types.ts";

export interface TableColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  format?: string;
  description?: string;
  /** 0 = always shown; 1 = only with `-o wide`. */
  priority?: number;
}

export interface KindSpec<T extends KubeObject = KubeObject> {
  /** API group, "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Plural lower-case resource name used in URLs (`pods`). */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Subresources served besides the main resource, e.g. ["status", "binding", "log"]. */
  subresources?: string[];
  /** Extra verbs beyond the default set, or a restricted set for read-only views. */
  verbs?: string[];
  /**
   * A view over another kind's storage (events.k8s.io/v1 Event over core/v1 Event). Reads convert
   * with toExternal; writes convert with toInternal.
   */
  storage?: {
    group: string;
    resource: string;
    toExternal(internal: KubeObject): KubeObject;
    toInternal?(external: KubeObject): KubeObject;
  };
  /** Fill defaults in place (admission-time defaulting), before validation. */
  defaults?(obj: T): void;
  /** Validate a whole object on create; return every problem at once. */
  validate(obj: T): FieldError[];
  /** Extra update checks (immutability). Runs after `validate` on the new object. */
  validateUpdate?(obj: T, old: T): FieldError[];
  /**
   * Full-object updates only, before validation (upstream's strategy PrepareForUpdate): fill in
   * server-allocated values a client left out and drop fields a type change made meaningless.
   */
  prepareForUpdate?(obj: T, old: T): void;
  /** Field selectors beyond metadata.name / metadata.namespace, e.g. "spec.nodeName". */
  selectableFields?: Record<string, (obj: T) => string | undefined>;
  /** Server-side table printing (`Accept: application/json;as=Table`). */
  table: {
    columns: TableColumn[];
    cells(obj: T, now: Date): unknown[];
  };
  /**
   * Strategic-merge-patch list semantics by JSON path without indexes ("spec.containers",
   * "spec.containers.ports"). A value names the merge key; "" means a list of primitives merged as
   * a set. Lists not named here are replaced whole, as upstream does for atomic lists.
   */
  mergeKeys?: Record<string, string>;
  /** Does this kind have a `status` that the main resource ignores on update (status subresource)? */
  statusSubresource?: boolean;
}

export function apiVersionOf(spec: { group: string; version: string }): string {
  return spec.group === "" ? spec.version : `${spec.group}/${spec.version}`;
}
