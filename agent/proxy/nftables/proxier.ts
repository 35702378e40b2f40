// kube-proxy's nftables mode: renders the proxy model (rules.ts) and applies it with one
// `nft -f -` per sync, in the node's network namespace. As upstream's proxier does, a sync is one
// atomic transaction that flushes and refills the base chains, sets and maps and every service
// whose rules changed (a first sync, or one after a failure, writes every service), so packets
// see the old rules or the new ones and established connections keep their conntrack NAT
// entries; affinity sets keep their entries across syncs. A sync whose rendered text equals the
// last applied one writes nothing, unless the table went missing or the last full write is older
// than `fullSyncIntervalMs`. Chains no longer used are flushed at once and deleted by a later sync
// at least a second on (kernels before 6.2 keep them referenced a moment).

import { ExecError, run } from "../../exec.ts";
import type { ProxyBackend, ProxyState } from "../model.ts";
import {
  composeTransaction,
  deleteChainsTransaction,
  renderRuleset,
  serviceRulesKey,
  TABLE,
} from "./rules.ts";

export interface NftablesProxierOptions {
  /** Run nft inside this named network namespace (tests); the agent already runs in its node's. */
  netns?: string;
  /** The nft command (default "nft"). */
  nft?: string;
  /** Write every service again at least this often, repairing rules changed behind our back (default 10 min; 0 = never). */
  fullSyncIntervalMs?: number;
  log?: (line: string) => void;
}

/** nft or the kernel's nf_tables support is missing: nothing can be programmed. */
export class NftablesUnavailableError extends Error {}

const STALE_CHAIN_DELAY_MS = 1000;
const NEEDED_KERNEL =
  "CONFIG_NF_TABLES, CONFIG_NF_TABLES_IPV4, CONFIG_NFT_NAT, CONFIG_NFT_MASQ, CONFIG_NFT_NUMGEN, " +
  "CONFIG_NFT_FIB_IPV4, CONFIG_NFT_REJECT, CONFIG_NFT_CT";

/** Every kind of expression and object a sync uses, checked with `nft -c` (nothing is applied). */
const PROBE = `add table ip ${TABLE}
add chain ip ${TABLE} probe-nat { type nat hook prerouting priority -100 ; }
add chain ip ${TABLE} probe-filter { type filter hook input priority -110 ; }
add chain ip ${TABLE} probe-target
add set ip ${TABLE} probe-set { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }
add map ip ${TABLE} probe-map { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip ${TABLE} probe-nat ip daddr . meta l4proto . th dport vmap @probe-map
add rule ip ${TABLE} probe-nat fib daddr type local meta l4proto . th dport vmap { tcp . 1 : goto probe-target }
add rule ip ${TABLE} probe-nat numgen random mod 2 vmap { 0 : goto probe-target , 1 : goto probe-target }
add rule ip ${TABLE} probe-nat ip saddr @probe-set update @probe-set { ip saddr } mark set mark or 0x4000
add rule ip ${TABLE} probe-nat meta l4proto tcp dnat to 10.0.0.1:80
add rule ip ${TABLE} probe-filter ct state new reject
add chain ip ${TABLE} probe-post { type nat hook postrouting priority 100 ; }
add rule ip ${TABLE} probe-post mark and 0x4000 == 0 return
add rule ip ${TABLE} probe-post masquerade fully-random
`;

interface Inventory {
  serviceChains: Set<string>;
  affinitySets: Map<string, number>;
}

export class NftablesProxier implements ProxyBackend {
  readonly mode = "nftables" as const;
  private readonly netns?: string;
  private readonly nft: string;
  private readonly fullSyncIntervalMs: number;
  private readonly log: (line: string) => void;
  private checked?: Promise<void>;
  private probed?: Promise<void>;
  /** What the kernel holds; undefined = unknown, read it before the next sync. */
  private inventory?: Inventory;
  /** The last applied state; undefined = write every service next time. */
  private applied?: { text: string; services: Map<string, string>; fullAt: number };
  /** Chains flushed as no longer used → when. */
  private readonly stale = new Map<string, number>();
  private baseChainsReset = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: NftablesProxierOptions = {}) {
    this.netns = opts.netns;
    this.nft = opts.nft ?? "nft";
    this.fullSyncIntervalMs = opts.fullSyncIntervalMs ?? 10 * 60_000;
    this.log = opts.log ?? (() => {});
  }

  sync(state: ProxyState): Promise<{ applied: boolean; bytes: number }> {
    return this.serialized(() => this.syncNow(state));
  }

  /** Deletes the table, and with it every chain, set and map this mode made. */
  cleanup(): Promise<void> {
    return this.serialized(async () => {
      try {
        await this.checkNft();
      } catch (e) {
        if (e instanceof NftablesUnavailableError) return; // nothing of ours can exist
        throw e;
      }
      // add + delete: no error when the table is not there.
      await this.nftFile(`add table ip ${TABLE}\ndelete table ip ${TABLE}\n`);
      this.inventory = { serviceChains: new Set(), affinitySets: new Map() };
      this.applied = undefined;
      this.stale.clear();
    });
  }

  private serialized<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => {});
    return next;
  }

  private async syncNow(state: ProxyState): Promise<{ applied: boolean; bytes: number }> {
    await this.checkNft();
    this.probed ??= this.probeKernel().catch((e) => {
      this.probed = undefined;
      throw e;
    });
    await this.probed;
    const ruleset = renderRuleset(state);
    const now = Date.now();

    const exists = await this.tableExists();
    if (!exists) {
      this.inventory = { serviceChains: new Set(), affinitySets: new Map() };
      this.applied = undefined;
      this.stale.clear();
    }
    this.inventory ??= await this.readInventory();
    await this.deleteStaleChains(new Set(ruleset.serviceChains), now);

    const full =
      !this.applied || (this.fullSyncIntervalMs > 0 && now - this.applied.fullAt >= this.fullSyncIntervalMs);
    if (!full && this.applied?.text === ruleset.text) return { applied: false, bytes: 0 };

    const tx = composeTransaction(ruleset, {
      serviceChains: this.inventory.serviceChains,
      affinitySets: this.inventory.affinitySets,
      ...(full ? {} : { appliedServices: this.applied?.services }),
      resetBaseChains: exists && !this.baseChainsReset,
    });
    try {
      await this.nftFile(tx, 120_000);
    } catch (e) {
      // Rejected: nothing was applied. Read the kernel again and write everything next time.
      this.inventory = undefined;
      this.applied = undefined;
      throw this.explain(e, "the sync transaction");
    }
    this.baseChainsReset = true;
    const wanted = new Set(ruleset.serviceChains);
    for (const chain of this.inventory.serviceChains) {
      if (!wanted.has(chain) && !this.stale.has(chain)) this.stale.set(chain, now);
    }
    this.inventory = {
      serviceChains: new Set([...wanted, ...this.stale.keys()]),
      affinitySets: new Map(ruleset.affinitySets),
    };
    this.applied = {
      text: ruleset.text,
      services: new Map(ruleset.services.map((s) => [s.name, serviceRulesKey(s)])),
      fullAt: full ? now : (this.applied?.fullAt ?? now),
    };
    return { applied: true, bytes: Buffer.byteLength(tx) };
  }

  /** Deletes chains flushed at least a second ago that the new state does not use again. */
  private async deleteStaleChains(wanted: Set<string>, now: number): Promise<void> {
    for (const chain of [...this.stale.keys()]) if (wanted.has(chain)) this.stale.delete(chain);
    const due = [...this.stale].filter(([, at]) => now - at >= STALE_CHAIN_DELAY_MS).map(([c]) => c);
    if (!due.length) return;
    for (const chain of due) this.stale.delete(chain);
    try {
      await this.nftFile(deleteChainsTransaction(due.sort()));
      for (const chain of due) this.inventory?.serviceChains.delete(chain);
    } catch (e) {
      // Read the kernel again: chains still there are flushed and retried by later syncs.
      this.log(`deleting ${due.length} stale chains: ${(e as Error).message}`);
      this.inventory = await this.readInventory();
    }
  }

  private nftFile(text: string, timeoutMs = 30_000) {
    return run([this.nft, "-f", "-"], { netns: this.netns, input: text, timeoutMs });
  }

  /** nft is installed (1.0.1 or later, as upstream requires) and the kernel has nf_tables. */
  private checkNft(): Promise<void> {
    this.checked ??= (async () => {
      let version: string;
      try {
        version = (await run([this.nft, "--version"], { netns: this.netns })).stdout.trim();
      } catch (e) {
        const msg = (e as Error).message;
        if (/ENOENT|No such file or directory|not found/.test(msg)) {
          throw new NftablesUnavailableError(
            `kube-proxy's nftables mode needs the nft command (nftables 1.0.1 or later; Debian: apt-get install nftables), but "${this.nft}" cannot be run: ${msg}`,
          );
        }
        throw e;
      }
      const m = /v(\d+)\.(\d+)\.(\d+)/.exec(version);
      if (m && Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3]) < 1_000_001) {
        throw new NftablesUnavailableError(
          `kube-proxy's nftables mode needs nft 1.0.1 or later (as upstream does), found "${version}"`,
        );
      }
      try {
        await run([this.nft, "list", "tables"], { netns: this.netns });
      } catch (e) {
        throw new NftablesUnavailableError(
          `kube-proxy's nftables mode needs nf_tables in the kernel (CONFIG_NF_TABLES, module nf_tables): "${this.nft} list tables" failed: ${(e as Error).message}`,
        );
      }
    })().catch((e) => {
      this.checked = undefined;
      throw e;
    });
    return this.checked;
  }

  /** Every expression a sync uses is known to the kernel (`nft -c`: checked, nothing applied). */
  private async probeKernel(): Promise<void> {
    try {
      await run([this.nft, "-c", "-f", "-"], { netns: this.netns, input: PROBE });
    } catch (e) {
      throw new NftablesUnavailableError(
        `the kernel lacks nftables features kube-proxy's nftables mode uses (${NEEDED_KERNEL}): ${(e as Error).message}`,
      );
    }
  }

  private explain(e: unknown, what: string): Error {
    if (!(e instanceof ExecError)) return e as Error;
    const stderr = e.stderr.trim();
    const hint = /Operation not supported|Protocol not supported/.test(stderr)
      ? ` (kernel features needed: ${NEEDED_KERNEL})`
      : "";
    const err = new Error(
      `nft rejected ${what}, nothing was applied${hint}: ${stderr.slice(0, 4000) || e.message}`,
    );
    (err as Error & { cause?: unknown }).cause = e;
    return err;
  }

  /** Whether our table is there (listing one small set: `nft list tables` reads the whole ruleset). */
  private async tableExists(): Promise<boolean> {
    const r = await run([this.nft, "list", "set", "ip", TABLE, "nodeport-ips"], {
      netns: this.netns,
      allowFail: true,
    });
    return r.code === 0;
  }

  /** The per-service chains and affinity sets an earlier run left in the table. */
  private async readInventory(): Promise<Inventory> {
    const inv: Inventory = { serviceChains: new Set(), affinitySets: new Map() };
    const list = async (what: string) => {
      const r = await run([this.nft, "-j", "list", what, "ip"], { netns: this.netns, timeoutMs: 60_000 });
      return ((JSON.parse(r.stdout || "{}").nftables ?? []) as Record<string, any>[]).map(
        (o) => o[what.slice(0, -1)],
      );
    };
    for (const c of await list("chains")) {
      if (c?.table === TABLE && typeof c.name === "string" && c.name.includes("/"))
        inv.serviceChains.add(c.name);
    }
    for (const s of await list("sets")) {
      if (s?.table === TABLE && typeof s.name === "string" && s.name.startsWith("affinity-")) {
        inv.affinitySets.set(s.name, Number(s.timeout ?? 0));
      }
    }
    return inv;
  }
}
