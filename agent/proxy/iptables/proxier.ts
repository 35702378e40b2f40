// The iptables proxy mode: applies what rules.ts renders, as upstream's syncProxyRules does, in
// ONE `iptables-restore --noflush` per sync for the filter and nat tables. Every chain
// we own is declared in the input (which flushes it), so other programs' rules survive; stale
// per-service chains are flushed and deleted (-X) in the same input.
//
// A full sync (the first, the first after a failure, and every verifyIntervalMs) reads
// `iptables-save` once: it finds stale chains left by an earlier process and the jumps from the
// built-in chains (PREROUTING -> KUBE-SERVICES, ...) that are missing, which the same restore
// inserts (`-I`, as upstream's EnsureRule(Prepend) does). Between full syncs the stale chains
// come from the previous rendering and a sync whose text is unchanged writes nothing. A full
// sync that finds everything intact still writes nothing; one that finds rules removed behind our
// back rewrites them (upstream notices that with its KUBE-PROXY-CANARY chains).
//
// After a successful write, UDP conntrack entries made stale by removed endpoints are deleted
// with `conntrack -D` (conntrack.ts), as upstream does.

import { ExecError, run } from "../../exec.ts";
import type { ProxyBackend, ProxyState } from "../model.ts";
import { staleConntrackCommands } from "./conntrack.ts";
import {
  cleanupInput,
  missingJumps,
  parseIptablesSave,
  type RenderedRules,
  type RenderOptions,
  renderRules,
  restoreInput,
  type SavedTable,
  staleServiceChains,
  withNftCacheWorkaround,
} from "./rules.ts";

export interface IptablesProxierOptions extends RenderOptions {
  /** Run every command inside this named network namespace (unset: the agent's own). */
  netns?: string;
  /** How often an unchanged sync still re-reads iptables-save to repair our rules (default 30 s). */
  verifyIntervalMs?: number;
  /** Non-fatal problems (a failed conntrack flush). Default: console.warn. */
  log?: (message: string) => void;
}

export interface SyncResult {
  applied: boolean;
  bytes: number;
}

export class IptablesProxier implements ProxyBackend {
  readonly mode = "iptables" as const;
  private readonly opts: IptablesProxierOptions;
  private readonly log: (message: string) => void;
  /** What the kernel holds since the last successful write (unset: unknown, do a full sync). */
  private applied?: RenderedRules;
  private lastState?: ProxyState;
  private nftBackend?: boolean;
  private verifiedAt = 0;
  /** Syncs and cleanups run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: IptablesProxierOptions = {}) {
    this.opts = opts;
    const log = opts.log ?? ((m: string) => console.warn(m));
    this.log = (m) => log(`kemu agent: proxy (iptables): ${m}`);
  }

  sync(state: ProxyState): Promise<SyncResult> {
    return this.serialize(() => this.syncNow(state));
  }

  cleanup(): Promise<void> {
    return this.serialize(() => this.cleanupNow());
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private async syncNow(state: ProxyState): Promise<SyncResult> {
    const rendered = renderRules(state, this.opts);
    const now = Date.now();
    const full = !this.applied || now - this.verifiedAt >= (this.opts.verifyIntervalMs ?? 30_000);
    if (!full && rendered.text === this.applied?.text) return { applied: false, bytes: 0 };

    let input: string;
    if (full) {
      const saved = await this.save();
      const nat = saved.get("nat");
      const jumps = missingJumps(saved, rendered.jumps);
      const stale = staleServiceChains(nat?.chains ?? [], rendered);
      if (
        rendered.text === this.applied?.text &&
        jumps.length === 0 &&
        stale.length === 0 &&
        intact(saved, rendered)
      ) {
        this.verifiedAt = now;
        return { applied: false, bytes: 0 };
      }
      input = restoreInput(rendered, { staleChains: stale, missingJumps: jumps });
    } else {
      const stale = staleServiceChains(this.applied?.serviceChains ?? [], rendered);
      input = restoreInput(rendered, { staleChains: stale });
    }

    try {
      await this.restore(input);
    } catch (e) {
      // The kernel's state is unknown now: the next sync re-reads it.
      this.applied = undefined;
      throw e;
    }
    this.applied = rendered;
    if (full) this.verifiedAt = now;
    const prev = this.lastState;
    this.lastState = state;
    await this.flushConntrack(prev, state);
    return { applied: true, bytes: Buffer.byteLength(input) };
  }

  private async cleanupNow(): Promise<void> {
    const input = cleanupInput(await this.save());
    if (input) await this.restore(input);
    this.applied = undefined;
    this.lastState = undefined;
  }

  /** `iptables-save` of the filter and nat tables, parsed. */
  private async save(): Promise<Map<string, SavedTable>> {
    const tables = new Map<string, SavedTable>();
    for (const table of ["filter", "nat"]) {
      const { stdout } = await this.iptables(["iptables-save", "-t", table]);
      const t = parseIptablesSave(stdout).get(table);
      if (t) tables.set(table, t);
    }
    return tables;
  }

  /**
   * One `iptables-restore --noflush` (no --counters: every chain we write starts from zero anyway).
   * Its stdout is the listing withNftCacheWorkaround asks for, ignored.
   */
  private async restore(input: string): Promise<void> {
    this.nftBackend ??= await this.detectNft();
    const text = this.nftBackend ? withNftCacheWorkaround(input) : input;
    await this.iptables(["iptables-restore", "--noflush", "-w", "5"], text);
  }

  /** Whether `iptables-restore` is iptables-nft ("v1.8.9 (nf_tables)") rather than legacy. */
  private async detectNft(): Promise<boolean> {
    const { stdout, stderr } = await this.iptables(["iptables-restore", "--version"]);
    return /nf_tables/.test(stdout + stderr);
  }

  /** Runs an iptables tool, turning "not installed" and "no nat table" into errors that say so. */
  private async iptables(argv: string[], input?: string) {
    try {
      return await run(argv, { netns: this.opts.netns, input, timeoutMs: 120_000 });
    } catch (e) {
      throw explain(argv[0], e);
    }
  }

  private async flushConntrack(prev: ProxyState | undefined, next: ProxyState): Promise<void> {
    for (const args of staleConntrackCommands(prev, next)) {
      const r = await run(["conntrack", ...args], { netns: this.opts.netns, allowFail: true }).catch(
        (e: Error) => ({ code: -1, stdout: "", stderr: e.message }),
      );
      // Exit 1 with "0 flow entries have been deleted" just means there was nothing to delete.
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) {
        this.log(`conntrack ${args.join(" ")} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      }
    }
  }
}

/** Whether every chain and rule of the rendering is still in the kernel (counted, not compared). */
function intact(saved: Map<string, SavedTable>, rendered: RenderedRules): boolean {
  for (const [name, t] of [
    ["filter", rendered.filter],
    ["nat", rendered.nat],
  ] as const) {
    const s = saved.get(name);
    if (!s) return false;
    const chains = t.chains.map((l) => l.slice(1).split(" ")[0]);
    if (!chains.every((c) => s.chains.has(c))) return false;
    const ours = new Set(chains);
    const count = s.rules.filter((r) => ours.has(r.split(" ")[1])).length;
    if (count !== t.rules.length) return false;
  }
  return true;
}

const NAT_MISSING =
  /table does not exist|can't initialize iptables table|Table does not exist|nat.*(not supported|No such file)/i;

function explain(tool: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const stderr = e instanceof ExecError ? e.stderr : msg;
  if (/ENOENT|No such file or directory|not found/.test(stderr) && !/table/i.test(stderr)) {
    return new Error(
      `iptables proxy mode needs ${tool} (Debian package "iptables") and it is not available: ${msg}`,
    );
  }
  if (NAT_MISSING.test(stderr)) {
    return new Error(
      `iptables proxy mode needs the kernel's nat table (modules nf_nat and iptable_nat or nft_chain_nat), which is unavailable: ${msg}`,
    );
  }
  return e instanceof Error ? e : new Error(msg);
}
