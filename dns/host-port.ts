// IP[:PORT] as DNS flags take it (--listen, --upstream, kemu up/api --dns-upstream): IPv4,
// IPv6 bare or in brackets with a port.

import net from "node:net";

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(s: string, defaultPort: number): HostPort {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  let host: string;
  let port: string | undefined;
  if (bracketed) [, host, port] = bracketed;
  else if (net.isIPv6(s)) host = s;
  else {
    const i = s.lastIndexOf(":");
    host = i >= 0 ? s.slice(0, i) : s;
    port = i >= 0 ? s.slice(i + 1) : undefined;
  }
  if (!net.isIP(host)) throw new Error(`"${s}": the address must be an IP address`);
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) > 65535)) {
    throw new Error(`"${s}": the port must be a number between 0 and 65535`);
  }
  return { host, port: port === undefined ? defaultPort : Number(port) };
}

/**
 * A resolver cluster DNS forwards to: IP[:PORT], port 53 by default and never 0. `ipv4Only` for
 * local clusters, whose networks carry IPv4 alone.
 */
export function parseDnsUpstream(s: string, opts: { ipv4Only?: boolean } = {}): HostPort {
  const hp = parseHostPort(s, 53);
  if (hp.port === 0) throw new Error(`"${s}": the port must be between 1 and 65535`);
  if (opts.ipv4Only && !net.isIPv4(hp.host))
    throw new Error(`"${s}": only IPv4 resolvers are reachable from the cluster`);
  return hp;
}
