// core/v1 Namespace: create-time defaults (the kubernetes.io/metadata.name label, the "kubernetes"
// spec finalizer, phase Active), ValidateNamespace, field selectors and `kubectl get ns` columns.

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import { validateLabelKey } from "../label-selector.ts";
import type { FieldError, KubeObject } from "../types.ts";
import { invalid, nameIsDNSLabel, validateObjectMeta } from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";

export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";
const STANDARD_FINALIZERS = ["kubernetes", "orphan", "foregroundDeletion"];

export function defaultNamespace(ns: KubeObject): void {
  const name = ns.metadata.name;
  if (name) ns.metadata.labels = { ...ns.metadata.labels, [NAMESPACE_NAME_LABEL]: name };
  ns.spec ??= {};
  const finalizers: string[] = ns.spec.finalizers ?? [];
  if (!finalizers.includes("kubernetes")) ns.spec.finalizers = [...finalizers, "kubernetes"];
  ns.status = { phase: "Active" };
}

/** ValidateNamespace: a DNS-1123 label name and well-formed spec.finalizers. */
export function validateNamespace(ns: KubeObject): FieldError[] {
  const errs = validateObjectMeta(ns.metadata, {
    namespaced: false,
    nameValidator: nameIsDNSLabel,
    kubeFinalizers: true,
  });
  for (const f of (ns.spec?.finalizers as string[] | undefined) ?? []) {
    for (const m of validateLabelKey(f)) errs.push(invalid("spec.finalizers", f, m));
    if (!f.includes("/") && !STANDARD_FINALIZERS.includes(f)) {
      errs.push(
        invalid("spec.finalizers", f, "name is neither a standard finalizer name nor is it fully qualified"),
      );
    }
  }
  return errs;
}

export const namespaceColumns: TableColumn[] = [
  nameColumn,
  { name: "Status", type: "string", format: "", description: "The status of the namespace" },
  ageColumn,
];

export const namespaceKind: KindSpec = {
  group: "",
  version: "v1",
  kind: "Namespace",
  resource: "namespaces",
  singular: "namespace",
  namespaced: false,
  shortNames: ["ns"],
  subresources: ["status", "finalize"],
  defaults: defaultNamespace,
  validate: validateNamespace,
  selectableFields: {
    "status.phase": (ns) => ns.status?.phase ?? "",
    // Upstream keeps this bare "name" field for backward compatibility.
    name: (ns) => ns.metadata.name ?? "",
  },
  table: {
    columns: namespaceColumns,
    cells: (ns, now) => [
      ns.metadata.name,
      ns.status?.phase ?? "",
      ageSince(ns.metadata.creationTimestamp, now),
    ],
  },
  mergeKeys: { ...metadataMergeKeys, "status.conditions": "type" },
  statusSubresource: true,
};
