// The one path every kernel-facing command takes (Mininet's cmd(), kindnet's exec wrapper): argv
// arrays only, never a shell string; optional network namespace; errors carry the command and
// its stderr so "rejected" failures read clearly.

import { execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { describeStatus, type ExecHelper, type HelperResult } from "./exec-helper.ts";

export interface RunOptions {
  /** Run inside this named network namespace (`ip netns exec NAME ...`). */
  netns?: string;
  /** Written to the command's stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Resolve instead of throwing on a nonzero exit. */
  allowFail?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ExecError extends Error {
  readonly argv: string[];
  readonly code: number;
  readonly stderr: string;
  constructor(argv: string[], code: number, stderr: string) {
    super(`${argv.join(" ")}: exit ${code}: ${stderr.trim() || "(no output)"}`);
    this.argv = argv;
    this.code = code;
    this.stderr = stderr;
  }
}

/** argv prefixed so it runs inside a named network namespace. */
export function inNetns(netns: string | undefined, argv: string[]): string[] {
  return netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
}

let helper: ExecHelper | undefined;

/** Sends every later command through kemu-exec (the agent's; see exec-helper.ts); undefined = spawn directly. */
export function useExecHelper(h: ExecHelper | undefined): void {
  helper = h;
}

const MAX_BUFFER = 64 * 1024 * 1024;

export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = inNetns(opts.netns, argv);
  if (helper?.alive) return runByHelper(helper, full, opts);
  return spawnDirectly(full, opts);
}

async function runByHelper(h: ExecHelper, full: string[], opts: RunOptions): Promise<RunResult> {
  let r: HelperResult;
  try {
    r = await h.run({
      argv: full,
      env: opts.env ?? process.env,
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  } catch (e) {
    // The helper ended before answering: whether the command ran is unknown, so it failed (the
    // agent's loops are level-triggered and look again); it is not run a second time here.
    r = { status: 1, timedOut: false, stdout: "", stderr: (e as Error).message };
  }
  // The same codes and messages as execFile's: the exit code, else 1 with what went wrong.
  const code = r.status >= 0 ? r.status : 1;
  if (code !== 0 && !opts.allowFail) throw new ExecError(full, code, r.stderr || describeStatus(full, r));
  return { code, stdout: r.stdout, stderr: r.stderr };
}

function spawnDirectly(full: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      full[0],
      full.slice(1),
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: MAX_BUFFER },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as any).code === "number" ? (err as any).code : 1) : 0;
        if (err && !opts.allowFail) reject(new ExecError(full, code, stderr || err.message));
        else resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Starts a long-lived process detached: its own session, cwd "/", stdin /dev/null, output appended
 * to `logFile`; returns its pid without waiting for it (containers' shims).
 */
export async function startDetached(
  argv: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
): Promise<number> {
  if (helper?.alive) {
    try {
      return await helper.start(argv, env, logFile);
    } catch (e) {
      if (helper?.alive) throw e; // the command could not start; else the helper ended: fork below
    }
  }
  const out = openSync(logFile, "a");
  try {
    const child = spawn(argv[0], argv.slice(1), {
      detached: true,
      stdio: ["ignore", out, out],
      env,
      cwd: "/",
    });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${argv.join(" ")}`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** Runs a command whose stdout is JSON (`ip -j ...`) and parses it; empty output is []. */
export async function runJson<T>(argv: string[], opts: RunOptions = {}): Promise<T> {
  const { stdout } = await run(argv, opts);
  return (stdout.trim() ? JSON.parse(stdout) : []) as T;
}

/** Applies many `ip` commands in one process (`ip -batch -`), as one kernel round of writes. */
export async function ipBatch(lines: string[], opts: RunOptions = {}): Promise<void> {
  if (lines.length === 0) return;
  await run(["ip", "-batch", "-"], { ...opts, input: `${lines.join("\n")}\n` });
}
