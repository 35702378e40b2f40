// Test kit for local clusters: `kemu up` through the real CLI with a unique name, a private run
// dir and data dir, kubectl against it, and a teardown that always runs `kemu down` and then
// checks that nothing of the cluster is left on the machine.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import type { ClusterPlan } from "../../cli/local/plan.ts";
import type { ClusterState } from "../../cli/local/registry.ts";

export const KEMU = new URL("../../bin/kemu", import.meta.url).pathname;
const KUBECTL = process.env.KEMU_TEST_KUBECTL ?? "kubectl";
const RUN_TIMEOUT_MS = 60_000;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv (no shell); never rejects on a nonzero exit, only when it cannot run or times out. */
export function sh(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
) {
  return new Promise<Run>((resolve, reject) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? RUN_TIMEOUT_MS, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err && (err.killed || typeof err.code !== "number")) {
          reject(new Error(`${argv.join(" ")} did not finish: ${err.message}\n${stdout}\n${stderr}`));
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Like sh, but a nonzero exit throws with the command's output. */
export async function ok(argv: string[], opts: Parameters<typeof sh>[1] = {}): Promise<string> {
  const r = await sh(argv, opts);
  if (r.code !== 0)
    throw new Error(`${argv.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

export function uniqueName(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 7)}`;
}

export interface LocalCluster {
  name: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  upOutput: string;
  plan(): ClusterPlan;
  state(): ClusterState;
  kemu(args: string[], input?: string): Promise<Run>;
  kubectl(args: string[], input?: string): Promise<Run>;
  /** kubectl that must succeed; returns stdout. */
  k(args: string[], input?: string): Promise<string>;
  /**
   * `wget -qO- URL` from inside pod `pod`, bounded by `seconds` (Debian's busybox 1.35 wget
   * crashes on -T, hence timeout(1) around it).
   */
  wget(pod: string, url: string, seconds?: number): Promise<Run>;
  /** Like wget, but a failure throws; returns the body. */
  fetch(pod: string, url: string): Promise<string>;
  /** A pod as JSON. */
  pod(name: string, namespace?: string): Promise<any>;
  /** Waits until the pod is Running with an IP (or `until` holds); returns it. */
  waitPod(name: string, until?: (pod: any) => boolean, timeoutMs?: number): Promise<any>;
  /** The pod's network namespace on its node (named by the agent after the pod uid). */
  podNetns(pod: any): string;
  /** A background command (tcpdump); `stop` ends it by pid and returns what it printed. */
  background(argv: string[]): { child: ChildProcess; output: () => string; stop: () => Promise<string> };
  down(): Promise<Run>;
}

/** Starts a cluster with `kemu up` (flags appended) in a private data dir and run dir. */
export async function upLocalCluster(prefix: string, flags: string[]): Promise<LocalCluster> {
  const name = uniqueName(prefix);
  const work = mkdtempSync(join(tmpdir(), `kemu-${name}-`));
  const dataDir = join(work, "data");
  const env = {
    ...process.env,
    KEMU_RUN_DIR: join(work, "run"),
    KUBECONFIG: join(dataDir, "kubeconfig"),
  };
  const children = new Set<ChildProcess>();
  const kemu = (args: string[], input?: string) => sh([KEMU, ...args], { env, input, timeoutMs: 120_000 });
  const kubectl = (args: string[], input?: string) =>
    sh([KUBECTL, "--cache-dir", join(work, "kube-cache"), ...args], { env, input });
  const k = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const state = () => JSON.parse(readFileSync(join(dataDir, "cluster.json"), "utf8")) as ClusterState;
  const cluster: LocalCluster = {
    name,
    dataDir,
    env,
    upOutput: "",
    state,
    plan: () => state().plan,
    kemu,
    kubectl,
    k,
    wget: (pod, url, seconds = 5) =>
      kubectl(["exec", pod, "--", "timeout", String(seconds), "wget", "-qO-", url]),
    fetch: (pod, url) => k(["exec", pod, "--", "timeout", "5", "wget", "-qO-", url]),
    async pod(pod, namespace = "default") {
      return JSON.parse(await k(["get", "pod", pod, "-n", namespace, "-o", "json"]));
    },
    async waitPod(
      pod,
      until = (p) => p.status?.phase === "Running" && !!p.status?.podIP,
      timeoutMs = 30_000,
    ) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      for (;;) {
        const r = await kubectl(["get", "pod", pod, "-o", "json"]);
        if (r.code === 0) {
          last = JSON.parse(r.stdout);
          if (until(last)) return last;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `pod ${pod} not as expected after ${timeoutMs} ms: ${JSON.stringify(last?.status)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    podNetns(pod) {
      return `kemu-${name}-${pod.spec.nodeName}-p-${pod.metadata.uid.slice(0, 8)}`;
    },
    background(argv) {
      const child = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
      });
      child.stderr!.on("data", (d) => {
        out += d;
      });
      const closed = new Promise<void>((r) => child.once("close", () => r()));
      return {
        child,
        output: () => out,
        async stop() {
          if (child.exitCode === null && child.signalCode === null && child.pid) {
            try {
              process.kill(child.pid, "SIGINT");
            } catch {}
          }
          await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
          if (child.exitCode === null && child.signalCode === null && child.pid) {
            try {
              process.kill(child.pid, "SIGKILL");
            } catch {}
          }
          children.delete(child);
          return out;
        },
      };
    },
    async down() {
      for (const c of children) {
        if (c.pid && c.exitCode === null) {
          try {
            process.kill(c.pid, "SIGKILL");
          } catch {}
        }
      }
      children.clear();
      const r = await kemu(["down", "--name", name, "--data-dir", dataDir]);
      rmSync(work, { recursive: true, force: true });
      return r;
    },
  };
  const up = await kemu(["up", "--name", name, "--data-dir", dataDir, ...flags]);
  if (up.code !== 0) {
    const logs = join(dataDir, "logs");
    await cluster.down();
    throw new Error(`kemu up failed (${up.code}):\n${up.stdout}\n${up.stderr}\n(logs were in ${logs})`);
  }
  cluster.upOutput = up.stdout;
  return cluster;
}

/** Namespaces, host links, mounts and processes left on the machine by cluster `name`. */
export async function leftovers(name: string, dataDir: string, hostLinks: string[] = []): Promise<string[]> {
  const left: string[] = [];
  const links = JSON.parse(await ok(["ip", "-j", "link", "show"])) as { ifname: string }[];
  for (const l of links) if (hostLinks.includes(l.ifname)) left.push(`host link ${l.ifname}`);
  const netns = JSON.parse((await ok(["ip", "-j", "netns", "list"])) || "[]") as { name: string }[];
  for (const n of netns ?? []) if (n.name.startsWith(`kemu-${name}-`)) left.push(`netns ${n.name}`);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.includes(`/kemu-${name}-`)) left.push(`mount ${line}`);
  }
  for (const pid of await ok(["ps", "-eo", "pid="]).then((o) => o.split(/\s+/).filter(Boolean))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(dataDir) || cmd.includes(`kemu-${name}-`)) left.push(`process ${pid}: ${cmd}`);
    } catch {}
  }
  return left;
}

/** A test's teardown: `kemu down` must succeed and leave nothing of the cluster on the machine. */
export async function downAndCheck(c: LocalCluster | undefined): Promise<void> {
  if (!c) return;
  const { name, dataDir } = c;
  const hostLink = c.plan().loadBalancer.hostInterface;
  const r = await c.down();
  expect(r.code, r.stderr).toBe(0);
  expect(await leftovers(name, dataDir, [hostLink])).toEqual([]);
}

/** One agnhost netexec pod pinned to a node. */
export function netexecPod(name: string, node: string, extra = ""): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels:
    app: ${name}
spec:
  nodeName: ${node}
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
    ports:
    - containerPort: 8080
${extra}`;
}

/** A busybox client pod pinned to a node, sleeping until deleted. */
export function clientPod(name: string, node: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: busybox:1.36
    command: ["sleep", "100000"]
`;
}
