// Routes from the control plane's own network namespace to every node's podCIDR via the node's
// InternalIP (host-gw style, whatever overlay the nodes use). On a real cluster the API server
// runs on a node of the pod network; a local kemu cluster's control plane sits on the underlay
// beside the nodes, and these routes put it on the pod network too, so pods can talk to the API
// through the `kubernetes` Service (cluster DNS does) and the API can reach pods. Only routes
// inside the cluster CIDR are ever written or removed. Enabled by `kemu api --route-pod-cidrs`.

import { ipBatch, runJson } from "../../agent/exec.ts";
import { cidrContains, parseCidr } from "../../emulator/cidr.ts";
import type { NodeObject } from "../../emulator/types.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";
import { Informer } from "./informer.ts";

const RESYNC_MS = 10_000;

export interface PodRoute {
  dst: string;
  via: string;
}

/** One route per node with a podCIDR and an InternalIP, sorted by destination. */
export function desiredPodRoutes(nodes: readonly NodeObject[]): PodRoute[] {
  const routes: PodRoute[] = [];
  for (const n of nodes) {
    const via = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    if (!n.spec?.podCIDR || !via || n.metadata.deletionTimestamp) continue;
    routes.push({ dst: n.spec.podCIDR, via });
  }
  return routes.sort((a, b) => a.dst.localeCompare(b.dst));
}

/** `ip -batch` lines: replace what is missing or different, delete ours that no node wants. */
export function podRouteCommands(
  desired: readonly PodRoute[],
  actual: readonly PodRoute[],
  clusterCidr: string,
): string[] {
  const cluster = parseCidr(clusterCidr);
  const want = new Map(desired.map((r) => [r.dst, r.via]));
  const lines: string[] = [];
  for (const r of actual) {
    let inside = false;
    try {
      inside = cidrContains(cluster, r.dst);
    } catch {}
    if (inside && !want.has(r.dst)) lines.push(`route del ${r.dst} via ${r.via}`);
  }
  const have = new Map(actual.map((r) => [r.dst, r.via]));
  for (const r of desired) if (have.get(r.dst) !== r.via) lines.push(`route replace ${r.dst} via ${r.via}`);
  return lines;
}

export class PodRoutesController {
  private readonly nodes: Informer<NodeObject>;
  private readonly clusterCidr: string;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private again = false;

  constructor(resources: Resources, registry: Registry, opts: { clusterCidr: string }) {
    this.clusterCidr = opts.clusterCidr;
    this.nodes = new Informer<NodeObject>(resources, registry.find("", "v1", "nodes")!).on(() => this.sync());
  }

  async start(): Promise<void> {
    await this.nodes.start();
    this.sync();
    this.timer = setInterval(() => this.sync(), RESYNC_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.nodes.stop();
  }

  private sync(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    void this.apply()
      .catch((e) => console.error(`kemu api: pod routes: ${(e as Error).message}`))
      .finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.sync();
        }
      });
  }

  private async apply(): Promise<void> {
    const actual = (await runJson<{ dst: string; gateway?: string }[]>(["ip", "-j", "route", "show"]))
      .filter((r) => r.gateway)
      .map((r) => ({ dst: r.dst, via: r.gateway! }));
    await ipBatch(podRouteCommands(desiredPodRoutes(this.nodes.list()), actual, this.clusterCidr));
  }
}
