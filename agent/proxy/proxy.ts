// The agent's kube-proxy: watches Services and EndpointSlices, builds the proxy model and has the
// chosen mode (iptables or nftables) program it in one transaction per sync. One sync key, as in
// kindnet: any change marks the state dirty; a sync in flight is followed by exactly one more.
// Syncs also run periodically, so a missed event or a rule someone deleted is repaired. The mode
// not in use is cleaned at start, so switching modes never leaves stale rules behind.

import type { ApiClient } from "../api-client.ts";
import { Informer } from "../api-client.ts";
import { run } from "../exec.ts";
import { ensureSysctl } from "../sysctl.ts";
import { IptablesProxier } from "./iptables/proxier.ts";
import { announcedAddresses, applyAnnouncements, type NodeInfo } from "./lb-announce.ts";
import {
  buildProxyModel,
  type EndpointSliceObject,
  type ProxyBackend,
  type ProxyState,
  type ServiceObject,
} from "./model.ts";
import { NftablesProxier } from "./nftables/proxier.ts";

export const PROXY_MODES = ["iptables", "nftables"] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

const RESYNC_MS = 30_000;

export interface ProxyOptions {
  client: ApiClient;
  mode: ProxyMode;
  nodeName: string;
  nodeIPs: string[];
  clusterCidr: string;
  /** The service network, routed over the underlay device (see prepareNode). */
  serviceCidr: string;
  underlayDevice: string;
  /** Run every command in this network namespace (tests); the agent already runs in its node's. */
  netns?: string;
  /** The cluster's nodes, for electing which one announces each LoadBalancer address. */
  nodes?: () => NodeInfo[];
  log?: (line: string) => void;
}

export function createBackend(mode: ProxyMode, netns?: string): ProxyBackend {
  return mode === "iptables" ? new IptablesProxier({ netns }) : new NftablesProxier({ netns });
}

/**
 * Kernel settings kube-proxy relies on, in the node's network namespace; and, with `route`, a
 * route for the service network over the underlay device. Real nodes reach service IPs through
 * their default route; kemu nodes have none (nothing may leave the machine), and without any
 * route a packet to a service with no endpoints would die in routing as "no route to host"
 * before the REJECT rule could refuse it, as a real node does.
 */
export async function prepareNode(
  netns?: string,
  route?: { serviceCidr: string; device: string },
): Promise<void> {
  const settings: [string, string][] = [
    ["net.ipv4.ip_forward", "1"],
    // Pod-to-service traffic between pods on one bridge must pass through netfilter to be DNATed.
    ["net.bridge.bridge-nf-call-iptables", "1"],
    // NodePorts on 127.0.0.1, as upstream's iptables mode allows.
    ["net.ipv4.conf.all.route_localnet", "1"],
  ];
  for (const [key, value] of settings) {
    if (netns) {
      await run(["sysctl", "-q", "-w", `${key}=${value}`], { netns });
      continue;
    }
    try {
      ensureSysctl(key, value);
    } catch (e) {
      throw new Error(`kube-proxy: ${(e as Error).message}`);
    }
  }
  if (route)
    await run(["ip", "route", "replace", route.serviceCidr, "dev", route.device], netns ? { netns } : {});
}

export class KubeProxy {
  private readonly o: ProxyOptions;
  private readonly backend: ProxyBackend;
  private readonly services: Informer<ServiceObject & { metadata: { name?: string } }>;
  private readonly slices: Informer<EndpointSliceObject & { metadata: { name?: string } }>;
  private running = false;
  private dirty = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Resolves after the next completed sync (tests and benchmarks wait on it). */
  private waiters: (() => void)[] = [];
  lastSync?: { at: number; ms: number; applied: boolean; bytes: number; services: number };

  constructor(opts: ProxyOptions) {
    this.o = opts;
    this.backend = createBackend(opts.mode, opts.netns);
    const changed = () => this.requestSync();
    this.services = new Informer(opts.client, "/api/v1/services", "", changed);
    this.slices = new Informer(opts.client, "/apis/discovery.k8s.io/v1/endpointslices", "", changed);
  }

  get mode(): ProxyMode {
    return this.o.mode;
  }

  async start(): Promise<void> {
    await prepareNode(this.o.netns, { serviceCidr: this.o.serviceCidr, device: this.o.underlayDevice });
    // Whatever the other mode left (an earlier run with another --proxy-mode) goes first.
    const other = createBackend(this.o.mode === "iptables" ? "nftables" : "iptables", this.o.netns);
    await other.cleanup().catch((e) => this.log(`cleaning ${other.mode} rules: ${(e as Error).message}`));
    this.services.start();
    this.slices.start();
    await Promise.all([this.services.hasSynced(), this.slices.hasSynced()]);
    await this.syncNow();
    this.timer = setInterval(() => this.requestSync(), RESYNC_MS);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.services.stop();
    this.slices.stop();
  }

  /** Removes every rule and announced address this proxy made. */
  async cleanup(): Promise<void> {
    await this.backend.cleanup();
    await applyAnnouncements([], this.o.netns);
  }

  state(): ProxyState {
    return {
      nodeName: this.o.nodeName,
      nodeIPs: this.o.nodeIPs,
      clusterCidr: this.o.clusterCidr,
      services: buildProxyModel(
        [...this.services.cache.values()],
        [...this.slices.cache.values()],
        this.o.nodeName,
      ),
    };
  }

  /** Marks the state dirty; syncs at once unless one is in flight, then once more after it. */
  requestSync(): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    void this.syncNow();
  }

  /** Resolves once a sync that started after this call has completed. */
  synced(): Promise<void> {
    return new Promise((r) => {
      this.waiters.push(r);
      this.requestSync();
    });
  }

  private async syncNow(): Promise<void> {
    this.running = true;
    const waiters = this.waiters.splice(0);
    try {
      const t0 = performance.now();
      const state = this.state();
      const r = await this.backend.sync(state);
      if (this.o.nodes) {
        const services = [...this.services.cache.values()];
        const slices = [...this.slices.cache.values()];
        await applyAnnouncements(
          announcedAddresses(services, slices, this.o.nodes(), this.o.nodeName),
          this.o.netns,
        );
      }
      this.lastSync = { at: Date.now(), ms: performance.now() - t0, ...r, services: state.services.length };
    } catch (e) {
      // Rejected or unknown outcome: the whole state is rendered again shortly, never a part of it.
      this.log(`sync failed, retrying in 1s: ${(e as Error).message}`);
      setTimeout(() => this.requestSync(), 1000);
    } finally {
      this.running = false;
      for (const w of waiters) w();
    }
    if (this.dirty && !this.stopped) {
      this.dirty = false;
      setTimeout(() => this.requestSync(), 0);
    }
  }

  private log(line: string): void {
    (this.o.log ?? ((l: string) => console.error(l)))(`kemu agent: kube-proxy (${this.o.mode}): ${line}`);
  }
}
