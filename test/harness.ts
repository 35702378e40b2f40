// Shared test harness: a real control plane on a free port in a fresh temp dir, an HTTPS client
// that trusts its CA, and cleanup that always runs.

import { mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ApiServer, type ApiServerOptions, startApiServer } from "../api/server.ts";

export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export interface TestCluster {
  server: ApiServer;
  dataDir: string;
  /** HTTPS request with the admin token (unless `token: null`). Body objects are sent as JSON. */
  request(
    method: string,
    path: string,
    opts?: { body?: unknown; headers?: Record<string, string>; token?: string | null },
  ): Promise<TestResponse>;
  /** Opens a streaming watch; `events` fills as lines arrive. */
  watch(path: string): { events: any[]; close(): void; closed: Promise<void> };
  close(): Promise<void>;
}

export function tempDir(prefix = "kemu-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestCluster(opts: Partial<ApiServerOptions> = {}): Promise<TestCluster> {
  const dataDir = opts.dataDir ?? tempDir();
  let server: ApiServer;
  try {
    server = await startApiServer({ port: 0, ...opts, dataDir });
  } catch (e) {
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const url = new URL(server.url);
  const agent = new https.Agent({ ca: server.caPem, keepAlive: true });

  const request: TestCluster["request"] = (method, path, o = {}) =>
    new Promise((resolve, reject) => {
      const body =
        o.body === undefined
          ? undefined
          : typeof o.body === "string" || Buffer.isBuffer(o.body)
            ? o.body
            : JSON.stringify(o.body);
      const headers: Record<string, string | number> = {
        "content-type": method === "PATCH" ? "application/merge-patch+json" : "application/json",
        ...o.headers,
      };
      if (o.token !== null) headers.authorization = `Bearer ${o.token ?? server.token}`;
      if (body !== undefined) headers["content-length"] = Buffer.byteLength(body);
      const req = https.request(
        { host: url.hostname, port: url.port, method, path, agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d) => chunks.push(d));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            let json: any;
            try {
              json = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
        },
      );
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });

  const watch: TestCluster["watch"] = (path) => {
    const events: any[] = [];
    let done!: () => void;
    const closed = new Promise<void>((r) => {
      done = r;
    });
    const req = https.request({
      host: url.hostname,
      port: url.port,
      path,
      agent,
      headers: { authorization: `Bearer ${server.token}` },
    });
    req.on("response", (res) => {
      let buf = "";
      res.on("data", (d) => {
        buf += d;
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          events.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
          nl = buf.indexOf("\n");
        }
      });
      res.on("close", done);
    });
    req.on("error", done);
    req.end();
    return { events, close: () => req.destroy(), closed };
  };

  return {
    server,
    dataDir,
    request,
    watch,
    async close() {
      agent.destroy();
      await server.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a truthy value or the timeout passes. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw last instanceof Error ? last : new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
