// `npm run bench:pods`: a local cluster's performance figures, measured from the outside through
// the CLI and the API as a user would see them. Prints figures; never asserts on time.
//
// 1. `kemu up --nodes 3` until every node is Ready (wall clock of the command)
// 2. 100 agnhost netexec pods created at once: creation -> Running with a pod IP, p50/p99
// 3. 200 more (300 across 3 nodes): time until all are Running
// 4. memory: per idle agnhost pod (every process in its sandbox) and per agent
// 5. beside it, Debian's Mininet building the same number of hosts (lxbr switch, no controller)

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { children } from "../../agent/runtime/process.ts";
import { percentile, printFigures, runCommand, upBenchCluster } from "./tools.ts";

const FIRST = Number(process.env.KEMU_BENCH_PODS ?? 100);
const TOTAL = Number(process.env.KEMU_BENCH_TOTAL_PODS ?? 300);

function rssKib(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU time of a process and of the children it reaped (user + system), in ms. */
function cpuMs(pid: number): { self: number; children: number } {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    const tick = 10; // USER_HZ is 100 on Linux
    return { self: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick };
  } catch {
    return { self: 0, children: 0 };
  }
}

/** Proportional set size: shared pages (the node binary every kemu process maps) split among users. */
function pssKib(pid: number): number {
  try {
    return Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function pod(name: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { bench: "pods" } },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: "netexec",
          image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
          args: ["netexec", "--http-port=8080", "--udp-port=-1"],
        },
      ],
    },
  };
}

async function main(): Promise<void> {
  const figures: [string, string][] = [];
  const cluster = await upBenchCluster("bpod", ["--nodes", "3"]);
  const { client, env, dataDir } = cluster;
  try {
    figures.push(["kemu up --nodes 3 until all Ready", `${(cluster.upMs / 1000).toFixed(2)} s`]);
    const agents = JSON.parse(readFileSync(join(dataDir, "cluster.json"), "utf8")).processes.filter(
      (p: any) => p.name.startsWith("agent-"),
    ) as { name: string; pid: number }[];
    // The agent's commands are children of its kemu-exec helper (when built), reaped there.
    const helperPid = (agent: number) =>
      children(agent).find((c) => {
        try {
          return readFileSync(`/proc/${c}/comm`, "utf8").trim() === "kemu-exec";
        } catch {
          return false;
        }
      });
    const agentCpu = () =>
      agents
        .map((a) => {
          const own = cpuMs(a.pid);
          const h = helperPid(a.pid);
          const helper = h ? cpuMs(h) : { self: 0, children: 0 };
          return { self: own.self, helper: helper.self, children: own.children + helper.children };
        })
        .reduce((x, y) => ({
          self: x.self + y.self,
          helper: x.helper + y.helper,
          children: x.children + y.children,
        }));
    // Deleted pods leave the API at once (grace 0) while their nodes still tear them down: the
    // next round starts once only the pod namespaces there were before (cluster DNS) are left.
    const podNamespaces = async () =>
      (await runCommand(["ip", "netns", "list"])).out
        .split("\n")
        .map((l) => l.split(" ")[0])
        .filter((n) => n.startsWith(`kemu-${cluster.name}-`) && n.includes("-p-"));
    const before = new Set(await podNamespaces());
    const nodesIdle = async () => {
      while ((await podNamespaces()).some((n) => !before.has(n)))
        await new Promise((r) => setTimeout(r, 100));
    };
    const created = new Map<string, number>();
    const running = new Map<string, number>();
    let onRunning = () => {};
    const stopWatch = client.watch(
      "/api/v1/namespaces/default/pods?watch=1&labelSelector=bench%3Dpods",
      (_type, obj) => {
        const n = obj?.metadata?.name;
        // Creation as the API's watchers first see it (the same clock as "Running" below).
        if (n && !created.has(n)) created.set(n, performance.now());
        if (n && !running.has(n) && obj.status?.phase === "Running" && obj.status?.podIP) {
          running.set(n, performance.now());
          onRunning();
        }
      },
      () => {},
    );
    await new Promise((r) => setTimeout(r, 300));
    const allRunning = (names: string[]) =>
      new Promise<void>((resolve) => {
        onRunning = () => names.every((n) => running.has(n)) && resolve();
        onRunning();
      });
    const range = (prefix: string, from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
    const createBatch = async (from: number, to: number) => {
      const names = Array.from({ length: to - from }, (_, i) => `bench-${from + i}`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < names.length) {
            const n = names[next++];
            await client.request("POST", "/api/v1/namespaces/default/pods", pod(n));
          }
        }),
      );
    };

    const latencies = (names: string[]) =>
      names.map((n) => running.get(n)! - created.get(n)!).sort((a, b) => a - b);
    const summary = (lat: number[], t0: number) =>
      `p50 ${percentile(lat, 50).toFixed(0)} ms, p99 ${percentile(lat, 99).toFixed(0)} ms, ` +
      `all in ${((performance.now() - t0) / 1000).toFixed(2)} s`;

    // One manifest of 100 pods through `kubectl apply -f` (kubectl creates them one after another).
    const manifest = Array.from({ length: FIRST }, (_, i) => JSON.stringify(pod(`apply-${i}`))).join("\n");
    const t0 = performance.now();
    const applied = await runCommand(["kubectl", "apply", "-f", "-"], env, manifest);
    if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.out}`);
    const applyNames = range("apply", 0, FIRST);
    await allRunning(applyNames);
    figures.push([
      `${FIRST} pods by kubectl apply -f: creation -> Running with IP`,
      summary(latencies(applyNames), t0),
    ]);
    await client.request("DELETE", "/api/v1/namespaces/default/pods?labelSelector=bench%3Dpods");
    for (;;) {
      const left = await client.get<{ items: unknown[] }>(
        "/api/v1/namespaces/default/pods?labelSelector=bench%3Dpods",
      );
      if (left.items.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await nodesIdle();
    running.clear();
    created.clear();

    const cpu0 = agentCpu();
    const t1 = performance.now();
    await createBatch(0, FIRST);
    const burstNames = range("bench", 0, FIRST);
    await allRunning(burstNames);
    figures.push([
      `${FIRST} pods at once (8 API clients): creation -> Running with IP`,
      summary(latencies(burstNames), t1),
    ]);
    // What the burst cost the nodes: the agents' own CPU, and that of the processes they ran and
    // reaped (ip netns add, the CNI plugins), which nothing in the agent can make cheaper.
    const cpu1 = agentCpu();
    const processesPerPod = (cpu1.children - cpu0.children) / FIRST;
    const cores = availableParallelism();
    figures.push([
      "CPU per pod of that burst on its node",
      `agent ${((cpu1.self - cpu0.self) / FIRST).toFixed(1)} ms, its kemu-exec ${((cpu1.helper - cpu0.helper) / FIRST).toFixed(1)} ms, processes run for it (ip netns add, CNI plugins) ${processesPerPod.toFixed(1)} ms`,
    ]);
    // The floor for the median pod: the processes a sandbox runs, started and reaped (kemu-exec's
    // time is mostly the kernel's doing that), for the first half of the burst on every core, less
    // how far into the burst the median pod was created.
    const spawnPerPod = processesPerPod + (cpu1.helper - cpu0.helper) / FIRST;
    const half = Math.ceil(FIRST / 2);
    const wiredNoEarlier = (spawnPerPod * half) / cores;
    const medianCreated = burstNames.map((n) => created.get(n)! - t1).sort((a, b) => a - b)[half - 1];
    figures.push([
      `floor for the median pod (the ${half}th) of that burst, wired in arrival order`,
      `its processes and those before it take ${wiredNoEarlier.toFixed(0)} ms of ${cores} cores; it was created ${medianCreated.toFixed(0)} ms in, so Running no sooner than ${(wiredNoEarlier - medianCreated).toFixed(0)} ms after its creation`,
    ]);

    const t2 = performance.now();
    await createBatch(FIRST, TOTAL);
    await allRunning(range("bench", 0, TOTAL));
    figures.push([
      `${TOTAL} pods across 3 nodes all Running`,
      `${((performance.now() - t2) / 1000).toFixed(2)} s for the last ${TOTAL - FIRST}`,
    ]);
    stopWatch();

    // Memory: every process inside each pod's sandbox (shim, unshare, the container itself).
    const list = await client.get<{ items: any[] }>(
      "/api/v1/namespaces/default/pods?labelSelector=bench%3Dpods",
    );
    await new Promise((r) => setTimeout(r, 2000)); // idle
    const perPod: number[] = [];
    for (const p of list.items.slice(0, 30)) {
      const ns = cluster.podNetns(p);
      const pids = (await runCommand(["ip", "netns", "pids", ns])).out
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      perPod.push(pids.reduce((sum, pid) => sum + rssKib(pid), 0));
    }
    perPod.sort((a, b) => a - b);
    figures.push([
      "RSS per idle agnhost pod (all its processes)",
      `median ${(percentile(perPod, 50) / 1024).toFixed(1)} MB, max ${(perPod.at(-1)! / 1024).toFixed(1)} MB`,
    ]);
    figures.push([
      `RSS per agent with ${TOTAL / 3} pods`,
      agents
        .map(
          (a: any) =>
            `${a.name} ${(rssKib(a.pid) / 1024).toFixed(0)} MB RSS (${(pssKib(a.pid) / 1024).toFixed(0)} MB PSS)`,
        )
        .join(", "),
    ]);
  } finally {
    const downMs = await cluster.down();
    figures.push([`kemu down (${TOTAL} pods)`, `${(downMs / 1000).toFixed(2)} s`]);
  }

  const mn = await runCommand([
    "mn",
    "--switch",
    "lxbr",
    "--controller",
    "none",
    "--topo",
    `single,${FIRST}`,
    "--test",
    "none",
  ]);
  figures.push([
    `Mininet: mn --switch lxbr --controller none --topo single,${FIRST} --test none`,
    mn.code === 0 ? `${(mn.ms / 1000).toFixed(2)} s (build and tear down)` : `failed: ${mn.out.slice(-300)}`,
  ]);
  const timing = /\*\*\* Done\s*completed in ([\d.]+) seconds/.exec(mn.out);
  if (timing) figures.push(["Mininet's own figure", `completed in ${timing[1]} s`]);

  printFigures("kemu bench:pods", figures);
}

await main();
