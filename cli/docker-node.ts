// Docker mode's nodes seen from the host, for `kemu node exec`: the running containers labelled
// io.kemu.role=node (docker-compose.yml's and the ones /kemu/v1/nodes adds), by hostname and
// Compose project. Read with the docker CLI; no Docker means no such nodes.

import { execFile } from "node:child_process";
import { PROJECT_LABEL, ROLE_LABEL } from "../api/docker-labels.ts";

export interface NodeContainer {
  id: string;
  /** The Compose project: the cluster's name in Docker mode. */
  project: string;
  node: string;
}

function docker(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("docker", args, { timeout: 10_000 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

export async function dockerNodeContainers(): Promise<NodeContainer[]> {
  const ids = (await docker(["ps", "-q", "--filter", `label=${ROLE_LABEL}=node`]))
    ?.split("\n")
    .filter(Boolean);
  if (!ids?.length) return [];
  const out = await docker([
    "inspect",
    "-f",
    `{{.Id}} {{index .Config.Labels "${PROJECT_LABEL}"}} {{.Config.Hostname}}`,
    ...ids,
  ]);
  return (out ?? "")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, project, node] = line.split(" ");
      return { id, project, node };
    });
}

/** The one container of `node` (in `project` when given), or an error saying what there is. */
export function pickNodeContainer(all: NodeContainer[], node: string, project?: string): NodeContainer {
  const candidates = all.filter((c) => c.node === node && (project === undefined || c.project === project));
  if (candidates.length === 1) return candidates[0];
  if (candidates.length > 1) {
    const projects = candidates.map((c) => c.project).join(", ");
    throw new Error(
      `node "${node}" runs in several Docker projects (${projects}); pick one with --name PROJECT`,
    );
  }
  const inScope = all.filter((c) => project === undefined || c.project === project);
  const nodes = [...new Set(inScope.map((c) => c.node))].sort();
  throw new Error(
    nodes.length
      ? `no node container "${node}"${project ? ` in project ${project}` : ""}; its nodes: ${nodes.join(", ")}`
      : `no node container "${node}"${project ? ` in Docker project ${project}` : ""} is running`,
  );
}
