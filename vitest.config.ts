import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "emulator/**/*.test.ts",
      "api/**/*.test.ts",
      "agent/**/*.test.ts",
      "cli/**/*.test.ts",
      "dns/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
