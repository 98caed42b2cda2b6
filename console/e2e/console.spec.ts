// The operator's journeys through the console, against the real stack and the emulator.
// Each screen's screenshot goes to $TGM_SCREENSHOTS (docs/console/), which the READMEs show.
import { expect, test } from "@playwright/test";
import { emulator, env, shot, signIn } from "./helpers";

test.describe.configure({ mode: "serial" });

test("sign in with a key kept in session storage, never in the URL", async ({ page }) => {
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto("/");
  await page.getByTestId("lang").selectOption("en");
  await shot(page, "sign-in");
  await page.locator('input[name="key"]').fill("not-a-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("UNAUTHORIZED");
  await page.locator('input[name="key"]').fill(env("TGM_ADMIN_KEY"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("role")).toHaveText("Role: admin");
  await expect(page.getByTestId("live")).toHaveAttribute("data-state", "open");
  expect(page.url()).not.toContain(env("TGM_ADMIN_KEY"));
  expect(await page.evaluate(() => sessionStorage.getItem("tgm.key"))).toBe(env("TGM_ADMIN_KEY"));
  expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(env("TGM_ADMIN_KEY"));
  // A reload keeps the tab signed in.
  await page.reload();
  await expect(page.getByTestId("role")).toHaveText("Role: admin");
  expect(errors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
});

test("add an account by phone: code, then 2FA, inline; the list updates live", async ({ page, request }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  const phone = env("TGM_CODE_PHONE");
  const add = page.getByTestId("add-phone");
  await add.locator('input[name="phone"]').fill(phone);
  await add.getByRole("button", { name: "Send code" }).click();
  await expect(add.locator('input[name="code"]')).toBeVisible();
  const code = await (await request.get(`${emulator()}/users/${encodeURIComponent(phone)}/code`)).json();
  await add.locator('input[name="code"]').fill(String(code.code ?? code.last_code ?? code));
  await add.getByRole("button", { name: "Verify code" }).click();
  await add.locator('input[name="password"]').fill(env("TGM_CODE_PASSWORD"));
  await add.getByRole("button", { name: "Submit password" }).click();
  await expect(add.getByRole("status")).toContainText(`${phone} is logged in`);
  await expect(page.locator(`[data-testid="account-row"][data-phone="${phone}"]`)).toHaveAttribute("data-state", "active");
  await shot(page, "fleet");
});

test("QR login: the page shows the code, the emulator scans it, the account appears", async ({ page, request }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  const qr = page.getByTestId("qr-login");
  await qr.getByRole("button", { name: "Show a QR code" }).click();
  const canvas = qr.getByTestId("qr-code");
  await expect(canvas).toHaveAttribute("data-url", /^tg:\/\/login\?token=/);
  await expect(qr.getByTestId("qr-expires")).toContainText("Expires in");
  await shot(page, "fleet-qr");
  const url = (await canvas.getAttribute("data-url"))!;
  const token = url.split("token=")[1];
  const scan = await request.post(`${emulator()}/qr/accept`, { data: { user: env("TGM_QR_PHONE"), token } });
  expect(scan.ok(), await scan.text()).toBeTruthy();
  await expect(qr.getByRole("status")).toContainText(`Logged in as`);
  await expect(page.locator(`[data-testid="account-row"][data-phone="${env("TGM_QR_PHONE")}"]`)).toHaveAttribute("data-state", "active");
});

test("a send's progress and result appear live in the task centre", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Queue and tasks" }).click();
  const send = page.getByTestId("send");
  await send.locator('select[name="account"]').selectOption({ label: env("TGM_CODE_PHONE") });
  await send.locator('input[name="peer"]').fill(`@${env("TGM_FRIEND")}`);
  await send.locator('textarea[name="text"]').fill("hello from the console");
  await send.getByRole("button", { name: "Queue the message" }).click();
  const jobId = await send.getByTestId("send-queued").getAttribute("data-job");
  const row = page.locator(`[data-testid="job-row"][data-job="${jobId}"]`);
  await expect(row).toBeVisible();
  await expect(row).toHaveAttribute("data-state", "sent");
  await expect(row.locator("td").nth(7)).toHaveText(/^\d+$/); // the Telegram message id
  await expect(page.getByTestId("total-sent").locator("dd")).not.toHaveText("0");
  await shot(page, "queue");
});

test("monitoring and rules: a keyword set, a rule from the form, and its dry run", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Monitoring and rules" }).click();
  const sets = page.getByTestId("keyword-sets");
  await sets.locator('input[name="set-name"]').fill("prices");
  await sets.locator('input[name="set-keywords"]').fill("price, 價格");
  await sets.getByRole("button", { name: "Save keyword set" }).click();
  await expect(sets.getByRole("cell", { name: "prices" })).toBeVisible();
  const form = page.getByTestId("rule-form");
  await form.locator('input[name="rule-name"]').fill("price question");
  await form.locator('select[name="rule-sets"]').selectOption({ label: "prices" });
  await form.locator('input[name="rule-action-0-message"]').fill("someone asks about prices");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("rule-row").filter({ hasText: "price question" })).toBeVisible();
  const probe = page.getByTestId("rule-test");
  await probe.locator('select[name="test-rule"]').selectOption({ label: "price question" });
  await probe.locator('textarea[name="test-text"]').fill("what is the price?");
  await probe.getByRole("button", { name: "Test" }).click();
  await expect(probe.getByTestId("rule-test-result")).toHaveAttribute("data-would-fire", "true");
  await expect(probe.getByTestId("rule-test-result")).toContainText("price");
  await shot(page, "rules");
});

test("a viewer key sees no write buttons, and a forced write is refused", async ({ page }) => {
  await signIn(page, env("TGM_VIEWER_KEY"));
  await expect(page.getByTestId("role")).toHaveText("Role: viewer");
  await expect(page.locator('[data-testid="account-row"]').first()).toBeVisible();
  await expect(page.getByTestId("add-phone")).toHaveCount(0);
  await expect(page.getByTestId("qr-login")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Remove" })).toHaveCount(0);
  await shot(page, "viewer-fleet");
  await page.getByRole("link", { name: "Queue and tasks" }).click();
  await expect(page.getByTestId("queue-paused")).toHaveAttribute("data-paused", "false");
  await expect(page.getByRole("button", { name: /Pause queue|Resume queue|Clear/ })).toHaveCount(0);
  await expect(page.getByTestId("send")).toHaveCount(0);
  await page.getByRole("link", { name: "Monitoring and rules" }).click();
  await expect(page.getByRole("button", { name: "Save keyword set" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Save", exact: true })).toHaveCount(0);
  // Forced: the same request the button would make, with the viewer's key, from the page.
  const forced = await page.evaluate(async () => {
    const r = await fetch("/api/v1/commands/pause-queue", {
      method: "POST",
      headers: { Authorization: `Bearer ${sessionStorage.getItem("tgm.key")}` },
      body: JSON.stringify({ scope: "all" }),
    });
    return { status: r.status, body: await r.json() };
  });
  expect(forced.status).toBe(403);
  expect(forced.body.error.code).toBe("FORBIDDEN");
});

test("switching language changes every label, and it is remembered", async ({ page }) => {
  await signIn(page, env("TGM_ADMIN_KEY"), "zh-Hant");
  await expect(page.getByRole("link", { name: "帳號" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "以電話新增帳號" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-Hant");
  await shot(page, "fleet-zh-hant");
  await page.getByTestId("lang").selectOption("en");
  await expect(page.getByRole("link", { name: "Fleet" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Add an account by phone" })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("link", { name: "Fleet" })).toBeVisible();
  // Keyboard: the navigation is reachable and followed with Tab and Enter.
  await page.getByRole("link", { name: "Fleet" }).focus();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { level: 1, name: "Channels" })).toBeVisible();
});
