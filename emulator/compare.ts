// Orderings shared by everything that must sort deterministically (controllers, the agent's
// renderers, table output). Code-unit order, as Go's sort.Strings, never localeCompare: locale
// collation differs between machines and would load ICU's data into every process.

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Dotted IPv4 addresses in numeric order; anything else falls back to code-unit order. */
export function compareIPs(a: string, b: string): number {
  const pa = a.split(".");
  const pb = b.split(".");
  if (pa.length === 4 && pb.length === 4) {
    for (let i = 0; i < 4; i++) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d) return d;
    }
    return 0;
  }
  return compareStrings(a, b);
}
