// IPv4/IPv6 CIDR arithmetic. Parsing and printing go through the `ip-address` package; the range
// math is plain BigInt so IPv6 /64s and their counts stay exact.

import { Address4, Address6 } from "ip-address";

export interface Cidr {
  family: 4 | 6;
  /** The network (first) address as an integer. */
  network: bigint;
  prefixLength: number;
  /** Address width of the family: 32 or 128. */
  bits: 32 | 128;
}

/** Anything the functions below accept as a range: CIDR text or an already parsed Cidr. */
export type CidrLike = string | Cidr;

export interface ParseCidrOptions {
  /** Mask host bits away (`10.0.0.1/8` reads as 10.0.0.0/8) as Go's net.ParseCIDR does. */
  allowHostBits?: boolean;
}

/**
 * Parses `a.b.c.d/n` or `x::y/n`. Strict like Kubernetes validation: the prefix length is
 * required, IPv6 zones are rejected, and host bits must be zero (`10.0.0.1/8` is an error that
 * suggests `10.0.0.0/8`), so a range always has exactly one spelling.
 */
export function parseCidr(text: string, options: ParseCidrOptions = {}): Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) throw cidrError(text, "missing prefix length (e.g. 10.0.0.0/8 or fd00::/64)");
  const prefixText = text.slice(slash + 1);
  const { family, value, bits } = parseAddress(text.slice(0, slash), text);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    throw cidrError(text, `prefix length must be an integer from 0 to ${bits}`);
  }
  const cidr: Cidr = { family, network: value, prefixLength: Number(prefixText), bits };
  const masked: Cidr = { ...cidr, network: value & ~hostMask(cidr) };
  if (masked.network !== value && !options.allowHostBits) {
    throw cidrError(text, `host bits are set (did you mean ${formatCidr(masked)}?)`);
  }
  return masked;
}

/** Canonical text: lower-case, IPv6 zero runs compressed. */
export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.network)}/${cidr.prefixLength}`;
}

/**
 * Whether `inner` (a CIDR, or a single address like `10.96.0.10`) lies wholly inside `outer`.
 * Families never mix: IPv4-mapped IPv6 ranges do not contain IPv4 ranges.
 */
export function cidrContains(outer: CidrLike, inner: CidrLike): boolean {
  const a = toCidr(outer);
  const b = typeof inner === "string" && !inner.includes("/") ? addressAsCidr(inner) : toCidr(inner);
  const shift = BigInt(hostBits(a));
  return (
    a.family === b.family && b.prefixLength >= a.prefixLength && b.network >> shift === a.network >> shift
  );
}

/** Whether two ranges share any address. Prefix-aligned ranges overlap only by nesting. */
export function cidrOverlaps(first: CidrLike, second: CidrLike): boolean {
  const a = toCidr(first);
  const b = toCidr(second);
  return cidrContains(a, b) || cidrContains(b, a);
}

/** Number of addresses in the range (bigint: an IPv6 /64 holds 2^64). */
export function addressCount(cidr: CidrLike): bigint {
  return 1n << BigInt(hostBits(toCidr(cidr)));
}

/** How many `/newPrefixLength` subnets the range splits into. */
export function subnetCount(cluster: CidrLike, newPrefixLength: number): bigint {
  const c = toCidr(cluster);
  checkSubnetPrefix(c, newPrefixLength);
  return 1n << BigInt(newPrefixLength - c.prefixLength);
}

/** The `n`th (from 0) `/newPrefixLength` subnet of the range, e.g. 10.244.3.0/24 for n=3 of 10.244.0.0/16. */
export function nthSubnet(cluster: CidrLike, newPrefixLength: number, n: number | bigint): string {
  const c = toCidr(cluster);
  const count = subnetCount(c, newPrefixLength);
  const index = indexWithin(
    n,
    count,
    `subnet index ${n} is out of range for ${count} /${newPrefixLength} subnets of ${formatCidr(c)}`,
  );
  const size = 1n << BigInt(c.bits - newPrefixLength);
  return formatCidr({ ...c, network: c.network + index * size, prefixLength: newPrefixLength });
}

/**
 * The `n`th address of the range: 0 is the network address, so the service CIDR 10.96.0.0/12
 * gives 10.96.0.1 (the kubernetes Service) for n=1 and 10.96.0.10 (cluster DNS) for n=10.
 * Negative `n` counts from the end: -1 is the last (broadcast) address.
 */
export function nthAddress(cidr: CidrLike, n: number | bigint): string {
  const c = toCidr(cidr);
  const count = addressCount(c);
  const message = `address index ${n} is out of range for ${formatCidr(c)} (${count} addresses)`;
  const signed = toBigInt(n, message);
  const index = indexWithin(signed < 0n ? count + signed : signed, count, message);
  return formatAddress(c.family, c.network + index);
}

function toCidr(value: CidrLike): Cidr {
  return typeof value === "string" ? parseCidr(value) : value;
}

function addressAsCidr(text: string): Cidr {
  const { family, value, bits } = parseAddress(text, text);
  return { family, network: value, prefixLength: bits, bits };
}

function parseAddress(text: string, whole: string): { family: 4 | 6; value: bigint; bits: 32 | 128 } {
  if (text.includes("%")) throw cidrError(whole, "IPv6 zone identifiers are not allowed");
  try {
    if (text.includes(":")) return { family: 6, value: new Address6(text).bigInt(), bits: 128 };
    return { family: 4, value: new Address4(text).bigInt(), bits: 32 };
  } catch (err) {
    throw cidrError(whole, err instanceof Error ? err.message : String(err));
  }
}

function formatAddress(family: 4 | 6, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

function hostBits(cidr: Cidr): number {
  return cidr.bits - cidr.prefixLength;
}

function hostMask(cidr: Cidr): bigint {
  return (1n << BigInt(hostBits(cidr))) - 1n;
}

function checkSubnetPrefix(cluster: Cidr, newPrefixLength: number): void {
  if (
    !Number.isInteger(newPrefixLength) ||
    newPrefixLength < cluster.prefixLength ||
    newPrefixLength > cluster.bits
  ) {
    throw new Error(
      `subnet prefix length /${newPrefixLength} must be an integer from ${cluster.prefixLength} to ${cluster.bits} to split ${formatCidr(cluster)}`,
    );
  }
}

function toBigInt(n: number | bigint, message: string): bigint {
  if (typeof n === "number" && !Number.isSafeInteger(n)) throw new Error(message);
  return BigInt(n);
}

function indexWithin(n: number | bigint, count: bigint, message: string): bigint {
  const index = toBigInt(n, message);
  if (index < 0n || index >= count) throw new Error(message);
  return index;
}

function cidrError(text: string, why: string): Error {
  return new Error(`invalid CIDR ${JSON.stringify(text)}: ${why}`);
}
