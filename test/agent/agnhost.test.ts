// agnhost.c and the image catalog on a real network namespace: builds the programs with
// agent/images/build.sh into a temp dir, runs agnhost (and nginx) inside a private namespace the
// way the pod worker does (argv and env from containerCommand), and talks to them from inside that
// namespace with busybox wget and a small Node client. Traffic never leaves the namespace's
// loopback. Needs root (ip netns), gcc and busybox.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../agent/exec.ts";
import { containerCommand, type ImagePaths } from "../../agent/images/catalog.ts";
import { tempDir } from "../harness.ts";

const isRoot = process.getuid?.() === 0;
const ROOT = new URL("../../", import.meta.url).pathname;
const NS = `kemu-t-agn-${randomBytes(4).toString("hex")}`;
const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";

/** The Node client run inside the namespace: one operation per invocation, JSON on stdout. */
const CLIENT = `
import http from "node:http";
import dgram from "node:dgram";
import net from "node:net";

const [op, ...a] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v));

function get(url, agent = false) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body, localPort }));
    });
    let localPort;
    req.on("socket", (s) => s.on("connect", () => (localPort = s.localPort)));
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error("timeout")));
  });
}

if (op === "get") out(await get(a[0]));
if (op === "keepalive") {
  // Several requests over one kept-alive connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const results = [];
  for (const url of a) results.push(await get(url, agent));
  agent.destroy();
  out(results.map((r) => ({ status: r.status, body: r.body, port: r.localPort })));
}
if (op === "parallel") {
  // One client that sends half a request and then stalls, plus N parallel clients.
  const slow = net.connect(Number(a[1]), "127.0.0.1", () => slow.write("GET /hostname HTTP/1.1\\r\\nHost: x"));
  const n = Number(a[2]);
  const t0 = Date.now();
  const res = await Promise.all(Array.from({ length: n }, (_, i) => get(a[0] + "?msg=" + i)));
  slow.destroy();
  out({ ms: Date.now() - t0, ok: res.filter((r, i) => r.status === 200 && r.body === String(i)).length });
}
if (op === "udp") {
  const sock = dgram.createSocket("udp4");
  const timer = setTimeout(() => { out({ error: "timeout" }); process.exit(0); }, 5000);
  sock.on("message", (m) => { clearTimeout(timer); out({ reply: m.toString(), port: sock.address().port }); sock.close(); });
  sock.send(a[1], Number(a[0]), "127.0.0.1");
}
if (op === "tcp") {
  let data = "";
  const s = net.connect(Number(a[0]), "127.0.0.1");
  s.setEncoding("utf8");
  s.on("data", (d) => (data += d));
  s.on("end", () => out({ data }));
  s.on("error", (e) => out({ error: e.message }));
}
`;

describe.skipIf(!isRoot)("agnhost and the image catalog in a network namespace", () => {
  let dir = "";
  let paths: ImagePaths;
  let client = "";
  const started: ChildProcess[] = [];

  beforeAll(async () => {
    dir = tempDir("kemu-agnhost-");
    const images = join(dir, "images");
    await run([join(ROOT, "agent/images/build.sh"), images], { timeoutMs: 120_000 });
    paths = {
      agnhost: join(images, "agnhost"),
      busyboxBin: join(images, "busybox", "bin"),
      nginx: "/usr/sbin/nginx",
      kemu: join(ROOT, "bin/kemu"),
      runDir: join(dir, "run"),
    };
    mkdirSync(paths.runDir);
    client = join(dir, "client.mjs");
    writeFileSync(client, CLIENT);
    await run(["ip", "netns", "add", NS]);
    await run(["ip", "-n", NS, "link", "set", "lo", "up"]);
  }, 120_000);

  afterAll(async () => {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await run(["ip", "netns", "del", NS], { allowFail: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  interface Started {
    child: ChildProcess;
    output: () => string;
    exited: Promise<number | null>;
  }

  /**
   * argv inside the namespace with exactly env as its environment. `ip` and `env` come from the
   * test's PATH; env(1) then execs argv[0] looked up in the container's PATH. Both exec in place,
   * so the child's pid is the program's.
   */
  function nsArgv(argv: string[], env: Record<string, string>): string[] {
    return [
      "ip",
      "netns",
      "exec",
      NS,
      "env",
      "-i",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...argv,
    ];
  }

  let logs = 0;

  /** Starts argv in the namespace with stdout and stderr to a log file, as the pod worker does. */
  async function start(argv: string[], env: Record<string, string>, ready: RegExp): Promise<Started> {
    const full = nsArgv(argv, env);
    const log = join(dir, `${++logs}.log`);
    const fd = openSync(log, "a");
    const child = spawn(full[0], full.slice(1), { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    started.push(child);
    const output = () => readFileSync(log, "utf8");
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    while (!ready.test(output())) {
      if (child.exitCode !== null) throw new Error(`${argv.join(" ")} exited ${child.exitCode}: ${output()}`);
      if (Date.now() > deadline) throw new Error(`${argv.join(" ")} not ready: ${output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { child, output, exited };
  }

  async function startAgnhost(args: string[], ready: RegExp): Promise<Started> {
    const cmd = containerCommand({ image: AGNHOST, args, env: {} }, paths);
    expect(cmd.argv[0]).toBe(paths.agnhost);
    return start(cmd.argv, cmd.env, ready);
  }

  async function inNs(...args: string[]): Promise<any> {
    const { stdout } = await run([process.execPath, client, ...args], { netns: NS });
    return JSON.parse(stdout);
  }

  async function stop(s: Started, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    s.child.kill(signal);
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 3000));
    const code = await Promise.race([s.exited, timeout]);
    if (code === "timeout") throw new Error("did not exit within 3 s of the signal");
    return code;
  }

  describe("netexec", () => {
    let ne: Started;
    beforeAll(async () => {
      ne = await startAgnhost(["netexec", "--http-port=8080", "--udp-port=8081"], /Started HTTP server/);
    });

    it("is the agnhost process itself", () => {
      expect(readFileSync(`/proc/${ne.child.pid}/comm`, "utf8").trim()).toBe("agnhost");
    });

    it("answers /hostname to busybox wget (via the busybox image's PATH and /bin mapping)", async () => {
      const cmd = containerCommand(
        { image: "busybox", command: ["/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/hostname"], env: {} },
        paths,
      );
      expect(cmd.argv[0]).toBe(join(paths.busyboxBin, "sh"));
      const { stdout } = await run(nsArgv(cmd.argv, cmd.env));
      expect(stdout).toBe(hostname());
    });

    it("answers /clientip with the caller's ip:port", async () => {
      const r = await inNs("get", "http://127.0.0.1:8080/clientip");
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(r.body).toBe(`127.0.0.1:${r.localPort}`);
      const v6 = await inNs("get", "http://[::1]:8080/clientip");
      expect(v6.body).toBe(`[::1]:${v6.localPort}`);
    });

    it("echoes URL-decoded messages, with an optional status code", async () => {
      const r = await inNs("get", "http://127.0.0.1:8080/echo?msg=hello%20world");
      expect(r).toMatchObject({ status: 200, body: "hello world" });
      expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
      expect(r.headers["content-length"]).toBe("11");
      expect(await inNs("get", "http://127.0.0.1:8080/echo?msg=nope&code=503")).toMatchObject({
        status: 503,
        body: "nope",
      });
    });

    it("serves /, /healthz, /hostName and /dial", async () => {
      expect((await inNs("get", "http://127.0.0.1:8080/")).body).toMatch(
        /^NOW: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/,
      );
      expect(await inNs("get", "http://127.0.0.1:8080/healthz")).toMatchObject({ status: 200, body: "" });
      expect((await inNs("get", "http://127.0.0.1:8080/hostName")).body).toBe(hostname());
      const dial = await inNs(
        "get",
        "http://127.0.0.1:8080/dial?request=hostname&protocol=http&host=127.0.0.1&port=8080&tries=2",
      );
      expect(JSON.parse(dial.body)).toEqual({ responses: [hostname(), hostname()] });
      const udp = await inNs(
        "get",
        "http://127.0.0.1:8080/dial?request=hostname&protocol=udp&host=127.0.0.1&port=8081",
      );
      expect(JSON.parse(udp.body)).toEqual({ responses: [hostname()] });
    });

    it("keeps connections alive", async () => {
      const r = await inNs("keepalive", "http://127.0.0.1:8080/hostname", "http://127.0.0.1:8080/clientip");
      expect(r[0].body).toBe(hostname());
      expect(r[1].body).toBe(`127.0.0.1:${r[0].port}`);
    });

    it("answers hostname, echo and clientip over UDP", async () => {
      expect((await inNs("udp", "8081", "hostname")).reply).toBe(hostname());
      expect((await inNs("udp", "8081", "echo hello")).reply).toBe("hello");
      const ip = await inNs("udp", "8081", "clientip");
      expect(ip.reply).toBe(`127.0.0.1:${ip.port}`);
    });

    it("serves 200 parallel clients while another one stalls mid-request", async () => {
      const r = await inNs("parallel", "http://127.0.0.1:8080/echo", "8080", "200");
      expect(r.ok).toBe(200);
    });

    it("logs one line per request to stdout", () => {
      expect(ne.output()).toMatch(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d GET \/hostname$/m);
      expect(ne.output()).toMatch(/GET \/echo\?msg=hello world&code=$/m);
    });

    it("stays far under 10 MB of RSS when idle", async () => {
      await new Promise((r) => setTimeout(r, 200));
      const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${ne.child.pid}/status`, "utf8"))![1]);
      console.info(`agnhost netexec idle RSS: ${kib} KiB`);
      expect(kib).toBeGreaterThan(0);
      expect(kib).toBeLessThan(10 * 1024);
    });

    it("exits 0 on SIGTERM", async () => {
      expect(await stop(ne)).toBe(0);
    });
  });

  it("netexec /exit?code=N exits with N", async () => {
    const ne = await startAgnhost(
      ["netexec", "--http-port", "8090", "--udp-port", "-1"],
      /Started HTTP server/,
    );
    expect(ne.output()).not.toMatch(/UDP/);
    await run([process.execPath, client, "get", "http://127.0.0.1:8090/exit?code=3"], {
      netns: NS,
      allowFail: true,
    });
    expect(await Promise.race([ne.exited, new Promise((r) => setTimeout(() => r("timeout"), 3000))])).toBe(3);
  });

  it("serve-hostname answers over HTTP, TCP and UDP", async () => {
    const http = await startAgnhost(["serve-hostname"], /Serving on port 9376/);
    const tcp = await startAgnhost(["serve-hostname", "--tcp", "--http=false", "--port=9377"], /Serving/);
    const udp = await startAgnhost(["serve-hostname", "--udp", "--http=false", "--port", "9378"], /Serving/);
    expect(await inNs("get", "http://127.0.0.1:9376/anything")).toMatchObject({
      status: 200,
      body: hostname(),
    });
    expect(await inNs("tcp", "9377")).toEqual({ data: hostname() });
    expect((await inNs("udp", "9378", "x")).reply).toBe(hostname());
    for (const s of [http, tcp, udp]) expect(await stop(s)).toBe(0);
  });

  it("pause (the pause image) sleeps until SIGTERM, then exits 0", async () => {
    const cmd = containerCommand({ image: "registry.k8s.io/pause:3.10", env: {} }, paths);
    const p = await start(cmd.argv, cmd.env, /Paused/);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.child.exitCode).toBeNull();
    expect(await stop(p)).toBe(0);
  });

  it("prints usage and exits 1 without a subcommand", async () => {
    const r = await run([paths.agnhost], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Usage:/);
    const bad = await run([paths.agnhost, "netexec", "--nope"], { allowFail: true });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown flag: --nope/);
  });

  it.skipIf(!isRoot || !existsSync("/usr/sbin/nginx"))(
    "the nginx image serves the welcome page on port 80",
    async () => {
      const cmd = containerCommand({ image: "docker.io/library/nginx:1.27", env: {} }, paths);
      for (const f of cmd.files ?? []) writeFileSync(f.path, f.content);
      const nginx = await start(cmd.argv, cmd.env, /nginx\/\d/);
      try {
        let r: any;
        for (let i = 0; i < 50 && !r; i++) {
          r = await inNs("get", "http://127.0.0.1/").catch(() => undefined);
          if (!r) await new Promise((res) => setTimeout(res, 100));
        }
        expect(r?.status).toBe(200);
        expect(r.body).toContain("<title>Welcome to nginx!</title>");
        expect((await inNs("get", "http://[::1]/index.html")).status).toBe(200);
        expect((await inNs("get", "http://127.0.0.1/nginx.conf")).status).toBe(404);
        expect(nginx.output()).toMatch(/"GET \/ HTTP\/1.1" 200/);
      } finally {
        expect(await stop(nginx)).toBe(0);
      }
    },
  );
});
