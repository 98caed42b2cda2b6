// Fleet's extras and the Channels screen against the real stack (after console.spec.ts logged in two
// accounts): a bulk role change, a proxy test that names why it failed, the credential pool; a Tailchat
// app registered (no server check), its callback URL shown once, the token rotated; a viewer's Channels
// without a control.
import { expect, test } from "@playwright/test";
import { env, shot, signIn } from "./helpers";

test.describe.configure({ mode: "serial" });

test("fleet: bulk role on the selected accounts, a proxy tested, the credential pool", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  for (const phone of [env("TGM_CODE_PHONE"), env("TGM_QR_PHONE")]) {
    await page.getByRole("checkbox", { name: `Select ${phone}` }).check();
  }
  const bulk = page.getByTestId("bulk");
  await expect(bulk).toContainText("2 selected");
  await bulk.locator('select[name="bulk-role"]').selectOption("sender");
  await bulk.getByRole("button", { name: "Set role" }).click();
  await expect(bulk.getByTestId("bulk-result")).toHaveAttribute("data-ok", "true");
  await expect(bulk.getByTestId("bulk-result")).toContainText("2 of 2 done.");
  const row = page.locator(`[data-testid="account-row"][data-phone="${env("TGM_CODE_PHONE")}"]`);
  await expect(row).toContainText("sender");
  // A proxy nobody listens on: the test answers, and says why it failed.
  const proxies = page.getByTestId("proxies");
  await proxies.locator('input[name="proxy-host"]').fill("socks5://127.0.0.1:9");
  await proxies.getByRole("button", { name: "Test proxy" }).click();
  await expect(proxies.getByTestId("proxy-result")).toHaveAttribute("data-ok", "false");
  await expect(proxies.getByTestId("proxy-result")).toContainText("Failed (");
  await expect(page.getByTestId("api-credentials")).toContainText("account places in use");
  await expect(page.getByTestId("credential-scrape").locator('select[name="scrape-account"]')).toContainText(env("TGM_QR_PHONE"));
  await shot(page, "fleet-tools");
});

test("channels: register a Tailchat app, its callback URL once, rotate the token; a viewer only reads", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Channels" }).click();
  const register = page.getByTestId("tailchat-register");
  await register.locator('input[name="tc-server"]').fill("http://127.0.0.1:9");
  await register.locator('input[name="tc-app-id"]').fill("e2e-app");
  await register.locator('input[name="tc-secret"]').fill("e2e-app:not-shown-again");
  await register.locator('input[name="tc-name"]').fill("support desk");
  await register.locator('input[name="tc-check"]').uncheck();
  await register.getByRole("button", { name: "Register" }).click();
  await expect(register.getByTestId("registered-path")).toContainText("/api/v1/channels/tailchat/e2e-app/callback/");
  await expect(register.locator('input[name="tc-secret"]')).toHaveValue("");
  const app = page.locator('[data-testid="tailchat-app"][data-app="e2e-app"]');
  await expect(app).toHaveAttribute("data-status", "unchecked");
  await expect(page.locator("body")).not.toContainText("not-shown-again");
  page.once("dialog", (d) => void d.accept());
  await app.getByRole("button", { name: "Rotate token" }).click();
  const rotated = page.getByTestId("callback-path");
  await expect(rotated).toContainText("/api/v1/channels/tailchat/e2e-app/callback/");
  const first = await register.getByTestId("registered-path").textContent();
  expect(await rotated.textContent()).not.toContain(first!.split("callback/")[1]);
  await shot(page, "channels");
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, env("TGM_VIEWER_KEY"));
  await page.goto("/#/channels");
  await expect(page.locator('[data-testid="tailchat-app"][data-app="e2e-app"]')).toBeVisible();
  await expect(page.getByTestId("tailchat-apps").getByRole("button")).toHaveCount(0);
  await expect(page.getByTestId("tailchat-register")).toHaveCount(0);
  await expect(page.getByTestId("tailchat-bot-info")).toHaveCount(0);
});
