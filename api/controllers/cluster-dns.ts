// The cluster DNS add-on, as kubeadm installs CoreDNS: the `kube-dns` Service at the tenth address
// of the service network (UDP and TCP 53) and the `coredns` Deployment in kube-system, whose pods
// run kemu's DNS server (image kemu/dns) against the API through the `kubernetes` Service, the way
// in-cluster clients do. Created when missing (at start and every 10 s); edits made by users to
// the objects are left alone, as with any add-on manifest.

import type { KubeObject } from "../../emulator/types.ts";
import { ApiError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { Resources } from "../resources.ts";

const NAMESPACE = "kube-system";
const CHECK_MS = 10_000;
export const DNS_IMAGE = "kemu/dns:0.1.0";

export interface ClusterDnsOptions {
  /** The kube-dns Service's ClusterIP (the tenth address of the service network by default). */
  ip: string;
  zone: string;
  /** How DNS pods reach the API: https://<kubernetes Service IP>:443. */
  apiUrl: string;
  /** Resolvers for names outside the zone; none by default (nothing leaves the machine). */
  upstreams?: string[];
  replicas?: number;
}

export function clusterDnsObjects(o: ClusterDnsOptions): { service: KubeObject; deployment: KubeObject } {
  const labels = { "k8s-app": "kube-dns" };
  const service: KubeObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "kube-dns",
      namespace: NAMESPACE,
      labels: { ...labels, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS" },
    },
    spec: {
      selector: labels,
      clusterIP: o.ip,
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
      ],
    },
  };
  const args = [
    "--api",
    o.apiUrl,
    // The credentials every pod gets, as from an automounted service account token.
    "--token-file",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "--ca-file",
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    "--zone",
    o.zone,
    ...(o.upstreams ?? []).flatMap((u) => ["--upstream", u]),
  ];
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "coredns", namespace: NAMESPACE, labels },
    spec: {
      replicas: o.replicas ?? 2,
      selector: { matchLabels: labels },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: "25%" } },
      template: {
        metadata: { labels },
        spec: {
          // The DNS server must not resolve through itself.
          dnsPolicy: "Default",
          terminationGracePeriodSeconds: 5,
          tolerations: [
            { key: "CriticalAddonsOnly", operator: "Exists" },
            { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
          ],
          containers: [
            {
              name: "coredns",
              image: DNS_IMAGE,
              args,
              ports: [
                { name: "dns", containerPort: 53, protocol: "UDP" },
                { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
              ],
              livenessProbe: {
                httpGet: { path: "/health", port: 8080 },
                initialDelaySeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 5,
              },
              readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 2 },
            },
          ],
        },
      },
    },
  };
  return { service, deployment };
}

export class ClusterDnsController {
  private readonly resources: Resources;
  private readonly registry: Registry;
  private readonly o: ClusterDnsOptions;
  private timer?: NodeJS.Timeout;

  constructor(resources: Resources, registry: Registry, opts: ClusterDnsOptions) {
    this.resources = resources;
    this.registry = registry;
    this.o = opts;
  }

  async start(): Promise<void> {
    await this.ensure();
    this.timer = setInterval(
      () => void this.ensure().catch((e) => console.error(`kemu api: cluster DNS: ${e.message}`)),
      CHECK_MS,
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async ensure(): Promise<void> {
    const { service, deployment } = clusterDnsObjects(this.o);
    for (const [group, version, resource, obj] of [
      ["", "v1", "services", service],
      ["apps", "v1", "deployments", deployment],
    ] as const) {
      const spec = this.registry.find(group, version, resource)!;
      if (await this.resources.find(spec, NAMESPACE, obj.metadata.name!)) continue;
      try {
        await this.resources.create(spec, NAMESPACE, structuredClone(obj));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 409)) throw e;
      }
    }
  }
}
