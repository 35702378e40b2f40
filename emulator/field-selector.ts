// Field selectors as k8s.io/apimachinery/pkg/fields.ParseSelector reads them: comma-separated
// `field=value`, `field==value` or `field!=value` terms, ANDed. Values may be empty and use
// backslash escapes for `\`, `,` and `=`. Upstream does not trim whitespace, so neither do we: a
// stray space becomes part of the field name and the server rejects it as unsupported.

import { SelectorError } from "./label-selector.ts";

export { SelectorError };

export interface FieldTerm {
  field: string;
  /** `=` and `==` are the same test upstream, so both parse to "=". */
  operator: "=" | "!=";
  value: string;
}

export interface FieldSelector {
  terms: FieldTerm[];
}

/** Split on commas not preceded by a backslash escape; escapes stay in place for unescapeValue. */
function splitTerms(s: string): string[] {
  if (s === "") return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

const TERM_OPERATORS = ["!=", "==", "="] as const;

/** The field name has no escaping, so the first operator found splits the term. */
function splitTerm(term: string): [string, (typeof TERM_OPERATORS)[number], string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of TERM_OPERATORS) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

/** fields.UnescapeValue. Go prints the offending rune with %v, i.e. as its code point number. */
function unescapeValue(s: string): string {
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== "\\" && c !== "," && c !== "=") {
        throw new SelectorError(`invalid field selector: invalid escape sequence: \\${c}`);
      }
      out += c;
      inSlash = false;
    } else if (c === "\\") {
      inSlash = true;
    } else if (c === "," || c === "=") {
      throw new SelectorError(`invalid field selector: unescaped character in value: ${c.codePointAt(0)}`);
    } else {
      out += c;
    }
  }
  if (inSlash) throw new SelectorError("invalid field selector: invalid escape sequence: \\");
  return out;
}

/** fields.EscapeValue: the inverse of unescapeValue. */
export function escapeFieldValue(value: string): string {
  return value.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/**
 * fields.ParseSelector. Terms are sorted as raw strings first, like upstream, which fixes the
 * order of `terms` (and so which duplicate exactFieldValue reports).
 */
export function parseFieldSelector(s: string): FieldSelector {
  const terms: FieldTerm[] = [];
  for (const part of splitTerms(s).sort()) {
    if (part === "") continue;
    const split = splitTerm(part);
    if (split === undefined) throw new SelectorError(`invalid selector: '${s}'; can't understand '${part}'`);
    const [field, op, raw] = split;
    const value = unescapeValue(raw);
    // Upstream's Transform turns a term with neither field nor value (a bare "=") into Everything().
    if (field === "" && value === "") continue;
    terms.push({ field, operator: op === "!=" ? "!=" : "=", value });
  }
  return { terms };
}

/** Missing fields read as "", exactly as fields.Set.Get does, so `spec.nodeName=` finds unbound pods. */
export function matchesFields(sel: FieldSelector, get: (field: string) => string | undefined): boolean {
  return sel.terms.every((t) => ((get(t.field) ?? "") === t.value) === (t.operator === "="));
}

/** Every field the selector mentions, so the server can reject unsupported ones up front. */
export function fieldSelectorFields(sel: FieldSelector): string[] {
  return [...new Set(sel.terms.map((t) => t.field))];
}

/** Selector.RequiresExactMatch: the value pinned by the first `field=value` term, if any. */
export function exactFieldValue(sel: FieldSelector, field: string): string | undefined {
  return sel.terms.find((t) => t.field === field && t.operator === "=")?.value;
}

/** Canonical text form, e.g. `metadata.name=a,spec.nodeName!=`. */
export function fieldSelectorToString(sel: FieldSelector): string {
  return sel.terms.map((t) => `${t.field}${t.operator}${escapeFieldValue(t.value)}`).join(",");
}

export function isEmptyFieldSelector(sel: FieldSelector): boolean {
  return sel.terms.length === 0;
}
