// Object builders and small HTTP helpers shared by the API tests.

import { expect } from "vitest";
import { eventually, type TestCluster, type TestResponse } from "../harness.ts";

export function podBody(
  name: string,
  opts: {
    labels?: Record<string, string>;
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    tolerations?: unknown[];
    containers?: unknown[];
    finalizers?: string[];
  } = {},
): Record<string, any> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.finalizers ? { finalizers: opts.finalizers } : {}),
    },
    spec: {
      containers: opts.containers ?? [{ name: "main", image: "nginx:1.27" }],
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
      ...(opts.nodeSelector ? { nodeSelector: opts.nodeSelector } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
    },
  };
}

export function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** MicroTime as Leases carry it. */
export function microTime(d = new Date()): string {
  return d.toISOString().replace(/Z$/, "000Z");
}

export function readyCondition(status: "True" | "False" | "Unknown" = "True", at = new Date()) {
  return {
    type: "Ready",
    status,
    reason: status === "True" ? "KubeletReady" : "KubeletNotReady",
    message: status === "True" ? "kubelet is posting ready status" : "not ready",
    lastHeartbeatTime: rfc3339(at),
    lastTransitionTime: rfc3339(at),
  };
}

export function nodeBody(
  name: string,
  opts: {
    ready?: boolean;
    labels?: Record<string, string>;
    taints?: unknown[];
    maxPods?: number;
    podCIDR?: string;
  } = {},
): Record<string, any> {
  const status: Record<string, any> = {};
  if (opts.ready) status.conditions = [readyCondition("True")];
  if (opts.maxPods !== undefined) {
    status.capacity = { pods: String(opts.maxPods) };
    status.allocatable = { pods: String(opts.maxPods) };
  }
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      ...(opts.taints ? { taints: opts.taints } : {}),
      ...(opts.podCIDR ? { podCIDR: opts.podCIDR } : {}),
    },
    status,
  };
}

export function leaseBody(
  name: string,
  renew = new Date(),
  namespace = "kube-node-lease",
): Record<string, any> {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(renew) },
  };
}

/** Expects a status code, printing the body on mismatch so failures explain themselves. */
export function expectStatus(res: TestResponse, code: number): TestResponse {
  if (res.status !== code) {
    throw new Error(`expected HTTP ${code}, got ${res.status}: ${res.text.slice(0, 2000)}`);
  }
  return res;
}

/** Asserts a metav1.Status failure with the given code and reason. */
export function expectFailure(res: TestResponse, code: number, reason: string): any {
  expectStatus(res, code);
  expect(res.json).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason });
  expect(typeof res.json.message).toBe("string");
  return res.json;
}

export async function create(c: TestCluster, path: string, body: unknown): Promise<any> {
  return expectStatus(await c.request("POST", path, { body }), 201).json;
}

export async function get(c: TestCluster, path: string): Promise<any> {
  return expectStatus(await c.request("GET", path), 200).json;
}

export async function mergePatch(c: TestCluster, path: string, patch: unknown): Promise<any> {
  return expectStatus(await c.request("PATCH", path, { body: patch }), 200).json;
}

export async function createNamespace(c: TestCluster, name: string): Promise<any> {
  return create(c, "/api/v1/namespaces", { metadata: { name } });
}

/** The store's global revision as a list reports it. */
export async function revision(c: TestCluster): Promise<number> {
  return Number((await get(c, "/api/v1/namespaces")).metadata.resourceVersion);
}

export function names(list: { items: { metadata: { name: string } }[] }): string[] {
  return list.items.map((i) => i.metadata.name).sort();
}

/** Resolves once GET answers 404. */
export async function gone(c: TestCluster, path: string, timeoutMs = 10_000): Promise<void> {
  await eventually(async () => (await c.request("GET", path)).status === 404, timeoutMs);
}

/** A node agent's heartbeat: renews the node's Lease until stopped. */
export function heartbeat(c: TestCluster, node: string, everyMs = 250): { stop(): void } {
  let stopped = false;
  const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node}`;
  const beat = async () => {
    if (stopped) return;
    await c.request("PATCH", path, { body: { spec: { renewTime: microTime() } } }).catch(() => {});
  };
  const timer = setInterval(() => void beat(), everyMs);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** A Ready node with a fresh lease, as an agent would register it. */
export async function registerNode(
  c: TestCluster,
  name: string,
  opts: Parameters<typeof nodeBody>[1] = {},
): Promise<any> {
  const node = await create(c, "/api/v1/nodes", nodeBody(name, { ready: true, ...opts }));
  await create(c, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", leaseBody(name));
  return node;
}

/** Events about one object, optionally of one reason. */
export async function eventsFor(
  c: TestCluster,
  namespace: string,
  name: string,
  reason?: string,
): Promise<any[]> {
  const sel = [`involvedObject.name=${name}`, ...(reason ? [`reason=${reason}`] : [])].join(",");
  const list = await get(
    c,
    `/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(sel)}`,
  );
  return list.items;
}
