import { defineConfig } from "vitest/config";

// The browser tests (web/browser/): real headless Chromium on a `medvault portal --demo` stack,
// one stack per file, files one after another (two cores; each stack is a chain, IPFS, keepers).
// `npm run browser` runs them; MEDVAULT_BROWSER_BENCH=1 runs browser/bench.ts instead (figures, not a test).
const bench = Boolean(process.env.MEDVAULT_BROWSER_BENCH);

export default defineConfig({
  test: {
    include: bench ? ["browser/bench.ts"] : ["browser/**/*.test.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 90_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ["default"],
  },
});
