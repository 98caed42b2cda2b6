// The second slice's screens against the real stack (tg-session, campaign, ai, analytics): Leads
// (the board, then editing a lead), Knowledge and AI, Analytics, System. Runs after console.spec.ts
// (which logged in the accounts and sent a message); each case writes its screen's screenshot.
import { expect, test } from "@playwright/test";
import { env, shot, signIn } from "./helpers";

test.describe.configure({ mode: "serial" });

test("leads: drag a card to another stage, its timeline shows it, the blacklist", async ({ page }) => {
  const sockets: string[] = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  await signIn(page, env("TGM_ADMIN_KEY"));
  expect(sockets.length).toBeGreaterThan(0);
  expect(sockets.filter((u) => u.includes("token") || u.includes(env("TGM_ADMIN_KEY")))).toEqual([]);
  await page.getByRole("link", { name: "Leads" }).click();
  const card = page.locator('[data-testid="lead-card"]', { hasText: "Ada Lead" });
  await expect(page.locator('[data-stage="new"]').locator('[data-testid="lead-card"]', { hasText: "Ada Lead" })).toBeVisible();
  await card.dragTo(page.locator('[data-testid="stage"][data-stage="replied"]'));
  // Moved by the server, and shown there because its lead-stage-changed event came back.
  await expect(page.locator('[data-stage="replied"]').locator('[data-testid="lead-card"]', { hasText: "Ada Lead" })).toBeVisible();
  await page.locator('[data-stage="replied"]').getByRole("button", { name: "Ada Lead" }).click();
  const details = page.getByTestId("lead-details");
  await expect(details.getByTestId("lead-stage")).toHaveText("replied");
  await expect(details.getByTestId("timeline")).toContainText("new → replied");
  const blacklist = page.getByTestId("blacklist");
  await blacklist.locator('input[name="blacklist-who"]').fill("@bob_lead");
  await blacklist.locator('input[name="blacklist-reason"]').fill("asked to stop");
  await blacklist.getByRole("button", { name: "Blacklist" }).click();
  await expect(blacklist.getByTestId("blacklisted")).toContainText("Bob Lead");
  await expect(page.getByTestId("funnel")).not.toContainText("Bob Lead");
  await shot(page, "leads");
});

test("leads: edit a lead — the gateway's refusal under its field, then the fields, stage and owner saved", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Leads" }).click();
  await page.getByTestId("funnel").getByRole("button", { name: "Ada Lead" }).click();
  const details = page.getByTestId("lead-details");
  await details.getByRole("button", { name: "Edit" }).click();
  const form = details.getByTestId("lead-edit");
  await expect(form.locator('input[name="lead-firstName"]')).toBeFocused();
  const phone = form.locator('input[name="lead-phone"]');
  await phone.fill("12ab");
  await form.locator('input[name="lead-tags"]').fill("vip, taipei");
  await form.getByRole("button", { name: "Save" }).click();
  // The gateway's contract refuses the phone: its message under the field, which takes the focus.
  await expect(form.locator('[data-testid="field-error"][data-field="phone"]')).toContainText("should match pattern");
  await expect(phone).toHaveAttribute("aria-invalid", "true");
  await expect(phone).toBeFocused();
  await expect(form.getByTestId("lead-edit-error")).toContainText("VALIDATION_ERROR");
  await shot(page, "lead-edit");
  await phone.fill("+886 912 345 678");
  await form.locator('textarea[name="lead-notes"]').fill("Asked for a quote");
  await form.locator('input[name="lead-assignee"]').fill("alice");
  await form.locator('select[name="lead-stage"]').selectOption("follow_up");
  await form.locator('input[name="lead-stageReason"]').fill("quote sent");
  await form.locator('input[name="lead-assignee"]').press("Enter"); // the keyboard's way to save
  await expect(form).toHaveCount(0);
  await expect(details.getByTestId("lead-tags")).toHaveText("vip, taipei");
  await expect(details.getByTestId("lead-notes")).toHaveText("Asked for a quote");
  await expect(details.getByTestId("lead-assignee")).toHaveText("alice");
  await expect(details).toContainText("+886912345678");
  await expect(details.getByTestId("lead-stage")).toHaveText("follow-up");
  await expect(details.getByTestId("timeline")).toContainText("replied → follow-up by");
  // The board still follows the stage, and still takes a drag.
  const card = page.locator('[data-stage="follow_up"]').locator('[data-testid="lead-card"]', { hasText: "Ada Lead" });
  await expect(card).toBeVisible();
  await card.dragTo(page.locator('[data-testid="stage"][data-stage="contacted"]'));
  await expect(page.locator('[data-stage="contacted"]').locator('[data-testid="lead-card"]', { hasText: "Ada Lead" })).toBeVisible();
});

test("knowledge and AI: upload with progress to ready, search with citations, test, usage", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Knowledge and AI" }).click();
  const docs = page.getByTestId("documents");
  await docs.locator('input[name="document"]').setInputFiles({
    name: "shipping.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("Shipping to Taipei takes 3 to 5 days.\n\nReturns are accepted within 14 days of delivery."),
  });
  await docs.locator('input[name="doc-title"]').fill("Shipping policy");
  await docs.getByRole("button", { name: "Upload" }).click();
  await expect(docs.locator('[data-testid="document"][data-title="Shipping policy"]')).toHaveAttribute("data-state", "ready");
  const search = page.getByTestId("knowledge-search");
  await search.locator('input[name="query"]').fill("how long does shipping take");
  await search.getByRole("button", { name: "Search" }).click();
  await expect(search.getByTestId("hit").first()).toContainText("3 to 5 days");
  await expect(search.getByTestId("citation").first()).toContainText("Shipping policy");
  const probe = page.getByTestId("ai-test");
  await probe.getByRole("button", { name: "Test" }).click();
  await expect(probe.getByTestId("ai-test-result")).toHaveAttribute("data-ok", "true");
  // Keys are write-only: the admin's form has empty password fields, never a key.
  for (const p of ["openai", "maiagent", "dmflow"]) await expect(page.locator(`input[name="${p}-apiKey"]`)).toHaveValue("");
  // Usage counts generated replies (a connection test is not one): shown as the service counts them.
  await expect(page.getByTestId("usage-calls").locator("dd")).toHaveText(/^\d+$/);
  await shot(page, "knowledge");
});

test("analytics: dashboard and charts with ranges; a report downloads; a schedule is saved", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Analytics" }).click();
  // The message console.spec.ts sent is counted.
  await expect(page.getByTestId("chart-messages-sent")).toHaveAttribute("data-total", /^[1-9]/);
  await expect(page.getByTestId("chart-messages").locator("svg polyline")).toHaveCount(3);
  await page.locator('select[name="range"]').selectOption("24h");
  await expect(page.getByTestId("chart-messages").locator("svg")).toHaveAttribute("data-buckets", /^(2[4-5])$/);
  const exporter = page.getByTestId("export");
  const download = page.waitForEvent("download");
  await exporter.getByRole("button", { name: "Download" }).click();
  expect((await download).suggestedFilename()).toMatch(/\.csv$/);
  await expect(exporter.getByTestId("exported")).toContainText("rows downloaded");
  const schedules = page.getByTestId("schedules");
  await schedules.locator('input[name="schedule-name"]').fill("daily summary");
  await schedules.getByRole("button", { name: "Schedule" }).click();
  await expect(schedules.locator('[data-testid="schedule"][data-name="daily summary"]')).toBeVisible();
  await shot(page, "analytics");
});

test("system: health, a backup with its progress to completed, logs, settings, API keys", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "System" }).click();
  for (const s of ["tg-session", "campaign", "ai", "analytics"]) {
    await expect(page.locator(`[data-testid="service"][data-service="${s}"]`)).toHaveAttribute("data-status", "up");
  }
  const backups = page.getByTestId("backups");
  await backups.locator('input[name="backup-label"]').fill("console-e2e");
  await backups.getByRole("button", { name: "Back up now" }).click();
  await expect(backups.locator('[data-testid="backup"][data-label="console-e2e"]')).toHaveAttribute("data-state", "completed");
  await expect(page.getByTestId("migrations-state")).toHaveAttribute("data-up-to-date", "true");
  // Settings as forms: every section's fields carry a label from the catalogue, none a bare key.
  const settings = page.getByTestId("settings");
  const sections = await settings.locator('select[name="section"] option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(sections).toEqual(expect.arrayContaining(["general", "telegram", "pacing", "compliance", "ai", "analytics"]));
  for (const section of sections) {
    await settings.locator('select[name="section"]').selectOption(section);
    const form = settings.locator(`[data-testid="settings-form"][data-section="${section}"]`);
    await expect(form.locator("label").first()).toBeVisible();
    const labels = await form.locator("label").allInnerTexts();
    expect(labels.filter((l) => /^[a-z]+[A-Z][A-Za-z]*$/.test(l.trim()))).toEqual([]);
  }
  await settings.locator('select[name="section"]').selectOption("pacing");
  await expect(page.locator('[data-testid="api-key"][data-name="console-viewer"]')).toBeVisible();
  await expect(page.getByTestId("log-line").first()).toBeVisible();
  await shot(page, "system");
  // The viewer: the same screens, no write control on any of them.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, env("TGM_VIEWER_KEY"));
  await page.goto("/#/system");
  await expect(page.getByTestId("backups")).toBeVisible();
  await expect(page.getByRole("button", { name: /Back up now|Restore|Run migrations|Dismiss|Save/ })).toHaveCount(0);
  await expect(page.getByTestId("keys")).toHaveCount(0);
  await page.goto("/#/leads");
  await expect(page.getByTestId("funnel")).toBeVisible();
  await expect(page.getByTestId("funnel").getByRole("combobox")).toHaveCount(0);
  await page.goto("/#/knowledge");
  await expect(page.getByRole("button", { name: "Upload" })).toHaveCount(0);
});
