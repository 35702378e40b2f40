// A watch as a chunked HTTP response of newline-delimited JSON events, the apiserver's
// `?watch=1` wire format. Bounded: a client that stops reading is cut off instead of growing the
// server's memory.

import { ApiError } from "../errors.ts";
import type { WatchEvent } from "../resources.ts";

/** Bytes queued for one watcher before it counts as too slow and is closed. */
export const MAX_WATCH_BUFFER = 16 * 1024 * 1024;
const BOOKMARK_INTERVAL_MS = 10_000;

export interface WatchStreamOptions {
  encode(ev: WatchEvent): string;
  /** Subscribes and returns the stop function; may throw ApiError (410 Gone, 400). */
  start(push: (ev: WatchEvent) => void): () => void;
  /** Present when the client allows bookmarks: the bookmark object to send periodically. */
  bookmark?: () => WatchEvent["object"];
  timeoutMs?: number;
}

export function streamWatch(req: Request, opts: WatchStreamOptions): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let closed = false;
        let stop = () => {};
        const timers: NodeJS.Timeout[] = [];
        const close = () => {
          if (closed) return;
          closed = true;
          stop();
          for (const t of timers) clearTimeout(t);
          req.signal.removeEventListener("abort", close);
          try {
            controller.close();
          } catch {}
        };
        cleanup = close;
        const write = (text: string) => {
          if (closed) return;
          controller.enqueue(encoder.encode(text));
          if ((controller.desiredSize ?? 0) < -MAX_WATCH_BUFFER) close();
        };
        req.signal.addEventListener("abort", close);
        try {
          stop = opts.start((ev) => write(opts.encode(ev)));
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          write(`{"type":"ERROR","object":${JSON.stringify(e.toStatus())}}\n`);
          close();
          return;
        }
        if (opts.bookmark) {
          const bookmark = opts.bookmark;
          timers.push(
            setInterval(
              () => write(opts.encode({ type: "BOOKMARK", object: bookmark() })),
              BOOKMARK_INTERVAL_MS,
            ),
          );
        }
        if (opts.timeoutMs && opts.timeoutMs > 0) timers.push(setTimeout(close, opts.timeoutMs));
      },
      cancel() {
        cleanup();
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "application/json",
      "transfer-encoding": "chunked",
      "cache-control": "no-cache",
    },
  });
}
