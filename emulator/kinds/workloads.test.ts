import { describe, expect, it } from "vitest";
import type { Deployment, ReplicaSet } from "../types.ts";
import { formatFieldError, formatInvalidMessage } from "../validation.ts";
import { deploymentKind } from "./deployment.ts";
import { replicaSetKind } from "./replica-set.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

function deployment(spec: Record<string, unknown> = {}, name = "web"): Deployment {
  return {
    metadata: { name, namespace: "default", creationTimestamp: "2026-11-24T11:58:00Z" },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "agnhost", image: "registry.k8s.io/e2e-test-images/agnhost:2.52" }] },
      },
      ...spec,
    },
  };
}

function problems(d: Deployment): string[] {
  deploymentKind.defaults!(d);
  return deploymentKind.validate(d).map(formatFieldError);
}

describe("Deployment kind", () => {
  it("defaults replicas, strategy, history, deadline and the pod template", () => {
    const d = deployment();
    deploymentKind.defaults!(d);
    expect(d.spec).toMatchObject({
      replicas: 1,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    });
    const c = d.spec.template!.spec.containers[0];
    expect(c).toMatchObject({
      imagePullPolicy: "IfNotPresent",
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "File",
    });
    expect(d.spec.template!.spec).toMatchObject({
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      terminationGracePeriodSeconds: 30,
      schedulerName: "default-scheduler",
      securityContext: {},
    });
    // Pod-only defaults stay off templates.
    expect(d.spec.template!.spec.tolerations).toBeUndefined();
    expect(d.status).toEqual({});
    expect(deploymentKind.validate(d)).toEqual([]);
  });

  it("keeps an explicit zero and Recreate without rolling parameters", () => {
    const d = deployment({ replicas: 0, strategy: { type: "Recreate" }, revisionHistoryLimit: 0 });
    deploymentKind.defaults!(d);
    expect(d.spec).toMatchObject({ replicas: 0, strategy: { type: "Recreate" }, revisionHistoryLimit: 0 });
    expect(d.spec.strategy!.rollingUpdate).toBeUndefined();
    expect(deploymentKind.validate(d)).toEqual([]);
  });

  it("refuses a selector that does not match the template labels, as upstream words it", () => {
    const d = deployment({ selector: { matchLabels: { app: "other" } } });
    const errs = problems(d);
    expect(errs).toEqual([
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]);
    expect(formatInvalidMessage("Deployment", "web", deploymentKind.validate(d), "apps")).toBe(
      'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    );
  });

  it("requires a non-empty, valid selector", () => {
    expect(problems(deployment({ selector: undefined }))).toEqual([
      "spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]);
    expect(problems(deployment({ selector: {} }))).toEqual([
      "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    ]);
    const bad = problems(
      deployment({
        selector: {
          matchExpressions: [
            { key: "app", operator: "In" },
            { key: "x", operator: "Near" },
          ],
        },
      }),
    );
    expect(bad).toContain(
      "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    expect(bad).toContain(
      'spec.selector.matchExpressions[1].operator: Invalid value: "Near": not a valid selector operator',
    );
  });

  it("validates counts and the progress deadline", () => {
    expect(problems(deployment({ replicas: -1 }))).toEqual([
      "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ]);
    expect(problems(deployment({ minReadySeconds: -2, progressDeadlineSeconds: 600 }))).toEqual([
      "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
    ]);
    expect(problems(deployment({ revisionHistoryLimit: -1 }))).toEqual([
      "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
    ]);
    expect(problems(deployment({ minReadySeconds: 10, progressDeadlineSeconds: 10 }))).toEqual([
      "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds",
    ]);
  });

  it("validates the rolling update parameters", () => {
    const zero = problems(deployment({ strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: "0%" } } }));
    expect(zero).toEqual([
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0',
    ]);
    expect(
      problems(deployment({ strategy: { rollingUpdate: { maxSurge: "five", maxUnavailable: 1 } } })),
    ).toEqual([
      "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"five\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    ]);
    expect(problems(deployment({ strategy: { rollingUpdate: { maxSurge: -1 } } }))).toEqual([
      "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0",
    ]);
    expect(problems(deployment({ strategy: { rollingUpdate: { maxUnavailable: "150%" } } }))).toEqual([
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%',
    ]);
    expect(problems(deployment({ strategy: { type: "Recreate", rollingUpdate: { maxSurge: 1 } } }))).toEqual([
      "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ]);
    expect(problems(deployment({ strategy: { type: "BlueGreen" } }))).toEqual([
      'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"',
    ]);
  });

  it("validates the template as a pod template that always restarts", () => {
    const d = deployment();
    d.spec.template!.spec.restartPolicy = "Never";
    d.spec.template!.spec.activeDeadlineSeconds = 30;
    d.spec.template!.spec.containers[0].image = "";
    expect(problems(d)).toEqual([
      "spec.template.spec.containers[0].image: Required value",
      'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
      "spec.template.spec.activeDeadlineSeconds: Invalid value: 30: activeDeadlineSeconds in ReplicaSet is not Supported",
    ]);
  });

  it("keeps the selector immutable", () => {
    const old = deployment();
    deploymentKind.defaults!(old);
    const next = structuredClone(old);
    next.spec.selector = { matchLabels: { app: "web", tier: "front" } };
    next.spec.template!.metadata!.labels = { app: "web", tier: "front" };
    expect(deploymentKind.validateUpdate!(next, old).map(formatFieldError)).toEqual([
      'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"front"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
    ]);
    expect(deploymentKind.validateUpdate!(structuredClone(old), old)).toEqual([]);
  });

  it("prints NAME READY UP-TO-DATE AVAILABLE AGE, and containers, images and selector when wide", () => {
    const d = deployment({ replicas: 3 });
    deploymentKind.defaults!(d);
    d.status = { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 };
    expect(deploymentKind.table.columns.map((c) => [c.name, c.priority ?? 0])).toEqual([
      ["Name", 0],
      ["Ready", 0],
      ["Up-to-date", 0],
      ["Available", 0],
      ["Age", 0],
      ["Containers", 1],
      ["Images", 1],
      ["Selector", 1],
    ]);
    expect(deploymentKind.table.cells(d, NOW)).toEqual([
      "web",
      "2/3",
      3,
      2,
      "2m",
      "agnhost",
      "registry.k8s.io/e2e-test-images/agnhost:2.52",
      "app=web",
    ]);
    expect(deploymentKind.shortNames).toEqual(["deploy"]);
    expect(deploymentKind.subresources).toEqual(["status", "scale"]);
  });

  it("merges template containers by name in strategic merge patches", () => {
    expect(deploymentKind.mergeKeys).toMatchObject({
      "spec.template.spec.containers": "name",
      "spec.template.spec.containers.env": "name",
      "spec.template.spec.volumes": "name",
      "status.conditions": "type",
    });
  });
});

describe("ReplicaSet kind", () => {
  function rs(spec: Record<string, unknown> = {}): ReplicaSet {
    const d = deployment();
    return { metadata: { ...d.metadata, name: "web-abc" }, spec: { ...d.spec, ...spec } } as ReplicaSet;
  }

  it("defaults replicas to 1 and resets the status", () => {
    const r = rs();
    replicaSetKind.defaults!(r);
    expect(r.spec.replicas).toBe(1);
    expect(r.status).toEqual({ replicas: 0 });
    expect(replicaSetKind.validate(r)).toEqual([]);
  });

  it("validates like a deployment's selector and template", () => {
    const r = rs({ replicas: -3, minReadySeconds: -1, selector: { matchLabels: { app: "db" } } });
    replicaSetKind.defaults!(r);
    expect(replicaSetKind.validate(r).map(formatFieldError)).toEqual([
      "spec.replicas: Invalid value: -3: must be greater than or equal to 0",
      "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]);
  });

  it("prints NAME DESIRED CURRENT READY AGE", () => {
    const r = rs({ replicas: 3 });
    r.status = { replicas: 2, readyReplicas: 1 };
    expect(replicaSetKind.table.columns.slice(0, 5).map((c) => c.name)).toEqual([
      "Name",
      "Desired",
      "Current",
      "Ready",
      "Age",
    ]);
    expect(replicaSetKind.table.cells(r, NOW)).toEqual([
      "web-abc",
      3,
      2,
      1,
      "2m",
      "agnhost",
      "registry.k8s.io/e2e-test-images/agnhost:2.52",
      "app=web",
    ]);
    expect(replicaSetKind.shortNames).toEqual(["rs"]);
  });
});
