// The control plane's path to node agents, as the apiserver's to kubelets: `pods/log` is fetched
// from the pod's node and streamed back; `pods/exec` WebSocket upgrades are passed through to the
// node byte for byte. Agents are found by the Node's InternalIP and daemon endpoint port and
// authenticated with the cluster token (agents' serving certificates are self-signed, as kubelets'
// are by default, so they are not verified).

import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import tls from "node:tls";
import type { KubeObject, NodeObject } from "../emulator/types.ts";
import { tokenMatches } from "./bearer-token.ts";
import { ApiError, errors } from "./errors.ts";
import type { Registry } from "./registry.ts";
import type { Resources } from "./resources.ts";

const EXEC_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach)$/;

interface Endpoint {
  host: string;
  port: number;
}

export class NodeProxy {
  private readonly resources: Resources;
  private readonly registry: Registry;
  private readonly token: string;
  private readonly agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true });

  constructor(resources: Resources, registry: Registry, token: string) {
    this.resources = resources;
    this.registry = registry;
    this.token = token;
  }

  private async endpoint(nodeName: string): Promise<Endpoint> {
    const node = (await this.resources.find(this.registry.find("", "v1", "nodes")!, undefined, nodeName)) as
      | NodeObject
      | undefined;
    const host = node?.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    const port = (node?.status?.daemonEndpoints as { kubeletEndpoint?: { Port?: number } } | undefined)
      ?.kubeletEndpoint?.Port;
    if (!host || !port) {
      throw new ApiError(
        503,
        "ServiceUnavailable",
        `node "${nodeName}" has no reachable agent (no InternalIP or port)`,
      );
    }
    return { host, port };
  }

  private containerOf(pod: KubeObject, requested: string | undefined): string {
    const names: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
    const all = [...names, ...(pod.spec?.initContainers ?? []).map((c: { name: string }) => c.name)];
    if (requested) {
      if (!all.includes(requested)) {
        throw errors.badRequest(`container ${requested} is not valid for pod ${pod.metadata.name}`);
      }
      return requested;
    }
    if (names.length === 1) return names[0];
    throw errors.badRequest(
      `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(" ")}]`,
    );
  }

  /** GET pods/<name>/log, streamed from the node. */
  async logs(pod: KubeObject, query: Record<string, string>): Promise<Response> {
    const container = this.containerOf(pod, query.container);
    const ep = await this.endpoint(pod.spec.nodeName);
    const q = new URLSearchParams();
    for (const k of ["follow", "previous", "tailLines", "limitBytes", "timestamps", "sinceSeconds"]) {
      if (query[k] !== undefined) q.set(k, query[k]);
    }
    const path = `/containerLogs/${pod.metadata.namespace}/${pod.metadata.name}/${container}?${q}`;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(
        {
          host: ep.host,
          port: ep.port,
          path,
          agent: this.agent,
          headers: { authorization: `Bearer ${this.token}` },
        },
        resolve,
      );
      req.on("error", (e) =>
        reject(new ApiError(503, "ServiceUnavailable", `node agent unreachable: ${e.message}`)),
      );
      req.end();
    });
    if ((res.statusCode ?? 500) !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw errors.badRequest(Buffer.concat(chunks).toString().trim());
    }
    return new Response(Readable.toWeb(res) as ReadableStream, { headers: { "content-type": "text/plain" } });
  }

  /** Handles an HTTP upgrade for pods/exec; returns false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", "https://api");
    const m = EXEC_PATH.exec(url.pathname);
    if (!m) return false;
    void this.proxyExec(req, socket, head, url, decodeURIComponent(m[1]), decodeURIComponent(m[2])).catch(
      (e) => {
        const err = e instanceof ApiError ? e : errors.internal((e as Error).message);
        const body = JSON.stringify(err.toStatus());
        socket.end(
          `HTTP/1.1 ${err.code} ${err.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      },
    );
    return true;
  }

  private async proxyExec(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    namespace: string,
    name: string,
  ): Promise<void> {
    if (!tokenMatches(req.headers.authorization, this.token)) throw errors.unauthorized();
    if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      throw errors.badRequest(
        `${req.headers.upgrade} is not supported for exec; kemu speaks the WebSocket remote-command protocol (kubectl 1.30 or newer)`,
      );
    }
    const pod = await this.resources.get(this.registry.find("", "v1", "pods")!, namespace, name);
    if (!pod.spec?.nodeName) throw errors.badRequest(`pod ${name} does not have a host assigned`);
    const container = this.containerOf(pod, url.searchParams.get("container") ?? undefined);
    const ep = await this.endpoint(pod.spec.nodeName);
    const q = new URLSearchParams(url.searchParams);
    q.delete("container");
    const upstream = tls.connect({ host: ep.host, port: ep.port, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      upstream.once("secureConnect", resolve);
      upstream.once("error", (e) =>
        reject(new ApiError(503, "ServiceUnavailable", `node agent unreachable: ${e.message}`)),
      );
    });
    const pass = [
      "sec-websocket-key",
      "sec-websocket-version",
      "sec-websocket-protocol",
      "sec-websocket-extensions",
    ];
    const headers = [
      `GET /exec/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${encodeURIComponent(container)}?${q} HTTP/1.1`,
      `Host: ${ep.host}:${ep.port}`,
      "Connection: Upgrade",
      "Upgrade: websocket",
      `Authorization: Bearer ${this.token}`,
      ...pass.filter((h) => req.headers[h]).map((h) => `${h}: ${req.headers[h]}`),
    ];
    upstream.write(`${headers.join("\r\n")}\r\n\r\n`);
    if (head.length) upstream.write(head);
    socket.pipe(upstream).pipe(socket);
    const close = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on("error", close);
    upstream.on("error", close);
    socket.on("close", close);
    upstream.on("close", close);
  }

  close(): void {
    this.agent.destroy();
  }
}
