import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeObject } from "../../emulator/types.ts";
import { SqliteStore } from "./sqlite-store.ts";
import { StoreError, type StoreEvent } from "./store.ts";

const dirs: string[] = [];
const stores: SqliteStore[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kemu-store-"));
  dirs.push(dir);
  return dir;
}

function open(file: string, opts?: { retainChanges?: number }): SqliteStore {
  const store = SqliteStore.open(file, opts);
  stores.push(store);
  return store;
}

function freshStore(opts?: { retainChanges?: number }): { store: SqliteStore; file: string } {
  const file = path.join(tempDir(), "kemu.db");
  return { store: open(file, opts), file };
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function pod(name: string, namespace = "default", labels?: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { containers: [{ name: "c", image: "busybox" }] },
  };
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return e as StoreError;
  }
  throw new Error("expected a StoreError");
}

describe("SqliteStore", () => {
  it("bumps one global revision across keys and stores it as resourceVersion", async () => {
    const { store } = freshStore();
    expect(store.revision()).toBe(0);
    expect(store.oldestRevision()).toBe(1);
    const input = pod("a");
    const a = await store.create("/core/pods/default/a", input);
    const b = await store.create("/core/configmaps/default/b", { metadata: { name: "b" }, data: { x: "1" } });
    const a2 = await store.update("/core/pods/default/a", { ...a.object, status: { phase: "Running" } });
    expect([a.revision, b.revision, a2.revision]).toEqual([1, 2, 3]);
    expect(store.revision()).toBe(3);
    expect(a.object.metadata.resourceVersion).toBe("1");
    expect(a2.object.metadata.resourceVersion).toBe("3");
    expect(JSON.parse(a2.json)).toEqual(a2.object);
    // The caller's object is not mutated.
    expect(input.metadata.resourceVersion).toBeUndefined();
    expect((await store.get("/core/pods/default/a"))?.object.status).toEqual({ phase: "Running" });
    expect(await store.get("/core/pods/default/missing")).toBeUndefined();

    const d = await store.delete("/core/configmaps/default/b");
    expect(d.revision).toBe(4);
    expect(d.object.metadata.resourceVersion).toBe("4");
    expect(d.object.data).toEqual({ x: "1" });
    expect(await store.get("/core/configmaps/default/b")).toBeUndefined();
  });

  it("reports exists, not-found and conflict", async () => {
    const { store } = freshStore();
    const a = await store.create("/core/pods/default/a", pod("a"));
    expect((await storeError(store.create("/core/pods/default/a", pod("a")))).code).toBe("exists");
    expect((await storeError(store.update("/core/pods/default/x", pod("x")))).code).toBe("not-found");
    expect((await storeError(store.delete("/core/pods/default/x"))).code).toBe("not-found");
    await store.update("/core/pods/default/a", pod("a"), a.revision);
    expect((await storeError(store.update("/core/pods/default/a", pod("a"), a.revision))).code).toBe(
      "conflict",
    );
    expect((await storeError(store.delete("/core/pods/default/a", a.revision))).code).toBe("conflict");
    // Failed writes consume no revision.
    expect(store.revision()).toBe(2);
    await store.delete("/core/pods/default/a", 2);
    expect(store.revision()).toBe(3);
  });

  it("lists by prefix, sorted, without leaking sibling prefixes", async () => {
    const { store } = freshStore();
    const keys = [
      "/core/pods/default/b",
      "/core/pods/def/z",
      "/core/pods/default/a",
      "/core/pods/default-x/a",
      "/core/pods/kube-system/c",
      "/core/podsx/default/a",
      "/core/nodes/n1",
      "/apps/deployments/default/d",
    ];
    for (const k of keys) await store.create(k, pod(k.split("/").pop()!));
    const ls = async (prefix: string) => (await store.list(prefix)).items.map((i) => i.key);
    expect(await ls("/core/pods/default/")).toEqual(["/core/pods/default/a", "/core/pods/default/b"]);
    expect(await ls("/core/pods/def/")).toEqual(["/core/pods/def/z"]);
    expect(await ls("/core/pods/")).toEqual([
      "/core/pods/def/z",
      "/core/pods/default-x/a",
      "/core/pods/default/a",
      "/core/pods/default/b",
      "/core/pods/kube-system/c",
    ]);
    expect(await ls("/core/nodes/")).toEqual(["/core/nodes/n1"]);
    expect(await ls("/core/")).toEqual([...keys.filter((k) => k.startsWith("/core/"))].sort());
    expect(await ls("/")).toEqual([...keys].sort());
    expect(await ls("/core/services/")).toEqual([]);
    expect(await ls("/core/pods/nothing/")).toEqual([]);

    // The sorted cache follows creates, updates and deletes.
    await store.create("/core/pods/default/0", pod("0"));
    await store.update("/core/pods/default/b", { ...pod("b"), status: { phase: "Running" } });
    await store.delete("/core/pods/default/a");
    const list = await store.list("/core/pods/default/");
    expect(list.items.map((i) => i.key)).toEqual(["/core/pods/default/0", "/core/pods/default/b"]);
    expect(list.items[1].object.status).toEqual({ phase: "Running" });
    expect(list.revision).toBe(store.revision());
    await store.delete("/core/nodes/n1");
    expect(await ls("/core/nodes/")).toEqual([]);
    // Mutating a returned array does not corrupt the cache.
    list.items.length = 0;
    expect(await ls("/core/pods/default/")).toEqual(["/core/pods/default/0", "/core/pods/default/b"]);
  });

  it("lists many objects in key order", async () => {
    const { store } = freshStore();
    const names: string[] = [];
    for (let i = 0; i < 2000; i++) names.push(`p-${(i * 7919) % 2000}`);
    for (const [i, n] of names.entries()) {
      await store.create(`/core/pods/${i % 2 ? "default" : "other"}/${n}`, pod(n));
      if (i === 1000) await store.list("/core/pods/"); // build the cache mid-way
    }
    const all = (await store.list("/core/pods/")).items.map((i) => i.key);
    expect(all).toHaveLength(2000);
    expect(all).toEqual([...all].sort());
    const def = (await store.list("/core/pods/default/")).items;
    expect(def).toHaveLength(1000);
    expect(def.every((i) => i.key.startsWith("/core/pods/default/"))).toBe(true);
  });

  it("replays a watch from a revision, then delivers live events", async () => {
    const { store } = freshStore();
    await store.create("/core/pods/default/a", pod("a")); // 1
    await store.create("/core/pods/other/b", pod("b")); // 2
    const a3 = await store.update("/core/pods/default/a", pod("a", "default", { x: "y" })); // 3
    await store.create("/core/configmaps/default/c", { metadata: { name: "c" } }); // 4

    const events: StoreEvent[] = [];
    const stop = store.watch("/core/pods/default/", 1, (e) => events.push(e));
    expect(events.map((e) => [e.type, e.key, e.revision])).toEqual([["MODIFIED", "/core/pods/default/a", 3]]);
    expect(events[0].prev?.metadata.resourceVersion).toBe("1");
    expect(events[0].object).toEqual(a3.object);

    await store.create("/core/pods/default/d", pod("d")); // 5
    await store.create("/core/pods/other/e", pod("e")); // 6
    await store.delete("/core/pods/default/a"); // 7
    expect(events.map((e) => [e.type, e.key, e.revision])).toEqual([
      ["MODIFIED", "/core/pods/default/a", 3],
      ["ADDED", "/core/pods/default/d", 5],
      ["DELETED", "/core/pods/default/a", 7],
    ]);
    const del = events[2];
    expect(del.object.metadata.resourceVersion).toBe("7");
    expect(del.object.metadata.labels).toEqual({ x: "y" });
    expect(JSON.parse(del.json)).toEqual(del.object);
    expect(del.prev?.metadata.resourceVersion).toBe("3");

    stop();
    await store.create("/core/pods/default/f", pod("f"));
    expect(events).toHaveLength(3);

    // From the current revision: nothing replayed.
    const live: StoreEvent[] = [];
    store.watch("/", store.revision(), (e) => live.push(e));
    expect(live).toEqual([]);
  });

  it("isolates throwing watchers and keeps revision order for writes made in callbacks", async () => {
    const { store } = freshStore();
    const seen: number[] = [];
    const errors = console.error;
    console.error = () => {};
    try {
      store.watch("/", 0, () => {
        throw new Error("boom");
      });
      store.watch("/core/pods/", 0, (e) => {
        if (e.type === "ADDED" && e.key.endsWith("/a")) void store.create("/core/pods/default/b", pod("b"));
      });
      store.watch("/", 0, (e) => seen.push(e.revision));
      const a = await store.create("/core/pods/default/a", pod("a"));
      expect(a.revision).toBe(1);
      // The write made from the callback commits with the next group commit.
      await new Promise((r) => setImmediate(r));
      expect(seen).toEqual([1, 2]);
      // A watch started from inside a callback gets every event exactly once.
      const nested: number[] = [];
      store.watch("/core/pods/", store.revision(), (e) => {
        if (e.revision === 3) store.watch("/", 2, (n) => nested.push(n.revision));
      });
      await store.create("/core/pods/default/c", pod("c"));
      await store.create("/core/pods/default/d", pod("d"));
      expect(nested).toEqual([3, 4]);
      expect(seen).toEqual([1, 2, 3, 4]);
    } finally {
      console.error = errors;
    }
  });

  it("fails a watch with gone once its changes were compacted", async () => {
    const { store } = freshStore({ retainChanges: 5 });
    for (let i = 1; i <= 20; i++) await store.create(`/core/pods/default/p${i}`, pod(`p${i}`));
    expect(store.oldestRevision()).toBeGreaterThan(2);
    expect(store.oldestRevision()).toBeLessThanOrEqual(16);
    let err: unknown;
    try {
      store.watch("/core/pods/", 1, () => {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("gone");
    expect((err as StoreError).message).toBe(`too old resource version: 1 (${store.oldestRevision() - 1})`);

    // Resuming from just before the oldest retained change still works.
    const events: number[] = [];
    store.watch("/core/pods/", store.oldestRevision() - 1, (e) => events.push(e.revision));
    expect(events[0]).toBe(store.oldestRevision());
    expect(events.at(-1)).toBe(20);

    store.compact();
    expect(store.oldestRevision()).toBe(16);
    expect(() => store.watch("/", 14, () => {})).toThrow("too old resource version: 14 (15)");
    // Compaction does not drop objects.
    expect((await store.list("/core/pods/")).items).toHaveLength(20);
  });

  it("restores objects, revision and change log after reopening", async () => {
    const { store, file } = freshStore({ retainChanges: 100 });
    await store.create("/core/pods/default/a", pod("a")); // 1
    await store.create("/core/pods/default/b", pod("b", "default", { app: "x" })); // 2
    await store.update("/core/pods/default/b", pod("b", "default", { app: "y" })); // 3
    await store.create("/core/pods/default/z", pod("z")); // 4
    await store.delete("/core/pods/default/z"); // 5: deleting the highest key
    const before = (await store.list("/")).items;
    store.close();

    const again = open(file, { retainChanges: 100 });
    expect(again.revision()).toBe(5);
    expect(again.oldestRevision()).toBe(1);
    const after = (await again.list("/")).items;
    expect(after.map((i) => [i.key, i.revision, i.json])).toEqual(
      before.map((i) => [i.key, i.revision, i.json]),
    );
    expect(after.map((i) => i.object)).toEqual(before.map((i) => i.object));
    expect((await again.get("/core/pods/default/b"))?.object.metadata.resourceVersion).toBe("3");

    // Resume a watch across the restart, with prev states intact.
    const events: StoreEvent[] = [];
    again.watch("/core/pods/", 2, (e) => events.push(e));
    expect(events.map((e) => [e.type, e.key, e.revision])).toEqual([
      ["MODIFIED", "/core/pods/default/b", 3],
      ["ADDED", "/core/pods/default/z", 4],
      ["DELETED", "/core/pods/default/z", 5],
    ]);
    expect(events[0].prev?.metadata.labels).toEqual({ app: "x" });
    expect(events[0].object.metadata.labels).toEqual({ app: "y" });
    expect(events[2].object.metadata.resourceVersion).toBe("5");
    expect(events[2].prev?.metadata.resourceVersion).toBe("4");

    // The revision continues; revision 5 (the deleted highest key) is never reused.
    const c = await again.create("/core/pods/default/c", pod("c"));
    expect(c.revision).toBe(6);
    expect(events.at(-1)?.revision).toBe(6);
  });

  it("keeps the revision across restarts even when compaction emptied old history", async () => {
    const { store, file } = freshStore({ retainChanges: 2 });
    for (let i = 0; i < 10; i++) await store.create(`/core/pods/default/p${i}`, pod(`p${i}`));
    for (let i = 0; i < 10; i++) await store.delete(`/core/pods/default/p${i}`);
    store.close();
    const again = open(file, { retainChanges: 2 });
    expect(again.revision()).toBe(20);
    expect((await again.list("/")).items).toEqual([]);
    expect(() => again.watch("/", 10, () => {})).toThrow(StoreError);
    expect((await again.create("/core/pods/default/p0", pod("p0"))).revision).toBe(21);
  });

  it("loses no acknowledged write when the process is killed with SIGKILL", async () => {
    const dir = tempDir();
    const file = path.join(dir, "kemu.db");
    const script = path.join(dir, "writer.mjs");
    const storeUrl = pathToFileURL(path.join(import.meta.dirname, "sqlite-store.ts")).href;
    fs.writeFileSync(
      script,
      `import { SqliteStore } from ${JSON.stringify(storeUrl)};
const store = SqliteStore.open(process.argv[2], { retainChanges: 500 });
for (let i = 0; ; i++) {
  const key = "/core/configmaps/default/cm-" + i;
  const s = i % 3 === 2
    ? await store.update("/core/configmaps/default/cm-" + (i - 1), { metadata: { name: "cm-" + (i - 1) }, data: { i: String(i) } })
    : await store.create(key, { metadata: { name: "cm-" + i }, data: { i: String(i) } });
  process.stdout.write(s.key + " " + s.revision + "\\n");
  if (i % 50 === 0) await new Promise((r) => setImmediate(r));
}
`,
    );
    let child: ChildProcess | undefined;
    let out = "";
    let stderr = "";
    try {
      child = spawn(process.execPath, [script, file], { stdio: ["ignore", "pipe", "pipe"] });
      const proc = child;
      child.stderr!.on("data", (d) => {
        stderr += d;
      });
      const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`writer too slow; stderr: ${stderr}`)), 20_000);
        proc.stdout!.on("data", (d) => {
          out += d;
          // Kill mid-burst, once enough writes have been acknowledged.
          if (out.length > 60_000) {
            clearTimeout(timer);
            proc.kill("SIGKILL");
            resolve();
          }
        });
        proc.on("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`writer exited early (${code}): ${stderr}`));
        });
      });
      await exited;
      expect(proc.signalCode).toBe("SIGKILL");
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }

    // Only complete lines are acknowledged writes; the last one may be cut mid-write.
    const acked = new Map<string, number>();
    for (const line of out.split("\n").slice(0, -1)) {
      const [key, rev] = line.split(" ");
      acked.set(key, Number(rev));
    }
    expect(acked.size).toBeGreaterThan(1000);
    const maxRev = Math.max(...acked.values());

    const store = open(file, { retainChanges: 500 });
    expect(store.revision()).toBeGreaterThanOrEqual(maxRev);
    for (const [key, rev] of acked) {
      const got = await store.get(key);
      expect(got, key).toBeDefined();
      // Exactly the last acknowledged state, unless an unacknowledged later write landed too.
      if (got!.revision !== rev) expect(got!.revision, key).toBeGreaterThan(maxRev);
      expect(got!.object.metadata.resourceVersion).toBe(String(got!.revision));
    }
    const all = (await store.list("/core/configmaps/default/")).items;
    expect(all.length).toBeGreaterThanOrEqual(acked.size);
    const next = await store.create("/core/configmaps/default/after-crash", { metadata: { name: "x" } });
    expect(next.revision).toBe(store.revision());
    expect(next.revision).toBeGreaterThan(maxRev);
    // The change log survived too: a watch can resume from the last acknowledged revision.
    const events: number[] = [];
    store.watch("/core/configmaps/", maxRev, (e) => events.push(e.revision));
    expect(events.at(-1)).toBe(next.revision);
  });
});
