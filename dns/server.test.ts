// The DNS server against a real control plane started in-process, queried with Debian's dig over
// UDP and TCP: every record kind, NXDOMAIN/NODATA with the SOA, truncation and TCP fallback,
// several queries on one TCP connection, a new Service answering right after its creation,
// out-of-zone names refused (and forwarded only to a configured upstream), the probes' endpoints.

import { execFile } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, createNamespace, mergePatch, registerNode } from "../test/api/helpers.ts";
import { eventually, startTestCluster, type TestCluster } from "../test/harness.ts";
import { type DnsServer, startDnsServer } from "./server.ts";

const run = promisify(execFile);
const NS = "dnstest";
const Z = "cluster.local";
const SVCS = `/api/v1/namespaces/${NS}/services`;
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
const PODS = `/api/v1/namespaces/${NS}/pods`;

interface Dig {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  /** The transport of the answer dig printed (after any TCP retry). */
  transport: string;
  raw: string;
}

/** Runs dig against a server on 127.0.0.1 and parses what it prints. */
async function dig(port: number, ...args: string[]): Promise<Dig> {
  const { stdout } = await run("/usr/bin/dig", [
    "@127.0.0.1",
    "-p",
    String(port),
    "+time=2",
    "+tries=1",
    ...args,
  ]);
  const section = (title: string): string[] => {
    const lines = stdout.split("\n");
    const start = lines.findIndex((l) => l.startsWith(`;; ${title} SECTION:`));
    if (start < 0) return [];
    const out: string[] = [];
    for (const l of lines.slice(start + 1)) {
      if (!l.trim()) break;
      out.push(l.trim().split(/\s+/).join(" "));
    }
    return out;
  };
  return {
    status: /status: (\w+)/.exec(stdout)?.[1] ?? "",
    flags: (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? "").trim().split(" "),
    answer: section("ANSWER"),
    authority: section("AUTHORITY"),
    additional: section("ADDITIONAL"),
    transport: /;; SERVER: \S+ \(([A-Z]+)\)/.exec(stdout)?.[1] ?? "",
    raw: stdout,
  };
}

/** One query over UDP with dns-packet, for polling without starting a process each time. */
function query(port: number, name: string, type: "A" | "SRV" = "A"): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      reject(new Error("timeout"));
    }, 1000);
    s.on("message", (m) => {
      clearTimeout(timer);
      s.close();
      resolve(dnsPacket.decode(m));
    });
    s.send(
      dnsPacket.encode({
        id: 7,
        type: "query",
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ name, type }],
      }),
      port,
      "127.0.0.1",
    );
  });
}

/** A resolver on 127.0.0.1 (UDP and TCP, one port) answering every A with 192.0.2.53. */
async function fakeUpstream(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const answer = (msg: Buffer, transport: string): Buffer => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0];
    seen.push(`${transport} ${question.name} ${question.type}`);
    const answers: dnsPacket.Answer[] =
      question.type === "A"
        ? [{ name: question.name, type: "A", ttl: 60, class: "IN", data: "192.0.2.53" }]
        : question.type === "PTR"
          ? [{ name: question.name, type: "PTR", ttl: 60, class: "IN", data: "upstream.example" }]
          : [];
    return dnsPacket.encode({
      id: q.id,
      type: "response",
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers,
    });
  };
  const udp = dgram.createSocket("udp4");
  udp.on("message", (m, r) => udp.send(answer(m, "udp"), r.port, r.address));
  await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
  const port = udp.address().port;
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const out = answer(msg, "tcp");
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        sock.write(Buffer.concat([len, out]));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(port, "127.0.0.1", () => r()));
  return {
    port,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

describe("kemu dns server", () => {
  let c: TestCluster;
  let dns: DnsServer;
  let upstream: Awaited<ReturnType<typeof fakeUpstream>>;
  let forwarding: DnsServer;
  let webIP: string;

  beforeAll(async () => {
    c = await startTestCluster();
    await createNamespace(c, NS);
    const api = { url: c.server.url, token: c.server.token, ca: c.server.caPem };
    dns = await startDnsServer({ api, host: "127.0.0.1", port: 0, healthPort: 0, readyPort: 0 });
    upstream = await fakeUpstream();
    forwarding = await startDnsServer({
      api,
      host: "127.0.0.1",
      port: 0,
      healthPort: null,
      readyPort: null,
      upstreams: [{ host: "127.0.0.1", port: upstream.port }],
    });
    await Promise.all([dns.synced, forwarding.synced]);

    const web = await create(c, SVCS, {
      metadata: { name: "web" },
      spec: {
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: 8080 },
          { name: "syslog", port: 514, protocol: "UDP" },
        ],
      },
    });
    webIP = web.spec.clusterIP;
    await create(c, SVCS, { metadata: { name: "plain" }, spec: { ports: [{ port: 8443 }] } });
    await create(c, SVCS, {
      metadata: { name: "ext" },
      spec: { type: "ExternalName", externalName: "www.example.com" },
    });
    await create(c, SVCS, {
      metadata: { name: "big" },
      spec: { clusterIP: "None", ports: [{ name: "http", port: 80 }] },
    });
    await create(c, SLICES, {
      metadata: { name: "big-1", labels: { "kubernetes.io/service-name": "big" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: Array.from({ length: 40 }, (_, i) => ({
        addresses: [`10.245.0.${i + 1}`],
        conditions: { ready: true },
      })),
    });
    await create(c, SVCS, {
      metadata: { name: "lonely" },
      spec: { clusterIP: "None", selector: { app: "nobody" }, ports: [{ name: "http", port: 80 }] },
    });
    // A headless Service selecting a pod with hostname and subdomain, as a StatefulSet makes them;
    // the pod is reported running and ready the way a node agent reports it.
    await registerNode(c, "node-a");
    await create(c, SVCS, {
      metadata: { name: "pets" },
      spec: { clusterIP: "None", selector: { app: "pet" }, ports: [{ name: "peer", port: 7000 }] },
    });
    await create(c, PODS, {
      metadata: { name: "pet-0", labels: { app: "pet" } },
      spec: {
        hostname: "pet-0",
        subdomain: "pets",
        nodeName: "node-a",
        containers: [{ name: "app", image: "nginx", ports: [{ name: "peer", containerPort: 7000 }] }],
      },
    });
    await mergePatch(c, `${PODS}/pet-0/status`, {
      status: {
        phase: "Running",
        podIP: "10.244.0.77",
        podIPs: [{ ip: "10.244.0.77" }],
        conditions: [{ type: "Ready", status: "True", lastProbeTime: null }],
      },
    });
    await eventually(async () => (await query(dns.port, `pet-0.pets.${NS}.svc.${Z}`)).answers?.length === 1);
  });

  afterAll(async () => {
    await dns?.close();
    await forwarding?.close();
    await upstream?.close();
    await c?.close();
  });

  it("answers a ClusterIP Service's A over UDP and TCP, authoritative, TTL 5", async () => {
    for (const transport of ["+notcp", "+tcp"]) {
      const r = await dig(dns.port, `web.${NS}.svc.${Z}`, "A", transport);
      expect(r.status).toBe("NOERROR");
      expect(r.flags).toContain("aa");
      expect(r.answer).toEqual([`web.${NS}.svc.${Z}. 5 IN A ${webIP}`]);
      expect(r.transport).toBe(transport === "+tcp" ? "TCP" : "UDP");
    }
    const k = await dig(dns.port, `KUBERNETES.default.SVC.cluster.local`, "+short");
    expect(k.raw.trim()).toBe("10.96.0.1");
  });

  it('answers dns-version TXT "1.1.0"', async () => {
    const r = await dig(dns.port, `dns-version.${Z}`, "TXT");
    expect(r.answer).toEqual([`dns-version.${Z}. 28800 IN TXT "1.1.0"`]);
  });

  it("answers SRV for named ports with the Service as target and its address as additional data", async () => {
    const r = await dig(dns.port, `_http._tcp.web.${NS}.svc.${Z}`, "SRV");
    expect(r.answer).toEqual([`_http._tcp.web.${NS}.svc.${Z}. 5 IN SRV 0 100 80 web.${NS}.svc.${Z}.`]);
    expect(r.additional).toEqual([`web.${NS}.svc.${Z}. 5 IN A ${webIP}`]);
    expect((await dig(dns.port, `_syslog._udp.web.${NS}.svc.${Z}`, "SRV")).answer).toEqual([
      `_syslog._udp.web.${NS}.svc.${Z}. 5 IN SRV 0 100 514 web.${NS}.svc.${Z}.`,
    ]);
    expect((await dig(dns.port, `_syslog._tcp.web.${NS}.svc.${Z}`, "SRV")).status).toBe("NXDOMAIN");
    // An unnamed port has none; `_tcp` above the SRV name is an empty non-terminal.
    expect((await dig(dns.port, `_8443._tcp.plain.${NS}.svc.${Z}`, "SRV")).status).toBe("NXDOMAIN");
    const ent = await dig(dns.port, `_tcp.web.${NS}.svc.${Z}`, "SRV");
    expect([ent.status, ent.answer]).toEqual(["NOERROR", []]);
  });

  it("answers PTR for a ClusterIP", async () => {
    const r = await dig(dns.port, "-x", webIP);
    const rev = webIP.split(".").reverse().join(".");
    expect(r.answer).toEqual([`${rev}.in-addr.arpa. 5 IN PTR web.${NS}.svc.${Z}.`]);
  });

  it("answers a CNAME for an ExternalName Service, and nothing more without an upstream", async () => {
    const r = await dig(dns.port, `ext.${NS}.svc.${Z}`, "A");
    expect(r.status).toBe("NOERROR");
    expect(r.answer).toEqual([`ext.${NS}.svc.${Z}. 5 IN CNAME www.example.com.`]);
  });

  it("answers a headless Service's pods by hostname, SRV per endpoint and the pod's PTR", async () => {
    const a = await dig(dns.port, `pets.${NS}.svc.${Z}`);
    expect(a.answer).toEqual([`pets.${NS}.svc.${Z}. 5 IN A 10.244.0.77`]);
    expect((await dig(dns.port, `pet-0.pets.${NS}.svc.${Z}`)).answer).toEqual([
      `pet-0.pets.${NS}.svc.${Z}. 5 IN A 10.244.0.77`,
    ]);
    const srv = await dig(dns.port, `_peer._tcp.pets.${NS}.svc.${Z}`, "SRV");
    expect(srv.answer).toEqual([
      `_peer._tcp.pets.${NS}.svc.${Z}. 5 IN SRV 0 100 7000 pet-0.pets.${NS}.svc.${Z}.`,
    ]);
    expect(srv.additional).toEqual([`pet-0.pets.${NS}.svc.${Z}. 5 IN A 10.244.0.77`]);
    expect((await dig(dns.port, "-x", "10.244.0.77")).answer).toEqual([
      `77.0.244.10.in-addr.arpa. 5 IN PTR pet-0.pets.${NS}.svc.${Z}.`,
    ]);
  });

  it("names endpoints without a hostname by their dashed address", async () => {
    expect((await dig(dns.port, `10-245-0-7.big.${NS}.svc.${Z}`)).answer).toEqual([
      `10-245-0-7.big.${NS}.svc.${Z}. 5 IN A 10.245.0.7`,
    ]);
    expect((await dig(dns.port, "-x", "10.245.0.7")).answer).toEqual([
      `7.0.245.10.in-addr.arpa. 5 IN PTR 10-245-0-7.big.${NS}.svc.${Z}.`,
    ]);
  });

  it("answers NXDOMAIN for a headless Service without ready endpoints, with the SOA", async () => {
    const r = await dig(dns.port, `lonely.${NS}.svc.${Z}`);
    expect(r.status).toBe("NXDOMAIN");
    expect(r.authority).toHaveLength(1);
    expect(r.authority[0]).toMatch(
      new RegExp(`^${Z}\\. 5 IN SOA ns\\.dns\\.${Z}\\. hostmaster\\.${Z}\\. \\d+ 7200 1800 86400 5$`),
    );
  });

  it("answers pod A records for any dashed address in an existing namespace", async () => {
    expect((await dig(dns.port, `10-244-3-9.${NS}.pod.${Z}`)).answer).toEqual([
      `10-244-3-9.${NS}.pod.${Z}. 5 IN A 10.244.3.9`,
    ]);
    expect((await dig(dns.port, `10-244-3-9.nowhere.pod.${Z}`)).status).toBe("NXDOMAIN");
  });

  it("tells NXDOMAIN from NODATA, with the SOA in both", async () => {
    for (const [name, type, status] of [
      [`nope.${NS}.svc.${Z}`, "A", "NXDOMAIN"],
      [`web.nowhere.svc.${Z}`, "A", "NXDOMAIN"],
      [`web.${NS}.svc.${Z}`, "AAAA", "NOERROR"],
      [`web.${NS}.svc.${Z}`, "TXT", "NOERROR"],
      [`${NS}.svc.${Z}`, "A", "NOERROR"],
      [`svc.${Z}`, "A", "NOERROR"],
      [Z, "A", "NOERROR"],
    ]) {
      const r = await dig(dns.port, name, type);
      expect([name, type, r.status, r.answer.length, r.authority.length]).toEqual([name, type, status, 0, 1]);
      expect(r.authority[0]).toContain(" IN SOA ns.dns.cluster.local. hostmaster.cluster.local. ");
    }
  });

  it("truncates a UDP answer over 512 bytes (or the advertised EDNS size); dig retries over TCP", async () => {
    const name = `big.${NS}.svc.${Z}`;
    const plain = await dig(dns.port, name, "+notcp", "+noedns", "+ignore");
    expect(plain.flags).toContain("tc");
    expect(plain.answer.length).toBeGreaterThan(0);
    expect(plain.answer.length).toBeLessThan(40);
    expect(plain.transport).toBe("UDP");
    const edns = await dig(dns.port, name, "+notcp", "+bufsize=1232", "+ignore");
    expect(edns.flags).toContain("tc");
    const large = await dig(dns.port, name, "+notcp", "+bufsize=4096");
    expect([large.flags.includes("tc"), large.answer.length, large.transport]).toEqual([false, 40, "UDP"]);

    const retried = await dig(dns.port, name, "+notcp", "+noedns");
    expect(retried.raw).toContain(";; Truncated, retrying in TCP mode.");
    expect([retried.answer.length, retried.transport]).toEqual([40, "TCP"]);
    expect(new Set(retried.answer.map((l) => l.split(" ").pop())).size).toBe(40);

    const srv = await dig(dns.port, `_http._tcp.${name}`, "SRV", "+tcp");
    expect(srv.answer).toHaveLength(40);
    expect(srv.answer[0]).toBe(`_http._tcp.${name}. 5 IN SRV 0 2 8080 10-245-0-1.${name}.`);
    expect(srv.additional).toHaveLength(40);
  });

  it("answers several queries on one TCP connection", async () => {
    const names = [`web.${NS}.svc.${Z}`, `pets.${NS}.svc.${Z}`, `nope.${NS}.svc.${Z}`];
    const sock = net.connect({ host: "127.0.0.1", port: dns.port });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    // All three in one write: the server must split them by their length prefixes.
    sock.write(
      Buffer.concat(
        names.map((name, i) =>
          dnsPacket.streamEncode({ id: 100 + i, type: "query", questions: [{ name, type: "A" }] }),
        ),
      ),
    );
    const replies = await new Promise<dnsPacket.DecodedPacket[]>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const out: dnsPacket.DecodedPacket[] = [];
      sock.on("error", reject);
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length === names.length) resolve(out);
      });
    });
    sock.destroy();
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(100)?.answers?.map((a: any) => a.data)).toEqual([webIP]);
    expect(byId.get(101)?.answers?.map((a: any) => a.data)).toEqual(["10.244.0.77"]);
    expect((byId.get(102) as any)?.rcode).toBe("NXDOMAIN");
  });

  it("answers a new Service right after its creation", async () => {
    const name = `fresh.${NS}.svc.${Z}`;
    expect((await dig(dns.port, name)).status).toBe("NXDOMAIN");
    const t0 = performance.now();
    const svc = await create(c, SVCS, { metadata: { name: "fresh" }, spec: { ports: [{ port: 80 }] } });
    const created = performance.now();
    const answered: number = await eventually(
      async () => {
        const r = await query(dns.port, name);
        return r.answers?.length ? performance.now() : 0;
      },
      5000,
      2,
    );
    console.log(
      `new Service answered ${(answered - created).toFixed(1)} ms after its creation returned ` +
        `(${(answered - t0).toFixed(1)} ms after the request was sent)`,
    );
    expect((await dig(dns.port, name)).answer).toEqual([`${name}. 5 IN A ${svc.spec.clusterIP}`]);
  });

  it("refuses names outside the zone at once and forwards nothing without an upstream", async () => {
    const before = upstream.seen.length;
    for (const args of [["example.com"], ["example.com", "+tcp"], ["-x", "192.0.2.1"]]) {
      const r = await dig(dns.port, ...args);
      if (args[0] === "-x") {
        // Reverse names are the server's own zone: an unknown address is NXDOMAIN.
        expect(r.status).toBe("NXDOMAIN");
        expect(r.authority[0]).toContain(
          "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa.",
        );
      } else {
        expect([r.status, r.flags.includes("aa"), r.answer]).toEqual(["REFUSED", false, []]);
      }
    }
    expect(upstream.seen.length).toBe(before);
  });

  it("forwards names outside the zone to the configured upstream, over the client's transport", async () => {
    const udp = await dig(forwarding.port, "example.com");
    expect([udp.status, udp.answer]).toEqual(["NOERROR", ["example.com. 60 IN A 192.0.2.53"]]);
    const tcp = await dig(forwarding.port, "example.org", "+tcp");
    expect(tcp.answer).toEqual(["example.org. 60 IN A 192.0.2.53"]);
    expect(upstream.seen).toContain("udp example.com A");
    expect(upstream.seen).toContain("tcp example.org A");
    // Reverse names the cluster does not hold fall through to the upstream (CoreDNS's default).
    expect((await dig(forwarding.port, "-x", "192.0.2.1")).answer).toEqual([
      "1.2.0.192.in-addr.arpa. 60 IN PTR upstream.example.",
    ]);
    // An ExternalName's target is resolved upstream after the CNAME.
    expect((await dig(forwarding.port, `ext.${NS}.svc.${Z}`)).answer).toEqual([
      `ext.${NS}.svc.${Z}. 5 IN CNAME www.example.com.`,
      "www.example.com. 60 IN A 192.0.2.53",
    ]);
    // Cluster names are still answered by the server itself.
    const n = upstream.seen.length;
    expect((await dig(forwarding.port, `web.${NS}.svc.${Z}`)).answer).toEqual([
      `web.${NS}.svc.${Z}. 5 IN A ${webIP}`,
    ]);
    expect(upstream.seen.length).toBe(n);
  });

  it("serves /health and /ready like CoreDNS", async () => {
    const health = await fetch(`http://127.0.0.1:${dns.healthPort}/health`);
    expect([health.status, await health.text()]).toEqual([200, "OK"]);
    const ready = await fetch(`http://127.0.0.1:${dns.readyPort}/ready`);
    expect([ready.status, await ready.text()]).toEqual([200, "OK"]);
    expect((await fetch(`http://127.0.0.1:${dns.healthPort}/metrics`)).status).toBe(404);
  });

  it("answers SERVFAIL for the zone and is not ready until it has synced", async () => {
    // An API that cannot be reached: the lists never complete.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const unsynced = await startDnsServer({
      api: { url: `https://127.0.0.1:${port}`, token: "x", ca: c.server.caPem },
      host: "127.0.0.1",
      port: 0,
      healthPort: 0,
      readyPort: 0,
    });
    try {
      const r = await dig(unsynced.port, `web.${NS}.svc.${Z}`);
      expect([r.status, r.answer]).toEqual(["SERVFAIL", []]);
      expect((await dig(unsynced.port, "example.com")).status).toBe("REFUSED");
      expect((await fetch(`http://127.0.0.1:${unsynced.healthPort}/health`)).status).toBe(200);
      const ready = await fetch(`http://127.0.0.1:${unsynced.readyPort}/ready`);
      expect([ready.status, await ready.text()]).toEqual([503, "kubernetes"]);
    } finally {
      await unsynced.close();
    }
  });
});
