// `kemu node add|remove|stop|start` for local clusters: node machines as namespaces and agent
// processes, the local counterpart of /kemu/v1/nodes in Docker mode. Add plugs a new node
// namespace into the underlay and starts its agent; remove stops the agent, deletes the Node and
// every namespace of the node; stop is a node failure (the agent killed, the node's underlay link
// down, pods left running but cut off, as on a partitioned machine); start plugs it back in and
// starts the agent, which then reconciles its pods with the API.

import { mkdirSync, rmSync } from "node:fs";
import { deleteObject } from "./api-client.ts";
import {
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_UP_TIMEOUT_MS,
  KEMU_BIN,
  planAccess,
  runningCluster,
  waitFreshReady,
} from "./cluster.ts";
import { type NodePlan, planNode, planWithNode, planWithoutNode } from "./plan.ts";
import { type Started, spawnDetached, stopProcesses } from "./processes.ts";
import { type ClusterState, runDir, writeClusterState } from "./registry.ts";
import { createNodeTopology, listNetns, removeNamespaces, setNodeLink } from "./topology.ts";

export interface NodeOpOptions {
  runDir?: string;
  timeoutMs?: number;
}

function runningState(name: string, opts: NodeOpOptions, what: string): ClusterState {
  return runningCluster(name, opts.runDir ?? runDir(), what);
}

/** Stops a node's agent by its recorded pid and forgets the record. */
async function stopAgent(state: ClusterState, node: NodePlan, graceMs: number): Promise<void> {
  await stopProcesses(
    state.processes.filter((p) => p.name === node.agent.name),
    graceMs,
  );
  state.processes = state.processes.filter((p) => p.name !== node.agent.name);
}

function waitReady(
  state: ClusterState,
  node: NodePlan,
  started: Started[],
  opts: NodeOpOptions,
  since: number,
) {
  return waitFreshReady(state.plan, [node.name], {
    since,
    started,
    timeoutMs: opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS,
    what: node.name,
  });
}

/** Adds the next node-N; resolves once it is Ready. */
export async function addNode(name: string, opts: NodeOpOptions = {}): Promise<NodePlan> {
  const since = Date.now();
  const state = runningState(name, opts, "kemu node add");
  const { plan, node } = planWithNode(state.plan, KEMU_BIN);
  mkdirSync(node.dataDir, { recursive: true, mode: 0o700 });
  await createNodeTopology(plan, node);
  state.plan = plan;
  const s = spawnDetached(node.agent);
  state.processes.push(s.record);
  writeClusterState(state);
  await waitReady(state, node, [s], opts, since);
  return node;
}

/** Removes a node: its agent, its Node object (so its pods are collected) and its namespaces. */
export async function removeNode(name: string, nodeName: string, opts: NodeOpOptions = {}): Promise<void> {
  const state = runningState(name, opts, "kemu node remove");
  const { plan, node } = planWithoutNode(state.plan, nodeName);
  await stopAgent(state, node, DEFAULT_STOP_GRACE_MS);
  await deleteObject(planAccess(state.plan), `/api/v1/nodes/${node.name}`);
  // The node's own namespace and its pods' (named after it), which takes its veth with it.
  const mine = (await listNetns()).filter((ns) => ns === node.netns || ns.startsWith(`${node.netns}-`));
  await removeNamespaces(mine);
  rmSync(node.dataDir, { recursive: true, force: true });
  state.plan = plan;
  writeClusterState(state);
}

/** A node failure: the agent killed at once and the node cut off the underlay. */
export async function stopNode(name: string, nodeName: string, opts: NodeOpOptions = {}): Promise<void> {
  const state = runningState(name, opts, "kemu node stop");
  const node = planNode(state.plan, nodeName);
  await stopAgent(state, node, 0);
  await setNodeLink(state.plan, node, false);
  writeClusterState(state);
}

/** Plugs a stopped node back in and starts its agent; resolves once it is Ready again. */
export async function startNode(name: string, nodeName: string, opts: NodeOpOptions = {}): Promise<void> {
  const since = Date.now();
  const state = runningState(name, opts, "kemu node start");
  const node = planNode(state.plan, nodeName);
  await setNodeLink(state.plan, node, true);
  let started: Started[] = [];
  if (!state.processes.some((p) => p.name === node.agent.name)) {
    const s = spawnDetached(node.agent);
    started = [s];
    state.processes.push(s.record);
    writeClusterState(state);
  }
  await waitReady(state, node, started, opts, since);
}
