// What the agent knows about each pod it runs, persisted as JSON in the pod's directory so a
// restarted agent adopts running containers instead of disturbing them. Pure helpers turn a
// record into the pod's status exactly as kubelet reports it.

import { rfc3339 } from "../../emulator/duration.ts";
import type { Condition, Pod } from "../../emulator/types.ts";

export interface Terminated {
  exitCode: number;
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
}

export interface ContainerRecord {
  name: string;
  image: string;
  init: boolean;
  restartCount: number;
  /** Id of the current attempt (changes on every restart). */
  id: string;
  shimPid?: number;
  startedAt?: string;
  exitFile?: string;
  state: "waiting" | "running" | "terminated";
  waiting?: { reason: string; message?: string };
  terminated?: Terminated;
  lastTerminated?: Terminated;
  /** Epoch ms before which a restart waits (back-off). */
  nextStartAt?: number;
  /** Epoch ms the current attempt started (startedAt has whole seconds only). */
  startedAtMs?: number;
  /** A failed liveness/startup probe is killing this attempt: it restarts unless the policy is Never. */
  killReason?: "liveness" | "startup";
  /** Epoch ms after which the probe-killed attempt gets SIGKILL. */
  killAt?: number;
}

/** A container's `started` and `ready` as its probes decide them (see probes.ts). */
export type ProbeResults = (c: ContainerRecord) => { started: boolean; ready: boolean };

/** Without probes: started once running; ready when running (init containers never are). */
export const noProbes: ProbeResults = (c) => ({
  started: c.state === "running",
  ready: c.state === "running" && !c.init,
});

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  podIP?: string;
  sandboxReady: boolean;
  sandboxError?: string;
  /** Epoch ms of the next sandbox attempt after a failure. */
  sandboxRetryAt?: number;
  startTime: string;
  containers: ContainerRecord[];
  /** Set once termination started: epoch ms after which remaining processes get SIGKILL. */
  killAt?: number;
}

export const MAX_BACKOFF_MS = 300_000;
const BASE_BACKOFF_MS = 10_000;

/** kubelet's crash-loop back-off: 10 s doubling per restart up to 5 min. */
export function backoffMs(restartCount: number): number {
  return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, restartCount - 1));
}

/** Should a container that just exited with `exitCode` be started again? */
export function shouldRestart(policy: string | undefined, exitCode: number, init: boolean): boolean {
  if (init) return policy !== "Never" ? exitCode !== 0 : false;
  if (policy === "Never") return false;
  if (policy === "OnFailure") return exitCode !== 0;
  return true;
}

function containerState(c: ContainerRecord): Record<string, unknown> {
  if (c.state === "running") return { running: { startedAt: c.startedAt } };
  if (c.state === "terminated" && c.terminated)
    return { terminated: { ...c.terminated, containerID: `kemu://${c.id}` } };
  return { waiting: c.waiting ?? { reason: "ContainerCreating" } };
}

function containerStatus(c: ContainerRecord, probes: ProbeResults): Record<string, unknown> {
  const { started, ready } = c.init ? noProbes(c) : probes(c);
  return {
    name: c.name,
    state: containerState(c),
    lastState: c.lastTerminated ? { terminated: { ...c.lastTerminated } } : {},
    ready,
    restartCount: c.restartCount,
    image: c.image,
    imageID: `kemu://${c.image}`,
    ...(c.state !== "waiting" ? { containerID: `kemu://${c.id}` } : {}),
    started,
  };
}

function condition(
  type: string,
  ok: boolean,
  now: string,
  old: Condition[] | undefined,
  reason?: string,
  message?: string,
): Condition {
  const status = ok ? "True" : "False";
  const prev = old?.find((c) => c.type === type);
  return {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now,
    ...(!ok && reason ? { reason } : {}),
    ...(!ok && message ? { message } : {}),
  };
}

/** The phase as kubelet's getPhase computes it from container states and the restart policy. */
export function podPhase(pod: Pod, rec: PodRecord): NonNullable<Pod["status"]>["phase"] {
  const app = rec.containers.filter((c) => !c.init);
  const inits = rec.containers.filter((c) => c.init);
  const policy = pod.spec.restartPolicy ?? "Always";
  if (
    inits.some(
      (c) => c.state === "terminated" && c.terminated!.exitCode !== 0 && !shouldRestart(policy, 1, true),
    )
  ) {
    return "Failed";
  }
  if (inits.some((c) => c.state !== "terminated" || c.terminated!.exitCode !== 0)) return "Pending";
  // kubelet's getPhase: a container waiting to restart counts as stopped, by its last ending.
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of app) {
    const ended =
      c.state === "terminated" ? c.terminated : c.state === "waiting" ? c.lastTerminated : undefined;
    if (c.state === "running") running++;
    else if (ended) {
      stopped++;
      if (ended.exitCode === 0) succeeded++;
    } else waiting++;
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped === 0) return "Pending";
  if (policy === "Always") return "Running";
  if (stopped === succeeded) return "Succeeded";
  return policy === "Never" ? "Failed" : "Running";
}

export function podStatus(
  pod: Pod,
  rec: PodRecord,
  hostIP: string,
  now: Date,
  probes: ProbeResults = noProbes,
): NonNullable<Pod["status"]> {
  const stamp = rfc3339(now);
  const old = pod.status?.conditions;
  const app = rec.containers.filter((c) => !c.init);
  const inits = rec.containers.filter((c) => c.init);
  const initialized = inits.every((c) => c.state === "terminated" && c.terminated!.exitCode === 0);
  const statuses = app.map((c) => containerStatus(c, probes));
  const unready = app.filter((_, i) => !statuses[i].ready).map((c) => c.name);
  const ready = app.length > 0 && unready.length === 0;
  const phase = podPhase(pod, rec);
  // kubelet's GenerateContainersReadyCondition: PodCompleted once Succeeded, else the unready
  // containers (Go prints a []string as [a b]).
  const notReady = phase === "Succeeded" ? "PodCompleted" : "ContainersNotReady";
  const unreadyMessage =
    phase !== "Succeeded" && unready.length
      ? `containers with unready status: [${unready.join(" ")}]`
      : undefined;
  const status: NonNullable<Pod["status"]> = {
    ...pod.status,
    phase,
    hostIP,
    hostIPs: [{ ip: hostIP }],
    startTime: rec.startTime,
    conditions: [
      condition("PodReadyToStartContainers", rec.sandboxReady, stamp, old),
      condition("Initialized", initialized, stamp, old, "ContainersNotInitialized"),
      condition("Ready", ready && phase === "Running", stamp, old, notReady, unreadyMessage),
      condition("ContainersReady", ready, stamp, old, notReady, unreadyMessage),
      condition("PodScheduled", true, stamp, old),
    ],
    containerStatuses: statuses,
    ...(inits.length ? { initContainerStatuses: inits.map((c) => containerStatus(c, noProbes)) } : {}),
  };
  if (rec.podIP) {
    status.podIP = rec.podIP;
    status.podIPs = [{ ip: rec.podIP }];
  }
  return status;
}
