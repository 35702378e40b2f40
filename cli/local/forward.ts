// A TCP listener that pipes every connection to a Unix socket, byte for byte (TLS passes through
// untouched). The local cluster's API listens inside the underlay namespace; a Unix socket is not
// bound to a network namespace, so this is how the host's loopback reaches it.

import { connect, createServer, type Server, type Socket } from "node:net";

export interface Forwarder {
  server: Server;
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/** Parses HOST:PORT or [IPV6]:PORT. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`expected HOST:PORT (e.g. 127.0.0.1:6443), got "${text}"`);
  return { host: m[1] ?? m[2], port };
}

export function startForwarder(host: string, port: number, unixPath: string): Promise<Forwarder> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(unixPath);
    open.add(client);
    open.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({
        server,
        port: (server.address() as { port: number }).port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            for (const s of open) s.destroy();
          }),
      });
    });
  });
}
