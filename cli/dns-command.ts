// `kemu dns`: the cluster DNS server in the foreground (the kemu/dns image runs it in a pod).

import { isIP } from "node:net";
import { parseDnsUpstream, parseHostPort } from "../dns/host-port.ts";
import { runDns } from "../dns/main.ts";
import type { Upstream } from "../dns/server.ts";
import { intFlag, parseFlags, UsageError } from "./args.ts";

export const dnsHelp = `Usage: kemu dns --api URL --token-file FILE --ca-file FILE [flags]

Runs the cluster DNS server in the foreground: records of the Kubernetes DNS specification
(schema 1.1.0) for the zone, the way CoreDNS's kubernetes plugin answers them, from a list+watch of
Namespaces, Services and EndpointSlices. Names outside the zone are refused unless --upstream is
given. Before the first sync, names in the zone answer SERVFAIL and /ready is 503.

Flags:
  --api URL               control plane URL (https://...)
  --token-file FILE       bearer token
  --ca-file FILE          CA certificate of the control plane
  --listen IP[:PORT]      DNS address, UDP and TCP (default 0.0.0.0:53; port 0 picks a free one)
  --zone NAME             cluster domain (default cluster.local)
  --upstream IP[:PORT]    resolver for names outside the zone (repeatable, tried in order; port
                          53 by default); without it nothing is forwarded
  --health-port N         HTTP /health on the listen address (default 8080; 0 picks a free one)
  --ready-port N          HTTP /ready, 200 once synced (default 8181; 0 picks a free one)
  -h, --help              show this help
`;

const flags = {
  api: { type: "string" },
  "token-file": { type: "string" },
  "ca-file": { type: "string" },
  listen: { type: "string" },
  zone: { type: "string" },
  upstream: { type: "string", multiple: true },
  "health-port": { type: "string" },
  "ready-port": { type: "string" },
} as const;

/** A DNS name of dot-separated labels (letters, digits, hyphens, underscores), no trailing dot. */
function validZone(zone: string): boolean {
  return (
    zone.length <= 253 &&
    zone.split(".").every((l) => /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i.test(l)) &&
    !isIP(zone)
  );
}

export async function dnsCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("dns", argv, flags);
  if (values.help) {
    process.stdout.write(dnsHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu dns: unexpected argument "${positionals[0]}"`);
  const required = (name: string): string => {
    const v = values[name];
    if (typeof v !== "string" || !v) throw new UsageError(`kemu dns: --${name} is required`);
    return v;
  };
  const api = required("api");
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new UsageError(`kemu dns: --api must be a URL like https://10.96.0.1:443, got "${api}"`);
  }
  if (url.protocol !== "https:")
    throw new UsageError(`kemu dns: --api must be an https:// URL, got "${api}"`);
  const tokenFile = required("token-file");
  const caFile = required("ca-file");

  const listenFlag = (values.listen as string | undefined) ?? "0.0.0.0:53";
  let listen: Upstream;
  try {
    listen = parseHostPort(listenFlag, 53);
  } catch (e) {
    throw new UsageError(`kemu dns: --listen ${(e as Error).message}`);
  }
  const zone = ((values.zone as string | undefined) ?? "cluster.local").replace(/\.$/, "").toLowerCase();
  if (!validZone(zone))
    throw new UsageError(`kemu dns: --zone must be a DNS name like cluster.local, got "${values.zone}"`);
  const upstreams: Upstream[] = [];
  for (const u of (values.upstream as string[] | undefined) ?? []) {
    try {
      upstreams.push(parseDnsUpstream(u));
    } catch (e) {
      throw new UsageError(`kemu dns: --upstream ${(e as Error).message}`);
    }
  }
  const healthPort = intFlag("dns", "health-port", values["health-port"], 0, 65535) ?? 8080;
  const readyPort = intFlag("dns", "ready-port", values["ready-port"], 0, 65535) ?? 8181;
  // All three are TCP ports on the listen address.
  if (healthPort !== 0 && healthPort === readyPort) {
    throw new UsageError(`kemu dns: --health-port and --ready-port are both ${healthPort}; they must differ`);
  }
  for (const [name, p] of [
    ["health-port", healthPort],
    ["ready-port", readyPort],
  ] as const) {
    if (p !== 0 && p === listen.port)
      throw new UsageError(`kemu dns: --${name} ${p} is the DNS port of --listen`);
  }

  // Handlers first: whoever reads the server's first log line may signal us at once.
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  const server = await runDns({
    api,
    tokenFile,
    caFile,
    host: listen.host,
    port: listen.port,
    zone,
    upstreams,
    healthPort,
    readyPort,
  });
  await stopped;
  await server.close();
}
