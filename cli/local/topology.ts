// Builds the plan's namespaces and links (Mininet's net.py to plan.ts's topo), and removes a
// cluster's namespaces again. One `ip -batch` per namespace: the host's creates the namespaces and
// the host's LoadBalancer link (its only link into the cluster, carrying a route for the pool
// alone), the underlay's builds the bridge and every veth (each node end is created straight
// inside its node namespace), each node's addresses its eth0. Deleting the underlay namespace
// deletes the host's link and route with it.

import { ipBatch, run, runJson } from "../../agent/exec.ts";
import {
  type ClusterPlan,
  clusterOfUnderlayNetns,
  type NodePlan,
  planNamespaces,
  underlayIndexOf,
} from "./plan.ts";

export interface TopologyCommands {
  /** Run in the host namespace. */
  host: string[];
  /** Run in the underlay namespace. */
  underlay: string[];
  /** Run in each node's namespace. */
  nodes: { netns: string; lines: string[] }[];
}

/** The `ip -batch` lines that build the plan's topology, per namespace (pure). */
export function topologyCommands(plan: ClusterPlan): TopologyCommands {
  const u = plan.underlay;
  const underlay = [
    "link set lo up",
    // No STP and no forwarding delay: ports forward as soon as they are up.
    `link add ${u.bridge} mtu ${u.mtu} type bridge stp_state 0 forward_delay 0`,
    `addr add ${u.address}/${u.prefixLength} dev ${u.bridge}`,
  ];
  for (const n of plan.nodes) underlay.push(...nodePortCommands(plan, n));
  const lb = plan.loadBalancer;
  underlay.push(`link set ${lb.bridgePort} master ${u.bridge} up`, `link set ${u.bridge} up`);
  return {
    host: [
      ...planNamespaces(plan).map((ns) => `netns add ${ns}`),
      // The host's link to LoadBalancer addresses: its end holds one /32 and routes the pool only.
      `link add ${lb.hostInterface} mtu ${u.mtu} type veth peer name ${lb.bridgePort} mtu ${u.mtu} netns ${u.netns}`,
      `addr add ${lb.hostAddress}/32 dev ${lb.hostInterface}`,
      `link set ${lb.hostInterface} up`,
      `route add ${lb.pool} dev ${lb.hostInterface} src ${lb.hostAddress}`,
    ],
    underlay,
    nodes: plan.nodes.map((n) => ({ netns: n.netns, lines: nodeAddressCommands(n) })),
  };
}

/** The underlay's side of a node: its veth, the node end created straight in the node's namespace. */
function nodePortCommands(plan: ClusterPlan, n: NodePlan): string[] {
  const u = plan.underlay;
  return [
    `link add ${n.bridgePort} mtu ${u.mtu} type veth peer name ${n.interface} mtu ${u.mtu} netns ${n.netns}`,
    `link set ${n.bridgePort} master ${u.bridge} up`,
  ];
}

function nodeAddressCommands(n: NodePlan): string[] {
  return [
    "link set lo up",
    `addr add ${n.address}/${n.prefixLength} dev ${n.interface}`,
    `link set ${n.interface} up`,
  ];
}

/** Adds one node of the plan to a running cluster's underlay (kemu node add). */
export async function createNodeTopology(plan: ClusterPlan, n: NodePlan): Promise<void> {
  if ((await listNetns()).includes(n.netns)) throw new Error(`namespace ${n.netns} already exists`);
  await ipBatch([`netns add ${n.netns}`]);
  try {
    await ipBatch(nodePortCommands(plan, n), { netns: plan.underlay.netns });
    await ipBatch(nodeAddressCommands(n), { netns: n.netns });
  } catch (e) {
    await removeNamespaces([n.netns]);
    throw e;
  }
}

/** A node's cable pulled or plugged back in: its underlay link (the underlay's end) down or up. */
export async function setNodeLink(plan: ClusterPlan, n: NodePlan, up: boolean): Promise<void> {
  await ipBatch([`link set ${n.bridgePort} ${up ? "up" : "down"}`], { netns: plan.underlay.netns });
}

/** Creates the plan's namespaces, bridge and veths; on failure removes whatever it made. */
export async function createTopology(plan: ClusterPlan): Promise<void> {
  const cmds = topologyCommands(plan);
  const existing = new Set(await listNetns());
  const clash = planNamespaces(plan).filter((ns) => existing.has(ns));
  if (clash.length)
    throw new Error(`namespaces already exist: ${clash.join(", ")} (run 'kemu down --name ${plan.name}')`);
  try {
    await ipBatch(cmds.host);
    await ipBatch(cmds.underlay, { netns: plan.underlay.netns });
    await Promise.all(cmds.nodes.map((n) => ipBatch(n.lines, { netns: n.netns })));
  } catch (e) {
    await removeNamespaces(planNamespaces(plan));
    throw e;
  }
}

/** Names from `ip netns list`. */
export async function listNetns(): Promise<string[]> {
  const list = await runJson<{ name: string }[] | null>(["ip", "-j", "netns", "list"]);
  return (list ?? []).map((e) => e.name);
}

/** Pids of the processes whose network namespace is `netns`. */
export async function netnsPids(netns: string): Promise<number[]> {
  const { stdout } = await run(["ip", "netns", "pids", netns], { allowFail: true });
  return stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/**
 * Removes namespaces the way `kemu down` must: SIGKILL every process still inside (a namespace
 * outlives its mount while a process holds it, and so do its links), wait for them to go, then
 * delete. Missing namespaces are fine: removal is idempotent.
 */
export async function removeNamespaces(names: readonly string[], timeoutMs = 5000): Promise<void> {
  if (names.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = (await Promise.all(names.map(netnsPids))).flat();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (Date.now() > deadline) {
      throw new Error(`processes ${pids.join(", ")} survived SIGKILL in namespaces ${names.join(", ")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const present = new Set(await listNetns());
  const lines = names.filter((n) => present.has(n)).map((n) => `netns del ${n}`);
  if (lines.length) await run(["ip", "-force", "-batch", "-"], { input: `${lines.join("\n")}\n` });
  const left = (await listNetns()).filter((n) => names.includes(n));
  if (left.length) throw new Error(`could not delete namespaces ${left.join(", ")}`);
}

/** Underlay indexes in use on this machine: each `kemu-*-net` namespace's bridge addresses. */
export async function usedUnderlayIndexes(): Promise<{ cluster: string; index: number }[]> {
  const used: { cluster: string; index: number }[] = [];
  for (const ns of await listNetns()) {
    const cluster = clusterOfUnderlayNetns(ns);
    if (!cluster) continue;
    const links = await runJson<{ addr_info?: { family: string; local: string }[] }[]>(
      ["ip", "-j", "-n", ns, "addr", "show"],
      { allowFail: true },
    ).catch(() => []);
    for (const l of links) {
      for (const a of l.addr_info ?? []) {
        const index = a.family === "inet" ? underlayIndexOf(a.local) : undefined;
        if (index !== undefined) used.push({ cluster, index });
      }
    }
  }
  return used;
}
