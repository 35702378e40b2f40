// `kemu node add|remove|stop|start` on a local cluster: a node added at run time carries pod
// traffic; a stopped node is cut off the underlay with its agent gone, and comes back; a removed
// node leaves no namespace, Node object or process behind; bad input changes nothing.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientPod, downAndCheck, type LocalCluster, netexecPod, upLocalCluster } from "./kit.ts";

describe("local cluster node actions", () => {
  let c: LocalCluster;

  beforeAll(async () => {
    c = await upLocalCluster("tn", ["--nodes", "2"]);
  }, 120_000);

  afterAll(async () => {
    await downAndCheck(c);
  }, 60_000);

  const nodes = async () =>
    (await c.k(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ");
  /** wget from the client pod on node-1. */
  const wget = (url: string, seconds = 5) => c.wget("cli1", url, seconds);
  const agentRunning = (node: string) => c.state().processes.some((p) => p.name === `agent-${node}`);

  it("adds node-3, which joins the overlay and runs pods reachable from node-1", async () => {
    const r = await c.kemu(["node", "add", "--name", c.name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("node-3 added (InternalIP 172.30.");
    expect(await nodes()).toEqual(["node-1", "node-2", "node-3"]);
    expect(c.plan().nodes.map((n) => n.name)).toEqual(["node-1", "node-2", "node-3"]);
    await c.k(["apply", "-f", "-"], netexecPod("web3", "node-3") + "---\n" + clientPod("cli1", "node-1"));
    const web = await c.waitPod("web3");
    const cli = await c.waitPod("cli1");
    const seen = await wget(`http://${web.status.podIP}:8080/clientip`, 5);
    expect(seen.stdout.split(":")[0], seen.stderr).toBe(cli.status.podIP);
  }, 90_000);

  it("stop kills the agent and unplugs the node; start brings it back Ready and reachable", async () => {
    const web = await c.pod("web3");
    const r = await c.kemu(["node", "stop", "--name", c.name, "node-3"]);
    expect(r.code, r.stderr).toBe(0);
    expect(agentRunning("node-3")).toBe(false);
    const cut = await wget(`http://${web.status.podIP}:8080/hostname`, 3);
    expect(cut.code).not.toBe(0);
    const link = await c.kemu([
      "node",
      "exec",
      "--name",
      c.name,
      "node-3",
      "--",
      "ip",
      "-o",
      "link",
      "show",
      "eth0",
    ]);
    expect(link.stdout).toMatch(/state (DOWN|LOWERLAYERDOWN)|NO-CARRIER/);

    const s = await c.kemu(["node", "start", "--name", c.name, "node-3"]);
    expect(s.code, s.stderr).toBe(0);
    expect(agentRunning("node-3")).toBe(true);
    const back = await wget(`http://${web.status.podIP}:8080/hostname`, 5);
    expect(back.stdout).toBe("web3");
  }, 90_000);

  it("refuses unknown nodes and missing arguments without changing anything", async () => {
    const before = JSON.stringify(c.plan());
    const unknown = await c.kemu(["node", "remove", "--name", c.name, "node-9"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('has no node "node-9"; its nodes: node-1, node-2, node-3');
    const missing = await c.kemu(["node", "stop", "--name", c.name]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("give exactly one NODE");
    const named = await c.kemu(["node", "add", "--name", c.name, "edge"]);
    expect(named.code).toBe(2);
    expect(JSON.stringify(c.plan())).toBe(before);
  });

  it("remove deletes the Node, its pods' namespaces and its own", async () => {
    const r = await c.kemu(["node", "remove", "--name", c.name, "node-3"]);
    expect(r.code, r.stderr).toBe(0);
    expect(await nodes()).toEqual(["node-1", "node-2"]);
    expect(agentRunning("node-3")).toBe(false);
    expect(c.plan().nodes.map((n) => n.name)).toEqual(["node-1", "node-2"]);
    const netns = (await c.kemu(["node", "exec", "--name", c.name, "node-3", "--", "true"])).stderr;
    expect(netns).toContain('has no node "node-3"');
    // Its pod is collected once the Node is gone (pod GC), as on a real cluster.
    for (let i = 0; i < 40; i++) {
      if ((await c.kubectl(["get", "pod", "web3"])).code !== 0) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect((await c.kubectl(["get", "pod", "web3"])).code).not.toBe(0);
  }, 60_000);
});
