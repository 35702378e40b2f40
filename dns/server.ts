// kemu's cluster DNS server: the workload behind the kube-dns Service. UDP and TCP on one port,
// answering from the in-memory zone (dns/records.ts) that list+watch of Namespaces, Services and
// EndpointSlices keeps current, with CoreDNS's health (/health on 8080) and readiness (/ready on
// 8181) endpoints for the pod's probes.
//
// - Before the first sync of all three lists, names in the zone answer SERVFAIL (CoreDNS does the
//   same while its caches are not synced) and /ready is 503.
// - A UDP answer larger than 512 bytes, or than the EDNS payload size the client advertises, is
//   cut to the answer records that fit with TC set, so the client retries over TCP; TCP carries
//   any number of length-prefixed queries per connection (RFC 7766).
// - Names outside the zone are answered at once with REFUSED: the server is authoritative for
//   the cluster zone and the reverse zones only, as a CoreDNS whose server block holds just those
//   zones, with no forward plugin, answers (CoreDNS's `.:53` block without `forward` would
//   answer SERVFAIL, "no next plugin found", which a client cannot tell from a broken server).
//   With upstreams, they are forwarded instead, and so are reverse names the zone does not hold
//   (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`) and ExternalName targets.
// - Answers from the zone are encoded once per (question, flags, EDNS, transport) and zone
//   version, and served from that cache with the client's ID until the next change.

import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import { networkInterfaces } from "node:os";
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet } from "dns-packet";
import { Address6 } from "ip-address";
import { ApiClient, type ApiClientOptions, Informer } from "../agent/api-client.ts";
import type { HostPort } from "./host-port.ts";
import { ClusterZone, type LookupResult, RCODE } from "./records.ts";

/** A resolver names outside the zone are forwarded to. */
export type Upstream = HostPort;

export interface DnsServerOptions {
  /** How to reach the API (or `client`, already built). */
  api?: ApiClientOptions;
  client?: ApiClient;
  /** Listen address for DNS (UDP and TCP) and the HTTP probes; default 0.0.0.0. */
  host?: string;
  /** DNS port (UDP and TCP); default 53, 0 picks a free one. */
  port?: number;
  /** The cluster domain; default cluster.local. */
  zone?: string;
  ttl?: number;
  /** Resolvers for names outside the zone; none by default (nothing is forwarded). */
  upstreams?: Upstream[];
  /** /health port (default 8080; 0 picks a free one; null: not served). */
  healthPort?: number | null;
  /** /ready port (default 8181; 0 picks a free one; null: not served). */
  readyPort?: number | null;
  /** The server's own addresses (for `ns.dns.<zone>`); default: this namespace's interfaces. */
  localIPs?: string[];
  /** How long one upstream gets to answer before the next is tried (default 2 s). */
  upstreamTimeoutMs?: number;
}

export interface DnsServer {
  readonly zone: ClusterZone;
  readonly host: string;
  readonly port: number;
  readonly healthPort?: number;
  readonly readyPort?: number;
  /** Resolves once Namespaces, Services and EndpointSlices have all been listed. */
  readonly synced: Promise<void>;
  isReady(): boolean;
  close(): Promise<void>;
}

/** The UDP payload size this server advertises in its EDNS answers (DNS flag day 2020). */
const EDNS_PAYLOAD = 1232;
const CLASSIC_UDP_LIMIT = 512;
const TCP_LIMIT = 65535;
const TCP_IDLE_MS = 10_000;
const CACHE_LIMIT = 20_000;
const FLAG_QR = 0x80; // high byte of the flags word
const PASSED_FLAGS = dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED;

/** Parses `IP`, `IP:PORT` or `[IPv6]:PORT`; the port defaults to `defaultPort`. */
function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal) out.push(a.address.split("%")[0]);
  }
  return out;
}

/** Forwards raw queries to upstream resolvers: one UDP socket per family, IDs remapped. */
class Forwarder {
  private readonly upstreams: Upstream[];
  private readonly timeoutMs: number;
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  private readonly pending = new Map<
    number,
    { upstream: Upstream; id: number; done: (r: Buffer | undefined) => void }
  >();
  private readonly tcpSockets = new Set<net.Socket>();

  constructor(upstreams: Upstream[], timeoutMs: number) {
    this.upstreams = upstreams;
    this.timeoutMs = timeoutMs;
  }

  get enabled(): boolean {
    return this.upstreams.length > 0;
  }

  /** The first answer an upstream gives, trying each in turn; undefined if none answers. */
  async forward(msg: Buffer, tcp: boolean): Promise<Buffer | undefined> {
    for (const u of this.upstreams) {
      const r = tcp ? await this.viaTcp(u, msg) : await this.viaUdp(u, msg);
      if (r) return r;
    }
    return undefined;
  }

  private socket(family: 4 | 6): dgram.Socket {
    let s = this.sockets.get(family);
    if (s) return s;
    s = dgram.createSocket(family === 4 ? "udp4" : "udp6");
    s.on("message", (resp, rinfo) => {
      if (resp.length < 12) return;
      const p = this.pending.get(resp.readUInt16BE(0));
      if (!p || p.upstream.port !== rinfo.port || !sameAddress(p.upstream.host, rinfo.address)) return;
      const out = Buffer.from(resp);
      out.writeUInt16BE(p.id, 0);
      p.done(out);
    });
    s.on("error", () => {});
    s.unref();
    this.sockets.set(family, s);
    return s;
  }

  private viaUdp(u: Upstream, msg: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      let key: number;
      do key = (Math.random() * 0x10000) | 0;
      while (this.pending.has(key));
      const out = Buffer.from(msg);
      out.writeUInt16BE(key, 0);
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      const finish = (r: Buffer | undefined) => {
        clearTimeout(timer);
        this.pending.delete(key);
        resolve(r);
      };
      this.pending.set(key, { upstream: u, id: msg.readUInt16BE(0), done: finish });
      this.socket(net.isIPv4(u.host) ? 4 : 6).send(out, u.port, u.host, (err) => {
        if (err) finish(undefined);
      });
    });
  }

  private viaTcp(u: Upstream, msg: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = net.connect({ host: u.host, port: u.port });
      this.tcpSockets.add(sock);
      let buf = Buffer.alloc(0);
      let settled = false;
      const finish = (r: Buffer | undefined) => {
        if (settled) return;
        settled = true;
        this.tcpSockets.delete(sock);
        sock.destroy();
        resolve(r);
      };
      sock.setTimeout(this.timeoutMs, () => finish(undefined));
      sock.on("error", () => finish(undefined));
      sock.on("close", () => finish(undefined));
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        sock.write(Buffer.concat([len, msg]));
      });
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          finish(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        }
      });
    });
  }

  close(): void {
    for (const p of [...this.pending.values()]) p.done(undefined);
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
    for (const s of this.tcpSockets) s.destroy();
  }
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  return (
    net.isIPv6(a) && net.isIPv6(b) && new Address6(a).canonicalForm() === new Address6(b).canonicalForm()
  );
}

/** Answers DNS messages from the zone; transport-independent. */
class Responder {
  readonly zone: ClusterZone;
  private readonly forwarder: Forwarder;
  private readonly isReady: () => boolean;
  private readonly cache = new Map<string, Buffer>();
  private cacheVersion = -1;

  constructor(zone: ClusterZone, forwarder: Forwarder, isReady: () => boolean) {
    this.zone = zone;
    this.forwarder = forwarder;
    this.isReady = isReady;
  }

  /** The answer to one message, or undefined when none is due (garbage, a response). */
  respond(msg: Buffer, tcp: boolean): Buffer | undefined | Promise<Buffer | undefined> {
    if (msg.length < 12 || msg[2] & FLAG_QR) return undefined;
    const ready = this.isReady();
    let key: string | undefined;
    if (ready) {
      if (this.cacheVersion !== this.zone.version) {
        this.cache.clear();
        this.cacheVersion = this.zone.version;
      }
      // Everything but the ID decides the answer.
      key = (tcp ? "t" : "u") + msg.toString("latin1", 2);
      const hit = this.cache.get(key);
      if (hit) {
        const out = Buffer.allocUnsafe(hit.length);
        hit.copy(out);
        out[0] = msg[0];
        out[1] = msg[1];
        return out;
      }
    }
    let req: DecodedPacket;
    try {
      req = dnsPacket.decode(msg);
    } catch {
      return dnsPacket.encode({ id: msg.readUInt16BE(0), type: "response", flags: RCODE.FORMERR });
    }
    const reply = (rcode: number, extra: Partial<Packet> = {}, ednsRcode = 0): Buffer =>
      this.encode(req, { rcode, authoritative: false, answers: [], authorities: [], additionals: [] }, tcp, {
        ...extra,
        ednsRcode,
      });
    if ((req as { opcode?: string }).opcode !== "QUERY") return reply(RCODE.NOTIMP, { questions: [] });
    if (req.questions?.length !== 1) return reply(RCODE.FORMERR, { questions: [] });
    const opt = req.additionals?.find((a): a is OptAnswer => a.type === "OPT");
    // EDNS version 0 only (RFC 6891): BADVERS (16) is extended RCODE 1.
    if (opt && opt.ednsVersion > 0) return reply(RCODE.NOERROR, {}, 1);
    const q = req.questions[0];
    const inZone = this.zone.zoneOf(q.name) !== undefined && q.class === "IN";
    if (!inZone) {
      if (this.forwarder.enabled) return this.forwarded(req, msg, tcp);
      const out = reply(RCODE.REFUSED);
      if (ready && key) this.store(key, out);
      return out;
    }
    if (!ready) return reply(RCODE.SERVFAIL);
    if (q.type === "AXFR" || q.type === "IXFR") return reply(RCODE.REFUSED);
    const result = this.zone.lookup(q.name, q.type);
    if (this.forwarder.enabled && (result.fallthrough || result.chase)) {
      return result.chase ? this.chased(req, result, tcp) : this.forwarded(req, msg, tcp);
    }
    const out = this.encode(req, result, tcp);
    if (key) this.store(key, out);
    return out;
  }

  private store(key: string, out: Buffer): void {
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, out);
  }

  private async forwarded(req: DecodedPacket, msg: Buffer, tcp: boolean): Promise<Buffer> {
    const r = await this.forwarder.forward(Buffer.from(msg), tcp);
    if (r) return r;
    return this.encode(
      req,
      { rcode: RCODE.SERVFAIL, authoritative: false, answers: [], authorities: [], additionals: [] },
      tcp,
    );
  }

  /** An ExternalName's CNAME, followed by what an upstream answers for its target. */
  private async chased(req: DecodedPacket, result: LookupResult, tcp: boolean): Promise<Buffer> {
    const q = req.questions![0];
    const query = dnsPacket.encode({
      id: 0,
      type: "query",
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: result.chase!, type: q.type, class: "IN" }],
    });
    let raw = await this.forwarder.forward(query, false);
    if (raw && dnsPacket.decode(raw).flag_tc) raw = await this.forwarder.forward(query, true);
    let merged = result;
    if (raw) {
      try {
        const up = dnsPacket.decode(raw);
        const rcode = RCODE[(up as { rcode?: string }).rcode as keyof typeof RCODE] ?? RCODE.NOERROR;
        merged = {
          ...result,
          rcode: rcode === RCODE.NXDOMAIN ? rcode : result.rcode,
          answers: [...result.answers, ...(up.answers ?? [])],
        };
      } catch {}
    }
    return this.encode(req, merged, tcp);
  }

  /** Encodes the answer to `req`, truncated to what the transport carries. */
  private encode(
    req: DecodedPacket,
    r: LookupResult,
    tcp: boolean,
    extra: Partial<Packet> & { ednsRcode?: number } = {},
  ): Buffer {
    const opt = req.additionals?.find((a): a is OptAnswer => a.type === "OPT");
    const limit = tcp ? TCP_LIMIT : opt ? Math.max(CLASSIC_UDP_LIMIT, opt.udpPayloadSize) : CLASSIC_UDP_LIMIT;
    const respOpt: Answer[] = opt
      ? [
          {
            name: ".",
            type: "OPT",
            udpPayloadSize: EDNS_PAYLOAD,
            extendedRcode: extra.ednsRcode ?? 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          } as OptAnswer,
        ]
      : [];
    const packet: Packet = {
      id: req.id,
      type: "response",
      flags:
        ((req.flags ?? 0) & PASSED_FLAGS) | (r.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | r.rcode,
      questions: extra.questions ?? req.questions,
      answers: r.answers,
      authorities: r.authorities,
      additionals: [...r.additionals, ...respOpt],
    };
    let len = dnsPacket.encodingLength(packet);
    if (len <= limit) return dnsPacket.encode(packet);
    // Additional records are optional (RFC 2181 §9): drop them before truncating.
    packet.additionals = respOpt;
    len = dnsPacket.encodingLength(packet);
    if (len <= limit) return dnsPacket.encode(packet);
    // Keep the answer records that fit, and say so (TC): the client asks again over TCP.
    packet.flags = (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
    packet.authorities = [];
    const all = r.answers;
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      packet.answers = all.slice(0, mid);
      if (dnsPacket.encodingLength(packet) <= limit) lo = mid;
      else hi = mid - 1;
    }
    packet.answers = all.slice(0, lo);
    return dnsPacket.encode(packet);
  }
}

async function bindDns(
  host: string,
  port: number,
  onUdp: (msg: Buffer, rinfo: dgram.RemoteInfo, udp: dgram.Socket) => void,
  onTcp: (sock: net.Socket) => void,
): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  // Port 0: the UDP socket picks the port and TCP takes the same one (retried if it is taken).
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
    udp.on("message", (m, r) => onUdp(m, r, udp));
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, host, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    udp.on("error", (e) => console.error(`kemu dns: udp: ${e.message}`));
    try {
      udp.setRecvBufferSize(4 << 20);
    } catch {}
    const bound = udp.address().port;
    const tcp = net.createServer(onTcp);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(bound, host, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
      return { udp, tcp, port: bound };
    } catch (e) {
      udp.close();
      if (port !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== "EADDRINUSE") throw e;
    }
  }
}

function listenHttp(host: string, port: number, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

export async function startDnsServer(o: DnsServerOptions): Promise<DnsServer> {
  const host = o.host ?? "0.0.0.0";
  const ownClient = !o.client;
  const client = o.client ?? new ApiClient(o.api!);
  const zone = new ClusterZone({ zone: o.zone, ttl: o.ttl, localIPs: o.localIPs ?? localAddresses() });
  let ready = false;
  const forwarder = new Forwarder(o.upstreams ?? [], o.upstreamTimeoutMs ?? 2000);
  const responder = new Responder(zone, forwarder, () => ready);
  const tcpSockets = new Set<net.Socket>();

  const onUdp = (msg: Buffer, rinfo: dgram.RemoteInfo, udp: dgram.Socket) => {
    const send = (out: Buffer | undefined) => {
      if (out) udp.send(out, rinfo.port, rinfo.address);
    };
    let r: ReturnType<Responder["respond"]>;
    try {
      r = responder.respond(msg, false);
    } catch (e) {
      console.error(`kemu dns: ${(e as Error).message}`);
      return;
    }
    if (r instanceof Promise) r.then(send, () => {});
    else send(r);
  };
  const onTcp = (sock: net.Socket) => {
    tcpSockets.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("close", () => tcpSockets.delete(sock));
    sock.on("error", () => {});
    let buf: Buffer = Buffer.alloc(0);
    const send = (out: Buffer | undefined) => {
      if (!out || sock.destroyed) return;
      const framed = Buffer.allocUnsafe(out.length + 2);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, 2);
      sock.write(framed);
    };
    sock.on("data", (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        let r: ReturnType<Responder["respond"]>;
        try {
          r = responder.respond(msg, true);
        } catch (e) {
          console.error(`kemu dns: ${(e as Error).message}`);
          continue;
        }
        if (r instanceof Promise) r.then(send, () => {});
        else send(r);
      }
    });
  };

  const { udp, tcp, port } = await bindDns(host, o.port ?? 53, onUdp, onTcp);
  const httpServers: http.Server[] = [];
  let healthPort: number | undefined;
  let readyPort: number | undefined;
  try {
    if (o.healthPort !== null) {
      const s = await listenHttp(host, o.healthPort ?? 8080, (req, res) => {
        if (new URL(req.url ?? "/", "http://x").pathname !== "/health") {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { "content-type": "text/plain" }).end("OK");
      });
      httpServers.push(s);
      healthPort = (s.address() as net.AddressInfo).port;
    }
    if (o.readyPort !== null) {
      const s = await listenHttp(host, o.readyPort ?? 8181, (req, res) => {
        if (new URL(req.url ?? "/", "http://x").pathname !== "/ready") {
          res.writeHead(404).end();
          return;
        }
        // CoreDNS's ready plugin names the plugins that are not ready yet.
        if (ready) res.writeHead(200, { "content-type": "text/plain" }).end("OK");
        else res.writeHead(503, { "content-type": "text/plain" }).end("kubernetes");
      });
      httpServers.push(s);
      readyPort = (s.address() as net.AddressInfo).port;
    }
  } catch (e) {
    udp.close();
    tcp.close();
    for (const s of httpServers) s.close();
    throw e;
  }

  const informers = [
    new Informer(client, "/api/v1/namespaces", "", (key, obj) => zone.setNamespace(key, obj)),
    new Informer(client, "/api/v1/services", "", (key, obj) => zone.setService(key, obj)),
    new Informer(client, "/apis/discovery.k8s.io/v1/endpointslices", "", (key, obj) =>
      zone.setEndpointSlice(key, obj),
    ),
  ];
  for (const i of informers) i.start();
  const synced = Promise.all(informers.map((i) => i.hasSynced())).then(() => {
    ready = true;
  });

  let closed = false;
  return {
    zone,
    host,
    port,
    healthPort,
    readyPort,
    synced,
    isReady: () => ready,
    async close() {
      if (closed) return;
      closed = true;
      for (const i of informers) i.stop();
      forwarder.close();
      for (const s of tcpSockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
        ...httpServers.map(
          (s) =>
            new Promise<void>((r) => {
              s.closeAllConnections();
              s.close(() => r());
            }),
        ),
      ]);
      if (ownClient) client.close();
    },
  };
}
