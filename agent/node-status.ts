// The node's own API objects: registering the Node (as kubelet's registerWithAPIServer), posting
// its status (Ready, addresses, capacity, daemon endpoint), and renewing its Lease in
// kube-node-lease every quarter of the lease duration (10 s by default, as kubelet), which is what
// the control plane's node lifecycle watches.

import { release } from "node:os";
import { rfc3339, rfc3339Micro } from "../emulator/duration.ts";
import type { Condition, Lease, NodeObject } from "../emulator/types.ts";
import { type ApiClient, ApiClientError } from "./api-client.ts";

export const KUBELET_VERSION = "v1.32.0-kemu";
/** kubelet's nodeLeaseDurationSeconds default; the lease is renewed every quarter of it. */
export const LEASE_DURATION_SECONDS = 40;
const STATUS_MS = 60_000;

export interface NodeIdentity {
  name: string;
  internalIP: string;
  /** Port of the agent's kubelet-style API (logs, exec). */
  kubeletPort: number;
  maxPods: number;
  labels?: Record<string, string>;
  /** nodeLeaseDurationSeconds (default 40); renewals come every quarter of it. */
  leaseDurationSeconds?: number;
}

function conditions(now: string, ready: boolean): Condition[] {
  const c = (type: string, status: "True" | "False", reason: string, message: string): Condition => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  return [
    c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ready
      ? c("Ready", "True", "KubeletReady", "kubelet is posting ready status")
      : c("Ready", "False", "KubeletNotReady", "container runtime network not ready"),
  ];
}

/** The status this agent reports; pure apart from the kernel release. */
export function nodeStatus(id: NodeIdentity, now: Date, ready: boolean): NodeObject["status"] {
  const capacity = { pods: String(id.maxPods), cpu: "2", memory: "4Gi", "ephemeral-storage": "20Gi" };
  return {
    capacity,
    allocatable: capacity,
    conditions: conditions(rfc3339(now), ready),
    addresses: [
      { type: "InternalIP", address: id.internalIP },
      { type: "Hostname", address: id.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: id.kubeletPort } },
    nodeInfo: {
      machineID: "",
      systemUUID: "",
      bootID: "",
      kernelVersion: release(),
      osImage: "kemu (Linux network namespaces)",
      containerRuntimeVersion: "kemu://0.1.0",
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: "linux",
      architecture: process.arch === "x64" ? "amd64" : process.arch,
    },
  };
}

export class NodeStatusReporter {
  private readonly client: ApiClient;
  private readonly id: NodeIdentity;
  private timers: NodeJS.Timeout[] = [];
  private ready = false;

  constructor(client: ApiClient, id: NodeIdentity) {
    this.client = client;
    this.id = id;
  }

  private leaseSeconds(): number {
    return this.id.leaseDurationSeconds ?? LEASE_DURATION_SECONDS;
  }

  /** Creates the Node if missing (keeping an existing one and its podCIDR), then posts status. */
  async register(): Promise<NodeObject> {
    const path = `/api/v1/nodes/${this.id.name}`;
    try {
      await this.client.request("POST", "/api/v1/nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: this.id.name,
          labels: {
            "kubernetes.io/hostname": this.id.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": process.arch === "x64" ? "amd64" : process.arch,
            ...this.id.labels,
          },
        },
        spec: {},
      });
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 409)) throw e;
    }
    await this.postStatus();
    await this.renewLease();
    return this.client.get(path);
  }

  setReady(ready: boolean): Promise<void> {
    const changed = ready !== this.ready;
    this.ready = ready;
    return changed ? this.postStatus() : Promise.resolve();
  }

  start(): void {
    this.timers.push(setInterval(() => void this.renewLease().catch(report), this.leaseSeconds() * 250));
    this.timers.push(setInterval(() => void this.postStatus().catch(report), STATUS_MS));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  async annotate(annotations: Record<string, string>): Promise<void> {
    await this.client.request(
      "PATCH",
      `/api/v1/nodes/${this.id.name}`,
      { metadata: { annotations } },
      "application/merge-patch+json",
    );
  }

  private async postStatus(): Promise<void> {
    await this.client.request(
      "PATCH",
      `/api/v1/nodes/${this.id.name}/status`,
      { status: nodeStatus(this.id, new Date(), this.ready) },
      "application/strategic-merge-patch+json",
    );
  }

  private async renewLease(): Promise<void> {
    const ns = "kube-node-lease";
    const now = rfc3339Micro(new Date());
    const path = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${this.id.name}`;
    try {
      const lease = await this.client.get<Lease>(path);
      await this.client.request("PUT", path, { ...lease, spec: { ...lease.spec, renewTime: now } });
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e;
      await this.client.request("POST", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.id.name, namespace: ns },
        spec: {
          holderIdentity: this.id.name,
          leaseDurationSeconds: this.leaseSeconds(),
          acquireTime: now,
          renewTime: now,
        },
      });
    }
  }
}

function report(e: Error): void {
  console.error(`kemu agent: node status: ${e.message}`);
}
