// The agent's side of kemu-exec (agent/kemu-exec.c): commands go to that small helper process as
// framed argv/env/stdin and come back as exit status and output, so the agent's ~100 MB process is
// never forked and its event loop never waits for a child to exec. `run` (exec.ts) uses it once
// the agent calls useExecHelper; a helper that dies fails its pending commands, and later ones are
// spawned directly again.

import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";

export interface HelperResult {
  /** Exit code (>= 0), -N when killed by signal N, -1000 - errno when it could not be started. */
  status: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface HelperCommand {
  argv: string[];
  env: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs: number;
}

const NO_INPUT = 0xffffffff;
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** What a negative status means, in Node's words ("spawn ip ENOENT", "killed by SIGTERM"). */
export function describeStatus(argv: string[], r: HelperResult): string {
  if (r.status <= -1000)
    return `spawn ${argv[0]} ${ERRNO_NAMES.get(-1000 - r.status) ?? `errno ${-1000 - r.status}`}`;
  if (r.status < 0) {
    const sig = SIGNAL_NAMES.get(-r.status) ?? `signal ${-r.status}`;
    return `Command failed: ${argv.join(" ")} (killed by ${sig}${r.timedOut ? " after its timeout" : ""})`;
  }
  return `Command failed: ${argv.join(" ")}`;
}

/** Strings as the helper reads them: each NUL-terminated, none holding a NUL itself. */
function strings(list: string[]): Buffer {
  for (const s of list) {
    if (s.includes("\0"))
      throw new Error(`a command's argument or environment holds a NUL byte: ${JSON.stringify(s)}`);
  }
  return Buffer.from(list.map((s) => `${s}\0`).join(""));
}

/** An environment encoded once (the agent's own is sent with almost every command). */
export interface EnvBlock {
  count: number;
  bytes: Buffer;
}

export function encodeEnv(env: NodeJS.ProcessEnv): EnvBlock {
  const list = Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return { count: list.length, bytes: strings(list) };
}

/** Request flag: start detached (own session, output appended to a file, no wait for the end). */
const DETACH = 1;

/** One request frame (see kemu-exec.c). */
export function encodeRequest(
  id: number,
  cmd: HelperCommand,
  env: EnvBlock = encodeEnv(cmd.env),
  logFile?: string,
): Buffer {
  const argv = strings(cmd.argv);
  const log = logFile === undefined ? undefined : strings([logFile]);
  const input = cmd.input === undefined ? undefined : Buffer.from(cmd.input);
  const head = Buffer.alloc(28);
  const rest = argv.length + env.bytes.length + (log?.length ?? 0) + (input?.length ?? 0);
  head.writeUInt32LE(24 + rest, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt32LE(Math.max(0, Math.min(Math.round(cmd.timeoutMs), 0xfffffffe)), 8);
  head.writeUInt32LE(cmd.argv.length, 12);
  head.writeUInt32LE(env.count, 16);
  head.writeUInt32LE(input ? input.length : NO_INPUT, 20);
  head.writeUInt32LE(log ? DETACH : 0, 24);
  return Buffer.concat([head, argv, env.bytes, ...(log ? [log] : []), ...(input ? [input] : [])]);
}

/** Reply frames out of a byte stream that may split them anywhere. */
export class ReplyDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { id: number; result: HelperResult }[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: { id: number; result: HelperResult }[] = [];
    while (this.pending.length >= 4) {
      const len = this.pending.readUInt32LE(0);
      if (this.pending.length < 4 + len) break;
      const f = this.pending.subarray(4, 4 + len);
      const outLen = f.readUInt32LE(12);
      const errLen = f.readUInt32LE(16);
      out.push({
        id: f.readUInt32LE(0),
        result: {
          status: f.readInt32LE(4),
          timedOut: f.readUInt32LE(8) !== 0,
          stdout: f.toString("utf8", 20, 20 + outLen),
          stderr: f.toString("utf8", 20 + outLen, 20 + outLen + errLen),
        },
      });
      this.pending = this.pending.subarray(4 + len);
    }
    return out;
  }
}

export class ExecHelper {
  private child?: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: HelperResult) => void; reject: (e: Error) => void }
  >();
  private failure?: Error;
  private closed = false;
  /** process.env, encoded: the agent does not change its environment once it runs. */
  private readonly ownEnv = encodeEnv(process.env);

  /** Starts `path` (the built kemu-exec); `onExit` hears when it ends unasked. */
  constructor(path: string, onExit: (e: Error) => void = () => {}) {
    const child = spawn(path, [], { stdio: ["pipe", "pipe", "inherit"] });
    this.child = child;
    const decoder = new ReplyDecoder();
    child.stdout!.on("data", (chunk: Buffer) => {
      for (const { id, result } of decoder.push(chunk)) {
        const p = this.pending.get(id);
        this.pending.delete(id);
        if (this.pending.size === 0) this.hold(false);
        p?.resolve(result);
      }
    });
    child.stdin!.on("error", () => {}); // reported by "exit" below
    const fail = (e: Error) => {
      if (this.failure) return;
      this.failure = e;
      this.child = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      if (!this.closed) onExit(e);
    };
    child.on("error", (e) => fail(new Error(`kemu-exec (${path}): ${e.message}`)));
    child.on("exit", (code, sig) => fail(new Error(`kemu-exec (${path}) ended (${sig ?? `exit ${code}`})`)));
    this.hold(false);
  }

  /** Keeps the event loop alive while commands are pending, and only then (an idle helper must not keep a finished agent from exiting). */
  private hold(on: boolean): void {
    const child = this.child;
    if (!child) return;
    for (const h of [child, child.stdout, child.stdin] as unknown as {
      ref?: () => void;
      unref?: () => void;
    }[]) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  /** Whether commands can still go to the helper. */
  get alive(): boolean {
    return this.child !== undefined;
  }

  run(cmd: HelperCommand): Promise<HelperResult> {
    return this.send(cmd);
  }

  /**
   * Starts a command detached, in its own session with stdin from /dev/null and its output
   * appended to `logFile`, cwd "/", and resolves with its pid once it runs (the helper reaps it
   * when it ends; nothing waits for that).
   */
  async start(argv: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<number> {
    const r = await this.send({ argv, env, timeoutMs: 0 }, logFile);
    if (r.status <= 0) throw new Error(`could not start ${argv.join(" ")}: ${describeStatus(argv, r)}`);
    return r.status;
  }

  private send(cmd: HelperCommand, logFile?: string): Promise<HelperResult> {
    const child = this.child;
    if (!child) return Promise.reject(this.failure ?? new Error("kemu-exec is not running"));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    const frame = encodeRequest(id, cmd, cmd.env === process.env ? this.ownEnv : undefined, logFile);
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.hold(true);
      this.pending.set(id, { resolve, reject });
      child.stdin!.write(frame);
    });
  }

  /** Ends the helper: its stdin closes, and it exits. */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
  }
}
