// `kemu status`: the local clusters on this machine, their processes, and (when the API answers)
// their nodes as `kubectl get nodes` would summarize them; then Docker-mode clusters (Compose
// projects with running node containers).

import { compareStrings } from "../emulator/compare.ts";
import { nodeNumber } from "../emulator/node-names.ts";
import { parseFlags, UsageError } from "./args.ts";
import { dockerNodeContainers, type NodeContainer } from "./docker-node.ts";
import { type ClusterStatus, clusterStatuses } from "./local/cluster.ts";
import { validateClusterName } from "./local/plan.ts";

export const statusHelp = `Usage: kemu status [flags]

Lists the local clusters started by 'kemu up': data dir, API URL, whether each background process
is alive, and, when the API answers, every node with its Ready status, InternalIP and podCIDR.
Docker-mode clusters (docker compose up) follow: each Compose project's running node containers.

Flags:
  --name NAME   only this cluster (exit code 1 when it does not exist)
  --json        print the status as JSON
  -h, --help    show this help
`;

const flags = {
  name: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("status", argv, flags);
  if (values.help) {
    process.stdout.write(statusHelp);
    return 0;
  }
  if (positionals.length) throw new UsageError(`kemu status: unexpected argument "${positionals[0]}"`);
  const name = values.name as string | undefined;
  if (name !== undefined) {
    try {
      validateClusterName(name);
    } catch (e) {
      throw new UsageError(`kemu status: ${(e as Error).message}`);
    }
  }
  const local = await clusterStatuses({ name });
  const docker = dockerClusters(await dockerNodeContainers(), name);
  const status = { ...local, docker };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  } else {
    if (status.clusters.length === 0 && status.unregistered.length === 0 && docker.length === 0) {
      process.stdout.write(
        name ? `No cluster "${name}".\n` : "No kemu clusters. Start one with 'kemu up'.\n",
      );
    }
    process.stdout.write(status.clusters.map(renderCluster).join("\n"));
    for (const n of status.unregistered) {
      process.stdout.write(
        `\nNamespaces of an unregistered cluster "${n}" remain; remove them with 'kemu down --name ${n}'.\n`,
      );
    }
    for (const d of docker) {
      process.stdout.write(
        `${status.clusters.length ? "\n" : ""}Docker cluster ${d.project} (docker compose -p ${d.project})\n  nodes:       ${d.nodes.join(", ")}\n`,
      );
    }
  }
  return name && status.clusters.length === 0 && docker.length === 0 ? 1 : 0;
}

/** Running node containers grouped by Compose project (only `name`'s when given). */
export function dockerClusters(
  containers: NodeContainer[],
  name?: string,
): { project: string; nodes: string[] }[] {
  const byProject = new Map<string, string[]>();
  for (const c of containers) {
    if (name !== undefined && c.project !== name) continue;
    byProject.set(c.project, [...(byProject.get(c.project) ?? []), c.node]);
  }
  return [...byProject]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([project, nodes]) => ({
      project,
      nodes: nodes.sort((a, b) => nodeNumber(a) - nodeNumber(b) || compareStrings(a, b)),
    }));
}

function renderCluster(c: ClusterStatus): string {
  const lines = [`Cluster ${c.name}${c.phase ? ` (${c.phase})` : ""}`, `  data dir:    ${c.dataDir}`];
  if (c.apiUrl) lines.push(`  API:         ${c.apiUrl}${c.nodes ? "" : " (not answering)"}`);
  if (c.kubeconfig) lines.push(`  kubeconfig:  ${c.kubeconfig}`);
  const procs = c.processes.map((p) => `${p.name} ${p.pid} ${p.running ? "running" : "dead"}`);
  lines.push(`  processes:   ${procs.length ? procs.join(", ") : "none"}`);
  if (c.apiError) lines.push(`  API error:   ${c.apiError}`);
  if (c.nodes) {
    const rows = [
      ["NAME", "READY", "INTERNAL-IP", "POD-CIDR"],
      ...c.nodes.map((n) => [n.name, n.ready, n.internalIP ?? "<none>", n.podCIDR ?? "<none>"]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    lines.push(
      "",
      ...rows.map((r) => `  ${r.map((cell, i) => cell.padEnd(widths[i])).join("   ")}`.trimEnd()),
    );
  }
  return `${lines.join("\n")}\n`;
}
