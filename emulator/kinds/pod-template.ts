// What the kinds holding a pod template share (ReplicaSet, Deployment): label selector validation
// (ValidateLabelSelector in apimachinery's unversioned validation), the template checks of
// ValidatePodTemplateSpecForReplicaSet and ValidatePodTemplateSpec (pkg/apis/apps/validation,
// pkg/apis/core/validation), template defaulting as pods get it, and the printers' helpers.

import type { TableColumn } from "../kind.ts";
import {
  isEmpty,
  type LabelSelector,
  labelSelectorFromObject,
  matchesLabels,
  SelectorError,
  selectorToString,
  validateLabelKey,
  validateLabelValue,
} from "../label-selector.ts";
import type { FieldError, LabelSelectorSpec, PodTemplateSpec } from "../types.ts";
import {
  forbidden,
  GoValue,
  goQuote,
  invalid,
  notSupported,
  required,
  semanticEqual,
  validateAnnotations,
  validateLabels,
} from "../validation.ts";
import { defaultPodSpec, validatePodSpec } from "./pod.ts";

/** The label a Deployment adds to each ReplicaSet's selector and template. */
export const POD_TEMPLATE_HASH_LABEL = "pod-template-hash";

/** Go's %#v of a map[string]string, as field errors print a template's labels. */
export function goStringMap(m: Record<string, string> | null | undefined): string {
  if (m === null || m === undefined) return "map[string]string(nil)";
  const entries = Object.keys(m)
    .sort()
    .map((k) => `${goQuote(k)}:${goQuote(String(m[k]))}`);
  return `map[string]string{${entries.join(", ")}}`;
}

/** Go's %#v of a metav1.LabelSelector value, as field.Invalid prints a selector. */
export function goLabelSelector(sel: LabelSelectorSpec | null | undefined): GoValue {
  if (!sel) return new GoValue("null");
  const exprs = sel.matchExpressions;
  const exprText =
    exprs === null || exprs === undefined
      ? "[]v1.LabelSelectorRequirement(nil)"
      : `[]v1.LabelSelectorRequirement{${exprs
          .map((e) => {
            const values =
              e.values === null || e.values === undefined
                ? "[]string(nil)"
                : `[]string{${e.values.map((v) => goQuote(String(v))).join(", ")}}`;
            return `v1.LabelSelectorRequirement{Key:${goQuote(String(e.key ?? ""))}, Operator:${goQuote(String(e.operator ?? ""))}, Values:${values}}`;
          })
          .join(", ")}}`;
  return new GoValue(
    `v1.LabelSelector{MatchLabels:${goStringMap(sel.matchLabels)}, MatchExpressions:${exprText}}`,
  );
}

/** ValidateLabelSelector with AllowInvalidLabelValueInSelector=false. */
export function validateLabelSelectorSpec(sel: LabelSelectorSpec, path: string): FieldError[] {
  const errs = validateLabels(sel.matchLabels ?? undefined, `${path}.matchLabels`);
  (sel.matchExpressions ?? []).forEach((expr, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const values = expr.values ?? [];
    switch (expr.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0)
          errs.push(required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length > 0)
          errs.push(
            forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
          );
        break;
      default:
        errs.push(invalid(`${p}.operator`, expr.operator ?? "", "not a valid selector operator"));
    }
    for (const m of validateLabelKey(String(expr.key ?? "")))
      errs.push(invalid(`${p}.key`, expr.key ?? "", m));
    values.forEach((v, j) => {
      for (const m of validateLabelValue(String(v))) errs.push(invalid(`${p}.values[${j}]`, v, m));
    });
  });
  return errs;
}

/** metav1.LabelSelectorAsSelector, or undefined when the selector cannot be parsed. */
export function parseSelectorSpec(sel: LabelSelectorSpec | null | undefined): LabelSelector | undefined {
  try {
    return labelSelectorFromObject(sel as Parameters<typeof labelSelectorFromObject>[0]);
  } catch (e) {
    if (e instanceof SelectorError) return undefined;
    throw e;
  }
}

/** metav1.FormatLabelSelector: `app=web`, `<none>` when empty, `<error>` when unparseable. */
export function formatLabelSelector(sel: LabelSelectorSpec | null | undefined): string {
  const parsed = parseSelectorSpec(sel);
  if (!parsed) return "<error>";
  return selectorToString(parsed) || "<none>";
}

/**
 * The selector and template checks a ReplicaSet spec and a Deployment spec share: the selector is
 * required, valid and non-empty, the template's labels match it, and the template is a valid pod
 * template that always restarts and has no active deadline.
 */
export function validateSelectorAndTemplate(
  spec: { selector?: LabelSelectorSpec | null; template?: PodTemplateSpec | null },
  path: string,
): FieldError[] {
  const errs: FieldError[] = [];
  const sel = spec.selector;
  if (sel === undefined || sel === null) {
    errs.push(required(`${path}.selector`));
  } else {
    errs.push(...validateLabelSelectorSpec(sel, `${path}.selector`));
    if (Object.keys(sel.matchLabels ?? {}).length + (sel.matchExpressions ?? []).length === 0) {
      errs.push(
        invalid(`${path}.selector`, goLabelSelector(sel), "empty selector is invalid for deployment"),
      );
    }
  }
  const selector = parseSelectorSpec(sel);
  if (!selector) {
    errs.push(invalid(`${path}.selector`, goLabelSelector(sel), "invalid label selector"));
    return errs;
  }
  errs.push(...validateTemplateForReplicaSet(spec.template, selector, `${path}.template`));
  return errs;
}

function validateTemplateForReplicaSet(
  template: PodTemplateSpec | null | undefined,
  selector: LabelSelector,
  path: string,
): FieldError[] {
  if (!template) return [required(path)];
  const errs: FieldError[] = [];
  const labels = template.metadata?.labels;
  // labels.Nothing() (a missing selector) is not empty and matches nothing, as upstream.
  if (!isEmpty(selector) && !matchesLabels(selector, labels ?? {})) {
    errs.push(
      invalid(
        `${path}.metadata.labels`,
        new GoValue(goStringMap(labels ?? null)),
        "`selector` does not match template `labels`",
      ),
    );
  }
  errs.push(...validatePodTemplateSpec(template, path));
  const restartPolicy = template.spec?.restartPolicy;
  if (restartPolicy && restartPolicy !== "Always") {
    errs.push(notSupported(`${path}.spec.restartPolicy`, restartPolicy, ["Always"]));
  }
  const ads = template.spec?.activeDeadlineSeconds;
  if (ads !== undefined && ads !== null) {
    errs.push(
      invalid(
        `${path}.spec.activeDeadlineSeconds`,
        ads,
        "activeDeadlineSeconds in ReplicaSet is not Supported",
      ),
    );
  }
  return errs;
}

/** ValidatePodTemplateSpec: labels and annotations (under the template's own path), then the spec. */
export function validatePodTemplateSpec(template: PodTemplateSpec, path: string): FieldError[] {
  const errs = validateLabels(template.metadata?.labels, `${path}.labels`);
  errs.push(...validateAnnotations(template.metadata?.annotations, `${path}.annotations`));
  errs.push(...validatePodSpec(template.spec, `${path}.spec`));
  if (((template.spec?.ephemeralContainers as unknown[] | undefined) ?? []).length > 0) {
    errs.push(
      forbidden(`${path}.spec.ephemeralContainers`, "ephemeral containers not allowed in pod template"),
    );
  }
  return errs;
}

/** Template defaulting: the pod spec defaults (not the pod-only ones such as tolerations). */
export function defaultPodTemplate(template: PodTemplateSpec | null | undefined): void {
  if (!template || typeof template !== "object") return;
  template.spec ??= { containers: [] };
  defaultPodSpec(template.spec);
}

/** Non-negative int32 fields, as ValidateNonnegativeField reports them. */
export function validateNonNegative(value: unknown, path: string): FieldError[] {
  if (value === undefined || value === null) return [];
  if (typeof value !== "number" || !Number.isInteger(value))
    return [invalid(path, value, "must be an integer")];
  return value < 0 ? [invalid(path, value, "must be greater than or equal to 0")] : [];
}

/** The selector may not change once set (apps/v1 strategies' ValidateUpdate). */
export function validateSelectorUnchanged(
  next: LabelSelectorSpec | null | undefined,
  old: LabelSelectorSpec | null | undefined,
  path: string,
): FieldError[] {
  return semanticEqual(next ?? null, old ?? null)
    ? []
    : [invalid(path, goLabelSelector(next), "field is immutable")];
}

/** The wide-output columns `containerCells` fills (Deployments, ReplicaSets). */
export const containerColumns: TableColumn[] = [
  {
    name: "Containers",
    type: "string",
    format: "",
    priority: 1,
    description: "Names of each container in the template.",
  },
  {
    name: "Images",
    type: "string",
    format: "",
    priority: 1,
    description: "Images referenced by each container in the template.",
  },
];

/** layoutContainerCells: comma-joined container names and images. */
export function containerCells(template: PodTemplateSpec | undefined): [string, string] {
  const containers = template?.spec?.containers ?? [];
  return [containers.map((c) => c.name).join(","), containers.map((c) => c.image ?? "").join(",")];
}
