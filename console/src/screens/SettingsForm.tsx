// System → Settings: each section (general, telegram, pacing, compliance, ai, analytics — whatever
// get-settings answers) as a form built from its values: a checkbox for a flag, a number field for a
// number, a text field for text, one line per item for a list of words, JSON for anything nested (a
// map of account timezones). Labels come from the catalogues (`settings.f.<key>`), the key itself for
// a field this console does not know yet. "Edit as JSON" is still there for the whole section. Saved
// with the version it was read at (save-settings refuses a stale one), refetched on settings-changed.
import { useState } from "react";
import { ErrorLine, Panel, useAction } from "../components";
import { useI18n, type Translate } from "../i18n";
import { en, type MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

export type Values = Record<string, unknown>;
export type Draft = Record<string, string | boolean>;
type Kind = "bool" | "number" | "text" | "lines" | "json";

export function kindOf(v: unknown): Kind {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  if (v === null || typeof v === "string") return "text";
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return "lines";
  return "json";
}

/** The form's fields for a section's values. */
export function toDraft(values: Values): Draft {
  const d: Draft = {};
  for (const [k, v] of Object.entries(values)) {
    const kind = kindOf(v);
    d[k] = kind === "bool" ? (v as boolean) : kind === "number" ? String(v) : kind === "text" ? ((v as string | null) ?? "")
      : kind === "lines" ? (v as string[]).join("\n") : JSON.stringify(v, null, 2);
  }
  return d;
}

/** The section's values from the form, typed as the values it was read from (an empty text field is
 * null where the value was null); a field that does not parse throws an Error naming it. */
export function fromDraft(values: Values, d: Draft, label: (key: string) => string = (k) => k): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(values)) {
    const f = d[k];
    switch (kindOf(v)) {
      case "bool":
        out[k] = f === true;
        break;
      case "number": {
        const n = Number(String(f).trim());
        if (String(f).trim() === "" || !Number.isFinite(n)) throw new Error(`${label(k)}: not a number`);
        out[k] = n;
        break;
      }
      case "text":
        out[k] = String(f) === "" && v === null ? null : String(f);
        break;
      case "lines":
        out[k] = String(f).split("\n").map((s) => s.trim()).filter(Boolean);
        break;
      default:
        try {
          out[k] = JSON.parse(String(f));
        } catch {
          throw new Error(`${label(k)}: not valid JSON`);
        }
    }
  }
  return out;
}

/** A section's values parsed from its JSON text (an error names the bad JSON). */
export function parseSection(text: string): Values {
  const v = JSON.parse(text);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("a section's values are a JSON object");
  return v;
}

export function fieldLabel(t: Translate, key: string): string {
  const k = `settings.f.${key}`;
  return k in en ? t(k as MessageKey) : key;
}

export function sectionLabel(t: Translate, section: string): string {
  const k = `settings.s.${section}`;
  return k in en ? t(k as MessageKey) : section;
}

export function Settings() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const settings = useCommand("get-settings", {}, ["settings-changed"]);
  const [section, setSection] = useState<string>("");
  const [draft, setDraft] = useState<Draft | null>(null);
  const [json, setJson] = useState<string | null>(null);
  const [asJson, setAsJson] = useState(false);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const sections = settings.data?.sections ?? [];
  const current = sections.find((s) => s.section === section) ?? sections[0];
  const editable = can("save-settings");
  const values = (current?.values ?? {}) as Values;
  const form = draft ?? toDraft(values);
  const text = json ?? JSON.stringify(values, null, 2);
  const dirty = draft !== null || json !== null;
  const reset = () => (setDraft(null), setJson(null));
  const label = (k: string) => fieldLabel(t, k);
  const save = () =>
    action.run(async () => {
      if (!current) return;
      const next = asJson ? parseSection(text) : fromDraft(values, form, label);
      await api.call("save-settings", { settings: { [current.section]: next }, expectedVersions: { [current.section]: current.version ?? 0 } });
      reset();
      setSaved(true);
    });
  return (
    <Panel title={t("system.settings")} id="settings">
      <ErrorLine error={settings.error ?? action.error} />
      <div className="filters">
        <label>
          {t("system.section")}
          <select name="section" value={current?.section ?? ""} onChange={(e) => (setSection(e.target.value), reset(), setSaved(false))}>
            {sections.map((s) => <option key={s.section} value={s.section}>{`${sectionLabel(t, s.section)} (${s.owner})`}</option>)}
          </select>
        </label>
        {current && <span className="muted">{t("system.version", { version: current.version ?? 0, time: time(current.updatedAt) })}</span>}
        <label className="inline">
          <input type="checkbox" name="settings-as-json" checked={asJson} onChange={(e) => (setAsJson(e.target.checked), reset())} />
          {t("settings.asJson")}
        </label>
      </div>
      <form onSubmit={(e) => (e.preventDefault(), void save())}>
        {asJson ? (
          <textarea name="section-values" className="code" rows={10} readOnly={!editable} value={text} onChange={(e) => (setJson(e.target.value), setSaved(false))} />
        ) : (
          <fieldset disabled={!editable} className="settings-grid" data-testid="settings-form" data-section={current?.section}>
            {Object.entries(values).map(([k, v]) => {
              const kind = kindOf(v);
              const set = (x: string | boolean) => (setDraft({ ...form, [k]: x }), setSaved(false));
              const name = `setting-${k}`;
              if (kind === "bool") {
                return (
                  <label key={k} className="inline">
                    <input type="checkbox" name={name} checked={form[k] === true} onChange={(e) => set(e.target.checked)} />
                    {label(k)}
                  </label>
                );
              }
              return (
                <label key={k} className={kind === "lines" || kind === "json" ? "wide" : undefined}>
                  {label(k)}
                  {kind === "number" ? (
                    <input name={name} type="number" step="any" value={String(form[k])} onChange={(e) => set(e.target.value)} />
                  ) : kind === "text" ? (
                    <input name={name} value={String(form[k])} onChange={(e) => set(e.target.value)} />
                  ) : (
                    <textarea name={name} className={kind === "json" ? "code" : undefined} rows={kind === "json" ? 3 : 4} value={String(form[k])} onChange={(e) => set(e.target.value)} />
                  )}
                </label>
              );
            })}
          </fieldset>
        )}
        {editable && current && (
          <div className="row">
            <button type="submit" disabled={action.busy || !dirty}>{t("common.save")}</button>
            {dirty && <button type="button" className="secondary" onClick={reset}>{t("settings.discard")}</button>}
            {saved && <span className="ok" role="status" data-testid="settings-saved">{t("settings.saved")}</span>}
          </div>
        )}
      </form>
    </Panel>
  );
}
