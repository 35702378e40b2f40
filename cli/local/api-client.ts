// Just enough of a Kubernetes client for the launcher: GET (or DELETE) a path with the cluster's CA
// and token, and read Node readiness the way `kubectl get nodes` shows it.

import { request } from "node:https";
import type { NodeObject } from "../../emulator/types.ts";

export interface ApiAccess {
  /** https://host:port */
  url: string;
  caPem: string;
  token: string;
}

export function getJson<T>(api: ApiAccess, path: string, timeoutMs = 2000): Promise<T> {
  return requestJson<T>(api, "GET", path, timeoutMs);
}

/** DELETE; resolves to false when the object was already gone (404). */
export async function deleteObject(api: ApiAccess, path: string, timeoutMs = 5000): Promise<boolean> {
  try {
    await requestJson(api, "DELETE", path, timeoutMs);
    return true;
  } catch (e) {
    if (/: HTTP 404:/.test((e as Error).message)) return false;
    throw e;
  }
}

function requestJson<T>(api: ApiAccess, method: string, path: string, timeoutMs: number): Promise<T> {
  const url = new URL(path, api.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: api.caPem,
        headers: { authorization: `Bearer ${api.token}`, accept: "application/json" },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) {
            reject(new Error(`${method} ${url.pathname}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            return;
          }
          try {
            resolve(JSON.parse(text) as T);
          } catch (e) {
            reject(e);
          }
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url.pathname}: no answer in ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end();
  });
}

export interface NodeSummary {
  name: string;
  /** The Ready condition's status: True, False or Unknown (also when there is none yet). */
  ready: string;
  /** The Ready condition's reason/message when it is not True. */
  why?: string;
  internalIP?: string;
  podCIDR?: string;
}

export function summarizeNode(node: NodeObject): NodeSummary {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const summary: NodeSummary = { name: node.metadata?.name ?? "", ready: ready?.status ?? "Unknown" };
  if (ready?.status !== "True") {
    const why = [ready?.reason, ready?.message].filter(Boolean).join(": ");
    summary.why = why || "no Ready condition yet";
  }
  const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
  if (ip) summary.internalIP = ip;
  if (node.spec?.podCIDR) summary.podCIDR = node.spec.podCIDR;
  return summary;
}

/** Expected nodes that are not Ready yet, each with the reason (unregistered, or its condition). */
export function notReadyNodes(expected: readonly string[], nodes: readonly NodeSummary[]): string[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  return expected.flatMap((name) => {
    const n = byName.get(name);
    if (!n) return [`${name} (not registered)`];
    return n.ready === "True" ? [] : [`${name} (Ready=${n.ready}: ${n.why})`];
  });
}
