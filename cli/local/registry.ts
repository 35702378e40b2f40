// Where clusters are found: a registry entry RUN/clusters/NAME.json (RUN is /run/kemu, or
// $KEMU_RUN_DIR) points at the cluster's data dir, whose cluster.json holds the plan and the pids
// of its background processes. /run is a tmpfs, so after a reboot (when every namespace and
// process is gone anyway) the registry is empty while the data dirs keep their state.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterPlan } from "./plan.ts";
import type { ProcessRecord } from "./processes.ts";

export const DEFAULT_RUN_DIR = "/run/kemu";

export interface RegistryEntry {
  name: string;
  dataDir: string;
}

export interface ClusterState {
  plan: ClusterPlan;
  /** `starting` until every node was Ready once; `stopped` after `kemu down`. */
  phase: "starting" | "running" | "stopped";
  createdAt: string;
  processes: ProcessRecord[];
}

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KEMU_RUN_DIR || DEFAULT_RUN_DIR;
}

function entryPath(run: string, name: string): string {
  return join(run, "clusters", `${name}.json`);
}

/** Claims NAME atomically (O_EXCL), so two `kemu up --name NAME` cannot both proceed. */
export function claimRegistryEntry(run: string, entry: RegistryEntry): void {
  mkdirSync(join(run, "clusters"), { recursive: true, mode: 0o755 });
  try {
    writeFileSync(entryPath(run, entry.name), `${JSON.stringify(entry, null, 2)}\n`, { flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const existing = readRegistryEntry(run, entry.name);
    throw new Error(
      `cluster "${entry.name}" already exists (data dir ${existing?.dataDir ?? "unknown"}); ` +
        `run 'kemu down --name ${entry.name}' first`,
    );
  }
}

export function readRegistryEntry(run: string, name: string): RegistryEntry | undefined {
  try {
    return JSON.parse(readFileSync(entryPath(run, name), "utf8")) as RegistryEntry;
  } catch {
    return undefined;
  }
}

export function removeRegistryEntry(run: string, name: string): void {
  rmSync(entryPath(run, name), { force: true });
}

export function listRegistryEntries(run: string): RegistryEntry[] {
  const dir = join(run, "clusters");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => readRegistryEntry(run, f.slice(0, -".json".length)))
    .filter((e): e is RegistryEntry => e !== undefined);
}

export function stateFile(dataDir: string): string {
  return join(dataDir, "cluster.json");
}

export function readClusterState(dataDir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dataDir), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Written whole and renamed into place, so a reader never sees half a file. */
export function writeClusterState(state: ClusterState): void {
  const file = stateFile(state.plan.dataDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
