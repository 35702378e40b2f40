// Label selectors as k8s.io/apimachinery/pkg/labels parses and matches them. kubectl users see our
// parse errors verbatim (`kubectl get pods -l 'app:web'`), so the lexer, parser and messages follow
// upstream closely, quirks included (e.g. the `<nil>:` field path in key errors).

/** Operator spellings are upstream's `selection.Operator` values. */
export type Operator = "in" | "notin" | "=" | "==" | "!=" | "exists" | "!" | "gt" | "lt";

export interface Requirement {
  key: string;
  operator: Operator;
  /** Sorted and de-duplicated for parsed selectors; as given for metav1.LabelSelector objects. */
  values: string[];
}

/** Requirements are ANDed. `nothing` is labels.Nothing(): it matches no object at all. */
export interface LabelSelector {
  requirements: Requirement[];
  nothing: boolean;
}

/** metav1.LabelSelector as it appears in Deployment/ReplicaSet/NetworkPolicy specs. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: { key: string; operator: string; values?: string[] | null }[] | null;
}

export class SelectorError extends Error {
  override name = "SelectorError";
}

// ---------------------------------------------------------------------------------------------
// Key and value validation (k8s.io/apimachinery/pkg/util/validation)

const QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QNAME_RE = new RegExp(`^${QNAME_FMT}$`);
const QNAME_ERR =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT = `(${QNAME_FMT})?`;
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const LABEL_VALUE_ERR =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const DNS1123_SUBDOMAIN_ERR =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const encoder = new TextEncoder();

/** Go's len() counts UTF-8 bytes, and upstream length limits are in bytes. */
function byteLength(s: string): number {
  return encoder.encode(s).length;
}

function maxLenError(n: number): string {
  return `must be no more than ${n} characters`;
}

/** validation.RegexError; the doubled space before "or" is upstream's, kept for identical text. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  const shown = examples.map((e) => `'${e}', `).join(" or ");
  return `${msg} (e.g. ${shown}regex used for validation is '${fmt}')`;
}

/** validation.IsDNS1123Subdomain: error strings, empty when valid. */
export function validateDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 253) errs.push(maxLenError(253));
  if (!DNS1123_SUBDOMAIN_RE.test(value)) {
    errs.push(regexError(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"));
  }
  return errs;
}

/** validation.IsQualifiedName (label and annotation keys): error strings, empty when valid. */
export function validateLabelKey(key: string): string[] {
  const errs: string[] = [];
  const parts = key.split("/");
  if (parts.length > 2) {
    return [
      `a qualified name ${regexError(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  const name = parts.length === 2 ? parts[1] : parts[0];
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix === "") errs.push("prefix part must be non-empty");
    else errs.push(...validateDNS1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  }
  if (name === "") errs.push("name part must be non-empty");
  else if (byteLength(name) > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!QNAME_RE.test(name)) {
    errs.push(`name part ${regexError(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc")}`);
  }
  return errs;
}

/** validation.IsValidLabelValue: error strings, empty when valid. */
export function validateLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenError(63));
  if (!LABEL_VALUE_RE.test(value)) {
    errs.push(regexError(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Go-style error text (field.Error / errors.Aggregate), so messages match the real API server.

/** Go's %q for strings: JSON escaping is close; Go spells control bytes as \xNN. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, "\\x$1");
}

/** Go's %#v for []string, as field.Invalid prints a values list. */
function goStringSlice(values: string[] | null): string {
  return values === null ? "[]string(nil)" : `[]string{${values.map(goQuote).join(", ")}}`;
}

function invalid(path: string, shownValue: string, detail: string): string {
  return `${path}: Invalid value: ${shownValue}: ${detail}`;
}

/** errors.NewAggregate(...).Error(): one message bare, several de-duplicated inside brackets. */
function aggregate(msgs: string[]): string {
  const unique = [...new Set(msgs)];
  return unique.length === 1 ? unique[0] : `[${unique.join(", ")}]`;
}

// ---------------------------------------------------------------------------------------------
// Requirements

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64): optional sign, decimal digits, must fit in int64. */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

/** labels.NewRequirement's checks. Returns the Go error text, or undefined when valid. */
function requirementError(key: string, op: Operator, values: string[] | null): string | undefined {
  const errs: string[] = [];
  const vals = values ?? [];
  const keyErrs = validateLabelKey(key);
  if (keyErrs.length > 0) errs.push(invalid("key", goQuote(key), keyErrs.join("; ")));
  switch (op) {
    case "in":
    case "notin":
      if (vals.length === 0) {
        errs.push(
          invalid("values", goStringSlice(values), "for 'in', 'notin' operators, values set can't be empty"),
        );
      }
      break;
    case "=":
    case "==":
    case "!=":
      if (vals.length !== 1) {
        errs.push(
          invalid("values", goStringSlice(values), "exact-match compatibility requires one single value"),
        );
      }
      break;
    case "exists":
    case "!":
      if (vals.length !== 0) {
        errs.push(
          invalid("values", goStringSlice(values), "values set must be empty for exists and does not exist"),
        );
      }
      break;
    case "gt":
    case "lt":
      if (vals.length !== 1) {
        errs.push(
          invalid("values", goStringSlice(values), "for 'Gt', 'Lt' operators, exactly one value is required"),
        );
      }
      vals.forEach((v, i) => {
        if (parseInt64(v) === undefined) {
          errs.push(
            invalid(`values[${i}]`, goQuote(v), "for 'Gt', 'Lt' operators, the value must be an integer"),
          );
        }
      });
      break;
  }
  vals.forEach((v, i) => {
    const valueErrs = validateLabelValue(v);
    if (valueErrs.length > 0) errs.push(invalid(`values[${i}][${key}]`, goQuote(v), valueErrs.join("; ")));
  });
  return errs.length > 0 ? aggregate(errs) : undefined;
}

function requirementMatches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case "in":
    case "=":
    case "==":
      return has && r.values.includes(labels[r.key]);
    case "notin":
    case "!=":
      return !has || !r.values.includes(labels[r.key]);
    case "exists":
      return has;
    case "!":
      return !has;
    case "gt":
    case "lt":
      return has && compareInt(r, labels[r.key]);
  }
}

/** Gt/Lt compare as int64; anything unparsable simply does not match (upstream logs and says no). */
function compareInt(r: Requirement, labelValue: string): boolean {
  const actual = parseInt64(labelValue);
  const bound = r.values.length === 1 ? parseInt64(r.values[0]) : undefined;
  if (actual === undefined || bound === undefined) return false;
  return r.operator === "gt" ? actual > bound : actual < bound;
}

const OPERATOR_TEXT: Record<Operator, string> = {
  "=": "=",
  "==": "==",
  "!=": "!=",
  in: " in ",
  notin: " notin ",
  gt: ">",
  lt: "<",
  exists: "",
  "!": "",
};

function requirementToString(r: Requirement): string {
  const head = (r.operator === "!" ? "!" : "") + r.key;
  if (r.operator === "exists" || r.operator === "!") return head;
  const values = r.values.length === 1 ? r.values[0] : [...r.values].sort().join(",");
  const body = r.operator === "in" || r.operator === "notin" ? `(${values})` : values;
  return head + OPERATOR_TEXT[r.operator] + body;
}

/** Upstream sorts requirements by key so String() and matching order are deterministic. */
function byKey(reqs: Requirement[]): Requirement[] {
  return [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Lexer

type Token =
  | "error"
  | "eos"
  | ")"
  | ","
  | "!"
  | "=="
  | "="
  | ">"
  | "identifier"
  | "in"
  | "<"
  | "!="
  | "notin"
  | "(";

interface Scanned {
  tok: Token;
  lit: string;
}

const LITERAL_TOKENS: Record<string, Token> = {
  ")": ")",
  ",": ",",
  "!": "!",
  "==": "==",
  "=": "=",
  ">": ">",
  in: "in",
  "<": "<",
  "!=": "!=",
  notin: "notin",
  "(": "(",
};

const isWhitespace = (ch: string): boolean => ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
const isSpecialSymbol = (ch: string): boolean => "=!(),><".includes(ch);

function tokenFor(text: string): Token | undefined {
  return Object.hasOwn(LITERAL_TOKENS, text) ? LITERAL_TOKENS[text] : undefined;
}

/** Longest run of special symbols that still forms a token ("!=" rather than "!" then "="). */
function scanSpecialSymbol(s: string, start: number): [Scanned, number] {
  let last: Scanned | undefined;
  let end = start;
  let pos = start;
  while (pos < s.length && isSpecialSymbol(s[pos])) {
    const tok = tokenFor(s.slice(start, pos + 1));
    if (tok !== undefined) {
      last = { tok, lit: s.slice(start, pos + 1) };
      end = pos + 1;
    } else if (last !== undefined) {
      break;
    }
    pos++;
  }
  if (last === undefined) {
    return [{ tok: "error", lit: `error expected: keyword found '${s.slice(start, pos)}'` }, pos];
  }
  return [last, end];
}

/** Identifiers run until whitespace or a special symbol; "in"/"notin" come back as keywords. */
function scanIdOrKeyword(s: string, start: number): [Scanned, number] {
  let pos = start;
  while (pos < s.length && s[pos] !== "\0" && !isSpecialSymbol(s[pos]) && !isWhitespace(s[pos])) pos++;
  const lit = s.slice(start, pos);
  return [{ tok: tokenFor(lit) ?? "identifier", lit }, pos];
}

function lex(s: string): Scanned[] {
  const items: Scanned[] = [];
  let pos = 0;
  for (;;) {
    while (pos < s.length && isWhitespace(s[pos])) pos++;
    // Go's lexer reads a NUL byte as end of input (it cannot occur in a URL query anyway).
    if (pos >= s.length || s[pos] === "\0") {
      items.push({ tok: "eos", lit: "" });
      return items;
    }
    const [item, next] = isSpecialSymbol(s[pos]) ? scanSpecialSymbol(s, pos) : scanIdOrKeyword(s, pos);
    items.push(item);
    pos = next;
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

/**
 * In the Values context, "in" and "notin" are plain identifiers, so `in in (in)` parses; only
 * right after a key are they operators.
 */
type Context = "keyAndOperator" | "values";

class Parser {
  private readonly items: Scanned[];
  private position = 0;

  constructor(input: string) {
    this.items = lex(input);
  }

  private lookahead(ctx: Context): Scanned {
    return this.contextual(this.items[this.position], ctx);
  }

  private consume(ctx: Context): Scanned {
    return this.contextual(this.items[this.position++], ctx);
  }

  private contextual(item: Scanned, ctx: Context): Scanned {
    if (ctx === "values" && (item.tok === "in" || item.tok === "notin"))
      return { tok: "identifier", lit: item.lit };
    return item;
  }

  parse(): Requirement[] {
    const reqs: Requirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead("values");
      if (tok === "eos") return reqs;
      if (tok !== "identifier" && tok !== "!") {
        throw new SelectorError(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
      reqs.push(this.parseRequirementOrThrow());
      const next = this.consume("values");
      if (next.tok === "eos") return reqs;
      if (next.tok !== ",") throw new SelectorError(`found '${next.lit}', expected: ',' or 'end of string'`);
      const after = this.lookahead("values");
      if (after.tok !== "identifier" && after.tok !== "!") {
        throw new SelectorError(`found '${after.lit}', expected: identifier after ','`);
      }
    }
  }

  private parseRequirementOrThrow(): Requirement {
    try {
      return this.parseRequirement();
    } catch (e) {
      if (e instanceof SelectorError) throw new SelectorError(`unable to parse requirement: ${e.message}`);
      throw e;
    }
  }

  private parseRequirement(): Requirement {
    const [key, inferred] = this.parseKeyAndInferOperator();
    if (inferred !== undefined) return newRequirement(key, inferred, []);
    const operator = this.parseOperator();
    const values = operator === "in" || operator === "notin" ? this.parseValues() : this.parseExactValue();
    // sets.String.List(): sorted and de-duplicated.
    return newRequirement(key, operator, [...new Set(values)].sort());
  }

  /** Returns the key, plus exists/!-exists when no binary operator follows. */
  private parseKeyAndInferOperator(): [string, Operator | undefined] {
    let item = this.consume("values");
    let operator: Operator | undefined;
    if (item.tok === "!") {
      operator = "!";
      item = this.consume("values");
    }
    if (item.tok !== "identifier") throw new SelectorError(`found '${item.lit}', expected: identifier`);
    const keyErrs = validateLabelKey(item.lit);
    // The string parser has no field path, and Go prints a nil *field.Path as "<nil>".
    if (keyErrs.length > 0) throw new SelectorError(invalid("<nil>", goQuote(item.lit), keyErrs.join("; ")));
    const next = this.lookahead("values").tok;
    if ((next === "eos" || next === ",") && operator === undefined) operator = "exists";
    return [item.lit, operator];
  }

  private parseOperator(): Operator {
    const { tok, lit } = this.consume("keyAndOperator");
    switch (tok) {
      case "in":
      case "notin":
      case "=":
      case "==":
      case "!=":
        return tok;
      case ">":
        return "gt";
      case "<":
        return "lt";
      default:
        throw new SelectorError(`found '${lit}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }

  private parseValues(): string[] {
    const open = this.consume("values");
    if (open.tok !== "(") throw new SelectorError(`found '${open.lit}' expected: '('`);
    const first = this.lookahead("values");
    if (first.tok === ")") {
      this.consume("values");
      return [""]; // "()" selects the empty value
    }
    if (first.tok !== "identifier" && first.tok !== ",") {
      throw new SelectorError(`found '${first.lit}', expected: ',', ')' or identifier`);
    }
    const values = this.parseIdentifiersList();
    // Upstream reports the first token inside the parentheses here, not the offending one.
    if (this.consume("values").tok !== ")") throw new SelectorError(`found '${first.lit}', expected: ')'`);
    return values;
  }

  /** A comma-separated list where empty entries (`(,a)`, `(a,,b)`, `(a,)`) mean the empty value. */
  private parseIdentifiersList(): string[] {
    const values: string[] = [];
    for (;;) {
      const { tok, lit } = this.consume("values");
      if (tok === "identifier") {
        values.push(lit);
        const next = this.lookahead("values");
        if (next.tok === ")") return values;
        if (next.tok !== ",") throw new SelectorError(`found '${next.lit}', expected: ',' or ')'`);
      } else if (tok === ",") {
        if (values.length === 0) values.push("");
        const next = this.lookahead("values").tok;
        if (next === ")") {
          values.push("");
          return values;
        }
        if (next === ",") {
          this.consume("values");
          values.push("");
        }
      } else {
        throw new SelectorError(`found '${lit}', expected: ',', or identifier`);
      }
    }
  }

  private parseExactValue(): string[] {
    const next = this.lookahead("values");
    if (next.tok === "eos" || next.tok === ",") return [""]; // `a=` selects the empty value
    const { tok, lit } = this.consume("values");
    if (tok === "identifier") return [lit];
    throw new SelectorError(`found '${lit}', expected: identifier`);
  }
}

function newRequirement(key: string, operator: Operator, values: string[] | null): Requirement {
  const err = requirementError(key, operator, values);
  if (err !== undefined) throw new SelectorError(err);
  return { key, operator, values: values ?? [] };
}

// ---------------------------------------------------------------------------------------------
// Public API

/** labels.Parse: `a=b,c!=d,e in (f,g),!h`. The empty string selects everything. */
export function parseLabelSelector(s: string): LabelSelector {
  return { requirements: byKey(new Parser(s).parse()), nothing: false };
}

const EXPRESSION_OPERATORS: Record<string, Operator> = {
  In: "in",
  NotIn: "notin",
  Exists: "exists",
  DoesNotExist: "!",
};

/**
 * metav1.LabelSelectorAsSelector: null/undefined selects nothing, `{}` selects everything.
 * Throws SelectorError with upstream's text for invalid keys, values or operators.
 */
export function labelSelectorFromObject(sel: LabelSelectorObject | null | undefined): LabelSelector {
  if (sel === null || sel === undefined) return { requirements: [], nothing: true };
  const matchLabels = sel.matchLabels ?? {};
  const reqs: Requirement[] = [];
  for (const key of Object.keys(matchLabels).sort()) reqs.push(newRequirement(key, "=", [matchLabels[key]]));
  for (const expr of sel.matchExpressions ?? []) {
    const op = Object.hasOwn(EXPRESSION_OPERATORS, expr.operator)
      ? EXPRESSION_OPERATORS[expr.operator]
      : undefined;
    if (op === undefined)
      throw new SelectorError(`${goQuote(String(expr.operator))} is not a valid label selector operator`);
    reqs.push(newRequirement(expr.key, op, expr.values ? [...expr.values] : null));
  }
  return { requirements: byKey(reqs), nothing: false };
}

/**
 * labels.SelectorFromSet, for map selectors such as Service `spec.selector` and `nodeSelector`.
 * An empty or missing map selects everything; callers that treat that as "nothing" (Services)
 * must check isEmpty themselves, as upstream controllers do.
 */
export function labelSelectorFromSet(set: Record<string, string> | null | undefined): LabelSelector {
  const reqs = Object.keys(set ?? {}).map(
    (key): Requirement => ({ key, operator: "=", values: [set![key]] }),
  );
  return { requirements: byKey(reqs), nothing: false };
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  if (sel.nothing) return false;
  const set = labels ?? {};
  return sel.requirements.every((r) => requirementMatches(r, set));
}

/** Canonical form, e.g. `app=web,tier in (a,b),!canary`. Nothing() prints as "" like upstream. */
export function selectorToString(sel: LabelSelector): string {
  return sel.nothing ? "" : sel.requirements.map(requirementToString).join(",");
}

/** True when the selector does not restrict anything (Nothing() is not empty: it restricts all). */
export function isEmpty(sel: LabelSelector): boolean {
  return !sel.nothing && sel.requirements.length === 0;
}
