// A 3-node local cluster on the default VXLAN overlay, driven by the real CLI and kubectl: pod to
// pod traffic on one node and across nodes with no NAT, the encapsulation seen on the underlay,
// the pod sandbox (shared localhost, hostname), logs and exec on another node, bad input, agent
// and control-plane restarts, isolation, and a `kemu down` that leaves nothing behind.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPod,
  downAndCheck,
  type LocalCluster,
  leftovers,
  netexecPod,
  ok,
  sh,
  upLocalCluster,
} from "./kit.ts";

const SIDECAR_POD = `apiVersion: v1
kind: Pod
metadata:
  name: duo
spec:
  nodeName: node-3
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
  - name: sidecar
    image: busybox
    command: ["sh", "-c", "while true; do wget -qO- http://127.0.0.1:8080/hostname; echo; sleep 1; done"]
`;

describe("local cluster, vxlan overlay", () => {
  let c: LocalCluster;
  const ips: Record<string, string> = {};

  beforeAll(async () => {
    c = await upLocalCluster("tv", ["--nodes", "3"]);
    await c.k(
      ["apply", "-f", "-"],
      [
        netexecPod("web-1a", "node-1"),
        netexecPod("web-1b", "node-1"),
        netexecPod("web-2", "node-2"),
        clientPod("client-1", "node-1"),
        clientPod("client-3", "node-3"),
      ].join("---\n"),
    );
    for (const p of ["web-1a", "web-1b", "web-2", "client-1", "client-3"]) {
      ips[p] = (await c.waitPod(p)).status.podIP;
    }
  }, 120_000);

  afterAll(async () => {
    await downAndCheck(c);
  }, 60_000);

  it("prints where the API and kubeconfig are, and kemu status lists Ready nodes", async () => {
    expect(c.upOutput).toContain("3 nodes Ready");
    expect(c.upOutput).toMatch(/API: +https:\/\/127\.0\.0\.1:\d+/);
    expect(c.upOutput).toContain(`export KUBECONFIG=${c.dataDir}/kubeconfig`);
    const st = await c.kemu(["status", "--name", c.name]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/node-1 +True +172\.30\.\d+\.11 +10\.244\.\d+\.0\/24/);
    expect(st.stdout).toMatch(/node-3 +True/);
    const nodes = await c.k(["get", "nodes", "-o", "wide"]);
    expect(nodes.split("\n").filter((l) => / Ready /.test(l))).toHaveLength(3);
  });

  it("gives every pod an IP from its node's podCIDR and reports hostIP and conditions", async () => {
    const pod = await c.pod("web-2");
    const node = JSON.parse(await c.k(["get", "node", "node-2", "-o", "json"]));
    const prefix = node.spec.podCIDR.split(".").slice(0, 3).join(".");
    expect(pod.status.podIP.startsWith(`${prefix}.`)).toBe(true);
    expect(pod.status.hostIP).toBe(node.status.addresses.find((a: any) => a.type === "InternalIP").address);
    const cond = Object.fromEntries(pod.status.conditions.map((x: any) => [x.type, x.status]));
    expect(cond).toMatchObject({
      PodScheduled: "True",
      Initialized: "True",
      ContainersReady: "True",
      Ready: "True",
    });
    expect(pod.status.containerStatuses[0]).toMatchObject({ ready: true, restartCount: 0 });
    expect(pod.status.containerStatuses[0].state.running).toBeDefined();
  });

  it("pods reach each other by IP on one node and across nodes, without NAT", async () => {
    for (const target of ["web-1b", "web-2"]) {
      const ping = await c.k(["exec", "client-1", "--", "ping", "-c", "1", "-W", "2", ips[target]]);
      expect(ping).toContain("1 packets received");
      const clientip = await c.fetch("client-1", `http://${ips[target]}:8080/clientip`);
      expect(clientip.split(":")[0]).toBe(ips["client-1"]);
    }
    const hostname = await c.fetch("client-3", `http://${ips["web-1a"]}:8080/hostname`);
    expect(hostname.trim()).toBe("web-1a");
  });

  it("carries cross-node pod traffic in VXLAN (UDP 8472) frames on the underlay", async () => {
    const cap = c.background([
      "ip",
      "netns",
      "exec",
      `kemu-${c.name}-node-2`,
      "tcpdump",
      "-lni",
      "eth0",
      "-c",
      "2",
      "udp port 8472",
    ]);
    await new Promise((r) => setTimeout(r, 800)); // tcpdump attaches
    await c.k(["exec", "client-1", "--", "ping", "-c", "2", "-W", "2", ips["web-2"]]);
    await new Promise((r) => setTimeout(r, 300));
    const out = await cap.stop();
    // tcpdump decodes port 8472 (OTV, the same header as VXLAN) down to the inner packet.
    expect(out).toContain(ips["client-1"]);
    expect(out).toContain(ips["web-2"]);
    expect(out).toMatch(/ICMP echo (request|reply)/);
  });

  it("sends a 1400-byte payload with DF set across nodes (pod MTU leaves room for VXLAN)", async () => {
    const pod = await c.pod("client-1");
    const r = await ok([
      "ip",
      "netns",
      "exec",
      c.podNetns(pod),
      "ping",
      "-M",
      "do",
      "-s",
      "1400",
      "-c",
      "1",
      "-W",
      "2",
      ips["web-2"],
    ]);
    expect(r).toContain("1 received");
    const mtu = await ok(["ip", "-n", c.podNetns(pod), "-j", "link", "show", "eth0"]);
    expect(JSON.parse(mtu)[0].mtu).toBe(1450);
  });

  it("programs one route, neighbour and FDB entry per peer node", async () => {
    const nodes = JSON.parse(await c.k(["get", "nodes", "-o", "json"])).items;
    const ns = `kemu-${c.name}-node-1`;
    const routes = JSON.parse(await ok(["ip", "-n", ns, "-j", "route", "show", "dev", "kemu.1"]));
    const fdb = JSON.parse(await ok(["bridge", "-n", ns, "-j", "fdb", "show", "dev", "kemu.1"]));
    for (const peer of nodes.filter((n: any) => n.metadata.name !== "node-1")) {
      expect(routes.map((r: any) => r.dst)).toContain(peer.spec.podCIDR);
      const ip = peer.status.addresses.find((a: any) => a.type === "InternalIP").address;
      expect(fdb.map((f: any) => f.dst)).toContain(ip);
    }
  });

  it("runs the containers of a pod in one network namespace, with the pod name as hostname", async () => {
    await c.k(["apply", "-f", "-"], SIDECAR_POD);
    await c.waitPod("duo");
    await expect
      .poll(async () => (await c.kubectl(["logs", "duo", "-c", "sidecar"])).stdout, { timeout: 10_000 })
      .toContain("duo");
    expect((await c.k(["exec", "duo", "-c", "sidecar", "--", "hostname"])).trim()).toBe("duo");
    const hosts = await c.k(["exec", "duo", "-c", "sidecar", "--", "cat", "/etc/hosts"]);
    expect(hosts).toMatch(new RegExp(`${(await c.pod("duo")).status.podIP.replaceAll(".", "\\.")}\\s+duo`));
  });

  it("serves kubectl logs and exec for a pod on a non-first node", async () => {
    await c.fetch("client-1", `http://${ips["web-2"]}:8080/echo?msg=hello`);
    await expect
      .poll(async () => (await c.kubectl(["logs", "web-2"])).stdout, { timeout: 10_000 })
      .toContain("/echo");
    const tail = await c.k(["logs", "web-2", "--tail", "1"]);
    expect(tail.trim().split("\n")).toHaveLength(1);
    const echo = await c.k(["exec", "web-2", "--", "sh", "-c", "echo from-$(hostname); exit 0"]);
    expect(echo.trim()).toBe("from-web-2");
    const failing = await c.kubectl(["exec", "client-3", "--", "sh", "-c", "exit 3"]);
    expect(failing.code).toBe(3);
    const stdin = await c.kubectl(["exec", "-i", "client-3", "--", "cat"], "piped through\n");
    expect(stdin.stdout).toBe("piped through\n");
  });

  it("follows logs as the container writes them", async () => {
    const follow = c.background([
      "kubectl",
      "--kubeconfig",
      `${c.dataDir}/kubeconfig`,
      "logs",
      "-f",
      "web-1a",
    ]);
    await new Promise((r) => setTimeout(r, 500));
    await c.fetch("client-1", `http://${ips["web-1a"]}:8080/echo?msg=followed`);
    await expect.poll(() => follow.output(), { timeout: 5000 }).toContain("/echo?msg=followed");
    await follow.stop();
  });

  it("restarts failing containers per restartPolicy, with back-off and the previous log kept", async () => {
    const crash = (name: string, policy: string, code: number) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  restartPolicy: ${policy}
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo attempt from $(hostname); exit ${code}"]
`;
    await c.k(
      ["apply", "-f", "-"],
      [crash("crash", "Always", 3), crash("once", "Never", 3), crash("done", "OnFailure", 0)].join("---\n"),
    );
    const looping = await c.waitPod("crash", (p) => p.status?.containerStatuses?.[0]?.restartCount >= 1);
    const st = looping.status.containerStatuses[0];
    expect(st.state.waiting?.reason ?? "running").toMatch(/CrashLoopBackOff|running/);
    expect(st.lastState.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
    expect((await c.k(["logs", "crash", "--previous"])).trim()).toBe("attempt from crash");
    expect(
      (await c.waitPod("once", (p) => p.status?.phase === "Failed")).status.containerStatuses[0].restartCount,
    ).toBe(0);
    expect(
      (await c.waitPod("done", (p) => p.status?.phase === "Succeeded")).status.containerStatuses[0].state
        .terminated.reason,
    ).toBe("Completed");
    await c.k(["delete", "pod", "crash", "once", "done", "--wait=false"]);
  });

  it("stops containers on deletion with SIGTERM, then SIGKILL when the grace period ends", async () => {
    await c.k(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  nodeName: node-3
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "trap 'echo got TERM' TERM; while true; do sleep 0.2; done"]
`,
    );
    const pod = await c.waitPod("stubborn");
    const t0 = Date.now();
    await c.k(["delete", "pod", "stubborn"]);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1800); // it ignored SIGTERM, so only SIGKILL ended it
    const netns = JSON.parse(await ok(["ip", "-j", "netns", "list"])).map((n: any) => n.name);
    expect(netns).not.toContain(c.podNetns(pod));
  });

  it("leaves an unknown image waiting with ErrImagePull and the catalog in the message", async () => {
    await c.k(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata:
  name: bad-image
spec:
  containers:
  - name: app
    image: example.com/nope:1.0
`,
    );
    const pod = await c.waitPod("bad-image", (p) =>
      ["ErrImagePull", "ImagePullBackOff"].includes(p.status?.containerStatuses?.[0]?.state?.waiting?.reason),
    );
    const msg = pod.status.containerStatuses[0].state.waiting.message;
    expect(msg).toContain("example.com/nope:1.0");
    expect(msg).toContain("registry.k8s.io/e2e-test-images/agnhost");
    expect(pod.status.phase).toBe("Pending");
    await c.k(["delete", "pod", "bad-image", "--wait=false"]);
  });

  it("reports an impossible nodeSelector as FailedScheduling", async () => {
    await c.k(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata:
  name: nowhere
spec:
  nodeSelector:
    disk: ssd
  containers:
  - name: app
    image: busybox
    command: ["sleep", "1000"]
`,
    );
    await expect
      .poll(
        async () =>
          (await c.kubectl(["get", "events", "--field-selector", "involvedObject.name=nowhere"])).stdout,
        { timeout: 10_000 },
      )
      .toMatch(
        /FailedScheduling.*0\/3 nodes are available: 3 node\(s\) didn't match Pod's node affinity\/selector/,
      );
    expect((await c.pod("nowhere")).status.phase).toBe("Pending");
    await c.k(["delete", "pod", "nowhere", "--wait=false"]);
  });

  it("never routes to the host's uplink: no default route, no masquerade, nothing on the host", async () => {
    const plan = c.plan();
    for (const ns of [plan.underlay.netns, ...plan.nodes.map((n) => n.netns)]) {
      const routes = JSON.parse(await ok(["ip", "-n", ns, "-j", "route", "show", "default"]));
      expect(routes, ns).toEqual([]);
      const nat = await ok(["ip", "netns", "exec", ns, "iptables-save", "-t", "nat"]);
      // Masquerading only ever applies to traffic a rule marked first: kube-proxy's KUBE-POSTROUTING
      // returns at once for unmarked packets, and portmap's hairpin SNAT matches its own mark.
      const lines = nat.split("\n");
      for (const line of lines.filter((l) => l.includes("MASQUERADE"))) {
        expect(line, ns).toMatch(/^-A (CNI-HOSTPORT-MASQ|KUBE-POSTROUTING) /);
      }
      if (nat.includes("-A KUBE-POSTROUTING")) {
        expect(
          lines.find((l) => l.startsWith("-A KUBE-POSTROUTING")),
          ns,
        ).toMatch(/-m mark ! --mark 0x4000\/0x4000 -j RETURN/);
      }
    }
    // The host's only way in is its LoadBalancer link, routing the pool alone.
    const hostRoutes = JSON.parse(await ok(["ip", "-j", "route", "show"])) as { dst: string; dev: string }[];
    const intoCluster = hostRoutes.filter(
      (r) =>
        r.dev === plan.loadBalancer.hostInterface ||
        r.dst.startsWith(plan.underlay.subnet.replace(".0/24", ".")),
    );
    expect(intoCluster.map((r) => `${r.dst} dev ${r.dev}`)).toEqual([
      `${plan.loadBalancer.pool} dev ${plan.loadBalancer.hostInterface}`,
    ]);
    expect(hostRoutes.map((r) => r.dst)).not.toContain(plan.podCidr);
    const hostLinks = JSON.parse(await ok(["ip", "-j", "link", "show"])).map((l: any) => l.ifname);
    for (const n of plan.nodes) expect(hostLinks).not.toContain(n.bridgePort);
    // The control plane's namespace: its subnet, and each node's podCIDR via that node (it is on the
    // pod network, as an API server on a real node is). Nothing else.
    const underlayRoutes = JSON.parse(await ok(["ip", "-n", plan.underlay.netns, "-j", "route", "show"]));
    const nodes = JSON.parse(await c.k(["get", "nodes", "-o", "json"])).items;
    const podRoutes = nodes
      .map(
        (n: any) =>
          `${n.spec.podCIDR} via ${n.status.addresses.find((a: any) => a.type === "InternalIP").address}`,
      )
      .sort();
    expect(underlayRoutes.map((r: any) => (r.gateway ? `${r.dst} via ${r.gateway}` : r.dst)).sort()).toEqual(
      [plan.underlay.subnet, ...podRoutes].sort(),
    );
  });

  it("keeps pods running and reachable across an agent restart, and handles deletions made meanwhile", async () => {
    await c.k(["apply", "-f", "-"], netexecPod("web-2b", "node-2"));
    const doomed = await c.waitPod("web-2b");
    const before = await c.pod("web-2");
    const agent = c.state().processes.find((p) => p.name === "agent-node-2")!;
    process.kill(agent.pid, "SIGKILL");
    // An orphan sandbox (as a crash between creating a namespace and recording it would leave).
    const orphan = `kemu-${c.name}-node-2-p-0rphan00`;
    await ok(["ip", "netns", "add", orphan]);
    // While the agent is away a pod of its node is deleted: the API waits for the node to confirm.
    await c.k(["delete", "pod", "web-2b", "--wait=false"]);
    expect((await c.pod("web-2b")).metadata.deletionTimestamp).toBeDefined();
    const restarted = await c.kemu(["restart", "--name", c.name, "node-2"]);
    expect(restarted.code, restarted.stderr).toBe(0);
    await expect
      .poll(async () => (await c.kubectl(["get", "pod", "web-2b"])).code, { timeout: 20_000 })
      .not.toBe(0);
    const after = await c.waitPod("web-2");
    expect(after.status.podIP).toBe(before.status.podIP);
    expect(after.status.containerStatuses[0].restartCount).toBe(0);
    expect(after.status.containerStatuses[0].containerID).toBe(
      before.status.containerStatuses[0].containerID,
    );
    const hostname = await c.fetch("client-1", `http://${ips["web-2"]}:8080/hostname`);
    expect(hostname.trim()).toBe("web-2");
    const netns = JSON.parse(await ok(["ip", "-j", "netns", "list"])).map((n: any) => n.name);
    expect(netns).toContain(c.podNetns(after));
    expect(netns).not.toContain(c.podNetns(doomed));
    expect(netns).not.toContain(orphan);
  });

  it("keeps everything across a control-plane restart", async () => {
    const api = c.state().processes.find((p) => p.name === "api")!;
    process.kill(api.pid, "SIGKILL");
    const restarted = await c.kemu(["restart", "--name", c.name, "api"]);
    expect(restarted.code, restarted.stderr).toBe(0);
    await expect.poll(async () => (await c.kubectl(["get", "pods"])).code, { timeout: 20_000 }).toBe(0);
    const pods = await c.k(["get", "pods"]);
    expect(pods).toMatch(/web-2 +1\/1 +Running/);
    const hostname = await c.fetch("client-3", `http://${ips["web-1a"]}:8080/hostname`);
    expect(hostname.trim()).toBe("web-1a");
  });

  it("kemu down removes every namespace, link, mount and process it made", async () => {
    const { name, dataDir } = c;
    const hostLink = c.plan().loadBalancer.hostInterface;
    const r = await c.down();
    c = undefined as unknown as LocalCluster;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Cluster "${name}" is down`);
    expect(await leftovers(name, dataDir, [hostLink])).toEqual([]);
    const again = await sh([new URL("../../bin/kemu", import.meta.url).pathname, "status", "--name", name]);
    expect(again.code).toBe(1);
  });
});
