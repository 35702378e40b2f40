// `npm run bench:api`: the control plane's performance figures, measured against a real
// `kemu api` process over HTTP (the server runs alone in its own process; this script is the
// client). Prints figures; never asserts on time.
//
// 1. create 2000 pods with 8 concurrent clients -> writes/s
// 2. watch latency: a sequential stream of updates, time from request sent to watch event seen
// 3. list 10000 pods (JSON and kubectl's Table form) -> ms
// 4. server RSS with 10000 pods stored

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;
let agent: https.Agent;

interface Conn {
  host: string;
  port: number;
  token: string;
}

function request(
  c: Conn,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        host: c.host,
        port: c.port,
        method,
        path,
        agent,
        headers: {
          authorization: `Bearer ${c.token}`,
          "content-type": method === "PATCH" ? "application/merge-patch+json" : "application/json",
          ...(data ? { "content-length": Buffer.byteLength(data) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

function pod(name: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: "bench", shard: String(name.length % 4) } },
    spec: {
      containers: [
        {
          name: "app",
          image: "registry.k8s.io/e2e-test-images/agnhost:2.39",
          args: ["netexec", "--http-port=8080"],
          ports: [{ containerPort: 8080, name: "http" }],
        },
      ],
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function startServer(dataDir: string): Promise<{ proc: ChildProcess; conn: Conn }> {
  const proc = spawn(join(ROOT, "bin/kemu"), ["api", "--data-dir", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once("exit", (code) => reject(new Error(`kemu api exited with ${code}`)));
  });
  const u = new URL(url);
  const token = readFileSync(join(dataDir, "token"), "utf8").trim();
  agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: readFileSync(join(dataDir, "ca.crt")) });
  return { proc, conn: { host: u.hostname, port: Number(u.port), token } };
}

async function createPods(c: Conn, names: string[], concurrency: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const name = names[next++];
        const res = await request(c, "POST", "/api/v1/namespaces/default/pods", pod(name));
        if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${res.body}`);
      }
    }),
  );
  return performance.now() - started;
}

/** Opens a pod watch and calls back with each event's name and arrival time. */
function openWatch(c: Conn, rv: string, onEvent: (name: string, at: number) => void): () => void {
  const req = https.request({
    agent,
    host: c.host,
    port: c.port,
    path: `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${rv}`,
    headers: { authorization: `Bearer ${c.token}` },
  });
  req.on("response", (res) => {
    let buf = "";
    res.on("data", (d) => {
      const at = performance.now();
      buf += d;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const ev = JSON.parse(line);
        onEvent(ev.object.metadata.name, at);
        nl = buf.indexOf("\n");
      }
    });
  });
  req.on("error", () => {});
  req.end();
  return () => req.destroy();
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "kemu-bench-api-"));
  const { proc, conn } = await startServer(dataDir);
  try {
    // 1. writes/s
    const names = Array.from({ length: 2000 }, (_, i) => `bench-${i}`);
    const ms = await createPods(conn, names, 8);
    console.log(
      `create 2000 pods, 8 concurrent clients: ${(2000 / (ms / 1000)).toFixed(0)} writes/s (${ms.toFixed(0)} ms)`,
    );

    // 2. watch latency
    const list = JSON.parse((await request(conn, "GET", "/api/v1/namespaces/default/pods?limit=1")).body);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const stop = openWatch(conn, list.metadata.resourceVersion, (name, at) => {
      const t = sentAt.get(name);
      if (t !== undefined) {
        latencies.push(at - t);
        sentAt.delete(name);
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 500; i++) {
      const name = names[i];
      sentAt.set(name, performance.now());
      await request(conn, "PATCH", `/api/v1/namespaces/default/pods/${name}`, {
        metadata: { labels: { round: String(i) } },
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    stop();
    latencies.sort((a, b) => a - b);
    console.log(
      `watch latency (request sent -> event seen), ${latencies.length} updates: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
    );

    // 3. list 10000 pods
    await createPods(
      conn,
      Array.from({ length: 8000 }, (_, i) => `bulk-${i}`),
      8,
    );
    for (const [label, headers] of [
      ["JSON", {}],
      ["Table (kubectl get)", { accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" }],
    ] as const) {
      const times: number[] = [];
      let count = 0;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const res = await request(conn, "GET", "/api/v1/pods", undefined, headers);
        times.push(performance.now() - t0);
        const body = JSON.parse(res.body);
        count = (body.items ?? body.rows).length;
      }
      times.sort((a, b) => a - b);
      console.log(
        `list ${count} pods (${label}): median ${percentile(times, 50).toFixed(0)} ms, worst ${times.at(-1)!.toFixed(0)} ms`,
      );
    }

    // 4. memory, once the server has been idle long enough for V8's memory reducer to collect
    // the garbage the list responses left.
    console.log(`server RSS right after the lists: ${rssMb(proc.pid!).toFixed(0)} MB`);
    await new Promise((r) => setTimeout(r, 10_000));
    console.log(`server RSS with 10000 pods stored, after 10 s idle: ${rssMb(proc.pid!).toFixed(0)} MB`);
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
    agent.destroy();
  }
}

await main();
