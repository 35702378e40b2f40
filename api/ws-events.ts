// GET /kemu/v1/events upgraded to a WebSocket: a live feed of object changes (Events included) for
// dashboards and `kemu`'s own watchers. Query: kind=Pod,Event (default: every stored kind),
// namespace=ns, labelSelector=..., resourceVersion=N (resume after N; default: from now).
// Each message: {"type":"ADDED|MODIFIED|DELETED","kind":"Pod","object":{...}}.
// A client that stops reading is closed with 1013 rather than buffering without bound.

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { tokenMatches } from "./bearer-token.ts";
import { ApiError } from "./errors.ts";
import type { Registry } from "./registry.ts";
import type { Resources } from "./resources.ts";

export const WS_EVENTS_PATH = "/kemu/v1/events";
/** Unsent bytes after which a WebSocket client is considered too slow. */
export const MAX_WS_BUFFER = 4 * 1024 * 1024;
const BEARER_PROTOCOL = "base64url.bearer.authorization.k8s.io.";

/** Token from the Authorization header or the Kubernetes-style bearer subprotocol. */
function requestToken(req: IncomingMessage): string | undefined {
  if (req.headers.authorization) return req.headers.authorization;
  for (const p of (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())) {
    if (p.startsWith(BEARER_PROTOCOL)) {
      return `Bearer ${Buffer.from(p.slice(BEARER_PROTOCOL.length), "base64url").toString()}`;
    }
  }
  return undefined;
}

function reject(socket: Duplex, code: number, text: string): void {
  socket.end(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export class EventsSocket {
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => [...protocols].find((p) => !p.startsWith(BEARER_PROTOCOL)) ?? false,
  });
  private readonly resources: Resources;
  private readonly registry: Registry;
  private readonly token: string;

  constructor(resources: Resources, registry: Registry, token: string) {
    this.resources = resources;
    this.registry = registry;
    this.token = token;
  }

  /** Handles an HTTP upgrade; returns false when the path is not ours. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== WS_EVENTS_PATH) return false;
    if (!tokenMatches(requestToken(req), this.token)) {
      reject(socket, 401, "Unauthorized");
      return true;
    }
    const kinds = url.searchParams.get("kind")?.split(",").filter(Boolean);
    const specs = this.registry.kinds.filter((k) => !k.storage && (!kinds || kinds.includes(k.kind)));
    const unknown = kinds?.filter((k) => !this.registry.kinds.some((s) => s.kind === k)) ?? [];
    if (unknown.length) {
      reject(socket, 400, "Bad Request");
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, specs, url.searchParams));
    return true;
  }

  private serve(ws: WebSocket, specs: Registry["kinds"], params: URLSearchParams): void {
    const namespace = params.get("namespace") ?? undefined;
    // A namespace filter selects namespaced objects only; cluster-scoped kinds have none.
    if (namespace) specs = specs.filter((s) => s.namespaced);
    const labelSelector = params.get("labelSelector") ?? undefined;
    const resourceVersion = params.get("resourceVersion") ?? String(this.resources.store.revision());
    const stops: (() => void)[] = [];
    let open = true;
    const close = (code: number, reason: string) => {
      if (!open) return;
      open = false;
      for (const s of stops) s();
      ws.close(code, reason);
    };
    try {
      for (const spec of specs) {
        stops.push(
          this.resources.watch(spec, namespace, { labelSelector, resourceVersion }, (ev) => {
            if (!open || ev.type === "BOOKMARK") return;
            if (ws.bufferedAmount > MAX_WS_BUFFER) {
              close(1013, `client too slow: more than ${MAX_WS_BUFFER} bytes unsent`);
              return;
            }
            ws.send(
              `{"type":"${ev.type}","kind":"${spec.kind}","object":${ev.json ?? JSON.stringify(ev.object)}}`,
            );
          }),
        );
      }
    } catch (e) {
      close(1008, e instanceof ApiError ? e.message.slice(0, 120) : "watch failed");
      return;
    }
    ws.on("close", () => {
      open = false;
      for (const s of stops) s();
    });
    ws.on("error", () => close(1011, "socket error"));
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}
