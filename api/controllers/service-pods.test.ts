import { afterEach, describe, expect, it, vi } from "vitest";
import { startResync } from "./service-pods.ts";

describe("startResync", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("visits every key once per period, a share each second instead of one burst", () => {
    vi.useFakeTimers();
    const keys = Array.from({ length: 100 }, (_, i) => `ns/svc-${i}`);
    const seen: string[] = [];
    const stop = startResync(
      () => keys,
      (k) => seen.push(k),
      10_000,
    );
    vi.advanceTimersByTime(1000);
    expect(seen).toHaveLength(10);
    vi.advanceTimersByTime(9000);
    expect([...seen].sort()).toEqual([...keys].sort());
    vi.advanceTimersByTime(10_000);
    expect(seen).toHaveLength(200);
    stop();
    vi.advanceTimersByTime(10_000);
    expect(seen).toHaveLength(200);
  });
});
