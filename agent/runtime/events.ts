// Events the node reports about its pods (Pulled, Created, Started, Killing, BackOff, Failed…),
// posted as core/v1 Events with source.component "kubelet", aggregated by reason and message as
// client-go's recorder does. Fire-and-forget: a lost event never blocks a pod.

import { rfc3339 } from "../../emulator/duration.ts";
import type { KubeObject } from "../../emulator/types.ts";
import type { ApiClient } from "../api-client.ts";

export interface EventSink {
  emit(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

export class ApiEvents implements EventSink {
  private readonly client: ApiClient;
  private readonly node: string;
  private readonly seen = new Map<string, { name: string; namespace: string; count: number }>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(client: ApiClient, node: string) {
    this.client = client;
    this.node = node;
  }

  emit(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    this.chain = this.chain.then(() => this.post(obj, type, reason, message)).catch(() => {});
  }

  private async post(obj: KubeObject, type: string, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? "default";
    const key = `${obj.metadata.uid}\u0000${reason}\u0000${message}`;
    const now = rfc3339(new Date());
    const known = this.seen.get(key);
    if (known) {
      known.count++;
      await this.client.request(
        "PATCH",
        `/api/v1/namespaces/${known.namespace}/events/${known.name}`,
        { count: known.count, lastTimestamp: now },
        "application/merge-patch+json",
      );
      return;
    }
    const name = `${obj.metadata.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.seen.size)).toString(16)}`;
    await this.client.request("POST", `/api/v1/namespaces/${namespace}/events`, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        kind: obj.kind ?? "Pod",
        apiVersion: obj.apiVersion ?? "v1",
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
        uid: obj.metadata.uid,
      },
      reason,
      message,
      type,
      source: { component: "kubelet", host: this.node },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: "kubelet",
      reportingInstance: this.node,
    });
    this.seen.set(key, { name, namespace, count: 1 });
    if (this.seen.size > 5000) this.seen.delete(this.seen.keys().next().value!);
  }
}
