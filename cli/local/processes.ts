// The cluster's background processes: started detached in their own session with output to a
// log file, recorded by pid plus the kernel's start time, and stopped only by that record (a pid
// that was reused by another program is never signalled, and nothing is ever killed by name).

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { ProcessPlan } from "./plan.ts";

export interface ProcessRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot): tells this process from a pid reuse. */
  startTime: number;
}

export interface Started {
  record: ProcessRecord;
  child: ChildProcess;
  log: string;
  /** Set once the process exits while we still watch it. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

/** Starts the process detached (setsid), stdout/stderr appended to its log, not holding us alive. */
export function spawnDetached(proc: ProcessPlan): Started {
  mkdirSync(dirname(proc.log), { recursive: true });
  const fd = openSync(proc.log, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(proc.argv[0], proc.argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...proc.env },
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${proc.name} (${proc.argv[0]})`);
  const started: Started = {
    record: { name: proc.name, pid: child.pid, startTime: processStartTime(child.pid) ?? 0 },
    child,
    log: proc.log,
  };
  child.once("exit", (code, signal) => {
    started.exit = { code, signal };
  });
  child.once("error", () => {
    started.exit ??= { code: null, signal: null };
  });
  child.unref();
  return started;
}

/** Start time of a live, non-zombie process, or undefined when there is none. */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return Number(fields[19]);
}

/** Whether the recorded process is still the one running under its pid. */
export function isRunning(record: ProcessRecord): boolean {
  const start = processStartTime(record.pid);
  return start !== undefined && (record.startTime === 0 || start === record.startTime);
}

function signal(record: ProcessRecord, sig: NodeJS.Signals): void {
  if (!isRunning(record)) return;
  try {
    process.kill(record.pid, sig);
  } catch {}
}

/**
 * SIGTERM to each recorded process still running, SIGKILL to those left after the grace period;
 * resolves when all are gone. Returns the names of the processes that had to be killed.
 */
export async function stopProcesses(records: readonly ProcessRecord[], graceMs = 5000): Promise<string[]> {
  const live = records.filter(isRunning);
  for (const r of live) signal(r, "SIGTERM");
  const killed: string[] = [];
  const deadline = Date.now() + graceMs;
  let sentKill = false;
  for (;;) {
    const left = live.filter(isRunning);
    if (left.length === 0) return killed;
    if (Date.now() > deadline) {
      if (sentKill && Date.now() > deadline + 5000) {
        throw new Error(`processes survived SIGKILL: ${left.map((r) => `${r.name} (${r.pid})`).join(", ")}`);
      }
      if (!sentKill) {
        for (const r of left) {
          signal(r, "SIGKILL");
          killed.push(r.name);
        }
        sentKill = true;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The last lines of a log file, for error messages. */
export function tailFile(file: string, lines = 15): string {
  if (!existsSync(file)) return "(no log)";
  const text = readFileSync(file, "utf8").trimEnd();
  return text ? text.split("\n").slice(-lines).join("\n") : "(empty log)";
}
