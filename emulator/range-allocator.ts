// The allocators behind Services: cluster IPs from the service CIDR, node ports from the node port
// range (both as kube-apiserver's bitmap allocators behave: a random pick in the upper part of the
// range, the lower "static" band kept for users who choose a value, then the band itself when the
// rest is full), and load-balancer addresses from a pool (lowest free first, as MetalLB hands them
// out). State lives in memory only; the Services in the store are the truth it is rebuilt from.

import { Address4, Address6 } from "ip-address";
import { addressCount, formatCidr, parseCidr } from "./cidr.ts";
import { parseIP } from "./validation.ts";

export type RangeErrorCode = "not-in-range" | "allocated" | "full";

/** Allocation failures with upstream's messages (ipallocator / portallocator errors). */
export class RangeAllocationError extends Error {
  readonly code: RangeErrorCode;
  constructor(code: RangeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** min(max(min, size/step), max), or 0 for tiny ranges: upstream's calculateRangeOffset. */
function staticBand(size: number, min: number, max: number, step: number): number {
  if (size < min) return 0;
  const offset = Math.floor(size / step);
  if (offset < min) return min;
  return Math.min(offset, max);
}

/** Taken offsets in [0, size): a random free offset above the static band, then inside it. */
export class OffsetAllocator {
  readonly size: number;
  readonly band: number;
  private readonly used = new Set<number>();
  private readonly random: () => number;

  constructor(size: number, band: number, random: () => number = Math.random) {
    this.size = size;
    this.band = Math.min(band, size);
    this.random = random;
  }

  has(offset: number): boolean {
    return this.used.has(offset);
  }

  /** Marks `offset` taken; false when it already was. */
  take(offset: number): boolean {
    if (this.used.has(offset)) return false;
    this.used.add(offset);
    return true;
  }

  release(offset: number): void {
    this.used.delete(offset);
  }

  next(): number | undefined {
    const upper = this.size - this.band;
    if (upper > 0) {
      const start = Math.floor(this.random() * upper);
      for (let i = 0; i < upper; i++) {
        const at = this.band + ((start + i) % upper);
        if (!this.used.has(at)) {
          this.used.add(at);
          return at;
        }
      }
    }
    if (this.band > 0) {
      const start = Math.floor(this.random() * this.band);
      for (let i = 0; i < this.band; i++) {
        const at = (start + i) % this.band;
        if (!this.used.has(at)) {
          this.used.add(at);
          return at;
        }
      }
    }
    return undefined;
  }

  get count(): number {
    return this.used.size;
  }

  offsets(): number[] {
    return [...this.used].sort((a, b) => a - b);
  }

  clear(): void {
    this.used.clear();
  }
}

function formatIP(family: 4 | 6, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

/** Checks a --service-cluster-ip-range value; returns the canonical CIDR or throws with the reason. */
export function validateServiceCidr(text: string): string {
  const cidr = parseCidr(text);
  const hostBits = cidr.bits - cidr.prefixLength;
  if (hostBits > 20) {
    throw new Error(
      `specified ${text} is too large; for ${cidr.bits}-bit addresses, the mask must be >= ${cidr.bits - 20}`,
    );
  }
  if (usableAddresses(cidr.family, addressCount(cidr)) < 1) {
    throw new Error(`specified ${text} is too small: it has no address left for Services`);
  }
  return formatCidr(cidr);
}

function usableAddresses(family: 4 | 6, size: bigint): number {
  // The network address is never handed out; nor is the IPv4 broadcast address. IPv6 ranges are
  // capped at 65536 addresses, as upstream's bitmap is.
  const n = family === 4 ? size - 2n : (size > 65536n ? 65536n : size) - 1n;
  return n > 0n ? Number(n) : 0;
}

/** Cluster IPs of one family from the service CIDR (ipallocator.Range). */
export class ServiceIPRange {
  readonly cidr: string;
  readonly family: "IPv4" | "IPv6";
  private readonly bits: 4 | 6;
  private readonly base: bigint;
  private readonly offsets: OffsetAllocator;

  constructor(cidr: string, random?: () => number) {
    this.cidr = validateServiceCidr(cidr);
    const parsed = parseCidr(this.cidr);
    this.bits = parsed.family;
    this.family = parsed.family === 4 ? "IPv4" : "IPv6";
    this.base = parsed.network + 1n;
    const size = addressCount(parsed);
    const rangeSize = size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size);
    this.offsets = new OffsetAllocator(
      usableAddresses(parsed.family, size),
      staticBand(rangeSize, 16, 256, 16),
      random,
    );
  }

  /** The first allocatable address: the `kubernetes` Service's. */
  first(): string {
    return formatIP(this.bits, this.base);
  }

  private offsetOf(ip: string): number | undefined {
    const parsed = parseIP(ip);
    if (!parsed || parsed.family !== this.bits || parsed.mapped4) return undefined;
    const offset = parsed.value - this.base;
    return offset >= 0n && offset < BigInt(this.offsets.size) ? Number(offset) : undefined;
  }

  /** Whether the address is one this range hands out. */
  contains(ip: string): boolean {
    return this.offsetOf(ip) !== undefined;
  }

  has(ip: string): boolean {
    const offset = this.offsetOf(ip);
    return offset !== undefined && this.offsets.has(offset);
  }

  allocate(ip: string): void {
    const offset = this.offsetOf(ip);
    if (offset === undefined) {
      throw new RangeAllocationError(
        "not-in-range",
        `the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.cidr}`,
      );
    }
    if (!this.offsets.take(offset))
      throw new RangeAllocationError("allocated", "provided IP is already allocated");
  }

  allocateNext(): string {
    const offset = this.offsets.next();
    if (offset === undefined) throw new RangeAllocationError("full", "range is full");
    return formatIP(this.bits, this.base + BigInt(offset));
  }

  release(ip: string): void {
    const offset = this.offsetOf(ip);
    if (offset !== undefined) this.offsets.release(offset);
  }

  allocated(): string[] {
    return this.offsets.offsets().map((o) => formatIP(this.bits, this.base + BigInt(o)));
  }

  get free(): number {
    return this.offsets.size - this.offsets.count;
  }

  clear(): void {
    this.offsets.clear();
  }
}

export interface PortRange {
  base: number;
  size: number;
}

/** Parses a --service-node-port-range value ("30000-32767", or "30000+2768" as net.ParsePortRange). */
export function parsePortRange(text: string): PortRange {
  const m = /^\s*(\d+)\s*(?:([-+])\s*(\d+))?\s*$/.exec(text);
  const fail = (why: string) => new Error(`invalid port range ${JSON.stringify(text)}: ${why}`);
  if (!m) throw fail("expected MIN-MAX, e.g. 30000-32767");
  const low = Number(m[1]);
  let high = low;
  if (m[2] === "-") high = Number(m[3]);
  else if (m[2] === "+") high = low + Number(m[3]);
  if (low < 1 || low > 65535 || high < 1 || high > 65535) throw fail("ports must be between 1 and 65535");
  if (high < low) throw fail(`the end (${high}) is below the start (${low})`);
  return { base: low, size: high - low + 1 };
}

/** Node ports (portallocator.PortAllocator). */
export class NodePortRange {
  readonly range: string;
  readonly base: number;
  private readonly offsets: OffsetAllocator;

  constructor(text = "30000-32767", random?: () => number) {
    const { base, size } = parsePortRange(text);
    this.base = base;
    this.range = `${base}-${base + size - 1}`;
    this.offsets = new OffsetAllocator(size, staticBand(size, 16, 128, 32), random);
  }

  contains(port: number): boolean {
    return Number.isInteger(port) && port >= this.base && port < this.base + this.offsets.size;
  }

  has(port: number): boolean {
    return this.contains(port) && this.offsets.has(port - this.base);
  }

  allocate(port: number): void {
    if (!this.contains(port)) {
      throw new RangeAllocationError(
        "not-in-range",
        `provided port is not in the valid range. The range of valid ports is ${this.range}`,
      );
    }
    if (!this.offsets.take(port - this.base)) {
      throw new RangeAllocationError("allocated", "provided port is already allocated");
    }
  }

  allocateNext(): number {
    const offset = this.offsets.next();
    if (offset === undefined) throw new RangeAllocationError("full", "range is full");
    return this.base + offset;
  }

  release(port: number): void {
    if (this.contains(port)) this.offsets.release(port - this.base);
  }

  allocated(): number[] {
    return this.offsets.offsets().map((o) => this.base + o);
  }

  get free(): number {
    return this.offsets.size - this.offsets.count;
  }

  clear(): void {
    this.offsets.clear();
  }
}

/**
 * A load-balancer address pool: a CIDR (every address in it, as MetalLB treats one) or an
 * inclusive "A-B" range of one family. Addresses are handed out lowest first.
 */
export class AddressPool {
  readonly text: string;
  private readonly bits: 4 | 6;
  private readonly start: bigint;
  private readonly end: bigint;
  private readonly used = new Set<bigint>();

  constructor(text: string) {
    const spec = text.trim();
    const fail = (why: string) => new Error(`invalid address pool ${JSON.stringify(text)}: ${why}`);
    if (spec.includes("/")) {
      let cidr: ReturnType<typeof parseCidr>;
      try {
        cidr = parseCidr(spec);
      } catch (e) {
        throw fail((e as Error).message);
      }
      this.bits = cidr.family;
      this.start = cidr.network;
      this.end = cidr.network + addressCount(cidr) - 1n;
      this.text = formatCidr(cidr);
      return;
    }
    const parts = spec.split("-");
    if (parts.length !== 2)
      throw fail("expected a CIDR (192.168.1.240/28) or a range (192.168.1.240-192.168.1.250)");
    const [a, b] = parts.map((p) => parseIP(p.trim()));
    if (!a || !b || a.leadingZeros || b.leadingZeros) throw fail("both ends must be IP addresses");
    if (a.family !== b.family) throw fail("both ends must be of the same IP family");
    if (b.value < a.value) throw fail("the end address is below the start address");
    this.bits = a.family;
    this.start = a.value;
    this.end = b.value;
    this.text = `${formatIP(a.family, a.value)}-${formatIP(b.family, b.value)}`;
  }

  private valueOf(ip: string): bigint | undefined {
    const parsed = parseIP(ip);
    if (!parsed || parsed.family !== this.bits) return undefined;
    return parsed.value >= this.start && parsed.value <= this.end ? parsed.value : undefined;
  }

  contains(ip: string): boolean {
    return this.valueOf(ip) !== undefined;
  }

  has(ip: string): boolean {
    const v = this.valueOf(ip);
    return v !== undefined && this.used.has(v);
  }

  /** Takes a specific address; false when it is outside the pool or already taken. */
  take(ip: string): boolean {
    const v = this.valueOf(ip);
    if (v === undefined || this.used.has(v)) return false;
    this.used.add(v);
    return true;
  }

  /** The lowest free address, taken; undefined when the pool is exhausted. */
  takeLowest(): string | undefined {
    for (let v = this.start; v <= this.end; v++) {
      if (!this.used.has(v)) {
        this.used.add(v);
        return formatIP(this.bits, v);
      }
    }
    return undefined;
  }

  release(ip: string): void {
    const v = this.valueOf(ip);
    if (v !== undefined) this.used.delete(v);
  }

  get size(): bigint {
    return this.end - this.start + 1n;
  }

  /** Whether any address of the pool lies in `cidr` (a pool must stay clear of the service range). */
  overlapsCidr(cidr: string): boolean {
    const c = parseCidr(cidr);
    if (c.family !== this.bits) return false;
    const last = c.network + addressCount(c) - 1n;
    return this.start <= last && c.network <= this.end;
  }

  get count(): number {
    return this.used.size;
  }

  clear(): void {
    this.used.clear();
  }
}
