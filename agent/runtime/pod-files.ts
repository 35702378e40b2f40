// The per-pod /etc/hosts and /etc/resolv.conf, in kubelet's formats and by kubelet's rules
// (pkg/kubelet/network/dns: dnsPolicy ClusterFirst / Default / None, dnsConfig merged in; and the
// managed hosts file with the pod's FQDN when it has a subdomain, plus hostAliases). Pure.

import type { Pod } from "../../emulator/types.ts";

/** kubelet's limits (validation.MaxDNSNameservers, MaxDNSSearchPaths). */
export const MAX_NAMESERVERS = 3;
export const MAX_SEARCHES = 32;

export function hostsFile(pod: Pod, podIP: string | undefined, clusterDomain = "cluster.local"): string {
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
  const subdomain = pod.spec.subdomain as string | undefined;
  if (podIP) {
    lines.push(
      subdomain
        ? `${podIP}\t${hostname}.${subdomain}.${pod.metadata.namespace}.svc.${clusterDomain}\t${hostname}`
        : `${podIP}\t${hostname}`,
    );
  }
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
  /** The node's own resolv.conf, for dnsPolicy Default (and the host search paths of ClusterFirst). */
  nodeResolvConf?: string;
}

export interface ResolverConfig {
  nameservers: string[];
  searches: string[];
  options: string[];
}

/** Parses resolv.conf text (the parts kubelet reads: nameserver, search/domain, options). */
export function parseResolvConf(text: string): ResolverConfig {
  const out: ResolverConfig = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) out.nameservers.push(rest[0]);
    else if (key === "search" || key === "domain") out.searches = rest;
    else if (key === "options") out.options.push(...rest);
  }
  return out;
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/** dnsConfig options override same-named ones (ndots:2 replaces ndots:5), others are appended. */
function mergeOptions(base: readonly string[], extra: readonly { name: string; value?: string }[]): string[] {
  const byName = new Map<string, string>();
  for (const o of base) byName.set(o.split(":")[0], o);
  for (const o of extra) byName.set(o.name, o.value !== undefined ? `${o.name}:${o.value}` : o.name);
  return [...byName.values()];
}

/** What the pod's resolver uses, by its dnsPolicy (ClusterFirst by default) and dnsConfig. */
export function resolverConfig(pod: Pod, dns: DnsSettings): ResolverConfig {
  const policy = (pod.spec.dnsPolicy as string | undefined) ?? "ClusterFirst";
  const node = parseResolvConf(dns.nodeResolvConf ?? "");
  let base: ResolverConfig;
  if (policy === "None") base = { nameservers: [], searches: [], options: [] };
  else if (policy === "Default" || !dns.clusterDNS) base = node;
  else {
    const d = dns.clusterDomain;
    const ns = pod.metadata.namespace;
    base = {
      nameservers: [dns.clusterDNS],
      searches: [`${ns}.svc.${d}`, `svc.${d}`, d, ...node.searches],
      options: ["ndots:5"],
    };
  }
  const cfg = (pod.spec.dnsConfig ?? {}) as {
    nameservers?: string[];
    searches?: string[];
    options?: { name: string; value?: string }[];
  };
  return {
    nameservers: unique([...base.nameservers, ...(cfg.nameservers ?? [])]).slice(0, MAX_NAMESERVERS),
    searches: unique([...base.searches, ...(cfg.searches ?? [])]).slice(0, MAX_SEARCHES),
    options: mergeOptions(base.options, cfg.options ?? []),
  };
}

export function resolvConf(pod: Pod, dns: DnsSettings): string {
  const c = resolverConfig(pod, dns);
  const lines: string[] = [];
  if (c.searches.length) lines.push(`search ${c.searches.join(" ")}`);
  for (const n of c.nameservers) lines.push(`nameserver ${n}`);
  if (c.options.length) lines.push(`options ${c.options.join(" ")}`);
  return lines.length ? `${lines.join("\n")}\n` : "";
}
