import { en } from "./en";
import { CATALOGUES, formatTime, translator } from "./index";
import { zhHant } from "./zh-Hant";

test("both catalogues have exactly the same keys, none empty", () => {
  expect(Object.keys(zhHant).sort()).toEqual(Object.keys(en).sort());
  for (const cat of Object.values(CATALOGUES)) for (const v of Object.values(cat)) expect(v.trim()).not.toBe("");
});

test("placeholders match between the languages", () => {
  const vars = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join();
  for (const k of Object.keys(en) as (keyof typeof en)[]) expect(vars(zhHant[k])).toBe(vars(en[k]));
});

test("the translator fills placeholders", () => {
  expect(translator("en")("fleet.floodLeft", { seconds: 42 })).toBe("flood wait, 42 s left");
  expect(translator("zh-Hant")("fleet.floodLeft", { seconds: 42 })).toBe("限流等待，剩 42 秒");
});

test("times are shown in the operator's timezone", () => {
  const d = "2026-01-02T03:04:05Z";
  const local = new Date(d);
  const shown = formatTime("en", d);
  expect(shown).toContain(String(local.getMinutes()).padStart(2, "0"));
  expect(shown).toContain(String(local.getHours()).padStart(2, "0"));
  expect(formatTime("en", null)).toBe("—");
});
