// Tablet sizes: every screen at 820×1180 (portrait) and 1024×768 (landscape) fits the width — the page
// never scrolls sideways (wide tables scroll inside their panel) and the navigation stays on screen.
import { expect, test, type Page } from "@playwright/test";
import { env, shot, signIn } from "./helpers";

const SCREENS = ["fleet", "channels", "queue", "rules", "leads", "knowledge", "analytics", "system"];

async function overflow(page: Page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("main .screen > *, header.top, header.top nav a")]
      .filter((e) => e.getBoundingClientRect().right > width + 1)
      .map((e) => e.getAttribute("data-testid") ?? e.tagName.toLowerCase());
    return { page: document.documentElement.scrollWidth - width, wide };
  });
}

for (const [w, h, name] of [[820, 1180, "tablet-portrait"], [1024, 768, "tablet-landscape"]] as const) {
  test(`every screen fits ${w}×${h}`, async ({ page }) => {
    await page.setViewportSize({ width: w, height: h });
    await signIn(page, env("TGM_ADMIN_KEY"));
    for (const id of SCREENS) {
      await page.goto(`/#/${id}`);
      await expect(page.locator("main h1")).toBeVisible();
      await page.waitForLoadState("networkidle");
      expect({ id, ...(await overflow(page)) }).toEqual({ id, page: 0, wide: [] });
      if (id === (w < 1000 ? "fleet" : "system")) {
        await expect(page.locator('[data-testid="account-row"], [data-testid="service"]').first()).toBeVisible();
        await shot(page, `${name}-${id}`);
      }
    }
  });
}
