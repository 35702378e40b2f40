// apps/v1 Deployment: defaults (SetDefaults_Deployment), validation (ValidateDeployment,
// ValidateDeploymentStrategy, ValidateRollingUpdateDeployment and the apps/v1 strategy's selector
// immutability), `kubectl get deploy` columns (printDeployment) and strategic merge keys.

import { ageSince } from "../duration.ts";
import type { KindSpec } from "../kind.ts";
import { labelSelectorFromObject, selectorToString } from "../label-selector.ts";
import type { Deployment, FieldError } from "../types.ts";
import {
  forbidden,
  GoValue,
  goQuote,
  invalid,
  nameIsDNSSubdomain,
  notSupported,
  regexError,
  required,
  validateObjectMeta,
} from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn, podSpecMergeKeys } from "./pod.ts";
import {
  containerCells,
  containerColumns,
  defaultPodTemplate,
  validateNonNegative,
  validateSelectorAndTemplate,
  validateSelectorUnchanged,
} from "./pod-template.ts";

export const DEFAULT_MAX_SURGE = "25%";
export const DEFAULT_MAX_UNAVAILABLE = "25%";
export const DEFAULT_REVISION_HISTORY_LIMIT = 10;
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

export function defaultDeployment(d: Deployment): void {
  d.spec ??= {};
  const spec = d.spec;
  if (spec.replicas === undefined || spec.replicas === null) spec.replicas = 1;
  spec.strategy ??= {};
  const strategy = spec.strategy;
  if (!strategy.type) strategy.type = "RollingUpdate";
  if (strategy.type === "RollingUpdate") {
    strategy.rollingUpdate ??= {};
    const ru = strategy.rollingUpdate;
    if (ru.maxUnavailable === undefined || ru.maxUnavailable === null)
      ru.maxUnavailable = DEFAULT_MAX_UNAVAILABLE;
    if (ru.maxSurge === undefined || ru.maxSurge === null) ru.maxSurge = DEFAULT_MAX_SURGE;
  }
  if (spec.revisionHistoryLimit === undefined || spec.revisionHistoryLimit === null)
    spec.revisionHistoryLimit = DEFAULT_REVISION_HISTORY_LIMIT;
  if (spec.progressDeadlineSeconds === undefined || spec.progressDeadlineSeconds === null)
    spec.progressDeadlineSeconds = DEFAULT_PROGRESS_DEADLINE_SECONDS;
  defaultPodTemplate(spec.template);
  d.status = {};
}

const PERCENT_FMT = "[0-9]+%";
const PERCENT_RE = /^[0-9]+%$/;
const PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'";

/** Go's %#v of an intstr.IntOrString value, as field errors print maxSurge and maxUnavailable. */
function goIntOrString(v: unknown): GoValue {
  if (typeof v === "string") return new GoValue(`intstr.IntOrString{Type:1, IntVal:0, StrVal:${goQuote(v)}}`);
  return new GoValue(`intstr.IntOrString{Type:0, IntVal:${typeof v === "number" ? v : 0}, StrVal:""}`);
}

/** getIntOrPercentValue: the percentage's number, or the int itself. */
function intOrPercentValue(v: unknown): number {
  if (typeof v === "string") return PERCENT_RE.test(v) ? Number(v.slice(0, -1)) : 0;
  return typeof v === "number" ? v : 0;
}

function validatePositiveIntOrPercent(v: unknown, path: string): FieldError[] {
  if (typeof v === "string") {
    return PERCENT_RE.test(v)
      ? []
      : [invalid(path, goIntOrString(v), regexError(PERCENT_MSG, PERCENT_FMT, "1%", "93%"))];
  }
  if (typeof v === "number" && Number.isInteger(v)) return validateNonNegative(v, path);
  return [invalid(path, goIntOrString(v), "must be an integer or percentage (e.g '5%')")];
}

function validateStrategy(strategy: Deployment["spec"]["strategy"], path: string): FieldError[] {
  const s = strategy ?? {};
  const errs: FieldError[] = [];
  if (s.type === "Recreate") {
    if (s.rollingUpdate !== undefined && s.rollingUpdate !== null) {
      errs.push(
        forbidden(`${path}.rollingUpdate`, "may not be specified when strategy `type` is 'Recreate'"),
      );
    }
  } else if (s.type === "RollingUpdate") {
    const ru = s.rollingUpdate;
    if (!ru) {
      errs.push(required(`${path}.rollingUpdate`, "this should be defaulted and never be nil"));
    } else {
      const p = `${path}.rollingUpdate`;
      errs.push(...validatePositiveIntOrPercent(ru.maxUnavailable, `${p}.maxUnavailable`));
      errs.push(...validatePositiveIntOrPercent(ru.maxSurge, `${p}.maxSurge`));
      if (intOrPercentValue(ru.maxUnavailable) === 0 && intOrPercentValue(ru.maxSurge) === 0) {
        errs.push(
          invalid(
            `${p}.maxUnavailable`,
            goIntOrString(ru.maxUnavailable),
            "may not be 0 when `maxSurge` is 0",
          ),
        );
      }
      if (typeof ru.maxUnavailable === "string" && intOrPercentValue(ru.maxUnavailable) > 100) {
        errs.push(
          invalid(`${p}.maxUnavailable`, goIntOrString(ru.maxUnavailable), "must not be greater than 100%"),
        );
      }
    }
  } else {
    const ru = s.rollingUpdate
      ? "&apps.RollingUpdateDeployment{...}"
      : "(*apps.RollingUpdateDeployment)(nil)";
    errs.push(
      notSupported(
        path,
        new GoValue(`apps.DeploymentStrategy{Type:${goQuote(String(s.type ?? ""))}, RollingUpdate:${ru}}`),
        ["Recreate", "RollingUpdate"],
      ),
    );
  }
  return errs;
}

export function validateDeployment(d: Deployment): FieldError[] {
  const errs = validateObjectMeta(d.metadata, { namespaced: true, nameValidator: nameIsDNSSubdomain });
  const spec = d.spec ?? {};
  errs.push(...validateNonNegative(spec.replicas, "spec.replicas"));
  errs.push(...validateSelectorAndTemplate(spec, "spec"));
  errs.push(...validateStrategy(spec.strategy, "spec.strategy"));
  errs.push(...validateNonNegative(spec.minReadySeconds, "spec.minReadySeconds"));
  errs.push(...validateNonNegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit"));
  const pds = spec.progressDeadlineSeconds;
  if (pds !== undefined && pds !== null) {
    errs.push(...validateNonNegative(pds, "spec.progressDeadlineSeconds"));
    if (typeof pds === "number" && pds <= (spec.minReadySeconds ?? 0)) {
      errs.push(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"));
    }
  }
  const status = d.status ?? {};
  for (const f of [
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
    "collisionCount",
  ]) {
    errs.push(...validateNonNegative(status[f], `status.${f}`));
  }
  return errs;
}

export function validateDeploymentUpdate(d: Deployment, old: Deployment): FieldError[] {
  return validateSelectorUnchanged(d.spec?.selector, old.spec?.selector, "spec.selector");
}

/** The selector as printDeployment shows it: `<invalid>` when unparseable, "" when empty. */
function selectorText(d: Deployment): string {
  try {
    return selectorToString(
      labelSelectorFromObject(d.spec?.selector as Parameters<typeof labelSelectorFromObject>[0]),
    );
  } catch {
    return "<invalid>";
  }
}

export const deploymentKind: KindSpec<Deployment> = {
  group: "apps",
  version: "v1",
  kind: "Deployment",
  resource: "deployments",
  singular: "deployment",
  namespaced: true,
  shortNames: ["deploy"],
  categories: ["all"],
  subresources: ["status", "scale"],
  defaults: defaultDeployment,
  validate: validateDeployment,
  validateUpdate: validateDeploymentUpdate,
  table: {
    columns: [
      nameColumn,
      { name: "Ready", type: "string", format: "", description: "Number of the pod with ready state" },
      {
        name: "Up-to-date",
        type: "string",
        format: "",
        description:
          "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
      },
      {
        name: "Available",
        type: "string",
        format: "",
        description:
          "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
      },
      ageColumn,
      ...containerColumns,
      {
        name: "Selector",
        type: "string",
        format: "",
        priority: 1,
        description:
          "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
      },
    ],
    cells: (d, now) => {
      const [names, images] = containerCells(d.spec?.template);
      return [
        d.metadata.name,
        `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`,
        d.status?.updatedReplicas ?? 0,
        d.status?.availableReplicas ?? 0,
        ageSince(d.metadata.creationTimestamp, now),
        names,
        images,
        selectorText(d),
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
