// `kemu node add|remove|stop|start` for local clusters: node machines as namespaces and agent
// processes, the local counterpart of /kemu/v1/nodes in Docker mode. Add plugs a new node
// namespace into the underlay and starts its agent; remove stops the agent, deletes the Node and
// every namespace of the node; stop is a node failure (the agent killed, the node's underlay link
// down, pods left running but cut off, as on a partitioned machine); start plugs it back in and
// starts the agent, which then reconciles its pods with the API.

import { mkdirSync, rmSync } from "node:fs";
import type { NodeObject } from "../../emulator/types.ts";
import { deleteObject, getJson } from "./api-client.ts";
import {
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_UP_TIMEOUT_MS,
  KEMU_BIN,
  planAccess,
  requireRoot,
  waitFor,
} from "./cluster.ts";
import { type NodePlan, planNode, planWithNode, planWithoutNode, validateClusterName } from "./plan.ts";
import { type Started, spawnDetached, stopProcesses } from "./processes.ts";
import {
  type ClusterState,
  readClusterState,
  readRegistryEntry,
  runDir,
  writeClusterState,
} from "./registry.ts";
import { createNodeTopology, listNetns, removeNamespaces, setNodeLink } from "./topology.ts";

export interface NodeOpOptions {
  runDir?: string;
  timeoutMs?: number;
}

function runningState(name: string, opts: NodeOpOptions, what: string): ClusterState {
  validateClusterName(name);
  requireRoot(what);
  const entry = readRegistryEntry(opts.runDir ?? runDir(), name);
  const state = entry ? readClusterState(entry.dataDir) : undefined;
  if (!entry || !state || state.phase === "stopped") {
    throw new Error(`no cluster "${name}" is running here; start one with 'kemu up'`);
  }
  return state;
}

/** Waits until `node` posts Ready after `since` (fails fast if a `started` process exits). */
async function waitReady(
  state: ClusterState,
  node: string,
  started: Started[],
  timeoutMs: number,
  since: number,
): Promise<void> {
  const access = planAccess(state.plan);
  // Heartbeats carry whole seconds.
  const after = Math.floor(since / 1000) * 1000;
  await waitFor(
    { deadline: Date.now() + timeoutMs, timeoutMs, started },
    async () => {
      const n = await getJson<NodeObject>(access, `/api/v1/nodes/${node}`, 1000).catch(() => undefined);
      const ready = n?.status?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" && Date.parse(ready.lastHeartbeatTime ?? "") >= after
        ? true
        : undefined;
    },
    (last, seconds) =>
      `${node} not Ready within ${seconds}s${last ? ` (last error: ${last.message})` : ""}; see ${state.plan.files.logs}/agent-${node}.log`,
  );
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
  await waitReady(state, node.name, [s], opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS, since);
  return node;
}

/** Removes a node: its agent, its Node object (so its pods are collected) and its namespaces. */
export async function removeNode(name: string, nodeName: string, opts: NodeOpOptions = {}): Promise<void> {
  const state = runningState(name, opts, "kemu node remove");
  const { plan, node } = planWithoutNode(state.plan, nodeName);
  await stopProcesses(
    state.processes.filter((p) => p.name === node.agent.name),
    DEFAULT_STOP_GRACE_MS,
  );
  state.processes = state.processes.filter((p) => p.name !== node.agent.name);
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
  await stopProcesses(
    state.processes.filter((p) => p.name === node.agent.name),
    0,
  );
  state.processes = state.processes.filter((p) => p.name !== node.agent.name);
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
  await waitReady(state, node.name, started, opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS, since);
}
