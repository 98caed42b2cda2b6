// The task centre's ad campaigns and collaboration runs against the real stack and the emulator
// (after console.spec.ts logged in two accounts; the fixture made two groups: "Console Club" with
// both accounts and the friend, "Console Closed" where the QR account is banned). The campaign, the
// roles and the script are made through the public API, as any client could; the console starts,
// follows and advances them.
import { expect, test } from "@playwright/test";
import { command, emulator, env, shot, signIn } from "./helpers";

test.describe.configure({ mode: "serial" });

async function accountIds(request: Parameters<typeof command>[0]) {
  const items: { id: string; phone: string }[] = (await command(request, "get-accounts", { limit: 50 })).items;
  const id = (phone: string) => items.find((a) => a.phone === phone)!.id;
  return { code: id(env("TGM_CODE_PHONE")), qr: id(env("TGM_QR_PHONE")) };
}

test("an ad campaign started from the task centre: live progress, and the failed post's account and reason", async ({ page, request }) => {
  const ids = await accountIds(request);
  const template = (await command(request, "add-template", { name: "Console ad", category: "ad", content: "Spring sale, 20% off [console-ad]" })).template;
  const [club, closed] = env("TGM_AD_CHATS").split(",").map(Number);
  const ad = await command(request, "create-ad-campaign", {
    name: "Console spring ads",
    templateIds: [template.id],
    targets: [{ chat: club }, { chat: closed }],
    schedule: { type: "once", startAt: new Date().toISOString() },
    accounts: { accountIds: [ids.code, ids.qr] },
    accountStrategy: "relay", // the club's post from the code account, the closed group's from the QR one
  });
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Queue and tasks" }).click();
  const row = page.locator(`[data-testid="ad-campaign"][data-id="${ad.id}"]`);
  await expect(row).toHaveAttribute("data-status", "draft");
  await row.getByRole("button", { name: "Start" }).click();
  // Followed live: both posts settle (one sent, one refused by the group), the run completes.
  await expect(row.getByTestId("ad-progress")).toHaveAttribute("data-total", "2");
  await expect(row.getByTestId("ad-progress")).toHaveAttribute("data-done", "2");
  await expect(row.getByTestId("ad-counters")).toHaveAttribute("data-posted", "1");
  await expect(row.getByTestId("ad-counters")).toHaveAttribute("data-failed", "1");
  await expect(row).toHaveAttribute("data-status", "completed");
  await expect(row.getByRole("button", { name: "Stop" })).toHaveCount(0);
  await row.getByRole("button", { name: "Failures (1)" }).click();
  const troubles = page.locator(`[data-testid="troubles"][data-campaign="${ad.id}"]`);
  const qr = troubles.locator(`[data-testid="trouble-account"][data-account="${ids.qr}"]`);
  await expect(qr).toContainText(env("TGM_QR_PHONE"));
  await expect(qr).toContainText("chat_write_forbidden");
  await expect(troubles.locator(`[data-testid="trouble-account"][data-account="${ids.code}"]`)).toHaveCount(0);
  await expect(troubles.locator('[data-testid="job-row"][data-state="failed"]')).toHaveCount(1);
  await shot(page, "queue-ads");
});

test("a collaboration run appears live with its lines' progress; the manual stage is started from the task centre", async ({ page, request }) => {
  const ids = await accountIds(request);
  const role = async (name: string, account: string) =>
    (await command(request, "save-role", { name, type: "custom", boundAccountId: account, aiConfig: { typingSpeed: 2000 } })).id;
  const roles = { host: await role("Console host", ids.code), guest: await role("Console guest", ids.qr) };
  const line = (slot: string, text: string) => ({ slot, text, delaySeconds: 0, jitterSeconds: 0, simulateTyping: false });
  const script = await command(request, "save-script", {
    name: "Console club talk",
    roles: [{ key: "host" }, { key: "guest" }],
    stages: [
      { name: "open", lines: [line("host", "Welcome to the club [console-collab]")] },
      { name: "follow", trigger: { type: "manual" }, lines: [line("guest", "It works well for me [console-collab]")] },
    ],
  });
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Queue and tasks" }).click();
  await expect(page.getByTestId("collaborations")).toBeVisible();
  // Started while the page is open: the row comes by itself.
  const run = await command(request, "start-collaboration", {
    scriptId: script.id,
    roleBindings: roles,
    chat: Number(env("TGM_COLLAB_CHAT")),
    target: Number(env("TGM_COLLAB_TARGET")),
  });
  const row = page.locator(`[data-testid="collaboration"][data-id="${run.id}"]`);
  await expect(row).toContainText("Console club talk");
  await expect(row).toContainText("Console host");
  await expect(row.getByTestId("run-progress")).toHaveAttribute("data-sent", "1");
  await expect(row.getByTestId("run-progress")).toHaveAttribute("data-total", "2");
  await expect(row).toHaveAttribute("data-waiting", "manual");
  await expect(row).toHaveAttribute("data-status", "running");
  await expect(row).toContainText("an operator to start the next stage");
  await shot(page, "queue-collaboration");
  await row.getByRole("button", { name: "Start the next stage" }).click();
  await expect(row.getByTestId("run-progress")).toHaveAttribute("data-sent", "2");
  await expect(row).toHaveAttribute("data-status", "completed");
  await expect(row.getByRole("button", { name: /Stop|Start the next stage/ })).toHaveCount(0);
  // A viewer follows the same rows with no action on them.
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, env("TGM_VIEWER_KEY"));
  await page.goto("/#/queue");
  await expect(page.locator(`[data-testid="collaboration"][data-id="${run.id}"]`)).toHaveAttribute("data-status", "completed");
  await expect(page.getByTestId("ad-campaigns").locator('[data-testid="ad-campaign"]').first()).toBeVisible();
  await expect(page.getByRole("button", { name: /^(Start|Resume|Stop|Pause its sends|Resume its sends|Start the next stage)$/ })).toHaveCount(0);
});

test("a swarm started from the task centre answers a member's question live, and is stopped from the page", async ({ page, request }) => {
  // The roles and the script of the collaboration test above: the club talk's lines, played one per trigger.
  await signIn(page, env("TGM_ADMIN_KEY"));
  await page.getByRole("link", { name: "Queue and tasks" }).click();
  const panel = page.getByTestId("swarms");
  await panel.getByRole("button", { name: "Start a swarm" }).click();
  const form = page.getByTestId("swarm-form");
  await form.locator('input[name="swarm-chat"]').fill(env("TGM_COLLAB_CHAT"));
  await form.locator('select[name="swarm-roleIds"]').selectOption([{ label: "Console host" }, { label: "Console guest" }]);
  await form.locator('select[name="swarm-mode"]').selectOption("script");
  await form.locator('select[name="swarm-scriptId"]').selectOption({ label: "Console club talk" });
  await form.locator('input[name="swarm-replyProbability"]').fill("1");
  await form.locator('input[name="swarm-minIntervalSeconds"]').fill("10");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form).toHaveCount(0);
  const row = panel.locator('[data-testid="swarm"][data-status="running"]');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("Console host");
  await expect(row).toContainText("Console guest");
  // A member asks in the group: the swarm answers with the script's first line, followed live.
  const posted = await request.post(`${emulator()}/messages`, { data: { from: "console_friend", to: "consoleclub", text: "Does it really work for you? [console-swarm]" } });
  expect(posted.status()).toBe(201);
  await expect(row.getByTestId("swarm-activity")).toHaveAttribute("data-answered", "1");
  await expect(row.getByTestId("swarm-activity")).toHaveAttribute("data-sent", "1");
  await row.getByRole("button", { name: "Details" }).click();
  const detail = panel.getByTestId("swarm-detail");
  await expect(detail.locator('[data-testid="swarm-decision"][data-outcome="answered"]')).toHaveCount(1);
  await shot(page, "queue-swarm");
  page.once("dialog", (d) => void d.accept());
  await row.getByRole("button", { name: "Stop" }).click();
  await expect(panel.locator('[data-testid="swarm"][data-status="stopped"]')).toHaveCount(1);
  await expect(panel.locator('[data-testid="swarm"][data-status="running"]')).toHaveCount(0);
});
