// `kemu dns` as a process: reads the credentials, starts the server and says where it listens.

import { readFileSync } from "node:fs";
import { type DnsServer, startDnsServer, type Upstream } from "./server.ts";

export interface DnsOptions {
  api: string;
  tokenFile: string;
  caFile: string;
  host: string;
  port: number;
  zone: string;
  upstreams: Upstream[];
  healthPort: number;
  readyPort: number;
}

function readFile(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`--${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function runDns(o: DnsOptions): Promise<DnsServer> {
  const token = readFile("token-file", o.tokenFile).trim();
  const ca = readFile("ca-file", o.caFile);
  const server = await startDnsServer({
    api: { url: o.api, token, ca },
    host: o.host,
    port: o.port,
    zone: o.zone,
    upstreams: o.upstreams,
    healthPort: o.healthPort,
    readyPort: o.readyPort,
  });
  const forward = o.upstreams.length
    ? `forwarding other names to ${o.upstreams.map((u) => hostPort(u.host, u.port)).join(", ")}`
    : "other names refused (no upstream)";
  process.stdout.write(
    `kemu dns: zone ${server.zone.zone} on ${hostPort(server.host, server.port)} (udp, tcp); ${forward}; ` +
      `/health on ${server.healthPort}, /ready on ${server.readyPort}\n`,
  );
  void server.synced.then(() => process.stdout.write("kemu dns: synced with the API, ready\n"));
  return server;
}
