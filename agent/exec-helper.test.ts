// kemu-exec, built from agent/kemu-exec.c with gcc into a temp dir, driven through ExecHelper and
// through run() as the agent uses it.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/harness.ts";
import { ExecError, run, useExecHelper } from "./exec.ts";
import { describeStatus, ExecHelper, encodeRequest, ReplyDecoder } from "./exec-helper.ts";

const SOURCE = new URL("./kemu-exec.c", import.meta.url).pathname;
let dir: string;
let binary: string;
let helper: ExecHelper;
const exits: Error[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kemu-exec-test-"));
  binary = join(dir, "kemu-exec");
  execFileSync("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, SOURCE]);
  helper = new ExecHelper(binary, (e) => exits.push(e));
});

afterAll(() => {
  useExecHelper(undefined);
  helper?.close();
  rmSync(dir, { recursive: true, force: true });
});

const cmd = (argv: string[], more: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) =>
  helper.run({ argv, env: more.env ?? process.env, input: more.input, timeoutMs: more.timeoutMs ?? 10_000 });

describe("kemu-exec", () => {
  it("returns a command's exit code, stdout and stderr", async () => {
    const r = await cmd(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toEqual({ status: 3, timedOut: false, stdout: "out\n", stderr: "err\n" });
  });

  it("passes each argument as it is, with no shell in between", async () => {
    const tricky = "a; echo injected $(id) 'q' \"d\" *";
    const r = await cmd(["printf", "%s|", tricky, ""]);
    expect(r.stdout).toBe(`${tricky}||`);
  });

  it("feeds stdin and returns large outputs whole", async () => {
    const input = "0123456789abcdef\n".repeat(400_000); // 6.8 MB
    const r = await cmd(["cat"], { input });
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBe(input.length);
    expect(r.stdout === input).toBe(true);
    // No input given: stdin is /dev/null, so a reader sees end of file at once.
    expect((await cmd(["cat"])).stdout).toBe("");
  });

  it("gives the command exactly the environment asked for, PATH lookup included", async () => {
    const r = await cmd(["sh", "-c", 'printf "%s|%s" "$ONLY" "$HOME"'], {
      env: { ONLY: "this one", PATH: "/usr/bin:/bin" },
    });
    expect(r.stdout).toBe("this one|");
    const missing = await cmd(["ls"], { env: { PATH: dir } });
    expect(missing.status).toBe(-1000 - 2); // ENOENT: ls is not on that PATH
    expect(describeStatus(["ls"], missing)).toBe("spawn ls ENOENT");
  });

  it("reports a program that cannot be started as Node does", async () => {
    const r = await cmd([join(dir, "no-such-program")]);
    expect(describeStatus([join(dir, "no-such-program")], r)).toBe(
      `spawn ${join(dir, "no-such-program")} ENOENT`,
    );
  });

  it("sends SIGTERM to a command past its timeout", async () => {
    const t0 = Date.now();
    const r = await cmd(["sleep", "10"], { timeoutMs: 150 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r).toMatchObject({ status: -15, timedOut: true });
    expect(describeStatus(["sleep", "10"], r)).toBe(
      "Command failed: sleep 10 (killed by SIGTERM after its timeout)",
    );
  });

  it("runs many commands at once and answers each its own", async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => cmd(["sh", "-c", `sleep 0.0$((${i} % 5)); echo ${i}`])),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 40 }, (_, i) => `${i}\n`));
  });

  it("gives commands default signal handling (SIGPIPE ends a writer to a closed pipe)", async () => {
    // With SIGPIPE ignored, as it is in the helper, yes would go on to report "Broken pipe".
    const r = await cmd(["sh", "-c", "yes | head -c 10 >/dev/null"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("detached starts", () => {
  it("starts a process in its own session with its output in a file, and answers at once", async () => {
    const log = join(dir, "detached.log");
    const t0 = Date.now();
    const pid = await helper.start(
      ["sh", "-c", 'echo "cwd=$(pwd) $V"; exec sleep 30'],
      { V: "v", PATH: "/usr/bin:/bin" },
      log,
    );
    try {
      expect(Date.now() - t0).toBeLessThan(2000);
      const stat = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      expect(Number(stat()[3])).toBe(pid); // session id: its own session
      for (let i = 0; i < 100 && !readFileSync(log, "utf8"); i++) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(log, "utf8")).toBe("cwd=/ v\n");
    } finally {
      process.kill(pid, "SIGKILL");
    }
    // The helper reaps it: not even a zombie is left behind.
    await eventually(() => !existsSync(`/proc/${pid}`), 2000);
    await expect(helper.start([join(dir, "nothing")], {}, log)).rejects.toThrow(/ENOENT/);
  });
});

describe("run() through kemu-exec", () => {
  it("keeps run()'s results and errors", async () => {
    useExecHelper(helper);
    try {
      expect(await run(["sh", "-c", "echo hi"])).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
      const failed = await run(["sh", "-c", "echo no >&2; exit 4"], { allowFail: true });
      expect(failed).toEqual({ code: 4, stdout: "", stderr: "no\n" });
      const err = await run(["sh", "-c", "echo bad >&2; exit 2"]).catch((e) => e);
      expect(err).toBeInstanceOf(ExecError);
      expect(err).toMatchObject({ code: 2, stderr: "bad\n" });
      const enoent = await run([join(dir, "nothing")]).catch((e) => e);
      expect(enoent.message).toMatch(/ENOENT/);
      expect((await run(["cat"], { input: "in" })).stdout).toBe("in");
    } finally {
      useExecHelper(undefined);
    }
  });
});

describe("the event loop", () => {
  it("stays alive while a command is pending and lets an idle process exit", () => {
    // A script whose only pending work is one command through the helper: it must see the answer
    // (an unref'd helper let Node end with "unsettled top-level await"), then exit by itself.
    const script = [
      `import { ExecHelper } from ${JSON.stringify(new URL("./exec-helper.ts", import.meta.url).pathname)};`,
      `const h = new ExecHelper(${JSON.stringify(binary)});`,
      `const r = await h.run({ argv: ["sh", "-c", "sleep 0.2; echo awaited"], env: process.env, timeoutMs: 5000 });`,
      "console.log(r.stdout.trim());",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(out.trim()).toBe("awaited");
  });
});

describe("frames", () => {
  it("encodes a request the helper can parse and decodes replies split anywhere", () => {
    const frame = encodeRequest(7, {
      argv: ["a", "b"],
      env: { X: "1", Y: undefined },
      input: "in",
      timeoutMs: 5,
    });
    expect(frame.readUInt32LE(0)).toBe(frame.length - 4);
    expect(frame.readUInt32LE(4)).toBe(7);
    expect(frame.readUInt32LE(12)).toBe(2); // argc
    expect(frame.readUInt32LE(16)).toBe(1); // envc: Y has no value
    expect(frame.readUInt32LE(24)).toBe(0); // flags: not detached
    expect(frame.subarray(28).toString()).toBe("a\0b\0X=1\0in");
    const detached = encodeRequest(8, { argv: ["a"], env: {}, timeoutMs: 0 }, undefined, "/log");
    expect(detached.readUInt32LE(24)).toBe(1);
    expect(detached.subarray(28).toString()).toBe("a\0/log\0");
    expect(() => encodeRequest(1, { argv: ["a\0b"], env: {}, timeoutMs: 0 })).toThrow(/NUL/);

    const reply = (id: number, out: string) => {
      const b = Buffer.alloc(24 + out.length);
      b.writeUInt32LE(20 + out.length, 0);
      b.writeUInt32LE(id, 4);
      b.writeInt32LE(-9, 8);
      b.writeUInt32LE(0, 12);
      b.writeUInt32LE(out.length, 16);
      b.writeUInt32LE(0, 20);
      b.write(out, 24);
      return b;
    };
    const both = Buffer.concat([reply(1, "one"), reply(2, "two")]);
    const d = new ReplyDecoder();
    const got = [
      ...d.push(both.subarray(0, 5)),
      ...d.push(both.subarray(5, 30)),
      ...d.push(both.subarray(30)),
    ];
    expect(got).toEqual([
      { id: 1, result: { status: -9, timedOut: false, stdout: "one", stderr: "" } },
      { id: 2, result: { status: -9, timedOut: false, stdout: "two", stderr: "" } },
    ]);
  });
});

describe("a helper that ends", () => {
  it("fails what it had pending and tells its owner", async () => {
    const h = new ExecHelper(binary, (e) => exits.push(e));
    const pending = h.run({ argv: ["sleep", "10"], env: process.env, timeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 100));
    const pid = (h as unknown as { child: { pid: number } }).child.pid;
    // Its command (sleep) outlives it: ended by pid below, so nothing is left.
    const orphans = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    expect(orphans).toHaveLength(1);
    process.kill(pid, "SIGKILL");
    try {
      await expect(pending).rejects.toThrow(/kemu-exec .* ended \(SIGKILL\)/);
      expect(h.alive).toBe(false);
      expect(exits.at(-1)?.message).toMatch(/ended/);
      await expect(h.run({ argv: ["true"], env: {}, timeoutMs: 0 })).rejects.toThrow(/ended/);
    } finally {
      for (const o of orphans) process.kill(o, "SIGKILL");
    }
  });
});
