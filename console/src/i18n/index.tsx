import { createContext, useContext } from "react";
import { en, type MessageKey } from "./en";
import { zhHant } from "./zh-Hant";

export type Lang = "zh-Hant" | "en";
export const CATALOGUES: Record<Lang, Record<MessageKey, string>> = { "zh-Hant": zhHant, en };
export const LANGS: { id: Lang; label: string }[] = [
  { id: "zh-Hant", label: "繁體中文" },
  { id: "en", label: "English" },
];

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

export function translator(lang: Lang): Translate {
  const cat = CATALOGUES[lang];
  return (key, vars) => {
    const text = cat[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, v) => (v in vars ? String(vars[v]) : m)) : text;
  };
}

/** A date-time in the operator's own timezone (the browser's), in the console's language. */
export function formatTime(lang: Lang, iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-TW", {
    dateStyle: "short",
    timeStyle: "medium",
  }).format(d);
}

export interface I18n {
  lang: Lang;
  t: Translate;
  time: (iso: string | null | undefined) => string;
}

export const I18nContext = createContext<I18n>({
  lang: "zh-Hant",
  t: translator("zh-Hant"),
  time: (iso) => formatTime("zh-Hant", iso),
});

export const useI18n = () => useContext(I18nContext);

const STORE = "tgm.lang";
export function savedLang(): Lang {
  const v = localStorage.getItem(STORE);
  return v === "en" || v === "zh-Hant" ? v : "zh-Hant";
}
export function saveLang(lang: Lang) {
  localStorage.setItem(STORE, lang);
}
