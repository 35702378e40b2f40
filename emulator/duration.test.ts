import { describe, expect, it } from "vitest";
import { ageSince, humanDuration, rfc3339, rfc3339Micro, shortHumanDuration } from "./duration.ts";

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;

describe("humanDuration", () => {
  it.each([
    [-3 * s, "<invalid>"],
    [-1500, "0s"],
    [0, "0s"],
    [5 * s, "5s"],
    [119 * s, "119s"],
    [2 * m, "2m"],
    [3 * m + 20 * s, "3m20s"],
    [9 * m + 59 * s, "9m59s"],
    [10 * m + 30 * s, "10m"],
    [179 * m, "179m"],
    [3 * h, "3h"],
    [3 * h + 5 * m, "3h5m"],
    [7 * h + 59 * m, "7h59m"],
    [8 * h + 30 * m, "8h"],
    [47 * h, "47h"],
    [2 * d, "2d"],
    [2 * d + 3 * h, "2d3h"],
    [7 * d + 23 * h, "7d23h"],
    [8 * d + 5 * h, "8d"],
    [45 * d, "45d"],
    [729 * d, "729d"],
    [730 * d, "2y"],
    [740 * d, "2y10d"],
    [8 * 365 * d, "8y"],
    [10 * 365 * d + 100 * d, "10y"],
  ])("%d ms -> %s", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
});

describe("shortHumanDuration", () => {
  it("keeps one unit", () => {
    expect(shortHumanDuration(59 * s)).toBe("59s");
    expect(shortHumanDuration(3 * m + 20 * s)).toBe("3m");
    expect(shortHumanDuration(2 * d + 3 * h)).toBe("2d");
    expect(shortHumanDuration(400 * d)).toBe("1y");
  });
});

describe("timestamps", () => {
  const t = new Date("2026-11-24T14:15:26.123Z");

  it("formats metav1.Time without fractional seconds", () => {
    expect(rfc3339(t)).toBe("2026-11-24T14:15:26Z");
    expect(rfc3339(t.getTime())).toBe("2026-11-24T14:15:26Z");
  });

  it("formats metav1.MicroTime with six digits", () => {
    expect(rfc3339Micro(t)).toBe("2026-11-24T14:15:26.123000Z");
    expect(rfc3339Micro(new Date("2026-11-24T14:15:26Z"))).toBe("2026-11-24T14:15:26.000000Z");
  });

  it("ages a timestamp, <unknown> when unset", () => {
    const now = new Date("2026-11-24T14:18:46Z");
    expect(ageSince("2026-11-24T14:15:26Z", now)).toBe("3m20s");
    expect(ageSince("2026-11-24T14:15:26.123456Z", now)).toBe("3m19s");
    expect(ageSince(undefined, now)).toBe("<unknown>");
    expect(ageSince(null, now)).toBe("<unknown>");
  });
});
