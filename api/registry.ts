// Lookup tables over the kind registry: which kinds exist under which group/version/resource, and
// where each one is stored. Routing, discovery and OpenAPI all read from here.

import { apiVersionOf, type KindSpec } from "../emulator/kind.ts";

export class Registry {
  readonly kinds: readonly KindSpec[];
  private readonly byPath = new Map<string, KindSpec>();

  constructor(kinds: readonly KindSpec[]) {
    this.kinds = kinds;
    for (const k of kinds) this.byPath.set(`${k.group}/${k.version}/${k.resource}`, k);
  }

  find(group: string, version: string, resource: string): KindSpec | undefined {
    return this.byPath.get(`${group}/${version}/${resource}`);
  }

  /** The kind stored under the given group/resource (the storage form, never a view). */
  storageKind(group: string, resource: string): KindSpec | undefined {
    return this.kinds.find((k) => k.group === group && k.resource === resource && !k.storage);
  }

  /** API groups (excluding core) with their versions, in registration order. */
  groups(): { name: string; versions: string[] }[] {
    const out = new Map<string, string[]>();
    for (const k of this.kinds) {
      if (k.group === "") continue;
      const versions = out.get(k.group) ?? [];
      if (!versions.includes(k.version)) versions.push(k.version);
      out.set(k.group, versions);
    }
    return [...out].map(([name, versions]) => ({ name, versions }));
  }

  inGroupVersion(group: string, version: string): KindSpec[] {
    return this.kinds.filter((k) => k.group === group && k.version === version);
  }
}

export { apiVersionOf };

function storageOf(spec: KindSpec): { group: string; resource: string } {
  return spec.storage ?? spec;
}

/** Key prefix listing every object of a kind, or those in one namespace. Always ends in "/". */
export function storagePrefix(spec: KindSpec, namespace?: string): string {
  const s = storageOf(spec);
  const base = `/${s.group || "core"}/${s.resource}/`;
  return spec.namespaced && namespace ? `${base}${namespace}/` : base;
}

export function storageKey(spec: KindSpec, namespace: string | undefined, name: string): string {
  return `${storagePrefix(spec, spec.namespaced ? namespace : undefined)}${name}`;
}
