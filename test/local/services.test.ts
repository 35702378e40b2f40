// Services end to end on a 3-node local cluster, the same suite for both kube-proxy modes: real
// connections from pods, the underlay and the host through the DNAT rules the agents program.

import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../harness.ts";
import { clientPod, downAndCheck, type LocalCluster, ok, upLocalCluster } from "./kit.ts";

const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";

function deployment(name: string, replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: netexec
        image: ${AGNHOST}
        args: ["netexec", "--http-port=8080", "--udp-port=8081"]
        ports:
        - {name: http, containerPort: 8080}
        - {name: udp, containerPort: 8081, protocol: UDP}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
`;
}

function service(name: string, spec: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
${spec}`;
}

/** GET from the host; resolves with the body or rejects (connection refused, timeout). */
function hostGet(url: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

describe.each(["iptables", "nftables"])("Services with kube-proxy in %s mode", (mode) => {
  let c: LocalCluster;
  let vip: string;

  /** Until `url` answers from the client: the API's endpoints are ready before the node's rules are. */
  async function serving(url: string): Promise<void> {
    await eventually(async () => (await c.wget("client", url, 2)).code === 0, 15_000, 200);
  }

  /** `count` fresh connections from the client pod; returns how many reached each backend. */
  async function spread(url: string, count: number, pod = "client"): Promise<Record<string, number>> {
    const out = await c.k([
      "exec",
      pod,
      "--",
      "sh",
      "-c",
      `for i in $(seq ${count}); do timeout 5 wget -q -O- "$1" || echo FAILED; echo; done`,
      "sh",
      url,
    ]);
    const counts: Record<string, number> = {};
    for (const line of out.split("\n").filter(Boolean)) counts[line] = (counts[line] ?? 0) + 1;
    return counts;
  }

  async function readyEndpoints(svc: string): Promise<number> {
    const r = await c.kubectl([
      "get",
      "endpointslices",
      "-l",
      `kubernetes.io/service-name=${svc}`,
      "-o",
      "json",
    ]);
    if (r.code !== 0) return -1;
    return JSON.parse(r.stdout)
      .items.flatMap((s: any) => s.endpoints ?? [])
      .filter((e: any) => e.conditions?.ready).length;
  }

  beforeAll(async () => {
    c = await upLocalCluster(mode === "iptables" ? "si" : "sn", ["--nodes", "3", "--proxy-mode", mode]);
    await c.k(
      ["apply", "-f", "-"],
      [
        deployment("web", 3),
        service("web", "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n"),
        clientPod("client", "node-1"),
      ].join("---\n"),
    );
    await c.waitPod("client");
    await eventually(async () => (await readyEndpoints("web")) === 3, 60_000, 200);
    vip = JSON.parse(await c.k(["get", "svc", "web", "-o", "json"])).spec.clusterIP;
  }, 120_000);

  afterAll(async () => {
    await downAndCheck(c);
  }, 60_000);

  it("spreads 60 new connections to a ClusterIP over all 3 backends", async () => {
    expect(vip).toMatch(/^10\.(9[6-9]|1[01][0-9])\./);
    const pods = JSON.parse(await c.k(["get", "pods", "-l", "app=web", "-o", "json"])).items.map(
      (p: any) => p.metadata.name,
    );
    // A fair 1/3 split of 60 lands outside 10..30 for some backend about once in 80 runs; a second
    // round of 60 fresh connections then decides (a skewed split fails both).
    await serving(`http://${vip}/hostname`);
    let counts: Record<string, number> = {};
    for (let round = 0; round < 2; round++) {
      counts = await spread(`http://${vip}/hostname`, 60);
      if (Object.values(counts).every((n) => n >= 10 && n <= 30)) break;
    }
    expect(Object.keys(counts).sort()).toEqual([...pods].sort());
    for (const n of Object.values(counts)) {
      expect(n, JSON.stringify(counts)).toBeGreaterThanOrEqual(10);
      expect(n, JSON.stringify(counts)).toBeLessThanOrEqual(30);
    }
  });

  it("sends every connection of one client to one backend with ClientIP affinity", async () => {
    await c.k(
      ["apply", "-f", "-"],
      service(
        "sticky",
        "  selector: {app: web}\n  sessionAffinity: ClientIP\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
      ),
    );
    await expect.poll(() => readyEndpoints("sticky"), { timeout: 10_000 }).toBe(3);
    const sticky = JSON.parse(await c.k(["get", "svc", "sticky", "-o", "json"])).spec.clusterIP;
    await serving(`http://${sticky}/hostname`);
    const counts = await spread(`http://${sticky}/hostname`, 60);
    expect(Object.values(counts)).toEqual([60]);
    expect(Object.keys(counts)[0]).toMatch(/^web-/);
  });

  it("keeps the client's pod IP (no NAT between pods) and lets a backend reach itself (hairpin)", async () => {
    const client = await c.pod("client");
    const clientip = await c.fetch("client", `http://${vip}/clientip`);
    expect(clientip.split(":")[0]).toBe(client.status.podIP);
    const backend = JSON.parse(await c.k(["get", "pods", "-l", "app=web", "-o", "json"])).items[0].metadata
      .name;
    const self = await spread(`http://${vip}/hostname`, 12, backend);
    expect(self.FAILED).toBeUndefined();
    expect(Object.values(self).reduce((a, b) => a + b, 0)).toBe(12);
  });

  it("shows the Service in the node's rules as kube-proxy writes them", async () => {
    if (mode === "iptables") {
      const nat = (
        await c.kemu(["node", "exec", "--name", c.name, "node-1", "--", "iptables-save", "-t", "nat"])
      ).stdout;
      expect(nat).toMatch(/^:KUBE-SERVICES /m);
      expect(nat).toMatch(/^:KUBE-SVC-[A-Z2-7]{16} /m);
      expect(nat).toMatch(/^:KUBE-SEP-[A-Z2-7]{16} /m);
      expect(nat).toContain(`-d ${vip}/32 -p tcp -m comment --comment "default/web:http cluster IP"`);
      // iptables-save prints the kernel's fixed-point probability: 1/3 reads back as 0.33333333349.
      expect(nat).toMatch(/-m statistic --mode random --probability 0\.33333333/);
      expect(nat).toContain("-j KUBE-MARK-MASQ");
    } else {
      const table = (
        await c.kemu([
          "node",
          "exec",
          "--name",
          c.name,
          "node-1",
          "--",
          "nft",
          "list",
          "table",
          "ip",
          "kube-proxy",
        ])
      ).stdout;
      expect(table).toContain("map service-ips");
      expect(table).toContain(`${vip} . tcp . 80 : goto service-`);
      expect(table).toMatch(/numgen random mod 3 vmap/);
    }
  });

  it("rejects connections to a Service without ready endpoints at once", async () => {
    await c.k(
      ["apply", "-f", "-"],
      service("nobody", "  selector: {app: nobody}\n  ports:\n  - {port: 80}\n"),
    );
    const nobody = JSON.parse(await c.k(["get", "svc", "nobody", "-o", "json"])).spec.clusterIP;
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const r = await c.wget("client", `http://${nobody}/`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refused/i);
    expect(Date.now() - t0).toBeLessThan(4000); // refused by the REJECT rule, not a timeout
  });

  it("answers on a NodePort at every node's underlay address", async () => {
    await c.k(
      ["apply", "-f", "-"],
      service(
        "np",
        "  type: NodePort\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
      ),
    );
    const np = JSON.parse(await c.k(["get", "svc", "np", "-o", "json"]));
    const nodePort = np.spec.ports[0].nodePort;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    await expect.poll(() => readyEndpoints("np"), { timeout: 10_000 }).toBe(3);
    const plan = c.plan();
    for (const node of plan.nodes) {
      const out = await ok([
        "ip",
        "netns",
        "exec",
        plan.underlay.netns,
        "busybox",
        "timeout",
        "5",
        "busybox",
        "wget",
        "-q",
        "-O-",
        `http://${node.address}:${nodePort}/hostname`,
      ]);
      expect(out.trim()).toMatch(/^web-/);
    }
  });

  it("gives a LoadBalancer an address from the pool that the host reaches, keeping the client IP with policy Local", async () => {
    await c.k(
      ["apply", "-f", "-"],
      [
        service(
          "lb",
          "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
        ),
        service(
          "lb-local",
          "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n",
        ),
      ].join("---\n"),
    );
    const ingress = async (name: string) =>
      JSON.parse(await c.k(["get", "svc", name, "-o", "json"])).status?.loadBalancer?.ingress?.[0]?.ip as
        | string
        | undefined;
    await expect.poll(() => ingress("lb"), { timeout: 10_000 }).toBeTruthy();
    await expect.poll(() => ingress("lb-local"), { timeout: 10_000 }).toBeTruthy();
    const plan = c.plan();
    const lbIP = (await ingress("lb"))!;
    const localIP = (await ingress("lb-local"))!;
    expect(lbIP.startsWith(plan.loadBalancer.pool.split(".").slice(0, 3).join("."))).toBe(true);
    await expect
      .poll(() => hostGet(`http://${lbIP}/hostname`).catch((e) => String(e)), { timeout: 10_000 })
      .toMatch(/^web-/);
    // Policy Cluster masquerades; policy Local preserves the host's own address on the link.
    await expect
      .poll(() => hostGet(`http://${localIP}/clientip`).catch((e) => String(e)), { timeout: 10_000 })
      .toMatch(new RegExp(`^${plan.loadBalancer.hostAddress.replaceAll(".", "\\.")}:`));
    expect((await c.k(["get", "svc", "lb"])).replaceAll(/\s+/g, " ")).toContain(
      `LoadBalancer ${JSON.parse(await c.k(["get", "svc", "lb", "-o", "json"])).spec.clusterIP} ${lbIP}`,
    );
  });

  it("serves a selector-less Service from manually written Endpoints", async () => {
    const backend = JSON.parse(await c.k(["get", "pods", "-l", "app=web", "-o", "json"])).items[0];
    await c.k(
      ["apply", "-f", "-"],
      [
        service("manual", "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"),
        `apiVersion: v1
kind: Endpoints
metadata:
  name: manual
subsets:
- addresses:
  - ip: ${backend.status.podIP}
  ports:
  - {name: http, port: 8080}
`,
      ].join("---\n"),
    );
    await expect.poll(() => readyEndpoints("manual"), { timeout: 10_000 }).toBe(1);
    const manual = JSON.parse(await c.k(["get", "svc", "manual", "-o", "json"])).spec.clusterIP;
    await serving(`http://${manual}/hostname`);
    const counts = await spread(`http://${manual}/hostname`, 5);
    expect(counts).toEqual({ [backend.metadata.name]: 5 });
  });

  it("rejects a ClusterIP outside the range and a NodePort already taken, and leaves out pods without a named targetPort", async () => {
    const outside = await c.kubectl(
      ["apply", "-f", "-"],
      service("outside", "  clusterIP: 192.168.1.1\n  ports:\n  - {port: 80}\n"),
    );
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain("is not in the valid range");
    const np = JSON.parse(await c.k(["get", "svc", "np", "-o", "json"])).spec.ports[0].nodePort;
    const dup = await c.kubectl(
      ["apply", "-f", "-"],
      service("dup", `  type: NodePort\n  ports:\n  - {port: 80, nodePort: ${np}}\n`),
    );
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain("provided port is already allocated");
    await c.k(
      ["apply", "-f", "-"],
      service(
        "named",
        "  selector: {app: web}\n  ports:\n  - {name: metrics, port: 9090, targetPort: metrics}\n",
      ),
    );
    // As upstream: the pods are listed, but with no port for a name none of their containers
    // declares, so kube-proxy has no endpoint for the Service port and refuses connections.
    await new Promise((r) => setTimeout(r, 1000));
    const slices = JSON.parse(
      await c.k(["get", "endpointslices", "-l", "kubernetes.io/service-name=named", "-o", "json"]),
    ).items;
    expect(slices.flatMap((s: any) => s.ports ?? []).filter((p: any) => p.name === "metrics")).toEqual([]);
    const named = JSON.parse(await c.k(["get", "svc", "named", "-o", "json"])).spec.clusterIP;
    const r = await c.wget("client", `http://${named}:9090/`);
    expect(r.stderr).toMatch(/refused/i);
  });

  it("stops sending new connections to removed pods within a second of scaling 3 -> 1", async () => {
    await c.k(["scale", "deployment", "web", "--replicas=1"]);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
    const pods = JSON.parse(await c.k(["get", "pods", "-l", "app=web", "-o", "json"])).items;
    const kept = pods.filter((p: any) => !p.metadata.deletionTimestamp).map((p: any) => p.metadata.name);
    expect(kept).toHaveLength(1);
    const counts = await spread(`http://${vip}/hostname`, 20);
    expect(counts).toEqual({ [kept[0]]: 20 });
  });
});
