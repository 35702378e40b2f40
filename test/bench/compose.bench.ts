// `npm run bench:compose`: Docker mode's figures. From `docker compose up -d` (images built) to
// three Ready nodes, over several fresh projects; idle memory of each container once the cluster
// has settled; image sizes; and the image build time from scratch (`docker build --no-cache`).
// Needs a Docker engine and the kemu image: run it as `scripts/with-docker.sh npm run bench:compose`.

import { spawnSync } from "node:child_process";
import { PROJECT_LABEL } from "../../api/docker-labels.ts";
import { BASE_IMAGE, imageSize } from "../../docker/images.ts";
import { composeUp, IMAGE, readyNodes, until } from "../docker/kit.ts";
import { percentile, printFigures, sleep } from "./tools.ts";

const RUNS = Number(process.env.KEMU_BENCH_RUNS ?? 3);
const SETTLE_MS = 15_000;

/** docker stats' memory figure (the container's cgroup usage) in MB, per container name. */
function containerMemory(project: string): Map<string, number> {
  const ids = spawnSync("docker", ["ps", "-q", "--filter", `label=${PROJECT_LABEL}=${project}`], {
    encoding: "utf8",
  })
    .stdout.split("\n")
    .filter(Boolean);
  const out = spawnSync("docker", ["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", ...ids], {
    encoding: "utf8",
  }).stdout;
  const units: Record<string, number> = {
    B: 1e-6,
    KiB: 1024 / 1e6,
    MiB: 1048576 / 1e6,
    GiB: 1073741824 / 1e6,
  };
  const mem = new Map<string, number>();
  for (const line of out.split("\n").filter(Boolean)) {
    const [name, usage] = line.split(" ");
    const m = /^([\d.]+)([A-Za-z]+)$/.exec(usage);
    if (m) mem.set(name, Number(m[1]) * (units[m[2]] ?? Number.NaN));
  }
  return mem;
}

async function main(): Promise<void> {
  const upTimes: number[] = [];
  let memory = new Map<string, number>();
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const c = await composeUp();
    try {
      await until("3 Ready nodes", async () => (await readyNodes(c)).length === 3, 120_000);
      upTimes.push(performance.now() - t0);
      if (i === RUNS - 1) {
        // Idle: DNS pods running, nothing else scheduled.
        await sleep(SETTLE_MS);
        memory = containerMemory(c.project);
      }
    } finally {
      await c.down();
    }
  }
  upTimes.sort((a, b) => a - b);

  const t0 = performance.now();
  const build = spawnSync(
    "docker",
    ["build", "--no-cache", "-q", "-t", "kemu:bench", "-f", "docker/Dockerfile", "."],
    {
      cwd: new URL("../..", import.meta.url).pathname,
      encoding: "utf8",
    },
  );
  const buildMs = performance.now() - t0;
  spawnSync("docker", ["rmi", "kemu:bench"], { stdio: "ignore" });

  const nodes = [...memory].filter(([name]) => /node-\d/.test(name));
  const figures: [string, string][] = [
    [
      `compose up -d to 3 Ready nodes (${RUNS} fresh projects)`,
      upTimes.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", "),
    ],
    ["  median", `${(percentile(upTimes, 50) / 1000).toFixed(1)} s (target <= 15 s)`],
    ...[...memory]
      .sort()
      .map(([name, mb]): [string, string] => [`idle memory ${name}`, `${mb.toFixed(0)} MB`]),
    [
      "  largest node container",
      `${Math.max(...nodes.map(([, mb]) => mb)).toFixed(0)} MB (target <= 120 MB)`,
    ],
    [`image ${IMAGE}`, `${(imageSize(IMAGE) / 1e6).toFixed(0)} MB`],
    [`image ${BASE_IMAGE} (its base)`, `${(imageSize(BASE_IMAGE) / 1e6).toFixed(0)} MB`],
    [
      "image build from scratch (docker build --no-cache)",
      build.status === 0
        ? `${(buildMs / 1000).toFixed(1)} s`
        : `failed: ${build.stderr.trim().split("\n").pop()}`,
    ],
  ];
  printFigures("Docker mode (docker-compose.yml)", figures);
}

await main();
