import { describe, expect, it } from "vitest";
import { Limiter } from "./limiter.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("Limiter", () => {
  it("runs at most `limit` jobs at once, in the order they asked", async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const jobs = Array.from({ length: 6 }, (_, i) =>
      limiter.run(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await tick();
        running--;
        return i * 10;
      }),
    );
    expect(await Promise.all(jobs)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("frees the slot of a job that failed", async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.run(async () => "next")).toBe("next");
  });

  it("gives a waiting job the slot before a newcomer", async () => {
    const limiter = new Limiter(1);
    const order: string[] = [];
    let release!: () => void;
    const first = limiter.run(() => new Promise<void>((r) => (release = r)).then(() => order.push("first")));
    const second = limiter.run(async () => order.push("second"));
    release();
    await tick();
    const third = limiter.run(async () => order.push("third"));
    await Promise.all([first, second, third]);
    expect(order).toEqual(["first", "second", "third"]);
  });

  it("refuses a limit that is not a positive integer", () => {
    expect(() => new Limiter(0)).toThrow(/positive integer/);
    expect(() => new Limiter(1.5)).toThrow(/positive integer/);
  });
});
