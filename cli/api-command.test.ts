import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { checkServiceFlags } from "./api-command.ts";
import { UsageError } from "./args.ts";

const run = promisify(execFile);
const KEMU = new URL("../bin/kemu", import.meta.url).pathname;

function refusal(...args: Parameters<typeof checkServiceFlags>): string {
  try {
    checkServiceFlags(...args);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error("expected a UsageError");
}

describe("kemu api Service flags", () => {
  it("accepts the defaults and well-formed values", () => {
    checkServiceFlags(undefined, undefined, undefined);
    checkServiceFlags("10.100.0.0/16", "31000-31999", "192.168.77.0/28", "192.168.77.1");
    checkServiceFlags(undefined, undefined, "172.30.0.200-172.30.0.250");
  });

  it("names the flag and the reason for each bad value", () => {
    expect(refusal("10.96.0.1/12", undefined, undefined)).toBe(
      'kemu api: --service-cluster-ip-range: invalid CIDR "10.96.0.1/12": host bits are set (did you mean 10.96.0.0/12?)',
    );
    expect(refusal("10.0.0.0/8", undefined, undefined)).toBe(
      "kemu api: --service-cluster-ip-range: specified 10.0.0.0/8 is too large; for 32-bit addresses, the mask must be >= 12",
    );
    expect(refusal(undefined, "32767-30000", undefined)).toBe(
      'kemu api: --service-node-port-range: invalid port range "32767-30000": the end (30000) is below the start (32767)',
    );
    expect(refusal(undefined, undefined, "10.0.0.9-10.0.0.1")).toBe(
      'kemu api: --load-balancer-pool: invalid address pool "10.0.0.9-10.0.0.1": the end address is below the start address',
    );
    expect(refusal(undefined, undefined, "10.96.10.0/24")).toBe(
      "kemu api: --load-balancer-pool 10.96.10.0/24 overlaps the service range 10.96.0.0/12; pick addresses outside it",
    );
    expect(refusal(undefined, undefined, undefined, "api.local")).toBe(
      'kemu api: --advertise-address must be an IP address, got "api.local"',
    );
  });

  it("exits with usage status 2 and the message before starting anything", async () => {
    const r = await run(KEMU, [
      "api",
      "--data-dir",
      "/nonexistent/kemu",
      "--service-node-port-range",
      "30000-70000",
    ]).catch((e) => e);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'kemu api: --service-node-port-range: invalid port range "30000-70000": ports must be between 1 and 65535',
    );
  });
});
