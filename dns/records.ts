// The cluster DNS zone as data: Services, EndpointSlices and Namespaces (plain JSON objects as the
// API returns them) turned into the records of the Kubernetes DNS-Based Service Discovery
// specification, schema 1.1.0, answered the way CoreDNS's kubernetes plugin answers them with its
// default configuration (`kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure }`, TTL 5).
//
// The index is incremental: each Service owns the names it publishes (its own, its endpoints',
// its SRV names, the PTRs of its addresses); a change to a Service or to one of its slices
// recomputes that Service's share alone, and a lookup is a few Map reads. Nothing here does I/O.
//
// Where CoreDNS answers NXDOMAIN for a name that has names below it, this index answers NODATA,
// as RFC 8020 requires of an empty non-terminal (a resolver that minimises query names would
// otherwise give up on the names below): `_tcp.<svc>.<ns>.svc.<zone>` above an SRV name,
// `dns.<zone>` above `ns.dns.<zone>`, `<b>.<a>.in-addr.arpa` above a PTR, and `dns-version.<zone>`
// for types other than TXT.

import { isIPv4, isIPv6 } from "node:net";
import type { Answer } from "dns-packet";
import { Address6 } from "ip-address";

export const SCHEMA_VERSION = "1.1.0";
/** CoreDNS's kubernetes plugin's default TTL. */
export const DEFAULT_TTL = 5;
/** CoreDNS answers the schema version with this TTL, whatever the plugin's. */
const VERSION_TTL = 28800;
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
const REVERSE_ZONES = ["in-addr.arpa", "ip6.arpa"] as const;
/** Longest CNAME chain followed inside the zone (CoreDNS stops after 8). */
const MAX_CNAME_CHAIN = 8;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

// Minimal views of the API objects: only the fields DNS reads.

export interface DnsService {
  metadata: { name?: string; namespace?: string };
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalName?: string;
    ports?: { name?: string; port: number; protocol?: string }[];
  };
}

export interface DnsEndpointSlice {
  metadata: { name?: string; namespace?: string; labels?: Record<string, string> };
  addressType?: string;
  endpoints?:
    | {
        addresses?: string[];
        conditions?: { ready?: boolean | null };
        hostname?: string;
      }[]
    | null;
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
}

export interface DnsNamespace {
  metadata: { name?: string };
}

export interface ZoneOptions {
  /** The cluster domain (default cluster.local). */
  zone?: string;
  /** TTL of every answer and of the SOA (default 5, as CoreDNS). */
  ttl?: number;
  /**
   * The server's own addresses: `ns.dns.<zone>` answers the ClusterIP of the Service whose
   * endpoints hold one of them (kube-dns), or these addresses when no Service does (CoreDNS).
   */
  localIPs?: string[];
  /** Clock for the SOA serial (seconds of the last change, as CoreDNS). */
  now?: () => number;
}

export interface LookupResult {
  rcode: number;
  /** Set on every answer from the zone (RFC 1035 AA); unset when `outOfZone`. */
  authoritative: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** The name is in none of the zones served: REFUSED, or forwarded when upstreams are set. */
  outOfZone?: boolean;
  /** The answer ends in a CNAME to this name outside the zone (ExternalName): resolve upstream. */
  chase?: string;
  /** A negative answer in a reverse zone, forwarded when upstreams are set (CoreDNS fallthrough). */
  fallthrough?: boolean;
}

type RRType = "A" | "AAAA" | "SRV" | "CNAME" | "TXT" | "PTR" | "NS" | "SOA";
interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}
type RData = string | SrvData | Buffer[];

/** One owner name's records. */
interface NameNode {
  rrsets: Map<RRType, RData[]>;
  /** Additional section of SRV answers: the targets' addresses. */
  extra?: Answer[];
}

/** Everything one Service publishes. */
interface Contribution {
  names: Map<string, NameNode>;
  /** Empty non-terminals below the Service's name. */
  ents: string[];
  /** Reverse names (`d.c.b.a.in-addr.arpa`) and their targets, by kind. */
  clusterPtrs: Map<string, string>;
  endpointPtrs: Map<string, string[]>;
}

interface ReadyEndpoint {
  ip: string;
  family: 4 | 6;
  /** endpoints[].hostname, or the address with dashes (CoreDNS's endpointHostname). */
  label: string;
  ports: { name: string; port: number; protocol: string }[];
}

function normalizeName(name: string): string {
  let n = name.toLowerCase();
  if (n.endsWith(".")) n = n.slice(0, -1);
  return n;
}

function ipFamily(ip: string): 4 | 6 | 0 {
  return isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : 0;
}

/** The address as CoreDNS prints it: dotted quad, or RFC 5952 text for IPv6. */
function canonicalIP(ip: string): string {
  return isIPv6(ip) ? new Address6(ip).correctForm() : ip;
}

/** `10.1.2.3` → `3.2.1.10.in-addr.arpa`; IPv6 → 32 nibbles under ip6.arpa. */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const hex = new Address6(ip).canonicalForm().replaceAll(":", "");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

/** CoreDNS's name for an endpoint without a hostname: its address with dashes. */
export function dashedIP(ip: string): string {
  return ip.replaceAll(isIPv4(ip) ? "." : ":", "-");
}

/** CoreDNS's `pods insecure` reading of `<label>.<ns>.pod.<zone>`. */
function podAddress(label: string): { ip: string; family: 4 | 6 } | undefined {
  const dashes = label.split("-").length - 1;
  if (dashes === 3 && !label.includes("--")) {
    const ip = label.replaceAll("-", ".");
    return isIPv4(ip) ? { ip, family: 4 } : undefined;
  }
  const ip = label.replaceAll("-", ":");
  return isIPv6(ip) ? { ip: canonicalIP(ip), family: 6 } : undefined;
}

function node(): NameNode {
  return { rrsets: new Map() };
}

function add(n: NameNode, type: RRType, data: RData): void {
  const list = n.rrsets.get(type);
  if (list) list.push(data);
  else n.rrsets.set(type, [data]);
}

/** CoreDNS's SRV weight for n records of one priority: floor(100 / n). */
function srvWeight(n: number): number {
  return Math.floor(100 / n);
}

function isHeadless(svc: DnsService): boolean {
  return svc.spec?.clusterIP === "None";
}

function readyEndpoints(slices: Iterable<DnsEndpointSlice>): ReadyEndpoint[] {
  const out: ReadyEndpoint[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    if (slice.addressType && slice.addressType !== "IPv4" && slice.addressType !== "IPv6") continue;
    const ports: ReadyEndpoint["ports"] = [];
    for (const p of slice.ports ?? []) {
      if (p.port == null) continue;
      ports.push({
        name: (p.name ?? "").toLowerCase(),
        port: p.port,
        protocol: (p.protocol ?? "TCP").toLowerCase(),
      });
    }
    for (const ep of slice.endpoints ?? []) {
      // A nil ready condition means ready (discovery/v1).
      if (ep.conditions?.ready === false) continue;
      for (const raw of ep.addresses ?? []) {
        const family = ipFamily(raw);
        if (!family) continue;
        const ip = canonicalIP(raw);
        const label = ep.hostname ? ep.hostname.toLowerCase() : dashedIP(ip);
        const key = `${label}/${ip}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ ip, family, label, ports });
      }
    }
  }
  return out;
}

function addressType(family: 4 | 6): "A" | "AAAA" {
  return family === 4 ? "A" : "AAAA";
}

/** The records one Service publishes, given its slices. Pure. */
export function serviceContribution(
  svc: DnsService,
  slices: Iterable<DnsEndpointSlice>,
  zone: string,
  ttl: number,
): Contribution {
  const c: Contribution = { names: new Map(), ents: [], clusterPtrs: new Map(), endpointPtrs: new Map() };
  const name = (svc.metadata.name ?? "").toLowerCase();
  const ns = (svc.metadata.namespace ?? "default").toLowerCase();
  const base = `${name}.${ns}.svc.${zone}`;
  const spec = svc.spec ?? {};

  if (spec.type === "ExternalName") {
    const target = spec.externalName ? normalizeName(spec.externalName) : "";
    // CoreDNS publishes the alias only for a name, never for an address.
    if (target && !ipFamily(target)) {
      const n = node();
      add(n, "CNAME", target);
      c.names.set(base, n);
    }
    return c;
  }

  const endpoints = readyEndpoints(slices);
  const endpointNames = new Map<string, NameNode>();
  for (const ep of endpoints) {
    const owner = `${ep.label}.${base}`;
    let n = endpointNames.get(owner);
    if (!n) {
      n = node();
      endpointNames.set(owner, n);
    }
    add(n, addressType(ep.family), ep.ip);
    const ptr = reverseName(ep.ip);
    const targets = c.endpointPtrs.get(ptr);
    if (!targets) c.endpointPtrs.set(ptr, [owner]);
    else if (!targets.includes(owner)) targets.push(owner);
  }
  const addressRR = (owner: string, ip: string, family: 4 | 6): Answer => ({
    name: owner,
    type: addressType(family),
    ttl,
    class: "IN",
    data: ip,
  });

  /** SRV records of one owner name, deduplicated by target and port as CoreDNS does. */
  const setSrv = (owner: string, records: { port: number; target: string; extra: Answer[] }[]) => {
    if (!records.length) return;
    const n = c.names.get(owner) ?? node();
    const weight = srvWeight(records.length);
    const seenSrv = new Set<string>();
    const seenExtra = new Set<string>();
    n.extra = [];
    for (const r of records) {
      const k = `${r.target}/${r.port}`;
      if (!seenSrv.has(k)) {
        seenSrv.add(k);
        add(n, "SRV", { priority: 0, weight, port: r.port, target: r.target });
      }
      for (const e of r.extra) {
        const ek = `${e.name}/${(e as { data: string }).data}`;
        if (seenExtra.has(ek)) continue;
        seenExtra.add(ek);
        n.extra.push(e);
      }
    }
    c.names.set(owner, n);
  };

  const srvByOwner = new Map<string, { port: number; target: string; extra: Answer[] }[]>();
  const pushSrv = (owner: string, rec: { port: number; target: string; extra: Answer[] }) => {
    const list = srvByOwner.get(owner);
    if (list) list.push(rec);
    else srvByOwner.set(owner, [rec]);
  };

  if (isHeadless(svc)) {
    // No ready endpoint: the name does not exist (spec 2.4.1, CoreDNS).
    if (!endpoints.length) return c;
    const n = node();
    const seen = new Set<string>();
    for (const ep of endpoints) {
      if (seen.has(ep.ip)) continue;
      seen.add(ep.ip);
      add(n, addressType(ep.family), ep.ip);
    }
    c.names.set(base, n);
    for (const ep of endpoints) {
      const target = `${ep.label}.${base}`;
      const extra = [addressRR(target, ep.ip, ep.family)];
      for (const p of ep.ports) {
        pushSrv(base, { port: p.port, target, extra });
        if (p.name) pushSrv(`_${p.name}._${p.protocol}.${base}`, { port: p.port, target, extra });
      }
    }
  } else {
    const ips = (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [])
      .filter((ip) => ipFamily(ip))
      .map(canonicalIP);
    const n = node();
    for (const ip of ips) {
      add(n, addressType(ipFamily(ip) as 4 | 6), ip);
      c.clusterPtrs.set(reverseName(ip), base);
    }
    c.names.set(base, n);
    const extra = ips.map((ip) => addressRR(base, ip, ipFamily(ip) as 4 | 6));
    // CoreDNS makes one record per port and ClusterIP (weights count them all), then drops the
    // duplicates: a dual-stack Service still has one SRV per port.
    for (const p of spec.ports ?? []) {
      const protocol = (p.protocol ?? "TCP").toLowerCase();
      for (let i = 0; i < ips.length; i++) {
        pushSrv(base, { port: p.port, target: base, extra });
        if (p.name)
          pushSrv(`_${p.name.toLowerCase()}._${protocol}.${base}`, { port: p.port, target: base, extra });
      }
    }
  }

  for (const [owner, n] of endpointNames) if (!c.names.has(owner)) c.names.set(owner, n);
  for (const [owner, records] of srvByOwner) {
    setSrv(owner, records);
    if (owner !== base) {
      const ent = owner.slice(owner.indexOf(".") + 1);
      if (!c.ents.includes(ent)) c.ents.push(ent);
    }
  }
  return c;
}

function answer(owner: string, type: RRType, ttl: number, data: RData): Answer {
  return { name: owner, type, ttl, class: "IN", data } as Answer;
}

/** Reference-counted set of names. */
class Counted {
  private readonly counts = new Map<string, number>();
  inc(k: string): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  dec(k: string): void {
    const v = (this.counts.get(k) ?? 0) - 1;
    if (v > 0) this.counts.set(k, v);
    else this.counts.delete(k);
  }
  has(k: string): boolean {
    return this.counts.has(k);
  }
}

/** The zone index: fed by informers, read by the server. */
export class ClusterZone {
  readonly zone: string;
  readonly ttl: number;
  /** Bumped on every change; the server's response cache is valid for one version. */
  version = 0;
  private serial: number;
  private readonly now: () => number;
  private readonly localIPs: string[];

  private readonly services = new Map<string, DnsService>();
  private readonly slices = new Map<string, DnsEndpointSlice>();
  /** Service key → its slices (by slice key), whether or not the Service exists yet. */
  private readonly slicesByService = new Map<string, Map<string, DnsEndpointSlice>>();
  private readonly sliceOwner = new Map<string, string>();
  private readonly namespaces = new Set<string>();
  private readonly contributions = new Map<string, Contribution>();

  private readonly names = new Map<string, NameNode>();
  private readonly ents = new Counted();
  /** Namespaces that exist: Namespace objects and namespaces holding Services. */
  private readonly nsRefs = new Counted();
  private readonly clusterPtrs = new Map<string, Map<string, string>>();
  private readonly endpointPtrs = new Map<string, Map<string, string[]>>();
  private readonly reverseEnts = new Counted();

  constructor(o: ZoneOptions = {}) {
    this.zone = normalizeName(o.zone ?? "cluster.local");
    this.ttl = o.ttl ?? DEFAULT_TTL;
    this.now = o.now ?? (() => Date.now());
    this.localIPs = (o.localIPs ?? []).filter((ip) => ipFamily(ip)).map(canonicalIP);
    this.serial = Math.floor(this.now() / 1000);
  }

  private changed(): void {
    this.version++;
    this.serial = Math.floor(this.now() / 1000);
  }

  /** Adds, replaces (obj) or removes (undefined) the Service stored under `key` (ns/name). */
  setService(key: string, svc: DnsService | undefined): void {
    const old = this.services.get(key);
    if (old) this.nsRefs.dec(old.metadata.namespace ?? "default");
    if (svc) {
      this.services.set(key, svc);
      this.nsRefs.inc(svc.metadata.namespace ?? "default");
    } else this.services.delete(key);
    this.rebuild(key);
    this.changed();
  }

  setEndpointSlice(key: string, slice: DnsEndpointSlice | undefined): void {
    const previousOwner = this.sliceOwner.get(key);
    const ns = slice?.metadata.namespace ?? key.split("/")[0];
    const service = slice?.metadata.labels?.[SERVICE_NAME_LABEL];
    const owner = slice && service ? `${ns}/${service}` : undefined;
    if (previousOwner && previousOwner !== owner) {
      this.slicesByService.get(previousOwner)?.delete(key);
      if (!this.slicesByService.get(previousOwner)?.size) this.slicesByService.delete(previousOwner);
      this.sliceOwner.delete(key);
      this.rebuild(previousOwner);
    }
    if (slice) this.slices.set(key, slice);
    else this.slices.delete(key);
    if (slice && owner) {
      let m = this.slicesByService.get(owner);
      if (!m) {
        m = new Map();
        this.slicesByService.set(owner, m);
      }
      m.set(key, slice);
      this.sliceOwner.set(key, owner);
      this.rebuild(owner);
    }
    this.changed();
  }

  setNamespace(name: string, ns: DnsNamespace | undefined): void {
    const had = this.namespaces.has(name);
    if (ns && !had) {
      this.namespaces.add(name);
      this.nsRefs.inc(name);
    } else if (!ns && had) {
      this.namespaces.delete(name);
      this.nsRefs.dec(name);
    }
    this.changed();
  }

  /** Recomputes what the Service under `key` publishes and swaps it in. */
  private rebuild(key: string): void {
    const old = this.contributions.get(key);
    if (old) this.withdraw(key, old);
    const svc = this.services.get(key);
    if (!svc) {
      this.contributions.delete(key);
      return;
    }
    const c = serviceContribution(svc, this.slicesByService.get(key)?.values() ?? [], this.zone, this.ttl);
    this.contributions.set(key, c);
    for (const [owner, n] of c.names) this.names.set(owner, n);
    for (const e of c.ents) this.ents.inc(e);
    for (const [rev, target] of c.clusterPtrs) {
      let m = this.clusterPtrs.get(rev);
      if (!m) {
        m = new Map();
        this.clusterPtrs.set(rev, m);
      }
      m.set(key, target);
      this.reverseAncestors(rev, 1);
    }
    for (const [rev, targets] of c.endpointPtrs) {
      let m = this.endpointPtrs.get(rev);
      if (!m) {
        m = new Map();
        this.endpointPtrs.set(rev, m);
      }
      m.set(key, targets);
      this.reverseAncestors(rev, 1);
    }
  }

  private withdraw(key: string, c: Contribution): void {
    for (const [owner, n] of c.names) if (this.names.get(owner) === n) this.names.delete(owner);
    for (const e of c.ents) this.ents.dec(e);
    for (const rev of c.clusterPtrs.keys()) {
      const m = this.clusterPtrs.get(rev);
      m?.delete(key);
      if (m && !m.size) this.clusterPtrs.delete(rev);
      this.reverseAncestors(rev, -1);
    }
    for (const rev of c.endpointPtrs.keys()) {
      const m = this.endpointPtrs.get(rev);
      m?.delete(key);
      if (m && !m.size) this.endpointPtrs.delete(rev);
      this.reverseAncestors(rev, -1);
    }
  }

  /** Counts the empty non-terminals between a PTR name and its reverse zone. */
  private reverseAncestors(rev: string, delta: 1 | -1): void {
    const apex = rev.endsWith(".in-addr.arpa") ? "in-addr.arpa" : "ip6.arpa";
    for (let i = rev.indexOf("."); i >= 0; i = rev.indexOf(".", i + 1)) {
      const parent = rev.slice(i + 1);
      if (parent === apex) break;
      if (delta > 0) this.reverseEnts.inc(parent);
      else this.reverseEnts.dec(parent);
    }
  }

  /** The zone `name` belongs to (normalized), or undefined when it is in none served here. */
  zoneOf(name: string): string | undefined {
    const n = normalizeName(name);
    if (n === this.zone || n.endsWith(`.${this.zone}`)) return this.zone;
    for (const z of REVERSE_ZONES) if (n === z || n.endsWith(`.${z}`)) return z;
    return undefined;
  }

  soa(zone: string): Answer {
    return {
      name: zone,
      type: "SOA",
      ttl: Math.min(this.ttl, 300),
      class: "IN",
      data: {
        mname: `ns.dns.${zone}`,
        rname: `hostmaster.${zone}`,
        serial: this.serial >>> 0,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.ttl,
      },
    };
  }

  /** Answers one question. `qname` is echoed as asked in owner names; matching ignores case. */
  lookup(qname: string, qtype: string): LookupResult {
    return this.resolve(qname, qtype, 0);
  }

  private resolve(qname: string, qtype: string, depth: number): LookupResult {
    const name = normalizeName(qname);
    const owner = qname.endsWith(".") ? qname.slice(0, -1) : qname;
    const zone = this.zoneOf(name);
    if (!zone)
      return {
        rcode: RCODE.REFUSED,
        authoritative: false,
        answers: [],
        authorities: [],
        additionals: [],
        outOfZone: true,
      };
    if (zone !== this.zone) return this.reverse(name, owner, qtype, zone);

    const positive = (answers: Answer[], additionals: Answer[] = []): LookupResult =>
      answers.length
        ? { rcode: RCODE.NOERROR, authoritative: true, answers, authorities: [], additionals }
        : this.negative(zone, RCODE.NOERROR);

    // The apex and the fixed names CoreDNS serves.
    if (name === zone) {
      if (qtype === "SOA") return positive([{ ...this.soa(zone), name: owner }]);
      if (qtype === "NS") {
        const ns = this.nameServers();
        const targets = [...new Set(ns.map((a) => a.name))];
        return positive(
          targets.map((t) => answer(owner, "NS", this.ttl, t)),
          ns,
        );
      }
      return this.negative(zone, RCODE.NOERROR);
    }
    if (name === `dns-version.${zone}`) {
      return qtype === "TXT" || qtype === "ANY"
        ? positive([answer(owner, "TXT", VERSION_TTL, [Buffer.from(SCHEMA_VERSION)])])
        : this.negative(zone, RCODE.NOERROR);
    }
    if (name === `ns.dns.${zone}`) {
      const addrs = this.nameServers();
      return positive(addrs.filter((a) => matches(qtype, a.type)).map((a) => ({ ...a, name: owner })));
    }
    if (name === `svc.${zone}` || name === `pod.${zone}` || name === `dns.${zone}`) {
      return this.negative(zone, RCODE.NOERROR);
    }

    const n = this.names.get(name);
    if (n) {
      const cname = n.rrsets.get("CNAME")?.[0] as string | undefined;
      if (cname !== undefined && qtype !== "CNAME") return this.alias(owner, cname, qtype, depth);
      const answers: Answer[] = [];
      for (const [type, list] of n.rrsets) {
        if (!matches(qtype, type)) continue;
        for (const d of list) answers.push(answer(owner, type, this.ttl, d));
      }
      return positive(answers, qtype === "SRV" || qtype === "ANY" ? (n.extra ?? []) : []);
    }
    if (this.ents.has(name)) return this.negative(zone, RCODE.NOERROR);

    // <ns>.svc.<zone>, <ns>.pod.<zone> and pod records: from the namespace.
    const labels = name.slice(0, name.length - zone.length - 1).split(".");
    const kind = labels[labels.length - 1];
    if (labels.length === 2 && (kind === "svc" || kind === "pod")) {
      return this.negative(zone, this.nsRefs.has(labels[0]) ? RCODE.NOERROR : RCODE.NXDOMAIN);
    }
    if (labels.length === 3 && kind === "pod" && this.nsRefs.has(labels[1])) {
      const pod = podAddress(labels[0]);
      if (pod) {
        const type = addressType(pod.family);
        return positive(matches(qtype, type) ? [answer(owner, type, this.ttl, pod.ip)] : []);
      }
    }
    return this.negative(zone, RCODE.NXDOMAIN);
  }

  /** An ExternalName alias: the CNAME, then the target's records when the zone holds them. */
  private alias(owner: string, target: string, qtype: string, depth: number): LookupResult {
    const cname = answer(owner, "CNAME", this.ttl, target);
    if (this.zoneOf(target) !== this.zone) {
      return {
        rcode: RCODE.NOERROR,
        authoritative: true,
        answers: [cname],
        authorities: [],
        additionals: [],
        chase: target,
      };
    }
    if (depth >= MAX_CNAME_CHAIN) {
      return {
        rcode: RCODE.NOERROR,
        authoritative: true,
        answers: [cname],
        authorities: [],
        additionals: [],
      };
    }
    const next = this.resolve(target, qtype, depth + 1);
    return { ...next, answers: [cname, ...next.answers] };
  }

  private reverse(name: string, owner: string, qtype: string, zone: string): LookupResult {
    const result = (answers: Answer[]): LookupResult =>
      answers.length
        ? { rcode: RCODE.NOERROR, authoritative: true, answers, authorities: [], additionals: [] }
        : this.negative(zone, RCODE.NOERROR);
    if (name === zone) return result(qtype === "SOA" ? [{ ...this.soa(zone), name: owner }] : []);
    // A Service's ClusterIP answers alone; otherwise every endpoint holding the address (CoreDNS).
    const cluster = this.clusterPtrs.get(name);
    const targets = cluster
      ? [[...cluster.values()][0]]
      : [...new Set([...(this.endpointPtrs.get(name)?.values() ?? [])].flat())];
    if (targets.length) {
      return result(matches(qtype, "PTR") ? targets.map((t) => answer(owner, "PTR", this.ttl, t)) : []);
    }
    if (this.reverseEnts.has(name)) return result([]);
    return { ...this.negative(zone, RCODE.NXDOMAIN), fallthrough: true };
  }

  private negative(zone: string, rcode: number): LookupResult {
    return { rcode, authoritative: true, answers: [], authorities: [this.soa(zone)], additionals: [] };
  }

  /** Address records of the name servers: kube-dns's ClusterIP when we are its endpoint. */
  private nameServers(): Answer[] {
    const out: Answer[] = [];
    for (const ip of this.localIPs) {
      for (const key of this.endpointPtrs.get(reverseName(ip))?.keys() ?? []) {
        const svc = this.services.get(key);
        if (!svc) continue;
        const base = `${(svc.metadata.name ?? "").toLowerCase()}.${(svc.metadata.namespace ?? "default").toLowerCase()}.svc.${this.zone}`;
        const own = this.names.get(base);
        if (isHeadless(svc)) {
          for (const t of this.endpointPtrs.get(reverseName(ip))?.get(key) ?? []) {
            out.push(answer(t, addressType(ipFamily(ip) as 4 | 6), this.ttl, ip));
          }
          continue;
        }
        for (const type of ["A", "AAAA"] as const) {
          for (const a of (own?.rrsets.get(type) as string[] | undefined) ?? []) {
            out.push(answer(base, type, this.ttl, a));
          }
        }
      }
    }
    if (out.length) return out;
    return this.localIPs.map((ip) =>
      answer(`ns.dns.${this.zone}`, addressType(ipFamily(ip) as 4 | 6), this.ttl, ip),
    );
  }
}

function matches(qtype: string, type: string): boolean {
  return qtype === type || qtype === "ANY";
}
