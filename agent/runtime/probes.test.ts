import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createH2Server, type Http2Server } from "node:http2";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Container, Pod } from "../../emulator/types.ts";
import { agentServingCert } from "../serving-cert.ts";
import type { ContainerRecord, PodRecord } from "./pod-record.ts";
import { podStatus } from "./pod-record.ts";
import {
  type ContainerView,
  canonicalHeaderKey,
  execProbe,
  goDuration,
  grpcProbe,
  healthCheckRequest,
  healthCheckStatus,
  httpProbe,
  httpProbeRequest,
  killGracePeriodSeconds,
  killMessage,
  killReason,
  type PodView,
  PROBE_USER_AGENT,
  type ProbeOutcome,
  Prober,
  type ProbeSpec,
  type ProbeTarget,
  ProbeWorker,
  probeStatus,
  resolveContainerPort,
  runProbe,
  tcpProbe,
} from "./probes.ts";

const T0 = 1_700_000_000_000;
const pod: PodView = { deleting: false, restartPolicy: "Always", terminal: false };
const running = (id: string, extra: Partial<ContainerView> = {}): ContainerView => ({
  id,
  running: true,
  terminated: false,
  startedAtMs: T0,
  started: true,
  ...extra,
});

/** Runs one tick with a result when the worker decides to probe; returns the step. */
function tick(w: ProbeWorker, c: ContainerView, at: number, result: "Success" | "Failure", p = pod) {
  const step = w.prepare(c, p, at);
  if (step === "probe") w.record(result);
  return step;
}

describe("probe worker state machine", () => {
  it("starts readiness at Failure, liveness at Success and startup at Unknown for each new container", () => {
    const r = new ProbeWorker("Readiness", {});
    const l = new ProbeWorker("Liveness", {});
    const s = new ProbeWorker("Startup", {});
    for (const w of [r, l, s]) w.prepare({ ...running("a"), started: false }, pod, T0);
    expect([r.resultFor("a"), l.resultFor("a"), s.resultFor("a")]).toEqual(["Failure", "Success", "Unknown"]);
    expect(r.resultFor("b")).toBeUndefined();
  });

  it("waits while no container exists and reports Failure while it is not running", () => {
    const w = new ProbeWorker("Readiness", {});
    expect(w.prepare({ running: false, terminated: false, started: false }, pod, T0)).toBe("skip");
    expect(w.containerId).toBeUndefined();
    expect(w.prepare({ id: "a", running: false, terminated: true, started: false }, pod, T0)).toBe("skip");
    expect(w.resultFor("a")).toBe("Failure");
    // A terminated container that will never restart ends the worker.
    const never = { ...pod, restartPolicy: "Never" };
    expect(w.prepare({ id: "a", running: false, terminated: true, started: false }, never, T0)).toBe("stop");
    expect(w.prepare(running("a"), { ...pod, terminal: true }, T0)).toBe("stop");
  });

  it("does not probe before initialDelaySeconds (whole seconds since the start)", () => {
    const w = new ProbeWorker("Readiness", { initialDelaySeconds: 5 });
    expect(w.prepare(running("a"), pod, T0 + 4_999)).toBe("skip");
    expect(w.prepare(running("a"), pod, T0 + 5_000)).toBe("probe");
  });

  it("needs successThreshold successes in a row to become ready, failureThreshold failures to become unready", () => {
    const w = new ProbeWorker("Readiness", { successThreshold: 2, failureThreshold: 3 });
    const c = running("a");
    tick(w, c, T0, "Success");
    expect(w.resultFor("a")).toBe("Failure");
    tick(w, c, T0, "Success");
    expect(w.resultFor("a")).toBe("Success");
    tick(w, c, T0, "Failure");
    tick(w, c, T0, "Failure");
    expect(w.resultFor("a")).toBe("Success");
    tick(w, c, T0, "Success"); // a success breaks the run of failures
    tick(w, c, T0, "Failure");
    tick(w, c, T0, "Failure");
    expect(w.resultFor("a")).toBe("Success");
    tick(w, c, T0, "Failure");
    expect(w.resultFor("a")).toBe("Failure");
    // record() says when the published result changed.
    expect(w.record("Success")).toBe(false);
    expect(w.record("Success")).toBe(true);
  });

  it("fails liveness after failureThreshold failures, then holds until a new container", () => {
    const w = new ProbeWorker("Liveness", { failureThreshold: 2, successThreshold: 5 });
    const c = running("a");
    tick(w, c, T0, "Failure");
    expect(w.resultFor("a")).toBe("Success");
    tick(w, c, T0, "Failure");
    expect(w.resultFor("a")).toBe("Failure");
    expect(w.onHold).toBe(true);
    expect(w.prepare(c, pod, T0)).toBe("skip");
    expect(w.resultFor("a")).toBe("Failure");
    // The restarted container starts over at Success and is probed again.
    expect(w.prepare(running("b"), pod, T0)).toBe("probe");
    expect(w.resultFor("b")).toBe("Success");
    // successThreshold is 1 for liveness whatever the spec says.
    w.record("Failure");
    expect(w.resultFor("b")).toBe("Success");
  });

  it("gates readiness and liveness behind the startup probe, which stops once started", () => {
    const startup = new ProbeWorker("Startup", { failureThreshold: 3 });
    const readiness = new ProbeWorker("Readiness", {});
    const liveness = new ProbeWorker("Liveness", {});
    const notStarted = running("a", { started: false });
    expect(readiness.prepare(notStarted, pod, T0)).toBe("skip");
    expect(liveness.prepare(notStarted, pod, T0)).toBe("skip");
    expect(startup.prepare(notStarted, pod, T0)).toBe("probe");
    startup.record("Failure");
    startup.record("Success");
    const ref = { id: "a", running: true };
    expect(probeStatus(ref, startup, readiness)).toEqual({ started: true, ready: false });
    expect(startup.prepare(running("a"), pod, T0)).toBe("skip");
    expect(readiness.prepare(running("a"), pod, T0)).toBe("probe");
    readiness.record("Success");
    expect(probeStatus(ref, startup, readiness)).toEqual({ started: true, ready: true });
  });

  it("kills on startup failure after failureThreshold", () => {
    const startup = new ProbeWorker("Startup", { failureThreshold: 2 });
    const c = running("a", { started: false });
    tick(startup, c, T0, "Failure");
    expect(killReason({ id: "a", running: true }, undefined, startup)).toBeUndefined();
    tick(startup, c, T0, "Failure");
    expect(killReason({ id: "a", running: true }, undefined, startup)).toBe("startup");
    expect(startup.onHold).toBe(true);
  });

  it("lets liveness and startup end quietly when the pod is deleted, readiness keeps probing", () => {
    const l = new ProbeWorker("Liveness", {});
    const r = new ProbeWorker("Readiness", {});
    const deleting = { ...pod, deleting: true };
    expect(l.prepare(running("a"), deleting, T0)).toBe("stop");
    expect(l.resultFor("a")).toBe("Success");
    expect(r.prepare(running("a"), deleting, T0)).toBe("probe");
  });
});

describe("started, ready and kill decisions", () => {
  it("is started and ready once running when there are no probes", () => {
    expect(probeStatus({ id: "a", running: true }, undefined, undefined)).toEqual({
      started: true,
      ready: true,
    });
    expect(probeStatus({ id: "a", running: false }, undefined, undefined)).toEqual({
      started: false,
      ready: false,
    });
  });

  it("ignores results of an older container", () => {
    const r = new ProbeWorker("Readiness", {});
    r.prepare(running("a"), pod, T0);
    r.record("Success");
    expect(probeStatus({ id: "a", running: true }, undefined, r).ready).toBe(true);
    expect(probeStatus({ id: "b", running: true }, undefined, r).ready).toBe(false);
  });

  it("kills on liveness before startup, only running containers", () => {
    const l = new ProbeWorker("Liveness", { failureThreshold: 1 });
    l.prepare(running("a"), pod, T0);
    l.record("Failure");
    expect(killReason({ id: "a", running: true }, l, undefined)).toBe("liveness");
    expect(killReason({ id: "a", running: false }, l, undefined)).toBeUndefined();
    expect(killReason({ id: "b", running: true }, l, undefined)).toBeUndefined();
  });

  it("words the Killing event and the grace period as kubelet does", () => {
    expect(killMessage("netexec", "liveness", "Always")).toBe(
      "Container netexec failed liveness probe, will be restarted",
    );
    expect(killMessage("netexec", "startup", "Never")).toBe("Container netexec failed startup probe");
    const p = (tgps?: number, probe?: number): [Pod, Container] => [
      { metadata: {}, spec: { containers: [], terminationGracePeriodSeconds: tgps } },
      { name: "c", livenessProbe: probe === undefined ? {} : { terminationGracePeriodSeconds: probe } },
    ];
    expect(killGracePeriodSeconds(...p(30), "liveness")).toBe(30);
    expect(killGracePeriodSeconds(...p(30, 5), "liveness")).toBe(5);
    expect(killGracePeriodSeconds(...p(30, 5), "startup")).toBe(30);
    expect(killGracePeriodSeconds(...p(30, 0), "liveness")).toBe(2);
    expect(killGracePeriodSeconds(...p(undefined), "liveness")).toBe(2);
  });

  it("reports probe-driven ready and started in the pod status with kubelet's condition message", () => {
    const c = (name: string): ContainerRecord => ({
      name,
      image: "busybox",
      init: false,
      restartCount: 0,
      id: `u-${name}-0`,
      state: "running",
      startedAt: "t0",
    });
    const rec: PodRecord = {
      uid: "u",
      namespace: "default",
      name: "p",
      netns: "ns",
      sandboxReady: true,
      startTime: "t",
      containers: [c("web"), c("side")],
    };
    const s = podStatus(
      { metadata: { name: "p" }, spec: { containers: [{ name: "web" }, { name: "side" }] } },
      rec,
      "172.30.0.11",
      new Date(0),
      (x) => ({ started: true, ready: x.name === "web" }),
    );
    expect(s.containerStatuses!.map((x) => [x.name, x.ready, x.started])).toEqual([
      ["web", true, true],
      ["side", false, true],
    ]);
    for (const type of ["Ready", "ContainersReady"]) {
      expect(s.conditions!.find((x) => x.type === type)).toMatchObject({
        status: "False",
        reason: "ContainersNotReady",
        message: "containers with unready status: [side]",
      });
    }
  });
});

describe("probe requests", () => {
  const container: Container = { name: "c", ports: [{ name: "http", containerPort: 8080 }] };

  it("resolves ports by number, name, or a number as a string", () => {
    expect(resolveContainerPort(80, container)).toBe(80);
    expect(resolveContainerPort("http", container)).toBe(8080);
    expect(resolveContainerPort("9090", container)).toBe(9090);
    expect(() => resolveContainerPort("nope", container)).toThrow(
      'strconv.Atoi: parsing "nope": invalid syntax',
    );
    expect(() => resolveContainerPort(0, container)).toThrow("invalid port number: 0");
  });

  it("builds the URL on the pod IP and kubelet's default headers", () => {
    const r = httpProbeRequest({ path: "/healthz?x=1", port: "http" }, container, "10.244.0.5");
    expect(r.url.href).toBe("http://10.244.0.5:8080/healthz?x=1");
    expect(r.headers).toEqual([
      ["User-Agent", "kube-probe/1.32"],
      ["Accept", "*/*"],
    ]);
    const custom = httpProbeRequest(
      {
        path: "ready",
        port: 443,
        host: "::1",
        scheme: "HTTPS",
        httpHeaders: [
          { name: "user-agent", value: "mine" },
          { name: "accept", value: "" },
          { name: "x-custom", value: "1" },
        ],
      },
      container,
      "10.244.0.5",
    );
    expect(custom.url.href).toBe("https://[::1]/ready");
    expect(custom.headers).toEqual([
      ["User-Agent", "mine"],
      ["X-Custom", "1"],
    ]);
    expect(canonicalHeaderKey("x-forwarded-FOR")).toBe("X-Forwarded-For");
    expect(goDuration(1000)).toBe("1s");
    expect(goDuration(300)).toBe("300ms");
    expect(goDuration(1500)).toBe("1.5s");
    expect(goDuration(90_000)).toBe("1m30s");
    expect(goDuration(3_600_000)).toBe("1h0m0s");
  });

  it("reports a port it cannot resolve as a prober error", async () => {
    const out = await runProbe(
      { tcpSocket: { port: "missing" } },
      { container, podIP: "127.0.0.1", pod: "p" },
    );
    expect(out).toMatchObject({
      result: "unknown",
      error: 'strconv.Atoi: parsing "missing": invalid syntax',
    });
    expect(await runProbe({}, { container, pod: "p_ns(u)" })).toMatchObject({
      error: "missing probe handler for p_ns(u):c",
    });
  });
});

describe("http, tcp and grpc probes against local servers", () => {
  let server: Server;
  let port: number;
  let seen: IncomingHttpHeaders[] = [];
  const dir = mkdtempSync(join(tmpdir(), "kemu-probes-"));

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      const url = new URL(req.url!, "http://x");
      if (url.pathname === "/ok") res.end("fine");
      else if (url.pathname === "/code") res.writeHead(Number(url.searchParams.get("c"))).end("body");
      else if (url.pathname === "/hop") res.writeHead(302, { location: "/ok" }).end();
      else if (url.pathname === "/away") res.writeHead(301, { location: "http://192.0.2.1/ok" }).end("moved");
      else if (url.pathname === "/loop") res.writeHead(302, { location: "/loop" }).end();
      else if (url.pathname === "/slow") setTimeout(() => res.end("late"), 2000);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => {
    seen = [];
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: { name: string; value: string }[] = [], timeoutMs = 1000) =>
    httpProbe(httpProbeRequest({ path, port, httpHeaders: headers }, { name: "c" }, "127.0.0.1"), timeoutMs);

  it("succeeds on 200-399 with the body, fails otherwise with the status code", async () => {
    expect(await get("/ok")).toEqual({ result: "success", output: "fine" });
    expect(await get("/code?c=204")).toMatchObject({ result: "success" });
    expect(await get("/code?c=500")).toEqual({
      result: "failure",
      output: "HTTP probe failed with statuscode: 500",
    });
    expect(await get("/code?c=404")).toEqual({
      result: "failure",
      output: "HTTP probe failed with statuscode: 404",
    });
  });

  it("sends kubelet's User-Agent, Accept and custom headers, Host when asked, no keep-alive", async () => {
    await get("/ok", [
      { name: "X-Probe", value: "a" },
      { name: "Host", value: "svc.example" },
    ]);
    expect(seen[0]).toMatchObject({
      "user-agent": PROBE_USER_AGENT,
      accept: "*/*",
      "x-probe": "a",
      host: "svc.example",
      connection: "close",
    });
    expect(seen[0]["accept-encoding"]).toBeUndefined();
  });

  it("follows redirects on the same host, stops at 10, and warns about one to another host", async () => {
    expect(await get("/hop")).toEqual({ result: "success", output: "fine" });
    expect(seen).toHaveLength(2);
    expect(await get("/away")).toEqual({
      result: "warning",
      output: "Probe terminated redirects, Response body: moved",
    });
    expect(await get("/loop")).toEqual({
      result: "failure",
      output: `Get "http://127.0.0.1:${port}/loop": stopped after 10 redirects`,
    });
  });

  it("fails past the timeout and on a refused connection, with Go's messages", async () => {
    expect(await get("/slow", [], 200)).toEqual({
      result: "failure",
      output: `Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    });
    const closed = await freePort();
    const r = await httpProbe(
      httpProbeRequest({ path: "/", port: closed }, { name: "c" }, "127.0.0.1"),
      1000,
    );
    expect(r).toEqual({
      result: "failure",
      output: `Get "http://127.0.0.1:${closed}/": dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
  });

  it("speaks HTTPS without verifying the certificate", async () => {
    const cert = await agentServingCert(join(dir, "tls"), ["127.0.0.1"]);
    const tls = createHttpsServer({ key: cert.keyPem, cert: cert.certPem }, (_req, res) => res.end("secure"));
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", () => r()));
    try {
      const p = (tls.address() as AddressInfo).port;
      const req = httpProbeRequest({ path: "/", port: p, scheme: "HTTPS" }, { name: "c" }, "127.0.0.1");
      expect(await httpProbe(req, 2000)).toEqual({ result: "success", output: "secure" });
      // HTTPS to a plain HTTP server.
      const plain = httpProbeRequest({ path: "/ok", port, scheme: "HTTPS" }, { name: "c" }, "127.0.0.1");
      expect((await httpProbe(plain, 2000)).output).toBe(
        `Get "https://127.0.0.1:${port}/ok": tls: first record does not look like a TLS handshake`,
      );
    } finally {
      tls.close();
    }
  });

  it("tcpSocket: an open port succeeds, a closed one fails as Go's dialer says", async () => {
    expect(await tcpProbe("127.0.0.1", port, 1000)).toEqual({ result: "success", output: "" });
    const closed = await freePort();
    expect(await tcpProbe("127.0.0.1", closed, 1000)).toEqual({
      result: "failure",
      output: `dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
  });

  it("grpc: the health protocol over h2c, with kubelet's messages", async () => {
    const statuses: Record<string, number> = { "": 1, db: 2 };
    let userAgent = "";
    const h2: Http2Server = createH2Server();
    h2.on("stream", (stream, headers) => {
      userAgent = String(headers["user-agent"]);
      if (headers[":path"] !== "/grpc.health.v1.Health/Check") {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "12" },
          { endStream: true },
        );
        return;
      }
      const body: Buffer[] = [];
      stream.on("data", (d: Buffer) => body.push(d));
      stream.on("end", () => {
        const msg = Buffer.concat(body).subarray(5);
        const service = msg.length ? msg.subarray(2).toString() : "";
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () =>
          stream.sendTrailers(
            service in statuses
              ? { "grpc-status": "0" }
              : { "grpc-status": "5", "grpc-message": "unknown%20service" },
          ),
        );
        if (service in statuses) stream.write(Buffer.from([0, 0, 0, 0, 2, 0x08, statuses[service]]));
        stream.end();
      });
    });
    await new Promise<void>((r) => h2.listen(0, "127.0.0.1", () => r()));
    try {
      const p = (h2.address() as AddressInfo).port;
      expect(await grpcProbe("127.0.0.1", p, "", 1000)).toEqual({
        result: "success",
        output: "service healthy",
      });
      expect(userAgent).toBe(PROBE_USER_AGENT);
      expect(await grpcProbe("127.0.0.1", p, "db", 1000)).toEqual({
        result: "failure",
        output: 'service unhealthy (responded with "NOT_SERVING")',
      });
      expect(await grpcProbe("127.0.0.1", p, "cache", 1000)).toEqual({
        result: "failure",
        output: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
      });
      const closed = await freePort();
      expect(await grpcProbe("127.0.0.1", closed, "", 300)).toEqual({
        result: "failure",
        output: `timeout: failed to connect service "127.0.0.1:${closed}" within 300ms: context deadline exceeded`,
      });
    } finally {
      h2.close();
    }
    expect(healthCheckStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 3]))).toBe(3);
    expect([...healthCheckRequest("db")]).toEqual([0, 0, 0, 0, 4, 0x0a, 2, 0x64, 0x62]);
  });
});

const root = process.getuid?.() === 0;

describe.skipIf(!root)("exec probes (nsenter, needs root)", () => {
  // The test process's own namespaces stand in for a container's.
  const self = process.pid;
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", PROBE_VAR: "from-env" };

  it("succeeds on exit 0 and fails on other exits with the combined output", async () => {
    expect(await execProbe(self, ["sh", "-c", "echo ok $PROBE_VAR"], env, 2000)).toEqual({
      result: "success",
      output: "ok from-env\n",
    });
    expect(await execProbe(self, ["sh", "-c", "echo out; echo err >&2; exit 3"], env, 2000)).toEqual({
      result: "failure",
      output: "out\nerr\n",
    });
  });

  it("kills the command at the timeout", async () => {
    const started = Date.now();
    const out = await execProbe(self, ["sh", "-c", "sleep 30"], env, 300);
    expect(out).toEqual({ result: "failure", output: 'command "sh -c sleep 30" timed out' });
    expect(Date.now() - started).toBeLessThan(5000);
    const left = await new Promise<string>((resolve) => {
      const ps = spawn("pgrep", ["-f", "^sleep 30$"]);
      let o = "";
      ps.stdout.on("data", (d) => {
        o += d;
      });
      ps.on("close", () => resolve(o));
    });
    expect(left.trim()).toBe("");
  });

  it("reports a missing command as a prober error", async () => {
    const out = await execProbe(self, ["no-such-command-kemu"], env, 2000);
    expect(out.result).toBe("unknown");
    expect(out.error).toContain('exec: "no-such-command-kemu": executable file not found in $PATH');
  });

  it("expands $(VAR) from the container's literal env values", async () => {
    const target: ProbeTarget = {
      container: { name: "c", env: [{ name: "WORD", value: "hello" }] },
      pid: self,
      pod: "p",
    };
    expect(await runProbe({ exec: { command: ["echo", "$(WORD)", "$(NOPE)"] } }, target)).toMatchObject({
      result: "success",
      output: "hello $(NOPE)\n",
    });
  });
});

describe("prober driver", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(spec: Partial<Record<"readinessProbe" | "livenessProbe" | "startupProbe", ProbeSpec>>) {
    const events: string[] = [];
    const changes: string[] = [];
    const results: ProbeOutcome[] = [];
    const calls: ProbeSpec[] = [];
    const prober = new Prober({
      events: { emit: (_o, type, reason, message) => events.push(`${type} ${reason} ${message}`) },
      onChange: (uid) => changes.push(uid),
      run: async (s) => {
        calls.push(s);
        return results.shift() ?? { result: "success", output: "" };
      },
    });
    const p: Pod = {
      metadata: { name: "web", namespace: "default", uid: "u1" },
      spec: { containers: [{ name: "app", ...spec }] },
    };
    const c: ContainerRecord = {
      name: "app",
      image: "busybox",
      init: false,
      restartCount: 0,
      id: "u1-app-0",
      state: "waiting",
    };
    const rec: PodRecord = {
      uid: "u1",
      namespace: "default",
      name: "web",
      netns: "ns",
      podIP: "10.244.0.5",
      sandboxReady: true,
      startTime: "t",
      containers: [c],
    };
    return { prober, events, changes, results, calls, p, c, rec };
  }

  it("probes readiness soon after the start, then every period, and reports changes and failures", async () => {
    vi.useFakeTimers({ now: T0 });
    const s = setup({ readinessProbe: { periodSeconds: 10, failureThreshold: 1, httpGet: { port: 80 } } });
    s.prober.sync(s.p, s.rec); // workers made before the container starts: nothing to probe yet
    expect(s.calls).toHaveLength(0);
    Object.assign(s.c, { state: "running", startedAtMs: Date.now() });
    s.prober.sync(s.p, s.rec);
    expect(s.prober.status("u1", s.c)).toEqual({ started: true, ready: false });
    await vi.advanceTimersByTimeAsync(500);
    s.prober.sync(s.p, s.rec); // the pod worker's next sync triggers the first readiness probe
    await vi.advanceTimersByTimeAsync(0);
    expect(s.calls).toHaveLength(1);
    expect(s.prober.status("u1", s.c)).toEqual({ started: true, ready: true });
    expect(s.changes).toContain("u1");
    s.results.push({ result: "failure", output: "HTTP probe failed with statuscode: 503" });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.calls).toHaveLength(2);
    expect(s.prober.status("u1", s.c).ready).toBe(false);
    expect(s.events).toEqual([
      "Warning Unhealthy Readiness probe failed: HTTP probe failed with statuscode: 503",
    ]);
    s.prober.forget("u1");
    await vi.advanceTimersByTimeAsync(30_000);
    expect(s.calls).toHaveLength(2);
  });

  it("asks for a kill after liveness failures and words errors and warnings as kubelet", async () => {
    vi.useFakeTimers({ now: T0 });
    const s = setup({ livenessProbe: { periodSeconds: 1, failureThreshold: 2, tcpSocket: { port: 80 } } });
    Object.assign(s.c, { state: "running", startedAtMs: Date.now() });
    s.results.push(
      { result: "warning", output: "Probe terminated redirects, Response body: x" },
      { result: "unknown", output: "", error: "boom" },
      { result: "unknown", output: "", error: "boom" },
      { result: "unknown", output: "", error: "boom" },
      { result: "failure", output: "dial tcp 10.244.0.5:80: connect: connection refused" },
      { result: "failure", output: "dial tcp 10.244.0.5:80: connect: connection refused" },
    );
    s.prober.sync(s.p, s.rec);
    await vi.advanceTimersByTimeAsync(0);
    expect(s.prober.killReason("u1", s.c)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000); // an error (3 tries): the result is thrown away
    expect(s.prober.killReason("u1", s.c)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.prober.killReason("u1", s.c)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.prober.killReason("u1", s.c)).toBe("liveness");
    expect(s.events).toEqual([
      "Warning ProbeWarning Liveness probe warning: Probe terminated redirects, Response body: x",
      "Warning Unhealthy Liveness probe errored and resulted in unknown state: boom",
      "Warning Unhealthy Liveness probe failed: dial tcp 10.244.0.5:80: connect: connection refused",
      "Warning Unhealthy Liveness probe failed: dial tcp 10.244.0.5:80: connect: connection refused",
    ]);
    const calls = s.calls.length;
    await vi.advanceTimersByTimeAsync(3000); // on hold until a new container
    expect(s.calls).toHaveLength(calls);
    Object.assign(s.c, { id: "u1-app-1", restartCount: 1, startedAtMs: Date.now() });
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.calls).toHaveLength(calls + 1);
    expect(s.prober.killReason("u1", s.c)).toBeUndefined();
    s.prober.stop();
  });

  it("keeps readiness known to the API after an agent restart instead of flapping", () => {
    const s = setup({ readinessProbe: { periodSeconds: 10, exec: { command: ["true"] } } });
    Object.assign(s.c, { state: "running", startedAtMs: Date.now() });
    s.p.status = {
      containerStatuses: [
        { name: "app", ready: true, started: true, containerID: "kemu://u1-app-0", state: { running: {} } },
      ],
    };
    s.prober.sync(s.p, s.rec);
    expect(s.prober.status("u1", s.c)).toEqual({ started: true, ready: true });
    s.prober.stop();
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
