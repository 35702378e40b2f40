// Durability under SIGKILL: `kemu api` runs as a child process, four clients create pods as fast as
// it acknowledges them, and the process is killed mid-burst. After a restart on the same data dir
// every acknowledged (201) write must be there with the resourceVersion it was acknowledged with,
// and the revision must keep growing from where it was.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const KEMU = join(ROOT, "bin/kemu");
const WRITERS = 4;
const ACKS_BEFORE_KILL = 300;

interface Api {
  proc: ChildProcess;
  url: URL;
  agent: https.Agent;
  token: string;
  output: () => string;
}

interface Reply {
  status: number;
  json: any;
  text: string;
}

const children = new Set<ChildProcess>();
const dirs: string[] = [];

function kill(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
    process.kill(proc.pid, signal);
  }
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once("exit", () => resolve()));
}

/** Starts `kemu api` on a free port and resolves once it prints its URL. */
async function startApi(dataDir: string): Promise<Api> {
  const proc = spawn(KEMU, ["api", "--data-dir", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  proc.once("exit", () => children.delete(proc));
  let out = "";
  proc.stdout!.on("data", (d) => {
    out += d;
  });
  proc.stderr!.on("data", (d) => {
    out += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const m = /kemu api listening on (https:\/\/\S+)/.exec(out);
      if (m) {
        proc.stdout!.off("data", onData);
        resolve(m[1]);
      }
    };
    proc.stdout!.on("data", onData);
    proc.once("exit", (code, signal) =>
      reject(new Error(`kemu api exited (${code ?? signal}) before listening:\n${out}`)),
    );
    proc.once("error", reject);
  });
  const agent = new https.Agent({
    ca: readFileSync(join(dataDir, "ca.crt")),
    keepAlive: true,
    maxSockets: WRITERS,
  });
  const token = readFileSync(join(dataDir, "token"), "utf8").trim();
  return { proc, url: new URL(url), agent, token, output: () => out };
}

function request(api: Api, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        host: api.url.hostname,
        port: api.url.port,
        method,
        path,
        agent: api.agent,
        headers: {
          authorization: `Bearer ${api.token}`,
          "content-type": "application/json",
          ...(data === undefined ? {} : { "content-length": Buffer.byteLength(data) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d) => chunks.push(d));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

function pod(name: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: "crash" } },
    // No scheduler acts on these pods, so nothing but this test writes them and an acknowledged
    // resourceVersion stays the pod's current one.
    spec: { schedulerName: "crash-test-scheduler", containers: [{ name: "app", image: "nginx:1.27" }] },
  };
}

afterEach(async () => {
  for (const proc of children) {
    kill(proc, "SIGKILL");
    await exited(proc);
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("kemu api under SIGKILL", () => {
  it("keeps every acknowledged write across a kill during a burst of writes", async () => {
    const dataDir = tempDir("kemu-crash-");
    dirs.push(dataDir);
    const acked = new Map<string, string>();
    const refused: string[] = [];
    let killedAt = -1;
    let inFlight = 0;
    let inFlightAtKill = -1;

    const first = await startApi(dataDir);
    try {
      let next = 0;
      let killed = false;
      const writer = async (w: number) => {
        for (;;) {
          if (killed) return;
          const name = `crash-${w}-${next++}`;
          let res: Reply;
          inFlight++;
          try {
            res = await request(first, "POST", "/api/v1/namespaces/default/pods", pod(name));
          } catch {
            inFlight--;
            // The connection died with the process: this write was never acknowledged.
            if (killed) return;
            throw new Error(`request failed before the kill:\n${first.output()}`);
          }
          inFlight--;
          if (res.status !== 201) {
            if (!killed) refused.push(`${name}: ${res.status} ${res.text}`);
            continue;
          }
          acked.set(name, res.json.metadata.resourceVersion);
          if (!killed && acked.size >= ACKS_BEFORE_KILL) {
            // Kill while the other writers still have requests in flight.
            killed = true;
            killedAt = acked.size;
            inFlightAtKill = inFlight;
            kill(first.proc, "SIGKILL");
          }
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
      await exited(first.proc);
    } finally {
      kill(first.proc, "SIGKILL");
      first.agent.destroy();
    }
    expect(refused).toEqual([]);
    expect(killedAt).toBe(ACKS_BEFORE_KILL);
    // The kill lands mid-burst: every other writer was waiting on a create.
    expect(inFlightAtKill).toBe(WRITERS - 1);
    expect(first.proc.signalCode).toBe("SIGKILL");
    // A reply can still arrive after the kill signal was sent; those count as acknowledged too.
    expect(acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    const second = await startApi(dataDir);
    try {
      const list = await request(second, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dcrash");
      expect(list.status, list.text).toBe(200);
      const stored = new Map<string, string>(
        list.json.items.map((p: any) => [p.metadata.name, p.metadata.resourceVersion]),
      );
      const lost = [...acked].filter(([name]) => !stored.has(name)).map(([name]) => name);
      expect(lost, "acknowledged pods missing after restart").toEqual([]);
      const changed = [...acked]
        .filter(([name, rv]) => stored.get(name) !== rv)
        .map(([name, rv]) => `${name}: acked ${rv}, stored ${stored.get(name)}`);
      expect(changed, "acknowledged pods whose resourceVersion changed").toEqual([]);
      // Every acknowledged revision is distinct: one global revision per write.
      expect(new Set(acked.values()).size).toBe(acked.size);

      // Spot-check single reads as well as the list.
      for (const name of [...acked.keys()].slice(0, 5)) {
        const got = await request(second, "GET", `/api/v1/namespaces/default/pods/${name}`);
        expect(got.status, got.text).toBe(200);
        expect(got.json.metadata.resourceVersion).toBe(acked.get(name));
      }

      const maxAcked = Math.max(...[...acked.values()].map(Number));
      const maxStored = Math.max(...[...stored.values()].map(Number));
      expect(Number(list.json.metadata.resourceVersion)).toBeGreaterThanOrEqual(maxStored);
      const fresh = await request(second, "POST", "/api/v1/namespaces/default/pods", pod("after-restart"));
      expect(fresh.status, fresh.text).toBe(201);
      const freshRv = Number(fresh.json.metadata.resourceVersion);
      expect(freshRv).toBeGreaterThan(maxAcked);
      expect(freshRv).toBeGreaterThan(maxStored);
      expect(freshRv).toBeGreaterThan(Number(list.json.metadata.resourceVersion));
    } finally {
      kill(second.proc, "SIGTERM");
      await exited(second.proc);
      second.agent.destroy();
    }
    // A clean stop after the restart exits normally.
    expect(second.proc.exitCode).toBe(0);
  }, 60_000);
});
