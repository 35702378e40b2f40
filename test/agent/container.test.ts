// kemu-init on real namespaces: what a container sees (its hostname, the pod's /etc files, PID 1
// with its own /proc, the pod's network), how its ending is recorded, and that it dies with its shim.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useExecHelper } from "../../agent/exec.ts";
import { ExecHelper } from "../../agent/exec-helper.ts";
import { isAlive, readExitCode, signal, startContainer, targetPid } from "../../agent/runtime/process.ts";
import { eventually } from "../harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
// Both ways the agent starts shims: through its kemu-exec helper, and forked when it has none.
describe.each([
  { how: "through kemu-exec", helper: true },
  { how: "forked by the agent", helper: false },
])("containers started by kemu-init $how (needs root)", ({ helper }) => {
  const NETNS = `kemu-t-ctr-${Math.random().toString(36).slice(2, 7)}`;
  let dir: string;
  let init: string;
  let execHelper: ExecHelper | undefined;
  const shims: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kemu-ctr-"));
    execFileSync(join(ROOT, "agent/images/build.sh"), [join(dir, "bin")], { stdio: "ignore" });
    init = join(dir, "bin", "kemu-init");
    if (helper) {
      execHelper = new ExecHelper(join(dir, "bin", "kemu-exec"));
      useExecHelper(execHelper);
    }
    execFileSync("ip", ["netns", "add", NETNS]);
    execFileSync("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
    writeFileSync(join(dir, "hosts"), "127.0.0.1\tlocalhost\n10.9.9.9\tmy-pod\n");
    writeFileSync(join(dir, "resolv.conf"), "nameserver 10.96.0.10\n");
  });

  afterAll(() => {
    useExecHelper(undefined);
    execHelper?.close();
    for (const pid of shims) {
      signal(targetPid(pid), "SIGKILL");
      signal(pid, "SIGKILL");
    }
    try {
      execFileSync("ip", ["netns", "del", NETNS]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(
    name: string,
    argv: string[],
    env: Record<string, string> = { PATH: "/usr/bin:/bin" },
  ) {
    const pid = await startContainer({
      init,
      netns: NETNS,
      hostname: "my-pod",
      hostsFile: join(dir, "hosts"),
      resolvFile: join(dir, "resolv.conf"),
      argv,
      env,
      cwd: "/tmp",
      logFile: join(dir, `${name}.log`),
      exitFile: join(dir, `${name}.exit`),
    });
    shims.push(pid);
    return {
      pid,
      log: () => readFileSync(join(dir, `${name}.log`), "utf8"),
      exit: join(dir, `${name}.exit`),
    };
  }

  it("gives the container the pod's hostname, /etc files, network, its own PID 1 and environment", async () => {
    const c = await start(
      "look",
      [
        "sh",
        "-c",
        'echo "host=$(hostname) pid=$$ cwd=$(pwd) var=$GREETING"; cat /etc/hosts /etc/resolv.conf; ls /proc | grep -c "^[0-9]"; ip -o link show | cut -d: -f2',
      ],
      { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", GREETING: "hello world" },
    );
    await eventually(() => readExitCode(c.exit) !== undefined, 5000);
    expect(readExitCode(c.exit)).toBe(0);
    const out = c.log();
    expect(out).toContain("host=my-pod pid=1 cwd=/tmp var=hello world");
    expect(out).toContain("10.9.9.9\tmy-pod");
    expect(out).toContain("nameserver 10.96.0.10");
    const lines = out.trim().split("\n");
    expect(Number(lines.at(-2))).toBeLessThanOrEqual(4); // sh, its children: not the node's processes
    expect(lines.at(-1)?.trim()).toBe("lo"); // the pod's network namespace, not the node's
    // The node's own files are untouched.
    expect(readFileSync("/etc/hosts", "utf8")).not.toContain("my-pod");
  });

  it("records exit codes and signals, and reports a missing program as 127", async () => {
    const failing = await start("fail", ["sh", "-c", "exit 7"]);
    const missing = await start("missing", ["no-such-program"]);
    await eventually(
      () => readExitCode(failing.exit) !== undefined && readExitCode(missing.exit) !== undefined,
      5000,
    );
    expect(readExitCode(failing.exit)).toBe(7);
    expect(readExitCode(missing.exit)).toBe(127);
    expect(missing.log()).toContain("kemu-init: exec no-such-program: No such file or directory");

    const sleeper = await start("sleeper", ["sleep", "100"]);
    const target = await eventually(() => targetPid(sleeper.pid), 5000);
    signal(target, "SIGKILL");
    await eventually(() => readExitCode(sleeper.exit) !== undefined, 5000);
    expect(readExitCode(sleeper.exit)).toBe(137);
    expect(isAlive(sleeper.pid)).toBe(false);
  });

  it("ends the container when its shim is killed", async () => {
    const c = await start("orphan", ["sleep", "100"]);
    const target = await eventually(() => targetPid(c.pid), 5000);
    signal(c.pid, "SIGKILL");
    await eventually(() => !isAlive(target), 5000);
  });
});
