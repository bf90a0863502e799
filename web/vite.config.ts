import { defineConfig } from "vitest/config";

// One page, no third-party origins: everything the portal loads is built into dist/.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
  test: { include: ["test/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
});
