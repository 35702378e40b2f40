// A CNI runtime for one network configuration list, the way containerd (go-cni) and libcni drive
// plugins (SPEC.md 1.0.0): every plugin of the list runs in order for ADD and CHECK and in reverse
// for DEL, each with its config on stdin (plus cniVersion, name, prevResult and the runtimeConfig
// of the capabilities it declares) and CNI_* in its environment. Before the pod network, loopback
// is brought up as its own network "cni-loopback", as containerd does. Results are cached under
// cacheDir in libcni's format (results/<network>-<containerId>-<ifName>) so DEL and CHECK get the
// prevResult the spec requires, and so DEL tears down with the config and port mappings that ADD
// used even when the pod object is gone. Plugins run through agent/exec.ts, optionally inside a
// named network namespace (tests emulate a node with one; in production the agent already runs
// in the node's namespace).

import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../exec.ts";
import type { NetworkConfList, PluginConf } from "./conflist.ts";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** `tcp`, `udp` or `sctp` (lower case, as containerd passes it). */
  protocol: string;
  /** Host address to bind; empty means all. */
  hostIP: string;
}

export interface CniPod {
  /** The sandbox's id (kemu uses the pod UID); keys host-local leases and the result cache. */
  containerId: string;
  /** Path of the pod's network namespace, e.g. /run/netns/NAME. */
  netnsPath: string;
  /** Interface name inside the pod, normally eth0. */
  ifName: string;
  k8s: { namespace: string; name: string; uid: string };
  portMappings?: PortMapping[];
}

export interface CniOptions {
  /** Directory the conflist is written to (`10-<name>.conflist`). */
  confDir: string;
  /** libcni-style result cache (`<cacheDir>/results/...`). */
  cacheDir: string;
  /** CNI_PATH: where plugin binaries are looked up (colon-separated list allowed). */
  binDir: string;
  conflist: NetworkConfList;
  /** Run plugins inside this named network namespace (`ip netns exec NAME plugin`). */
  netns?: string;
  /** Per plugin invocation; default 60 s. */
  timeoutMs?: number;
}

/** SPEC.md 1.0.0 result types. */
export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  [key: string]: unknown;
}

export interface CniIPConfig {
  /** CIDR notation, e.g. 10.244.1.2/24. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  [key: string]: unknown;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  [key: string]: unknown;
}

export interface CniAddResult {
  /** First address of the pod's interface (without prefix length). */
  podIP: string;
  /** Every address on the pod's interface (without prefix length), podIP first. */
  podIPs: string[];
  /** Prefix length of podIP's subnet. */
  prefixLength: number;
  /** Gateway of podIP's subnet, when the plugin reported one. */
  gateway?: string;
  /** MAC address of the pod's interface, when reported. */
  mac?: string;
  interfaces: CniInterface[];
  /** The pod network's final (cached) result. */
  result: CniResult;
  /** The cni-loopback network's result. */
  loopback: CniResult;
}

/**
 * A failed plugin invocation. For errors the plugin reported (SPEC.md "Error"), `code`, `msg`
 * and `details` are the plugin's and `message` is `msg` (plus `; details`), as libcni's
 * types.Error prints it. Failures on the runtime's side (plugin binary not found, a crash
 * without an error result, unreadable output, no cached result for CHECK) have `code` 0.
 */
export class CniError extends Error {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
  /** The plugin's `type` (binary name); empty for failures not tied to one plugin. */
  readonly plugin: string;
  /** ADD, DEL, CHECK or VERSION. */
  readonly command: string;
  readonly network: string;
  constructor(o: {
    code: number;
    msg: string;
    details?: string;
    plugin: string;
    command: string;
    network: string;
  }) {
    super(o.details ? `${o.msg}; ${o.details}` : o.msg);
    this.name = "CniError";
    this.code = o.code;
    this.msg = o.msg;
    this.details = o.details;
    this.plugin = o.plugin;
    this.command = o.command;
    this.network = o.network;
  }
}

/** libcni's on-disk cache entry (cniCacheV1); `config` is the base64 of the conflist's bytes. */
export interface CachedInfo {
  kind: "cniCacheV1";
  containerId: string;
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
}

type Command = "ADD" | "DEL" | "CHECK";

/** Invocation context shared by the plugins of one list. */
interface Invocation {
  containerId: string;
  netns: string;
  ifName: string;
  cniArgs: [string, string][];
  capabilityArgs: Record<string, unknown>;
}

/** containerd's separate network that brings up `lo` in every pod. */
export const LOOPBACK_NETWORK = "cni-loopback";
const NSFS_MAGIC = 0x6e736673;
/** libcni's ValidateContainerID / ValidateNetworkName. */
const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class Cni {
  readonly options: CniOptions;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(options: CniOptions) {
    if (!ID_PATTERN.test(options.conflist.name)) {
      throw new Error(`CNI network name ${JSON.stringify(options.conflist.name)} is invalid`);
    }
    if (options.conflist.name === LOOPBACK_NETWORK) {
      throw new Error(`CNI network name ${LOOPBACK_NETWORK} is reserved for loopback`);
    }
    if (!Array.isArray(options.conflist.plugins) || options.conflist.plugins.length === 0) {
      throw new Error(`CNI network ${options.conflist.name}: the conflist has no plugins`);
    }
    for (const p of options.conflist.plugins) {
      if (typeof p.type !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(p.type)) {
        throw new Error(
          `CNI network ${options.conflist.name}: invalid plugin type ${JSON.stringify(p.type)}`,
        );
      }
    }
    this.options = options;
  }

  /** Where writeConfig puts the conflist. */
  get configPath(): string {
    return join(this.options.confDir, `10-${this.options.conflist.name}.conflist`);
  }

  /** The loopback network list containerd runs first, at the pod network's version. */
  get loopbackConflist(): NetworkConfList {
    return {
      cniVersion: this.options.conflist.cniVersion,
      name: LOOPBACK_NETWORK,
      plugins: [{ type: "loopback" }],
    };
  }

  /** Writes confDir/10-<name>.conflist (atomically) and creates the cache directory. */
  async writeConfig(): Promise<string> {
    mkdirSync(this.options.confDir, { recursive: true });
    mkdirSync(join(this.options.cacheDir, "results"), { recursive: true, mode: 0o700 });
    const path = this.configPath;
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(this.options.conflist, null, 2)}\n`, { mode: 0o644 });
    renameSync(tmp, path);
    return path;
  }

  /** Attaches the pod: loopback, then the pod network. On failure, best-effort DEL and rethrow. */
  add(pod: CniPod): Promise<CniAddResult> {
    validatePod(pod, true);
    return this.locked(pod.containerId, async () => {
      const main = this.options.conflist;
      const loInv = this.invocation(pod, "lo", {});
      const inv = this.invocation(pod, pod.ifName, capabilityArgs(pod));
      try {
        const loopback = await this.addList(this.loopbackConflist, loInv);
        const result = await this.addList(main, inv);
        return { ...summarize(result, pod.ifName, main.name), loopback };
      } catch (e) {
        // libcni leaves cleanup to the runtime; containerd tears the sandbox's network down.
        await this.delList(main, inv).catch(() => {});
        await this.delList(this.loopbackConflist, loInv).catch(() => {});
        throw e;
      }
    });
  }

  /**
   * Detaches the pod: the pod network (plugins in reverse) and then loopback, each with the
   * config, port mappings and prevResult cached at ADD. Idempotent: a missing netns or cache
   * entry is fine. With an empty containerId, deletes every cached attachment of netnsPath.
   */
  async del(pod: CniPod): Promise<void> {
    validatePod(pod, false);
    if (!pod.containerId) {
      for (const c of this.cachedByNetns(pod.netnsPath)) {
        await this.locked(c.containerId, () => this.delCached(c));
      }
      return;
    }
    await this.locked(pod.containerId, async () => {
      await this.delList(this.options.conflist, this.invocation(pod, pod.ifName, capabilityArgs(pod)));
      await this.delList(this.loopbackConflist, this.invocation(pod, "lo", {}));
    });
  }

  /** Verifies the pod's attachment (loopback, then the pod network) against the cached results. */
  check(pod: CniPod): Promise<void> {
    validatePod(pod, true);
    return this.locked(pod.containerId, async () => {
      await this.checkList(this.loopbackConflist, this.invocation(pod, "lo", {}));
      await this.checkList(this.options.conflist, this.invocation(pod, pod.ifName, capabilityArgs(pod)));
    });
  }

  /** The cached ADD result of the pod network, if any. */
  cachedResult(containerId: string, ifName = "eth0"): CniResult | undefined {
    return this.readCache(this.options.conflist.name, containerId, ifName)?.result;
  }

  // ---- lists ----

  private async addList(list: NetworkConfList, inv: Invocation): Promise<CniResult> {
    let prev: CniResult | undefined;
    for (const plugin of list.plugins) {
      const result = await this.invoke("ADD", list, plugin, inv, prev);
      if (!result) {
        throw new CniError({
          code: 0,
          msg: `plugin type="${plugin.type}" returned no result for ADD`,
          plugin: plugin.type,
          command: "ADD",
          network: list.name,
        });
      }
      prev = result;
    }
    const result = prev as CniResult;
    await this.writeCache(list, inv, result);
    return result;
  }

  private async delList(current: NetworkConfList, inv: Invocation): Promise<void> {
    const cached = this.readCache(current.name, inv.containerId, inv.ifName);
    if (cached) return this.delCached(cached, current, inv);
    await this.runDel(current, inv, undefined);
  }

  /** DEL from a cache entry: its config, args and result win over the current ones. */
  private async delCached(cached: CachedInfo, current?: NetworkConfList, inv?: Invocation): Promise<void> {
    const list = decodeConfig(cached.config) ?? current;
    if (!list) return this.removeCache(cached.networkName, cached.containerId, cached.ifName);
    const invocation: Invocation = {
      containerId: cached.containerId,
      ifName: cached.ifName,
      netns: inv?.netns ?? cached.netns ?? "",
      cniArgs: cached.cniArgs ?? inv?.cniArgs ?? [],
      capabilityArgs: cached.capabilityArgs ?? inv?.capabilityArgs ?? {},
    };
    await this.runDel(list, invocation, cached.result);
  }

  private async runDel(
    list: NetworkConfList,
    inv: Invocation,
    prevResult: CniResult | undefined,
  ): Promise<void> {
    // Plugins must tolerate a netns that is gone, but only a missing path is their documented
    // case; anything that is not a namespace mount any more is passed as "no netns".
    const netns = isNetns(inv.netns) ? inv.netns : "";
    for (const plugin of [...list.plugins].reverse()) {
      // Without a cached result the list never completed ADD: a plugin that cannot be found
      // never ran, so it has nothing to tear down (keeps DEL after a failed ADD harmless).
      if (!prevResult && !this.findPlugin(plugin.type)) continue;
      await this.invoke("DEL", list, plugin, { ...inv, netns }, prevResult);
    }
    this.removeCache(list.name, inv.containerId, inv.ifName);
  }

  private async checkList(list: NetworkConfList, inv: Invocation): Promise<void> {
    if (list.disableCheck || !versionAtLeast(list.cniVersion, "0.4.0")) return;
    const cached = this.readCache(list.name, inv.containerId, inv.ifName);
    if (!cached?.result) {
      throw new CniError({
        code: 0,
        msg: `no cached result for network ${list.name}, container ${inv.containerId}, interface ${inv.ifName}`,
        plugin: "",
        command: "CHECK",
        network: list.name,
      });
    }
    for (const plugin of list.plugins) await this.invoke("CHECK", list, plugin, inv, cached.result);
  }

  // ---- one plugin ----

  private async invoke(
    command: Command,
    list: NetworkConfList,
    plugin: PluginConf,
    inv: Invocation,
    prevResult: CniResult | undefined,
  ): Promise<CniResult | undefined> {
    const fail = (code: number, msg: string, details?: string) =>
      new CniError({ code, msg, details, plugin: plugin.type, command, network: list.name });
    const binary = this.findPlugin(plugin.type);
    if (!binary) {
      throw fail(
        0,
        `failed to find plugin "${plugin.type}" in path [${this.options.binDir.split(":").join(" ")}]`,
      );
    }
    const stdin: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    if (prevResult) stdin.prevResult = prevResult;
    const runtimeConfig = pluginRuntimeConfig(plugin, inv.capabilityArgs);
    if (runtimeConfig) stdin.runtimeConfig = runtimeConfig;
    else delete stdin.runtimeConfig;

    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CNI_")) env[k] = v;
    Object.assign(env, {
      CNI_COMMAND: command,
      CNI_CONTAINERID: inv.containerId,
      CNI_NETNS: inv.netns,
      CNI_IFNAME: inv.ifName,
      CNI_ARGS: inv.cniArgs.map(([k, v]) => `${k}=${v}`).join(";"),
      CNI_PATH: this.options.binDir,
    });
    const r = await run([binary], {
      netns: this.options.netns,
      input: JSON.stringify(stdin),
      env,
      allowFail: true,
      timeoutMs: this.options.timeoutMs ?? 60_000,
    });
    const out = r.stdout.trim();
    if (r.code !== 0) {
      const reported = parseJson(out) as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      if (reported && typeof reported.msg === "string") {
        throw fail(
          typeof reported.code === "number" ? reported.code : 0,
          reported.msg,
          typeof reported.details === "string" && reported.details ? reported.details : undefined,
        );
      }
      const text = (r.stderr.trim() || out || "(no output)").split("\n").slice(-5).join("\n");
      throw fail(
        0,
        `plugin type="${plugin.type}" failed (${command.toLowerCase()}): exit ${r.code}: ${text}`,
      );
    }
    if (command !== "ADD") return undefined;
    const result = parseJson(out) as CniResult | undefined;
    if (!result || typeof result !== "object" || Array.isArray(result)) {
      throw fail(
        0,
        `plugin type="${plugin.type}" printed an unreadable ADD result: ${out.slice(0, 200) || "(empty)"}`,
      );
    }
    return result;
  }

  private findPlugin(type: string): string | undefined {
    for (const dir of this.options.binDir.split(":")) {
      if (!dir) continue;
      const path = join(dir, type);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {}
    }
    return undefined;
  }

  private invocation(pod: CniPod, ifName: string, caps: Record<string, unknown>): Invocation {
    return {
      containerId: pod.containerId,
      netns: pod.netnsPath,
      ifName,
      // go-cni's labels as containerd's CRI sends them.
      cniArgs: [
        ["IgnoreUnknown", "1"],
        ["K8S_POD_NAMESPACE", pod.k8s.namespace],
        ["K8S_POD_NAME", pod.k8s.name],
        ["K8S_POD_INFRA_CONTAINER_ID", pod.containerId],
        ["K8S_POD_UID", pod.k8s.uid],
      ],
      capabilityArgs: caps,
    };
  }

  // ---- cache (libcni layout) ----

  private cachePath(network: string, containerId: string, ifName: string): string {
    return join(this.options.cacheDir, "results", `${network}-${containerId}-${ifName}`);
  }

  private async writeCache(list: NetworkConfList, inv: Invocation, result: CniResult): Promise<void> {
    const entry: CachedInfo = {
      kind: "cniCacheV1",
      containerId: inv.containerId,
      config: Buffer.from(JSON.stringify(list)).toString("base64"),
      ifName: inv.ifName,
      networkName: list.name,
      netns: inv.netns,
      cniArgs: inv.cniArgs,
      capabilityArgs: inv.capabilityArgs,
      result,
    };
    const path = this.cachePath(list.name, inv.containerId, inv.ifName);
    mkdirSync(join(this.options.cacheDir, "results"), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, path);
  }

  private readCache(network: string, containerId: string, ifName: string): CachedInfo | undefined {
    return readCacheFile(this.cachePath(network, containerId, ifName));
  }

  private removeCache(network: string, containerId: string, ifName: string): void {
    rmSync(this.cachePath(network, containerId, ifName), { force: true });
  }

  /** Cache entries of this runtime's networks attached to a netns path. */
  private cachedByNetns(netnsPath: string): CachedInfo[] {
    const dir = join(this.options.cacheDir, "results");
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const nets = new Set([this.options.conflist.name, LOOPBACK_NETWORK]);
    const entries = names
      .filter((n) => !n.includes(".tmp-"))
      .map((n) => readCacheFile(join(dir, n)))
      .filter(
        (c): c is CachedInfo => !!c && c.netns === netnsPath && nets.has(c.networkName) && !!c.containerId,
      );
    // Pod network before loopback, as del() does.
    return entries.sort(
      (a, b) => Number(a.networkName === LOOPBACK_NETWORK) - Number(b.networkName === LOOPBACK_NETWORK),
    );
  }

  /** Serializes operations on one container (plugins assume one runtime call at a time). */
  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }
}

// ---- helpers ----

function validatePod(pod: CniPod, requireId: boolean): void {
  if (requireId || pod.containerId) {
    if (!ID_PATTERN.test(pod.containerId)) {
      throw new Error(`CNI: invalid container id ${JSON.stringify(pod.containerId)}`);
    }
  }
  if (requireId && !pod.netnsPath) throw new Error("CNI: netnsPath is required");
  // libcni's ValidateInterfaceName.
  const ifName = pod.ifName;
  if (!ifName || ifName.length > 15 || ifName === "." || ifName === ".." || /[\s/:]/.test(ifName)) {
    throw new Error(`CNI: invalid interface name ${JSON.stringify(ifName)}`);
  }
}

function capabilityArgs(pod: CniPod): Record<string, unknown> {
  // containerd passes the portMappings capability only when the pod has some.
  return pod.portMappings?.length ? { portMappings: pod.portMappings } : {};
}

/** libcni's injectRuntimeConfig: only the capabilities the plugin declares. */
function pluginRuntimeConfig(
  plugin: PluginConf,
  caps: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const rc: Record<string, unknown> = {};
  for (const [cap, supported] of Object.entries(plugin.capabilities ?? {})) {
    if (supported && caps[cap] !== undefined) rc[cap] = caps[cap];
  }
  return Object.keys(rc).length ? rc : undefined;
}

function summarize(result: CniResult, ifName: string, network: string): Omit<CniAddResult, "loopback"> {
  const interfaces = result.interfaces ?? [];
  const ips = result.ips ?? [];
  const onPod = ips.filter((ip) => {
    const itf = typeof ip.interface === "number" ? interfaces[ip.interface] : undefined;
    return itf !== undefined && itf.name === ifName && !!itf.sandbox;
  });
  const chosen = onPod.length ? onPod : ips;
  if (chosen.length === 0) {
    throw new CniError({
      code: 0,
      msg: `CNI network ${network} returned no IP address for ${ifName}`,
      plugin: "",
      command: "ADD",
      network,
    });
  }
  const [ip, prefix] = chosen[0].address.split("/");
  const itf = interfaces.find((i) => i.name === ifName && i.sandbox);
  return {
    podIP: ip,
    podIPs: chosen.map((c) => c.address.split("/")[0]),
    prefixLength: Number(prefix),
    gateway: chosen[0].gateway,
    mac: itf?.mac,
    interfaces,
    result,
  };
}

function isNetns(path: string): boolean {
  if (!path) return false;
  try {
    return Number(statfsSync(path).type) === NSFS_MAGIC;
  } catch {
    return false;
  }
}

function readCacheFile(path: string): CachedInfo | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const entry = parseJson(text) as CachedInfo | undefined;
  return entry && typeof entry === "object" && entry.kind === "cniCacheV1" ? entry : undefined;
}

function decodeConfig(config: string | undefined): NetworkConfList | undefined {
  if (!config) return undefined;
  const list = parseJson(Buffer.from(config, "base64").toString("utf8")) as NetworkConfList | undefined;
  return list && typeof list.name === "string" && Array.isArray(list.plugins) ? list : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
