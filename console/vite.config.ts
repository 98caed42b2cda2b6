import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The gateway serves dist/ at `/`; `npm run dev` proxies the API to a running gateway (TGM_GATEWAY_URL).
const gateway = process.env.TGM_GATEWAY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/api": { target: gateway, ws: true } } },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
    // A loaded 2-core machine (the suite runs beside the e2e stacks) makes a long screen test slow.
    testTimeout: 20_000,
  },
});
