// coordination.k8s.io/v1 Lease: node heartbeats (kube-node-lease) and leader election.
// Validation follows pkg/apis/coordination/validation; columns follow printLease.

import { ageSince } from "../duration.ts";
import type { KindSpec } from "../kind.ts";
import type { FieldError, Lease } from "../types.ts";
import { invalid, nameIsDNSSubdomain, validateObjectMeta } from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";

export function validateLease(lease: Lease): FieldError[] {
  const errs = validateObjectMeta(lease.metadata, { namespaced: true, nameValidator: nameIsDNSSubdomain });
  const spec = lease.spec ?? {};
  if (typeof spec.leaseDurationSeconds === "number" && spec.leaseDurationSeconds <= 0) {
    errs.push(invalid("spec.leaseDurationSeconds", spec.leaseDurationSeconds, "must be greater than 0"));
  }
  if (typeof spec.leaseTransitions === "number" && spec.leaseTransitions < 0) {
    errs.push(invalid("spec.leaseTransitions", spec.leaseTransitions, "must be greater than or equal to 0"));
  }
  return errs;
}

export const leaseKind: KindSpec<Lease> = {
  group: "coordination.k8s.io",
  version: "v1",
  kind: "Lease",
  resource: "leases",
  singular: "lease",
  namespaced: true,
  validate: validateLease,
  table: {
    columns: [
      nameColumn,
      {
        name: "Holder",
        type: "string",
        format: "",
        description:
          "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
      },
      ageColumn,
    ],
    cells: (lease, now) => [
      lease.metadata.name,
      lease.spec?.holderIdentity ?? "",
      ageSince(lease.metadata.creationTimestamp, now),
    ],
  },
  mergeKeys: { ...metadataMergeKeys },
};
