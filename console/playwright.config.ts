import { defineConfig } from "@playwright/test";

// Run from tests/e2e/test_console_e2e.py, which starts the stack and the emulator and sets these.
export default defineConfig({
  testDir: "e2e",
  timeout: 90_000,
  expect: { timeout: 30_000 },
  workers: 1,
  fullyParallel: false,
  reporter: [["list"]],
  use: {
    baseURL: process.env.TGM_CONSOLE_URL,
    viewport: { width: 1280, height: 800 },
    timezoneId: "Asia/Taipei",
    launchOptions: { executablePath: process.env.TGM_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] },
  },
});
