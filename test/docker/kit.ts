// Test kit for Docker mode: the repository's docker-compose.yml brought up under a unique project
// name, underlay subnet and API port (so runs never collide), kubectl against its published
// kubeconfig, and a teardown that runs `down -v` and reports whatever of the project is left.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_LABEL } from "../../api/docker-labels.ts";
import { ok, sh, uniqueName } from "../local/kit.ts";

export const COMPOSE_FILE = new URL("../../docker-compose.yml", import.meta.url).pathname;
export const IMAGE = process.env.KEMU_IMAGE ?? "kemu:dev";
const KUBECTL = process.env.KEMU_TEST_KUBECTL ?? "kubectl";

/** Compose v2 (`docker compose`) when the plugin is there, else Debian's docker-compose 1.29. */
export function composeCommand(): string[] {
  if (spawnSync("docker", ["compose", "version"], { stdio: "ignore" }).status === 0)
    return ["docker", "compose"];
  if (spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0) return ["docker-compose"];
  throw new Error(
    "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)",
  );
}

/** Fails with what to do when there is no engine or no image, rather than skipping. */
export function requireDocker(): void {
  const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8" });
  if (info.status !== 0) {
    throw new Error(`no Docker engine answers (start dockerd): ${info.stderr.trim()}`);
  }
  if (spawnSync("docker", ["image", "inspect", IMAGE], { stdio: "ignore" }).status !== 0) {
    throw new Error(`image ${IMAGE} is missing: run npm run images (-- --offline without a registry)`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A /24 that no Docker network uses yet, as the first three octets. */
function freeUnderlay(): string {
  const used = spawnSync(
    "sh",
    [
      "-c",
      "docker network inspect $(docker network ls -q) --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'",
    ],
    { encoding: "utf8" },
  ).stdout;
  for (let i = 0; i < 50; i++) {
    const prefix = `172.29.${Math.floor(Math.random() * 250)}`;
    if (!used.includes(`${prefix}.`)) return prefix;
  }
  throw new Error("no free 172.29.x.0/24 for the underlay");
}

export interface ComposeCluster {
  project: string;
  dir: string;
  underlay: string;
  apiPort: number;
  env: NodeJS.ProcessEnv;
  kubeconfig: string;
  compose(args: string[], timeoutMs?: number): Promise<string>;
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** `exec -T SERVICE argv` in a node or the control plane container. */
  exec(service: string, argv: string[], timeoutMs?: number): Promise<string>;
  token(): string;
  /** Calls the control plane's REST API from the host. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  down(): Promise<string[]>;
}

export async function composeUp(
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ComposeCluster> {
  requireDocker();
  const cmd = composeCommand();
  const project = uniqueName("kemut");
  const dir = mkdtempSync(join(tmpdir(), `${project}-`));
  const underlay = freeUnderlay();
  const apiPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KEMU_UNDERLAY: underlay,
    KEMU_API_PORT: String(apiPort),
    ...opts.env,
  };
  const base = [...cmd, "-f", COMPOSE_FILE, "--project-directory", dir, "-p", project];
  const kubeconfig = join(dir, ".kemu", "kubeconfig");
  const cluster: ComposeCluster = {
    project,
    dir,
    underlay,
    apiPort,
    env,
    kubeconfig,
    compose: (args, timeoutMs = 120_000) => ok([...base, ...args], { env, timeoutMs }),
    kubectl: (args, o = {}) =>
      ok([KUBECTL, `--kubeconfig=${kubeconfig}`, ...args], {
        input: o.input,
        timeoutMs: o.timeoutMs ?? 60_000,
      }),
    exec: (service, argv, timeoutMs = 60_000) =>
      ok([...base, "exec", "-T", service, ...argv], { env, timeoutMs }),
    token: () => readFileSync(join(dir, ".kemu", "token"), "utf8").trim(),
    async api(method, path, body) {
      const r = await ok(
        [
          "curl",
          "-sk",
          "-X",
          method,
          "-H",
          `Authorization: Bearer ${cluster.token()}`,
          ...(body === undefined ? [] : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)]),
          "-w",
          "\n%{http_code}",
          `https://127.0.0.1:${apiPort}${path}`,
        ],
        { timeoutMs: 60_000 },
      );
      const nl = r.lastIndexOf("\n");
      return {
        status: Number(r.slice(nl + 1)),
        json: r.slice(0, nl) ? JSON.parse(r.slice(0, nl)) : undefined,
      };
    },
    async down() {
      await sh([...base, "down", "-v", "--remove-orphans", "-t", "2"], { env, timeoutMs: 120_000 });
      const left = leftovers(project);
      // Whatever down missed goes by label, so a failed run never leaks into the next.
      for (const c of left.containers) spawnSync("docker", ["rm", "-f", "-v", c]);
      for (const n of left.networks) spawnSync("docker", ["network", "rm", n]);
      for (const v of left.volumes) spawnSync("docker", ["volume", "rm", "-f", v]);
      rmSync(dir, { recursive: true, force: true });
      return [...left.containers, ...left.networks, ...left.volumes];
    },
  };
  try {
    await cluster.compose(["up", "-d"], opts.timeoutMs ?? 180_000);
  } catch (e) {
    const logs = await sh([...base, "logs", "--tail=30"], { env }).catch(() => undefined);
    await cluster.down();
    throw new Error(`${(e as Error).message}\n${logs?.stdout ?? ""}`);
  }
  return cluster;
}

/** Containers, networks and volumes still labelled with the project. */
export function leftovers(project: string): { containers: string[]; networks: string[]; volumes: string[] } {
  const list = (argv: string[]) =>
    spawnSync("docker", [...argv, "--filter", `label=${PROJECT_LABEL}=${project}`, "-q"], {
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter(Boolean);
  return {
    containers: list(["ps", "-a"]),
    networks: list(["network", "ls"]),
    volumes: list(["volume", "ls"]),
  };
}

/** Polls until fn returns a truthy value (or throws the last error at the deadline). */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

export async function readyNodes(c: ComposeCluster): Promise<string[]> {
  const out = await c.kubectl([
    "get",
    "nodes",
    "-o",
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  return out
    .split("\n")
    .filter((l) => l.endsWith("=True"))
    .map((l) => l.split("=")[0]);
}
