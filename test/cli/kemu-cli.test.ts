import { execFile, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../harness.ts";

const run = promisify(execFile);
const KEMU = new URL("../../bin/kemu", import.meta.url).pathname;

async function kemu(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(KEMU, args);
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("kemu command", () => {
  it("runs on the pinned Node 24 and lists its commands", async () => {
    const r = await kemu("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("api");
  });

  it("has --help for the api subcommand", async () => {
    const r = await kemu("api", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--data-dir");
  });

  it.each([
    [["api"], "--data-dir is required"],
    [["api", "--data-dir", "/tmp/x", "--port", "70000"], "--port must be an integer between 0 and 65535"],
    [["api", "--data-dir", "/tmp/x", "--bogus"], "Unknown option '--bogus'"],
    [["api", "--data-dir", "/tmp/x", "--cluster-cidr", "10.0.0.1/8"], "--cluster-cidr"],
    [["api", "--data-dir", "/tmp/x", "--node-monitor-grace-period", "soon"], "must be a duration"],
    [["nope"], 'unknown command "nope"'],
  ])("rejects bad input %j with a clear error", async (args, message) => {
    const r = await kemu(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it("serves the API in the foreground until SIGTERM", async () => {
    const dir = tempDir();
    const proc = spawn(KEMU, ["api", "--data-dir", dir, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        proc.stdout.on("data", (d) => {
          out += d;
          const m = /listening on (https:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        proc.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const kubeconfig = readFileSync(join(dir, "kubeconfig"), "utf8");
      expect(kubeconfig).toContain(url);
      expect(kubeconfig).toContain("current-context: kemu");
      const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
      proc.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
