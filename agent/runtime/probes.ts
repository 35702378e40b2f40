// Container probes as kubelet runs them (pkg/kubelet/prober). Three layers:
//
//   ProbeWorker   the pure state machine of one probe of one container (kubelet's worker.go):
//                 initial values, initial delay, startup gating, success/failure thresholds, the
//                 hold after a liveness/startup failure until a new container appears.
//   probeStatus,  pure decisions from the workers' results: a container's `started` and `ready`
//   killReason    (prober_manager.go UpdatePodStatus) and whether it must be killed
//                 (kuberuntime computePodActions).
//   runProbe...   the I/O, one function per handler, each bounded by timeoutSeconds: httpGet and
//                 tcpSocket and grpc from the node (the agent lives in the node's network namespace
//                 and reaches pod IPs over the node bridge), exec inside the container through
//                 nsenter into its PID 1's namespaces with its environment. Argv arrays only.
//
// Prober ties them together for the pod worker: one timer per worker (periodSeconds), results kept
// in memory as kubelet keeps them, Unhealthy/ProbeWarning events with kubelet's messages, and a
// callback whenever a result changes so the pod's status reaches the API at once.

import { spawn } from "node:child_process";
import { request as httpRequest, type IncomingMessage, STATUS_CODES } from "node:http";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { isIPv6, connect as netConnect } from "node:net";
import type { Container, Pod } from "../../emulator/types.ts";
import { expand } from "../images/expand.ts";
import { KUBELET_VERSION } from "../node-status.ts";
import type { EventSink } from "./events.ts";
import { type ContainerRecord, type PodRecord, podPhase } from "./pod-record.ts";
import { processEnvironment, targetPid } from "./process.ts";

// ---------------------------------------------------------------------------------------------
// Types

/** kubelet's probeType.String(): how probes are named in events. */
export type ProbeType = "Readiness" | "Liveness" | "Startup";

/** The results manager's values (pkg/kubelet/prober/results). */
export type Result = "Success" | "Failure" | "Unknown";

/** What one run of a handler says (pkg/probe: Success, Warning, Failure, Unknown). */
export type Outcome = "success" | "warning" | "failure" | "unknown";

export interface ProbeOutcome {
  result: Outcome;
  /** The handler's output: the event message after "<Type> probe failed: ". */
  output: string;
  /** A prober error (not a probe failure): the result is thrown away, as kubelet does. */
  error?: string;
}

export interface HTTPGetAction {
  path?: string;
  port: number | string;
  host?: string;
  scheme?: string;
  httpHeaders?: { name: string; value: string }[];
}

export interface ProbeSpec {
  exec?: { command?: string[] };
  httpGet?: HTTPGetAction;
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string | null };
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number | null;
}

const PROBE_FIELDS: Record<ProbeType, "readinessProbe" | "livenessProbe" | "startupProbe"> = {
  Readiness: "readinessProbe",
  Liveness: "livenessProbe",
  Startup: "startupProbe",
};

export function probeOf(c: Container | undefined, type: ProbeType): ProbeSpec | undefined {
  const p = c?.[PROBE_FIELDS[type]];
  return p && typeof p === "object" ? (p as ProbeSpec) : undefined;
}

// ---------------------------------------------------------------------------------------------
// The state machine (pure)

/** What a worker reads about its container (kubelet reads it from the status manager). */
export interface ContainerView {
  /** The current attempt's id; undefined while no container exists yet. */
  id?: string;
  running: boolean;
  terminated: boolean;
  /** Epoch ms at which the running container started. */
  startedAtMs?: number;
  /** The container's `started` as computed from the startup probe (probeStatus). */
  started: boolean;
}

export interface PodView {
  /** deletionTimestamp is set. */
  deleting: boolean;
  restartPolicy: string;
  /** Phase Succeeded or Failed. */
  terminal: boolean;
}

/** probe: run the handler now; skip: nothing to do this tick; stop: the worker ends. */
export type Step = "probe" | "skip" | "stop";

/** One probe of one container: kubelet's prober worker without its goroutine. */
export class ProbeWorker {
  readonly type: ProbeType;
  readonly spec: ProbeSpec;
  /** The result set when a new container appears (readiness Failure, liveness Success, startup Unknown). */
  readonly initialValue: Result;
  /** The container the results belong to. */
  containerId?: string;
  /** The published result for containerId (the results manager's entry). */
  result?: Result;
  lastResult?: Result;
  /** How many times in a row the probe returned lastResult. */
  resultRun = 0;
  /** After a liveness/startup failure: no probing until a new container appears. */
  onHold = false;

  constructor(type: ProbeType, spec: ProbeSpec) {
    this.type = type;
    this.spec = spec;
    this.initialValue = type === "Readiness" ? "Failure" : type === "Liveness" ? "Success" : "Unknown";
  }

  get failureThreshold(): number {
    return Math.max(1, this.spec.failureThreshold ?? 3);
  }

  /** Liveness and startup probes must have successThreshold 1 (API validation); 1 is used for them. */
  get successThreshold(): number {
    return this.type === "Readiness" ? Math.max(1, this.spec.successThreshold ?? 1) : 1;
  }

  get periodMs(): number {
    return Math.max(1, this.spec.periodSeconds ?? 10) * 1000;
  }

  /** The first half of kubelet's doProbe: decides whether the handler runs on this tick. */
  prepare(c: ContainerView, pod: PodView, nowMs: number): Step {
    if (pod.terminal) return "stop";
    if (!c.id) return "skip"; // not created yet
    if (this.containerId !== c.id) {
      this.containerId = c.id;
      this.result = this.initialValue;
      this.onHold = false; // a new container: resume probing
    }
    if (this.onHold) return "skip";
    if (!c.running) {
      this.result = "Failure";
      return c.terminated && pod.restartPolicy === "Never" ? "stop" : "skip";
    }
    if (pod.deleting && this.type !== "Readiness") {
      this.result = "Success"; // a quiet shutdown
      return "stop";
    }
    const runningSeconds = Math.trunc((nowMs - (c.startedAtMs ?? nowMs)) / 1000);
    if (runningSeconds < (this.spec.initialDelaySeconds ?? 0)) return "skip";
    if (c.started) {
      if (this.type === "Startup") return "skip"; // done once the container started
    } else if (this.type !== "Startup") {
      return "skip"; // the startup probe gates the others
    }
    return "probe";
  }

  /** The second half of doProbe: applies a handler's result; true when the published result changed. */
  record(result: "Success" | "Failure"): boolean {
    if (this.lastResult === result) this.resultRun++;
    else {
      this.lastResult = result;
      this.resultRun = 1;
    }
    if (
      (result === "Failure" && this.resultRun < this.failureThreshold) ||
      (result === "Success" && this.resultRun < this.successThreshold)
    ) {
      return false; // below the threshold: the published state stays
    }
    const changed = this.result !== result;
    this.result = result;
    if (this.type !== "Readiness" && result === "Failure") {
      // The container will be restarted: hold until a new container id shows up.
      this.onHold = true;
      this.resultRun = 0;
    }
    return changed;
  }

  /** The results manager's Get(containerID). */
  resultFor(id: string | undefined): Result | undefined {
    return id !== undefined && id === this.containerId ? this.result : undefined;
  }
}

/** A container as probeStatus and killReason see it. */
export interface ContainerRef {
  id?: string;
  running: boolean;
}

/**
 * A container's `started` and `ready` (prober_manager UpdatePodStatus): started once the startup
 * probe succeeded (at once when there is none); ready only when started and the readiness probe
 * succeeded (at once when there is none).
 */
export function probeStatus(
  c: ContainerRef,
  startup: ProbeWorker | undefined,
  readiness: ProbeWorker | undefined,
): { started: boolean; ready: boolean } {
  const started = c.running && (startup ? startup.resultFor(c.id) === "Success" : true);
  if (!started) return { started, ready: false };
  return { started, ready: readiness ? readiness.resultFor(c.id) === "Success" : true };
}

export type KillReason = "liveness" | "startup";

/** Whether a running container must be killed (liveness first, then startup), as computePodActions decides. */
export function killReason(
  c: ContainerRef,
  liveness: ProbeWorker | undefined,
  startup: ProbeWorker | undefined,
): KillReason | undefined {
  if (!c.running) return undefined;
  if (liveness?.resultFor(c.id) === "Failure") return "liveness";
  if (startup?.resultFor(c.id) === "Failure") return "startup";
  return undefined;
}

/** The Killing event's message: `Container X failed liveness probe, will be restarted`. */
export function killMessage(
  container: string,
  reason: KillReason,
  restartPolicy: string | undefined,
): string {
  const message = `Container ${container} failed ${reason} probe`;
  return restartPolicy === "Never" ? message : `${message}, will be restarted`;
}

/** Seconds between SIGTERM and SIGKILL for a probe kill (setTerminationGracePeriod), at least 2. */
export function killGracePeriodSeconds(
  pod: Pod,
  container: Container | undefined,
  reason: KillReason,
): number {
  let grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds;
  if (pod.metadata.deletionGracePeriodSeconds === undefined && grace !== undefined) {
    const probe = probeOf(container, reason === "liveness" ? "Liveness" : "Startup");
    if (typeof probe?.terminationGracePeriodSeconds === "number") grace = probe.terminationGracePeriodSeconds;
  }
  return Math.max(2, grace ?? 2);
}

// ---------------------------------------------------------------------------------------------
// The handlers (I/O)

/** kubelet's User-Agent for probes: kube-probe/<major>.<minor>. */
export const PROBE_USER_AGENT = `kube-probe/${/^v?(\d+\.\d+)/.exec(KUBELET_VERSION)?.[1] ?? "1.32"}`;

/** kubelet reads at most 10 KiB of a response body or an exec probe's output. */
const MAX_OUTPUT = 10 * 1024;

const ok = (output = ""): ProbeOutcome => ({ result: "success", output });
const failed = (output: string): ProbeOutcome => ({ result: "failure", output });
const errored = (error: string): ProbeOutcome => ({ result: "unknown", output: "", error });

/** probe.ResolveContainerPort: a number, a container port name, or a number written as a string. */
export function resolveContainerPort(port: number | string | undefined, container: Container): number {
  let n: number;
  if (typeof port === "number") n = port;
  else if (typeof port === "string") {
    const named = (container.ports ?? []).find((p) => p.name === port);
    if (named) n = named.containerPort;
    else if (/^[+-]?\d+$/.test(port)) n = Number(port);
    else throw new Error(`strconv.Atoi: parsing ${JSON.stringify(port)}: invalid syntax`);
  } else throw new Error(`intOrString had no kind: ${JSON.stringify(port)}`);
  if (n > 0 && n < 65536) return n;
  throw new Error(`invalid port number: ${n}`);
}

/** net.JoinHostPort. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) || host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** time.Duration's String() for a duration in milliseconds: 300ms, 1s, 1.5s, 1m30s, 1h0m0s. */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = `${(ms % 60_000) / 1000}s`;
  if (h) return `${h}h${m}m${s}`;
  if (m) return `${m}m${s}`;
  return s;
}

/** Go's textproto.CanonicalMIMEHeaderKey: "x-custom-header" -> "X-Custom-Header". */
export function canonicalHeaderKey(name: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(name)) return name;
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/** How a Node socket error reads in Go's net package (the text kubelet's events carry). */
function goNetError(e: NodeJS.ErrnoException, addr: string, local?: string): string {
  const conn = local ? `${local}->${addr}` : addr;
  switch (e.code) {
    case "ECONNREFUSED":
      return `dial tcp ${addr}: connect: connection refused`;
    case "EHOSTUNREACH":
      return `dial tcp ${addr}: connect: no route to host`;
    case "ENETUNREACH":
      return `dial tcp ${addr}: connect: network is unreachable`;
    case "ETIMEDOUT":
      return `dial tcp ${addr}: connect: connection timed out`;
    case "EPIPE":
      return `write tcp ${conn}: write: broken pipe`;
    case "ECONNRESET":
      return e.message === "socket hang up" ? "EOF" : `read tcp ${conn}: read: connection reset by peer`;
    default:
      // An HTTPS probe of a plain HTTP port.
      if (/wrong version number|packet length too long/i.test(e.message))
        return "tls: first record does not look like a TLS handshake";
      return e.message.trim();
  }
}

export interface HTTPProbeRequest {
  url: URL;
  /** Header lines in order, names canonical (Go's http.Header). */
  headers: [string, string][];
}

/** NewRequestForHTTPGetAction: the URL (host = pod IP unless set) and headers of an httpGet probe. */
export function httpProbeRequest(
  action: HTTPGetAction,
  container: Container,
  podIP: string,
): HTTPProbeRequest {
  const scheme = (action.scheme || "HTTP").toLowerCase();
  const host = action.host || podIP;
  const port = resolveContainerPort(action.port, container);
  const path = action.path ?? "";
  const url = new URL(
    `${scheme}://${joinHostPort(host, port)}${path === "" || path.startsWith("/") ? "" : "/"}${path}`,
  );
  const headers: [string, string][] = (action.httpHeaders ?? []).map((h) => [
    canonicalHeaderKey(h.name),
    h.value,
  ]);
  const has = (name: string) => headers.some(([k]) => k === name);
  if (!has("User-Agent")) headers.push(["User-Agent", PROBE_USER_AGENT]);
  if (!has("Accept")) headers.push(["Accept", "*/*"]);
  else if (headers.find(([k]) => k === "Accept")![1] === "") {
    for (let i = headers.length - 1; i >= 0; i--) if (headers[i][0] === "Accept") headers.splice(i, 1);
  }
  return { url, headers };
}

/**
 * One HTTP(S) GET as kubelet's prober makes it: no keep-alive, no compression, certificates not
 * verified, redirects followed only on the same host (at most 10), the whole exchange bounded by
 * the timeout. 200-399 succeed; a redirect it does not follow is a success with a warning.
 */
export function httpProbe(req: HTTPProbeRequest, timeoutMs: number): Promise<ProbeOutcome> {
  const deadline = Date.now() + timeoutMs;
  const first = req.url;
  const get = (url: URL, hops: number): Promise<ProbeOutcome> =>
    new Promise((resolve) => {
      const quoted = JSON.stringify(url.href);
      const addr = joinHostPort(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port) || defaultPort(url));
      let settled = false;
      let gotHeaders = false;
      const finish = (o: ProbeOutcome | Promise<ProbeOutcome>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        finish(failed(`Get ${quoted}: unsupported protocol scheme "${url.protocol.slice(0, -1)}"`));
        return;
      }
      const headers: Record<string, string | string[]> = {};
      let hostHeader: string | undefined;
      for (const [k, v] of req.headers) {
        if (k === "Host") {
          hostHeader ??= v;
          continue;
        }
        const had = headers[k];
        headers[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
      }
      headers.Connection ??= "close";
      // An explicit Host header only holds for the original URL's host (relative redirects keep it).
      if (hostHeader && url.host === first.host) headers.Host = hostHeader;
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const r = send(url, {
        method: "GET",
        headers,
        agent: false,
        setHost: !headers.Host,
        rejectUnauthorized: false,
      });
      const timer = setTimeout(
        () => {
          const why = gotHeaders
            ? "(Client.Timeout or context cancellation while reading body)"
            : "(Client.Timeout exceeded while awaiting headers)";
          const message = `Get ${quoted}: context deadline exceeded ${why}`;
          // A body cut short is a prober error in kubelet (the result is discarded); no answer is a failure.
          finish(gotHeaders ? errored(message) : failed(message));
          r.destroy();
        },
        Math.max(0, deadline - Date.now()),
      );
      r.on("error", (e: NodeJS.ErrnoException) => {
        const local = r.socket?.localAddress
          ? joinHostPort(r.socket.localAddress, r.socket.localPort ?? 0)
          : undefined;
        const message = `Get ${quoted}: ${goNetError(e, addr, local)}`;
        finish(gotHeaders ? errored(message) : failed(message));
      });
      r.on("response", (res: IncomingMessage) => {
        gotHeaders = true;
        const code = res.statusCode ?? 0;
        const location = res.headers.location;
        if (code >= 300 && code < 400 && location !== undefined && code !== 304) {
          let next: URL | undefined;
          try {
            next = new URL(location, url);
          } catch {}
          res.resume();
          if (next && next.hostname === first.hostname) {
            if (hops >= 10) {
              finish(failed(`Get ${JSON.stringify(next.href)}: stopped after 10 redirects`));
              return;
            }
            finish(get(next, hops + 1));
            r.destroy();
            return;
          }
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (d: Buffer) => {
          if (size < MAX_OUTPUT) chunks.push(d.subarray(0, MAX_OUTPUT - size));
          size += d.length;
        });
        res.on("error", (e: NodeJS.ErrnoException) => finish(errored(goNetError(e, addr))));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (code >= 200 && code < 400) {
            if (code >= 300)
              finish({ result: "warning", output: `Probe terminated redirects, Response body: ${body}` });
            else finish(ok(body));
          } else finish(failed(`HTTP probe failed with statuscode: ${code}`));
        });
      });
      r.end();
    });
  return get(first, 0);
}

function defaultPort(url: URL): number {
  return url.protocol === "https:" ? 443 : 80;
}

/** A TCP connect to host:port within the timeout, closed at once: open port = success. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  const addr = joinHostPort(host, port);
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    const finish = (o: ProbeOutcome) => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish(failed(`dial tcp ${addr}: i/o timeout`)), timeoutMs);
    s.once("connect", () => finish(ok()));
    s.once("error", (e: NodeJS.ErrnoException) => finish(failed(goNetError(e, addr))));
  });
}

const GRPC_CODES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
/** grpc-go's mapping of a non-200 HTTP status to a gRPC code. */
const HTTP_TO_GRPC: Record<number, number> = {
  400: 13,
  401: 16,
  403: 7,
  404: 12,
  429: 14,
  502: 14,
  503: 14,
  504: 14,
};

/** A length-prefixed gRPC message holding grpc.health.v1.HealthCheckRequest{service}. */
export function healthCheckRequest(service: string): Buffer {
  const s = Buffer.from(service, "utf8");
  const varint: number[] = [];
  for (let n = s.length; ; n >>>= 7) {
    if (n < 0x80) {
      varint.push(n);
      break;
    }
    varint.push((n & 0x7f) | 0x80);
  }
  const msg = s.length ? Buffer.concat([Buffer.from([0x0a, ...varint]), s]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(msg.length, 1);
  return Buffer.concat([frame, msg]);
}

/** The status field (1, an enum) of a gRPC-framed HealthCheckResponse; 0 (UNKNOWN) when absent. */
export function healthCheckStatus(body: Buffer): number {
  if (body.length < 5) return 0;
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  let i = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; i < msg.length; shift += 7) {
      const b = msg[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    return v;
  };
  let status = 0;
  while (i < msg.length) {
    const key = varint();
    const wire = key & 7;
    if (key >>> 3 === 1 && wire === 0) status = varint();
    else if (wire === 0) varint();
    else if (wire === 2) i += varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else break;
  }
  return status;
}

/**
 * The gRPC health check kubelet makes (grpc.health.v1.Health/Check over h2c, no TLS), with its
 * messages; a server that cannot be reached is retried until the timeout, as a blocking dial is.
 */
export function grpcProbe(
  host: string,
  port: number,
  service: string,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const addr = joinHostPort(host, port);
  const timeout = goDuration(timeoutMs);
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    let settled = false;
    let session: ReturnType<typeof http2Connect> | undefined;
    let connected = false;
    let retry: NodeJS.Timeout | undefined;
    const finish = (o: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(retry);
      session?.destroy();
      resolve(o);
    };
    const timer = setTimeout(
      () =>
        finish(
          failed(
            connected
              ? `timeout: health rpc did not complete within ${timeout}`
              : `timeout: failed to connect service ${JSON.stringify(addr)} within ${timeout}: context deadline exceeded`,
          ),
        ),
      timeoutMs,
    );
    const dial = () => {
      const s = http2Connect(`http://${addr}`);
      session = s;
      s.on("error", () => {
        s.destroy();
        if (!connected && !settled)
          retry = setTimeout(dial, Math.min(1000, Math.max(0, deadline - Date.now())));
      });
      s.on("connect", () => {
        connected = true;
        const stream = s.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Check",
          "content-type": "application/grpc",
          te: "trailers",
          "user-agent": PROBE_USER_AGENT,
          "grpc-timeout": `${Math.max(1, deadline - Date.now())}m`,
        });
        const chunks: Buffer[] = [];
        let httpStatus = 0;
        let grpcStatus: number | undefined;
        let grpcMessage = "";
        const take = (h: Record<string, unknown>) => {
          if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
          if (typeof h["grpc-message"] === "string") grpcMessage = decodeURIComponent(h["grpc-message"]);
        };
        stream.on("response", (h) => {
          httpStatus = Number(h[":status"]);
          take(h);
        });
        stream.on("trailers", take);
        stream.on("data", (d: Buffer) => chunks.push(d));
        stream.on("error", (e) => finish(failed(`error: health rpc probe failed: ${e.message}`)));
        stream.on("close", () => {
          let code = grpcStatus;
          let desc = grpcMessage;
          if (httpStatus !== 200 && httpStatus !== 0) {
            code = HTTP_TO_GRPC[httpStatus] ?? 2;
            desc = `unexpected HTTP status code received from server: ${httpStatus} (${STATUS_CODES[httpStatus] ?? ""})`;
          }
          if (code === undefined) {
            code = 13;
            desc = "server closed the stream without sending trailers";
          }
          if (code === 12) {
            finish(
              failed(
                `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${desc}`,
              ),
            );
          } else if (code === 4) {
            finish(failed(`timeout: health rpc did not complete within ${timeout}`));
          } else if (code !== 0) {
            finish(
              failed(
                `error: health rpc probe failed: rpc error: code = ${GRPC_CODES[code] ?? `Code(${code})`} desc = ${desc}`,
              ),
            );
          } else {
            const status = healthCheckStatus(Buffer.concat(chunks));
            if (status === 1) finish(ok("service healthy"));
            else
              finish(
                failed(
                  `service unhealthy (responded with ${JSON.stringify(SERVING_STATUS[status] ?? String(status))})`,
                ),
              );
          }
        });
        stream.end(healthCheckRequest(service));
      });
    };
    dial();
  });
}

const NSENTER = "/usr/bin/nsenter";

/**
 * Runs argv inside the container whose PID 1 is `pid` (every namespace of it, its working
 * directory, the given environment), as CRI ExecSync does for kubelet: exit 0 = success, other
 * exits = failure with the combined output, and past the timeout the command is killed and fails
 * with `command "..." timed out`.
 */
export function execProbe(
  pid: number,
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  if (argv.length === 0) return Promise.resolve(errored("no command specified"));
  return new Promise((resolve) => {
    const full = [NSENTER, "-t", String(pid), "-n", "-m", "-u", "-i", "-p", "-w", "--", ...argv];
    // Its own process group, so a timeout kills the command too (nsenter forks it for -p).
    const child = spawn(full[0], full.slice(1), { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (d: Buffer) => {
      if (size < MAX_OUTPUT) chunks.push(d.subarray(0, MAX_OUTPUT - size));
      size += d.length;
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    let settled = false;
    const finish = (o: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {}
    };
    const timer = setTimeout(() => {
      killGroup();
      finish(failed(`command ${JSON.stringify(argv.join(" "))} timed out`));
    }, timeoutMs);
    child.on("error", (e) => finish(errored(e.message)));
    child.on("close", (code, sig) => {
      killGroup(); // whatever the command left behind in its group
      const output = Buffer.concat(chunks).toString("utf8");
      const exit = code ?? (sig ? 128 : 1);
      const startFailure = /^nsenter: (failed to execute|cannot open|reassociate|stat of)/m.exec(output);
      if (exit !== 0 && startFailure) {
        const notFound = /failed to execute .*No such file or directory/.test(output);
        finish(
          errored(
            notFound
              ? `OCI runtime exec failed: exec failed: unable to start container process: exec: ${JSON.stringify(argv[0])}: executable file not found in $PATH`
              : `failed to exec in container: ${output.trim()}`,
          ),
        );
      } else finish(exit === 0 ? ok(output) : failed(output));
    });
  });
}

/** Where a probe runs: the pod's IP, the container's spec, its PID 1 (for exec). */
export interface ProbeTarget {
  podIP?: string;
  container: Container;
  pid?: number;
  /** format.Pod: name_namespace(uid), for messages. */
  pod: string;
}

export type ProbeRunner = (spec: ProbeSpec, target: ProbeTarget) => Promise<ProbeOutcome>;

/** One run of a probe's handler with its timeout (kubelet's ProberAction.Run). */
export const runProbe: ProbeRunner = async (spec, t) => {
  const timeoutMs = Math.max(1, spec.timeoutSeconds ?? 1) * 1000;
  try {
    if (spec.exec) {
      if (!t.pid) return errored("container is not running");
      // kubelet expands $(VAR) in probe commands with the container's literal env values only.
      const vars = new Map((t.container.env ?? []).map((e) => [e.name, e.value ?? ""]));
      const argv = (spec.exec.command ?? []).map((s) => expand(s, (name) => vars.get(name)));
      return await execProbe(t.pid, argv, processEnvironment(t.pid), timeoutMs);
    }
    if (spec.httpGet) {
      return await httpProbe(httpProbeRequest(spec.httpGet, t.container, t.podIP ?? ""), timeoutMs);
    }
    if (spec.tcpSocket) {
      const port = resolveContainerPort(spec.tcpSocket.port, t.container);
      return await tcpProbe(spec.tcpSocket.host || t.podIP || "", port, timeoutMs);
    }
    if (spec.grpc) {
      return await grpcProbe(t.podIP ?? "", spec.grpc.port, spec.grpc.service ?? "", timeoutMs);
    }
  } catch (e) {
    return errored((e as Error).message);
  }
  return errored(`missing probe handler for ${t.pod}:${t.container.name}`);
};

// ---------------------------------------------------------------------------------------------
// The driver

export interface ProberOptions {
  events: EventSink;
  /** A result changed: the pod's status (or a kill) needs a sync now. */
  onChange(uid: string): void;
  /** The handlers; tests replace them. */
  run?: ProbeRunner;
}

interface Entry {
  worker: ProbeWorker;
  container: string;
  timer?: NodeJS.Timeout;
  busy: boolean;
  /** A manual trigger arrived while the probe ran (kubelet's buffered manualTriggerCh). */
  pending: boolean;
  stopped: boolean;
}

interface PodProbes {
  pod: Pod;
  rec: PodRecord;
  /** By `${container}/${type}`. */
  entries: Map<string, Entry>;
  /** Container ids whose readiness probe got its manual trigger. */
  triggered: Set<string>;
}

/** kubelet's PLEG relist period: how long after a start it notices the container running. */
const TRIGGER_AFTER_MS = 500;

/** Runs the probes of the pods on this node; the pod worker feeds it and asks it for results. */
export class Prober {
  private readonly o: ProberOptions;
  private readonly run: ProbeRunner;
  private readonly pods = new Map<string, PodProbes>();

  constructor(opts: ProberOptions) {
    this.o = opts;
    this.run = opts.run ?? runProbe;
  }

  /**
   * Called on every sync of a pod (before its containers are started): makes the pod's workers
   * the first time (kubelet's AddPod, each probing once right away), keeps the latest pod and
   * record for them to read, and triggers a readiness probe as soon as a container is started.
   */
  sync(pod: Pod, rec: PodRecord): void {
    let pp = this.pods.get(rec.uid);
    if (!pp) {
      pp = { pod, rec, entries: new Map(), triggered: new Set() };
      this.pods.set(rec.uid, pp);
      for (const c of pod.spec.containers) {
        for (const type of ["Startup", "Readiness", "Liveness"] as const) {
          const spec = probeOf(c, type);
          if (!spec) continue;
          const entry: Entry = {
            worker: new ProbeWorker(type, spec),
            container: c.name,
            busy: false,
            pending: false,
            stopped: false,
          };
          seed(
            entry.worker,
            pod,
            rec.containers.find((x) => x.name === c.name),
          );
          pp.entries.set(`${c.name}/${type}`, entry);
        }
      }
      for (const e of pp.entries.values()) {
        this.tick(pp, e);
        if (!e.stopped) {
          e.timer = setInterval(() => this.tick(pp!, e), e.worker.periodMs);
          e.timer.unref?.();
        }
      }
    }
    pp.pod = pod;
    pp.rec = rec;
    const now = Date.now();
    for (const c of rec.containers) {
      if (c.init || c.state !== "running") continue;
      const readiness = pp.entries.get(`${c.name}/Readiness`);
      if (!readiness || readiness.stopped || pp.triggered.has(c.id)) continue;
      if (now - startedAt(c) < TRIGGER_AFTER_MS || !this.status(rec.uid, c).started) continue;
      if (readiness.worker.resultFor(c.id) === "Success") continue;
      pp.triggered.add(c.id);
      this.trigger(pp, readiness);
    }
  }

  /** `started` and `ready` of a container of the pod. */
  status(uid: string, c: ContainerRecord): { started: boolean; ready: boolean } {
    const pp = this.pods.get(uid);
    const ref = containerRef(c);
    return probeStatus(
      ref,
      pp?.entries.get(`${c.name}/Startup`)?.worker,
      pp?.entries.get(`${c.name}/Readiness`)?.worker,
    );
  }

  /** Whether a running container failed its liveness or startup probe and must be killed. */
  killReason(uid: string, c: ContainerRecord): KillReason | undefined {
    const pp = this.pods.get(uid);
    return killReason(
      containerRef(c),
      pp?.entries.get(`${c.name}/Liveness`)?.worker,
      pp?.entries.get(`${c.name}/Startup`)?.worker,
    );
  }

  /** The pod is going away: its workers stop and their results are dropped. */
  forget(uid: string): void {
    const pp = this.pods.get(uid);
    if (!pp) return;
    for (const e of pp.entries.values()) {
      e.stopped = true;
      clearInterval(e.timer);
    }
    this.pods.delete(uid);
  }

  stop(): void {
    for (const uid of [...this.pods.keys()]) this.forget(uid);
  }

  private trigger(pp: PodProbes, e: Entry): void {
    if (e.busy) e.pending = true;
    else this.tick(pp, e);
  }

  /** One doProbe of a worker. Probes of one worker never overlap; ticks meanwhile are dropped. */
  private tick(pp: PodProbes, e: Entry): void {
    if (e.busy || e.stopped) return;
    const w = e.worker;
    const c = pp.rec.containers.find((x) => x.name === e.container);
    if (!c) return;
    const before = `${w.containerId}/${w.result}`;
    const view: ContainerView = {
      id: c.state === "waiting" ? undefined : c.id,
      running: c.state === "running",
      terminated: c.state === "terminated",
      startedAtMs: c.state === "running" ? startedAt(c) : undefined,
      started: this.status(pp.rec.uid, c).started,
    };
    const step = w.prepare(
      view,
      {
        deleting: !!pp.pod.metadata.deletionTimestamp,
        restartPolicy: pp.pod.spec.restartPolicy ?? "Always",
        terminal: ["Succeeded", "Failed"].includes(podPhase(pp.pod, pp.rec) ?? ""),
      },
      Date.now(),
    );
    if (step === "stop") {
      e.stopped = true;
      clearInterval(e.timer);
    }
    if (step !== "probe") {
      if (`${w.containerId}/${w.result}` !== before) this.o.onChange(pp.rec.uid);
      return;
    }
    const spec = pp.pod.spec.containers.find((x) => x.name === e.container)!;
    const target: ProbeTarget = {
      podIP: pp.rec.podIP,
      container: spec,
      pid: c.shimPid ? targetPid(c.shimPid) : undefined,
      pod: `${pp.rec.name}_${pp.rec.namespace}(${pp.rec.uid})`,
    };
    e.busy = true;
    void this.probe(pp.pod, w, target)
      .then((result) => {
        if (e.stopped || result === undefined) return;
        w.record(result);
      })
      .catch((err) =>
        console.error(`kemu agent: probe ${pp.rec.name}/${e.container}: ${(err as Error).message}`),
      )
      .finally(() => {
        e.busy = false;
        if (`${w.containerId}/${w.result}` !== before) this.o.onChange(pp.rec.uid);
        if (e.pending && !e.stopped) {
          e.pending = false;
          this.tick(pp, e);
        }
      });
  }

  /** prober.probe: the handler with up to 3 tries on errors, events, and the result (undefined on error). */
  private async probe(
    pod: Pod,
    w: ProbeWorker,
    target: ProbeTarget,
  ): Promise<"Success" | "Failure" | undefined> {
    let out: ProbeOutcome = errored("not run");
    for (let i = 0; i < 3; i++) {
      out = await this.run(w.spec, target);
      if (out.error === undefined) break;
    }
    const type = w.type;
    if (out.error !== undefined) {
      this.o.events.emit(
        pod,
        "Warning",
        "Unhealthy",
        `${type} probe errored and resulted in unknown state: ${out.error}`,
      );
      return undefined;
    }
    switch (out.result) {
      case "success":
        return "Success";
      case "warning":
        this.o.events.emit(pod, "Warning", "ProbeWarning", `${type} probe warning: ${out.output}`);
        return "Success";
      case "failure":
        this.o.events.emit(pod, "Warning", "Unhealthy", `${type} probe failed: ${out.output}`);
        return "Failure";
      default:
        return "Failure";
    }
  }
}

function startedAt(c: ContainerRecord): number {
  return c.startedAtMs ?? (c.startedAt ? Date.parse(c.startedAt) : Date.now());
}

function containerRef(c: ContainerRecord): ContainerRef {
  return { id: c.state === "waiting" ? undefined : c.id, running: c.state === "running" };
}

/**
 * After an agent restart, a running container keeps the readiness and started it had in the API
 * until its next probe instead of flapping to not-ready (kubelet starts from scratch here).
 */
function seed(w: ProbeWorker, pod: Pod, c: ContainerRecord | undefined): void {
  if (c?.state !== "running" || w.type === "Liveness") return;
  const s = (pod.status?.containerStatuses ?? []).find((x: any) => x?.name === c.name);
  if (!s || s.containerID !== `kemu://${c.id}` || !s.state?.running) return;
  if ((w.type === "Readiness" && s.ready === true) || (w.type === "Startup" && s.started === true)) {
    w.containerId = c.id;
    w.result = "Success";
  }
}
