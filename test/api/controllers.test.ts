// The in-process controllers, driven over HTTP the way node agents and kubectl drive them: the
// scheduler, node IPAM, node lifecycle (lease heartbeats, taints, eviction), pod GC and event TTL.

import { afterEach, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import {
  create,
  createNamespace,
  eventsFor,
  expectStatus,
  get,
  gone,
  heartbeat,
  mergePatch,
  names,
  nodeBody,
  podBody,
  readyCondition,
  registerNode,
} from "./helpers.ts";

const NS = "ctl";
const PODS = `/api/v1/namespaces/${NS}/pods`;
/** Scheduling and controller reactions are quick; allow generous slack for a loaded machine. */
const WAIT = 10_000;

describe("controllers", () => {
  const clusters: TestCluster[] = [];
  const beats: { stop(): void }[] = [];
  afterEach(async () => {
    for (const b of beats.splice(0)) b.stop();
    for (const c of clusters.splice(0)) await c.close();
  });

  async function cluster(opts: Parameters<typeof startTestCluster>[0] = {}): Promise<TestCluster> {
    const c = await startTestCluster(opts);
    clusters.push(c);
    await createNamespace(c, NS);
    return c;
  }

  async function nodeOf(c: TestCluster, pod: string): Promise<string> {
    return eventually(async () => (await get(c, `${PODS}/${pod}`)).spec.nodeName, WAIT);
  }

  async function failedScheduling(c: TestCluster, pod: string): Promise<any> {
    return eventually(async () => (await eventsFor(c, NS, pod, "FailedScheduling"))[0], WAIT);
  }

  describe("scheduler", () => {
    it("binds a pending pod to a Ready node and records Scheduled", async () => {
      const c = await cluster();
      await registerNode(c, "n1");
      await create(c, PODS, podBody("p"));
      expect(await nodeOf(c, "p")).toBe("n1");
      const pod = await get(c, `${PODS}/p`);
      expect(pod.status.conditions).toContainEqual(
        expect.objectContaining({ type: "PodScheduled", status: "True" }),
      );
      const ev = await eventually(async () => (await eventsFor(c, NS, "p", "Scheduled"))[0], WAIT);
      expect(ev).toMatchObject({
        type: "Normal",
        reason: "Scheduled",
        message: `Successfully assigned ${NS}/p to n1`,
        involvedObject: { kind: "Pod", name: "p", namespace: NS, uid: pod.metadata.uid },
      });
    });

    it("binds through pods/binding like kube-scheduler, exactly once", async () => {
      const c = await cluster({ controllers: false });
      await create(c, "/api/v1/nodes", nodeBody("n1", { ready: true }));
      await create(c, PODS, podBody("manual"));
      const binding = {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: "manual" },
        target: { kind: "Node", name: "n1" },
      };
      const res = expectStatus(await c.request("POST", `${PODS}/manual/binding`, { body: binding }), 201);
      expect(res.json).toMatchObject({ kind: "Status", status: "Success" });
      expect((await get(c, `${PODS}/manual`)).spec.nodeName).toBe("n1");
      const again = await c.request("POST", `${PODS}/manual/binding`, { body: binding });
      expect(again.status).toBe(409);
      expect(again.json.reason).toBe("Conflict");
      const missing = await c.request("POST", `${PODS}/manual/binding`, { body: { target: {} } });
      expect(missing.status).toBe(422);
    });

    it("leaves a pod that names its node where it is", async () => {
      const c = await cluster();
      await registerNode(c, "n1");
      await registerNode(c, "n2");
      await create(c, PODS, podBody("pinned", { nodeName: "n2" }));
      // A pod created afterwards is scheduled; by then the pinned pod has been seen.
      await create(c, PODS, podBody("free"));
      await nodeOf(c, "free");
      expect((await get(c, `${PODS}/pinned`)).spec.nodeName).toBe("n2");
      expect(await eventsFor(c, NS, "pinned", "Scheduled")).toEqual([]);
    });

    it("honours nodeSelector and explains a mismatch in FailedScheduling", async () => {
      const c = await cluster();
      for (const n of ["n1", "n2", "n3"]) await registerNode(c, n);
      await create(c, PODS, podBody("picky", { nodeSelector: { disk: "ssd" } }));
      const ev = await failedScheduling(c, "picky");
      expect(ev.type).toBe("Warning");
      expect(ev.message).toBe(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
      );
      const pod = await get(c, `${PODS}/picky`);
      expect(pod.spec.nodeName).toBeUndefined();
      expect(pod.status.conditions).toContainEqual(
        expect.objectContaining({
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: ev.message,
        }),
      );
      // Labelling a node makes it fit; the scheduler retries on node changes.
      await mergePatch(c, "/api/v1/nodes/n2", { metadata: { labels: { disk: "ssd" } } });
      expect(await nodeOf(c, "picky")).toBe("n2");
    });

    it("keeps pods off tainted nodes unless they tolerate the taint", async () => {
      const c = await cluster();
      await registerNode(c, "tainted", { taints: [{ key: "dedicated", value: "db", effect: "NoSchedule" }] });
      await create(c, PODS, podBody("intolerant"));
      const ev = await failedScheduling(c, "intolerant");
      expect(ev.message).toMatch(
        /^0\/1 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: db\}\./,
      );
      await create(
        c,
        PODS,
        podBody("tolerant", {
          tolerations: [{ key: "dedicated", operator: "Equal", value: "db", effect: "NoSchedule" }],
        }),
      );
      expect(await nodeOf(c, "tolerant")).toBe("tainted");
      expect((await get(c, `${PODS}/intolerant`)).spec.nodeName).toBeUndefined();
    });

    it("does not schedule onto nodes that are not Ready", async () => {
      const c = await cluster();
      await create(c, "/api/v1/nodes", {
        ...nodeBody("sick"),
        status: { conditions: [readyCondition("False")] },
      });
      await create(c, PODS, podBody("waiting"));
      const ev = await failedScheduling(c, "waiting");
      expect(ev.message).toMatch(
        /^0\/1 nodes are available: 1 node\(s\) had untolerated taint \{node\.kubernetes\.io\/not-ready: \}/,
      );
    });

    it("respects pod capacity and schedules the waiting pod once room frees up", async () => {
      const c = await cluster();
      await registerNode(c, "small", { maxPods: 1 });
      await create(c, PODS, podBody("first"));
      expect(await nodeOf(c, "first")).toBe("small");
      await create(c, PODS, podBody("second"));
      const ev = await failedScheduling(c, "second");
      expect(ev.message).toBe(
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
      );
      // The first pod goes (its node confirms at once); the second gets the room.
      expectStatus(await c.request("DELETE", `${PODS}/first?gracePeriodSeconds=0`), 200);
      expect(await nodeOf(c, "second")).toBe("small");
    });

    it("spreads pods over the least loaded nodes", async () => {
      const c = await cluster();
      for (const n of ["a", "b", "c"]) await registerNode(c, n);
      await create(c, PODS, podBody("pre", { nodeName: "a" }));
      const created = [];
      for (let i = 0; i < 5; i++) created.push(create(c, PODS, podBody(`s${i}`)));
      await Promise.all(created);
      const placed: Record<string, number> = {};
      for (let i = 0; i < 5; i++) {
        const node = await nodeOf(c, `s${i}`);
        placed[node] = (placed[node] ?? 0) + 1;
      }
      // 6 pods over 3 nodes, "a" already had one: 2 each.
      expect({ ...placed, a: (placed.a ?? 0) + 1 }).toEqual({ a: 2, b: 2, c: 2 });
    });

    it("reports when there are no nodes at all", async () => {
      const c = await cluster();
      await create(c, PODS, podBody("alone"));
      const ev = await failedScheduling(c, "alone");
      expect(ev.message).toBe("no nodes available to schedule pods");
    });
  });

  describe("node IPAM", () => {
    it("gives each node a distinct podCIDR and reports exhaustion", async () => {
      // A /22 holds four /24s.
      const c = await cluster({ clusterCidr: "10.200.0.0/22", nodeCidrMaskSize: 24 });
      for (const n of ["n1", "n2", "n3", "n4"]) await create(c, "/api/v1/nodes", nodeBody(n));
      const cidrs = await eventually(async () => {
        const list = await get(c, "/api/v1/nodes");
        const got = list.items.map((n: any) => n.spec.podCIDR);
        return got.length === 4 && got.every(Boolean) ? got : null;
      }, WAIT);
      expect([...cidrs].sort()).toEqual(["10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24", "10.200.3.0/24"]);
      for (const n of (await get(c, "/api/v1/nodes")).items)
        expect(n.spec.podCIDRs).toEqual([n.spec.podCIDR]);

      await create(c, "/api/v1/nodes", nodeBody("n5"));
      const ev = await eventually(
        async () => (await eventsFor(c, "default", "n5", "CIDRNotAvailable"))[0],
        WAIT,
      );
      expect(ev).toMatchObject({
        involvedObject: { kind: "Node", name: "n5" },
        message: "Node n5 status is now: CIDRNotAvailable",
      });
      const n5 = await eventually(async () => {
        const node = await get(c, "/api/v1/nodes/n5");
        return node.status?.conditions?.some((x: any) => x.type === "NetworkUnavailable") ? node : null;
      }, WAIT);
      expect(n5.spec.podCIDR).toBeUndefined();
      expect(n5.status.conditions).toContainEqual(
        expect.objectContaining({ type: "NetworkUnavailable", status: "True", reason: "NoCIDRAvailable" }),
      );

      // Freeing a range lets the waiting node have it.
      const freed = (await get(c, "/api/v1/nodes/n2")).spec.podCIDR;
      expectStatus(await c.request("DELETE", "/api/v1/nodes/n2"), 200);
      const got = await eventually(async () => (await get(c, "/api/v1/nodes/n5")).spec.podCIDR, WAIT);
      expect(got).toBe(freed);
      const after = await get(c, "/api/v1/nodes/n5");
      expect(after.status.conditions.some((x: any) => x.reason === "NoCIDRAvailable")).toBe(false);
    });

    it("keeps a podCIDR the node already has", async () => {
      const c = await cluster({ clusterCidr: "10.200.0.0/22" });
      await create(c, "/api/v1/nodes", nodeBody("pre", { podCIDR: "10.200.2.0/24" }));
      await create(c, "/api/v1/nodes", nodeBody("fresh"));
      const fresh = await eventually(async () => (await get(c, "/api/v1/nodes/fresh")).spec.podCIDR, WAIT);
      expect(fresh).not.toBe("10.200.2.0/24");
      expect((await get(c, "/api/v1/nodes/pre")).spec.podCIDR).toBe("10.200.2.0/24");
    });
  });

  describe("node lifecycle", () => {
    it("marks a silent node Unknown and unreachable, evicts its pods, and recovers when it reports again", async () => {
      const c = await cluster({ nodeMonitorGracePeriodMs: 3000, podEvictionTimeoutSeconds: 1 });
      await registerNode(c, "quiet");
      await registerNode(c, "steady");
      const quietBeat = heartbeat(c, "quiet");
      beats.push(quietBeat, heartbeat(c, "steady"));

      await create(c, PODS, podBody("victim", { nodeName: "quiet" }));
      // Tolerates unreachable forever: never evicted.
      await create(
        c,
        PODS,
        podBody("stayer", {
          nodeName: "quiet",
          tolerations: [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }],
        }),
      );
      await create(c, PODS, podBody("bystander", { nodeName: "steady" }));

      quietBeat.stop();
      const node = await eventually(async () => {
        const n = await get(c, "/api/v1/nodes/quiet");
        return n.status.conditions.find((x: any) => x.type === "Ready").status === "Unknown" ? n : null;
      }, WAIT);
      expect(node.status.conditions.find((x: any) => x.type === "Ready")).toMatchObject({
        reason: "NodeStatusUnknown",
        message: "Kubelet stopped posting node status.",
      });
      const tainted = await eventually(async () => {
        const n = await get(c, "/api/v1/nodes/quiet");
        return (n.spec.taints ?? []).length >= 2 ? n : null;
      }, WAIT);
      expect(tainted.spec.taints.map((t: any) => `${t.key}:${t.effect}`).sort()).toEqual([
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/unreachable:NoSchedule",
      ]);
      for (const t of tainted.spec.taints) expect(t.timeAdded).toBeDefined();
      await eventually(async () => (await eventsFor(c, "default", "quiet", "NodeNotReady")).length > 0, WAIT);

      // After its 1 s toleration the pod is marked for deletion and waits for its node.
      const victim = await eventually(async () => {
        const p = await get(c, `${PODS}/victim`);
        return p.metadata.deletionTimestamp ? p : null;
      }, WAIT);
      expect(victim.status.conditions).toContainEqual(
        expect.objectContaining({
          type: "DisruptionTarget",
          status: "True",
          reason: "DeletionByTaintManager",
        }),
      );
      const eviction = await eventually(
        async () => (await eventsFor(c, NS, "victim", "TaintManagerEviction"))[0],
        WAIT,
      );
      expect(eviction.message).toBe(`Marking for deletion Pod ${NS}/victim`);
      expect((await get(c, `${PODS}/stayer`)).metadata.deletionTimestamp).toBeUndefined();
      expect((await get(c, `${PODS}/bystander`)).metadata.deletionTimestamp).toBeUndefined();
      const steady = await get(c, "/api/v1/nodes/steady");
      expect(steady.spec.taints ?? []).toEqual([]);

      // The node comes back: lease renewed and Ready=True posted. The taints go.
      beats.push(heartbeat(c, "quiet"));
      await mergePatch(c, "/api/v1/nodes/quiet/status", { status: { conditions: [readyCondition("True")] } });
      await eventually(
        async () => ((await get(c, "/api/v1/nodes/quiet")).spec.taints ?? []).length === 0,
        WAIT,
      );
    });

    it("taints a node whose kubelet reports Ready=False as not-ready", async () => {
      const c = await cluster({ nodeMonitorGracePeriodMs: 5000 });
      await registerNode(c, "flaky");
      beats.push(heartbeat(c, "flaky"));
      await mergePatch(c, "/api/v1/nodes/flaky/status", {
        status: { conditions: [readyCondition("False")] },
      });
      const node = await eventually(async () => {
        const n = await get(c, "/api/v1/nodes/flaky");
        return (n.spec.taints ?? []).length >= 2 ? n : null;
      }, WAIT);
      expect(node.spec.taints.map((t: any) => `${t.key}:${t.effect}`).sort()).toEqual([
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/not-ready:NoSchedule",
      ]);
    });
  });

  describe("pod GC", () => {
    it("removes the pods of a deleted node, even terminating ones", async () => {
      const c = await cluster();
      await registerNode(c, "doomed");
      await registerNode(c, "other");
      await create(c, PODS, podBody("on-doomed", { nodeName: "doomed" }));
      await create(c, PODS, podBody("terminating", { nodeName: "doomed" }));
      await create(c, PODS, podBody("on-other", { nodeName: "other" }));
      const terminating = expectStatus(await c.request("DELETE", `${PODS}/terminating`), 200).json;
      expect(terminating.metadata.deletionTimestamp).toBeDefined();

      expectStatus(await c.request("DELETE", "/api/v1/nodes/doomed"), 200);
      await gone(c, `${PODS}/on-doomed`, WAIT);
      await gone(c, `${PODS}/terminating`, WAIT);
      expect(names(await get(c, PODS))).toEqual(["on-other"]);
    });
  });

  describe("event TTL", () => {
    it("deletes events older than the TTL", async () => {
      const c = await cluster({ eventTtlMs: 300 });
      const old = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      await create(c, `/api/v1/namespaces/${NS}/events`, {
        metadata: { name: "stale" },
        involvedObject: { kind: "Pod", namespace: NS, name: "x" },
        reason: "Old",
        message: "old",
        firstTimestamp: old,
        lastTimestamp: old,
      });
      await gone(c, `/api/v1/namespaces/${NS}/events/stale`, WAIT);
    });
  });
});
