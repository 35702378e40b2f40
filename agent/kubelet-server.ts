// The agent's kubelet-style API, which the control plane proxies `kubectl logs` and `kubectl exec`
// to (as the apiserver proxies to a kubelet on port 10250):
//   GET /containerLogs/<ns>/<pod>/<container>?follow&tailLines&previous&limitBytes
//   GET /exec/<ns>/<pod>/<container>?command=...&stdin&stdout&stderr&tty  (WebSocket,
//       v5.channel.k8s.io / v4.channel.k8s.io: one channel byte, then data; 3 = status)
// Requests must carry the cluster's bearer token.

import { type ChildProcess, spawn } from "node:child_process";
import { createReadStream, existsSync, readFileSync, statSync, watch as watchFile } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { tokenMatches } from "../api/bearer-token.ts";
import type { PodWorker } from "./runtime/pods.ts";
import { processEnvironment } from "./runtime/process.ts";

const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;

export interface KubeletServerOptions {
  host: string;
  port: number;
  token: string;
  tls: { certPem: string; keyPem: string };
  pods: PodWorker;
}

function text(res: import("node:http").ServerResponse, code: number, body: string): void {
  res.writeHead(code, { "content-type": "text/plain" });
  res.end(body);
}

/** The last `n` lines of a file (logs are small enough to read whole). */
function tail(file: string, n: number | undefined): string {
  const all = readFileSync(file, "utf8");
  if (n === undefined) return all;
  const lines = all.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.slice(Math.max(0, lines.length - n)).join("\n") + (lines.length && n > 0 ? "\n" : "");
}

export class KubeletServer {
  private server?: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => PROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
  private readonly o: KubeletServerOptions;

  constructor(opts: KubeletServerOptions) {
    this.o = opts;
  }

  async start(): Promise<number> {
    const server = createServer({ key: this.o.tls.keyPem, cert: this.o.tls.certPem }, (req, res) => {
      if (!tokenMatches(req.headers.authorization, this.o.token)) return text(res, 401, "Unauthorized");
      const url = new URL(req.url ?? "/", "https://kubelet");
      const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
      if (parts[0] === "healthz") return text(res, 200, "ok");
      if (parts[0] === "containerLogs" && parts.length === 4) return this.logs(res, parts, url.searchParams);
      text(res, 404, "not found");
    });
    server.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
      if (
        !tokenMatches(req.headers.authorization, this.o.token) ||
        parts[0] !== "exec" ||
        parts.length !== 4
      ) {
        socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.exec(ws, parts, url.searchParams));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private logs(res: import("node:http").ServerResponse, parts: string[], q: URLSearchParams): void {
    const [, ns, pod, container] = parts;
    const previous = q.get("previous") === "true";
    const file = this.o.pods.logPath(ns, pod, container, previous);
    if (!file || !existsSync(file)) {
      const rec = this.o.pods.podRecord(ns, pod);
      const why = !rec
        ? `pod "${pod}" not found on this node`
        : previous
          ? `previous terminated container "${container}" in pod "${pod}" not found`
          : `container "${container}" in pod "${pod}" is waiting to start: ContainerCreating`;
      text(res, 400, why);
      return;
    }
    const tailLines = q.has("tailLines") ? Number(q.get("tailLines")) : undefined;
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    res.write(tail(file, tailLines));
    if (q.get("follow") !== "true") {
      res.end();
      return;
    }
    // Follow: stream what is appended until the client goes away.
    let offset = statSync(file).size;
    const pump = () => {
      const size = statSync(file).size;
      if (size <= offset) return;
      createReadStream(file, { start: offset, end: size - 1 }).on("data", (d) => res.write(d));
      offset = size;
    };
    const watcher = watchFile(file, pump);
    const timer = setInterval(pump, 500);
    res.on("close", () => {
      watcher.close();
      clearInterval(timer);
    });
  }

  private exec(ws: WebSocket, parts: string[], q: URLSearchParams): void {
    const [, ns, pod, container] = parts;
    const command = q.getAll("command");
    const tty = q.get("tty") === "true" || q.get("tty") === "1";
    const wantStdin = q.get("stdin") === "true" || q.get("stdin") === "1";
    const send = (channel: number, data: Buffer | string) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)]));
    };
    const finish = (status: Record<string, unknown>) => {
      send(ERROR, JSON.stringify({ metadata: {}, ...status }));
      ws.close(1000);
    };
    const pid = this.o.pods.containerPid(ns, pod, container);
    if (!pid) {
      finish({
        status: "Failure",
        message: `container ${container} in pod ${pod} is not running`,
        reason: "BadRequest",
        code: 400,
      });
      return;
    }
    if (command.length === 0) {
      finish({
        status: "Failure",
        message: "you must specify at least one command for the container",
        code: 400,
      });
      return;
    }
    // Enter every namespace of the container's PID 1; a pseudo-terminal when asked for one.
    const enter = ["/usr/bin/nsenter", "-t", String(pid), "-n", "-m", "-u", "-i", "-p", "--"];
    const argv = tty
      ? [
          ...enter,
          "/usr/bin/python3",
          "-c",
          "import pty,sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
          ...command,
        ]
      : [...enter, ...command];
    let child: ChildProcess;
    try {
      child = spawn(argv[0], argv.slice(1), {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...processEnvironment(pid), ...(tty ? { TERM: "xterm" } : {}) },
      });
    } catch (e) {
      finish({ status: "Failure", message: (e as Error).message, code: 500 });
      return;
    }
    child.stdout!.on("data", (d: Buffer) => send(STDOUT, d));
    child.stderr!.on("data", (d: Buffer) => send(tty ? STDOUT : STDERR, d));
    child.on("error", (e) => finish({ status: "Failure", message: e.message, code: 500 }));
    child.on("close", (code, sig) => {
      const exit = code ?? (sig ? 128 : 1);
      if (exit === 0) finish({ status: "Success" });
      else
        finish({
          status: "Failure",
          message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${exit}`,
          reason: "NonZeroExitCode",
          details: { causes: [{ reason: "ExitCode", message: String(exit) }] },
        });
    });
    if (!wantStdin) child.stdin!.end();
    ws.on("message", (data: Buffer) => {
      const channel = data[0];
      if (channel === STDIN && wantStdin) child.stdin!.write(data.subarray(1));
      else if (channel === CLOSE && data[1] === STDIN) child.stdin!.end();
    });
    ws.on("close", () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
  }
}
