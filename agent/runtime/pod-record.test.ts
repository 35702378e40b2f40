import { describe, expect, it } from "vitest";
import type { Pod } from "../../emulator/types.ts";
import { hostsFile, resolvConf } from "./pod-files.ts";
import {
  backoffMs,
  type ContainerRecord,
  type PodRecord,
  podPhase,
  podStatus,
  shouldRestart,
} from "./pod-record.ts";

function pod(restartPolicy?: "Always" | "OnFailure" | "Never", extra: Partial<Pod["spec"]> = {}): Pod {
  return {
    metadata: { name: "web", namespace: "demo", uid: "u-1" },
    spec: { containers: [{ name: "app", image: "nginx" }], restartPolicy, ...extra },
    status: { phase: "Pending" },
  };
}

function c(state: ContainerRecord["state"], extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return { name: "app", image: "nginx", init: false, restartCount: 0, id: "x", state, ...extra };
}

function rec(containers: ContainerRecord[], extra: Partial<PodRecord> = {}): PodRecord {
  return {
    uid: "u-1",
    namespace: "demo",
    name: "web",
    netns: "ns",
    sandboxReady: true,
    startTime: "2026-01-01T00:00:00Z",
    containers,
    podIP: "10.244.1.5",
    ...extra,
  };
}

const done = (exitCode: number) => ({ exitCode, reason: exitCode ? "Error" : "Completed", finishedAt: "t" });

describe("pod phase", () => {
  it("is Pending until a container runs, then Running", () => {
    expect(podPhase(pod(), rec([c("waiting")]))).toBe("Pending");
    expect(podPhase(pod(), rec([c("running")]))).toBe("Running");
  });
  it("follows the restart policy once containers exit", () => {
    expect(podPhase(pod("Never"), rec([c("terminated", { terminated: done(0) })]))).toBe("Succeeded");
    expect(podPhase(pod("Never"), rec([c("terminated", { terminated: done(1) })]))).toBe("Failed");
    expect(podPhase(pod("OnFailure"), rec([c("terminated", { terminated: done(0) })]))).toBe("Succeeded");
    expect(podPhase(pod("Always"), rec([c("terminated", { terminated: done(0) })]))).toBe("Running");
  });
  it("stays Running while a crashed container waits out its back-off", () => {
    const crashing = c("waiting", {
      restartCount: 2,
      waiting: { reason: "CrashLoopBackOff" },
      lastTerminated: done(1),
    });
    expect(podPhase(pod("Always"), rec([crashing]))).toBe("Running");
  });
  it("waits for init containers", () => {
    const init = c("running", { name: "init", init: true });
    expect(podPhase(pod(), rec([init, c("waiting")]))).toBe("Pending");
  });
});

describe("restart decisions", () => {
  it("applies Always, OnFailure and Never", () => {
    expect(shouldRestart("Always", 0, false)).toBe(true);
    expect(shouldRestart("OnFailure", 0, false)).toBe(false);
    expect(shouldRestart("OnFailure", 2, false)).toBe(true);
    expect(shouldRestart("Never", 2, false)).toBe(false);
    expect(shouldRestart("Always", 0, true)).toBe(false);
  });
  it("backs off 10 s doubling to 5 min", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(backoffMs)).toEqual([
      10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
  });
});

describe("pod status", () => {
  it("reports IPs, conditions and container states like kubelet", () => {
    const s = podStatus(pod(), rec([c("running", { startedAt: "t0" })]), "172.30.0.11", new Date(0));
    expect(s.phase).toBe("Running");
    expect(s.podIP).toBe("10.244.1.5");
    expect(s.podIPs).toEqual([{ ip: "10.244.1.5" }]);
    expect(s.hostIP).toBe("172.30.0.11");
    const byType = Object.fromEntries(s.conditions!.map((x) => [x.type, x.status]));
    expect(byType).toMatchObject({
      Initialized: "True",
      Ready: "True",
      ContainersReady: "True",
      PodScheduled: "True",
    });
    expect(s.containerStatuses![0]).toMatchObject({
      name: "app",
      ready: true,
      restartCount: 0,
      state: { running: { startedAt: "t0" } },
    });
  });
  it("shows a waiting reason and message", () => {
    const w = c("waiting", { waiting: { reason: "ErrImagePull", message: "not in catalog" } });
    const s = podStatus(pod(), rec([w]), "172.30.0.11", new Date(0));
    expect(s.containerStatuses![0].state).toEqual({
      waiting: { reason: "ErrImagePull", message: "not in catalog" },
    });
    expect(s.conditions!.find((x) => x.type === "Ready")).toMatchObject({
      status: "False",
      reason: "ContainersNotReady",
    });
  });
});

describe("pod files", () => {
  it("writes kubelet's hosts file with the pod IP, hostname and host aliases", () => {
    const text = hostsFile(
      pod(undefined, { hostAliases: [{ ip: "10.0.0.9", hostnames: ["db", "db.local"] }] }),
      "10.244.1.5",
    );
    expect(text).toContain("# Kubernetes-managed hosts file.");
    expect(text).toContain("10.244.1.5\tweb\n");
    expect(text).toContain("10.0.0.9\tdb\tdb.local");
  });
  it("writes ClusterFirst resolv.conf with the namespace search path", () => {
    expect(resolvConf(pod(), { clusterDNS: "10.96.0.10", clusterDomain: "cluster.local" })).toBe(
      "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });
});
