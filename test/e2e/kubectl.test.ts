// Real kubectl against a real control plane (in-process, HTTPS, the kubeconfig it writes). kubectl
// is looked up on PATH and is required: CI installs it (Debian's kubernetes-client when none is
// present), so a missing kubectl fails this file instead of skipping it. Every assertion is on
// what kubectl prints, cross-checked through the API where it matters.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { eventually, startTestCluster, type TestCluster } from "../harness.ts";
import { type Kubectl, kubectlFor, parseTable } from "./kubectl-kit.ts";

const NODE = "node-a";
const NODE_IP = "10.0.0.11";
const POD = "web";
/** Every kubectl run is bounded, so a hang fails the test with kubectl's own output. */
const KUBECTL_TIMEOUT_MS = 20_000;

function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function microTime(d = new Date()): string {
  return d.toISOString().replace(/Z$/, "000Z");
}

describe("kubectl against kemu api", () => {
  let c: TestCluster;
  let kit: Kubectl;
  const children = new Set<ChildProcess>();

  const kubectl = (args: string[]) => kit.run(args);
  const ok = (args: string[]) => kit.ok(args);

  /** A long-running kubectl (watch, delete that waits); output accumulates in `out`. */
  function start(args: string[]) {
    const child = spawn(kit.path, ["--cache-dir", join(kit.work, "cache"), ...args], {
      env: kit.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    const state = { out: "", err: "", exit: undefined as number | null | undefined };
    child.stdout!.on("data", (d) => {
      state.out += d;
    });
    child.stderr!.on("data", (d) => {
      state.err += d;
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once("close", (code) => {
        state.exit = code;
        children.delete(child);
        resolve(code);
      });
      child.once("error", (e) => {
        state.err += String(e);
        children.delete(child);
        resolve(null);
      });
    });
    return { child, state, exited };
  }

  function stopChild(child: ChildProcess): void {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGKILL");
    }
  }

  async function api(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
    return c.request(method, path, { body, headers });
  }

  async function getPod(name: string): Promise<any> {
    const r = await api("GET", `/api/v1/namespaces/default/pods/${name}`);
    expect(r.status, r.text).toBe(200);
    return r.json;
  }

  function podFile(labels: Record<string, string>, name = POD): string {
    const file = join(kit.work, `${name}-${Object.values(labels).join("-")}.yaml`);
    const labelLines = Object.entries(labels)
      .map(([k, v]) => `    ${k}: ${v}`)
      .join("\n");
    writeFileSync(
      file,
      `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels:
${labelLines}
spec:
  containers:
  - name: app
    image: nginx:1.27
    ports:
    - containerPort: 80
      name: http
`,
    );
    return file;
  }

  /** Registers a node as a node agent does: the Node with Ready status and addresses, then its Lease. */
  async function registerNode(name: string, ip: string): Promise<void> {
    const now = rfc3339();
    const created = await api("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
        },
      },
      status: {
        capacity: { cpu: "2", memory: "4Gi", pods: "110" },
        allocatable: { cpu: "2", memory: "4Gi", pods: "110" },
        nodeInfo: {
          machineID: "0123456789abcdef",
          systemUUID: "kemu-node-a",
          bootID: "kemu-boot",
          kernelVersion: "6.1.0-kemu",
          osImage: "kemu emulated node",
          containerRuntimeVersion: "kemu://0.1.0",
          kubeletVersion: "v1.32.0-kemu",
          kubeProxyVersion: "v1.32.0-kemu",
          operatingSystem: "linux",
          architecture: "amd64",
        },
      },
    });
    expect(created.status, created.text).toBe(201);
    // Heartbeat as the kubelet does: a strategic merge patch of the status subresource.
    const status = await api(
      "PATCH",
      `/api/v1/nodes/${name}/status`,
      {
        status: {
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "KubeletReady",
              message: "kemu agent is posting ready status",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
          addresses: [
            { type: "InternalIP", address: ip },
            { type: "Hostname", address: name },
          ],
        },
      },
      { "content-type": "application/strategic-merge-patch+json" },
    );
    expect(status.status, status.text).toBe(200);
    const lease = await api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: created.json.metadata.uid }],
      },
      spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() },
    });
    expect(lease.status, lease.text).toBe(201);
  }

  /** Reports the pod running with an IP from the node's podCIDR, as the node agent will. */
  async function reportRunning(name: string, ready: boolean): Promise<string> {
    const node = await eventually(
      async () => (await api("GET", `/api/v1/nodes/${NODE}`)).json?.spec?.podCIDR,
    );
    const podIp = String(node).replace(/\.0\/\d+$/, ".5");
    const now = rfc3339();
    const r = await api(
      "PATCH",
      `/api/v1/namespaces/default/pods/${name}/status`,
      {
        status: {
          phase: "Running",
          hostIP: NODE_IP,
          hostIPs: [{ ip: NODE_IP }],
          podIP: podIp,
          podIPs: [{ ip: podIp }],
          startTime: now,
          conditions: [
            { type: "Initialized", status: "True", lastProbeTime: null, lastTransitionTime: now },
            {
              type: "ContainersReady",
              status: ready ? "True" : "False",
              lastProbeTime: null,
              lastTransitionTime: now,
            },
            { type: "Ready", status: ready ? "True" : "False", lastProbeTime: null, lastTransitionTime: now },
          ],
          containerStatuses: [
            {
              name: "app",
              image: "nginx:1.27",
              imageID: "",
              containerID: `kemu://${name}-app`,
              ready,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: now } },
            },
          ],
        },
      },
      { "content-type": "application/strategic-merge-patch+json" },
    );
    expect(r.status, r.text).toBe(200);
    return podIp;
  }

  beforeAll(async () => {
    // A node that misses heartbeats for 40 s would turn NotReady mid-run on a slow machine.
    c = await startTestCluster({ nodeMonitorGracePeriodMs: 3_600_000 });
    kit = kubectlFor(c.server.kubeconfigPath, "kemu-kubectl-", KUBECTL_TIMEOUT_MS);
    await registerNode(NODE, NODE_IP);
  });

  afterAll(async () => {
    for (const child of children) stopChild(child);
    await c?.close();
    kit?.cleanup();
  });

  it("get nodes lists the registered node as Ready", async () => {
    const out = await ok(["get", "nodes"]);
    const t = parseTable(out);
    expect(t.headers).toEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    expect(t.rows).toEqual([
      expect.objectContaining({ NAME: NODE, STATUS: "Ready", VERSION: "v1.32.0-kemu" }),
    ]);

    const wide = parseTable(await ok(["get", "nodes", "-o", "wide"]));
    expect(wide.headers).toContain("INTERNAL-IP");
    expect(wide.rows[0]).toMatchObject({
      NAME: NODE,
      "INTERNAL-IP": NODE_IP,
      "OS-IMAGE": "kemu emulated node",
    });
  });

  it("create namespace demo", async () => {
    const r = await kubectl(["create", "namespace", "demo"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("namespace/demo created");
    expect(r.code).toBe(0);
    const t = parseTable(await ok(["get", "namespace", "demo"]));
    expect(t.rows).toEqual([expect.objectContaining({ NAME: "demo", STATUS: "Active" })]);
    const again = await kubectl(["create", "namespace", "demo"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('Error from server (AlreadyExists): namespaces "demo" already exists');
  });

  it("apply -f creates a pod, re-apply with a changed label configures it", async () => {
    const first = await ok(["apply", "-f", podFile({ app: "web", tier: "front" })]);
    expect(first.trim()).toBe(`pod/${POD} created`);
    const created = await getPod(POD);
    expect(created.metadata.labels).toEqual({ app: "web", tier: "front" });

    const second = await ok(["apply", "-f", podFile({ app: "web", tier: "back" })]);
    expect(second.trim()).toBe(`pod/${POD} configured`);
    const updated = await getPod(POD);
    expect(updated.metadata.labels).toEqual({ app: "web", tier: "back" });
    expect(updated.metadata.uid).toBe(created.metadata.uid);
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(
      Number(created.metadata.resourceVersion),
    );

    const third = await ok(["apply", "-f", podFile({ app: "web", tier: "back" })]);
    expect(third.trim()).toBe(`pod/${POD} unchanged`);
  });

  it("get pods -o wide shows the pod scheduled to the node with its IP", async () => {
    await eventually(async () => (await getPod(POD)).spec.nodeName === NODE);
    const ip = await reportRunning(POD, true);
    const t = parseTable(await ok(["get", "pods", "-o", "wide"]));
    expect(t.headers).toEqual([
      "NAME",
      "READY",
      "STATUS",
      "RESTARTS",
      "AGE",
      "IP",
      "NODE",
      "NOMINATED NODE",
      "READINESS GATES",
    ]);
    expect(t.rows).toEqual([
      expect.objectContaining({
        NAME: POD,
        READY: "1/1",
        STATUS: "Running",
        RESTARTS: "0",
        IP: ip,
        NODE: NODE,
        "NOMINATED NODE": "<none>",
        "READINESS GATES": "<none>",
      }),
    ]);
  });

  it("get pods -w prints a line for each change", async () => {
    const w = start(["get", "pods", "-w"]);
    const webLines = () => w.state.out.split("\n").filter((l) => l.startsWith(`${POD} `));
    try {
      await eventually(() => webLines().length >= 1, 10_000);
      expect(w.state.out.split("\n")[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
      expect(webLines()[0]).toMatch(/^web\s+1\/1\s+Running\s+0\s+\S+$/);

      expect((await ok(["label", "pod", POD, "watched=yes"])).trim()).toBe(`pod/${POD} labeled`);
      await eventually(() => webLines().length >= 2, 10_000);
      expect(webLines()[1]).toMatch(/^web\s+1\/1\s+Running\s+0\s+\S+$/);

      // A status change from the node agent: the container stops being ready.
      await reportRunning(POD, false);
      await eventually(() => webLines().length >= 3, 10_000);
      expect(webLines()[2]).toMatch(/^web\s+0\/1\s+Running\s+0\s+\S+$/);
      expect(w.state.exit).toBeUndefined();
      expect(w.state.err).toBe("");
    } finally {
      stopChild(w.child);
      await w.exited;
    }
    await reportRunning(POD, true);
  });

  it("wait --for=condition=Ready sees the pod's condition", async () => {
    const r = await kubectl(["wait", "--for=condition=Ready", `pod/${POD}`, "--timeout=15s"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(`pod/${POD} condition met`);
    expect(r.code).toBe(0);
  });

  it("describe pod shows the pod and its Scheduled event", async () => {
    await eventually(async () => {
      const r = await api(
        "GET",
        `/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D${POD},reason%3DScheduled`,
      );
      return r.json?.items?.length === 1;
    });
    const out = await ok(["describe", "pod", POD]);
    expect(out).toMatch(/^Name:\s+web$/m);
    expect(out).toMatch(/^Namespace:\s+default$/m);
    expect(out).toMatch(new RegExp(`^Node:\\s+${NODE}/${NODE_IP.replaceAll(".", "\\.")}$`, "m"));
    expect(out).toMatch(/^Status:\s+Running$/m);
    expect(out).toMatch(/^Labels:\s+app=web$/m);
    expect(out).toMatch(/^\s+Image:\s+nginx:1\.27$/m);
    expect(out).toMatch(/^\s+PodScheduled\s+True\s*$/m);
    const events = out.slice(out.indexOf("\nEvents:"));
    expect(events).toMatch(/^\s+Type\s+Reason\s+Age\s+From\s+Message$/m);
    expect(events).toMatch(
      /^\s+Normal\s+Scheduled\s+\S+\s+.+\s+Successfully assigned default\/web to node-a$/m,
    );
  });

  it("get events lists the scheduling event", async () => {
    const t = parseTable(await ok(["get", "events"]));
    expect(t.headers).toEqual(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    expect(t.rows).toContainEqual(
      expect.objectContaining({
        TYPE: "Normal",
        REASON: "Scheduled",
        OBJECT: `pod/${POD}`,
        MESSAGE: `Successfully assigned default/${POD} to ${NODE}`,
      }),
    );
    const filtered = parseTable(await ok(["get", "ev", "--field-selector", `involvedObject.name=${POD}`]));
    expect(filtered.rows.length).toBeGreaterThan(0);
    expect(filtered.rows.every((r) => r.OBJECT === `pod/${POD}`)).toBe(true);
  });

  it("the Scheduled event names default-scheduler as its source, as upstream", async () => {
    // Upstream's scheduler records with component "default-scheduler"; describe's FROM shows it.
    const out = await ok(["describe", "pod", POD]);
    expect(out).toMatch(/^\s+Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned/m);
  });

  it("get po,no,ns resolves short names", async () => {
    const out = await ok(["get", "po,no,ns"]);
    const blocks = out.split(/\n\s*\n/).map(parseTable);
    expect(blocks.map((b) => b.headers[0])).toEqual(["NAME", "NAME", "NAME"]);
    expect(blocks[0].rows.map((r) => r.NAME)).toEqual([`pod/${POD}`]);
    expect(blocks[1].rows.map((r) => r.NAME)).toEqual([`node/${NODE}`]);
    expect(blocks[2].rows.map((r) => r.NAME)).toEqual(
      expect.arrayContaining(["namespace/default", "namespace/kube-node-lease", "namespace/kube-system"]),
    );
    const all = parseTable(await ok(["get", "pods", "--all-namespaces"]));
    expect(all.headers.slice(0, 2)).toEqual(["NAMESPACE", "NAME"]);
    expect(all.rows).toEqual([expect.objectContaining({ NAMESPACE: "default", NAME: POD })]);
  });

  it("get pods --selector and --field-selector filter on the server", async () => {
    expect((await ok(["apply", "-f", podFile({ app: "db", tier: "back" }, "db")])).trim()).toBe(
      "pod/db created",
    );
    const names = async (...args: string[]) =>
      (await ok(["get", "pods", "-o", "name", ...args])).split("\n").filter(Boolean).sort();
    expect(await names("--selector", "app=web")).toEqual(["pod/web"]);
    expect(await names("-l", "app in (web,db)")).toEqual(["pod/db", "pod/web"]);
    expect(await names("-l", "app!=web")).toEqual(["pod/db"]);
    expect(await names("-l", "tier=back,app notin (web)")).toEqual(["pod/db"]);
    expect(await names("-l", "watched")).toEqual(["pod/web"]);
    expect(await names("-l", "!watched")).toEqual(["pod/db"]);
    expect(await names("--field-selector", "status.phase=Running")).toEqual(["pod/web"]);
    const none = await kubectl(["get", "pods", "-l", "app=nothing"]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("");
    expect(none.stderr.trim()).toBe("No resources found in default namespace.");
    const bad = await kubectl(["get", "pods", "--field-selector", "spec.bogus=x"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("field label not supported: spec.bogus");
  });

  it("label adds, overwrites and removes labels", async () => {
    expect((await ok(["label", "pod", POD, "env=prod"])).trim()).toBe(`pod/${POD} labeled`);
    expect((await getPod(POD)).metadata.labels.env).toBe("prod");
    const clash = await kubectl(["label", "pod", POD, "env=dev"]);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain("already has a value (prod)");
    expect((await ok(["label", "pod", POD, "env=dev", "--overwrite"])).trim()).toBe(`pod/${POD} labeled`);
    expect((await getPod(POD)).metadata.labels.env).toBe("dev");
    // kubectl 1.20 reports a removal as "labeled", later versions as "unlabeled".
    expect((await ok(["label", "pod", POD, "env-"])).trim()).toMatch(/^pod\/web (un)?labeled$/);
    expect((await getPod(POD)).metadata.labels).not.toHaveProperty("env");
  });

  it("patch --type=json, --type=merge and the default strategic merge", async () => {
    const before = await getPod(POD);
    const json = await ok([
      "patch",
      "pod",
      POD,
      "--type=json",
      "-p",
      '[{"op":"add","path":"/metadata/labels/patched","value":"json"},{"op":"add","path":"/spec/activeDeadlineSeconds","value":600}]',
    ]);
    expect(json.trim()).toBe(`pod/${POD} patched`);
    let pod = await getPod(POD);
    expect(pod.metadata.labels.patched).toBe("json");
    expect(pod.spec.activeDeadlineSeconds).toBe(600);
    expect(pod.metadata.uid).toBe(before.metadata.uid);

    const merge = await ok([
      "patch",
      "pod",
      POD,
      "--type=merge",
      "-p",
      '{"metadata":{"labels":{"patched":"merge","watched":null},"annotations":{"kemu.io/note":"merged"}}}',
    ]);
    expect(merge.trim()).toBe(`pod/${POD} patched`);
    pod = await getPod(POD);
    expect(pod.metadata.labels).toMatchObject({ app: "web", patched: "merge" });
    expect(pod.metadata.labels).not.toHaveProperty("watched");
    expect(pod.metadata.annotations["kemu.io/note"]).toBe("merged");

    // Strategic merge (kubectl's default) merges containers by name instead of replacing the list.
    const strategic = await ok([
      "patch",
      "pod",
      POD,
      "-p",
      '{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}',
    ]);
    expect(strategic.trim()).toBe(`pod/${POD} patched`);
    pod = await getPod(POD);
    expect(pod.spec.containers).toHaveLength(1);
    expect(pod.spec.containers[0]).toMatchObject({
      name: "app",
      image: "nginx:1.28",
      ports: [{ containerPort: 80 }],
    });

    // Nothing to change: the server keeps the resourceVersion and kubectl says so.
    const noop = await ok([
      "patch",
      "pod",
      POD,
      "--type=merge",
      "-p",
      '{"metadata":{"labels":{"patched":"merge"}}}',
    ]);
    expect(noop.trim()).toBe(`pod/${POD} patched (no change)`);
    expect((await getPod(POD)).metadata.resourceVersion).toBe(pod.metadata.resourceVersion);

    // A failing JSON patch `test` op changes nothing.
    const failed = await kubectl([
      "patch",
      "pod",
      POD,
      "--type=json",
      "-p",
      '[{"op":"test","path":"/metadata/labels/app","value":"nope"},{"op":"add","path":"/metadata/labels/x","value":"y"}]',
    ]);
    expect(failed.code).not.toBe(0);
    // Upstream answers 422 Invalid with empty details; kubectl prints it as "The request is invalid"
    // (1.32 appends the server's message).
    expect(failed.stderr).toMatch(/^The request is invalid/m);
    expect((await getPod(POD)).metadata.resourceVersion).toBe(pod.metadata.resourceVersion);
  });

  it("get pod -o yaml prints the stored object", async () => {
    const out = await ok(["get", "pod", POD, "-o", "yaml"]);
    const doc = parseYaml(out);
    const pod = await getPod(POD);
    expect(doc).toMatchObject({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: POD,
        namespace: "default",
        uid: pod.metadata.uid,
        resourceVersion: pod.metadata.resourceVersion,
        labels: { app: "web", tier: "back", patched: "merge" },
      },
      spec: { nodeName: NODE, containers: [{ name: "app", image: "nginx:1.28" }] },
      status: { phase: "Running", podIP: pod.status.podIP, hostIP: NODE_IP },
    });
    expect(doc.status.conditions.map((x: any) => x.type).sort()).toEqual([
      "ContainersReady",
      "Initialized",
      "PodScheduled",
      "Ready",
    ]);
    expect(await ok(["get", "pod", POD, "-o", "jsonpath={.spec.nodeName}"])).toBe(NODE);
  });

  it("an invalid manifest is refused with a readable error naming the fields", async () => {
    const file = join(kit.work, "bad.yaml");
    writeFileSync(
      file,
      `apiVersion: v1
kind: Pod
metadata:
  name: Bad_Name
spec:
  containers:
  - name: app
    image: nginx:1.27
    ports:
    - containerPort: 70000
`,
    );
    for (const verb of ["apply", "create"]) {
      const r = await kubectl([verb, "-f", file]);
      expect(r.code, `${verb}: ${r.stdout}`).not.toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain('The Pod "Bad_Name" is invalid');
      expect(r.stderr).toMatch(/metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
      expect(r.stderr).toMatch(
        /spec\.containers\[0\]\.ports\[0\]\.containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive/,
      );
    }
    const list = await api("GET", "/api/v1/pods");
    expect(list.json.items.map((p: any) => p.metadata.name).sort()).toEqual(["db", "web"]);
  });

  it("a malformed YAML file is refused by kubectl and by the server", async () => {
    const file = join(kit.work, "malformed.yaml");
    writeFileSync(
      file,
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n  labels: {app: web\nspec: [\n",
    );
    const r = await kubectl(["apply", "-f", file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error parsing .*malformed\.yaml/);
    expect(r.stderr).toMatch(/yaml: line \d+/);

    // The same bytes sent as-is reach the server, which answers 400 BadRequest.
    const raw = await kubectl(["create", "--raw", "/api/v1/namespaces/default/pods", "-f", file]);
    expect(raw.code).not.toBe(0);
    expect(raw.stderr).toContain("Error from server (BadRequest)");
    expect((await api("GET", "/api/v1/namespaces/default/pods/broken")).status).toBe(404);
  });

  it("delete pod waits for the node agent's confirmation, then the pod is gone", async () => {
    const before = await getPod(POD);
    const del = start(["delete", "pod", POD]);
    try {
      // Act as the node agent: see the graceful deletion, stop the pod, confirm with grace 0.
      const terminating = await eventually(async () => {
        const pod = await getPod(POD);
        return pod.metadata.deletionTimestamp ? pod : undefined;
      }, 10_000);
      expect(terminating.metadata.deletionGracePeriodSeconds).toBe(30);
      expect(del.state.exit).toBeUndefined(); // still waiting for the node
      const confirm = await api("DELETE", `/api/v1/namespaces/default/pods/${POD}`, {
        kind: "DeleteOptions",
        apiVersion: "v1",
        gracePeriodSeconds: 0,
        preconditions: { uid: before.metadata.uid },
      });
      expect(confirm.status, confirm.text).toBe(200);
      expect(await del.exited).toBe(0);
      expect(del.state.out.trim()).toBe(`pod "${POD}" deleted`);
      expect(del.state.err).toBe("");
    } finally {
      stopChild(del.child);
      await del.exited;
    }
    expect((await api("GET", `/api/v1/namespaces/default/pods/${POD}`)).status).toBe(404);
    const gone = await kubectl(["get", "pod", POD]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr.trim()).toBe(`Error from server (NotFound): pods "${POD}" not found`);
  });

  it("delete --force --grace-period=0 removes a bound pod without the node", async () => {
    expect((await getPod("db")).spec.nodeName).toBe(NODE);
    const r = await kubectl(["delete", "pod", "db", "--force", "--grace-period=0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('pod "db" force deleted');
    expect(r.stderr).toContain("Immediate deletion does not wait for confirmation");
    expect((await api("GET", "/api/v1/namespaces/default/pods/db")).status).toBe(404);
    const empty = await kubectl(["get", "pods", "-A"]);
    expect(empty.stdout).toBe("");
    expect(empty.stderr.trim()).toBe("No resources found");
  });

  it("delete namespace waits until the namespace is finalized", async () => {
    const created = await api("POST", "/api/v1/namespaces", { metadata: { name: "scratch" } });
    expect(created.status, created.text).toBe(201);
    const out = await ok(["delete", "namespace", "scratch"]);
    expect(out.trim()).toBe('namespace "scratch" deleted');
    expect((await api("GET", "/api/v1/namespaces/scratch")).status).toBe(404);
  });
});
