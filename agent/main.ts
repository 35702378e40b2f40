// The node agent: wires the node's reconcilers together, kindnet-style. It registers the Node and
// keeps its Lease fresh, programs the overlay from the Node list, and runs the pods bound to this
// node through CNI and the container runtime. Each part is level-triggered and survives restarts:
// pods keep running while the agent is down and are adopted when it returns.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nthAddress, parseCidr } from "../emulator/cidr.ts";
import type { NodeObject, Pod } from "../emulator/types.ts";
import { ApiClient, Informer } from "./api-client.ts";
import { Cni } from "./cni/cni.ts";
import { podNetworkConflist } from "./cni/conflist.ts";
import { run, runJson, useExecHelper } from "./exec.ts";
import { ExecHelper } from "./exec-helper.ts";
import { KubeletServer } from "./kubelet-server.ts";
import { applyMasquerade } from "./masquerade.ts";
import { NodeStatusReporter } from "./node-status.ts";
import { VTEP_MAC_ANNOTATION } from "./overlay/desired.ts";
import { Overlay } from "./overlay/overlay.ts";
import { KubeProxy, type ProxyMode } from "./proxy/proxy.ts";
import { ApiEvents } from "./runtime/events.ts";
import { PodWorker } from "./runtime/pods.ts";
import { agentServingCert } from "./serving-cert.ts";

export interface AgentOptions {
  api: string;
  tokenFile: string;
  caFile: string;
  node: string;
  dataDir: string;
  overlay: "vxlan" | "host-gw";
  clusterCidr: string;
  clusterDNS: string;
  clusterDomain: string;
  kubeletPort: number;
  maxPods: number;
  /** Directory holding the built programs (agnhost, busybox applets, kemu-init). */
  imagesDir: string;
  /** kubelet's nodeLeaseDurationSeconds (default 40). */
  nodeLeaseDurationSeconds?: number;
  /** Pod traffic to these CIDRs is masqueraded to the node's address (agent/masquerade.ts). */
  masqueradeTo?: string[];
  /** Underlay interface whose address is the node's InternalIP. */
  underlayDevice: string;
  /** kube-proxy's mode for Service VIPs. */
  proxyMode: ProxyMode;
  /** The service network (kube-apiserver's --service-cluster-ip-range). */
  serviceCidr: string;
}

const OVERLAY_RESYNC_MS = 10_000;

/** The IPv4 address of the underlay device: the node's InternalIP. */
async function underlayAddress(dev: string): Promise<{ ip: string; mtu: number }> {
  const links = await runJson<{ mtu: number; addr_info: { family: string; local: string }[] }[]>([
    "ip",
    "-j",
    "addr",
    "show",
    "dev",
    dev,
  ]);
  const ip = links[0]?.addr_info.find((a) => a.family === "inet")?.local;
  if (!ip) throw new Error(`no IPv4 address on ${dev}; is the agent running inside its node's namespace?`);
  return { ip, mtu: links[0].mtu };
}

/** Name of the network namespace we run in, so pod namespaces can be named after it. */
async function ownNetnsName(): Promise<string | undefined> {
  const { stdout } = await run(["ip", "netns", "identify", String(process.pid)], { allowFail: true });
  return stdout.trim() || undefined;
}

async function waitForPodCidr(client: ApiClient, node: string): Promise<string> {
  for (;;) {
    const n = await client.get<NodeObject>(`/api/v1/nodes/${node}`);
    if (n.spec?.podCIDR) return n.spec.podCIDR;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function runAgent(o: AgentOptions): Promise<() => Promise<void>> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const helper = startExecHelper(join(o.imagesDir, "kemu-exec"));
  const token = readFileSync(o.tokenFile, "utf8").trim();
  const client = new ApiClient({ url: o.api, token, ca: readFileSync(o.caFile, "utf8") });
  const underlay = await underlayAddress(o.underlayDevice);
  const netnsPrefix = `${(await ownNetnsName()) ?? `kemu-${o.node}`}-p-`;

  // The node object and its heartbeat.
  const status = new NodeStatusReporter(client, {
    name: o.node,
    internalIP: underlay.ip,
    kubeletPort: o.kubeletPort,
    maxPods: o.maxPods,
    leaseDurationSeconds: o.nodeLeaseDurationSeconds,
  });
  await status.register();
  status.start();
  const podCIDR = await waitForPodCidr(client, o.node);

  // Overlay between nodes.
  const overlay = new Overlay({
    mode: o.overlay,
    clusterCidr: o.clusterCidr,
    underlayDevice: o.underlayDevice,
  });
  const vtepMAC = await overlay.ensureDevice({ underlayIP: underlay.ip, podCIDR, mtu: underlay.mtu });
  if (vtepMAC) await status.annotate({ [VTEP_MAC_ANNOTATION]: JSON.stringify({ VtepMAC: vtepMAC }) });
  const self = { name: o.node, underlayIP: underlay.ip, podCIDR, vtepMAC };
  let overlayBusy = false;
  let proxy: KubeProxy | undefined;
  const nodes = new Informer<NodeObject>(client, "/api/v1/nodes", "", () => {
    void syncOverlay();
    proxy?.requestSync();
  });
  async function syncOverlay(): Promise<void> {
    if (overlayBusy) return;
    overlayBusy = true;
    try {
      await overlay.sync(self, [...nodes.cache.values()]);
    } catch (e) {
      console.error(`kemu agent: overlay: ${(e as Error).message}`);
    } finally {
      overlayBusy = false;
    }
  }
  nodes.start();
  const overlayTimer = setInterval(() => void syncOverlay(), OVERLAY_RESYNC_MS);

  // Pod network (CNI) and the container runtime.
  const cniDir = join(o.dataDir, "cni");
  const cni = new Cni({
    confDir: join(cniDir, "net.d"),
    cacheDir: join(cniDir, "cache"),
    binDir: "/usr/lib/cni",
    conflist: podNetworkConflist({
      name: "kemu",
      bridge: "cni0",
      podCIDR,
      mtu: o.overlay === "vxlan" ? underlay.mtu - 50 : underlay.mtu,
      dataDir: join(cniDir, "ipam"),
      hairpin: true,
    }),
  });
  await cni.writeConfig();
  const pods = new PodWorker({
    client,
    node: o.node,
    hostIP: underlay.ip,
    dataDir: o.dataDir,
    netnsPrefix,
    cni,
    events: new ApiEvents(client, o.node),
    images: {
      agnhost: join(o.imagesDir, "agnhost"),
      busyboxBin: join(o.imagesDir, "busybox", "bin"),
      nginx: "/usr/sbin/nginx",
      kemu: fileURLToPath(new URL("../bin/kemu", import.meta.url)),
    },
    init: join(o.imagesDir, "kemu-init"),
    serviceAccount: {
      token,
      ca: readFileSync(o.caFile, "utf8"),
      apiHost: nthAddress(parseCidr(o.serviceCidr), 1),
      apiPort: 443,
    },
    dns: {
      clusterDNS: o.clusterDNS,
      clusterDomain: o.clusterDomain,
      // The node's resolver settings, for dnsPolicy Default (nodes share the host's /etc).
      nodeResolvConf: existsSync("/etc/resolv.conf") ? readFileSync("/etc/resolv.conf", "utf8") : "",
    },
  });
  pods.loadRecords();

  const tls = await agentServingCert(join(o.dataDir, "tls"), [underlay.ip, o.node]);
  const kubelet = new KubeletServer({
    host: underlay.ip,
    port: o.kubeletPort,
    token,
    tls: { certPem: tls.certPem, keyPem: tls.keyPem },
    pods,
  });
  await kubelet.start();

  const podInformer = new Informer<Pod>(
    client,
    "/api/v1/pods",
    `fieldSelector=${encodeURIComponent(`spec.nodeName=${o.node}`)}`,
    (key, pod) => pods.update(key, pod),
  );
  podInformer.start();
  await podInformer.hasSynced();
  pods.reconcileOrphans();
  await pods.removeOrphanNamespaces();
  pods.start();

  // Service VIPs, as kube-proxy programs them.
  proxy = new KubeProxy({
    client,
    nodes: () =>
      [...nodes.cache.values()].map((n) => ({
        name: n.metadata.name!,
        ready: n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
      })),
    mode: o.proxyMode,
    nodeName: o.node,
    nodeIPs: [underlay.ip],
    clusterCidr: o.clusterCidr,
    serviceCidr: o.serviceCidr,
    underlayDevice: o.underlayDevice,
  });
  await proxy.start();
  if (o.masqueradeTo?.length) await applyMasquerade(o.clusterCidr, o.masqueradeTo);
  await status.setReady(true);
  console.log(
    `kemu agent: node ${o.node} ready (InternalIP ${underlay.ip}, podCIDR ${podCIDR}, overlay ${o.overlay}, kube-proxy ${o.proxyMode})`,
  );

  return async () => {
    clearInterval(overlayTimer);
    proxy?.stop();
    pods.stop();
    podInformer.stop();
    nodes.stop();
    status.stop();
    kubelet.close();
    client.close();
    useExecHelper(undefined);
    helper?.close();
  };
}

/** Commands through kemu-exec when it is built (agent/images/build.sh), else spawned directly. */
function startExecHelper(path: string): ExecHelper | undefined {
  if (!existsSync(path)) {
    console.error(
      `kemu agent: ${path} is missing (agent/images/build.sh builds it): commands are forked from the agent`,
    );
    return undefined;
  }
  const helper = new ExecHelper(path, (e) => {
    console.error(`kemu agent: ${e.message}; commands are forked from the agent from now on`);
    useExecHelper(undefined);
  });
  useExecHelper(helper);
  return helper;
}
