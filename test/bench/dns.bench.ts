// `npm run bench:dns`: cluster DNS figures on a 2-node local cluster. Prints them; never asserts.
//
// 1. Debian's dnsperf in a client pod's network namespace against kube-dns (10.96.0.10), over
//    the Service VIP and kube-proxy's DNAT, for cluster names: queries/s and latency p50/p99
// 2. a new Service: time from its creation (the API's answer) to the first A answer for it

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { percentile, printFigures, runCommand, sleep, upBenchCluster } from "./tools.ts";

const figures: [string, string][] = [];
/** The dns-packet module the poller child loads (it runs outside this file's module graph). */
const DNS_PACKET = createRequire(import.meta.url).resolve("dns-packet");

async function main(): Promise<void> {
  const cluster = await upBenchCluster("bdns", ["--nodes", "2"]);
  const { client, dataDir } = cluster;
  try {
    const services = 50;
    for (let i = 0; i < services; i++) {
      await client.request("POST", "/api/v1/namespaces/default/services", {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `svc-${i}` },
        spec: { ports: [{ name: "http", port: 80 }] },
      });
    }
    await client.request("POST", "/api/v1/namespaces/default/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "client" },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }],
      },
    });
    let pod: any;
    while (!pod?.status?.podIP) {
      await sleep(100);
      pod = await client.get("/api/v1/namespaces/default/pods/client");
    }
    const netns = cluster.podNetns(pod);
    // Both DNS pods Ready behind the Service.
    for (;;) {
      const slices = await client.get<{ items: any[] }>(
        "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns",
      );
      if (slices.items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready).length >= 2)
        break;
      await sleep(200);
    }
    const queries = join(dataDir, "dnsperf-queries");
    writeFileSync(
      queries,
      Array.from(
        { length: services },
        (_, i) => `svc-${i}.default.svc.cluster.local A\n_http._tcp.svc-${i}.default.svc.cluster.local SRV`,
      ).join("\n") + "\n",
    );
    // Flat out, then held at the 20000 queries/s to read the latency at that rate.
    for (const [label, extra] of [
      ["flat out", []],
      ["at 20000/s", ["-Q", "20000"]],
    ] as const) {
      const perf = await runCommand([
        "ip",
        "netns",
        "exec",
        netns,
        "dnsperf",
        "-s",
        "10.96.0.10",
        "-d",
        queries,
        "-l",
        "10",
        "-c",
        "8",
        "-T",
        "2",
        "-q",
        "64",
        "-v",
        ...extra,
      ]);
      const qps = /Queries per second:\s+([\d.]+)/.exec(perf.out)?.[1];
      const lost = /Queries lost:\s+(\d+)/.exec(perf.out)?.[1];
      const lat = perf.out
        .split("\n")
        .filter((l) => l.startsWith("> "))
        .map((l) => Number(l.trim().split(/\s+/).at(-1)) * 1000)
        .filter((n) => Number.isFinite(n))
        .sort((a, b) => a - b);
      figures.push([
        `dnsperf from a pod via 10.96.0.10, cluster names, ${label}`,
        qps
          ? `${Number(qps).toFixed(0)} queries/s, ${lost} lost, latency p50 ${percentile(lat, 50)?.toFixed(2)} ms, p99 ${percentile(lat, 99)?.toFixed(2)} ms`
          : `dnsperf failed: ${perf.out.slice(-400)}`,
      ]);
    }

    // A new Service, polled every 2 ms from the pod's namespace with a tiny UDP client.
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const svc = `fresh-${i}`;
      const poller =
        `const dgram=require("node:dgram");const p=require(${JSON.stringify(DNS_PACKET)});` +
        `const s=dgram.createSocket("udp4");const q=p.encode({type:"query",id:1,flags:p.RECURSION_DESIRED,questions:[{type:"A",name:"${svc}.default.svc.cluster.local"}]});` +
        `s.on("message",(m)=>{const r=p.decode(m);if(r.answers.length){console.log(Date.now());process.exit(0)}});` +
        `setInterval(()=>s.send(q,53,"10.96.0.10"),2);setTimeout(()=>process.exit(1),10000);`;
      const waiting = runCommand(["ip", "netns", "exec", netns, process.execPath, "-e", poller]);
      await sleep(300);
      await client.request("POST", "/api/v1/namespaces/default/services", {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: svc },
        spec: { ports: [{ port: 80 }] },
      });
      const created = Date.now();
      const r = await waiting;
      if (r.code === 0) delays.push(Number(r.out.trim()) - created);
    }
    delays.sort((a, b) => a - b);
    figures.push([
      "a new Service: creation -> first A answer (10 Services, polled every 2 ms)",
      delays.length
        ? `p50 ${percentile(delays, 50)} ms, max ${delays.at(-1)} ms (${delays.length}/10 answered)`
        : "never answered",
    ]);
  } finally {
    await cluster.down();
  }
  printFigures("kemu bench:dns", figures);
}

await main();
