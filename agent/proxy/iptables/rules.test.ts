// rules.ts against upstream: chain names from upstream's hash (the names a kubeadm cluster shows
// for the kubernetes and kube-dns Services), golden restore text for a ClusterIP Service, and the
// rules each behaviour adds (REJECT, affinity, NodePort, traffic policies, LoadBalancer,
// hairpin, terminating fallback), plus the jump/stale/cleanup helpers and the UDP conntrack plan.

import { describe, expect, it } from "vitest";
import type { EndpointInfo, ProxyState, ServicePortInfo, ServicePortState } from "../model.ts";
import { staleConntrackCommands } from "./conntrack.ts";
import {
  cleanupInput,
  endpointChainName,
  JUMP_RULES,
  jumpRuleLine,
  KUBELET_JUMP_RULES,
  missingJumps,
  parseIptablesSave,
  portProtoHash,
  probability,
  renderRules,
  restoreInput,
  serviceChainNames,
  staleServiceChains,
} from "./rules.ts";

function svc(extra: Partial<ServicePortInfo> = {}): ServicePortInfo {
  return {
    namespace: "default",
    name: "web",
    portName: "http",
    protocol: "TCP",
    clusterIP: "10.96.7.10",
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

const THREE = [ep("10.244.7.11", { isLocal: true }), ep("10.244.7.12"), ep("10.244.8.13")];

function state(...services: ServicePortState[]): ProxyState {
  return { nodeName: "node-1", nodeIPs: ["172.31.0.11"], clusterCidr: "10.244.0.0/16", services };
}

const render = (...services: ServicePortState[]) => renderRules(state(...services));
const SVC = serviceChainNames("default/web:http", "TCP");
const sep = (ip: string, port = 8080) => endpointChainName("default/web:http", "TCP", `${ip}:${port}`);

/** The rules of one table, without the restore framing. */
function table(text: string, name: "filter" | "nat"): string[] {
  const lines = text.split("\n");
  const start = lines.indexOf(`*${name}`);
  return lines.slice(start + 1, lines.indexOf("COMMIT", start));
}

describe("chain names", () => {
  it("hashes like upstream (the names every kubeadm cluster shows)", () => {
    expect(portProtoHash("default/kubernetes:https", "TCP")).toBe("NPX46M4PTMTKRN6Y");
    expect(portProtoHash("kube-system/kube-dns:dns", "UDP")).toBe("TCOU7JCQXEZGVUNU");
    expect(portProtoHash("kube-system/kube-dns:dns-tcp", "TCP")).toBe("ERIFXISQEP7F7OF4");
    expect(portProtoHash("kube-system/kube-dns:metrics", "TCP")).toBe("JD5MR3NA4I4DYORP");
    expect(serviceChainNames("default/kubernetes:https", "TCP")).toEqual({
      cluster: "KUBE-SVC-NPX46M4PTMTKRN6Y",
      local: "KUBE-SVL-NPX46M4PTMTKRN6Y",
      external: "KUBE-EXT-NPX46M4PTMTKRN6Y",
      firewall: "KUBE-FW-NPX46M4PTMTKRN6Y",
    });
    expect(endpointChainName("default/web:http", "TCP", "10.244.7.11:8080")).toMatch(
      /^KUBE-SEP-[A-Z2-7]{16}$/,
    );
    expect(sep("10.244.7.11")).not.toBe(sep("10.244.7.12"));
  });

  it("formats probabilities as Go's %0.10f, ties to even", () => {
    expect(probability(3)).toBe("0.3333333333");
    expect(probability(2)).toBe("0.5000000000");
    expect(probability(7)).toBe("0.1428571429");
    expect(probability(6)).toBe("0.1666666667");
    expect(probability(1000)).toBe("0.0010000000");
    expect(probability(2048)).toBe("0.0004882812"); // exactly ...28125: Go rounds to even
  });
});

describe("renderRules", () => {
  it("renders a ClusterIP service with 3 endpoints exactly as upstream", () => {
    const r = render({ service: svc(), endpoints: THREE });
    const [a, b, c] = THREE.map((e) => sep(e.ip));
    expect(r.text).toBe(
      [
        "*filter",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-EXTERNAL-SERVICES - [0:0]",
        ":KUBE-FORWARD - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-PROXY-FIREWALL - [0:0]",
        ":KUBE-FIREWALL - [0:0]",
        '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        "COMMIT",
        "*nat",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
        `:${SVC.cluster} - [0:0]`,
        `:${a} - [0:0]`,
        `:${b} - [0:0]`,
        `:${c} - [0:0]`,
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        `-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.7.10 --dport 80 -j ${SVC.cluster}`,
        `-A ${SVC.cluster} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.7.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`,
        `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.11:8080" -m statistic --mode random --probability 0.3333333333 -j ${a}`,
        `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.12:8080" -m statistic --mode random --probability 0.5000000000 -j ${b}`,
        `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.8.13:8080" -j ${c}`,
        `-A ${a} -m comment --comment default/web:http -s 10.244.7.11 -j KUBE-MARK-MASQ`,
        `-A ${a} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.7.11:8080`,
        `-A ${b} -m comment --comment default/web:http -s 10.244.7.12 -j KUBE-MARK-MASQ`,
        `-A ${b} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.7.12:8080`,
        `-A ${c} -m comment --comment default/web:http -s 10.244.8.13 -j KUBE-MARK-MASQ`,
        `-A ${c} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.8.13:8080`,
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        "COMMIT",
        "",
      ].join("\n"),
    );
    expect(r.serviceChains).toEqual([SVC.cluster, a, b, c]);
    expect(r.largeClusterMode).toBe(false);
  });

  it("is deterministic whatever order the services come in", () => {
    const one = { service: svc({ name: "a", clusterIP: "10.96.0.2" }), endpoints: THREE };
    const two = { service: svc({ name: "b", clusterIP: "10.96.0.3" }), endpoints: THREE };
    expect(render(two, one).text).toBe(render(one, two).text);
  });

  it("rejects traffic to a service without endpoints (filter table, no nat chains)", () => {
    const r = render({ service: svc({ nodePort: 30080, externalIPs: ["192.0.2.9"] }), endpoints: [] });
    expect(table(r.text, "filter")).toEqual(
      expect.arrayContaining([
        '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 10.96.7.10 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 192.0.2.9 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT --reject-with icmp-port-unreachable',
      ]),
    );
    expect(r.serviceChains).toEqual([]);
    expect(r.text).not.toContain("default/web:http cluster IP");
    // Endpoints that are neither ready nor serving count as none.
    const notServing = render({
      service: svc(),
      endpoints: [ep("10.244.7.11", { ready: false, serving: false })],
    });
    expect(notServing.text).toContain("has no endpoints");
  });

  it("sticks clients to an endpoint with ClientIP affinity", () => {
    const r = render({ service: svc({ affinitySeconds: 10800 }), endpoints: THREE });
    const nat = table(r.text, "nat");
    const [a, b, c] = THREE.map((e) => sep(e.ip));
    expect(nat.filter((l) => l.startsWith(`-A ${SVC.cluster} `))).toEqual([
      `-A ${SVC.cluster} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.7.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.11:8080" -m recent --name ${a} --rcheck --seconds 10800 --reap -j ${a}`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.12:8080" -m recent --name ${b} --rcheck --seconds 10800 --reap -j ${b}`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.8.13:8080" -m recent --name ${c} --rcheck --seconds 10800 --reap -j ${c}`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.11:8080" -m statistic --mode random --probability 0.3333333333 -j ${a}`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.12:8080" -m statistic --mode random --probability 0.5000000000 -j ${b}`,
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.8.13:8080" -j ${c}`,
    ]);
    expect(nat).toContain(
      `-A ${a} -m comment --comment default/web:http -m recent --name ${a} --set -m tcp -p tcp -j DNAT --to-destination 10.244.7.11:8080`,
    );
  });

  it("sends NodePort traffic through KUBE-EXT, masqueraded, to every endpoint (policy Cluster)", () => {
    const r = render({ service: svc({ nodePort: 30080 }), endpoints: THREE });
    const nat = table(r.text, "nat");
    expect(nat).toContain(`:${SVC.external} - [0:0]`);
    expect(nat).toContain(
      `-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j ${SVC.external}`,
    );
    expect(nat.filter((l) => l.startsWith(`-A ${SVC.external} `))).toEqual([
      `-A ${SVC.external} -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ`,
      `-A ${SVC.external} -j ${SVC.cluster}`,
    ]);
    expect(nat[nat.length - 1]).toContain("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
    expect(r.jumps.map((j) => `${j.from} ${j.to}`)).toEqual(
      expect.arrayContaining(["INPUT KUBE-FIREWALL", "OUTPUT KUBE-FIREWALL"]),
    );
  });

  it("skips 127.0.0.0/8 and KUBE-FIREWALL without localhost NodePorts", () => {
    const r = renderRules(state({ service: svc({ nodePort: 30080 }), endpoints: THREE }), {
      localhostNodePorts: false,
    });
    const nat = table(r.text, "nat");
    expect(nat[nat.length - 1]).toContain("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS");
    expect(r.text).not.toContain("KUBE-FIREWALL");
    expect(r.jumps).toEqual(JUMP_RULES);
  });

  it("answers NodePorts only on the node's addresses with nodePortAddresses nodeIPs", () => {
    const r = renderRules(state({ service: svc({ nodePort: 30080 }), endpoints: THREE }), {
      nodePortAddresses: "nodeIPs",
    });
    const nat = table(r.text, "nat");
    expect(nat[nat.length - 1]).toBe(
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 172.31.0.11 -j KUBE-NODEPORTS',
    );
  });

  it("keeps the source and uses only local endpoints for externalTrafficPolicy Local", () => {
    const r = render({ service: svc({ nodePort: 30080, externalPolicyLocal: true }), endpoints: THREE });
    const nat = table(r.text, "nat");
    const local = sep("10.244.7.11");
    expect(nat.filter((l) => l.startsWith(`-A ${SVC.external} `))).toEqual([
      `-A ${SVC.external} -m comment --comment "pod traffic for default/web:http external destinations" -s 10.244.0.0/16 -j ${SVC.cluster}`,
      `-A ${SVC.external} -m comment --comment "masquerade LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
      `-A ${SVC.external} -m comment --comment "route LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j ${SVC.cluster}`,
      `-A ${SVC.external} -j ${SVC.local}`,
    ]);
    expect(nat.filter((l) => l.startsWith(`-A ${SVC.local} `))).toEqual([
      `-A ${SVC.local} -m comment --comment "default/web:http -> 10.244.7.11:8080" -j ${local}`,
    ]);
    // ClusterIP traffic still uses every endpoint.
    expect(nat.filter((l) => l.startsWith(`-A ${SVC.cluster} `) && l.includes("statistic"))).toHaveLength(2);

    // A node without local endpoints: external traffic that is not short-circuited is dropped.
    const remote = THREE.map((e) => ({ ...e, isLocal: false }));
    const none = render({ service: svc({ nodePort: 30080, externalPolicyLocal: true }), endpoints: remote });
    expect(none.serviceChains).not.toContain(SVC.local);
    expect(table(none.text, "nat").filter((l) => l.startsWith(`-A ${SVC.external} -j`))).toEqual([]);
    expect(table(none.text, "filter")).toContain(
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP',
    );
  });

  it("sends ClusterIP traffic only to local endpoints for internalTrafficPolicy Local", () => {
    const r = render({ service: svc({ internalPolicyLocal: true }), endpoints: THREE });
    const nat = table(r.text, "nat");
    const local = sep("10.244.7.11");
    expect(r.serviceChains).toEqual([SVC.local, local]);
    expect(nat).toContain(
      `-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.7.10 --dport 80 -j ${SVC.local}`,
    );
    expect(nat).toContain(
      `-A ${SVC.local} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.7.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`,
    );

    const remote = THREE.map((e) => ({ ...e, isLocal: false }));
    const none = render({ service: svc({ internalPolicyLocal: true }), endpoints: remote });
    expect(none.serviceChains).toEqual([]);
    expect(table(none.text, "filter")).toContain(
      '-A KUBE-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -d 10.96.7.10 --dport 80 -j DROP',
    );
  });

  it("keeps KUBE-SVC for the short-circuits when both traffic policies are Local", () => {
    const r = render({
      service: svc({ nodePort: 30080, internalPolicyLocal: true, externalPolicyLocal: true }),
      endpoints: THREE,
    });
    // Every chain a rule jumps to is declared (iptables-restore would refuse the input otherwise).
    const nat = table(r.text, "nat");
    const declared = new Set(nat.filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0]));
    for (const l of nat.filter((x) => x.startsWith("-A "))) {
      const target = / -j (KUBE-\S+)/.exec(l)?.[1];
      if (target) expect(declared, l).toContain(target);
    }
    expect(r.serviceChains).toEqual(expect.arrayContaining([SVC.cluster, SVC.local, SVC.external]));
  });

  it("captures LoadBalancer ingress IPs and external IPs", () => {
    const r = render({
      service: svc({ nodePort: 30080, loadBalancerIPs: ["172.18.255.1"], externalIPs: ["192.0.2.9"] }),
      endpoints: THREE,
    });
    const nat = table(r.text, "nat");
    expect(nat).toContain(
      `-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp -d 192.0.2.9 --dport 80 -j ${SVC.external}`,
    );
    expect(nat).toContain(
      `-A KUBE-SERVICES -m comment --comment "default/web:http loadbalancer IP" -m tcp -p tcp -d 172.18.255.1 --dport 80 -j ${SVC.external}`,
    );
    expect(r.serviceChains.some((c) => c.startsWith("KUBE-FW-"))).toBe(false);

    const none = render({ service: svc({ loadBalancerIPs: ["172.18.255.1"] }), endpoints: [] });
    expect(table(none.text, "filter")).toContain(
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 172.18.255.1 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
    );
  });

  it("masquerades hairpin traffic (an endpoint reaching itself through the service)", () => {
    const nat = table(render({ service: svc(), endpoints: THREE }).text, "nat");
    for (const e of THREE) {
      expect(nat).toContain(
        `-A ${sep(e.ip)} -m comment --comment default/web:http -s ${e.ip} -j KUBE-MARK-MASQ`,
      );
    }
  });

  it("falls back to serving terminating endpoints when none is ready", () => {
    const endpoints = [
      ep("10.244.7.11", { ready: false, serving: true, terminating: true }),
      ep("10.244.7.12", { ready: false, serving: false, terminating: true }),
      ep("10.244.7.13", { ready: false, serving: true, terminating: true }),
    ];
    const r = render({ service: svc(), endpoints });
    expect(r.serviceChains).toEqual([SVC.cluster, sep("10.244.7.11"), sep("10.244.7.13")]);
    expect(r.text).toContain(
      `-A ${SVC.cluster} -m comment --comment "default/web:http -> 10.244.7.11:8080" -m statistic --mode random --probability 0.5000000000 -j ${sep("10.244.7.11")}`,
    );
    // A ready endpoint wins over terminating ones.
    const mixed = render({ service: svc(), endpoints: [...endpoints, ep("10.244.7.14")] });
    expect(mixed.serviceChains).toEqual([SVC.cluster, sep("10.244.7.14")]);
  });

  it("uses the protocol's match module for UDP and SCTP", () => {
    const dns = svc({
      namespace: "kube-system",
      name: "kube-dns",
      portName: "dns",
      protocol: "UDP",
      port: 53,
    });
    const r = render({ service: dns, endpoints: [ep("10.244.7.11", { port: 53 })] });
    expect(r.text).toContain(
      '-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp -p udp -d 10.96.7.10 --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU',
    );
    expect(r.text).toContain("-m udp -p udp -j DNAT --to-destination 10.244.7.11:53");
  });

  it("drops per-endpoint comments above 1000 endpoints, as upstream's large cluster mode", () => {
    const services = Array.from({ length: 101 }, (_, i) => ({
      service: svc({ name: `s${i}`, clusterIP: `10.96.1.${i + 1}` }),
      endpoints: Array.from({ length: 10 }, (_, j) => ep(`10.244.${i}.${j + 2}`)),
    }));
    const r = renderRules(state(...services));
    expect(r.largeClusterMode).toBe(true);
    const s0 = serviceChainNames("default/s0:http", "TCP").cluster;
    const e0 = endpointChainName("default/s0:http", "TCP", "10.244.0.2:8080");
    expect(r.text).toContain(`-A ${s0} -m statistic --mode random --probability 0.1000000000 -j ${e0}`);
    expect(r.text).toContain(`-A ${e0} -s 10.244.0.2 -j KUBE-MARK-MASQ`);
    expect(r.text).toContain('--comment "default/s0:http cluster IP"');
  });
});

describe("restore input helpers", () => {
  const SAVED = `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:OTHER - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -j OTHER
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-OLD0000000000000 - [0:0]
:KUBE-SEP-OLD0000000000000 - [0:0]
:KUBE-SVC-KEEP000000000000 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE
-A KUBE-SVC-OLD0000000000000 -j KUBE-SEP-OLD0000000000000
COMMIT
`;

  it("finds the missing jumps from the built-in chains", () => {
    const saved = parseIptablesSave(SAVED);
    expect(saved.get("nat")?.chains).toContain("KUBE-SVC-OLD0000000000000");
    const missing = missingJumps(saved).map((j) => `${j.table} ${j.from} ${j.to}`);
    expect(missing).not.toContain("nat PREROUTING KUBE-SERVICES");
    expect(missing).not.toContain("filter FORWARD KUBE-FORWARD");
    expect(missing).toContain("nat OUTPUT KUBE-SERVICES");
    expect(missing).toHaveLength(JUMP_RULES.length - 2);
    expect(jumpRuleLine(JUMP_RULES[0], "-I")).toBe(
      '-I INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    );
    expect(jumpRuleLine(KUBELET_JUMP_RULES[0], "-A")).toBe("-A INPUT -j KUBE-FIREWALL");
    expect(missingJumps(saved, [...JUMP_RULES, ...KUBELET_JUMP_RULES])).toHaveLength(JUMP_RULES.length);
  });

  it("deletes stale service chains and inserts jumps in the same input", () => {
    const rendered = render({ service: svc(), endpoints: THREE });
    const saved = parseIptablesSave(SAVED);
    const stale = staleServiceChains([...(saved.get("nat")?.chains ?? [])], rendered);
    expect(stale).toEqual([
      "KUBE-SEP-OLD0000000000000",
      "KUBE-SVC-KEEP000000000000",
      "KUBE-SVC-OLD0000000000000",
    ]);
    const jumps = JUMP_RULES.filter((j) => j.table === "nat" && j.from === "POSTROUTING");
    const input = restoreInput(rendered, { staleChains: stale, missingJumps: jumps });
    const nat = table(input, "nat");
    expect(nat).toContain(":KUBE-SVC-OLD0000000000000 - [0:0]");
    expect(nat.slice(-4)).toEqual([
      "-X KUBE-SEP-OLD0000000000000",
      "-X KUBE-SVC-KEEP000000000000",
      "-X KUBE-SVC-OLD0000000000000",
      '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]);
    expect(restoreInput(rendered)).toBe(rendered.text);
  });

  it("cleans up every KUBE-* chain and the rules jumping into them, nothing else", () => {
    expect(cleanupInput(parseIptablesSave(SAVED))).toBe(
      [
        "*filter",
        ":KUBE-FORWARD - [0:0]",
        '-D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        "-X KUBE-FORWARD",
        "COMMIT",
        "*nat",
        ":KUBE-SEP-OLD0000000000000 - [0:0]",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-SVC-KEEP000000000000 - [0:0]",
        ":KUBE-SVC-OLD0000000000000 - [0:0]",
        '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-X KUBE-SEP-OLD0000000000000",
        "-X KUBE-SERVICES",
        "-X KUBE-SVC-KEEP000000000000",
        "-X KUBE-SVC-OLD0000000000000",
        "COMMIT",
        "",
      ].join("\n"),
    );
    expect(cleanupInput(parseIptablesSave("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"))).toBe("");
  });
});

describe("staleConntrackCommands", () => {
  const udp = svc({ protocol: "UDP", port: 53, nodePort: 30053, externalIPs: ["192.0.2.9"] });
  const before = state({ service: udp, endpoints: THREE });

  it("flushes the NATed flows of a removed UDP endpoint", () => {
    const after = state({ service: udp, endpoints: THREE.slice(1) });
    expect(staleConntrackCommands(before, after)).toEqual([
      ["-D", "-p", "udp", "--dport", "30053", "--dst-nat", "10.244.7.11"],
      ["-D", "--orig-dst", "10.96.7.10", "--dst-nat", "10.244.7.11", "-p", "udp"],
      ["-D", "--orig-dst", "192.0.2.9", "--dst-nat", "10.244.7.11", "-p", "udp"],
    ]);
    // Nothing changed, or only TCP: nothing to flush.
    expect(staleConntrackCommands(before, before)).toEqual([]);
    const tcp = state({ service: svc(), endpoints: THREE });
    expect(staleConntrackCommands(tcp, state({ service: svc(), endpoints: [] }))).toEqual([]);
  });

  it("flushes a service's flows when it gets its first endpoint or goes away", () => {
    const empty = state({ service: udp, endpoints: [] });
    expect(staleConntrackCommands(empty, before)).toEqual([
      ["-D", "--orig-dst", "10.96.7.10", "-p", "udp"],
      ["-D", "--orig-dst", "192.0.2.9", "-p", "udp"],
      ["-D", "-p", "udp", "--dport", "30053"],
    ]);
    expect(staleConntrackCommands(before, state())).toEqual([
      ["-D", "--orig-dst", "10.96.7.10", "-p", "udp"],
    ]);
  });
});
