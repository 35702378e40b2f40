// apps/v1 ReplicaSet: defaults (SetDefaults_ReplicaSet), validation (ValidateReplicaSet and the
// apps/v1 strategy's selector immutability in pkg/registry/apps/replicaset), `kubectl get rs`
// columns (printReplicaSet) and the pod template's strategic merge keys.

import { ageSince } from "../duration.ts";
import type { KindSpec } from "../kind.ts";
import type { FieldError, ReplicaSet } from "../types.ts";
import { nameIsDNSSubdomain, validateObjectMeta } from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn, podSpecMergeKeys } from "./pod.ts";
import {
  containerCells,
  containerColumns,
  defaultPodTemplate,
  formatLabelSelector,
  validateNonNegative,
  validateSelectorAndTemplate,
  validateSelectorUnchanged,
} from "./pod-template.ts";

export function defaultReplicaSet(rs: ReplicaSet): void {
  rs.spec ??= {};
  if (rs.spec.replicas === undefined || rs.spec.replicas === null) rs.spec.replicas = 1;
  defaultPodTemplate(rs.spec.template);
  // PrepareForCreate resets the status; on updates the stored status wins anyway.
  rs.status = { replicas: 0 };
}

export function validateReplicaSet(rs: ReplicaSet): FieldError[] {
  const errs = validateObjectMeta(rs.metadata, { namespaced: true, nameValidator: nameIsDNSSubdomain });
  const spec = rs.spec ?? {};
  errs.push(...validateNonNegative(spec.replicas, "spec.replicas"));
  errs.push(...validateNonNegative(spec.minReadySeconds, "spec.minReadySeconds"));
  errs.push(...validateSelectorAndTemplate(spec, "spec"));
  const status = rs.status ?? {};
  for (const f of [
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
    "observedGeneration",
  ]) {
    errs.push(...validateNonNegative(status[f], `status.${f}`));
  }
  return errs;
}

export function validateReplicaSetUpdate(rs: ReplicaSet, old: ReplicaSet): FieldError[] {
  return validateSelectorUnchanged(rs.spec?.selector, old.spec?.selector, "spec.selector");
}

export const replicaSetKind: KindSpec<ReplicaSet> = {
  group: "apps",
  version: "v1",
  kind: "ReplicaSet",
  resource: "replicasets",
  singular: "replicaset",
  namespaced: true,
  shortNames: ["rs"],
  categories: ["all"],
  subresources: ["status", "scale"],
  defaults: defaultReplicaSet,
  validate: validateReplicaSet,
  validateUpdate: validateReplicaSetUpdate,
  table: {
    columns: [
      nameColumn,
      {
        name: "Desired",
        type: "integer",
        format: "",
        description:
          "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#what-is-a-replicaset",
      },
      {
        name: "Current",
        type: "integer",
        format: "",
        description:
          "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#what-is-a-replicaset",
      },
      {
        name: "Ready",
        type: "integer",
        format: "",
        description: "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
      },
      ageColumn,
      ...containerColumns,
      {
        name: "Selector",
        type: "string",
        format: "",
        priority: 1,
        description:
          "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
      },
    ],
    cells: (rs, now) => {
      const [names, images] = containerCells(rs.spec?.template);
      return [
        rs.metadata.name,
        rs.spec?.replicas ?? 0,
        rs.status?.replicas ?? 0,
        rs.status?.readyReplicas ?? 0,
        ageSince(rs.metadata.creationTimestamp, now),
        names,
        images,
        formatLabelSelector(rs.spec?.selector),
      ];
    },
  },
  mergeKeys: {
    ...metadataMergeKeys,
    "spec.template.metadata.finalizers": "",
    "spec.template.metadata.ownerReferences": "uid",
    ...podSpecMergeKeys("spec.template.spec"),
    "status.conditions": "type",
  },
  statusSubresource: true,
};
