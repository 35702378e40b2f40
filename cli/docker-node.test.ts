import { describe, expect, it } from "vitest";
import { pickNodeContainer } from "./docker-node.ts";

const all = [
  { id: "a1", project: "kemu", node: "node-1" },
  { id: "a2", project: "kemu", node: "node-2" },
  { id: "b1", project: "lab", node: "node-1" },
];

describe("pickNodeContainer", () => {
  it("finds a node by hostname, in the named project when given", () => {
    expect(pickNodeContainer(all, "node-2").id).toBe("a2");
    expect(pickNodeContainer(all, "node-1", "lab").id).toBe("b1");
  });
  it("asks for --name when the node runs in several projects", () => {
    expect(() => pickNodeContainer(all, "node-1")).toThrow(/several Docker projects \(kemu, lab\).*--name/);
  });
  it("names the nodes there are when the node is unknown", () => {
    expect(() => pickNodeContainer(all, "node-9", "kemu")).toThrow(
      'no node container "node-9" in project kemu; its nodes: node-1, node-2',
    );
    expect(() => pickNodeContainer(all, "node-1", "other")).toThrow("in Docker project other is running");
  });
});

describe("dockerClusters", () => {
  it("groups running node containers by project, nodes in number order", async () => {
    const { dockerClusters } = await import("./status-command.ts");
    const nodes = [...all, { id: "a3", project: "kemu", node: "node-10" }];
    expect(dockerClusters(nodes)).toEqual([
      { project: "kemu", nodes: ["node-1", "node-2", "node-10"] },
      { project: "lab", nodes: ["node-1"] },
    ]);
    expect(dockerClusters(nodes, "lab")).toEqual([{ project: "lab", nodes: ["node-1"] }]);
  });
});
