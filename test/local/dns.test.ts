// Cluster DNS end to end: real resolvers (dig, busybox nslookup and wget) inside pods, asking the
// kube-dns Service at 10.96.0.10, whose packets kube-proxy DNATs to the DNS pods.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../harness.ts";
import { clientPod, downAndCheck, type LocalCluster, netexecPod, upLocalCluster } from "./kit.ts";

const ZONE = "cluster.local";

const MANIFESTS = [
  netexecPod("web-0", "node-1"),
  `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web-0}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`,
  ...["db-0", "db-1"].map(
    (name) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: db}
spec:
  hostname: ${name}
  subdomain: db
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
`,
  ),
  `apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {name: http, port: 8080}
`,
  `apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: www.example.com
`,
  `apiVersion: v1
kind: Namespace
metadata: {name: other}
`,
  `apiVersion: v1
kind: Service
metadata: {name: api, namespace: other}
spec:
  ports:
  - {port: 443}
`,
  clientPod("client", "node-2"),
].join("---\n");

describe("cluster DNS", () => {
  let c: LocalCluster;
  let webIP: string;

  const dig = async (...args: string[]) =>
    (await c.k(["exec", "client", "--", "dig", "+time=2", "+tries=1", ...args])).trim();
  const short = (...args: string[]) => dig("+short", ...args);

  async function dnsReady(n: number): Promise<boolean> {
    const r = await c.kubectl([
      "get",
      "endpointslices",
      "-n",
      "kube-system",
      "-l",
      "kubernetes.io/service-name=kube-dns",
      "-o",
      "json",
    ]);
    if (r.code !== 0) return false;
    const ready = JSON.parse(r.stdout)
      .items.flatMap((s: any) => s.endpoints ?? [])
      .filter((e: any) => e.conditions?.ready);
    return ready.length >= n;
  }

  beforeAll(async () => {
    c = await upLocalCluster("td", ["--nodes", "2"]);
    await c.k(["apply", "-f", "-"], MANIFESTS);
    for (const p of ["web-0", "db-0", "db-1", "client"]) await c.waitPod(p);
    await eventually(() => dnsReady(2), 60_000, 250);
    webIP = JSON.parse(await c.k(["get", "svc", "web", "-o", "json"])).spec.clusterIP;
  }, 120_000);

  afterAll(async () => {
    await downAndCheck(c);
  }, 60_000);

  it("deploys kube-dns at the tenth service address and points ClusterFirst pods at it", async () => {
    const svc = JSON.parse(await c.k(["get", "svc", "kube-dns", "-n", "kube-system", "-o", "json"]));
    expect(svc.spec.clusterIP).toBe("10.96.0.10");
    expect(svc.spec.ports.map((p: any) => `${p.port}/${p.protocol}`).sort()).toEqual(["53/TCP", "53/UDP"]);
    const resolv = await c.k(["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    expect(resolv).toContain(`search default.svc.${ZONE} svc.${ZONE} ${ZONE}`);
    expect(resolv).toContain("nameserver 10.96.0.10");
    expect(resolv).toContain("options ndots:5");
  });

  it("answers A for ClusterIP Services, by FQDN and through the search path, across namespaces", async () => {
    expect(await short(`web.default.svc.${ZONE}`)).toBe(webIP);
    expect(await short("+search", "web")).toBe(webIP);
    const other = JSON.parse(await c.k(["get", "svc", "api", "-n", "other", "-o", "json"])).spec.clusterIP;
    expect(await short("+search", "api.other")).toBe(other);
    const lookup = await c.k(["exec", "client", "--", "nslookup", `web.default.svc.${ZONE}`]);
    expect(lookup).toContain(webIP);
    // A real client library resolving a short name: busybox wget through glibc's resolver.
    expect(await c.fetch("client", "http://web/hostname")).toBe("web-0");
  });

  it("answers a headless Service with each ready pod, and each pod by hostname.subdomain", async () => {
    const pods = await Promise.all(["db-0", "db-1"].map((p) => c.pod(p)));
    const ips = pods.map((p) => p.status.podIP).sort();
    // Readiness reaches DNS through the EndpointSlice and the server's watch: wait for it, then
    // compare (how fast it gets there is bench:dns's figure).
    const answer = async () => (await short(`db.default.svc.${ZONE}`)).split("\n").filter(Boolean).sort();
    await eventually(async () => (await answer()).length === ips.length, 10_000, 200);
    expect(await answer()).toEqual(ips);
    expect(await short(`db-0.db.default.svc.${ZONE}`)).toBe(pods[0].status.podIP);
    const hosts = await c.k(["exec", "db-1", "--", "cat", "/etc/hosts"]);
    expect(hosts).toContain(`${pods[1].status.podIP}\tdb-1.db.default.svc.${ZONE}\tdb-1`);
  });

  it("answers SRV for named ports, PTR, CNAME for ExternalName, pod records and dns-version", async () => {
    expect(await short("SRV", `_http._tcp.web.default.svc.${ZONE}`)).toMatch(
      new RegExp(`^0 \\d+ 80 web\\.default\\.svc\\.${ZONE.replace(".", "\\.")}\\.$`),
    );
    const srv = (await short("SRV", `_http._tcp.db.default.svc.${ZONE}`)).split("\n").sort();
    expect(srv.map((l) => l.split(" ").slice(2).join(" "))).toEqual([
      `8080 db-0.db.default.svc.${ZONE}.`,
      `8080 db-1.db.default.svc.${ZONE}.`,
    ]);
    expect(await short("-x", webIP)).toBe(`web.default.svc.${ZONE}.`);
    const cname = await dig(`ext.default.svc.${ZONE}`);
    expect(cname).toMatch(/IN\s+CNAME\s+www\.example\.com\./);
    const client = await c.pod("client");
    const dashed = client.status.podIP.replaceAll(".", "-");
    expect(await short(`${dashed}.default.pod.${ZONE}`)).toBe(client.status.podIP);
    expect(await short("TXT", `dns-version.${ZONE}`)).toBe('"1.1.0"');
  });

  it("tells NXDOMAIN from NODATA, with the zone's SOA, and never forwards other names", async () => {
    const missing = await dig(`missing.default.svc.${ZONE}`);
    expect(missing).toContain("status: NXDOMAIN");
    expect(missing).toMatch(/AUTHORITY SECTION:\n\S+\s+\d+\s+IN\s+SOA\s+ns\.dns\./);
    const nodata = await dig("AAAA", `web.default.svc.${ZONE}`);
    expect(nodata).toContain("status: NOERROR");
    expect(nodata).toContain("ANSWER: 0");
    const outside = await dig("www.example.com");
    expect(outside).not.toContain("status: NOERROR"); // answered at once, not forwarded
  });

  it("recovers when the DNS pod is killed: the Deployment replaces it", async () => {
    await c.k(["scale", "deployment", "coredns", "-n", "kube-system", "--replicas=1"]);
    await eventually(async () => {
      const pods = JSON.parse(
        await c.k(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"]),
      ).items;
      return pods.filter((p: any) => !p.metadata.deletionTimestamp).length === 1;
    }, 20_000);
    const [victim] = JSON.parse(
      await c.k(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"]),
    )
      .items.filter((p: any) => !p.metadata.deletionTimestamp)
      .map((p: any) => p.metadata.name);
    await c.k(["delete", "pod", "-n", "kube-system", victim, "--wait=false"]);
    // During the gap a lookup fails cleanly (refused or timed out) or is answered by the pod still
    // terminating; either way within its one-second timeout, never hanging or answering wrongly.
    const t0 = Date.now();
    const during = await c.kubectl([
      "exec",
      "client",
      "--",
      "dig",
      "+time=1",
      "+tries=1",
      "+short",
      `web.default.svc.${ZONE}`,
    ]);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(during.code === 0 ? during.stdout.trim() : "failed").toMatch(
      new RegExp(`^(${webIP.replaceAll(".", "\\.")}|failed)$`),
    );
    await eventually(
      async () => (await short(`web.default.svc.${ZONE}`).catch(() => "")) === webIP,
      60_000,
      500,
    );
    const pods = JSON.parse(
      await c.k(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"]),
    ).items;
    expect(pods.map((p: any) => p.metadata.name)).not.toContain(victim);
  });

  it("shows the query to 10.96.0.10 DNATed to the DNS pod on the node", async () => {
    const dnsPod = JSON.parse(
      await c.k(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"]),
    ).items.find((p: any) => p.status?.podIP && !p.metadata.deletionTimestamp);
    const client = await c.pod("client");
    const cap = c.background([
      "ip",
      "netns",
      "exec",
      `kemu-${c.name}-${client.spec.nodeName}`,
      "tcpdump",
      "-lni",
      "any",
      "udp port 53 and src host",
      client.status.podIP,
    ]);
    await new Promise((r) => setTimeout(r, 800));
    await short(`web.default.svc.${ZONE}`);
    await new Promise((r) => setTimeout(r, 300));
    const out = await cap.stop();
    expect(out).toContain(`${client.status.podIP}.`);
    expect(out).toContain("> 10.96.0.10.53:");
    expect(out).toContain(`> ${dnsPod.status.podIP}.53:`);
  });
});
