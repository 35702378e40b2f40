// The `kubernetes` Service in `default`: the first address of the service CIDR, port https/443 to
// the API server's port, with Endpoints and an EndpointSlice (both named `kubernetes`) listing
// the API server's address, as kube-apiserver's own reconcilers keep them. The Endpoints carry
// endpointslice.kubernetes.io/skip-mirror so the mirroring controller leaves them alone. Created
// at start-up and repaired every 10 s (upstream's endpoint reconciler interval).

import { networkInterfaces } from "node:os";
import { stableStringify } from "../../emulator/endpoints.ts";
import type { KindSpec } from "../../emulator/kind.ts";
import type { EndpointSlice } from "../../emulator/kinds/endpoint-slice.ts";
import { SERVICE_NAME_LABEL, SKIP_MIRROR_LABEL } from "../../emulator/kinds/endpoint-slice.ts";
import type { Endpoints } from "../../emulator/kinds/endpoints.ts";
import { type Service, validateNonSpecialIP } from "../../emulator/kinds/service.ts";
import type { KubeObject } from "../../emulator/types.ts";
import { parseIP } from "../../emulator/validation.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";

const NAMESPACE = "default";
const NAME = "kubernetes";
const RECONCILE_MS = 10_000;

export interface KubernetesServiceOptions {
  /** The first address of the service CIDR. */
  serviceIP: string;
  /** The port the API server listens on (the Service's targetPort and the endpoint port). */
  apiPort: number;
  /** The address clients reach the API server at; undefined publishes no endpoint address. */
  advertiseAddress?: string;
  reconcileMs?: number;
}

/**
 * The address to publish for the API server: an explicit one, else the listen address when it is
 * a routable IP, else (listening on every address) the first non-internal interface address.
 * A loopback or host-name listener publishes none: Endpoints may not hold loopback addresses.
 */
export function advertiseAddress(host: string | undefined, explicit?: string): string | undefined {
  if (explicit) return explicit;
  const h = host ?? "127.0.0.1";
  const ip = parseIP(h);
  if (!ip) return undefined;
  if (ip.value === 0n) {
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.internal || a.family !== (ip.family === 4 ? "IPv4" : "IPv6")) continue;
        if (validateNonSpecialIP(a.address, "ip").length === 0) return a.address;
      }
    }
    return undefined;
  }
  return validateNonSpecialIP(h, "ip").length === 0 ? h : undefined;
}

export class KubernetesServiceController {
  private readonly resources: Resources;
  private readonly services: KindSpec;
  private readonly endpoints: KindSpec;
  private readonly slices: KindSpec;
  private readonly opts: KubernetesServiceOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(resources: Resources, registry: Registry, opts: KubernetesServiceOptions) {
    this.resources = resources;
    this.opts = opts;
    this.services = registry.find("", "v1", "services")!;
    this.endpoints = registry.find("", "v1", "endpoints")!;
    this.slices = registry.find("discovery.k8s.io", "v1", "endpointslices")!;
  }

  async start(): Promise<void> {
    await this.reconcile();
    this.timer = setInterval(
      () =>
        void this.reconcile().catch((e) => console.error("kemu kubernetes service:", (e as Error).message)),
      this.opts.reconcileMs ?? RECONCILE_MS,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass over the Service, its Endpoints and its EndpointSlice. */
  reconcile(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.reconcileService();
        await this.reconcileEndpoints();
        await this.reconcileSlice();
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private desiredPorts() {
    return [{ name: "https", protocol: "TCP", port: 443, targetPort: this.opts.apiPort }];
  }

  private async reconcileService(): Promise<void> {
    const current = (await this.resources.find(this.services, NAMESPACE, NAME)) as Service | undefined;
    if (current && current.spec?.clusterIP !== this.opts.serviceIP) {
      // The service CIDR changed since it was made: its address must move to the new range.
      await this.resources.delete(this.services, NAMESPACE, NAME).catch(ignore404);
    } else if (current) {
      const same =
        current.spec.type === "ClusterIP" &&
        stableStringify((current.spec.ports ?? []).map(({ nodePort: _n, ...p }) => p)) ===
          stableStringify(this.desiredPorts());
      if (same) return;
      await this.resources
        .mutate(this.services, NAMESPACE, NAME, (cur) => ({
          ...cur,
          spec: { ...cur.spec, type: "ClusterIP", ports: this.desiredPorts() },
        }))
        .catch(ignore404);
      return;
    }
    const svc: Service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: NAME,
        namespace: NAMESPACE,
        labels: { component: "apiserver", provider: "kubernetes" },
      },
      spec: {
        type: "ClusterIP",
        clusterIP: this.opts.serviceIP,
        clusterIPs: [this.opts.serviceIP],
        ports: this.desiredPorts(),
        sessionAffinity: "None",
        ipFamilyPolicy: "SingleStack",
      },
    };
    await this.resources.create(this.services, NAMESPACE, svc).catch(ignore409);
  }

  private address(): string | undefined {
    return this.opts.advertiseAddress;
  }

  private async reconcileEndpoints(): Promise<void> {
    const ip = this.address();
    const subsets = ip
      ? [{ addresses: [{ ip }], ports: [{ name: "https", port: this.opts.apiPort, protocol: "TCP" }] }]
      : undefined;
    const desired: Endpoints = {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: NAME, namespace: NAMESPACE, labels: { [SKIP_MIRROR_LABEL]: "true" } },
      ...(subsets ? { subsets } : {}),
    };
    await this.upsert(this.endpoints, desired, (cur) => [cur.subsets ?? [], cur.metadata.labels ?? {}]);
  }

  private async reconcileSlice(): Promise<void> {
    const ip = this.address();
    const desired: EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: NAME, namespace: NAMESPACE, labels: { [SERVICE_NAME_LABEL]: NAME } },
      addressType: ip?.includes(":") ? "IPv6" : "IPv4",
      endpoints: ip ? [{ addresses: [ip], conditions: { ready: true } }] : null,
      ports: ip ? [{ name: "https", port: this.opts.apiPort, protocol: "TCP" }] : [],
    };
    const current = await this.resources.find(this.slices, NAMESPACE, NAME);
    if (current && current.addressType !== desired.addressType) {
      await this.resources.delete(this.slices, NAMESPACE, NAME).catch(ignore404);
    }
    await this.upsert(this.slices, desired, (cur) => [
      cur.endpoints ?? [],
      cur.ports ?? [],
      cur.addressType,
      cur.metadata.labels ?? {},
    ]);
  }

  /** Creates `desired`, or replaces the stored one when the parts `owned` picks out differ. */
  private async upsert(
    spec: KindSpec,
    desired: KubeObject,
    owned: (o: KubeObject) => unknown,
  ): Promise<void> {
    const current = await this.resources.find(spec, NAMESPACE, NAME);
    if (!current) {
      await this.resources.create(spec, NAMESPACE, structuredClone(desired)).catch(ignore409);
      return;
    }
    if (stableStringify(owned(current)) === stableStringify(owned(desired))) return;
    await this.resources
      .mutate(spec, NAMESPACE, NAME, (cur) => {
        const next: KubeObject = {
          ...structuredClone(desired),
          metadata: { ...cur.metadata, labels: desired.metadata.labels },
        };
        if (!("subsets" in desired) && spec.resource === "endpoints") delete next.subsets;
        return next;
      })
      .catch(ignore404);
  }
}

function ignore404(e: unknown): void {
  if (!(e instanceof ApiError && e.code === 404)) throw e;
}

function ignore409(e: unknown): void {
  if (!(e instanceof ApiError && e.code === 409)) throw e;
}
