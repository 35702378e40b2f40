// Source NAT for pod traffic to chosen non-pod networks, as kind's ip-masq-agent does for all of
// them: packets from the cluster CIDR to these destinations leave with the node's address. Docker
// mode needs it for the underlay, whose host-side firewall drops frames from addresses outside the
// network's subnet (Docker's isolation rules on internal networks, seen through br_netfilter).
// Pod-to-pod traffic is never rewritten: the cluster CIDR is excluded.

import { formatCidr, parseCidr } from "../emulator/cidr.ts";
import { run } from "./exec.ts";

export const MASQUERADE_CHAIN = "KEMU-MASQUERADE";

/** The nat table's KEMU-MASQUERADE chain as iptables-restore input (replaces only that chain). */
export function masqueradeRules(clusterCidr: string, destinations: string[]): string {
  const cluster = formatCidr(parseCidr(clusterCidr));
  const lines = ["*nat", `:${MASQUERADE_CHAIN} - [0:0]`];
  if (destinations.length) {
    lines.push(
      `-A ${MASQUERADE_CHAIN} -d ${cluster} -m comment --comment "kemu: pod to pod, never rewritten" -j RETURN`,
    );
  }
  for (const dest of destinations) {
    const d = formatCidr(parseCidr(dest, { allowHostBits: true }));
    lines.push(
      `-A ${MASQUERADE_CHAIN} -s ${cluster} -d ${d} -m comment --comment "kemu: pods to ${d} leave as the node" -j MASQUERADE`,
    );
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

export async function applyMasquerade(clusterCidr: string, destinations: string[]): Promise<void> {
  await run(["iptables-restore", "--noflush"], { input: masqueradeRules(clusterCidr, destinations) });
  const jump = ["POSTROUTING", "-j", MASQUERADE_CHAIN];
  const present = await run(["iptables", "-t", "nat", "-C", ...jump], { allowFail: true });
  if (present.code !== 0) await run(["iptables", "-t", "nat", "-A", ...jump]);
}
