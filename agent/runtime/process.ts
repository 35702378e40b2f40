// Container processes. A container is a process tree started inside its pod's network namespace
// with its own PID, UTS (hostname = pod name), IPC and mount namespaces, where the pod's hosts and
// resolv.conf files are bind-mounted over /etc. Each runs under a tiny shell "shim" (the role of
// containerd-shim) that outlives agent restarts and records the exit code in a file, so a
// restarted agent can still tell how a container ended.
//
//   sh (shim: waits, writes exit code) -> ip netns exec POD -> unshare --pid --fork ... -> sh -> exec CMD
//
// User data (argv, hostname, paths) only ever travels as argv elements: the two constant scripts
// read them as "$@".

import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";

/** The shim: run the rest of argv, then write its exit status to $KEMU_EXIT_FILE. */
const SHIM = '"$@"; echo $? > "$KEMU_EXIT_FILE"';
/** Inside the new namespaces: per-pod /etc files, the hostname, then exec the container command. */
const INIT =
  'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && hostname "$3" && shift 3 && exec "$@"';

/** GNU env: sets the listed variables, then execvp's the command with the new PATH. */
const ENV = "/usr/bin/env";
/** What the shim chain itself runs on. */
const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface StartSpec {
  netns: string;
  hostname: string;
  hostsFile: string;
  resolvFile: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  logFile: string;
  exitFile: string;
}

/** argv of the whole chain, for tests and for the record. */
export function containerArgv(spec: StartSpec): string[] {
  return [
    "sh",
    "-c",
    SHIM,
    "kemu-shim",
    "ip",
    "netns",
    "exec",
    spec.netns,
    "unshare",
    "--uts",
    "--ipc",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    INIT,
    "kemu-init",
    spec.hostsFile,
    spec.resolvFile,
    spec.hostname,
    // The container's own environment (its PATH included) applies to its command only; the
    // chain above runs on the node's PATH so `ip`, `unshare` and `mount` are the node's tools.
    ENV,
    "-i",
    ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...spec.argv,
  ];
}

/** Starts the chain detached (own session, output to the log file); returns the shim's pid. */
export function startContainer(spec: StartSpec): number {
  const argv = containerArgv(spec);
  const out = openSync(spec.logFile, "a");
  try {
    const child = spawn(argv[0], argv.slice(1), {
      detached: true,
      stdio: ["ignore", out, out],
      env: { PATH: NODE_PATH, KEMU_EXIT_FILE: spec.exitFile },
      cwd: spec.cwd ?? "/",
    });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${spec.argv.join(" ")}`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

function children(pid: number): number[] {
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

/** The container's own process (PID 1 of its PID namespace): shim -> unshare -> target. */
export function targetPid(shimPid: number): number | undefined {
  for (const unsharePid of children(shimPid)) {
    const target = children(unsharePid)[0];
    if (target) return target;
  }
  return undefined;
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
