// Docker mode end to end: the repository's docker-compose.yml, driven from the host with kubectl
// and the control plane's REST API, as a user would. Needs a Docker engine and the kemu image
// (.ci/run starts dockerd and runs `npm run images -- --offline`); without them it fails.

import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_LABEL } from "../../api/docker-labels.ts";
import { KEMU, ok, sh } from "../local/kit.ts";
import { type ComposeCluster, composeUp, leftovers, readyNodes, until } from "./kit.ts";

const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";

const workload = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: echo}}}
      containers:
        - name: echo
          image: ${AGNHOST}
          args: [netexec, --http-port=8080]
          ports: [{containerPort: 8080, name: http}]
          readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
`;

describe("docker compose cluster", () => {
  let c: ComposeCluster;
  const pods = async () =>
    JSON.parse(await c.kubectl(["get", "pods", "-l", "app=echo", "-o", "json"])).items as {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { nodeName?: string };
      status: {
        podIP?: string;
        phase?: string;
        conditions?: { type: string; status: string }[];
        containerStatuses?: { restartCount: number }[];
      };
    }[];
  const ready = (p: Awaited<ReturnType<typeof pods>>[number]) =>
    !p.metadata.deletionTimestamp &&
    p.status.conditions?.some((x) => x.type === "Ready" && x.status === "True");
  const inClient = (argv: string[]) => c.kubectl(["exec", "client", "--", ...argv]);

  beforeAll(async () => {
    // Short grace periods so a stopped node is noticed, and its pods moved, within the test.
    // (Leases renewed every 2 s, so healthy nodes never look silent.)
    c = await composeUp({
      env: { KEMU_NODE_LEASE: "8", KEMU_NODE_GRACE: "8s", KEMU_EVICTION_TIMEOUT: "2s" },
    });
    await until("3 Ready nodes", async () => (await readyNodes(c)).length === 3, 60_000);
    await c.kubectl(["apply", "-f", "-"], { input: workload });
    await until("3 ready echo pods and the client", async () => {
      const ok = (await pods()).filter(ready).length === 3;
      const client = await c.kubectl(["get", "pod", "client", "-o", "jsonpath={.status.phase}"]);
      return ok && client === "Running";
    });
  }, 300_000);

  afterAll(async () => {
    if (c) {
      const left = await c.down();
      expect(left).toEqual([]);
    }
  }, 180_000);

  it("publishes a kubeconfig that kubectl on the host uses, with three Ready nodes", async () => {
    expect((await readyNodes(c)).sort()).toEqual(["node-1", "node-2", "node-3"]);
    const server = await c.kubectl(["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"]);
    expect(server).toBe(`https://127.0.0.1:${c.apiPort}`);
  });

  it("carries pod traffic between node containers without NAT", async () => {
    const clientIP = await c.kubectl(["get", "pod", "client", "-o", "jsonpath={.status.podIP}"]);
    const remote = (await pods()).find((p) => p.spec.nodeName !== "node-1")!;
    const seen = await inClient([
      "timeout",
      "5",
      "wget",
      "-qO-",
      `http://${remote.status.podIP}:8080/clientip`,
    ]);
    expect(seen.split(":")[0]).toBe(clientIP);
  });

  it("serves kubectl logs and exec for pods in other node containers", async () => {
    const remote = (await pods()).find((p) => p.spec.nodeName !== "node-1")!;
    expect(await c.kubectl(["logs", remote.metadata.name, "--tail=5"])).toContain("GET /hostname");
    expect((await c.kubectl(["exec", remote.metadata.name, "--", "hostname"])).trim()).toBe(
      remote.metadata.name,
    );
  });

  it("reaches the echo workload through its ClusterIP by DNS name, on every backend", async () => {
    const lookup = await inClient(["nslookup", "echo.default.svc.cluster.local"]);
    const clusterIP = await c.kubectl(["get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
    expect(lookup).toContain(clusterIP);
    const names = new Set<string>();
    for (let i = 0; i < 30 && names.size < 3; i++) {
      names.add(await inClient(["timeout", "5", "wget", "-qO-", "http://echo/hostname"]));
    }
    expect([...names].sort()).toEqual((await pods()).map((p) => p.metadata.name).sort());
  });

  it("answers on the NodePort of every node from the host", async () => {
    const nodePort = await c.kubectl(["get", "svc", "echo", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    const names = (await pods()).map((p) => p.metadata.name);
    for (const node of ["node-1", "node-2", "node-3"]) {
      const ip = await c.kubectl(["get", "node", node, "-o", "jsonpath={.status.addresses[0].address}"]);
      expect(ip.startsWith(`${c.underlay}.`)).toBe(true);
      const r = await fetch(`http://${ip}:${nodePort}/hostname`, { signal: AbortSignal.timeout(5000) });
      expect(names).toContain(await r.text());
    }
  });

  it("shows VXLAN frames with both pod IPs in a capture inside a node container", async () => {
    const clientIP = await c.kubectl(["get", "pod", "client", "-o", "jsonpath={.status.podIP}"]);
    const remote = (await pods()).find((p) => p.spec.nodeName !== "node-1")!;
    const capture = c.exec(
      remote.spec.nodeName!,
      ["timeout", "10", "tcpdump", "-nli", "eth0", "-c", "2", "udp", "port", "8472"],
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    await inClient(["ping", "-c", "3", remote.status.podIP!]);
    const out = await capture;
    expect(out).toMatch(/\.8472: OTV.*instance 1/);
    expect(out).toContain(`${clientIP} > ${remote.status.podIP}: ICMP echo request`);
  });

  it("kemu node exec and kemu status reach the node containers, --name being the Compose project", async () => {
    const ip = await c.kubectl(["get", "node", "node-2", "-o", "jsonpath={.status.addresses[0].address}"]);
    const out = await ok([
      KEMU,
      "node",
      "exec",
      "--name",
      c.project,
      "node-2",
      "--",
      "ip",
      "-o",
      "-4",
      "addr",
      "show",
      "eth0",
    ]);
    expect(out).toContain(`inet ${ip}/24`);
    const unknown = await sh([KEMU, "node", "exec", "--name", c.project, "node-9", "--", "true"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `no node container "node-9" in project ${c.project}; its nodes: node-1, node-2, node-3`,
    );
    const status = await ok([KEMU, "status", "--name", c.project]);
    expect(status).toContain(
      `Docker cluster ${c.project} (docker compose -p ${c.project})\n  nodes:       node-1, node-2, node-3`,
    );
  });

  it("programs kube-proxy's chains in a node container's iptables", async () => {
    const nat = await c.exec("node-1", ["iptables-save", "-t", "nat"]);
    expect(nat).toMatch(/-A KUBE-SERVICES .*default\/echo cluster IP.* -j KUBE-SVC-/);
    expect(nat).toContain("-A KUBE-NODEPORTS");
  });

  it("keeps the cluster off the host's uplink: internal underlay, no default routes", async () => {
    const nets = await c.compose(["config", "--services"]);
    expect(nets.split("\n").filter(Boolean).sort()).toEqual(["control-plane", "node-1", "node-2", "node-3"]);
    const internal = await c.exec("node-1", [
      "sh",
      "-c",
      "ip route show default; ip route get 192.0.2.1 2>&1 || true",
    ]);
    expect(internal).not.toMatch(/^default/m);
    expect(internal).toMatch(/unreachable/);
    const id = spawnSync(
      "docker",
      [
        "network",
        "ls",
        "-q",
        "--filter",
        `label=${PROJECT_LABEL}=${c.project}`,
        "--filter",
        "label=com.docker.compose.network=underlay",
      ],
      { encoding: "utf8" },
    ).stdout.trim();
    const network = JSON.parse(spawnSync("docker", ["network", "inspect", id], { encoding: "utf8" }).stdout);
    expect(network[0].Internal).toBe(true);
  });

  it("adds and removes node containers through /kemu/v1/nodes, refusing bad names", async () => {
    const bad = await c.api("POST", "/kemu/v1/nodes", { name: "Node_4" });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toContain("RFC 1123");
    const added = await c.api("POST", "/kemu/v1/nodes", {});
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ kind: "ManagedNode", name: "node-4", addedAtRuntime: true });
    await until("node-4 Ready", async () => (await readyNodes(c)).includes("node-4"));
    const dup = await c.api("POST", "/kemu/v1/nodes", { name: "node-4" });
    expect(dup.status).toBe(409);
    const removed = await c.api("DELETE", "/kemu/v1/nodes/node-4");
    expect(removed.status).toBe(200);
    await until(
      "node-4 gone",
      async () => !(await c.kubectl(["get", "nodes", "-o", "name"])).includes("node-4"),
    );
    expect((await c.api("GET", "/kemu/v1/nodes/node-4")).status).toBe(404);
  }, 90_000);

  it("restarting a node container brings it back Ready with its pods running again", async () => {
    const target = (await pods()).map((p) => p.spec.nodeName!).find((n) => n !== "node-1")!;
    const restarts = async () =>
      Object.fromEntries(
        (await pods())
          .filter((p) => p.spec.nodeName === target)
          .map((p) => [p.metadata.name, p.status.containerStatuses?.[0]?.restartCount ?? 0]),
      );
    const before = await restarts();
    expect(Object.keys(before).length).toBeGreaterThan(0);
    await c.compose(["restart", "-t", "2", target]);
    // The same pods, their containers started again by the new agent (as kubelet after a reboot).
    await until(`${target}'s pods restarted and Ready`, async () => {
      const now = await restarts();
      const live = (await pods()).filter((p) => p.spec.nodeName === target && ready(p)).length;
      return (
        Object.keys(before).every((n) => (now[n] ?? 0) > before[n]) && live === Object.keys(before).length
      );
    });
    expect((await readyNodes(c)).includes(target)).toBe(true);
    const r = await inClient(["timeout", "5", "wget", "-qO-", "http://echo/hostname"]);
    expect(r).toMatch(/^echo-/);
  }, 90_000);

  it("a stopped node turns NotReady, its pods move elsewhere and leave the endpoints", async () => {
    // A node with an echo pod other than the client's.
    const victim = (await pods()).map((p) => p.spec.nodeName!).find((n) => n !== "node-1")!;
    expect(victim).toBeDefined();
    const stopped = await c.api("POST", `/kemu/v1/nodes/${victim}/stop`);
    expect(stopped.json).toMatchObject({ name: victim, state: "stopped" });
    await until(`${victim} NotReady`, async () => !(await readyNodes(c)).includes(victim), 30_000);
    await until(
      "3 ready echo pods off the stopped node, endpoints without it",
      async () => {
        const live = (await pods()).filter(ready);
        if (live.length !== 3 || live.some((p) => p.spec.nodeName === victim)) return false;
        const eps = await c.kubectl([
          "get",
          "endpoints",
          "echo",
          "-o",
          "jsonpath={.subsets[*].addresses[*].nodeName}",
        ]);
        return !eps.split(" ").includes(victim) && eps.split(" ").length === 3;
      },
      60_000,
    );
    const started = await c.api("POST", `/kemu/v1/nodes/${victim}/start`);
    expect(started.json).toMatchObject({ name: victim, state: "running" });
    await until(`${victim} Ready again`, async () => (await readyNodes(c)).includes(victim), 30_000);
  }, 120_000);

  it("down -v leaves no container, network or volume of the project", async () => {
    const project = c.project;
    const left = await c.down();
    c = undefined as unknown as ComposeCluster;
    expect(left).toEqual([]);
    expect(leftovers(project)).toEqual({ containers: [], networks: [], volumes: [] });
  }, 180_000);
});
