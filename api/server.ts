// The control-plane process: store + resource layer + HTTP/WebSocket + controllers, started and
// stopped as one unit. `kemu api` runs this in the foreground; tests start it in-process.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { nthAddress, parseCidr } from "../emulator/cidr.ts";
import { createBuiltinKinds } from "../emulator/kinds/index.ts";
import { createApp } from "./app.ts";
import { ClusterDnsController } from "./controllers/cluster-dns.ts";
import { DeploymentController } from "./controllers/deployment.ts";
import { EndpointSliceMirroringController } from "./controllers/endpoint-slice-mirroring.ts";
import { EndpointSliceController } from "./controllers/endpoint-slices.ts";
import { EndpointsController } from "./controllers/endpoints.ts";
import { EventRecorder } from "./controllers/event-recorder.ts";
import { startEventTtl } from "./controllers/event-ttl.ts";
import { GarbageCollector } from "./controllers/garbage-collector.ts";
import { advertiseAddress, KubernetesServiceController } from "./controllers/kubernetes-service.ts";
import { LoadBalancerController } from "./controllers/load-balancer.ts";
import { NamespaceController } from "./controllers/namespace.ts";
import { NodeIpamController } from "./controllers/node-ipam.ts";
import { NodeLifecycleController } from "./controllers/node-lifecycle.ts";
import { PodGcController } from "./controllers/pod-gc.ts";
import { PodRoutesController } from "./controllers/pod-routes.ts";
import { ReplicaSetController } from "./controllers/replica-set.ts";
import { SchedulerController } from "./controllers/scheduler.ts";
import { loadOrCreateToken, publishCredentials, writeKubeconfig } from "./credentials.ts";
import { ApiError } from "./errors.ts";
import { finalizeSubresource } from "./namespace-subresources.ts";
import { NodeProxy } from "./node-proxy.ts";
import { mountNodeRoutes, type NodeProvider } from "./node-routes.ts";
import { bindingSubresource, logSubresource } from "./pod-subresources.ts";
import { Registry } from "./registry.ts";
import { Resources } from "./resources.ts";
import { scaleSubresource } from "./scale-subresource.ts";
import { ServiceAllocation } from "./service-admission.ts";
import { SqliteStore } from "./store/sqlite-store.ts";
import { servingCert, servingNames } from "./tls.ts";
import { EventsSocket } from "./ws-events.ts";

export interface ApiServerOptions {
  dataDir: string;
  /** 6443 by default; 0 picks a free port. */
  port?: number;
  host?: string;
  /** Cluster pod CIDR split into per-node podCIDRs (default 10.244.0.0/16). */
  clusterCidr?: string;
  /** Prefix length of each node's podCIDR (default 24). */
  nodeCidrMaskSize?: number;
  /** A node whose lease is older than this turns NotReady (default 40 s). */
  nodeMonitorGracePeriodMs?: number;
  /** How long pods tolerate an unreachable/not-ready node before eviction (default 300 s). */
  podEvictionTimeoutSeconds?: number;
  /** Events older than this are deleted (default 1 h). */
  eventTtlMs?: number;
  /** Run controllers (scheduler, IPAM, lifecycle, namespace, pod GC); default true. */
  controllers?: boolean;
  /**
   * Also serve on this Unix socket path. Unix sockets are not bound to a network namespace, so a
   * forwarder in another namespace (the host's loopback, in local mode) can reach the API.
   */
  unixSocket?: string;
  /** Extra names/addresses for the serving certificate (e.g. an underlay address). */
  tlsNames?: string[];
  /** Used in messages and the kubeconfig's names. */
  clusterName?: string;
  /** Changes kept in the store's log for watch resumption (default 20000); older ones give 410. */
  retainChanges?: number;
  /** ClusterIPs come from here (default 10.96.0.0/12, as --service-cluster-ip-range). */
  serviceCidr?: string;
  /** NodePorts come from here (default 30000-32767, as --service-node-port-range). */
  nodePortRange?: string;
  /** LoadBalancer addresses: a CIDR or an "A-B" range; none leaves LoadBalancer Services pending. */
  loadBalancerPool?: string;
  /** The API server's address in the `kubernetes` Endpoints (default: `host` when routable). */
  advertiseAddress?: string;
  /**
   * Route every node's podCIDR via its InternalIP from this process's network namespace (local
   * clusters, whose control plane sits beside the nodes on the underlay).
   */
  routePodCidrs?: boolean;
  /** Deploy the cluster DNS add-on (kube-dns Service + coredns Deployment running kemu/dns). */
  clusterDns?: { zone?: string; ip?: string; upstreams?: string[]; replicas?: number };
  /** The server URL written into kubeconfigs (default: the listening address). */
  kubeconfigServer?: string;
  /** Also write token, ca.crt and kubeconfig here, for nodes and the host (Docker mode). */
  publishDir?: string;
  /** Created once the API serves and the controllers run; removed on close (a health check). */
  readyFile?: string;
  /** Node machines behind /kemu/v1/nodes (Docker containers); absent, those calls answer 503. */
  nodeProvider?: NodeProvider;
  /** Node machines to have once started (Docker mode's KEMU_NODES): the provider adds or removes. */
  nodeCount?: number;
  /** How often cluster IP and node port allocations are checked against the store (default 60 s). */
  serviceRepairIntervalMs?: number;
}

export interface ApiServer {
  url: string;
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  token: string;
  kubeconfigPath: string;
  resources: Resources;
  registry: Registry;
  recorder: EventRecorder;
  /** The Service cluster IP / node port allocators (and their repair pass). */
  serviceAllocation: ServiceAllocation;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 6443;
const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
async function ensureNamespaces(resources: Resources, registry: Registry): Promise<void> {
  const spec = registry.find("", "v1", "namespaces")!;
  for (const name of SYSTEM_NAMESPACES) {
    try {
      await resources.create(spec, undefined, { metadata: { name } });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 409)) throw e;
    }
  }
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.once("listening", () => resolve(server.address() as AddressInfo));
    server.listen(port, host);
  });
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const registry = new Registry(
    createBuiltinKinds({ defaultTolerationSeconds: opts.podEvictionTimeoutSeconds }),
  );
  const store = SqliteStore.open(join(opts.dataDir, "state.db"), { retainChanges: opts.retainChanges });
  const resources = new Resources(store, registry);
  const token = loadOrCreateToken(opts.dataDir);
  await ensureNamespaces(resources, registry);
  // Service IPs and ports are allocated inside the writes, so the allocators are rebuilt from the
  // store before the first request can arrive.
  const repairRecorder = new EventRecorder(resources, registry, "ipallocator-repair-controller");
  const serviceAllocation = new ServiceAllocation(resources, registry, repairRecorder, {
    serviceCidr: opts.serviceCidr,
    nodePortRange: opts.nodePortRange,
    repairIntervalMs: opts.serviceRepairIntervalMs,
  });
  await serviceAllocation.start();

  const nodeProxy = new NodeProxy(resources, registry, token);
  const host = opts.host ?? "127.0.0.1";
  let serverAddress = `${host}:${opts.port ?? DEFAULT_PORT}`;
  const app = createApp({
    registry,
    resources,
    token,
    get serverAddress() {
      return serverAddress;
    },
    subresources: [
      bindingSubresource,
      logSubresource((pod, query) => nodeProxy.logs(pod, query)),
      finalizeSubresource,
      scaleSubresource("apps", "deployments"),
      scaleSubresource("apps", "replicasets"),
    ],
    routes: (app) =>
      mountNodeRoutes(
        app,
        opts.nodeProvider,
        "node machines are managed only when the control plane has the Docker socket (kemu api --docker-socket PATH); in local mode use kemu node add|remove|stop|start",
        { removed: (name) => deleteNode(resources, registry, name) },
      ),
  });
  const events = new EventsSocket(resources, registry, token);
  // In-cluster clients reach us as the `kubernetes` Service.
  const inCluster = [
    serviceAllocation.kubernetesServiceIP,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    `kubernetes.default.svc.${opts.clusterDns?.zone ?? "cluster.local"}`,
  ];
  const tls = await servingCert(opts.dataDir, servingNames(host, [...(opts.tlsNames ?? []), ...inCluster]));
  const server = createAdaptorServer({
    fetch: app.fetch,
    createServer,
    serverOptions: { key: tls.keyPem, cert: tls.certPem },
  }) as unknown as Server;
  server.keepAliveTimeout = 65_000;
  server.on("upgrade", (req, socket, head) => {
    if (!events.handleUpgrade(req, socket, head) && !nodeProxy.handleUpgrade(req, socket, head))
      socket.destroy();
  });
  const address = await listen(server, opts.port ?? DEFAULT_PORT, host);
  let unixServer: Server | undefined;
  if (opts.unixSocket) {
    rmSync(opts.unixSocket, { force: true });
    unixServer = createAdaptorServer({
      fetch: app.fetch,
      createServer,
      serverOptions: { key: tls.keyPem, cert: tls.certPem },
    }) as unknown as Server;
    unixServer.on("upgrade", (req, socket, head) => {
      if (!events.handleUpgrade(req, socket, head) && !nodeProxy.handleUpgrade(req, socket, head))
        socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      unixServer!.once("error", reject);
      unixServer!.listen(opts.unixSocket, () => resolve());
    });
  }
  serverAddress = `${host}:${address.port}`;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const url = `https://${urlHost === "0.0.0.0" ? "127.0.0.1" : urlHost}:${address.port}`;
  const kubeconfigUrl = opts.kubeconfigServer ?? url;
  const kubeconfigPath = writeKubeconfig(
    opts.dataDir,
    kubeconfigUrl,
    token,
    tls.caPem,
    opts.clusterName ?? "kemu",
  );
  if (opts.publishDir)
    publishCredentials(opts.publishDir, kubeconfigUrl, token, tls.caPem, opts.clusterName ?? "kemu");

  const recorder = new EventRecorder(resources, registry, "kemu-controller-manager");
  // Scheduling events name the scheduler as their source, as upstream's do.
  const schedulerRecorder = new EventRecorder(resources, registry, "default-scheduler");
  const lbRecorder = new EventRecorder(resources, registry, "service-lb-controller");
  const stops: (() => void)[] = [() => serviceAllocation.stop()];
  // kube-apiserver's own reconciler, so it runs with or without the controllers.
  const kubernetesService = new KubernetesServiceController(resources, registry, {
    serviceIP: serviceAllocation.kubernetesServiceIP,
    apiPort: address.port,
    advertiseAddress: advertiseAddress(host, opts.advertiseAddress),
  });
  await kubernetesService.start();
  stops.push(() => kubernetesService.stop());
  if (opts.controllers !== false) {
    const controllers = [
      new SchedulerController(resources, registry, schedulerRecorder),
      new NodeIpamController(resources, registry, recorder, {
        clusterCidr: opts.clusterCidr,
        nodeCidrMaskSize: opts.nodeCidrMaskSize,
      }),
      new NodeLifecycleController(resources, registry, recorder, {
        gracePeriodMs: opts.nodeMonitorGracePeriodMs,
      }),
      new NamespaceController(resources, registry, recorder),
      new PodGcController(resources, registry, recorder),
      new GarbageCollector(resources, registry),
      new ReplicaSetController(resources, registry, recorder),
      new DeploymentController(resources, registry, recorder),
      new EndpointsController(resources, registry),
      new EndpointSliceController(resources, registry),
      new EndpointSliceMirroringController(resources, registry),
      new LoadBalancerController(resources, registry, lbRecorder, { pool: opts.loadBalancerPool }),
      ...(opts.routePodCidrs
        ? [new PodRoutesController(resources, registry, { clusterCidr: opts.clusterCidr ?? "10.244.0.0/16" })]
        : []),
      ...(opts.clusterDns
        ? [
            new ClusterDnsController(resources, registry, {
              ip: opts.clusterDns.ip ?? nthAddress(parseCidr(opts.serviceCidr ?? "10.96.0.0/12"), 10),
              zone: opts.clusterDns.zone ?? "cluster.local",
              upstreams: opts.clusterDns.upstreams,
              replicas: opts.clusterDns.replicas,
              apiUrl: `https://${serviceAllocation.kubernetesServiceIP}:443`,
            }),
          ]
        : []),
    ];
    for (const c of controllers) {
      await c.start();
      stops.push(() => c.stop());
    }
    stops.push(startEventTtl(resources, registry, opts.eventTtlMs ?? 3_600_000));
  }
  const provider = opts.nodeProvider;
  if (opts.nodeCount !== undefined && provider?.reconcileCount) {
    // In the background: Compose starts the node containers only once we report healthy.
    void provider
      .reconcileCount(opts.nodeCount, (name) => deleteNode(resources, registry, name))
      .then(({ added, removed }) => {
        if (added.length)
          console.log(`kemu api: added node containers ${added.join(", ")} (${opts.nodeCount} wanted)`);
        if (removed.length)
          console.log(`kemu api: removed node containers ${removed.join(", ")} (${opts.nodeCount} wanted)`);
      })
      .catch((e) =>
        console.error(`kemu api: bringing the nodes to ${opts.nodeCount}: ${(e as Error).message}`),
      );
  }
  if (opts.readyFile) {
    mkdirSync(dirname(opts.readyFile), { recursive: true });
    writeFileSync(opts.readyFile, `${url}\n`);
    stops.push(() => rmSync(opts.readyFile!, { force: true }));
  }

  return {
    url,
    caPem: tls.caPem,
    token,
    kubeconfigPath,
    resources,
    registry,
    recorder,
    serviceAllocation,
    async close() {
      for (const stop of stops) stop();
      await opts.nodeProvider?.close?.();
      await recorder.flush();
      await schedulerRecorder.flush();
      await repairRecorder.flush();
      await lbRecorder.flush();
      events.close();
      nodeProxy.close();
      for (const srv of [server, unixServer]) {
        if (!srv) continue;
        await new Promise<void>((resolve) => {
          srv.close(() => resolve());
          srv.closeAllConnections();
        });
      }
      store.close();
    },
  };
}

/** A removed machine's Node object goes too (as a cloud node controller deletes it), so its pods are collected. */
async function deleteNode(resources: Resources, registry: Registry, name: string): Promise<void> {
  try {
    await resources.delete(registry.find("", "v1", "nodes")!, undefined, name);
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 404)) throw e;
  }
}
