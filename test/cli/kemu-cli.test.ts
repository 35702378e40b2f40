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

  it.each(["up", "down", "status", "restart", "agent", "forward", "node", "api", "dns"])(
    "has --help for %s",
    async (sub) => {
      const r = await kemu(sub, "--help");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage: kemu");
    },
  );

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
    [["up", "--nodes", "0"], "--nodes must be an integer between 1 and 50"],
    [["up", "--nodes", "three"], "--nodes must be an integer"],
    [["up", "--overlay", "geneve"], '--overlay must be one of vxlan, host-gw, got "geneve"'],
    [["up", "--pod-cidr", "10.244.0.0/33"], "--pod-cidr"],
    [["up", "--pod-cidr", "172.30.0.0/16"], "overlaps the node underlay"],
    [
      ["up", "--pod-cidr", "10.244.0.0/23", "--nodes", "3"],
      "holds 2 /24 node ranges but 3 nodes need one each",
    ],
    [["up", "--node-cidr-mask-size", "31"], "--node-cidr-mask-size must be an integer between 16 and 30"],
    [["up", "--name", "Bad_Name"], "must be a DNS-1123 label"],
    [["up", "--name", "a-very-long-cluster-name-indeed"], "at most 20 are allowed"],
    [["up", "extra"], 'unexpected argument "extra"'],
    [["down", "--name", "-x"], "--name"],
    [["down", "--name", "No"], "must be a DNS-1123 label"],
    [["node", "exec"], "NODE is required"],
    [["node", "exec", "node-1"], "no command given"],
    [["node", "frob"], 'unknown command "frob"'],
    [["restart"], "name at least one component"],
    [["up", "--proxy-mode", "ipvs"], "--proxy-mode must be one of iptables, nftables"],
    [["up", "--lb-pool", "10.96.0.0/28"], "overlaps the service network"],
    [["up", "--dns-upstream", "resolver.example"], "--dns-upstream must be an IPv4 address"],
    [["agent", "--api", "https://x", "--proxy-mode", "userspace"], "--proxy-mode must be one of"],
    [["api", "--data-dir", "/tmp/x", "--dns-upstream", "1.2.3.4"], "need --cluster-dns"],
    [["agent", "--api", "https://x"], "--token-file is required"],
    [["forward", "--listen", "nowhere", "--to-unix", "/tmp/s"], "expected HOST:PORT"],
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
