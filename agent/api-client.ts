// The agent's Kubernetes client: HTTPS with the cluster CA and a bearer token, JSON bodies, and a
// list+watch informer that relists on 410 Gone and reconnects with back-off. The agent talks to
// the control plane only through this, exactly as a remote node would.

import https from "node:https";
import { createSecureContext } from "node:tls";
import type { KubeObject } from "../emulator/types.ts";

export class ApiClientError extends Error {
  readonly status: number;
  readonly reason?: string;
  constructor(status: number, message: string, reason?: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export interface ApiClientOptions {
  url: string;
  token: string;
  ca: string;
}

export class ApiClient {
  private readonly base: URL;
  private readonly token: string;
  private readonly agent: https.Agent;

  constructor(opts: ApiClientOptions) {
    this.base = new URL(opts.url);
    this.token = opts.token;
    // One TLS context for every connection: given only `ca`, each new socket parses the PEM again.
    this.agent = new https.Agent({
      secureContext: createSecureContext({ ca: opts.ca }),
      keepAlive: true,
      maxSockets: 16,
    });
  }

  request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        {
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: "application/json",
            ...(data !== undefined
              ? { "content-type": contentType, "content-length": Buffer.byteLength(data) }
              : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d) => chunks.push(d));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            let json: any;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {}
            if ((res.statusCode ?? 500) >= 300) {
              reject(new ApiClientError(res.statusCode ?? 500, json?.message ?? text, json?.reason));
            } else resolve(json as T);
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (data !== undefined) req.write(data);
      req.end();
    });
  }

  get<T = any>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** Opens a watch stream; returns a stop function. `onClose` runs once when the stream ends. */
  watch(path: string, onEvent: (type: string, obj: any) => void, onClose: (err?: Error) => void): () => void {
    let closed = false;
    const finish = (err?: Error) => {
      if (closed) return;
      closed = true;
      onClose(err);
    };
    const req = https.request({
      host: this.base.hostname,
      port: this.base.port,
      path,
      agent: this.agent,
      headers: { authorization: `Bearer ${this.token}`, accept: "application/json" },
    });
    req.on("response", (res) => {
      if ((res.statusCode ?? 500) >= 300) {
        res.resume();
        finish(new ApiClientError(res.statusCode ?? 500, `watch ${path}: HTTP ${res.statusCode}`));
        return;
      }
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        buf += d;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const ev = JSON.parse(line);
          onEvent(ev.type, ev.object);
        }
      });
      res.on("end", () => finish());
      res.on("error", (e) => finish(e));
    });
    req.on("error", (e) => finish(e));
    req.end();
    return () => {
      closed = true;
      req.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * list+watch into a Map keyed by namespace/name. Every change (and every relist) calls `onChange`
 * with the key; consumers read the cache. Level-triggered: a missed event is repaired by the next
 * relist, which also runs periodically.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly cache = new Map<string, T>();
  private stopWatch: () => void = () => {};
  private stopped = false;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private backoffMs = 200;
  private readonly client: ApiClient;
  private readonly path: string;
  private readonly query: string;
  private readonly onChange: (key: string, obj: T | undefined) => void;

  constructor(
    client: ApiClient,
    path: string,
    query: string,
    onChange: (key: string, obj: T | undefined) => void,
  ) {
    this.client = client;
    this.path = path;
    this.query = query;
    this.onChange = onChange;
  }

  static key(obj: KubeObject): string {
    return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name!;
  }

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch();
  }

  hasSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    let list: { metadata: { resourceVersion: string }; items: T[] };
    try {
      list = await this.client.get(`${this.path}?${this.query}`);
    } catch (e) {
      return this.retry(e as Error);
    }
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = Informer.key(item);
      seen.add(key);
      this.cache.set(key, item);
      this.onChange(key, item);
    }
    for (const key of [...this.cache.keys()]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.onChange(key, undefined);
      }
    }
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.backoffMs = 200;
    this.follow(list.metadata.resourceVersion);
  }

  private follow(resourceVersion: string): void {
    if (this.stopped) return;
    let rv = resourceVersion;
    let gone = false;
    const sep = this.query ? "&" : "";
    this.stopWatch = this.client.watch(
      `${this.path}?${this.query}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${rv}`,
      (type, obj) => {
        if (type === "ERROR") {
          gone = obj?.code === 410;
          return;
        }
        rv = obj?.metadata?.resourceVersion ?? rv;
        if (type === "BOOKMARK") return;
        const key = Informer.key(obj);
        if (type === "DELETED") this.cache.delete(key);
        else this.cache.set(key, obj);
        this.onChange(key, type === "DELETED" ? undefined : obj);
      },
      (err) => {
        if (this.stopped) return;
        if (gone || err) setTimeout(() => void this.relist(), err ? this.nextBackoff() : 0);
        else this.follow(rv);
      },
    );
  }

  private nextBackoff(): number {
    const ms = this.backoffMs;
    this.backoffMs = Math.min(10_000, this.backoffMs * 2);
    return ms;
  }

  private retry(err: Error): void {
    if (this.stopped) return;
    console.error(`kemu agent: list ${this.path}: ${err.message}; retrying`);
    setTimeout(() => void this.relist(), this.nextBackoff());
  }
}
