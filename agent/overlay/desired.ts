// The overlay's desired state as pure data, flannel's vxlan backend in miniature: "1 route, 1 arp
// entry and 1 FDB entry per host". From this node and the Node list we compute one record per
// peer; from those records and what the kernel reports (`ip -j route`, `ip -j neigh`, `bridge -j
// fdb`, parsed as JSON) we compute the batch lines that converge the kernel: writes are `replace`
// (idempotent), in the order neigh -> fdb -> route so a route never points at a peer whose L2
// entries are missing, and stale entries are deleted only where we own them (routes inside the
// cluster CIDR on kemu.1 or via the underlay, never our own podCIDR, never anything else).
//
// vxlan, for a peer with podCIDR 10.244.2.0/24, VTEP MAC M and underlay IP U:
//   neigh replace 10.244.2.0 lladdr M dev kemu.1 nud permanent     (the peer VTEP's "ARP" entry)
//   fdb replace M dev kemu.1 dst U self permanent                  (where to send frames for M)
//   route replace 10.244.2.0/24 via 10.244.2.0 dev kemu.1 onlink   (pods behind that VTEP)
// host-gw, same peer on our L2 segment:
//   route replace 10.244.2.0/24 via U dev eth0
//
// `fdb` lines are bridge(8) commands (iproute2's `ip` has no fdb object); the applier sends them
// to `bridge -batch` and everything else to `ip -batch`, keeping the order.

import { cidrContains, cidrOverlaps, formatCidr, nthAddress, parseCidr } from "../../emulator/cidr.ts";
import { compareStrings } from "../../emulator/compare.ts";
import type { NodeObject } from "../../emulator/types.ts";

export type OverlayMode = "vxlan" | "host-gw";

/** Node annotation carrying the VTEP MAC, as flannel's flannel.alpha.coreos.com/backend-data. */
export const VTEP_MAC_ANNOTATION = "kemu.dev/backend-data";
/** The VXLAN device (flannel's is flannel.1: VNI 1). */
export const VTEP_DEVICE = "kemu.1";
export const VXLAN_VNI = 1;
/** Linux's historical VXLAN port, flannel's default. */
export const VXLAN_PORT = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;

/** This node, as the agent knows it. */
export interface SelfNode {
  name: string;
  underlayIP: string;
  podCIDR: string;
  vtepMAC?: string;
}

export interface RouteRecord {
  /** Canonical CIDR. */
  dst: string;
  gateway: string;
  dev: string;
  onlink: boolean;
}

export interface NeighRecord {
  dst: string;
  /** Lower-case MAC. */
  lladdr: string;
  dev: string;
}

export interface FdbRecord {
  /** Lower-case MAC. */
  mac: string;
  /** The peer's underlay IP. */
  dst: string;
  dev: string;
}

/** Everything one peer needs; `neigh` and `fdb` only in vxlan mode. */
export interface PeerRecords {
  node: string;
  underlayIP: string;
  podCIDR: string;
  route: RouteRecord;
  neigh?: NeighRecord;
  fdb?: FdbRecord;
}

export interface SkippedNode {
  node: string;
  reason: string;
}

export interface DesiredState {
  /** Sorted by node name. */
  peers: PeerRecords[];
  skipped: SkippedNode[];
}

export interface DesiredOptions {
  mode: OverlayMode;
  clusterCidr: string;
  underlayDevice: string;
  /**
   * host-gw only: the underlay's connected subnet (e.g. 172.30.0.0/24). Peers outside it are not
   * L2-adjacent, so a route via their address would not work; they are skipped.
   */
  underlaySubnet?: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The MAC in a `{"VtepMAC":"aa:bb:..."}` annotation value, lower-cased; undefined if unusable. */
export function parseVtepMAC(annotation: string | undefined): string | undefined {
  if (!annotation) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(annotation);
  } catch {
    return undefined;
  }
  const mac = (data as { VtepMAC?: unknown } | null)?.VtepMAC;
  if (typeof mac !== "string") return undefined;
  const lower = mac.toLowerCase();
  if (!MAC.test(lower) || lower === "00:00:00:00:00:00") return undefined;
  // The group bit marks multicast/broadcast addresses: never a VTEP's.
  if (Number.parseInt(lower.slice(0, 2), 16) & 1) return undefined;
  return lower;
}

/**
 * The MAC kemu gives a new kemu.1: locally administered, derived from the underlay IPv4 address
 * (02:6b:a.b.c.d in hex), so a device recreated on the same node keeps the MAC its Node annotation
 * already advertises.
 */
export function vtepMACFor(underlayIP: string): string {
  const c = parseCidr(`${underlayIP}/32`);
  if (c.family !== 4) throw new Error(`VTEP underlay address must be IPv4, got ${underlayIP}`);
  const hex = c.network.toString(16).padStart(8, "0");
  return ["02", "6b", hex.slice(0, 2), hex.slice(2, 4), hex.slice(4, 6), hex.slice(6, 8)].join(":");
}

function internalIPv4(node: NodeObject): string | undefined {
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== "InternalIP") continue;
    if (parseIPv4(a.address)) return a.address;
  }
  return undefined;
}

function parseIPv4(text: string): boolean {
  try {
    return parseCidr(`${text}/32`).family === 4;
  } catch {
    return false;
  }
}

function nodePodCIDR(node: NodeObject): string | undefined {
  if (node.spec?.podCIDR) return node.spec.podCIDR;
  return node.spec?.podCIDRs?.find((c) => !c.includes(":"));
}

/**
 * The per-peer records for every other node that has a podCIDR (IPv4, inside the cluster CIDR,
 * clear of ours and of other peers'), an IPv4 InternalIP, and in vxlan mode a usable VTEP MAC.
 * Nodes being deleted or missing data are skipped with a reason.
 */
export function desiredRecords(self: SelfNode, nodes: NodeObject[], opts: DesiredOptions): DesiredState {
  const peers: PeerRecords[] = [];
  const skipped: SkippedNode[] = [];
  const sorted = [...nodes].sort((a, b) => compareStrings(a.metadata.name ?? "", b.metadata.name ?? ""));
  for (const node of sorted) {
    const name = node.metadata.name ?? "";
    if (!name || name === self.name) continue;
    const skip = (reason: string) => skipped.push({ node: name, reason });
    if (node.metadata.deletionTimestamp) {
      skip("being deleted");
      continue;
    }
    const podCIDRText = nodePodCIDR(node);
    if (!podCIDRText) {
      skip("no spec.podCIDR yet");
      continue;
    }
    let podCIDR: string;
    try {
      const c = parseCidr(podCIDRText);
      if (c.family !== 4) throw new Error("not IPv4");
      podCIDR = formatCidr(c);
    } catch {
      skip(`podCIDR ${podCIDRText} is not an IPv4 CIDR`);
      continue;
    }
    if (!cidrContains(opts.clusterCidr, podCIDR)) {
      skip(`podCIDR ${podCIDR} is outside the cluster CIDR ${opts.clusterCidr}`);
      continue;
    }
    if (cidrOverlaps(podCIDR, self.podCIDR)) {
      skip(`podCIDR ${podCIDR} overlaps this node's ${self.podCIDR}`);
      continue;
    }
    const clash = peers.find((p) => cidrOverlaps(p.podCIDR, podCIDR));
    if (clash) {
      skip(`podCIDR ${podCIDR} overlaps node ${clash.node}'s ${clash.podCIDR}`);
      continue;
    }
    const underlayIP = internalIPv4(node);
    if (!underlayIP) {
      skip("no IPv4 InternalIP in status.addresses yet");
      continue;
    }
    if (underlayIP === self.underlayIP) {
      skip(`InternalIP ${underlayIP} is this node's own`);
      continue;
    }
    const gatewayAddr = nthAddress(podCIDR, 0);
    if (opts.mode === "host-gw") {
      if (opts.underlaySubnet && !cidrContains(opts.underlaySubnet, underlayIP)) {
        skip(
          `host-gw needs L2 adjacency: InternalIP ${underlayIP} is not on this node's underlay subnet ${opts.underlaySubnet}`,
        );
        continue;
      }
      peers.push({
        node: name,
        underlayIP,
        podCIDR,
        route: { dst: podCIDR, gateway: underlayIP, dev: opts.underlayDevice, onlink: false },
      });
      continue;
    }
    const mac = parseVtepMAC(node.metadata.annotations?.[VTEP_MAC_ANNOTATION]);
    if (!mac) {
      skip(`no usable VTEP MAC in annotation ${VTEP_MAC_ANNOTATION} yet`);
      continue;
    }
    peers.push({
      node: name,
      underlayIP,
      podCIDR,
      neigh: { dst: gatewayAddr, lladdr: mac, dev: VTEP_DEVICE },
      fdb: { mac, dst: underlayIP, dev: VTEP_DEVICE },
      route: { dst: podCIDR, gateway: gatewayAddr, dev: VTEP_DEVICE, onlink: true },
    });
  }
  return { peers, skipped };
}

// --- The kernel's view, as `ip -j` / `bridge -j` print it (only the fields we read). ---

/** An entry of `ip -j route show`. */
export interface IpRoute {
  /** "10.244.2.0/24", "10.0.0.5" (a /32), or "default". */
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
  flags?: string[];
}

/** An entry of `ip -j neigh show dev kemu.1`. */
export interface IpNeigh {
  dst: string;
  lladdr?: string;
  state?: string[];
}

/** An entry of `bridge -j fdb show dev kemu.1`. */
export interface BridgeFdb {
  mac: string;
  dst?: string;
  flags?: string[];
  state?: string;
}

export interface ActualState {
  routes: IpRoute[];
  /** Empty when kemu.1 does not exist. */
  neighs: IpNeigh[];
  /** Empty when kemu.1 does not exist. */
  fdb: BridgeFdb[];
}

export interface PlanOptions {
  clusterCidr: string;
  /** This node's podCIDR: its routes (the CNI bridge's) are never ours to delete. */
  podCIDR: string;
  underlayDevice: string;
}

function routeCidr(dst: string): string | undefined {
  if (dst === "default") return "0.0.0.0/0";
  try {
    return formatCidr(parseCidr(dst.includes("/") ? dst : `${dst}/32`));
  } catch {
    return undefined;
  }
}

/** Whether a kernel route is one this reconciler owns (and may delete when no peer wants it). */
export function ownsRoute(r: IpRoute, opts: PlanOptions): boolean {
  const dst = routeCidr(r.dst);
  if (!dst || dst.includes(":") || r.protocol === "kernel") return false;
  if (r.type && r.type !== "unicast") return false;
  if (!cidrContains(opts.clusterCidr, dst) || cidrOverlaps(dst, opts.podCIDR)) return false;
  return r.dev === VTEP_DEVICE || (r.dev === opts.underlayDevice && r.gateway !== undefined);
}

function routeMatches(actual: IpRoute, want: RouteRecord): boolean {
  return (
    actual.gateway === want.gateway &&
    actual.dev === want.dev &&
    (actual.flags ?? []).includes("onlink") === want.onlink &&
    (actual.type ?? "unicast") === "unicast"
  );
}

function routeLine(verb: "replace" | "del", r: { dst: string; gateway?: string; dev?: string }): string {
  const parts = ["route", verb, r.dst];
  if (r.gateway) parts.push("via", r.gateway);
  if (r.dev) parts.push("dev", r.dev);
  return parts.join(" ");
}

/**
 * The batch lines that take the kernel from `actual` to `desired`, in apply order:
 *   route del, neigh del (stale, ours), neigh replace, fdb del (stale), fdb replace, route replace.
 * Nothing is written for entries that already match, so a converged node yields [].
 */
export function planSync(desired: PeerRecords[], actual: ActualState, opts: PlanOptions): string[] {
  const routeDel: string[] = [];
  const neighDel: string[] = [];
  const neighSet: string[] = [];
  const fdbDel: string[] = [];
  const fdbSet: string[] = [];
  const routeSet: string[] = [];

  const routesByDst = new Map<string, IpRoute[]>();
  for (const r of actual.routes) {
    const dst = routeCidr(r.dst);
    if (!dst) continue;
    routesByDst.set(dst, [...(routesByDst.get(dst) ?? []), r]);
  }
  for (const p of desired) {
    const want = p.route;
    const c = parseCidr(want.dst);
    // Safety: the overlay never routes anything but peer pod ranges (no default route, ever).
    if (c.prefixLength === 0 || !cidrContains(opts.clusterCidr, want.dst)) {
      throw new Error(`refusing to route ${want.dst}: not a pod range inside ${opts.clusterCidr}`);
    }
    if (!(routesByDst.get(want.dst) ?? []).some((r) => routeMatches(r, want))) {
      routeSet.push(routeLine("replace", want) + (want.onlink ? " onlink" : ""));
    }
  }
  for (const r of actual.routes) {
    const dst = routeCidr(r.dst);
    if (!dst || !ownsRoute(r, opts)) continue;
    if (desired.some((p) => p.route.dst === dst && routeMatches(r, p.route))) continue;
    // Stale, or wrong for a wanted prefix (then the `route replace` below writes the right one).
    routeDel.push(routeLine("del", { dst, gateway: r.gateway, dev: r.dev }));
  }

  const wantedNeigh = new Map(desired.flatMap((p) => (p.neigh ? [[p.neigh.dst, p.neigh] as const] : [])));
  for (const n of actual.neighs) {
    const permanent = (n.state ?? []).includes("PERMANENT");
    const want = wantedNeigh.get(n.dst);
    if (!want && permanent) neighDel.push(`neigh del ${n.dst} dev ${VTEP_DEVICE}`);
  }
  for (const want of wantedNeigh.values()) {
    const ok = actual.neighs.some(
      (n) =>
        n.dst === want.dst &&
        (n.lladdr ?? "").toLowerCase() === want.lladdr &&
        (n.state ?? []).includes("PERMANENT"),
    );
    if (!ok) neighSet.push(`neigh replace ${want.dst} lladdr ${want.lladdr} dev ${want.dev} nud permanent`);
  }

  const wantedFdb = desired.flatMap((p) => (p.fdb ? [p.fdb] : []));
  const fdbKey = (mac: string, dst: string | undefined) => `${mac.toLowerCase()} ${dst ?? ""}`;
  const wantedFdbKeys = new Set(wantedFdb.map((f) => fdbKey(f.mac, f.dst)));
  const actualFdbKeys = new Set(actual.fdb.map((f) => fdbKey(f.mac, f.dst)));
  for (const f of actual.fdb) {
    if (wantedFdbKeys.has(fdbKey(f.mac, f.dst))) continue;
    fdbDel.push(`fdb del ${f.mac.toLowerCase()} dev ${VTEP_DEVICE}${f.dst ? ` dst ${f.dst}` : ""} self`);
  }
  for (const want of wantedFdb) {
    if (!actualFdbKeys.has(fdbKey(want.mac, want.dst))) {
      fdbSet.push(`fdb replace ${want.mac} dev ${want.dev} dst ${want.dst} self permanent`);
    }
  }

  return [...routeDel, ...neighDel, ...neighSet, ...fdbDel, ...fdbSet, ...routeSet];
}

/** Whether a batch line is a bridge(8) command rather than an ip(8) one. */
export function isBridgeLine(line: string): boolean {
  return line.startsWith("fdb ");
}

// --- Reusing an existing kemu.1. ---

/** An entry of `ip -j -d link show dev kemu.1`. */
export interface IpLinkDetail {
  ifname: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; link?: string; port?: number; learning?: boolean };
  };
}

export interface VtepWant {
  underlayIP: string;
  underlayDevice: string;
}

/**
 * Why an existing kemu.1 cannot be reused as this node's VTEP (flannel's check: VNI, local IP,
 * port, learning; plus device kind and underlay link), or undefined when it can. Anything else
 * (MTU, address, up) is fixed in place.
 */
export function vtepReuseProblem(link: IpLinkDetail | undefined, want: VtepWant): string | undefined {
  if (!link) return `${VTEP_DEVICE} does not exist`;
  const kind = link.linkinfo?.info_kind;
  if (kind !== "vxlan") return `${VTEP_DEVICE} is a ${kind ?? "plain"} device, not vxlan`;
  const d = link.linkinfo?.info_data ?? {};
  if (d.id !== VXLAN_VNI) return `VNI is ${d.id}, want ${VXLAN_VNI}`;
  if (d.local !== want.underlayIP) return `local IP is ${d.local ?? "unset"}, want ${want.underlayIP}`;
  if (d.port !== VXLAN_PORT) return `UDP port is ${d.port}, want ${VXLAN_PORT}`;
  if (d.learning !== false) return "learning is on, want nolearning";
  if (d.link !== undefined && d.link !== want.underlayDevice) {
    return `underlay device is ${d.link}, want ${want.underlayDevice}`;
  }
  return undefined;
}
