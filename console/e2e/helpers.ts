// What every spec shares: the environment tests/e2e/test_console_e2e.py sets, screenshots, sign-in.
import { type APIRequestContext, expect, type Page } from "@playwright/test";

export const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this from tests/e2e/test_console_e2e.py`);
  return v;
};
export const emulator = () => env("TGM_EMULATOR_ADMIN_URL");
export const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${env("TGM_SCREENSHOTS")}/${name}.png`, fullPage: true });

export async function signIn(page: Page, key: string, lang: "en" | "zh-Hant" = "en") {
  await page.goto("/");
  await page.getByTestId("lang").selectOption(lang);
  await page.locator('input[name="key"]').fill(key);
  await page.locator('form button[type="submit"]').click();
  await expect(page.getByTestId("live")).toHaveAttribute("data-state", "open");
}

/** One command through the gateway's public API, as any client would call it (the specs' setup:
 * what the console does not create itself); its `data`, or an error naming the envelope's. */
export async function command(request: APIRequestContext, name: string, body: object, key = env("TGM_ADMIN_KEY")) {
  const reply = await request.post(`/api/v1/commands/${name}`, { headers: { Authorization: `Bearer ${key}` }, data: body });
  const json = await reply.json();
  if (!json.ok) throw new Error(`${name}: ${JSON.stringify(json.error)}`);
  return json.data;
}
