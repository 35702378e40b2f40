// Which UDP conntrack entries a sync makes stale, as upstream's pkg/proxy/conntrack
// CleanStaleEntries decides it (with the `conntrack` command lines of its exec implementation).
// UDP has no connection to end: without this, a client that keeps its source port keeps talking
// to a removed endpoint (or to nothing, after a service was briefly without endpoints) for as long
// as it keeps sending. TCP needs nothing: a removed endpoint's connections end on their own.
// Pure: compares the previous and the new state.

import { endpointString, type ProxyState, type ServicePortInfo, servicePortName } from "../model.ts";

const key = (s: ServicePortInfo) => `${servicePortName(s)}/${s.protocol}`;

/** `conntrack` argument lists (without the program name), deduplicated, in a stable order. */
export function staleConntrackCommands(prev: ProxyState | undefined, next: ProxyState): string[][] {
  const before = new Map(
    (prev?.services ?? []).filter((sp) => sp.service.protocol === "UDP").map((sp) => [key(sp.service), sp]),
  );
  const after = new Map(
    next.services.filter((sp) => sp.service.protocol === "UDP").map((sp) => [key(sp.service), sp]),
  );
  const commands = new Map<string, string[]>();
  const add = (argv: string[]) => commands.set(argv.join(" "), argv);
  const serviceIPs = (s: ServicePortInfo) => [s.clusterIP, ...s.externalIPs, ...s.loadBalancerIPs];

  // Deleted UDP services: everything to their ClusterIP.
  for (const [k, sp] of before) {
    if (after.get(k)?.service.clusterIP !== sp.service.clusterIP) {
      add(["-D", "--orig-dst", sp.service.clusterIP, "-p", "udp"]);
    }
  }

  for (const [k, sp] of after) {
    const s = sp.service;
    const old = before.get(k);
    // Endpoints that were serving and are gone (or no longer serving): their NATed flows.
    for (const e of old?.endpoints ?? []) {
      if (!e.serving) continue;
      const still = sp.endpoints.some(
        (n) => endpointString(n) === endpointString(e) && n.serving === e.serving,
      );
      if (still) continue;
      if (s.nodePort !== 0) add(["-D", "-p", "udp", "--dport", String(s.nodePort), "--dst-nat", e.ip]);
      for (const ip of serviceIPs(s)) add(["-D", "--orig-dst", ip, "--dst-nat", e.ip, "-p", "udp"]);
    }
    // A service going from 0 to some serving endpoints: packets sent while it had none may have
    // left entries that would blackhole the flow.
    const serving = sp.endpoints.filter((e) => e.serving).length;
    const oldServing = (old?.endpoints ?? []).filter((e) => e.serving).length;
    if (serving > 0 && oldServing === 0) {
      for (const ip of serviceIPs(s)) add(["-D", "--orig-dst", ip, "-p", "udp"]);
      if (s.nodePort !== 0) add(["-D", "-p", "udp", "--dport", String(s.nodePort)]);
    }
  }
  return [...commands.values()];
}
