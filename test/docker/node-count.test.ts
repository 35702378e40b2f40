// KEMU_NODES sets the node count of docker-compose.yml's cluster: the control plane adds copies of
// a node container (node-4, ...) once Compose has started the file's three, and `down -v` still
// leaves nothing, the added containers included.

import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDED_LABEL, PROJECT_LABEL } from "../../api/docker-labels.ts";
import { type ComposeCluster, composeUp, leftovers, readyNodes, until } from "./kit.ts";

describe("docker compose with KEMU_NODES=4", () => {
  let c: ComposeCluster | undefined;

  beforeAll(async () => {
    c = await composeUp({ env: { KEMU_NODES: "4" } });
  }, 240_000);

  afterAll(async () => {
    if (c) expect(await c.down()).toEqual([]);
  }, 180_000);

  it("brings four nodes Ready, the fourth a container the control plane added", async () => {
    await until("4 Ready nodes", async () => (await readyNodes(c!)).length === 4, 90_000);
    expect((await readyNodes(c!)).sort()).toEqual(["node-1", "node-2", "node-3", "node-4"]);
    const added = spawnSync(
      "docker",
      [
        "ps",
        "-q",
        "--filter",
        `label=${PROJECT_LABEL}=${c!.project}`,
        "--filter",
        `label=${ADDED_LABEL}=api`,
      ],
      { encoding: "utf8" },
    )
      .stdout.split("\n")
      .filter(Boolean);
    expect(added).toHaveLength(1);
    const list = await c!.api("GET", "/kemu/v1/nodes");
    expect(
      list.json.items.map((n: { name: string; addedAtRuntime: boolean }) => `${n.name}:${n.addedAtRuntime}`),
    ).toEqual(["node-1:false", "node-2:false", "node-3:false", "node-4:true"]);
  }, 120_000);

  it("down -v removes the added container with the rest", async () => {
    const project = c!.project;
    const left = await c!.down();
    c = undefined;
    expect(left).toEqual([]);
    expect(leftovers(project)).toEqual({ containers: [], networks: [], volumes: [] });
  }, 180_000);
});
