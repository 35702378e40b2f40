// What the cluster benchmarks share: running a command, percentiles, a local cluster of their own
// (its own name, run dir and data dir, an API client, always torn down), and printing figures.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../../agent/api-client.ts";
import type { ClusterPlan } from "../../cli/local/plan.ts";
import type { ClusterState } from "../../cli/local/registry.ts";

export const KEMU = new URL("../../bin/kemu", import.meta.url).pathname;

export interface CommandResult {
  code: number;
  /** stdout then stderr. */
  out: string;
  ms: number;
}

/** Runs argv (no shell) to completion; never rejects. */
export function runCommand(argv: string[], env = process.env, input?: string): Promise<CommandResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { env, maxBuffer: 512 << 20, timeout: 600_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? Number((err as any).code) || 1 : 0,
          out: stdout + stderr,
          ms: performance.now() - t0,
        }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** The p-th percentile of an ascending list (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BenchCluster {
  name: string;
  dataDir: string;
  /** KEMU_RUN_DIR and KUBECONFIG of this cluster. */
  env: NodeJS.ProcessEnv;
  plan: ClusterPlan;
  client: ApiClient;
  /** How long `kemu up` took. */
  upMs: number;
  /** A pod's network namespace on its node. */
  podNetns(pod: { spec: { nodeName: string }; metadata: { uid: string } }): string;
  /** `kemu down`; returns how long it took. */
  down(): Promise<number>;
}

/** `kemu up` of a cluster only this benchmark uses; throws (after tearing down) if it fails. */
export async function upBenchCluster(prefix: string, flags: string[]): Promise<BenchCluster> {
  const name = `${prefix}${Math.random().toString(36).slice(2, 6)}`;
  const work = mkdtempSync(join(tmpdir(), `kemu-${prefix}-`));
  const dataDir = join(work, "data");
  const env = { ...process.env, KEMU_RUN_DIR: join(work, "run"), KUBECONFIG: join(dataDir, "kubeconfig") };
  const down = async () => {
    const r = await runCommand([KEMU, "down", "--name", name, "--data-dir", dataDir], env);
    rmSync(work, { recursive: true, force: true });
    return r.ms;
  };
  const up = await runCommand([KEMU, "up", "--name", name, "--data-dir", dataDir, ...flags], env);
  if (up.code !== 0) {
    await down();
    throw new Error(`kemu up failed:\n${up.out}`);
  }
  const { plan } = JSON.parse(readFileSync(join(dataDir, "cluster.json"), "utf8")) as ClusterState;
  const client = new ApiClient({
    url: plan.api.hostUrl,
    token: readFileSync(plan.api.tokenFile, "utf8").trim(),
    ca: readFileSync(plan.api.caFile, "utf8"),
  });
  return {
    name,
    dataDir,
    env,
    plan,
    client,
    upMs: up.ms,
    podNetns: (pod) => `kemu-${name}-${pod.spec.nodeName}-p-${pod.metadata.uid.slice(0, 8)}`,
    async down() {
      client.close();
      return down();
    },
  };
}

/** Prints "label  value" lines under a title, aligned. */
export function printFigures(title: string, figures: [string, string][]): void {
  const width = Math.max(...figures.map(([k]) => k.length));
  console.log(`\n${title} (this machine)\n`);
  for (const [k, v] of figures) console.log(`  ${k.padEnd(width)}  ${v}`);
}
