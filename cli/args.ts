// Flag parsing shared by every subcommand: node:util parseArgs in strict mode, with errors that
// name the flag and point at --help.

import { parseArgs } from "node:util";

export class UsageError extends Error {}

export type FlagSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; default?: string | boolean }
>;

export function parseFlags<T extends FlagSpec>(
  command: string,
  argv: string[],
  flags: T,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...flags, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    throw new UsageError(`kemu ${command}: ${(e as Error).message}\nRun 'kemu ${command} --help' for usage.`);
  }
}

export function intFlag(
  command: string,
  name: string,
  value: string | boolean | string[] | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(
      `kemu ${command}: --${name} must be an integer between ${min} and ${max}, got "${value}"`,
    );
  }
  return n;
}

/** Parses durations like 40s, 5m, 1h, 500ms into milliseconds. */
export function durationFlag(
  command: string,
  name: string,
  value: string | boolean | string[] | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? /^(\d+)(ms|s|m|h)$/.exec(value) : null;
  if (!m)
    throw new UsageError(
      `kemu ${command}: --${name} must be a duration like 500ms, 40s, 5m or 1h, got "${value}"`,
    );
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}
