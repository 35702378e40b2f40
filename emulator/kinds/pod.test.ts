import { describe, expect, it } from "vitest";
import type { Pod } from "../types.ts";
import { formatFieldError, formatInvalidMessage } from "../validation.ts";
import {
  createPodKind,
  imageUsesLatestTag,
  POD_UPDATABLE_FIELDS_MESSAGE,
  podKind,
  podPrintInfo,
  podQOSClass,
  podSpecMergeKeys,
} from "./pod.ts";

const NOW = new Date("2026-11-24T12:00:00Z");

function pod(spec: Partial<Pod["spec"]> = {}, meta: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1", namespace: "default", creationTimestamp: "2026-11-24T11:55:00Z", ...meta },
    spec: { containers: [{ name: "web", image: "nginx:1.27" }], ...spec },
  };
}

function created(spec: Partial<Pod["spec"]> = {}, meta: Record<string, unknown> = {}): Pod {
  const p = pod(spec, meta);
  podKind.defaults!(p);
  return p;
}

function errors(p: Pod): string[] {
  return podKind.validate(p).map(formatFieldError);
}

describe("pod defaults", () => {
  it("fills what the apiserver fills", () => {
    const p = created({
      containers: [{ name: "web", image: "nginx", ports: [{ containerPort: 80 }] }],
    });
    expect(p.spec).toMatchObject({
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      terminationGracePeriodSeconds: 30,
      schedulerName: "default-scheduler",
      enableServiceLinks: true,
      securityContext: {},
      priority: 0,
      preemptionPolicy: "PreemptLowerPriority",
    });
    expect(p.spec.containers[0]).toMatchObject({
      imagePullPolicy: "Always",
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "File",
      ports: [{ containerPort: 80, protocol: "TCP" }],
    });
    expect(p.spec.tolerations).toEqual([
      {
        key: "node.kubernetes.io/not-ready",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
      {
        key: "node.kubernetes.io/unreachable",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
    ]);
    expect(p.status).toEqual({ phase: "Pending", qosClass: "BestEffort" });
  });

  it("picks the pull policy from the tag", () => {
    expect(imageUsesLatestTag("nginx")).toBe(true);
    expect(imageUsesLatestTag("nginx:latest")).toBe(true);
    expect(imageUsesLatestTag("registry:5000/team/app")).toBe(true);
    expect(imageUsesLatestTag("registry:5000/team/app:v1")).toBe(false);
    expect(imageUsesLatestTag("nginx@sha256:abc")).toBe(false);
    expect(created().spec.containers[0].imagePullPolicy).toBe("IfNotPresent");
  });

  it("keeps tolerations the pod already has and honours the configured seconds", () => {
    const own = {
      key: "node.kubernetes.io/not-ready",
      operator: "Exists" as const,
      effect: "NoExecute" as const,
    };
    const p = created({ tolerations: [own] });
    expect(p.spec.tolerations).toEqual([
      own,
      {
        key: "node.kubernetes.io/unreachable",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
    ]);
    const all = created({ tolerations: [{ operator: "Exists" }] });
    expect(all.spec.tolerations).toEqual([{ operator: "Exists" }]);
    const custom = pod();
    createPodKind({ defaultTolerationSeconds: 30 }).defaults!(custom);
    expect(custom.spec.tolerations?.map((t) => t.tolerationSeconds)).toEqual([30, 30]);
  });

  it("computes the QoS class", () => {
    const res = (requests?: object, limits?: object) =>
      created({ containers: [{ name: "c", image: "i", resources: { requests, limits } }] });
    expect(res().status?.qosClass).toBe("BestEffort");
    expect(res({ cpu: "100m" }).status?.qosClass).toBe("Burstable");
    expect(res(undefined, { cpu: "1", memory: "1Gi" }).status?.qosClass).toBe("Guaranteed");
    expect(res({ cpu: "1000m", memory: "1024Mi" }, { cpu: "1", memory: "1Gi" }).status?.qosClass).toBe(
      "Guaranteed",
    );
    expect(podQOSClass(pod({ containers: [{ name: "c", resources: { limits: { cpu: "1" } } }] }))).toBe(
      "Burstable",
    );
  });

  it("resets any status sent on create", () => {
    const p = pod();
    p.status = { phase: "Running", podIP: "10.0.0.1" };
    podKind.defaults!(p);
    expect(p.status).toEqual({ phase: "Pending", qosClass: "BestEffort" });
  });
});

describe("pod validation", () => {
  it("accepts a defaulted pod", () => {
    expect(errors(created())).toEqual([]);
  });

  it("reports upstream messages", () => {
    const p = created(
      {
        containers: [
          {
            name: "web",
            image: "",
            ports: [
              { containerPort: 70000, name: "http" },
              { containerPort: 81, name: "http" },
            ],
          },
          { name: "web", image: "x", env: [{ name: "A=B" }] },
        ],
        initContainers: [{ name: "web", image: "init" }],
      },
      { name: "Bad_Name" },
    );
    p.spec.restartPolicy = "Foo" as any;
    const errs = podKind.validate(p);
    expect(errs.map(formatFieldError)).toEqual([
      `metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      "spec.containers[0].image: Required value",
      "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
      'spec.containers[0].ports[1].name: Duplicate value: "http"',
      `spec.containers[1].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`,
      'spec.containers[1].name: Duplicate value: "web"',
      'spec.initContainers[0].name: Duplicate value: "web"',
      'spec.restartPolicy: Unsupported value: "Foo": supported values: "Always", "OnFailure", "Never"',
    ]);
    expect(formatInvalidMessage("Pod", "Bad_Name", errs)).toMatch(
      /^Pod "Bad_Name" is invalid: \[metadata\.name: /,
    );
  });

  it("requires containers", () => {
    expect(errors(created({ containers: [] }))).toEqual(["spec.containers: Required value"]);
  });

  it("checks ports", () => {
    const p = created({
      containers: [
        {
          name: "c",
          image: "i",
          ports: [{ containerPort: 80, hostPort: 70000, protocol: "HTTP" as any, name: "8080" }],
        },
      ],
    });
    expect(errors(p)).toEqual([
      'spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one letter (a-z)',
      "spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
      'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ]);
  });

  it("checks dnsPolicy, nodeSelector, tolerations, hostname and grace period", () => {
    const p = created({
      dnsPolicy: "None",
      nodeSelector: { "bad key": "v" },
      tolerations: [
        { key: "k", operator: "Exists", value: "v" },
        { operator: "Equal", value: "x" },
        { key: "k", operator: "In" as any, effect: "Sometimes" as any },
        { key: "k", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 5 },
      ],
      hostname: "Web",
    });
    p.spec.terminationGracePeriodSeconds = -5;
    const errs = errors(p);
    expect(errs).toContain(
      "spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0",
    );
    expect(errs).toContain(
      "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
    );
    expect(
      errs.some((e) => e.startsWith('spec.nodeSelector: Invalid value: "bad key": name part must')),
    ).toBe(true);
    expect(errs).toContain(
      "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
    );
    expect(errs).toContain(
      'spec.tolerations[1].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
    );
    expect(errs).toContain(
      'spec.tolerations[2].operator: Unsupported value: "In": supported values: "Equal", "Exists"',
    );
    expect(errs).toContain(
      'spec.tolerations[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
    );
    expect(errs).toContain(
      "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
    );
    expect(
      errs.some((e) => e.startsWith('spec.hostname: Invalid value: "Web": a lowercase RFC 1123 label')),
    ).toBe(true);
    const dnsNone = created({ dnsPolicy: "None", dnsConfig: {} });
    expect(errors(dnsNone)).toEqual([
      "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
    ]);
  });

  it("turns a negative grace period into 1 on create", () => {
    expect(created({ terminationGracePeriodSeconds: -1 }).spec.terminationGracePeriodSeconds).toBe(1);
  });
});

describe("pod update validation", () => {
  const update = (change: (p: Pod) => void, base: Pod = created()) => {
    const next = structuredClone(base);
    change(next);
    return podKind.validateUpdate!(next, base).map(formatFieldError);
  };

  it("allows images, activeDeadlineSeconds, added tolerations and a first nodeName", () => {
    expect(
      update((p) => {
        p.spec.containers[0].image = "nginx:1.28";
        p.spec.activeDeadlineSeconds = 60;
        p.spec.tolerations = [...(p.spec.tolerations ?? []), { key: "a", operator: "Exists" }];
        p.spec.nodeName = "node-1";
      }),
    ).toEqual([]);
  });

  it("forbids other spec changes with upstream's message", () => {
    const errs = update((p) => {
      p.spec.restartPolicy = "Never";
    });
    expect(errs).toHaveLength(1);
    expect(errs[0].startsWith(`spec: Forbidden: ${POD_UPDATABLE_FIELDS_MESSAGE}\n`)).toBe(true);
    expect(errs[0]).toContain('- \tRestartPolicy: "Always",');
    expect(errs[0]).toContain('+ \tRestartPolicy: "Never",');
  });

  it("lets nodeName be set only once", () => {
    const bound = created({ nodeName: "node-1" });
    expect(update((p) => (p.spec.nodeName = "node-2"), bound)[0]).toMatch(
      /^spec: Forbidden: pod updates may not/,
    );
  });

  it("checks containers, deadlines and tolerations", () => {
    expect(update((p) => p.spec.containers.push({ name: "b", image: "b" }))).toEqual([
      "spec.containers: Forbidden: pod updates may not add or remove containers",
    ]);
    const withDeadline = created({ activeDeadlineSeconds: 30 });
    expect(update((p) => (p.spec.activeDeadlineSeconds = 60), withDeadline)).toEqual([
      "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value",
    ]);
    expect(update((p) => (p.spec.tolerations = []))).toEqual([
      "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
    ]);
    expect(
      update((p) => {
        p.spec.tolerations![0].tolerationSeconds = 10;
      }),
    ).toEqual([]);
  });
});

describe("pod printing", () => {
  const info = (status: any, spec: Partial<Pod["spec"]> = {}, meta: Record<string, unknown> = {}) => {
    const p = pod(spec, meta);
    p.status = status;
    return podPrintInfo(p, NOW);
  };

  it("shows the phase of a fresh pod", () => {
    expect(info({ phase: "Pending" })).toEqual({ ready: "0/1", status: "Pending", restarts: "0" });
  });

  it("counts ready running containers", () => {
    expect(
      info({
        phase: "Running",
        containerStatuses: [{ name: "web", ready: true, restartCount: 0, state: { running: {} } }],
      }),
    ).toEqual({ ready: "1/1", status: "Running", restarts: "0" });
  });

  it("shows waiting and terminated reasons", () => {
    const waiting = (reason: string) =>
      info({
        phase: "Pending",
        containerStatuses: [{ name: "web", ready: false, state: { waiting: { reason } } }],
      });
    expect(waiting("ContainerCreating").status).toBe("ContainerCreating");
    expect(waiting("ErrImagePull").status).toBe("ErrImagePull");
    expect(
      info({
        phase: "Running",
        containerStatuses: [
          {
            name: "web",
            restartCount: 2,
            state: { waiting: { reason: "CrashLoopBackOff" } },
            lastState: { terminated: { exitCode: 1, finishedAt: "2026-11-24T11:55:00Z" } },
          },
        ],
      }),
    ).toEqual({ ready: "0/1", status: "CrashLoopBackOff", restarts: "2 (5m ago)" });
    expect(
      info({
        phase: "Succeeded",
        containerStatuses: [{ name: "web", state: { terminated: { exitCode: 0, reason: "Completed" } } }],
      }).status,
    ).toBe("Completed");
    expect(
      info({
        phase: "Failed",
        containerStatuses: [{ name: "web", state: { terminated: { exitCode: 137 } } }],
      }).status,
    ).toBe("ExitCode:137");
  });

  it("shows init progress", () => {
    const spec = { initContainers: [{ name: "init", image: "busybox" }] };
    expect(
      info(
        {
          phase: "Pending",
          initContainerStatuses: [{ name: "init", state: { waiting: { reason: "PodInitializing" } } }],
          containerStatuses: [{ name: "web", state: { waiting: { reason: "PodInitializing" } } }],
        },
        spec,
      ).status,
    ).toBe("Init:0/1");
    expect(
      info(
        {
          phase: "Pending",
          initContainerStatuses: [{ name: "init", state: { waiting: { reason: "ErrImagePull" } } }],
        },
        spec,
      ).status,
    ).toBe("Init:ErrImagePull");
    expect(
      info(
        {
          phase: "Pending",
          initContainerStatuses: [{ name: "init", state: { terminated: { exitCode: 2 } } }],
        },
        spec,
      ).status,
    ).toBe("Init:ExitCode:2");
  });

  it("counts sidecars and shows Terminating", () => {
    const sidecar = { initContainers: [{ name: "proxy", image: "envoy", restartPolicy: "Always" }] };
    expect(
      info(
        {
          phase: "Running",
          initContainerStatuses: [{ name: "proxy", started: true, ready: true, state: { running: {} } }],
          containerStatuses: [{ name: "web", ready: true, state: { running: {} } }],
        },
        sidecar,
      ).ready,
    ).toBe("2/2");
    expect(info({ phase: "Running" }, {}, { deletionTimestamp: "2026-11-24T12:00:00Z" }).status).toBe(
      "Terminating",
    );
    expect(info({ phase: "Succeeded" }, {}, { deletionTimestamp: "2026-11-24T12:00:00Z" }).status).toBe(
      "Succeeded",
    );
  });

  it("fills the wide columns with <none>", () => {
    const p = created();
    expect(podKind.table.cells(p, NOW)).toEqual([
      "web-1",
      "0/1",
      "Pending",
      "0",
      "5m",
      "<none>",
      "<none>",
      "<none>",
      "<none>",
    ]);
    expect(podKind.table.columns.map((c) => [c.name, c.priority ?? 0])).toEqual([
      ["Name", 0],
      ["Ready", 0],
      ["Status", 0],
      ["Restarts", 0],
      ["Age", 0],
      ["IP", 1],
      ["Node", 1],
      ["Nominated Node", 1],
      ["Readiness Gates", 1],
    ]);
  });

  it("fills the field selectors", () => {
    const p = created({ nodeName: "node-1" });
    p.status = { phase: "Running", podIPs: [{ ip: "10.244.1.5" }] };
    const f = podKind.selectableFields!;
    expect(f["spec.nodeName"](p)).toBe("node-1");
    expect(f["status.podIP"](p)).toBe("10.244.1.5");
    expect(f["spec.hostNetwork"](p)).toBe("false");
    expect(f["status.nominatedNodeName"](p)).toBe("");
  });
});

describe("merge keys", () => {
  it("names the pod spec lists under any prefix", () => {
    const keys = podSpecMergeKeys("spec.template.spec");
    expect(keys["spec.template.spec.containers"]).toBe("name");
    expect(keys["spec.template.spec.containers.ports"]).toBe("containerPort");
    expect(keys["spec.template.spec.initContainers.env"]).toBe("name");
    expect(keys["spec.template.spec.volumes"]).toBe("name");
    expect(podKind.mergeKeys).toMatchObject({
      "metadata.finalizers": "",
      "metadata.ownerReferences": "uid",
      "spec.containers.volumeMounts": "mountPath",
      "spec.hostAliases": "ip",
      "status.conditions": "type",
      "status.podIPs": "ip",
    });
  });
});

describe("probe validation", () => {
  const withProbes = (probes: Record<string, unknown>): Pod =>
    ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "default" },
      spec: {
        restartPolicy: "Always",
        dnsPolicy: "ClusterFirst",
        terminationGracePeriodSeconds: 30,
        containers: [
          { name: "app", image: "busybox", ports: [{ name: "http", containerPort: 8080 }], ...probes },
        ],
      },
    }) as unknown as Pod;
  const messages = (p: Pod) =>
    podKind
      .validate(p)
      .filter((e) => /Probe/.test(e.field))
      .map(formatFieldError);

  it("accepts kubelet-style probes", () => {
    expect(
      messages(
        withProbes({
          readinessProbe: { httpGet: { path: "/", port: "http" }, successThreshold: 2 },
          livenessProbe: { tcpSocket: { port: 8080 }, failureThreshold: 3 },
          startupProbe: { exec: { command: ["cat", "/tmp/ok"] }, terminationGracePeriodSeconds: 5 },
        }),
      ),
    ).toEqual([]);
  });

  it("rejects what upstream rejects, naming the field", () => {
    expect(
      messages(withProbes({ livenessProbe: { exec: { command: ["true"] }, successThreshold: 2 } })),
    ).toEqual(["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]);
    expect(
      messages(withProbes({ readinessProbe: { exec: { command: ["true"] }, tcpSocket: { port: 80 } } }))[0],
    ).toContain(
      "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
    );
    expect(messages(withProbes({ startupProbe: {} }))[0]).toContain(
      "spec.containers[0].startupProbe: Required value",
    );
    expect(
      messages(
        withProbes({ readinessProbe: { httpGet: { port: 8080 }, terminationGracePeriodSeconds: 5 } }),
      )[0],
    ).toContain("must not be set for readinessProbes");
    expect(messages(withProbes({ livenessProbe: { httpGet: { port: 70000 } } }))[0]).toContain(
      "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 70000",
    );
    expect(messages(withProbes({ livenessProbe: { tcpSocket: { port: "Not_A_Name" } } }))[0]).toContain(
      "spec.containers[0].livenessProbe.tcpSocket.port",
    );
  });
});
