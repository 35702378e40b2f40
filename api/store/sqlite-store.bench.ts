// Micro-benchmark of SqliteStore: sequential writes and list latency with 10000 pods.
// Run: ./node_modules/.bin/node --expose-gc api/store/sqlite-store.bench.ts [count]   (prints figures only)

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KubeObject } from "../../emulator/types.ts";
import { SqliteStore } from "./sqlite-store.ts";

const N = Number(process.argv[2] ?? 10_000);

if (process.argv[2] === "--open") {
  // Child mode: the memory of a freshly started server holding the database's objects.
  const t0 = process.hrtime.bigint();
  const store = SqliteStore.open(process.argv[3]);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const t1 = process.hrtime.bigint();
  const n = (await store.list("/core/pods/")).items.length;
  const listMs = Number(process.hrtime.bigint() - t1) / 1e6;
  global.gc?.();
  const m = process.memoryUsage();
  console.log(
    `fresh process: open ${n} pods + ${store.revision() - store.oldestRevision() + 1} retained changes in ` +
      `${loadMs.toFixed(0)} ms, first (cold) list ${listMs.toFixed(2)} ms, ` +
      `rss ${(m.rss / 1048576).toFixed(0)} MB, heap used ${(m.heapUsed / 1048576).toFixed(0)} MB`,
  );
  store.close();
  process.exit(0);
}

function pod(name: string, namespace: string): KubeObject {
  // Roughly the size of a pod the API server stores after scheduling (~1.5 KB of JSON).
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      uid: crypto.randomUUID(),
      creationTimestamp: new Date().toISOString(),
      labels: { app: "bench", "pod-template-hash": "5d4f8b7c9d" },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "bench-5d4f8b7c9d",
          uid: "3f1f6f0e-8a0c-4a57-9a4e-2b1f3c4d5e6f",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName: `node-${name.length % 10}`,
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: "default",
      schedulerName: "default-scheduler",
      containers: [
        {
          name: "app",
          image: "registry.k8s.io/pause:3.10",
          ports: [{ containerPort: 8080, protocol: "TCP" }],
          resources: { requests: { cpu: "10m", memory: "16Mi" } },
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
          imagePullPolicy: "IfNotPresent",
        },
      ],
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ],
    },
    status: {
      phase: "Running",
      podIP: "10.244.1.17",
      podIPs: [{ ip: "10.244.1.17" }],
      hostIP: "172.18.0.3",
      startTime: new Date().toISOString(),
      conditions: [
        { type: "Initialized", status: "True", lastTransitionTime: new Date().toISOString() },
        { type: "Ready", status: "True", lastTransitionTime: new Date().toISOString() },
        { type: "ContainersReady", status: "True", lastTransitionTime: new Date().toISOString() },
        { type: "PodScheduled", status: "True", lastTransitionTime: new Date().toISOString() },
      ],
    },
  };
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kemu-store-bench-"));
const file = path.join(dir, "kemu.db");
try {
  const store = SqliteStore.open(file);
  const pods: KubeObject[] = [];
  for (let i = 0; i < N; i++)
    pods.push(pod(`bench-5d4f8b7c9d-${Math.random().toString(36).slice(2, 7)}${i}`, "default"));
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, pod JSON ~${JSON.stringify(pods[0]).length} bytes`,
  );

  let t0 = process.hrtime.bigint();
  for (const p of pods) await store.create(`/core/pods/default/${p.metadata.name}`, p);
  let t = ms(t0);
  console.log(`create: ${N} sequential in ${t.toFixed(0)} ms = ${((N / t) * 1000).toFixed(0)} writes/s`);

  // Other namespaces, created with the sorted list cache already built (incremental inserts).
  await store.list("/core/pods/");
  t0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++)
    await store.create(`/core/pods/kube-system/p-${i}`, pod(`p-${i}`, "kube-system"));
  t = ms(t0);
  console.log(
    `create: 1000 more with the list cache built in ${t.toFixed(0)} ms = ${((1000 / t) * 1000).toFixed(0)} writes/s`,
  );

  const current = (await store.list("/core/pods/default/")).items;
  t0 = process.hrtime.bigint();
  for (const s of current) {
    await store.update(
      s.key,
      { ...s.object, status: { ...s.object.status, phase: "Succeeded" } },
      s.revision,
    );
  }
  t = ms(t0);
  console.log(
    `update: ${current.length} sequential in ${t.toFixed(0)} ms = ${((current.length / t) * 1000).toFixed(0)} writes/s`,
  );

  for (const [label, prefix] of [
    ["all pods (11000)", "/core/pods/"],
    ["namespace default (10000)", "/core/pods/default/"],
    ["namespace kube-system (1000)", "/core/pods/kube-system/"],
  ] as const) {
    const times: number[] = [];
    const bodyTimes: number[] = [];
    let count = 0;
    for (let r = 0; r < 20; r++) {
      t0 = process.hrtime.bigint();
      const { items } = await store.list(prefix);
      times.push(ms(t0));
      count = items.length;
      // What a handler does next with the cached JSON: concatenate it into a response body.
      t0 = process.hrtime.bigint();
      let body = `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[`;
      for (let i = 0; i < items.length; i++) body += (i ? "," : "") + items[i].json;
      body += "]}";
      Buffer.byteLength(body);
      bodyTimes.push(ms(t0));
    }
    console.log(
      `list ${label}: ${count} items, median ${median(times).toFixed(2)} ms (max ${Math.max(...times).toFixed(2)} ms); ` +
        `+ building the JSON body ${median(bodyTimes).toFixed(1)} ms`,
    );
  }

  store.close();
  process.stdout.write(
    execFileSync(process.execPath, ["--expose-gc", import.meta.filename, "--open", file], {
      encoding: "utf8",
    }),
  );

  const again = SqliteStore.open(file);
  const t0r = process.hrtime.bigint();
  let replayed = 0;
  const stop = again.watch("/core/pods/", again.oldestRevision() - 1, () => {
    replayed++;
  });
  stop();
  console.log(`watch replay of the whole retained log: ${replayed} events in ${ms(t0r).toFixed(0)} ms`);
  again.close();
  console.log(`database size: ${mb(fs.statSync(file).size)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
