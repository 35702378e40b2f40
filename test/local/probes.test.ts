// Container probes on a real 1-node local cluster, run by the node agent as kubelet runs them:
// an httpGet readiness probe toggling Ready both ways, a liveness probe restarting agnhost's
// `liveness` server once its /healthz turns 500, an exec probe inside the container (its
// hostname and environment), tcpSocket probes by port name and on a closed port, and a startup
// probe holding readiness back until it passes.
//
// Containers share the node's filesystem, so the files the probes look at live in a directory of
// this run only, removed at the end.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downAndCheck, type LocalCluster, upLocalCluster } from "./kit.ts";

const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";

function manifests(dir: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: web-ready
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["httpd", "-f", "-p", "8080", "-h", "${dir}/www"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet:
        path: /ready
        port: http
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: live
spec:
  containers:
  - name: agnhost
    image: ${AGNHOST}
    args: ["liveness"]
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: exec-probe
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    env:
    - name: PROBE_FILE
      value: ${dir}/healthy
    command: ["sh", "-c", "touch $(PROBE_FILE); exec sleep 100000"]
    readinessProbe:
      exec:
        command: ["sh", "-c", "test \\"$(hostname)\\" = exec-probe && cat \\"$PROBE_FILE\\""]
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: tcp-probe
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: ${AGNHOST}
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      tcpSocket:
        port: http
      periodSeconds: 1
  - name: closed
    image: busybox
    command: ["sleep", "100000"]
    readinessProbe:
      tcpSocket:
        port: 9999
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: slow-start
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: ${AGNHOST}
    # netexec's /healthz answers 200 once its UDP server is up (412 without one).
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
    env:
    - name: STARTED_FILE
      value: ${dir}/started
    startupProbe:
      exec:
        command: ["cat", "$(STARTED_FILE)"]
      periodSeconds: 1
      failureThreshold: 600
    readinessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 1
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 1
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const condition = (pod: any, type: string) => pod.status?.conditions?.find((x: any) => x.type === type);
const isReady = (pod: any) => condition(pod, "Ready")?.status === "True";
const container = (pod: any, name: string) =>
  pod.status?.containerStatuses?.find((x: any) => x.name === name);

describe("container probes on a local cluster", () => {
  let c: LocalCluster;
  let dir: string;

  /** The messages of the events of one pod with this reason. */
  async function events(pod: string, reason: string): Promise<string[]> {
    const out = await c.k(["get", "events", "--field-selector", `involvedObject.name=${pod}`, "-o", "json"]);
    return JSON.parse(out)
      .items.filter((e: any) => e.reason === reason)
      .map((e: any) => e.message as string);
  }

  async function waitEvent(pod: string, reason: string, match: (m: string) => boolean): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = (await events(pod, reason)).find(match);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no ${reason} event for ${pod}: ${JSON.stringify(await events(pod, reason))}`);
      }
      await sleep(250);
    }
  }

  beforeAll(async () => {
    c = await upLocalCluster("tp", ["--nodes", "1"]);
    // A per-run directory of the node file system, which containers share.
    dir = join("/var/tmp", `kemu-probes-${c.name}`);
    mkdirSync(join(dir, "www"), { recursive: true });
    await c.k(["apply", "-f", "-"], manifests(dir));
  }, 120_000);

  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await downAndCheck(c);
  }, 60_000);

  it("an httpGet readiness probe (port by name) toggles the container's ready and the pod's Ready", async () => {
    const pod = await c.waitPod("web-ready", (p) => container(p, "web")?.state?.running !== undefined);
    expect(container(pod, "web")).toMatchObject({ started: true, ready: false });
    const message = await waitEvent("web-ready", "Unhealthy", (m) => m.startsWith("Readiness probe failed:"));
    expect(message).toBe("Readiness probe failed: HTTP probe failed with statuscode: 404");
    const unready = await c.pod("web-ready");
    expect(isReady(unready)).toBe(false);
    expect(condition(unready, "ContainersReady")).toMatchObject({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [web]",
    });

    writeFileSync(join(dir, "www", "ready"), "ok\n");
    const ready = await c.waitPod("web-ready", isReady);
    expect(container(ready, "web").ready).toBe(true);
    expect(condition(ready, "ContainersReady").status).toBe("True");

    rmSync(join(dir, "www", "ready"));
    const again = await c.waitPod("web-ready", (p) => condition(p, "Ready")?.status === "False");
    expect(container(again, "web")).toMatchObject({ ready: false, restartCount: 0 });
    expect(again.status.phase).toBe("Running");
  }, 60_000);

  it("a failing liveness probe restarts the container with Unhealthy and Killing events", async () => {
    // agnhost liveness answers /healthz with 200 for 10 s, then 500.
    const early = await c.waitPod("live");
    expect(container(early, "agnhost").restartCount).toBe(0);
    const restarted = await c.waitPod("live", (p) => container(p, "agnhost")?.restartCount >= 1, 60_000);
    expect(container(restarted, "agnhost").lastState.terminated).toBeDefined();
    const started = Date.parse(container(early, "agnhost").state.running.startedAt);
    const finished = Date.parse(container(restarted, "agnhost").lastState.terminated.finishedAt);
    expect(finished - started).toBeGreaterThanOrEqual(10_000); // not before /healthz failed
    expect(await events("live", "Unhealthy")).toContain(
      "Liveness probe failed: HTTP probe failed with statuscode: 500",
    );
    expect(await events("live", "Killing")).toContain(
      "Container agnhost failed liveness probe, will be restarted",
    );
    // The next attempt runs (after the back-off) and is healthy again at first.
    const running = await c.waitPod(
      "live",
      (p) =>
        container(p, "agnhost")?.restartCount === 1 && container(p, "agnhost")?.state?.running !== undefined,
      60_000,
    );
    expect(running.status.phase).toBe("Running");
  }, 150_000);

  it("an exec probe runs inside the container, with its hostname and environment", async () => {
    const ready = await c.waitPod("exec-probe", isReady);
    expect(container(ready, "app")).toMatchObject({ ready: true, started: true });
    rmSync(join(dir, "healthy"));
    const unready = await c.waitPod("exec-probe", (p) => condition(p, "Ready")?.status === "False");
    expect(container(unready, "app").ready).toBe(false);
    const message = await waitEvent("exec-probe", "Unhealthy", (m) =>
      m.startsWith("Readiness probe failed:"),
    );
    expect(message).toContain(`can't open '${dir}/healthy'`);
    writeFileSync(join(dir, "healthy"), "");
    await c.waitPod("exec-probe", isReady);
  }, 60_000);

  it("tcpSocket probes: open by port name is ready, a closed port keeps its container unready", async () => {
    const pod = await c.waitPod("tcp-probe", (p) => container(p, "netexec")?.ready === true);
    expect(container(pod, "closed")).toMatchObject({ ready: false, started: true });
    expect(isReady(pod)).toBe(false);
    expect(condition(pod, "ContainersReady").message).toBe("containers with unready status: [closed]");
    const message = await waitEvent("tcp-probe", "Unhealthy", (m) => m.startsWith("Readiness probe failed:"));
    expect(message).toBe(
      `Readiness probe failed: dial tcp ${pod.status.podIP}:9999: connect: connection refused`,
    );
  }, 60_000);

  it("a startup probe holds readiness and liveness back until it succeeds", async () => {
    const pod = await c.waitPod("slow-start");
    await waitEvent("slow-start", "Unhealthy", (m) => m.startsWith("Startup probe failed:"));
    // /healthz answers 200 all along, but nothing counts before the startup probe passes.
    for (let i = 0; i < 3; i++) {
      const p = await c.pod("slow-start");
      expect(container(p, "netexec")).toMatchObject({ started: false, ready: false, restartCount: 0 });
      expect(isReady(p)).toBe(false);
      await sleep(1000);
    }
    writeFileSync(join(dir, "started"), "");
    const ready = await c.waitPod("slow-start", isReady);
    expect(container(ready, "netexec")).toMatchObject({ started: true, ready: true, restartCount: 0 });
    expect(container(ready, "netexec").state.running.startedAt).toBe(
      container(pod, "netexec").state.running.startedAt,
    );
    expect(await events("slow-start", "Killing")).toEqual([]);
  }, 60_000);
});
