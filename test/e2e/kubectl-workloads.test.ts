// Deployments driven by real kubectl: create (protobuf body), get/describe tables, scale (the
// scale subresource), set image with the rolling update checked against maxSurge/maxUnavailable
// after every pod event, rollout status/history/undo/pause/resume, apply of a manifest, bad input,
// and delete cascading to ReplicaSets and pods. kubectl must be on PATH (as for kubectl.test.ts).
// A fake kubelet plays the node agent.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerNode } from "../api/helpers.ts";
import { type FakeKubelet, isReady, replayPods, startFakeKubelet } from "../fake-kubelet.ts";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import { type Kubectl, kubectlFor, parseTable } from "./kubectl-kit.ts";

const KUBECTL_TIMEOUT_MS = 60_000;
const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost";
const WAIT = 20_000;

describe("kubectl and Deployments", () => {
  let c: TestCluster;
  let kubelet: FakeKubelet;
  let kit: Kubectl;

  const kubectl = (args: string[]) => kit.run(args);
  const ok = (args: string[]) => kit.ok(args);

  async function api(path: string): Promise<any> {
    const r = await c.request("GET", path);
    expect(r.status, r.text).toBe(200);
    return r.json;
  }

  async function pods(): Promise<any[]> {
    return (await api("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")).items;
  }

  async function rolloutStatus(): Promise<string> {
    const out = await ok(["rollout", "status", "deployment/web", "--timeout=60s"]);
    expect(out.trim().split("\n").at(-1)).toBe('deployment "web" successfully rolled out');
    return out;
  }

  beforeAll(async () => {
    c = await startTestCluster({ nodeMonitorGracePeriodMs: 3_600_000 });
    kit = kubectlFor(c.server.kubeconfigPath, "kemu-kubectl-workloads-", KUBECTL_TIMEOUT_MS);
    await registerNode(c, "node-a");
    kubelet = startFakeKubelet(c, "default");
  });

  afterAll(async () => {
    await kubelet?.stop();
    await c?.close();
    kit?.cleanup();
  });

  it("create deployment runs three ready replicas and rollout status finishes", async () => {
    const out = await ok(["create", "deployment", "web", `--image=${AGNHOST}:2.52`, "--replicas=3"]);
    expect(out.trim()).toBe("deployment.apps/web created");
    await rolloutStatus();
    const t = parseTable(await ok(["get", "deploy"]));
    expect(t.headers).toEqual(["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    expect(t.rows).toEqual([
      expect.objectContaining({ NAME: "web", READY: "3/3", "UP-TO-DATE": "3", AVAILABLE: "3" }),
    ]);
    const wide = parseTable(await ok(["get", "deployment", "web", "-o", "wide"]));
    expect(wide.headers).toEqual([
      "NAME",
      "READY",
      "UP-TO-DATE",
      "AVAILABLE",
      "AGE",
      "CONTAINERS",
      "IMAGES",
      "SELECTOR",
    ]);
    expect(wide.rows[0]).toMatchObject({
      CONTAINERS: "agnhost",
      IMAGES: `${AGNHOST}:2.52`,
      SELECTOR: "app=web",
    });
    const rs = parseTable(await ok(["get", "rs"]));
    expect(rs.headers).toEqual(["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    expect(rs.rows).toEqual([
      expect.objectContaining({
        NAME: expect.stringMatching(/^web-[bcdfghjklmnpqrstvwxz2456789]+$/),
        DESIRED: "3",
        CURRENT: "3",
        READY: "3",
      }),
    ]);
    const ps = parseTable(await ok(["get", "pods", "-l", "app=web"]));
    expect(ps.rows).toHaveLength(3);
    expect(ps.rows.every((r) => r.READY === "1/1" && r.STATUS === "Running")).toBe(true);
    expect(ps.rows.every((r) => r.NAME.startsWith(`${rs.rows[0].NAME}-`))).toBe(true);
  });

  it("describe deployment shows replicas, strategy, conditions and the new ReplicaSet", async () => {
    const out = await ok(["describe", "deployment", "web"]);
    expect(out).toMatch(/^Replicas:\s+3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable$/m);
    expect(out).toMatch(/^StrategyType:\s+RollingUpdate$/m);
    expect(out).toMatch(/^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$/m);
    expect(out).toMatch(/^\s+Available\s+True\s+MinimumReplicasAvailable$/m);
    expect(out).toMatch(/^\s+Progressing\s+True\s+NewReplicaSetAvailable$/m);
    expect(out).toMatch(/^NewReplicaSet:\s+web-\w+ \(3\/3 replicas created\)$/m);
    expect(out).toMatch(/Normal\s+ScalingReplicaSet\s+.*Scaled up replica set web-\w+ from 0 to 3$/m);
  });

  it("scale goes through the scale subresource", async () => {
    expect((await ok(["scale", "deployment", "web", "--replicas=4"])).trim()).toBe(
      "deployment.apps/web scaled",
    );
    await rolloutStatus();
    expect((await api("/apis/apps/v1/namespaces/default/deployments/web/scale")).spec.replicas).toBe(4);
    await eventually(async () => (await pods()).length === 4, WAIT);
  });

  it("set image rolls out within maxSurge and maxUnavailable after every pod event", async () => {
    // 4 replicas at 25%/25%: at most 5 pods, at least 3 ready, at every step.
    const start = await api("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
    const w = c.watch(
      `/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dweb&resourceVersion=${start.metadata.resourceVersion}`,
    );
    try {
      const out = await ok(["set", "image", "deployment/web", `agnhost=${AGNHOST}:2.53`]);
      expect(out.trim()).toBe("deployment.apps/web image updated");
      await rolloutStatus();
      await eventually(async () => {
        const ps = await pods();
        return ps.length === 4 && ps.every((p) => p.spec.containers[0].image === `${AGNHOST}:2.53`);
      }, WAIT);
    } finally {
      w.close();
    }
    const oldHash = start.items[0].metadata.labels["pod-template-hash"];
    let mixed = false;
    replayPods(start.items, w.events, (ps) => {
      const active = [...ps.values()].filter((p) => !p.metadata.deletionTimestamp);
      const hashes = new Set(active.map((p) => p.metadata.labels["pod-template-hash"] === oldHash));
      if (hashes.size === 2) mixed = true;
      expect(active.length, "pods <= replicas + maxSurge").toBeLessThanOrEqual(5);
      expect(active.filter(isReady).length, "ready pods >= replicas - maxUnavailable").toBeGreaterThanOrEqual(
        3,
      );
    });
    // A rolling update: old and new pods served side by side.
    expect(mixed).toBe(true);
  });

  it("rollout history lists the revisions and undo goes back to the previous template", async () => {
    const history = await ok(["rollout", "history", "deployment/web"]);
    expect(history.split("\n").map((l) => l.trim())).toEqual(
      expect.arrayContaining(["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]),
    );
    const rev2 = await ok(["rollout", "history", "deployment/web", "--revision=2"]);
    expect(rev2).toMatch(new RegExp(`Image:\\s+${AGNHOST.replaceAll(".", "\\.")}:2\\.53`));

    expect((await ok(["rollout", "undo", "deployment/web"])).trim()).toBe("deployment.apps/web rolled back");
    await rolloutStatus();
    await eventually(async () => {
      const ps = await pods();
      return ps.length === 4 && ps.every((p) => p.spec.containers[0].image === `${AGNHOST}:2.52`);
    }, WAIT);
    const after = await ok(["rollout", "history", "deployment/web"]);
    const revisions = after
      .split("\n")
      .map((l) => /^(\d+)\s+<none>$/.exec(l.trim())?.[1])
      .filter(Boolean);
    expect(revisions).toEqual(["2", "3"]);
    const d = await api("/apis/apps/v1/namespaces/default/deployments/web");
    expect(d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("3");
  });

  it("a paused deployment holds its rollout until resumed", async () => {
    expect((await ok(["rollout", "pause", "deployment/web"])).trim()).toBe("deployment.apps/web paused");
    await ok(["set", "image", "deployment/web", `agnhost=${AGNHOST}:2.54`]);
    const undo = await kubectl(["rollout", "undo", "deployment/web"]);
    expect(undo.code).not.toBe(0);
    expect(undo.stderr).toContain("you cannot rollback a paused deployment");
    const d = await eventually(async () => {
      const x = await api("/apis/apps/v1/namespaces/default/deployments/web");
      return x.status.observedGeneration === x.metadata.generation ? x : undefined;
    }, WAIT);
    expect(d.status.conditions.find((x: any) => x.type === "Progressing").reason).toBe("DeploymentPaused");
    expect((await pods()).every((p) => p.spec.containers[0].image === `${AGNHOST}:2.52`)).toBe(true);
    expect((await ok(["rollout", "resume", "deployment/web"])).trim()).toBe("deployment.apps/web resumed");
    await rolloutStatus();
    await eventually(
      async () => (await pods()).every((p) => p.spec.containers[0].image === `${AGNHOST}:2.54`),
      WAIT,
    );
  });

  it("apply of a Deployment manifest creates and then configures it", async () => {
    const file = join(kit.work, "api.yaml");
    const manifest = (image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    app: api
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: netexec
        image: ${image}
        args: ["netexec", "--http-port=8080"]
        ports:
        - containerPort: 8080
          name: http
`;
    writeFileSync(file, manifest(`${AGNHOST}:2.52`));
    expect((await ok(["apply", "-f", file])).trim()).toBe("deployment.apps/api created");
    await ok(["rollout", "status", "deployment/api", "--timeout=60s"]);
    writeFileSync(file, manifest(`${AGNHOST}:2.53`));
    expect((await ok(["apply", "-f", file])).trim()).toBe("deployment.apps/api configured");
    await ok(["rollout", "status", "deployment/api", "--timeout=60s"]);
    expect((await ok(["apply", "-f", file])).trim()).toBe("deployment.apps/api unchanged");
    const t = parseTable(await ok(["get", "rs", "-l", "app=api"]));
    expect(t.rows.map((r) => r.DESIRED).sort()).toEqual(["0", "2"]);
    expect((await ok(["delete", "-f", file])).trim()).toBe('deployment.apps "api" deleted');
  });

  it("refuses a selector that does not match the template labels", async () => {
    const file = join(kit.work, "bad.yaml");
    writeFileSync(
      file,
      `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  selector:
    matchLabels:
      app: other
  template:
    metadata:
      labels:
        app: bad
    spec:
      containers:
      - name: app
        image: nginx
`,
    );
    for (const verb of ["apply", "create"]) {
      const r = await kubectl([verb, "-f", file]);
      expect(r.code, verb).not.toBe(0);
      expect(r.stderr.trim()).toBe(
        'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"bad"}: `selector` does not match template `labels`',
      );
    }
    const neg = await kubectl(["create", "deployment", "neg", "--image=nginx", "--replicas=-1"]);
    expect(neg.code).not.toBe(0);
    expect(neg.stderr).toContain(
      'Deployment.apps "neg" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    );
    expect((await c.request("GET", "/apis/apps/v1/namespaces/default/deployments/bad")).status).toBe(404);
  });

  it("delete deployment removes its ReplicaSets and pods", async () => {
    expect((await ok(["delete", "deployment", "web"])).trim()).toBe('deployment.apps "web" deleted');
    await eventually(
      async () => (await api("/apis/apps/v1/namespaces/default/replicasets")).items.length === 0,
      WAIT,
    );
    await eventually(async () => (await api("/api/v1/namespaces/default/pods")).items.length === 0, WAIT);
    const r = await kubectl(["get", "deploy,rs,pods"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim()).toBe("No resources found in default namespace.");
  });
});
