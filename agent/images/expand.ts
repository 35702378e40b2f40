// Kubernetes' $(VAR) expansion, as the kubelet applies it to a container's env values, command and
// args (a port of k8s.io/kubernetes/third_party/forked/golang/expansion):
//
//   $(VAR)   the value of VAR; stays verbatim "$(VAR)" when VAR is not defined
//   $$       a literal "$" — so "$$(VAR)" gives the literal text "$(VAR)"
//   $x       any other "$" is kept as is, as is an unterminated "$(VAR"
//
// Unlike a shell there is no ${VAR}, no $VAR and no nesting: the name is everything up to the first ")".

/** Looks a name up; undefined = not defined (the reference is kept verbatim). */
export type Lookup = (name: string) => string | undefined;

/** A lookup over maps searched in order (kubelet's MappingFuncFor). */
export function lookupIn(...maps: Record<string, string>[]): Lookup {
  return (name) => {
    for (const m of maps) if (Object.hasOwn(m, name)) return m[name];
    return undefined;
  };
}

/** Expands $(VAR) references in one string. */
export function expand(input: string, lookup: Lookup): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === "$") {
      out += "$"; // escaped operator
    } else if (next === "(") {
      const close = input.indexOf(")", cursor + 2);
      if (close < 0) {
        out += "$("; // incomplete reference: copied as is
      } else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += "$" + next; // an operator that does not start a reference
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/**
 * A container's environment as the kubelet builds it: in declaration order, each value may
 * reference variables declared before it (and any in `base`, e.g. service variables), never itself
 * or later ones.
 */
export function expandEnv(
  env: Record<string, string>,
  base: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  const lookup = lookupIn(out, base);
  for (const [name, value] of Object.entries(env)) out[name] = expand(value, lookup);
  return out;
}
