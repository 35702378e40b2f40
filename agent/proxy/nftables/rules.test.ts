// rules.ts against upstream's nftables proxier: chain names from upstream's hash (as in its
// proxier_test.go), the base layout, golden transaction text for each behaviour (ClusterIP, no
// endpoints, affinity, NodePort, traffic policies, LoadBalancer, hairpin, terminating fallback),
// the transaction around an existing table (stale chains, affinity timeout changes, unchanged
// services left alone), and `nft -c` accepting all of it in a scratch network namespace.

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../exec.ts";
import { benchmarkState } from "../bench-state.ts";
import type { EndpointInfo, ProxyState, ServicePortInfo, ServicePortState } from "../model.ts";
import {
  composeTransaction,
  endpointChainBase,
  type KernelInventory,
  renderRuleset,
  servicePortChainBase,
  serviceRulesKey,
} from "./rules.ts";

const isRoot = process.getuid?.() === 0;

function svc(extra: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    namespace: "ns1",
    name: "svc1",
    portName: "p80",
    protocol: "TCP",
    clusterIP: "172.30.0.41",
    port: 80,
    nodePort: 0,
    loadBalancerIPs: [],
    externalIPs: [],
    affinitySeconds: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    ...extra,
  };
}

function ep(ip: string, extra: Partial<EndpointInfo> = {}): EndpointInfo {
  return { ip, port: 8080, ready: true, serving: true, terminating: false, isLocal: false, ...extra };
}

function state(...services: ServicePortState[]): ProxyState {
  return { nodeName: "node-1", nodeIPs: ["192.168.0.2"], clusterCidr: "10.0.0.0/8", services };
}

/** Golden text: indentation stripped, one trailing newline. */
function gold(s: string): string {
  return `${s.trim().replace(/^ +/gm, "")}\n`;
}

/** The transaction without the base part every sync starts with. */
function serviceText(st: ProxyState): string {
  const r = renderRuleset(st);
  expect(r.text.startsWith(r.base)).toBe(true);
  return r.text.slice(r.base.length);
}

const empty: KernelInventory = { serviceChains: new Set(), affinitySets: new Map() };

describe("chain names", () => {
  it("match upstream's hashAndTruncate (proxier_test.go golden names)", () => {
    const s = (namespace: string, name: string) => svc({ namespace, name });
    expect(servicePortChainBase(s("ns1", "svc1"))).toBe("ULMVA6XW-ns1/svc1/tcp/p80");
    expect(servicePortChainBase(s("ns2", "svc2"))).toBe("42NFTM6N-ns2/svc2/tcp/p80");
    expect(endpointChainBase(s("ns1", "svc1"), { ip: "10.180.0.1", port: 80 })).toBe(
      "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80",
    );
    expect(endpointChainBase(s("ns2", "svc2"), { ip: "10.180.0.2", port: 80 })).toBe(
      "SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80",
    );
    expect(servicePortChainBase(svc({ protocol: "UDP", portName: "" }))).toMatch(
      /^[A-Z2-7]{8}-ns1\/svc1\/udp\/$/,
    );
  });

  it("truncate names longer than nft allows, keeping the hash", () => {
    const long = "x".repeat(100);
    const base = endpointChainBase(svc({ namespace: long, name: long, portName: long }), {
      ip: "10.0.0.1",
      port: 80,
    });
    expect(base.length).toBeLessThanOrEqual(240);
    expect(base.endsWith("...")).toBe(true);
  });
});

describe("renderRuleset", () => {
  it("writes upstream's base layout: table, base chains, jumps, masquerading, sets and maps", () => {
    expect(renderRuleset(state()).base).toBe(
      gold(`
    add table ip kube-proxy { comment "rules for kube-proxy" ; }
    add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
    flush chain ip kube-proxy filter-prerouting
    add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
    flush chain ip kube-proxy filter-input
    add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
    flush chain ip kube-proxy filter-forward
    add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
    flush chain ip kube-proxy filter-output
    add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
    flush chain ip kube-proxy filter-output-post-dnat
    add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
    flush chain ip kube-proxy nat-prerouting
    add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
    flush chain ip kube-proxy nat-output
    add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
    flush chain ip kube-proxy nat-postrouting
    add chain ip kube-proxy nodeport-endpoints-check
    flush chain ip kube-proxy nodeport-endpoints-check
    add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
    add chain ip kube-proxy service-endpoints-check
    flush chain ip kube-proxy service-endpoints-check
    add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
    add chain ip kube-proxy firewall-check
    flush chain ip kube-proxy firewall-check
    add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
    add rule ip kube-proxy filter-output ct state new jump firewall-check
    add chain ip kube-proxy services
    flush chain ip kube-proxy services
    add rule ip kube-proxy nat-output jump services
    add rule ip kube-proxy nat-prerouting jump services
    add chain ip kube-proxy masquerading
    flush chain ip kube-proxy masquerading
    add rule ip kube-proxy nat-postrouting jump masquerading
    add chain ip kube-proxy cluster-ips-check
    flush chain ip kube-proxy cluster-ips-check
    add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
    add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
    add chain ip kube-proxy mark-for-masquerade
    flush chain ip kube-proxy mark-for-masquerade
    add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
    add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
    add rule ip kube-proxy masquerading mark set mark xor 0x4000
    add rule ip kube-proxy masquerading masquerade fully-random
    add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
    flush set ip kube-proxy cluster-ips
    add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
    add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
    flush set ip kube-proxy nodeport-ips
    add element ip kube-proxy nodeport-ips { 192.168.0.2 }
    add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
    flush map ip kube-proxy no-endpoint-services
    add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
    flush map ip kube-proxy no-endpoint-nodeports
    add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
    flush chain ip kube-proxy reject-chain
    add rule ip kube-proxy reject-chain reject
    add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
    flush map ip kube-proxy firewall-ips
    add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
    add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
    flush map ip kube-proxy service-ips
    add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
    flush map ip kube-proxy service-nodeports
    add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
    add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
  `),
    );
  });

  it("answers NodePorts on every local address when no node address is known", () => {
    const { base } = renderRuleset({ ...state(), nodeIPs: [] });
    expect(base).toContain(
      "add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n",
    );
    expect(base).toContain(
      "add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports\n",
    );
    expect(base).not.toContain("add element ip kube-proxy nodeport-ips");
  });

  it("a ClusterIP with 3 endpoints: numgen over endpoint chains, off-cluster sources masqueraded", () => {
    expect(
      serviceText(
        state({ service: svc(), endpoints: [ep("10.180.0.1"), ep("10.180.0.2"), ep("10.180.0.3")] }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080
    add chain ip kube-proxy endpoint-JAQWOKDG-ns1/svc1/tcp/p80__10.180.0.3/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 3 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 , 1 : goto endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 , 2 : goto endpoint-JAQWOKDG-ns1/svc1/tcp/p80__10.180.0.3/8080 }
    # ns1/svc1:p80 tcp
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    flush chain ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080
    add rule ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 ip saddr 10.180.0.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 meta l4proto tcp dnat to 10.180.0.2:8080
    flush chain ip kube-proxy endpoint-JAQWOKDG-ns1/svc1/tcp/p80__10.180.0.3/8080
    add rule ip kube-proxy endpoint-JAQWOKDG-ns1/svc1/tcp/p80__10.180.0.3/8080 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-JAQWOKDG-ns1/svc1/tcp/p80__10.180.0.3/8080 meta l4proto tcp dnat to 10.180.0.3:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("no endpoints: every address of the service rejected", () => {
    expect(
      serviceText(
        state({
          service: svc({ nodePort: 30001, externalIPs: ["192.168.99.11"], loadBalancerIPs: ["1.2.3.4"] }),
          endpoints: [],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
    add element ip kube-proxy no-endpoint-services { 192.168.99.11 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
    add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
    add element ip kube-proxy no-endpoint-nodeports { tcp . 30001 comment "ns1/svc1:p80" : goto reject-chain }
  `),
    );
  });

  it("ClientIP affinity: per-endpoint timeout sets, checked before numgen and refreshed by the endpoint chain", () => {
    expect(
      serviceText(
        state({ service: svc({ affinitySeconds: 600 }), endpoints: [ep("10.180.0.1"), ep("10.180.0.2")] }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add set ip kube-proxy affinity-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }
    add set ip kube-proxy affinity-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr @affinity-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr @affinity-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 goto endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 , 1 : goto endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 }
    # ns1/svc1:p80 tcp
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 update @affinity-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 { ip saddr }
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    flush chain ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080
    add rule ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 ip saddr 10.180.0.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 update @affinity-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 { ip saddr }
    add rule ip kube-proxy endpoint-COL4JORS-ns1/svc1/tcp/p80__10.180.0.2/8080 meta l4proto tcp dnat to 10.180.0.2:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("NodePort: the external chain masquerades and goes to the service chain", () => {
    expect(serviceText(state({ service: svc({ nodePort: 30080 }), endpoints: [ep("10.180.0.1")] }))).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 }
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("externalTrafficPolicy Local: short-circuits for pods and the node, others only to local endpoints, unmasqueraded", () => {
    expect(
      serviceText(
        state({
          service: svc({ nodePort: 30080, externalPolicyLocal: true }),
          endpoints: [ep("10.180.0.1", { isLocal: true }), ep("10.180.1.1")],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add chain ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 , 1 : goto endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 }
    add rule ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 }
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr 10.0.0.0/8 goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 fib saddr type local goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment "short-circuit local traffic"
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto local-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    flush chain ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080
    add rule ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 ip saddr 10.180.1.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 meta l4proto tcp dnat to 10.180.1.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("externalTrafficPolicy Local without local endpoints: external traffic dropped, pods still short-circuited", () => {
    expect(
      serviceText(
        state({
          service: svc({ nodePort: 30080, externalPolicyLocal: true }),
          endpoints: [ep("10.180.1.1")],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 }
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr 10.0.0.0/8 goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 fib saddr type local goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment "short-circuit local traffic"
    flush chain ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080
    add rule ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 ip saddr 10.180.1.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-FFWGZXMH-ns1/svc1/tcp/p80__10.180.1.1/8080 meta l4proto tcp dnat to 10.180.1.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 comment "ns1/svc1:p80" : drop }
  `),
    );
  });

  it("internalTrafficPolicy Local: the ClusterIP goes to the local chain", () => {
    expect(
      serviceText(
        state({
          service: svc({ internalPolicyLocal: true }),
          endpoints: [ep("10.180.0.1", { isLocal: true }), ep("10.180.1.1")],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 }
    # ns1/svc1:p80 tcp
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto local-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("internalTrafficPolicy Local without local endpoints: the ClusterIP drops", () => {
    expect(
      serviceText(state({ service: svc({ internalPolicyLocal: true }), endpoints: [ep("10.180.1.1")] })),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : drop }
  `),
    );
  });

  it("a LoadBalancer IP goes to the external chain, as the NodePort does", () => {
    expect(
      serviceText(
        state({
          service: svc({ nodePort: 30080, loadBalancerIPs: ["1.2.3.4"] }),
          endpoints: [ep("10.180.0.1")],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 }
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("no ready endpoint: serving terminating ones are used, not-serving ones never", () => {
    expect(
      serviceText(
        state({
          service: svc(),
          endpoints: [
            ep("10.180.0.1", { ready: false, terminating: true }),
            ep("10.180.0.2", { ready: false, serving: false, terminating: true }),
          ],
        }),
      ),
    ).toBe(
      gold(`
    # ns1/svc1:p80 tcp
    add chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 }
    # ns1/svc1:p80 tcp
    flush chain ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-LIVTTPDC-ns1/svc1/tcp/p80__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
    # ns1/svc1:p80 tcp
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
  `),
    );
  });

  it("masquerades hairpin traffic: every endpoint chain marks packets from the endpoint itself", () => {
    const text = serviceText(state({ service: svc(), endpoints: [ep("10.180.0.1"), ep("10.180.0.2")] }));
    for (const ip of ["10.180.0.1", "10.180.0.2"]) {
      const chain = `endpoint-${endpointChainBase(svc(), ep(ip))}`;
      expect(text).toContain(`add rule ip kube-proxy ${chain} ip saddr ${ip} jump mark-for-masquerade\n`);
    }
  });

  it("masquerades only marked packets, never by interface", () => {
    const { base } = renderRuleset(state());
    const masq = base
      .split("\n")
      .filter((l) => l.includes("masquerade") && !l.includes("mark-for-masquerade"));
    expect(masq).toEqual(["add rule ip kube-proxy masquerading masquerade fully-random"]);
    expect(base.indexOf("mark and 0x4000 == 0 return")).toBeLessThan(base.indexOf("masquerade fully-random"));
  });

  it("is deterministic: the order services arrive in does not matter", () => {
    const a = { service: svc({ name: "a", clusterIP: "172.30.0.1" }), endpoints: [ep("10.180.0.1")] };
    const b = { service: svc({ name: "b", clusterIP: "172.30.0.2" }), endpoints: [ep("10.180.0.2")] };
    const c = {
      service: svc({ name: "b", protocol: "UDP", clusterIP: "172.30.0.2" }),
      endpoints: [ep("10.180.0.2")],
    };
    expect(renderRuleset(state(c, b, a)).text).toBe(renderRuleset(state(a, b, c)).text);
    expect(renderRuleset(state(c, b, a)).services.map((s) => s.name)).toEqual([
      "ns1/a:p80 tcp",
      "ns1/b:p80 tcp",
      "ns1/b:p80 udp",
    ]);
  });

  it("adds a ClusterIP once to cluster-ips and never a key twice to a map", () => {
    const a = svc({ name: "a", externalIPs: ["192.168.99.1"] });
    const b = svc({ name: "b", portName: "p81", port: 81, externalIPs: ["192.168.99.1"] });
    const c = svc({ name: "c", clusterIP: "172.30.0.42", externalIPs: ["192.168.99.1"] });
    const text = renderRuleset(
      state(
        { service: a, endpoints: [ep("10.180.0.1")] },
        { service: b, endpoints: [] },
        { service: c, endpoints: [ep("10.180.0.3")] },
      ),
    ).text;
    expect(text.match(/add element ip kube-proxy cluster-ips \{ 172\.30\.0\.41 \}/g)).toHaveLength(1);
    // a's external IP:80 wins over c's (same key): a conflicting value would fail the transaction.
    expect(text.match(/ 192\.168\.99\.1 \. tcp \. 80 /g)).toHaveLength(1);
    expect(text).toContain(
      "add element ip kube-proxy service-ips { 192.168.99.1 . tcp . 80 : goto external-",
    );
  });

  it("keeps element comments within nft's 128 bytes", () => {
    const long = "n".repeat(63);
    const text = serviceText(
      state({ service: svc({ namespace: long, name: long, portName: "a".repeat(15) }), endpoints: [] }),
    );
    const comment = /comment "([^"]*)"/.exec(text)![1];
    expect(comment.length).toBe(128);
  });

  it("lists the service chains and affinity sets it made", () => {
    const r = renderRuleset(
      state({ service: svc({ affinitySeconds: 60, nodePort: 30080 }), endpoints: [ep("10.180.0.1")] }),
    );
    const base = servicePortChainBase(svc());
    const epBase = endpointChainBase(svc(), ep("10.180.0.1"));
    expect(r.serviceChains).toEqual([`endpoint-${epBase}`, `external-${base}`, `service-${base}`]);
    expect([...r.affinitySets]).toEqual([[`affinity-${epBase}`, 60]]);
  });
});

describe("composeTransaction", () => {
  const one = state({
    service: svc({ affinitySeconds: 60 }),
    endpoints: [ep("10.180.0.1"), ep("10.180.0.2")],
  });
  const applied = (st: ProxyState): KernelInventory => {
    const r = renderRuleset(st);
    return {
      serviceChains: new Set(r.serviceChains),
      affinitySets: r.affinitySets,
      appliedServices: new Map(r.services.map((s) => [s.name, serviceRulesKey(s)])),
    };
  };

  it("is the rendered text for an empty table", () => {
    const r = renderRuleset(one);
    expect(composeTransaction(r, empty)).toBe(r.text);
  });

  it("leaves unchanged services alone but refills every map", () => {
    const other = {
      service: svc({ name: "other", clusterIP: "172.30.0.50" }),
      endpoints: [ep("10.180.0.9")],
    };
    const before = state(one.services[0], other);
    const after = state(one.services[0], { ...other, endpoints: [ep("10.180.0.9"), ep("10.180.0.10")] });
    const tx = composeTransaction(renderRuleset(after), applied(before));
    expect(tx).not.toContain("chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80");
    expect(tx).toContain("flush map ip kube-proxy service-ips\n");
    expect(tx).toContain(
      "add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-",
    );
    expect(tx).toContain(`flush chain ip kube-proxy service-${servicePortChainBase(other.service)}\n`);
    expect(tx).toContain("10.180.0.10:8080");
    // Nothing changed: only the base and the elements.
    const same = composeTransaction(renderRuleset(after), applied(after));
    expect(same).not.toMatch(/^(add|flush) (chain|rule) ip kube-proxy \S*\/svc1\//m);
    expect(same).toContain("add element ip kube-proxy cluster-ips { 172.30.0.41 }");
  });

  it("flushes chains no longer used and deletes their affinity sets", () => {
    const fewer = state({ ...one.services[0], endpoints: [ep("10.180.0.1")] });
    const tx = composeTransaction(renderRuleset(fewer), applied(one));
    const gone = endpointChainBase(svc(), ep("10.180.0.2"));
    expect(
      tx.endsWith(
        gold(`
        # no longer used
        flush chain ip kube-proxy endpoint-${gone}
        delete set ip kube-proxy affinity-${gone}
      `),
      ),
    ).toBe(true);
    expect(tx).not.toContain(`delete chain`);
  });

  it("re-creates an affinity set whose timeout changed, after flushing what refers to it", () => {
    const longer = state({ ...one.services[0], service: svc({ affinitySeconds: 120 }) });
    const tx = composeTransaction(renderRuleset(longer), applied(one)).split("\n");
    const set = `affinity-${endpointChainBase(svc(), ep("10.180.0.1"))}`;
    const del = tx.indexOf(`delete set ip kube-proxy ${set}`);
    const add = tx.findIndex((l) => l.startsWith(`add set ip kube-proxy ${set} `));
    expect(del).toBeGreaterThan(0);
    expect(tx[add]).toContain("timeout 120s");
    expect(add).toBeGreaterThan(del);
    for (const chain of applied(one).serviceChains) {
      expect(tx.indexOf(`flush chain ip kube-proxy ${chain}`)).toBeLessThan(del);
    }
  });

  it("deletes and re-adds the base chains when asked (a first sync over an existing table)", () => {
    const tx = composeTransaction(renderRuleset(one), { ...empty, resetBaseChains: true });
    expect(
      tx.startsWith(
        'add table ip kube-proxy { comment "rules for kube-proxy" ; }\nadd chain ip kube-proxy filter-prerouting\ndelete chain ip kube-proxy filter-prerouting\n',
      ),
    ).toBe(true);
    expect(tx).toContain(
      "add chain ip kube-proxy nat-postrouting\ndelete chain ip kube-proxy nat-postrouting\n",
    );
  });
});

describe.skipIf(!isRoot)("nft accepts the transactions (scratch network namespace)", () => {
  const NS = `kemu-t-nftc-${randomBytes(3).toString("hex")}`;
  const nft = (input: string, ...flags: string[]) => run(["nft", ...flags, "-f", "-"], { netns: NS, input });

  beforeAll(async () => {
    await run(["ip", "netns", "add", NS]);
  });
  afterAll(async () => {
    await run(["ip", "netns", "del", NS], { allowFail: true });
  });

  it("checks every behaviour's state with nft -c", async () => {
    const all = state(
      {
        service: svc({ name: "a", clusterIP: "172.30.0.1" }),
        endpoints: [ep("10.180.0.1"), ep("10.180.0.2")],
      },
      {
        service: svc({
          name: "b",
          clusterIP: "172.30.0.2",
          nodePort: 30001,
          externalIPs: ["192.168.99.1"],
          loadBalancerIPs: ["1.2.3.4"],
        }),
        endpoints: [],
      },
      {
        service: svc({ name: "c", clusterIP: "172.30.0.3", affinitySeconds: 600 }),
        endpoints: [ep("10.180.0.3")],
      },
      {
        service: svc({
          name: "d",
          clusterIP: "172.30.0.4",
          nodePort: 30004,
          loadBalancerIPs: ["1.2.3.5"],
          externalPolicyLocal: true,
        }),
        endpoints: [ep("10.180.0.4", { isLocal: true }), ep("10.180.1.4")],
      },
      {
        service: svc({ name: "e", clusterIP: "172.30.0.5", nodePort: 30005, externalPolicyLocal: true }),
        endpoints: [ep("10.180.1.5")],
      },
      {
        service: svc({ name: "f", clusterIP: "172.30.0.6", internalPolicyLocal: true }),
        endpoints: [ep("10.180.0.6", { isLocal: true })],
      },
      {
        service: svc({ name: "g", clusterIP: "172.30.0.7", internalPolicyLocal: true }),
        endpoints: [ep("10.180.1.7")],
      },
      {
        service: svc({ name: "h", clusterIP: "172.30.0.8", protocol: "UDP" }),
        endpoints: [ep("10.180.0.8", { ready: false, terminating: true })],
      },
      {
        service: svc({ name: "i", clusterIP: "172.30.0.9", protocol: "SCTP" }),
        endpoints: [ep("10.180.0.9")],
      },
      // Both policies Local: no cluster chain to short-circuit to (see model.ts usesClusterEndpoints).
      {
        service: svc({
          name: "j",
          clusterIP: "172.30.0.10",
          nodePort: 30010,
          internalPolicyLocal: true,
          externalPolicyLocal: true,
        }),
        endpoints: [ep("10.180.0.10", { isLocal: true }), ep("10.180.1.10")],
      },
    );
    await nft(renderRuleset(all).text, "-c");
    await nft(renderRuleset({ ...all, nodeIPs: [], clusterCidr: "" }).text, "-c");
    await nft(renderRuleset(benchmarkState(50, 10)).text, "-c");
  });

  it("applies a sync over an existing table: stale chains, a changed timeout, base chains reset", async () => {
    const first = state(
      { service: svc({ affinitySeconds: 60 }), endpoints: [ep("10.180.0.1"), ep("10.180.0.2")] },
      { service: svc({ name: "other", clusterIP: "172.30.0.50" }), endpoints: [ep("10.180.0.9")] },
    );
    const r1 = renderRuleset(first);
    await nft(r1.text);
    const second = state(
      { service: svc({ affinitySeconds: 120 }), endpoints: [ep("10.180.0.1")] },
      first.services[1],
    );
    const tx = composeTransaction(renderRuleset(second), {
      serviceChains: new Set(r1.serviceChains),
      affinitySets: r1.affinitySets,
      appliedServices: new Map(r1.services.map((s) => [s.name, serviceRulesKey(s)])),
      resetBaseChains: true,
    });
    await nft(tx);
    const set = `affinity-${endpointChainBase(svc(), ep("10.180.0.1"))}`;
    const listed = (await run(["nft", "list", "set", "ip", "kube-proxy", set], { netns: NS })).stdout;
    expect(listed).toContain("timeout 2m");
    const gone = `endpoint-${endpointChainBase(svc(), ep("10.180.0.2"))}`;
    const chain = (await run(["nft", "list", "chain", "ip", "kube-proxy", gone], { netns: NS })).stdout;
    expect(chain).not.toContain("dnat");
    await nft(`delete chain ip kube-proxy ${gone}\n`);
    const other = `service-${servicePortChainBase(first.services[1].service)}`;
    expect((await run(["nft", "list", "chain", "ip", "kube-proxy", other], { netns: NS })).stdout).toContain(
      "numgen random mod 1",
    );
  });
});
