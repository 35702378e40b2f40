// LoadBalancer addresses on the underlay, the way MetalLB's layer-2 mode announces them: for each
// address exactly one node is elected (a stable hash over the eligible nodes, so every agent
// agrees without talking), and that node holds the address on its loopback, which makes its
// kernel answer ARP for it on the underlay. Traffic arriving there is DNATed by kube-proxy's
// rules like any LoadBalancer traffic. With externalTrafficPolicy Local only nodes with a ready
// local endpoint are eligible, so the client's address can be preserved. Pure apart from apply().

import { createHash } from "node:crypto";
import { ipBatch, runJson } from "../exec.ts";
import type { EndpointSliceObject, ServiceObject } from "./model.ts";
import { SERVICE_NAME_LABEL } from "./model.ts";

/** Our addresses on lo carry this label, so nothing else on lo is ever touched. */
export const LB_LABEL = "lo:kemu-lb";

export interface NodeInfo {
  name: string;
  ready: boolean;
}

/** The node that announces `ip` for a service, or undefined when no node is eligible. */
export function electNode(serviceKey: string, ip: string, eligible: readonly string[]): string | undefined {
  let best: { node: string; score: string } | undefined;
  for (const node of eligible) {
    const score = createHash("sha256").update(`${node}#${serviceKey}#${ip}`).digest("hex");
    if (!best || score < best.score) best = { node, score };
  }
  return best?.node;
}

/** The LoadBalancer addresses this node must hold, sorted. */
export function announcedAddresses(
  services: readonly ServiceObject[],
  slices: readonly EndpointSliceObject[],
  nodes: readonly NodeInfo[],
  self: string,
): string[] {
  const ready = nodes.filter((n) => n.ready).map((n) => n.name);
  const mine = new Set<string>();
  for (const svc of services) {
    if (svc.spec?.type !== "LoadBalancer" || svc.metadata.deletionTimestamp) continue;
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    let eligible = ready;
    if (svc.spec.externalTrafficPolicy === "Local") {
      const withEndpoints = new Set<string>();
      for (const s of slices) {
        if (s.metadata.namespace !== svc.metadata.namespace) continue;
        if (s.metadata.labels?.[SERVICE_NAME_LABEL] !== svc.metadata.name) continue;
        for (const ep of s.endpoints ?? []) {
          if (ep.nodeName && ep.conditions?.ready !== false) withEndpoints.add(ep.nodeName);
        }
      }
      eligible = ready.filter((n) => withEndpoints.has(n));
    }
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) {
      if (
        ingress.ip &&
        /^\d{1,3}(\.\d{1,3}){3}$/.test(ingress.ip) &&
        electNode(key, ingress.ip, eligible) === self
      ) {
        mine.add(ingress.ip);
      }
    }
  }
  return [...mine].sort();
}

/** `ip -batch` lines turning the held addresses into the desired ones. */
export function announceCommands(desired: readonly string[], held: readonly string[]): string[] {
  const want = new Set(desired);
  const have = new Set(held);
  return [
    ...held.filter((ip) => !want.has(ip)).map((ip) => `addr del ${ip}/32 dev lo label ${LB_LABEL}`),
    ...desired.filter((ip) => !have.has(ip)).map((ip) => `addr add ${ip}/32 dev lo label ${LB_LABEL}`),
  ];
}

/** Addresses this node currently announces (ours on lo, found by label). */
export async function heldAddresses(netns?: string): Promise<string[]> {
  const links = await runJson<{ addr_info?: { family: string; local: string; label?: string }[] }[]>(
    ["ip", "-j", "addr", "show", "dev", "lo"],
    netns ? { netns } : {},
  );
  return (links[0]?.addr_info ?? [])
    .filter((a) => a.family === "inet" && a.label === LB_LABEL)
    .map((a) => a.local);
}

/** Brings the node's announcements to `desired`; returns the lines applied. */
export async function applyAnnouncements(desired: readonly string[], netns?: string): Promise<string[]> {
  const lines = announceCommands(desired, await heldAddresses(netns));
  await ipBatch(lines, netns ? { netns } : {});
  return lines;
}
