// `kemu agent`: the node agent in the foreground, run inside the node's network namespace.

import { fileURLToPath } from "node:url";
import { runAgent } from "../agent/main.ts";
import { PROXY_MODES, type ProxyMode } from "../agent/proxy/proxy.ts";
import { parseCidr } from "../emulator/cidr.ts";
import { validateNodeIpamConfig } from "../emulator/node-ipam.ts";
import { intFlag, parseFlags, UsageError } from "./args.ts";

/** Where scripts/setup.sh builds the image programs (agnhost, busybox applet links). */
export const DEFAULT_IMAGES_DIR = fileURLToPath(new URL("../build/images", import.meta.url));

export const agentHelp = `Usage: kemu agent --api URL --token-file FILE --ca-file FILE --node NAME --data-dir DIR [flags]

Runs a node agent in the foreground. Start it inside the node's network namespace (kemu up does,
with nsenter --net=/run/netns/NODE; not ip netns exec, whose private mount namespace would hide the
pod namespaces the agent creates from the host once the agent exits):
it registers the Node, renews its Lease, programs the overlay to the other nodes, and runs the pods
bound to the node in their own network namespaces, wired by the CNI plugins in /usr/lib/cni.

Flags:
  --api URL               control plane URL (https://...)
  --token-file FILE       bearer token
  --ca-file FILE          CA certificate of the control plane
  --node NAME             this node's name
  --data-dir DIR          per-node state (CNI config and IPAM, pod records and logs)
  --overlay MODE          vxlan (default) or host-gw
  --cluster-cidr CIDR     cluster pod CIDR (default 10.244.0.0/16)
  --cluster-dns IP        nameserver written into ClusterFirst pods' resolv.conf (default 10.96.0.10)
  --cluster-domain NAME   cluster DNS domain (default cluster.local)
  --kubelet-port N        port of the agent's logs/exec API (default 10250)
  --max-pods N            pod capacity reported for the node (default 110)
  --node-lease-duration N seconds of the node's Lease, renewed every quarter of it (default 40);
                          keep it at or below the control plane's --node-monitor-grace-period
  --underlay-device DEV   interface whose IPv4 address is the node's InternalIP (default eth0)
  --images-dir DIR        built programs: the image catalog's, kemu-init, kemu-exec
                          (default: build/images in this checkout; agent/images/build.sh)
  --proxy-mode MODE       kube-proxy mode for Service VIPs: iptables (default) or nftables
  --service-cidr CIDR     the service network (default 10.96.0.0/12)
  --masquerade-to CIDR    pod traffic to CIDR leaves with the node's address (repeatable; Docker
                          mode gives the underlay, whose host firewall drops pod source addresses)
  -h, --help              show this help
`;

const flags = {
  api: { type: "string" },
  "token-file": { type: "string" },
  "ca-file": { type: "string" },
  node: { type: "string" },
  "data-dir": { type: "string" },
  overlay: { type: "string" },
  "cluster-cidr": { type: "string" },
  "cluster-dns": { type: "string" },
  "cluster-domain": { type: "string" },
  "kubelet-port": { type: "string" },
  "max-pods": { type: "string" },
  "node-lease-duration": { type: "string" },
  "underlay-device": { type: "string" },
  "images-dir": { type: "string" },
  "proxy-mode": { type: "string" },
  "service-cidr": { type: "string" },
  "masquerade-to": { type: "string", multiple: true },
} as const;

export async function agentCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("agent", argv, flags);
  if (values.help) {
    process.stdout.write(agentHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu agent: unexpected argument "${positionals[0]}"`);
  const required = (name: string): string => {
    const v = values[name];
    if (typeof v !== "string" || !v) throw new UsageError(`kemu agent: --${name} is required`);
    return v;
  };
  const overlay = (values.overlay as string | undefined) ?? "vxlan";
  if (overlay !== "vxlan" && overlay !== "host-gw") {
    throw new UsageError(`kemu agent: --overlay must be vxlan or host-gw, got "${overlay}"`);
  }
  const proxyMode = (values["proxy-mode"] as string | undefined) ?? "iptables";
  if (!(PROXY_MODES as readonly string[]).includes(proxyMode)) {
    throw new UsageError(
      `kemu agent: --proxy-mode must be one of ${PROXY_MODES.join(", ")}, got "${proxyMode}"`,
    );
  }
  const serviceCidr = (values["service-cidr"] as string | undefined) ?? "10.96.0.0/12";
  try {
    if (parseCidr(serviceCidr).family !== 4) throw new Error("only IPv4 service networks are supported");
  } catch (e) {
    throw new UsageError(`kemu agent: --service-cidr ${serviceCidr}: ${(e as Error).message}`);
  }
  const clusterCidr = (values["cluster-cidr"] as string | undefined) ?? "10.244.0.0/16";
  try {
    validateNodeIpamConfig({ clusterCidr });
  } catch (e) {
    throw new UsageError(`kemu agent: --cluster-cidr: ${(e as Error).message}`);
  }
  const masqueradeTo = (values["masquerade-to"] as string[] | undefined) ?? [];
  for (const cidr of masqueradeTo) {
    try {
      if (parseCidr(cidr, { allowHostBits: true }).family !== 4) throw new Error("only IPv4 is supported");
    } catch (e) {
      throw new UsageError(`kemu agent: --masquerade-to ${cidr}: ${(e as Error).message}`);
    }
  }
  const stop = await runAgent({
    api: required("api"),
    tokenFile: required("token-file"),
    caFile: required("ca-file"),
    node: required("node"),
    dataDir: required("data-dir"),
    overlay,
    clusterCidr,
    clusterDNS: (values["cluster-dns"] as string | undefined) ?? "10.96.0.10",
    clusterDomain: (values["cluster-domain"] as string | undefined) ?? "cluster.local",
    kubeletPort: intFlag("agent", "kubelet-port", values["kubelet-port"], 1, 65535) ?? 10250,
    maxPods: intFlag("agent", "max-pods", values["max-pods"], 1, 10000) ?? 110,
    nodeLeaseDurationSeconds: intFlag("agent", "node-lease-duration", values["node-lease-duration"], 1, 3600),
    underlayDevice: (values["underlay-device"] as string | undefined) ?? "eth0",
    imagesDir: (values["images-dir"] as string | undefined) ?? DEFAULT_IMAGES_DIR,
    proxyMode: proxyMode as ProxyMode,
    serviceCidr,
    masqueradeTo,
  });
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await stop();
}
