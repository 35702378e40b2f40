// The per-pod /etc/hosts and /etc/resolv.conf, in kubelet's formats. Pure.

import type { Pod } from "../../emulator/types.ts";

export function hostsFile(pod: Pod, podIP: string | undefined): string {
  const lines = [
    "# Kubernetes-managed hosts file.",
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  const hostname = (pod.spec.hostname as string | undefined) ?? pod.metadata.name!;
  if (podIP) lines.push(`${podIP}\t${hostname}`);
  const aliases = (pod.spec.hostAliases as { ip: string; hostnames?: string[] }[] | undefined) ?? [];
  if (aliases.length) {
    lines.push("", "# Entries added by HostAliases.");
    for (const a of aliases) lines.push(`${a.ip}\t${(a.hostnames ?? []).join("\t")}`);
  }
  return `${lines.join("\n")}\n`;
}

export interface DnsSettings {
  clusterDNS: string;
  clusterDomain: string;
  /** The node's own resolv.conf, for dnsPolicy Default. */
  nodeResolvConf?: string;
}

/** resolv.conf for the pod's dnsPolicy (ClusterFirst by default). */
export function resolvConf(pod: Pod, dns: DnsSettings): string {
  const policy = pod.spec.dnsPolicy ?? "ClusterFirst";
  if (policy === "Default") return dns.nodeResolvConf ?? "";
  if (policy === "None") return "";
  const ns = pod.metadata.namespace;
  const d = dns.clusterDomain;
  return `search ${ns}.svc.${d} svc.${d} ${d}\nnameserver ${dns.clusterDNS}\noptions ndots:5\n`;
}
