// Node machines as Docker containers, through dockerode: the control plane's NodeProvider in
// Docker mode. Node containers are the ones labelled io.kemu.role=node in the control plane's own
// Compose project; a new one is a copy of an existing node container's configuration under a new
// hostname, attached to the same underlay network.

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import Docker from "dockerode";
import { compareStrings } from "../emulator/compare.ts";
import { nextNodeName, nodeNumber } from "../emulator/node-names.ts";
import { ADDED_LABEL, PROJECT_LABEL, ROLE_LABEL } from "./docker-labels.ts";
import { ApiError } from "./errors.ts";
import type { ManagedNode, NodeProvider } from "./node-routes.ts";

interface Scope {
  /** Label filters every node container of this cluster matches. */
  filters: string[];
  labels: Record<string, string>;
  prefix: string;
}

export class DockerNodes implements NodeProvider {
  private readonly docker: Docker;
  private readonly self: string;
  private scope?: Promise<Scope>;

  /** `self`: this process's container id or name (found from /proc/self/mountinfo by default). */
  constructor(socketPath: string, self = ownContainerId()) {
    this.docker = new Docker({ socketPath });
    this.self = self;
  }

  /** The cluster's label scope: the Compose project of the container this process runs in. */
  private resolveScope(): Promise<Scope> {
    this.scope ??= (async (): Promise<Scope> => {
      let labels: Record<string, string> = {};
      try {
        labels = (await this.docker.getContainer(this.self).inspect()).Config.Labels ?? {};
      } catch (e) {
        this.scope = undefined;
        throw unavailable(
          `cannot inspect this control plane's container "${this.self}": ${(e as Error).message}`,
        );
      }
      const project = labels[PROJECT_LABEL];
      const filters = [`${ROLE_LABEL}=node`, ...(project ? [`${PROJECT_LABEL}=${project}`] : [])];
      const scopeLabels: Record<string, string> = project ? { [PROJECT_LABEL]: project } : {};
      return { filters, labels: scopeLabels, prefix: project ?? "kemu" };
    })();
    return this.scope;
  }

  private async containers(): Promise<Docker.ContainerInfo[]> {
    const { filters } = await this.resolveScope();
    try {
      return await this.docker.listContainers({ all: true, filters: { label: filters } });
    } catch (e) {
      throw unavailable(`listing node containers: ${(e as Error).message}`);
    }
  }

  /** Node containers by hostname, which only an inspect tells. */
  async list(): Promise<ManagedNode[]> {
    const infos = await Promise.all(
      (await this.containers()).map((c) => this.docker.getContainer(c.Id).inspect()),
    );
    return infos.map(toManaged).sort((a, b) => compareStrings(a.name, b.name));
  }

  async add(name: string): Promise<ManagedNode> {
    const scope = await this.resolveScope();
    const all = await this.containers();
    if (!all.length) throw unavailable("no node container to copy the configuration from");
    const template = await this.docker.getContainer(all[0].Id).inspect();
    const networks = Object.keys(template.NetworkSettings.Networks ?? {});
    const host = template.HostConfig;
    try {
      const created = await this.docker.createContainer({
        name: `${scope.prefix}-${name}`,
        Hostname: name,
        Image: template.Config.Image,
        Entrypoint: template.Config.Entrypoint ?? undefined,
        Cmd: template.Config.Cmd ?? undefined,
        Env: template.Config.Env,
        Labels: { ...scope.labels, [ROLE_LABEL]: "node", [ADDED_LABEL]: "api" },
        HostConfig: {
          CapAdd: host.CapAdd,
          SecurityOpt: host.SecurityOpt,
          Sysctls: host.Sysctls,
          Init: host.Init,
          Tmpfs: host.Tmpfs,
          Binds: host.Binds,
          Mounts: host.Mounts,
          NetworkMode: networks[0],
        },
        NetworkingConfig: networks[0] ? { EndpointsConfig: { [networks[0]]: {} } } : undefined,
      });
      await created.start();
      return toManaged(await created.inspect());
    } catch (e) {
      throw unavailable(`creating node container "${name}": ${(e as Error).message}`);
    }
  }

  async remove(node: ManagedNode): Promise<void> {
    await this.docker.getContainer(node.id).remove({ force: true, v: true });
  }

  async stop(node: ManagedNode): Promise<ManagedNode> {
    const container = this.docker.getContainer(node.id);
    // A node failure, not a drain: the agent gets no time to clean up.
    if (node.state === "running") await container.kill();
    return toManaged(await container.inspect());
  }

  async start(node: ManagedNode): Promise<ManagedNode> {
    const container = this.docker.getContainer(node.id);
    if (node.state !== "running") await container.start();
    return toManaged(await container.inspect());
  }

  /**
   * Brings the number of node containers to `want` (docker-compose.yml's KEMU_NODES): first waits
   * for the containers Compose starts once the control plane is healthy to settle, then adds
   * node-N copies or removes the highest-numbered nodes. Resolves to what it did.
   */
  async reconcileCount(
    want: number,
    removed: (name: string) => Promise<void>,
    settleMs = 3000,
    timeoutMs = 60_000,
  ): Promise<{ added: string[]; removed: string[] }> {
    const deadline = Date.now() + timeoutMs;
    let count = -1;
    let stableSince = Date.now();
    for (;;) {
      const n = (await this.containers()).length;
      if (n !== count) {
        count = n;
        stableSince = Date.now();
      } else if (n > 0 && Date.now() - stableSince >= settleMs) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const done = { added: [] as string[], removed: [] as string[] };
    const nodes = await this.list();
    if (!nodes.length) return done; // nothing to copy a node from
    while (nodes.length < want) {
      const node = await this.add(nextNodeName(nodes.map((n) => n.name)));
      nodes.push(node);
      done.added.push(node.name);
    }
    const surplus = [...nodes]
      .sort((a, b) => nodeNumber(b.name) - nodeNumber(a.name) || compareStrings(b.name, a.name))
      .slice(0, Math.max(0, nodes.length - want));
    for (const node of surplus) {
      await this.remove(node);
      await removed(node.name);
      done.removed.push(node.name);
    }
    return done;
  }

  /** Removes the node containers added through the API, so `docker compose down` can drop the network. */
  async close(): Promise<void> {
    for (const c of await this.containers().catch(() => [])) {
      if (c.Labels[ADDED_LABEL] === "api")
        await this.docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => {});
    }
  }
}

/**
 * The id of the container this process runs in: Docker bind-mounts the container's own
 * /etc/hostname from /var/lib/docker/containers/<id>/, which shows in mountinfo whatever the
 * cgroup layout. Falls back to the hostname (Docker's default hostname is the short id).
 */
export function ownContainerId(mountinfo = readMountinfo()): string {
  return /\/containers\/([0-9a-f]{64})\//.exec(mountinfo)?.[1] ?? hostname();
}

function readMountinfo(): string {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return "";
  }
}

function toManaged(info: Docker.ContainerInspectInfo): ManagedNode {
  return {
    name: info.Config.Hostname,
    state: info.State.Running
      ? "running"
      : info.State.Status === "exited" || info.State.Status === "created"
        ? "stopped"
        : info.State.Status,
    id: info.Id,
    addedAtRuntime: info.Config.Labels?.[ADDED_LABEL] === "api",
  };
}

function unavailable(message: string): ApiError {
  return new ApiError(503, "ServiceUnavailable", `Docker: ${message}`);
}
