// `kemu dns` as a user runs it: --help, flag errors with exit status 2 before anything starts,
// and a real run against a control plane until SIGTERM.

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster, tempDir } from "../test/harness.ts";

const run = promisify(execFile);
const KEMU = new URL("../bin/kemu", import.meta.url).pathname;

async function kemuDns(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(KEMU, ["dns", ...args]);
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("kemu dns flags", () => {
  const creds = [
    "--api",
    "https://127.0.0.1:6443",
    "--token-file",
    "/nonexistent/t",
    "--ca-file",
    "/nonexistent/c",
  ];

  it("prints its usage with --help", async () => {
    const r = await kemuDns("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: kemu dns --api URL --token-file FILE --ca-file FILE [flags]");
    expect(r.stdout).toContain("--upstream IP[:PORT]");
  });

  it("names the flag and the reason, with exit status 2", async () => {
    const cases: [string[], string][] = [
      [[], "kemu dns: --api is required"],
      [["--api", "https://x"], "kemu dns: --token-file is required"],
      [
        ["--api", "http://127.0.0.1:6443", "--token-file", "t", "--ca-file", "c"],
        "--api must be an https:// URL",
      ],
      [
        [...creds, "--listen", "localhost:53"],
        'kemu dns: --listen "localhost:53": the address must be an IP address',
      ],
      [[...creds, "--listen", "127.0.0.1:99999"], "the port must be a number between 0 and 65535"],
      [
        [...creds, "--upstream", "8.8.8.8:0"],
        'kemu dns: --upstream "8.8.8.8:0": the port must be between 1 and 65535',
      ],
      [
        [...creds, "--upstream", "dns.google"],
        'kemu dns: --upstream "dns.google": the address must be an IP address',
      ],
      [
        [...creds, "--zone", "bad..zone"],
        'kemu dns: --zone must be a DNS name like cluster.local, got "bad..zone"',
      ],
      [
        [...creds, "--health-port", "http"],
        'kemu dns: --health-port must be an integer between 0 and 65535, got "http"',
      ],
      [
        [...creds, "--health-port", "9000", "--ready-port", "9000"],
        "--health-port and --ready-port are both 9000",
      ],
      [[...creds, "--listen", "0.0.0.0:8080"], "kemu dns: --health-port 8080 is the DNS port of --listen"],
      [[...creds, "--forward", "1.1.1.1"], "kemu dns: Unknown option '--forward'"],
      [[...creds, "extra"], 'kemu dns: unexpected argument "extra"'],
    ];
    const results = await Promise.all(cases.map(([args]) => kemuDns(...args)));
    cases.forEach(([args, message], i) => {
      expect([args, results[i].code]).toEqual([args, 2]);
      expect(results[i].stderr).toContain(message);
    });
  });

  it("fails with exit status 1 naming an unreadable credentials file", async () => {
    const r = await kemuDns(...creds, "--listen", "127.0.0.1:0", "--health-port", "0", "--ready-port", "0");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("kemu dns: --token-file /nonexistent/t: ENOENT");
  });
});

describe("kemu dns against a control plane", () => {
  let c: TestCluster;
  let dir: string;

  beforeAll(async () => {
    c = await startTestCluster();
    dir = tempDir("kemu-dns-cli-");
    writeFileSync(join(dir, "token"), `${c.server.token}\n`);
    writeFileSync(join(dir, "ca.crt"), c.server.caPem);
  });
  afterAll(async () => {
    await c?.close();
  });

  it("serves until SIGTERM, then exits 0", async () => {
    const child = spawn(KEMU, [
      "dns",
      "--api",
      c.server.url,
      "--token-file",
      join(dir, "token"),
      "--ca-file",
      join(dir, "ca.crt"),
      "--listen",
      "127.0.0.1:0",
      "--health-port",
      "0",
      "--ready-port",
      "0",
    ]);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    try {
      const deadline = Date.now() + 15_000;
      while (!out.includes("synced with the API") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(out).toMatch(
        /kemu dns: zone cluster\.local on 127\.0\.0\.1:\d+ \(udp, tcp\); other names refused/,
      );
      const port = /on 127\.0\.0\.1:(\d+)/.exec(out)![1];
      const { stdout } = await run("/usr/bin/dig", [
        "@127.0.0.1",
        "-p",
        port,
        "+short",
        "kubernetes.default.svc.cluster.local",
      ]);
      expect(stdout.trim()).toBe("10.96.0.1");
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });
});
