// The shared harness of the tests that drive a real kubectl against a kemu control plane: finding
// kubectl on PATH (it is required, so a missing kubectl fails the file instead of skipping it), a
// private work dir and environment for it, bounded runs, and a parser for its table output.

import { execFile } from "node:child_process";
import { accessSync, constants, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness.ts";

/** The first executable `cmd` in a directory of PATH. */
export function findOnPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/**
 * A kubectl table (`get` output) as rows keyed by header. Cells are cut at the header's column
 * starts (kubectl aligns columns with a tabwriter), so empty cells and headers with spaces
 * ("NOMINATED NODE", "LAST SEEN") parse correctly.
 */
export function parseTable(text: string): { headers: string[]; rows: Record<string, string>[] } {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return { headers: [], rows: [] };
  const header = lines[0];
  const starts: number[] = [];
  const headers: string[] = [];
  const re = /\S+(?: \S+)*/g;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    starts.push(m.index);
    headers.push(m[0]);
  }
  const rows = lines.slice(1).map((line) => {
    const row: Record<string, string> = {};
    headers.forEach((h, i) => {
      row[h] = line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim();
    });
    return row;
  });
  return { headers, rows };
}

/** A kubectl run that finished, successfully or not. */
export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Kubectl {
  /** The kubectl binary found on PATH. */
  path: string;
  /** A private temp dir: kubectl's HOME and cache, and room for manifests. */
  work: string;
  /** kubectl's environment: KUBECONFIG of the cluster, HOME in `work`, no KUBECTL_* variables. */
  env: NodeJS.ProcessEnv;
  /** Runs kubectl; rejects only when it did not finish (timeout, could not start). */
  run(args: string[]): Promise<KubectlRun>;
  /** kubectl that must succeed; returns stdout. */
  ok(args: string[]): Promise<string>;
  /** Removes the work dir. */
  cleanup(): void;
}

/**
 * kubectl for the cluster of `kubeconfig`. Throws when kubectl is not on PATH. Every run is bounded
 * by `timeoutMs`, so a hang fails the test with kubectl's own output.
 */
export function kubectlFor(kubeconfig: string, workPrefix: string, timeoutMs: number): Kubectl {
  const found = findOnPath("kubectl");
  if (!found) {
    throw new Error(
      "kubectl not found on PATH: this test needs a real kubectl (CI installs Debian's kubernetes-client " +
        "through scripts/setup.sh; locally run `apt-get install kubernetes-client` or put kubectl on PATH)",
    );
  }
  const path = found;
  const work = tempDir(workPrefix);
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig, HOME: work };
  for (const k of Object.keys(env)) if (k.startsWith("KUBECTL_")) delete env[k];

  function run(args: string[]): Promise<KubectlRun> {
    return new Promise((resolve, reject) => {
      execFile(
        path,
        ["--cache-dir", join(work, "cache"), ...args],
        { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err && (err.killed || typeof err.code !== "number")) {
            reject(
              new Error(`kubectl ${args.join(" ")} did not finish: ${err.message}\n${stdout}\n${stderr}`),
            );
            return;
          }
          resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        },
      );
    });
  }

  async function ok(args: string[]): Promise<string> {
    const r = await run(args);
    if (r.code !== 0) {
      throw new Error(`kubectl ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r.stdout;
  }

  return {
    path,
    work,
    env,
    run,
    ok,
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
}
