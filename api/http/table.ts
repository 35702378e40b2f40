// Server-side printing: meta.k8s.io/v1 Table responses, which is what `kubectl get` asks for and
// prints as-is. Columns and cells come from each kind's registry entry.

import { apiVersionOf, type KindSpec } from "../../emulator/kind.ts";
import type { KubeObject } from "../../emulator/types.ts";

export type IncludeObject = "None" | "Object" | "Metadata";

/** Does the Accept header ask for a Table (kubectl get does)? */
export function wantsTable(accept: string | null | undefined): boolean {
  if (!accept) return false;
  return accept.split(",").some((part) => {
    const params = part.split(";").map((p) => p.trim());
    return params.includes("as=Table") && params.some((p) => p === "g=meta.k8s.io");
  });
}

export function includeObjectParam(value: string | undefined): IncludeObject {
  return value === "None" || value === "Object" ? value : "Metadata";
}

function rowObject(obj: KubeObject, include: IncludeObject): unknown {
  if (include === "None") return undefined;
  if (include === "Object") return obj;
  return {
    kind: "PartialObjectMetadata",
    apiVersion: "meta.k8s.io/v1",
    metadata: obj.metadata,
  };
}

function columnDefinitions(spec: KindSpec) {
  return spec.table.columns.map((c, i) => ({
    name: c.name,
    type: c.type,
    format: c.format ?? (i === 0 ? "name" : ""),
    description: c.description ?? "",
    priority: c.priority ?? 0,
  }));
}

export function toTable(
  spec: KindSpec,
  objects: KubeObject[],
  opts: { resourceVersion?: string; continue?: string; remainingItemCount?: number; include: IncludeObject },
  now = new Date(),
): Record<string, unknown> {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: {
      resourceVersion: opts.resourceVersion,
      ...(opts.continue ? { continue: opts.continue } : {}),
      ...(opts.remainingItemCount !== undefined ? { remainingItemCount: opts.remainingItemCount } : {}),
    },
    columnDefinitions: columnDefinitions(spec),
    rows: objects.map((o) => ({ cells: spec.table.cells(o, now), object: rowObject(o, opts.include) })),
  };
}

export { apiVersionOf };
