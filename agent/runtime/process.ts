// Container processes. A container is a process started inside its pod's network namespace with
// its own PID, UTS (hostname = pod name), IPC and mount namespaces, where the pod's hosts and
// resolv.conf files are bind-mounted over /etc. kemu-init (agent/runtime/kemu-init.c) does all of
// it and stays as the container's shim (the role of containerd-shim): it outlives agent restarts
// and records the exit status in a file, so a restarted agent can still tell how a container ended.
//
//   kemu-init (shim, in the pod's network namespace) -> the container (PID 1 of its namespace)
//
// User data (argv, env, hostname, paths) only ever travels as argv elements and environment.

import { existsSync, readFileSync } from "node:fs";
import { startDetached } from "../exec.ts";

export interface StartSpec {
  /** Path of the kemu-init binary. */
  init: string;
  netns: string;
  hostname: string;
  hostsFile: string;
  resolvFile: string;
  argv: string[];
  /** The container's whole environment (PATH included). */
  env: Record<string, string>;
  cwd?: string;
  logFile: string;
  exitFile: string;
  /** Directories bind-mounted into the container (e.g. its service account credentials). */
  binds?: { src: string; dst: string }[];
}

/** argv of the shim, for tests and for the record. */
export function containerArgv(spec: StartSpec): string[] {
  return [
    spec.init,
    "--netns",
    `/run/netns/${spec.netns}`,
    "--hosts",
    spec.hostsFile,
    "--resolv",
    spec.resolvFile,
    "--hostname",
    spec.hostname,
    "--exit-file",
    spec.exitFile,
    "--cwd",
    spec.cwd ?? "/",
    ...(spec.binds ?? []).flatMap((b) => ["--bind", `${b.src}:${b.dst}`]),
    "--",
    ...spec.argv,
  ];
}

/** Starts the shim detached (own session, output to the log file); returns its pid. */
export function startContainer(spec: StartSpec): Promise<number> {
  return startDetached(containerArgv(spec), spec.env, spec.logFile);
}

/** A process's children (from /proc), [] when it is gone. */
export function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The container's own process (PID 1 of its PID namespace): the shim's only child. */
export function targetPid(shimPid: number): number | undefined {
  return children(shimPid)[0];
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie has already exited
  } catch {
    return false;
  }
}

/** Exit code the shim recorded, or undefined while the container runs (or if the shim was killed). */
export function readExitCode(exitFile: string): number | undefined {
  if (!existsSync(exitFile)) return undefined;
  const n = Number(readFileSync(exitFile, "utf8").trim());
  return Number.isFinite(n) ? n : undefined;
}

export function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {}
}

/** Resident memory of a process tree in KiB (for status and benchmarks). */
export function rssKib(pid: number): number {
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]);
    } catch {}
    stack.push(...children(p));
  }
  return total;
}

/**
 * The environment of a container's process (/proc/PID/environ): exec'd commands and exec probes
 * get the container's variables, its PATH finding the image's programs, as under a real runtime.
 */
export function processEnvironment(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  try {
    for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  } catch {}
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}
