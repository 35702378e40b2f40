// The local cluster's lifecycle: up (plan → namespaces → control plane → agents → all Ready),
// down (processes by record, then every namespace with the cluster's prefix), and status. Each
// step only ever touches what the plan or the cluster's prefix names, so clusters with different
// names coexist and a half-made cluster is removed as cleanly as a whole one.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run as runCommand, runJson } from "../../agent/exec.ts";
import { kubeconfig } from "../../api/credentials.ts";
import { nodeNumber } from "../../emulator/node-names.ts";
import type { NodeObject } from "../../emulator/types.ts";
import { type ApiAccess, getJson, type NodeSummary, notReadyNodes, summarizeNode } from "./api-client.ts";
import {
  API_PORT,
  buildPlan,
  type ClusterInput,
  type ClusterPlan,
  clusterNamespaces,
  clusterOfUnderlayNetns,
  DEFAULT_DATA_ROOT,
  namesNest,
  pickUnderlayIndex,
  planProcesses,
  validateClusterInput,
  validateClusterName,
} from "./plan.ts";
import {
  isRunning,
  type ProcessRecord,
  type Started,
  spawnDetached,
  stopProcesses,
  tailFile,
} from "./processes.ts";
import {
  type ClusterState,
  claimRegistryEntry,
  listRegistryEntries,
  readClusterState,
  readRegistryEntry,
  removeRegistryEntry,
  runDir,
  writeClusterState,
} from "./registry.ts";
import { createTopology, listNetns, removeNamespaces, usedUnderlayIndexes } from "./topology.ts";

/** This checkout's `kemu` launcher: what every background process runs. */
export const KEMU_BIN = fileURLToPath(new URL("../../bin/kemu", import.meta.url));
export const DEFAULT_UP_TIMEOUT_MS = 60_000;
/** How long `kemu down` waits after SIGTERM before SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 5000;

/** How the host reaches the cluster's API: the forwarder's URL and the files the API wrote. */
export function planAccess(plan: ClusterPlan): ApiAccess {
  return {
    url: plan.api.hostUrl,
    caPem: readFileSync(plan.api.caFile, "utf8"),
    token: readFileSync(plan.api.tokenFile, "utf8").trim(),
  };
}

export function defaultDataDir(name: string): string {
  return join(DEFAULT_DATA_ROOT, name);
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} creates network namespaces and must run as root`);
}

/** Cluster names this machine knows of: registered ones and any with an underlay namespace. */
async function knownClusters(run: string): Promise<{ registered: string[]; withNamespaces: string[] }> {
  return {
    registered: listRegistryEntries(run).map((e) => e.name),
    withNamespaces: (await listNetns()).map(clusterOfUnderlayNetns).filter((n): n is string => !!n),
  };
}

/** 6443 when free on the host's loopback, else any free port. */
export async function pickHostPort(preferred = API_PORT): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(undefined));
      srv.listen(port, "127.0.0.1", () => {
        const got = (srv.address() as { port: number }).port;
        srv.close(() => resolve(got));
      });
    });
  const port = (await tryListen(preferred)) ?? (await tryListen(0));
  if (!port) throw new Error("no free TCP port on 127.0.0.1 for the API forwarder");
  return port;
}

export interface UpOptions extends Omit<ClusterInput, "dataDir"> {
  dataDir?: string;
  runDir?: string;
  timeoutMs?: number;
  /** Progress lines ("creating namespaces", ...). */
  progress?: (line: string) => void;
  /** Aborting (e.g. on Ctrl-C) stops the wait and tears down what was made. */
  signal?: AbortSignal;
}

export interface UpResult {
  plan: ClusterPlan;
  nodes: NodeSummary[];
}

export async function upCluster(opts: UpOptions): Promise<UpResult> {
  const dataDir = opts.dataDir ?? defaultDataDir(opts.name);
  const input: ClusterInput = {
    name: opts.name,
    nodes: opts.nodes,
    overlay: opts.overlay,
    podCidr: opts.podCidr,
    dataDir,
    ...(opts.nodeCidrMaskSize !== undefined ? { nodeCidrMaskSize: opts.nodeCidrMaskSize } : {}),
    ...(opts.proxyMode !== undefined ? { proxyMode: opts.proxyMode } : {}),
    ...(opts.lbPool !== undefined ? { lbPool: opts.lbPool } : {}),
    ...(opts.dnsUpstreams !== undefined ? { dnsUpstreams: opts.dnsUpstreams } : {}),
    ...(opts.clusterDomain !== undefined ? { clusterDomain: opts.clusterDomain } : {}),
  };
  validateClusterInput(input);
  requireRoot("kemu up");
  const run = opts.runDir ?? runDir();
  const progress = opts.progress ?? (() => {});

  const known = await knownClusters(run);
  if (known.registered.includes(opts.name)) {
    const entry = readRegistryEntry(run, opts.name);
    throw new Error(
      `cluster "${opts.name}" already exists (data dir ${entry?.dataDir}); run 'kemu down --name ${opts.name}' first`,
    );
  }
  if (known.withNamespaces.includes(opts.name)) {
    throw new Error(
      `namespaces of a cluster "${opts.name}" exist but it is not registered (left from a crash?); ` +
        `run 'kemu down --name ${opts.name}' first`,
    );
  }
  const nesting = [...known.registered, ...known.withNamespaces].find((o) => namesNest(o, opts.name));
  if (nesting) {
    throw new Error(
      `cluster name "${opts.name}" nests with existing cluster "${nesting}" (one's namespace prefix contains the other's); pick another name`,
    );
  }

  const used = new Set((await usedUnderlayIndexes()).map((u) => u.index));
  for (const e of listRegistryEntries(run)) {
    const index = readClusterState(e.dataDir)?.plan.underlay.index;
    if (index !== undefined) used.add(index);
  }
  // The host's LoadBalancer links (kemu-hK) hold the index too, even for unregistered clusters.
  for (const l of await runJson<{ ifname: string }[]>(["ip", "-j", "link", "show"])) {
    const m = /^kemu-h(\d+)$/.exec(l.ifname);
    if (m) used.add(Number(m[1]));
  }
  let planInput = { ...input, kemu: KEMU_BIN, underlayIndex: pickUnderlayIndex(used) };
  let plan = buildPlan({ ...planInput, hostPort: await pickHostPort() });

  claimRegistryEntry(run, { name: plan.name, dataDir: plan.dataDir });
  const state: ClusterState = {
    plan,
    phase: "starting",
    createdAt: new Date().toISOString(),
    processes: [],
  };
  const started: Started[] = [];
  const start = (proc: (typeof plan)["forward"]) => {
    const s = spawnDetached(proc);
    started.push(s);
    state.processes.push(s.record);
    writeClusterState(state);
  };
  try {
    for (const dir of [
      plan.dataDir,
      plan.files.logs,
      plan.api.dataDir,
      ...plan.nodes.map((n) => n.dataDir),
    ]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    writeClusterState(state);
    progress(
      `creating ${plan.nodes.length} node namespaces on underlay ${plan.underlay.subnet} (${plan.underlay.netns})`,
    );
    // A `kemu up` running at the same moment may take the same underlay index (its host link
    // then exists already): move on to the next free one.
    for (let attempt = 1; ; attempt++) {
      try {
        await createTopology(plan);
        break;
      } catch (e) {
        if (attempt === 5 || !/File exists/.test((e as Error).message)) throw e;
        used.add(plan.underlay.index);
        planInput = { ...planInput, underlayIndex: pickUnderlayIndex(used) };
        plan = buildPlan({ ...planInput, hostPort: plan.api.hostPort });
        state.plan = plan;
        writeClusterState(state);
      }
    }

    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS);
    const waitOpts = {
      deadline,
      started,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS,
    };
    progress(`starting the control plane at ${plan.api.url} (host: ${plan.api.hostUrl})`);
    start(plan.api.process);
    // Another `kemu up` may take the same free port between our check and the forwarder's bind:
    // then the forwarder exits at once and we move to another port.
    for (let attempt = 1; ; attempt++) {
      start(plan.forward);
      const outcome = await forwarderOutcome(started.at(-1)!, plan.api.hostPort);
      if (outcome === "listening") break;
      if (attempt === 3) {
        throw new Error(`the API forwarder could not listen on 127.0.0.1: ${tailFile(plan.forward.log, 3)}`);
      }
      started.pop();
      state.processes.pop();
      plan = buildPlan({ ...planInput, hostPort: await pickHostPort(0) });
      state.plan = plan;
      writeClusterState(state);
    }
    let access: ApiAccess | undefined;
    await waitFor(
      waitOpts,
      async () => {
        access = planAccess(plan);
        await getJson(access, "/api/v1/nodes", 1000);
        return true;
      },
      (last, seconds) =>
        `the API did not answer at ${plan.api.hostUrl} within ${seconds}s` +
        `${last ? ` (last error: ${last.message})` : ""}; see ${plan.api.process.log} and ${plan.forward.log}`,
    );
    writeFileSync(
      plan.files.kubeconfig,
      kubeconfig(plan.api.hostUrl, access!.token, access!.caPem, plan.name),
      {
        mode: 0o600,
      },
    );
    writeFileSync(
      plan.files.nodeKubeconfig,
      kubeconfig(plan.api.url, access!.token, access!.caPem, plan.name),
      {
        mode: 0o600,
      },
    );

    progress(`starting ${plan.nodes.length} agents (${plan.overlay} overlay, pods ${plan.podCidr})`);
    for (const n of plan.nodes) start(n.agent);
    const expected = plan.nodes.map((n) => n.name);
    let lastMissing: string[] = expected.map((n) => `${n} (not registered)`);
    const nodes = await waitFor(
      waitOpts,
      async () => {
        const list = await getJson<{ items: NodeObject[] }>(access!, "/api/v1/nodes", 1000);
        const summaries = list.items.map(summarizeNode);
        lastMissing = notReadyNodes(expected, summaries);
        return lastMissing.length === 0 ? summaries.filter((s) => expected.includes(s.name)) : undefined;
      },
      (_last, seconds) =>
        `nodes not Ready after ${seconds}s: ${lastMissing.join(", ")}; ` +
        `see the agents' logs in ${plan.files.logs} (agent-NODE.log)`,
    );
    state.phase = "running";
    writeClusterState(state);
    return { plan, nodes };
  } catch (e) {
    progress("failed; removing everything this run made");
    try {
      await teardown(plan.name, run, state.processes, 2000, plan.loadBalancer.hostInterface);
      state.processes = [];
      state.phase = "stopped";
      writeClusterState(state);
    } catch (cleanup) {
      (e as Error).message +=
        `\n(cleanup also failed: ${(cleanup as Error).message}; run 'kemu down --name ${plan.name}')`;
      throw e;
    }
    removeRegistryEntry(run, plan.name);
    throw e;
  }
}

/** Waits until the forwarder reports it is listening (its first log line), or exits. */
async function forwarderOutcome(s: Started, port: number): Promise<"listening" | "exited"> {
  const ready = `kemu forward: 127.0.0.1:${port} ->`;
  for (let i = 0; i < 300; i++) {
    if (s.exit) return "exited";
    if (existsSync(s.log) && readFileSync(s.log, "utf8").includes(ready)) return "listening";
    await new Promise((r) => setTimeout(r, 20));
  }
  return s.exit ? "exited" : "listening";
}

interface WaitOptions {
  deadline: number;
  timeoutMs: number;
  started: Started[];
  signal?: AbortSignal;
}

/** Polls `check` until it returns a value; fails fast when a started process exits or on abort. */
async function waitFor<T>(
  o: WaitOptions,
  check: () => Promise<T | undefined>,
  timeoutMessage: (last: Error | undefined, seconds: number) => string,
): Promise<T> {
  let last: Error | undefined;
  for (;;) {
    if (o.signal?.aborted) throw new Error("interrupted");
    const dead = o.started.find((s) => s.exit);
    if (dead) {
      const how = dead.exit!.signal ? `signal ${dead.exit!.signal}` : `code ${dead.exit!.code}`;
      throw new Error(
        `${dead.record.name} exited (${how}) before the cluster was ready; last lines of ${dead.log}:\n${tailFile(dead.log)}`,
      );
    }
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e as Error;
    }
    if (Date.now() > o.deadline) throw new Error(timeoutMessage(last, Math.round(o.timeoutMs / 1000)));
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the recorded processes (agents first) and removes every namespace of the cluster. */
async function teardown(
  name: string,
  run: string,
  processes: readonly ProcessRecord[],
  graceMs: number,
  hostLink?: string,
): Promise<{ killed: string[]; namespaces: string[] }> {
  const agents = processes.filter((p) => p.name.startsWith("agent-"));
  const killed = await stopProcesses(agents, graceMs);
  killed.push(
    ...(await stopProcesses(
      processes.filter((p) => !agents.includes(p)),
      graceMs,
    )),
  );
  const known = await knownClusters(run);
  const others = [...known.registered, ...known.withNamespaces].filter((n) => n !== name);
  const namespaces = clusterNamespaces(name, await listNetns(), others);
  // The host's LoadBalancer link would go with the underlay namespace, but only once the kernel
  // has finished tearing that down; deleting it first makes `kemu down` leave nothing when it returns.
  if (hostLink && namespaces.length) await runCommand(["ip", "link", "del", hostLink], { allowFail: true });
  await removeNamespaces(namespaces);
  return { killed, namespaces };
}

export interface DownOptions {
  runDir?: string;
  /** Where to look for cluster.json when the cluster is not registered (default /var/lib/kemu/NAME). */
  dataDir?: string;
  /** Also delete the data dir. */
  purge?: boolean;
  graceMs?: number;
}

export interface DownResult {
  /** Whether anything of the cluster was found at all. */
  found: boolean;
  dataDir: string;
  stopped: string[];
  /** Processes that needed SIGKILL after the grace period. */
  killed: string[];
  namespaces: string[];
  purged: boolean;
}

/** Removes everything of cluster `name`; safe to repeat and after processes died on their own. */
export async function downCluster(name: string, opts: DownOptions = {}): Promise<DownResult> {
  validateClusterName(name);
  requireRoot("kemu down");
  const run = opts.runDir ?? runDir();
  const entry = readRegistryEntry(run, name);
  const dataDir = entry?.dataDir ?? opts.dataDir ?? defaultDataDir(name);
  const loaded = readClusterState(dataDir);
  const state = loaded?.plan.name === name ? loaded : undefined;
  const processes = state?.processes ?? [];
  const stopped = processes.filter(isRunning).map((p) => p.name);
  const { killed, namespaces } = await teardown(
    name,
    run,
    processes,
    opts.graceMs ?? DEFAULT_STOP_GRACE_MS,
    state?.plan.loadBalancer?.hostInterface,
  );
  if (state) {
    state.processes = [];
    state.phase = "stopped";
    writeClusterState(state);
  }
  removeRegistryEntry(run, name);
  let purged = false;
  // Only a directory that holds this cluster's state is deleted, never whatever a path points at.
  if (opts.purge && state) {
    rmSync(dataDir, { recursive: true, force: true });
    purged = true;
  }
  return {
    found: !!entry || !!state || namespaces.length > 0,
    dataDir,
    stopped,
    killed,
    namespaces,
    purged,
  };
}

export interface ProcessStatus extends ProcessRecord {
  running: boolean;
}

export interface ClusterStatus {
  name: string;
  dataDir: string;
  phase?: ClusterState["phase"];
  apiUrl?: string;
  kubeconfig?: string;
  processes: ProcessStatus[];
  /** Present when the API answered. */
  nodes?: NodeSummary[];
  apiError?: string;
}

export interface StatusResult {
  clusters: ClusterStatus[];
  /** Clusters with namespaces on this machine but no registry entry (remove with `kemu down`). */
  unregistered: string[];
}

export async function clusterStatuses(opts: { runDir?: string; name?: string } = {}): Promise<StatusResult> {
  const run = opts.runDir ?? runDir();
  let entries = listRegistryEntries(run);
  if (opts.name) entries = entries.filter((e) => e.name === opts.name);
  const clusters = await Promise.all(
    entries.map(async (entry): Promise<ClusterStatus> => {
      const state = readClusterState(entry.dataDir);
      const status: ClusterStatus = {
        name: entry.name,
        dataDir: entry.dataDir,
        processes: (state?.processes ?? []).map((p) => ({ ...p, running: isRunning(p) })),
      };
      if (!state) {
        status.apiError = `no cluster.json in ${entry.dataDir}`;
        return status;
      }
      status.phase = state.phase;
      status.apiUrl = state.plan.api.hostUrl;
      status.kubeconfig = state.plan.files.kubeconfig;
      try {
        const access = planAccess(state.plan);
        const list = await getJson<{ items: NodeObject[] }>(access, "/api/v1/nodes", 2000);
        status.nodes = list.items.map(summarizeNode);
      } catch (e) {
        status.apiError = (e as Error).message;
      }
      return status;
    }),
  );
  const known = await knownClusters(run);
  const unregistered = known.withNamespaces.filter(
    (n) => !known.registered.includes(n) && (!opts.name || n === opts.name),
  );
  return { clusters, unregistered };
}

/** No local cluster of that name runs here (a Docker-mode cluster may carry the name). */
export class NoSuchClusterError extends Error {}

/** The namespace of NODE in cluster NAME, with a clear error naming the nodes there are. */
export async function nodeNamespace(name: string, node: string): Promise<string> {
  validateClusterName(name);
  const prefix = `kemu-${name}-`;
  const all = await listNetns();
  const nodes = all
    .filter((ns) => ns.startsWith(prefix) && /^node-\d+$/.test(ns.slice(prefix.length)))
    .map((ns) => ns.slice(prefix.length))
    .sort((a, b) => nodeNumber(a) - nodeNumber(b));
  if (nodes.length === 0) {
    throw new NoSuchClusterError(
      `no cluster "${name}" is running here (no namespaces ${prefix}node-*); start one with 'kemu up'`,
    );
  }
  if (!nodes.includes(node)) {
    throw new Error(`cluster "${name}" has no node "${node}"; its nodes: ${nodes.join(", ")}`);
  }
  return `${prefix}${node}`;
}

export interface RestartOptions {
  runDir?: string;
  graceMs?: number;
  timeoutMs?: number;
}

/**
 * Restarts background processes of a running cluster by their plan (as `systemctl restart
 * kubelet` would on a real node): `api`, `forward`, or a node name for its agent. The old process,
 * if still alive, is stopped by its recorded pid first. Resolves once the API answers again and,
 * for agents, once the node has posted a fresh status.
 */
export async function restartComponents(
  name: string,
  components: readonly string[],
  opts: RestartOptions = {},
): Promise<string[]> {
  const state = runningCluster(name, opts.runDir ?? runDir(), "kemu restart");
  const { plan } = state;
  const byName = new Map(planProcesses(plan).map((p) => [p.name, p]));
  const wanted = components.map((c) => {
    const proc = byName.get(c) ?? byName.get(`agent-${c}`);
    if (!proc) {
      const choices = ["api", "forward", ...plan.nodes.map((n) => n.name)].join(", ");
      throw new Error(`cluster "${name}" has no component "${c}"; choose from: ${choices}`);
    }
    return proc;
  });
  const since = Date.now();
  const started: Started[] = [];
  for (const proc of wanted) {
    const old = state.processes.filter((p) => p.name === proc.name);
    await stopProcesses(old, opts.graceMs ?? DEFAULT_STOP_GRACE_MS);
    const s = spawnDetached(proc);
    started.push(s);
    state.processes = [...state.processes.filter((p) => p.name !== proc.name), s.record];
    writeClusterState(state);
  }
  const agents = wanted.filter((p) => p.name.startsWith("agent-")).map((p) => p.name.slice("agent-".length));
  await waitFreshReady(plan, agents, {
    since,
    started,
    timeoutMs: opts.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS,
    what: wanted.map((p) => p.name).join(", "),
  });
  return wanted.map((p) => p.name);
}

/** The state of running cluster `name` (for a command `what` that needs root). */
export function runningCluster(name: string, run: string, what: string): ClusterState {
  validateClusterName(name);
  requireRoot(what);
  const entry = readRegistryEntry(run, name);
  const state = entry ? readClusterState(entry.dataDir) : undefined;
  if (!entry || !state || state.phase === "stopped") {
    throw new Error(`no cluster "${name}" is running here; start one with 'kemu up'`);
  }
  return state;
}

/**
 * Waits until the API answers and each of `nodes` has posted Ready since `since` (a restarted or
 * new agent, not the Node's last status before); fails fast when a `started` process exits.
 */
export async function waitFreshReady(
  plan: ClusterPlan,
  nodes: readonly string[],
  o: { since: number; started: Started[]; timeoutMs: number; what: string },
): Promise<void> {
  const access = planAccess(plan);
  // Heartbeats carry whole seconds.
  const after = Math.floor(o.since / 1000) * 1000;
  const fresh = (n: NodeObject) => {
    const ready = n.status?.conditions?.find((c) => c.type === "Ready");
    return ready?.status === "True" && Date.parse(ready.lastHeartbeatTime ?? "") >= after;
  };
  await waitFor(
    { deadline: Date.now() + o.timeoutMs, timeoutMs: o.timeoutMs, started: o.started },
    async () => {
      const list = await getJson<{ items: NodeObject[] }>(access, "/api/v1/nodes", 1000);
      return nodes.every((a) => list.items.some((n) => n.metadata.name === a && fresh(n))) ? true : undefined;
    },
    (last, seconds) =>
      `${o.what} not back within ${seconds}s` +
      `${last ? ` (last error: ${last.message})` : ""}; see the logs in ${plan.files.logs}`,
  );
}
