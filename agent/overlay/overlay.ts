// The node's overlay to the other nodes' pods, one reconciler with one sync key (kindnet style)
// over flannel's two simplest backends:
//   vxlan    kemu.1 (VNI 1, UDP 8472, nolearning) and, per peer, 1 route, 1 ARP entry and 1 FDB
//            entry, all static: no multicast, no learning, no flooding.
//   host-gw  no device; per peer one route via its underlay address (needs L2 adjacency).
// ensureDevice() runs once at start; sync() recomputes the whole desired state from the Node list
// (on every change and every 10 s, so one missed event cannot drift forever), diffs it against
// what the kernel reports and applies the difference in one ordered batch. Every command goes
// through exec.ts, optionally inside a named namespace (tests emulate nodes that way).

import { formatCidr, nthAddress, parseCidr } from "../../emulator/cidr.ts";
import type { NodeObject } from "../../emulator/types.ts";
import { ExecError, ipBatch, run, runJson } from "../exec.ts";
import { ensureSysctl } from "../sysctl.ts";
import {
  type ActualState,
  type BridgeFdb,
  desiredRecords,
  type IpLinkDetail,
  type IpNeigh,
  type IpRoute,
  isBridgeLine,
  type OverlayMode,
  ownsRoute,
  planSync,
  type SelfNode,
  VTEP_DEVICE,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  VXLAN_VNI,
  vtepMACFor,
  vtepReuseProblem,
} from "./desired.ts";

export interface OverlayOptions {
  mode: OverlayMode;
  /** The whole pod network, e.g. 10.244.0.0/16: the only range whose routes we manage. */
  clusterCidr: string;
  /** The node's underlay interface (its InternalIP lives there), e.g. eth0. */
  underlayDevice: string;
  /** Run every command inside this named network namespace (unset: the agent's own). */
  netns?: string;
  /** Where progress and skip notices go (default: console.log). */
  log?: (message: string) => void;
}

export interface DeviceParams {
  underlayIP: string;
  podCIDR: string;
  /** MTU of the underlay device; kemu.1 gets this minus the VXLAN overhead. */
  mtu: number;
}

interface IpAddrLink {
  mtu?: number;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export class Overlay {
  readonly mode: OverlayMode;
  private readonly opts: OverlayOptions;
  private readonly log: (message: string) => void;
  private device?: DeviceParams;
  private underlaySubnet?: string;
  private lastSkipped = "";

  constructor(opts: OverlayOptions) {
    const cluster = parseCidr(opts.clusterCidr);
    if (cluster.family !== 4 || cluster.prefixLength === 0) {
      throw new Error(
        `overlay: cluster CIDR must be an IPv4 range narrower than /0, got ${opts.clusterCidr}`,
      );
    }
    this.mode = opts.mode;
    this.opts = { ...opts, clusterCidr: formatCidr(cluster) };
    const log = opts.log ?? ((m: string) => console.log(m));
    this.log = (m) => log(`kemu agent: overlay: ${m}`);
  }

  /**
   * Prepares the node: IPv4 forwarding on and, in vxlan mode, kemu.1 created or reused (recreated
   * when it cannot be), its MTU, address (podCIDR network address /32) and up state set.
   * Returns kemu.1's MAC in vxlan mode, undefined in host-gw mode (where a leftover kemu.1 from
   * an earlier vxlan run is removed).
   */
  async ensureDevice(p: DeviceParams): Promise<string | undefined> {
    this.device = p;
    await this.enableForwarding();
    if (this.mode === "host-gw") {
      this.underlaySubnet = await this.readUnderlaySubnet(p.underlayIP);
      if (await this.readLink()) {
        this.log(`removing ${VTEP_DEVICE}: host-gw mode has no VXLAN device`);
        await this.ip(["link", "del", VTEP_DEVICE]);
      }
      return undefined;
    }

    const want = { underlayIP: p.underlayIP, underlayDevice: this.opts.underlayDevice };
    let link = await this.readLink();
    if (link) {
      const problem = vtepReuseProblem(link, want);
      if (problem) {
        this.log(`recreating ${VTEP_DEVICE}: ${problem}`);
        await this.ip(["link", "del", VTEP_DEVICE]);
        link = undefined;
      }
    }
    if (!link) await this.createVtep(p.underlayIP);

    const addr = `${nthAddress(p.podCIDR, 0)}/32`;
    const current = await runJson<IpAddrLink[]>(
      ["ip", "-j", "addr", "show", "dev", VTEP_DEVICE],
      this.runOpts(),
    );
    const lines = (current[0]?.addr_info ?? [])
      .filter((a) => a.family === "inet" && `${a.local}/${a.prefixlen}` !== addr)
      .map((a) => `addr del ${a.local}/${a.prefixlen} dev ${VTEP_DEVICE}`);
    lines.push(`addr replace ${addr} dev ${VTEP_DEVICE}`);
    lines.push(`link set dev ${VTEP_DEVICE} mtu ${p.mtu - VXLAN_OVERHEAD} up`);
    await ipBatch(lines, this.runOpts());

    const mac = (await this.readLink())?.address?.toLowerCase();
    if (!mac) throw new Error(`overlay: ${VTEP_DEVICE} has no MAC address after setup`);
    return mac;
  }

  /**
   * Converges routes (and in vxlan mode ARP and FDB entries) to the Node list, which may include
   * this node. Returns the batch lines it applied: [] when nothing had to change.
   */
  async sync(self: SelfNode, nodes: NodeObject[]): Promise<string[]> {
    if (!this.device) throw new Error("overlay: ensureDevice() must run before sync()");
    if (this.mode === "vxlan") await this.healDevice(self);

    const desired = desiredRecords(self, nodes, {
      mode: this.mode,
      clusterCidr: this.opts.clusterCidr,
      underlayDevice: this.opts.underlayDevice,
      underlaySubnet: this.underlaySubnet,
    });
    const skipped = desired.skipped.map((s) => `skipping node ${s.node}: ${s.reason}`);
    if (skipped.join("\n") !== this.lastSkipped) {
      for (const line of skipped) this.log(line);
      this.lastSkipped = skipped.join("\n");
    }

    const actual = await this.readActual(this.mode === "vxlan");
    const lines = planSync(desired.peers, actual, this.planOptions(self.podCIDR));
    await this.apply(lines);
    return lines;
  }

  /** Removes everything the overlay owns: kemu.1 (with its ARP/FDB entries) and our routes. */
  async cleanup(): Promise<void> {
    if (await this.readLink()) await this.ip(["link", "del", VTEP_DEVICE]);
    const routes = await runJson<IpRoute[]>(["ip", "-j", "route", "show"], this.runOpts());
    const opts = this.planOptions(this.device?.podCIDR);
    const lines = planSync(
      [],
      { routes: routes.filter((r) => ownsRoute(r, opts)), neighs: [], fdb: [] },
      opts,
    );
    await this.apply(lines);
  }

  private planOptions(podCIDR: string | undefined) {
    return {
      clusterCidr: this.opts.clusterCidr,
      // Without a known podCIDR (cleanup before ensureDevice) nothing of ours can be excluded;
      // a /32 outside any pod range keeps the check total.
      podCIDR: podCIDR ?? "255.255.255.255/32",
      underlayDevice: this.opts.underlayDevice,
    };
  }

  /** vxlan: recreates or repairs kemu.1 when someone deleted or changed it since ensureDevice. */
  private async healDevice(self: SelfNode): Promise<void> {
    const p = this.device!;
    const link = await this.readLink();
    const problem =
      vtepReuseProblem(link, { underlayIP: p.underlayIP, underlayDevice: this.opts.underlayDevice }) ??
      (!link?.flags?.includes("UP") ? `${VTEP_DEVICE} is down` : undefined) ??
      (link?.mtu !== p.mtu - VXLAN_OVERHEAD ? `${VTEP_DEVICE} MTU is ${link?.mtu}` : undefined);
    if (!problem) return;
    this.log(`repairing ${VTEP_DEVICE}: ${problem}`);
    const mac = await this.ensureDevice(p);
    if (self.vtepMAC && mac !== self.vtepMAC) {
      this.log(`${VTEP_DEVICE} MAC changed from ${self.vtepMAC} to ${mac}: peers need the new annotation`);
    }
  }

  /** Routes, and when kemu.1 exists (vxlan mode, after healDevice) its ARP and FDB entries. */
  private async readActual(withDevice: boolean): Promise<ActualState> {
    const routes = await runJson<IpRoute[]>(["ip", "-j", "route", "show"], this.runOpts());
    if (!withDevice) return { routes, neighs: [], fdb: [] };
    const neighs = await runJson<IpNeigh[]>(
      ["ip", "-j", "neigh", "show", "dev", VTEP_DEVICE],
      this.runOpts(),
    );
    const fdb = await runJson<BridgeFdb[]>(
      ["bridge", "-j", "fdb", "show", "dev", VTEP_DEVICE],
      this.runOpts(),
    );
    return { routes, neighs, fdb };
  }

  /** Applies lines in order: runs of ip lines via `ip -batch`, runs of fdb lines via `bridge -batch`. */
  private async apply(lines: string[]): Promise<void> {
    let i = 0;
    while (i < lines.length) {
      const bridge = isBridgeLine(lines[i]);
      let j = i;
      while (j < lines.length && isBridgeLine(lines[j]) === bridge) j++;
      const chunk = lines.slice(i, j);
      if (bridge) await run(["bridge", "-batch", "-"], { ...this.runOpts(), input: `${chunk.join("\n")}\n` });
      else await ipBatch(chunk, this.runOpts());
      i = j;
    }
  }

  private async createVtep(underlayIP: string): Promise<void> {
    const argv = [
      "link",
      "add",
      VTEP_DEVICE,
      "address",
      vtepMACFor(underlayIP),
      "type",
      "vxlan",
      "id",
      String(VXLAN_VNI),
      "local",
      underlayIP,
      "dev",
      this.opts.underlayDevice,
      "dstport",
      String(VXLAN_PORT),
      "nolearning",
    ];
    try {
      await this.ip(argv);
    } catch (e) {
      const stderr = e instanceof ExecError ? e.stderr : String(e);
      if (/unknown device type|not supported/i.test(stderr)) {
        throw new Error(
          `overlay: the kernel lacks VXLAN support (CONFIG_VXLAN / the vxlan module), so ${VTEP_DEVICE} ` +
            `cannot be created (${stderr.trim()}); load it with "modprobe vxlan" or use --overlay host-gw`,
        );
      }
      throw e;
    }
  }

  /** kemu.1 as `ip -j -d link show` reports it, or undefined when it does not exist. */
  private async readLink(): Promise<IpLinkDetail | undefined> {
    const r = await run(["ip", "-j", "-d", "link", "show", "dev", VTEP_DEVICE], {
      ...this.runOpts(),
      allowFail: true,
    });
    if (r.code !== 0) {
      if (/does not exist|cannot find device/i.test(r.stderr)) return undefined;
      throw new ExecError(["ip", "-j", "-d", "link", "show", "dev", VTEP_DEVICE], r.code, r.stderr);
    }
    return (JSON.parse(r.stdout) as IpLinkDetail[])[0];
  }

  /** The connected subnet of the underlay address (host-gw's reach: peers must be on it). */
  private async readUnderlaySubnet(underlayIP: string): Promise<string | undefined> {
    const links = await runJson<IpAddrLink[]>(
      ["ip", "-j", "addr", "show", "dev", this.opts.underlayDevice],
      this.runOpts(),
    );
    const a = links[0]?.addr_info?.find((x) => x.family === "inet" && x.local === underlayIP);
    if (!a) {
      this.log(`${underlayIP} is not on ${this.opts.underlayDevice}; cannot check peers' L2 adjacency`);
      return undefined;
    }
    return formatCidr(parseCidr(`${a.local}/${a.prefixlen}`, { allowHostBits: true }));
  }

  /** IPv4 forwarding in the node's namespace: pods' packets are routed through it. */
  private async enableForwarding(): Promise<void> {
    if (this.opts.netns) {
      await run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], this.runOpts());
    } else {
      // We already run inside the node's namespace, where /proc/sys/net is its own.
      ensureSysctl("net.ipv4.ip_forward", "1");
    }
  }

  private ip(args: string[]): Promise<unknown> {
    return run(["ip", ...args], this.runOpts());
  }

  private runOpts(): { netns?: string } {
    return this.opts.netns ? { netns: this.opts.netns } : {};
  }
}
