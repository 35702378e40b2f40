// An agent on "another host" joins a running cluster: a namespace outside kemu up's underlay,
// reached only through a routed link (a different subnet, one router between), runs `kemu agent`
// with the cluster's API URL, token and CA. Its node turns Ready, and pods on it talk to pods on
// the cluster's own nodes through VXLAN carried over the routed network.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPod,
  downAndCheck,
  KEMU,
  type LocalCluster,
  netexecPod,
  ok,
  sh,
  upLocalCluster,
} from "./kit.ts";

describe("an agent joining from another host", () => {
  let c: LocalCluster;
  let agent: ChildProcess | undefined;
  let agentLog = "";
  const remote = `kemut-remote-${Math.random().toString(36).slice(2, 7)}`;
  const dataDir = mkdtempSync(join(tmpdir(), "kemu-remote-"));
  // A /30 between the cluster's underlay (acting as the router) and the remote host.
  const net = `10.250.${Math.floor(Math.random() * 250)}`;
  const ipIn = (ns: string, args: string[]) => ok(["ip", "-n", ns, ...args]);

  beforeAll(async () => {
    c = await upLocalCluster("tr", ["--nodes", "1"]);
    const plan = c.plan();
    const u = plan.underlay;
    await ok(["ip", "netns", "add", remote]);
    await ok([
      "ip",
      "link",
      "add",
      "rmt0",
      "netns",
      u.netns,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      remote,
    ]);
    await ipIn(u.netns, ["addr", "add", `${net}.1/30`, "dev", "rmt0"]);
    await ipIn(u.netns, ["link", "set", "rmt0", "up"]);
    await ok(["ip", "netns", "exec", u.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ipIn(remote, ["link", "set", "lo", "up"]);
    await ipIn(remote, ["addr", "add", `${net}.2/30`, "dev", "eth0"]);
    await ipIn(remote, ["link", "set", "eth0", "up"]);
    await ipIn(remote, ["route", "add", u.subnet, "via", `${net}.1`]);
    for (const n of plan.nodes) await ipIn(n.netns, ["route", "add", `${net}.0/30`, "via", u.address]);

    // nsenter --net, not ip netns exec: the agent must stay in the host's mount namespace, where
    // the pod namespaces it creates stay visible (and removable) after it exits.
    agent = spawn(
      "nsenter",
      [
        `--net=/run/netns/${remote}`,
        KEMU,
        "agent",
        "--api",
        plan.api.url,
        "--token-file",
        plan.api.tokenFile,
        "--ca-file",
        plan.api.caFile,
        "--node",
        "remote-1",
        "--data-dir",
        dataDir,
        "--cluster-cidr",
        plan.podCidr,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    agent.stdout!.on("data", (d) => (agentLog += d));
    agent.stderr!.on("data", (d) => (agentLog += d));
    for (let i = 0; i < 120; i++) {
      const ready = await c.kubectl([
        "get",
        "node",
        "remote-1",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      if (ready.stdout === "True") return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`remote-1 not Ready in 30 s; agent log:\n${agentLog}`);
  }, 120_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once("exit", r));
      agent.kill("SIGTERM");
      await exited;
    }
    // The remote host's namespace and its pods' (named after it), then the cluster.
    const all = (await ok(["ip", "netns", "list"])).split("\n").map((l) => l.split(" ")[0]);
    for (const ns of all.filter((n) => n === remote || n.startsWith(`${remote}-`))) {
      for (const pid of (await sh(["ip", "netns", "pids", ns])).stdout.split(/\s+/).filter(Boolean)) {
        process.kill(Number(pid), "SIGKILL");
      }
      await sh(["ip", "netns", "del", ns]);
    }
    rmSync(dataDir, { recursive: true, force: true });
    await downAndCheck(c);
    const left = (await ok(["ip", "netns", "list"])).split("\n").filter((l) => l.startsWith(remote));
    expect(left).toEqual([]);
    // Nor any process of the remote host's pods.
    const procs = (await sh(["pgrep", "-f", remote])).stdout.split("\n").filter(Boolean);
    expect(procs).toEqual([]);
  }, 60_000);

  it("registers with its routed address as InternalIP and a podCIDR of its own", async () => {
    const node = JSON.parse(await c.k(["get", "node", "remote-1", "-o", "json"]));
    expect(node.status.addresses).toContainEqual({ type: "InternalIP", address: `${net}.2` });
    const local = JSON.parse(await c.k(["get", "node", "node-1", "-o", "json"]));
    expect(node.spec.podCIDR).toBeTruthy();
    expect(node.spec.podCIDR).not.toBe(local.spec.podCIDR);
  });

  it("carries pod traffic to the cluster's nodes through VXLAN over the routed network", async () => {
    await c.k(["apply", "-f", "-"], `${netexecPod("far", "remote-1")}---\n${clientPod("near", "node-1")}`);
    const far = await c.waitPod("far");
    const near = await c.waitPod("near");
    const capture = c.background([
      "ip",
      "netns",
      "exec",
      remote,
      "tcpdump",
      "--immediate-mode",
      "-nli",
      "eth0",
      "-c",
      "4",
      "udp",
      "port",
      "8472",
    ]);
    await new Promise((r) => setTimeout(r, 1000));
    const seen = await c.fetch("near", `http://${far.status.podIP}:8080/clientip`);
    expect(seen.split(":")[0]).toBe(near.status.podIP);
    const out = await capture.stop();
    expect(out, out).toContain(`${net}.2.`);
    expect(out).toContain(`${near.status.podIP}.`);
  }, 60_000);
});
