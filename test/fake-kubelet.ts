// A stand-in for node agents in control-plane tests: pods the scheduler bound are reported Running
// (Ready unless `ready` says otherwise) through pods/status, as the agent's status manager does,
// and graceful deletions are confirmed with a zero grace period once "stopped". It polls, so it
// never misses a pod, and stops cleanly.

import type { TestCluster } from "./harness.ts";

function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export interface FakeKubelet {
  /** Whether a pod should report Ready; changes apply on the next poll. */
  ready: (pod: any) => boolean;
  /** Whether terminating pods are confirmed gone (false keeps them Terminating). */
  confirmDeletes: boolean;
  stop(): Promise<void>;
}

export function startFakeKubelet(c: TestCluster, namespace: string, everyMs = 25): FakeKubelet {
  const pods = `/api/v1/namespaces/${namespace}/pods`;
  let stopped = false;
  const kubelet: FakeKubelet = {
    ready: () => true,
    confirmDeletes: true,
    async stop() {
      stopped = true;
      await loop;
    },
  };

  async function report(pod: any, ready: boolean): Promise<void> {
    const now = rfc3339();
    const status = ready ? "True" : "False";
    const cond = (type: string) => ({ type, status, lastProbeTime: null, lastTransitionTime: now });
    await c.request("PATCH", `${pods}/${pod.metadata.name}/status`, {
      headers: { "content-type": "application/strategic-merge-patch+json" },
      body: {
        metadata: { uid: pod.metadata.uid },
        status: {
          phase: "Running",
          startTime: pod.status?.startTime ?? now,
          conditions: [
            { type: "Initialized", status: "True", lastProbeTime: null, lastTransitionTime: now },
            cond("ContainersReady"),
            cond("Ready"),
          ],
          containerStatuses: pod.spec.containers.map((ct: any) => ({
            name: ct.name,
            image: ct.image,
            imageID: "",
            ready,
            started: true,
            restartCount: 0,
            state: { running: { startedAt: now } },
          })),
        },
      },
    });
  }

  async function tick(): Promise<void> {
    const res = await c.request("GET", pods);
    for (const pod of res.json?.items ?? []) {
      if (stopped) return;
      if (pod.metadata.deletionTimestamp) {
        if (!kubelet.confirmDeletes || !pod.spec.nodeName) continue;
        await c.request("DELETE", `${pods}/${pod.metadata.name}`, {
          body: {
            kind: "DeleteOptions",
            apiVersion: "v1",
            gracePeriodSeconds: 0,
            preconditions: { uid: pod.metadata.uid },
          },
        });
        continue;
      }
      if (!pod.spec.nodeName) continue;
      const want = kubelet.ready(pod);
      const isReady =
        pod.status?.conditions?.some((x: any) => x.type === "Ready" && x.status === "True") ?? false;
      if (pod.status?.phase !== "Running" || isReady !== want) await report(pod, want);
    }
  }

  const loop = (async () => {
    while (!stopped) {
      await tick().catch(() => {});
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return kubelet;
}

/**
 * Pod states replayed from a list and a watch started at the list's resourceVersion: `check` sees
 * the set of pods after every single event, so a bound that held only on average still fails.
 */
export function replayPods(
  initial: any[],
  events: any[],
  check: (pods: Map<string, any>, event: any) => void,
): void {
  const pods = new Map<string, any>(initial.map((p) => [p.metadata.name, p]));
  for (const ev of events) {
    if (ev.type === "BOOKMARK" || ev.type === "ERROR") continue;
    if (ev.type === "DELETED") pods.delete(ev.object.metadata.name);
    else pods.set(ev.object.metadata.name, ev.object);
    check(pods, ev);
  }
}

export function isReady(pod: any): boolean {
  return pod.status?.conditions?.some((x: any) => x.type === "Ready" && x.status === "True") ?? false;
}
