// Real kubectl against Services, Endpoints and EndpointSlices: the `create service` generators
// (sent as protobuf), `expose`, the server-side tables of `get svc,ep,endpointslices` (with -o wide),
// `describe svc`, and readable errors for invalid manifests and allocation conflicts. kubectl is
// looked up on PATH and required, as in kubectl.test.ts.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import { type Kubectl, kubectlFor, parseTable } from "./kubectl-kit.ts";

const NODE = "node-a";
const KUBECTL_TIMEOUT_MS = 20_000;
const WAIT = 10_000;

describe("kubectl and Services", () => {
  let c: TestCluster;
  let kit: Kubectl;

  const kubectl = (args: string[]) => kit.run(args);
  const ok = (args: string[]) => kit.ok(args);

  async function api(method: string, path: string, body?: unknown): Promise<any> {
    const r = await c.request(method, path, { body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r.json;
  }

  beforeAll(async () => {
    c = await startTestCluster({ nodeMonitorGracePeriodMs: 3_600_000, loadBalancerPool: "192.0.2.240/29" });
    kit = kubectlFor(c.server.kubeconfigPath, "kemu-kubectl-svc-", KUBECTL_TIMEOUT_MS);
    // A node and a running, ready pod as an agent reports them.
    await api("POST", "/api/v1/nodes", {
      metadata: { name: NODE },
      status: { conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "ready" }] },
    });
    await api("POST", "/api/v1/namespaces/default/pods", {
      metadata: { name: "web", labels: { app: "web" } },
      spec: {
        nodeName: NODE,
        containers: [{ name: "app", image: "nginx:1.27", ports: [{ name: "http", containerPort: 8080 }] }],
      },
    });
    await api("PATCH", "/api/v1/namespaces/default/pods/web/status", {
      status: {
        phase: "Running",
        podIP: "10.244.0.5",
        podIPs: [{ ip: "10.244.0.5" }],
        conditions: [{ type: "Ready", status: "True" }],
      },
    });
  });

  afterAll(async () => {
    await c?.close();
    kit?.cleanup();
  });

  it("create service clusterip allocates an address; get svc prints it", async () => {
    expect((await ok(["create", "service", "clusterip", "web", "--tcp=80:8080"])).trim()).toBe(
      "service/web created",
    );
    const t = parseTable(await ok(["get", "svc", "web"]));
    expect(t.headers).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    const clusterIP = (await api("GET", "/api/v1/namespaces/default/services/web")).spec.clusterIP;
    expect(t.rows).toEqual([
      {
        NAME: "web",
        TYPE: "ClusterIP",
        "CLUSTER-IP": clusterIP,
        "EXTERNAL-IP": "<none>",
        "PORT(S)": "80/TCP",
        AGE: expect.any(String),
      },
    ]);
  });

  it("expose pod makes a Service from the pod's labels and a named target port", async () => {
    expect(
      (await ok(["expose", "pod", "web", "--port=80", "--target-port=http", "--name=web-exposed"])).trim(),
    ).toBe("service/web-exposed exposed");
    const svc = await api("GET", "/api/v1/namespaces/default/services/web-exposed");
    expect(svc.spec).toMatchObject({
      selector: { app: "web" },
      ports: [{ port: 80, protocol: "TCP", targetPort: "http" }],
    });
  });

  it("get svc -o wide adds the selector; every type prints its external address", async () => {
    await ok(["create", "service", "nodeport", "np", "--tcp=80:80", "--node-port=30080"]);
    await ok(["create", "service", "loadbalancer", "lb", "--tcp=443:8443"]);
    await ok(["create", "service", "externalname", "ext", "--external-name", "db.example.com"]);
    await eventually(
      async () => (await api("GET", "/api/v1/namespaces/default/services/lb")).status.loadBalancer.ingress,
      WAIT,
    );
    const t = parseTable(await ok(["get", "svc", "-o", "wide"]));
    expect(t.headers).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    const byName = Object.fromEntries(t.rows.map((r) => [r.NAME, r]));
    expect(byName.kubernetes).toMatchObject({
      TYPE: "ClusterIP",
      "CLUSTER-IP": "10.96.0.1",
      "PORT(S)": "443/TCP",
      SELECTOR: "<none>",
    });
    expect(byName["web-exposed"]).toMatchObject({ SELECTOR: "app=web" });
    expect(byName.np).toMatchObject({ TYPE: "NodePort", "EXTERNAL-IP": "<none>", "PORT(S)": "80:30080/TCP" });
    expect(byName.lb).toMatchObject({ TYPE: "LoadBalancer", "EXTERNAL-IP": "192.0.2.240" });
    expect(byName.lb["PORT(S)"]).toMatch(/^443:3\d{4}\/TCP$/);
    expect(byName.ext).toMatchObject({
      TYPE: "ExternalName",
      "CLUSTER-IP": "<none>",
      "EXTERNAL-IP": "db.example.com",
      "PORT(S)": "<none>",
    });
  });

  it("get svc,ep,endpointslices prints the three tables", async () => {
    await eventually(async () => (await ok(["get", "ep", "web-exposed"])).includes("10.244.0.5:8080"), WAIT);
    const blocks = (await ok(["get", "svc,ep,endpointslices"]))
      .split(/\n\s*\n/)
      .filter((b) => b.trim())
      .map(parseTable);
    expect(blocks.map((b) => b.headers)).toEqual([
      ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
      ["NAME", "ENDPOINTS", "AGE"],
      ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
    ]);
    const eps = Object.fromEntries(blocks[1].rows.map((r) => [r.NAME, r.ENDPOINTS]));
    expect(eps["endpoints/web"]).toBe("10.244.0.5:8080");
    expect(eps["endpoints/web-exposed"]).toBe("10.244.0.5:8080");
    expect(eps["endpoints/np"]).toBe("<none>");
    expect(eps["endpoints/ext"]).toBeUndefined();
    const slices = blocks[2].rows.filter((r) =>
      r.NAME.startsWith("endpointslice.discovery.k8s.io/web-exposed-"),
    );
    expect(slices).toEqual([
      {
        NAME: expect.stringMatching(/-[a-z0-9]{5}$/),
        ADDRESSTYPE: "IPv4",
        PORTS: "8080",
        ENDPOINTS: "10.244.0.5",
        AGE: expect.any(String),
      },
    ]);
    const placeholder = blocks[2].rows.find((r) => r.NAME.startsWith("endpointslice.discovery.k8s.io/np-"));
    expect(placeholder).toMatchObject({ PORTS: "<unset>", ENDPOINTS: "<unset>" });
  });

  it("get endpointslices -l selects a Service's slices by kubernetes.io/service-name", async () => {
    const t = parseTable(await ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]));
    expect(t.rows).toHaveLength(1);
    expect(t.rows[0]).toMatchObject({
      NAME: expect.stringMatching(/^web-[a-z0-9]{5}$/),
      PORTS: "8080",
      ENDPOINTS: "10.244.0.5",
    });
  });

  it("describe svc shows addresses, ports, endpoints and events", async () => {
    const web = await ok(["describe", "svc", "web-exposed"]);
    const clusterIP = (await api("GET", "/api/v1/namespaces/default/services/web-exposed")).spec.clusterIP;
    expect(web).toMatch(/^Name:\s+web-exposed$/m);
    expect(web).toMatch(/^Type:\s+ClusterIP$/m);
    expect(web).toMatch(new RegExp(`^IP:\\s+${clusterIP.replace(/\./g, "\\.")}$`, "m"));
    expect(web).toMatch(/^TargetPort:\s+http\/TCP$/m);
    expect(web).toMatch(/^Endpoints:\s+10\.244\.0\.5:8080$/m);
    const lb = await ok(["describe", "svc", "lb"]);
    expect(lb).toMatch(/^LoadBalancer Ingress:\s+192\.0\.2\.240 \(VIP\)$/m);
    expect(lb).toMatch(
      /Normal\s+IPAllocated\s+\S+\s+service-lb-controller\s+Assigned IP \["192\.0\.2\.240"\]/,
    );
  });

  it("refuses a taken node port and an invalid manifest with readable errors", async () => {
    const dup = await kubectl(["create", "service", "nodeport", "np2", "--tcp=80:80", "--node-port=30080"]);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain(
      'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    );
    const file = join(kit.work, "bad-svc.yaml");
    writeFileSync(
      file,
      `apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  clusterIP: 1.2.3.4
  selector:
    app: web
  ports:
  - port: 80
  - port: 443
`,
    );
    const bad = await kubectl(["apply", "-f", file]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('The Service "bad" is invalid:');
    expect(bad.stderr).toContain("spec.ports[0].name: Required value");
    expect(bad.stderr).toContain("spec.ports[1].name: Required value");
    // Named ports: validation passes, allocation refuses the out-of-range address.
    writeFileSync(
      file,
      `apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  clusterIP: 1.2.3.4
  ports:
  - port: 80
`,
    );
    const outside = await kubectl(["apply", "-f", file]);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain(
      'The Service "bad" is invalid: spec.clusterIPs: Invalid value: []string{"1.2.3.4"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12',
    );
    expect((await kubectl(["get", "svc", "bad"])).code).not.toBe(0);
  });

  it("delete svc removes its Endpoints and EndpointSlices", async () => {
    expect((await ok(["delete", "svc", "web-exposed"])).trim()).toBe('service "web-exposed" deleted');
    await eventually(async () => (await kubectl(["get", "ep", "web-exposed"])).code !== 0, WAIT);
    await eventually(
      async () =>
        (
          await ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=web-exposed", "-o", "name"])
        ).trim() === "",
      WAIT,
    );
  });
});
