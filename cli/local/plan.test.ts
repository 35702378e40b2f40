import { describe, expect, it } from "vitest";
import {
  buildPlan,
  clusterNamespaces,
  interfaceNames,
  namesNest,
  pickUnderlayIndex,
  planNamespaces,
  planProcesses,
  planWithNode,
  planWithoutNode,
  validateClusterInput,
} from "./plan.ts";
import { topologyCommands } from "./topology.ts";

const input = {
  name: "demo",
  nodes: 3,
  overlay: "vxlan" as const,
  podCidr: "10.244.0.0/16",
  dataDir: "/var/lib/kemu/demo",
  kemu: "/opt/kemu/bin/kemu",
  underlayIndex: 7,
  hostPort: 6443,
};

describe("cluster plan", () => {
  it("names every namespace, address and process from the inputs", () => {
    const plan = buildPlan(input);
    expect(planNamespaces(plan)).toEqual([
      "kemu-demo-net",
      "kemu-demo-node-1",
      "kemu-demo-node-2",
      "kemu-demo-node-3",
    ]);
    expect(plan.underlay).toMatchObject({ subnet: "172.30.7.0/24", address: "172.30.7.1", bridge: "br0" });
    expect(plan.nodes.map((n) => n.address)).toEqual(["172.30.7.11", "172.30.7.12", "172.30.7.13"]);
    expect(plan.api.url).toBe("https://172.30.7.1:6443");
    expect(plan.api.hostUrl).toBe("https://127.0.0.1:6443");
    expect(planProcesses(plan).map((p) => p.name)).toEqual([
      "api",
      "forward",
      "agent-node-1",
      "agent-node-2",
      "agent-node-3",
    ]);
    const agent = plan.nodes[1].agent.argv;
    expect(agent.slice(0, 4)).toEqual([
      "nsenter",
      "--net=/run/netns/kemu-demo-node-2",
      "--",
      "/opt/kemu/bin/kemu",
    ]);
    expect(agent).toContain("--overlay");
    expect(agent[agent.indexOf("--node") + 1]).toBe("node-2");
    expect(agent[agent.indexOf("--data-dir") + 1]).toBe("/var/lib/kemu/demo/nodes/node-2");
    const api = plan.api.process.argv;
    expect(api[api.indexOf("--node-cidr-mask-size") + 1]).toBe("24");
    expect(plan.forward.netns).toBeUndefined();
    expect(interfaceNames(plan).every((n) => n.length <= 15)).toBe(true);
  });

  it("passes a smaller node range to the control plane", () => {
    const plan = buildPlan({ ...input, nodeCidrMaskSize: 28 });
    const api = plan.api.process.argv;
    expect(api[api.indexOf("--node-cidr-mask-size") + 1]).toBe("28");
    expect(plan.nodeCidrMaskSize).toBe(28);
  });

  it("builds the topology with one ip -batch per namespace, no default route, and a host route for the LB pool only", () => {
    const plan = buildPlan(input);
    const cmds = topologyCommands(plan);
    expect(cmds.host).toEqual([
      "netns add kemu-demo-net",
      "netns add kemu-demo-node-1",
      "netns add kemu-demo-node-2",
      "netns add kemu-demo-node-3",
      "link add kemu-h7 mtu 1500 type veth peer name h7 mtu 1500 netns kemu-demo-net",
      "addr add 172.30.7.254/32 dev kemu-h7",
      "link set kemu-h7 up",
      "route add 172.30.7.192/27 dev kemu-h7 src 172.30.7.254",
    ]);
    expect(cmds.underlay).toContain(
      "link add k7n2 mtu 1500 type veth peer name eth0 mtu 1500 netns kemu-demo-node-2",
    );
    expect(cmds.underlay).toContain("link set h7 master br0 up");
    const all = [...cmds.host, ...cmds.underlay, ...cmds.nodes.flatMap((n) => n.lines)];
    expect(all.some((l) => /default|masquerade|0\.0\.0\.0/i.test(l))).toBe(false);
    expect(all.filter((l) => l.startsWith("route"))).toEqual([
      "route add 172.30.7.192/27 dev kemu-h7 src 172.30.7.254",
    ]);
  });

  it("passes the proxy mode to agents and the LB pool and service range to the control plane", () => {
    const plan = buildPlan({ ...input, proxyMode: "nftables", lbPool: "192.168.77.0/28" });
    const agent = plan.nodes[0].agent.argv;
    expect(agent[agent.indexOf("--proxy-mode") + 1]).toBe("nftables");
    const api = plan.api.process.argv;
    expect(api[api.indexOf("--load-balancer-pool") + 1]).toBe("192.168.77.0/28");
    expect(api[api.indexOf("--service-cluster-ip-range") + 1]).toBe("10.96.0.0/12");
    expect(buildPlan(input).loadBalancer.pool).toBe("172.30.7.192/27");
    const zoned = buildPlan({ ...input, clusterDomain: "kemu.test", dnsUpstreams: ["192.0.2.53"] });
    const zonedApi = zoned.api.process.argv;
    expect(zonedApi.slice(zonedApi.indexOf("--cluster-dns"))).toEqual([
      "--cluster-dns",
      "--cluster-domain",
      "kemu.test",
      "--dns-upstream",
      "192.0.2.53",
    ]);
    const zonedAgent = zoned.nodes[0].agent.argv;
    expect(zonedAgent[zonedAgent.indexOf("--cluster-domain") + 1]).toBe("kemu.test");
  });

  it.each([
    [{ name: "UP" }, "DNS-1123"],
    [{ nodes: 0 }, "--nodes"],
    [{ nodes: 51 }, "--nodes"],
    [{ overlay: "ipip" }, "--overlay"],
    [{ podCidr: "10.244.0.0/33" }, "--pod-cidr"],
    [{ podCidr: "fd00::/48" }, "only IPv4"],
    [{ podCidr: "172.30.0.0/20" }, "overlaps the node underlay"],
    [{ podCidr: "10.0.0.0/23" }, "holds 2 /24 node ranges"],
    [{ nodeCidrMaskSize: 31 }, "--node-cidr-mask-size"],
    [{ dataDir: "rel" }, "absolute"],
    [{ proxyMode: "ipvs" }, "--proxy-mode must be one of iptables, nftables"],
    [{ clusterDomain: "Cluster_Local" }, "--cluster-domain must be a DNS-1123 subdomain"],
    [{ dnsUpstreams: ["8.8.8.8:99999"] }, "--dns-upstream"],
    [{ lbPool: "10.96.1.0/28" }, "overlaps the service network"],
    [{ lbPool: "10.244.9.0/28" }, "overlaps the pod network"],
    [{ lbPool: "10.1.0.0/8" }, "--lb-pool"],
    [{ lbPool: "nonsense" }, "--lb-pool"],
    [{ dataDir: `/${"x".repeat(120)}` }, "too long"],
  ])("rejects %j", (bad, message) => {
    expect(() => validateClusterInput({ ...input, ...(bad as object) } as never)).toThrow(message);
  });

  it("picks the lowest free underlay and tells nested names apart", () => {
    expect(pickUnderlayIndex([0, 1, 3])).toBe(2);
    expect(namesNest("a", "a-b")).toBe(true);
    expect(namesNest("a", "ab")).toBe(false);
    const all = ["kemu-a-net", "kemu-a-node-1", "kemu-a-b-net", "kemu-a-b-node-1", "kemu-ab-net"];
    expect(clusterNamespaces("a", all, ["a-b"])).toEqual(["kemu-a-net", "kemu-a-node-1"]);
  });
});

describe("node plans for kemu node add/remove", () => {
  it("adds the next node after the highest index, with an agent like the others'", () => {
    const plan = buildPlan(input);
    const { plan: grown, node } = planWithNode(plan, input.kemu);
    expect(node).toMatchObject({
      name: "node-4",
      index: 4,
      netns: "kemu-demo-node-4",
      address: "172.30.7.14",
    });
    const argv = (n: { agent: { argv: string[] } }) => n.agent.argv.join(" ");
    expect(argv(node)).toBe(argv(plan.nodes[2]).replaceAll("node-3", "node-4"));
    expect(grown.nodes.map((n) => n.name)).toEqual(["node-1", "node-2", "node-3", "node-4"]);
    expect(plan.nodes).toHaveLength(3); // the input plan is left alone
    // Removing node-2 leaves a gap; the next node still takes a fresh index.
    const { plan: shrunk } = planWithoutNode(grown, "node-2");
    expect(planWithNode(shrunk, input.kemu).node.name).toBe("node-5");
  });

  it("refuses unknown nodes, the last node, and a pod CIDR with no room left", () => {
    const plan = buildPlan(input);
    expect(() => planWithoutNode(plan, "node-9")).toThrow(
      'has no node "node-9"; its nodes: node-1, node-2, node-3',
    );
    const one = buildPlan({ ...input, nodes: 1 });
    expect(() => planWithoutNode(one, "node-1")).toThrow("only node");
    // A /23 holds two /24 podCIDRs.
    const tight = buildPlan({ ...input, nodes: 2, podCidr: "10.244.0.0/23" });
    expect(() => planWithNode(tight, input.kemu)).toThrow();
  });

  it("topology for an added node matches what kemu up would have built for it", () => {
    const { plan: grown, node } = planWithNode(buildPlan(input), input.kemu);
    const full = topologyCommands(grown);
    expect(full.underlay).toContain(
      `link add ${node.bridgePort} mtu 1500 type veth peer name eth0 mtu 1500 netns ${node.netns}`,
    );
    expect(full.nodes.at(-1)).toEqual({
      netns: node.netns,
      lines: ["link set lo up", `addr add ${node.address}/24 dev eth0`, "link set eth0 up"],
    });
  });
});
