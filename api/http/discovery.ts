// Legacy (non-aggregated) discovery documents. kubectl asks for aggregated discovery first and falls
// back to these when the response is plain application/json, which keeps this small.

import type { KindSpec } from "../../emulator/kind.ts";
import type { Registry } from "../registry.ts";

export const KUBE_VERSION = { major: "1", minor: "32", gitVersion: "v1.32.0" };

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** Verbs and kinds of each subresource, as upstream advertises them. */
const SUBRESOURCES: Record<string, { verbs: string[]; kind?: string; group?: string }> = {
  status: { verbs: ["get", "patch", "update"] },
  binding: { verbs: ["create"], kind: "Binding" },
  log: { verbs: ["get"] },
  exec: { verbs: ["create", "get"], kind: "PodExecOptions" },
  eviction: { verbs: ["create"], kind: "Eviction", group: "policy" },
  finalize: { verbs: ["update"] },
  scale: { verbs: ["get", "patch", "update"], kind: "Scale", group: "autoscaling" },
};

export function versionInfo(): Record<string, string> {
  return {
    ...KUBE_VERSION,
    gitVersion: `${KUBE_VERSION.gitVersion}+kemu`,
    gitCommit: "kemu",
    gitTreeState: "clean",
    buildDate: "2026-01-01T00:00:00Z",
    goVersion: `node${process.versions.node}`,
    compiler: "kemu",
    platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
  };
}

function resourceEntries(spec: KindSpec): Record<string, unknown>[] {
  const main = {
    name: spec.resource,
    singularName: spec.singular,
    namespaced: spec.namespaced,
    kind: spec.kind,
    verbs: spec.verbs ?? ALL_VERBS,
    ...(spec.shortNames?.length ? { shortNames: spec.shortNames } : {}),
    ...(spec.categories?.length ? { categories: spec.categories } : {}),
  };
  const subs = (spec.subresources ?? []).map((sub) => {
    const s = SUBRESOURCES[sub] ?? { verbs: ["get"] };
    return {
      name: `${spec.resource}/${sub}`,
      singularName: "",
      namespaced: spec.namespaced,
      ...(s.group ? { group: s.group, version: "v1" } : {}),
      kind: s.kind ?? spec.kind,
      verbs: s.verbs,
    };
  });
  return [main, ...subs];
}

export function apiResourceList(registry: Registry, group: string, version: string): Record<string, unknown> {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources: registry.inGroupVersion(group, version).flatMap(resourceEntries),
  };
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  const list = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: list, preferredVersion: list[0] };
}

export function apiGroupList(registry: Registry): Record<string, unknown> {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: registry.groups().map((g) => apiGroup(g.name, g.versions)),
  };
}

export function apiGroupDoc(registry: Registry, name: string): Record<string, unknown> | undefined {
  const g = registry.groups().find((x) => x.name === name);
  return g ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g.name, g.versions) } : undefined;
}
