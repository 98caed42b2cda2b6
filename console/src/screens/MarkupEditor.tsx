// A trigger action's buttons (`markup`, tgm_contracts.markup.MessageMarkup) edited button by button:
// the reply keyboard above the input (rows of keys, or `remove`) and the inline buttons under the
// message (rows of actions: command, url, invoke, modal, deeplink), each added, moved and removed;
// checked as the contract checks it (limits of both platforms), and shown as the JSON that is sent.
// Text ranges and the actions only they place, which this editor does not show, are kept as read.
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";

type T = (k: MessageKey, v?: Record<string, string | number>) => string;

export const MAX_ROWS = 8;
export const MAX_PER_ROW = 8;
const MAX_LABEL = 32;
const MAX_PLACEHOLDER = 64;
const MAX_SELECTIVE = 100;
const MAX_CALLBACK_DATA = 64;
const MAX_COMMAND = 64;
const MAX_PARAMS = 8;

export const BUTTON_KINDS = ["url", "invoke", "modal", "command", "deeplink"] as const;
export type ButtonKind = (typeof BUTTON_KINDS)[number];
const PRIORITIES = ["primary", "secondary", "danger", "success"] as const;
type Priority = (typeof PRIORITIES)[number];
type ParamValue = string | number | boolean;

/** One inline action as the editor holds it: every kind's fields, so switching the kind loses nothing. */
export interface ButtonDraft {
  id: string;
  type: ButtonKind;
  label: string;
  command: string;
  mode: "" | "replace" | "send";
  url: string;
  params: string; // key=value, one a line
  confirm: boolean;
  title: string;
  content: string;
  priority: "" | Priority;
  disabled: boolean;
}

export interface MarkupDraft {
  reply: "none" | "keyboard" | "remove";
  keys: string[][];
  placeholder: string;
  resize: boolean;
  oneTime: boolean;
  selective: string;
  rows: { label: string; buttons: ButtonDraft[] }[];
  /** Text ranges and the actions placed only on them, kept as read. */
  kept: { actions: Record<string, unknown>[]; ranges: Record<string, any>[] };
}

export const EMPTY_MARKUP: MarkupDraft = {
  reply: "none", keys: [], placeholder: "", resize: false, oneTime: false, selective: "", rows: [], kept: { actions: [], ranges: [] },
};

const EMPTY_BUTTON: ButtonDraft = {
  id: "", type: "url", label: "", command: "", mode: "", url: "", params: "", confirm: false, title: "", content: "", priority: "", disabled: false,
};

const str = (v: unknown) => (typeof v === "string" ? v : "");

/** A param value as typed: true/false and integers keep their type; quotes make any of them text. */
function paramValue(v: string): ParamValue {
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^-?(0|[1-9][0-9]*)$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
  if (/^".*"$/.test(v)) {
    try {
      const s = JSON.parse(v);
      if (typeof s === "string") return s;
    } catch {
      /* kept as typed */
    }
  }
  return v;
}

function paramText(v: unknown): string {
  if (typeof v !== "string") return String(v);
  return v === "true" || v === "false" || /^-?(0|[1-9][0-9]*)$/.test(v) || /^".*"$/.test(v) || v !== v.trim() ? JSON.stringify(v) : v;
}

/** The params lines as the contract's object; null when a line is not `key=value`. */
export function parseParams(text: string): Record<string, ParamValue> | null {
  const out: Record<string, ParamValue> = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 0) return null;
    const key = line.slice(0, at).trim();
    if (key in out) return null;
    out[key] = paramValue(line.slice(at + 1).trim());
  }
  return out;
}

export function fromButton(raw: Record<string, any>): ButtonDraft {
  const params = raw.params && typeof raw.params === "object" ? (raw.params as Record<string, unknown>) : {};
  return {
    id: str(raw.id), type: (BUTTON_KINDS as readonly string[]).includes(raw.type) ? raw.type : "url", label: str(raw.label),
    command: str(raw.command), mode: raw.mode === "send" || raw.mode === "replace" ? raw.mode : "", url: str(raw.url),
    params: Object.entries(params).map(([k, v]) => `${k}=${paramText(v)}`).join("\n"),
    confirm: !!raw.confirm, title: str(raw.title), content: str(raw.content),
    priority: (PRIORITIES as readonly string[]).includes(raw.priority) ? raw.priority : "", disabled: !!raw.disabled,
  };
}

/** A markup as read (null when none) as the editor's draft. */
export function fromMarkup(raw: unknown): MarkupDraft {
  if (!raw || typeof raw !== "object") return EMPTY_MARKUP;
  const m = raw as Record<string, any>;
  const rk = m.replyKeyboard as Record<string, any> | null | undefined;
  const inline = m.inline as Record<string, any> | null | undefined;
  const declared = new Map<string, Record<string, any>>(((inline?.actions ?? []) as Record<string, any>[]).map((a) => [a.id, a]));
  const rows = ((inline?.rows ?? []) as Record<string, any>[]).map((r) => ({
    label: str(r.label),
    buttons: ((r.actions ?? []) as string[]).filter((id) => declared.has(id)).map((id) => fromButton(declared.get(id)!)),
  }));
  const placed = new Set(rows.flatMap((r) => r.buttons.map((b) => b.id)));
  return {
    reply: !rk ? "none" : rk.remove ? "remove" : "keyboard",
    keys: rk && !rk.remove ? ((rk.rows ?? []) as Record<string, any>[][]).map((row) => row.map((k) => str(k.text))) : [],
    placeholder: str(rk?.placeholder), resize: !!rk?.resize, oneTime: !!rk?.oneTime,
    selective: ((rk?.selective ?? []) as string[]).join(", "),
    rows,
    kept: { actions: [...declared.values()].filter((a) => !placed.has(a.id)), ranges: [...(inline?.ranges ?? [])] },
  };
}

const selectiveOf = (v: string) => v.split(/[,，\n]/).map((s) => s.trim()).filter(Boolean);

export function toButton(b: ButtonDraft): Record<string, unknown> {
  const params = parseParams(b.params) ?? {};
  const has = Object.keys(params).length > 0;
  const out: Record<string, unknown> = { id: b.id.trim(), type: b.type, label: b.label };
  if (b.type === "command") Object.assign(out, { command: b.command }, b.mode ? { mode: b.mode } : {});
  if (b.type === "url" || b.type === "deeplink") out.url = b.url.trim();
  if (b.type === "invoke") Object.assign(out, has ? { params } : {}, b.confirm ? { confirm: true } : {});
  if (b.type === "modal") Object.assign(out, has ? { params } : {}, b.title ? { title: b.title } : {}, b.content ? { content: b.content } : {});
  if (b.priority) out.priority = b.priority;
  if (b.disabled) out.disabled = true;
  return out;
}

/** The draft as the contract's MessageMarkup: only the parts given, no field at its default; null for none. */
export function toMarkup(d: MarkupDraft): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  if (d.reply === "remove") out.replyKeyboard = { remove: true };
  if (d.reply === "keyboard") {
    const selective = selectiveOf(d.selective);
    out.replyKeyboard = {
      rows: d.keys.map((row) => row.map((text) => ({ text }))),
      ...(d.placeholder.trim() ? { placeholder: d.placeholder } : {}),
      ...(d.resize ? { resize: true } : {}),
      ...(d.oneTime ? { oneTime: true } : {}),
      ...(selective.length ? { selective } : {}),
    };
  }
  if (d.rows.length || d.kept.actions.length) {
    out.inline = {
      actions: [...d.rows.flatMap((r) => r.buttons.map(toButton)), ...d.kept.actions],
      rows: d.rows.map((r) => ({ actions: r.buttons.map((b) => b.id.trim()), ...(r.label ? { label: r.label } : {}) })),
      ...(d.kept.ranges.length ? { ranges: d.kept.ranges } : {}),
    };
  }
  return Object.keys(out).length ? out : null;
}

const cp = (s: string) => [...s].length;
const utf8 = (s: string) => new TextEncoder().encode(s).length;

function isHttpUrl(value: string) {
  if (!/^https?:\/\//.test(value) || value.length > 2000 || /[\s\u0000-\u001f\u007f]/.test(value)) return false;
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && !!u.hostname;
  } catch {
    return false;
  }
}

/** What the contract would refuse in the markup of action `n`, each naming the part. */
export function markupProblems(d: MarkupDraft, n: number, t: T): string[] {
  const p: string[] = [];
  const at = (where: string, problem: string) => p.push(t("rules.markup.problem", { n, where, problem }));
  const label = (where: string, field: MessageKey, v: string, max = MAX_LABEL) => {
    const f = t(field);
    if (!v.trim()) at(where, t("rules.markup.p.empty", { field: f }));
    else if (/[\u0000-\u001f\u007f]/.test(v)) at(where, t("rules.markup.p.control", { field: f }));
    else if (v.length > max) at(where, t("rules.markup.p.long", { field: f, len: v.length, max }));
  };
  const grid = (where: string, rows: unknown[][]) => {
    if (rows.length > MAX_ROWS) at(where, t("rules.markup.p.rows", { count: rows.length }));
    rows.forEach((row, i) => {
      if (!row.length) at(t("rules.markup.where.row", { where, r: i + 1 }), t("rules.markup.p.rowEmpty"));
      if (row.length > MAX_PER_ROW) at(t("rules.markup.where.row", { where, r: i + 1 }), t("rules.markup.p.rowFull", { count: row.length }));
    });
  };
  if (d.reply === "keyboard") {
    const kb = t("rules.markup.where.keyboard");
    if (!d.keys.length) at(kb, t("rules.markup.p.needRow"));
    grid(kb, d.keys);
    d.keys.forEach((row, r) => row.forEach((text, k) => label(t("rules.markup.where.key", { where: kb, r: r + 1, k: k + 1 }), "rules.markup.f.text", text)));
    if (d.placeholder.trim() && d.placeholder.length > MAX_PLACEHOLDER) at(kb, t("rules.markup.p.long", { field: t("rules.markup.f.placeholder"), len: d.placeholder.length, max: MAX_PLACEHOLDER }));
    const sel = selectiveOf(d.selective);
    if (sel.length > MAX_SELECTIVE || sel.some((s) => cp(s) > 128)) at(kb, t("rules.markup.p.selective"));
  }
  const inl = t("rules.markup.where.inline");
  grid(inl, d.rows.map((r) => r.buttons));
  const ids = [...d.rows.flatMap((r) => r.buttons.map((b) => b.id.trim())), ...d.kept.actions.map((a) => String(a.id))];
  d.rows.forEach((row, r) => {
    const rowWhere = t("rules.markup.where.row", { where: inl, r: r + 1 });
    if (row.label) label(rowWhere, "rules.markup.f.caption", row.label);
    row.buttons.forEach((b, i) => {
      const where = t("rules.markup.where.button", { where: rowWhere, b: i + 1 });
      const id = b.id.trim();
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) at(where, t("rules.markup.p.id"));
      else if (ids.filter((x) => x === id).length > 1) at(where, t("rules.markup.p.dupId", { id }));
      label(where, "rules.markup.f.label", b.label);
      if (b.type === "command" && (b.command.length > MAX_COMMAND || !/^\/[a-z0-9_]{1,32}(?: \S[\s\S]*)?$/.test(b.command))) at(where, t("rules.markup.p.command"));
      if ((b.type === "url" || b.type === "deeplink") && !isHttpUrl(b.url.trim())) at(where, t("rules.markup.p.url"));
      if (b.type === "invoke" || b.type === "modal") {
        const params = parseParams(b.params);
        const keys = Object.keys(params ?? {});
        if (!params || keys.length > MAX_PARAMS || keys.some((k) => !/^[A-Za-z0-9_]{1,32}$/.test(k) || k === "botId")) at(where, t("rules.markup.p.params"));
        else if (/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
          const sorted = Object.fromEntries(keys.sort().map((k) => [k, params[k]]));
          const size = utf8(keys.length ? `${id}:${JSON.stringify(sorted)}` : id);
          if (size > MAX_CALLBACK_DATA) at(where, t("rules.markup.p.callback", { size }));
        }
      }
      if (b.type === "modal" && cp(b.title) > 64) at(where, t("rules.markup.p.title"));
      if (b.type === "modal" && cp(b.content) > 512) at(where, t("rules.markup.p.content"));
    });
  });
  const known = new Set(ids);
  for (const r of d.kept.ranges) if (!known.has(String(r.actionId))) at(inl, t("rules.markup.p.range", { id: String(r.actionId) }));
  return p;
}

/** A fresh id for a new button: b1, b2, … not used yet in this markup. */
function freshId(d: MarkupDraft) {
  const used = new Set([...d.rows.flatMap((r) => r.buttons.map((b) => b.id)), ...d.kept.actions.map((a) => String(a.id))]);
  let i = 1;
  while (used.has(`b${i}`)) i++;
  return `b${i}`;
}

function swap<X>(list: X[], i: number, j: number): X[] {
  const next = [...list];
  [next[i], next[j]] = [next[j], next[i]];
  return next;
}

/** Move / remove controls of one item in a list. */
function Moves(props: { i: number; count: number; back: MessageKey; fwd: MessageKey; remove: MessageKey; onMove: (by: -1 | 1) => void; onRemove: () => void }) {
  const { t } = useI18n();
  return (
    <span className="toolbar">
      <button type="button" className="secondary" disabled={props.i === 0} onClick={() => props.onMove(-1)}>{t(props.back)}</button>
      <button type="button" className="secondary" disabled={props.i === props.count - 1} onClick={() => props.onMove(1)}>{t(props.fwd)}</button>
      <button type="button" className="secondary" onClick={props.onRemove}>{t(props.remove)}</button>
    </span>
  );
}

function ButtonEditor({ b, onChange }: { b: ButtonDraft; onChange: (b: ButtonDraft) => void }) {
  const { t } = useI18n();
  const set = <K extends keyof ButtonDraft>(k: K, v: ButtonDraft[K]) => onChange({ ...b, [k]: v });
  const input = (k: "id" | "label" | "command" | "url" | "title", key: MessageKey) => (
    <label>{t(key)}<input value={b[k]} onChange={(e) => set(k, e.target.value)} /></label>
  );
  return (
    <div className="row">
      {input("label", "rules.markup.label")}
      <label>{t("rules.markup.kind")}
        <select value={b.type} onChange={(e) => set("type", e.target.value as ButtonKind)}>
          {BUTTON_KINDS.map((k) => <option key={k} value={k}>{t(`rules.markup.kind.${k}` as MessageKey)}</option>)}
        </select>
      </label>
      {input("id", "rules.markup.id")}
      {(b.type === "url" || b.type === "deeplink") && input("url", "rules.markup.url")}
      {b.type === "command" && (
        <>
          {input("command", "rules.markup.command")}
          <label>{t("rules.markup.mode")}
            <select value={b.mode} onChange={(e) => set("mode", e.target.value as ButtonDraft["mode"])}>
              <option value="">{t("rules.markup.mode.replace")}</option>
              <option value="send">{t("rules.markup.mode.send")}</option>
            </select>
          </label>
        </>
      )}
      {(b.type === "invoke" || b.type === "modal") && (
        <label>{t("rules.markup.params")}<textarea rows={2} value={b.params} onChange={(e) => set("params", e.target.value)} /></label>
      )}
      {b.type === "invoke" && (
        <label className="inline"><input type="checkbox" checked={b.confirm} onChange={(e) => set("confirm", e.target.checked)} />{t("rules.markup.confirm")}</label>
      )}
      {b.type === "modal" && (
        <>
          {input("title", "rules.markup.modalTitle")}
          <label>{t("rules.markup.modalContent")}<textarea rows={2} value={b.content} onChange={(e) => set("content", e.target.value)} /></label>
        </>
      )}
      <label>{t("rules.markup.priority")}
        <select value={b.priority} onChange={(e) => set("priority", e.target.value as ButtonDraft["priority"])}>
          <option value="">{t("rules.markup.priority.default")}</option>
          {PRIORITIES.map((x) => <option key={x} value={x}>{t(`rules.markup.priority.${x}` as MessageKey)}</option>)}
        </select>
      </label>
      <label className="inline"><input type="checkbox" checked={b.disabled} onChange={(e) => set("disabled", e.target.checked)} />{t("rules.markup.disabled")}</label>
    </div>
  );
}

export function MarkupEditor({ value: d, onChange }: { value: MarkupDraft; onChange: (d: MarkupDraft) => void }) {
  const { t } = useI18n();
  const set = <K extends keyof MarkupDraft>(k: K, v: MarkupDraft[K]) => onChange({ ...d, [k]: v });
  const setKeys = (keys: string[][]) => set("keys", keys);
  const setRow = (r: number, row: MarkupDraft["rows"][number]) => set("rows", d.rows.map((x, i) => (i === r ? row : x)));
  const markup = toMarkup(d);
  return (
    <fieldset data-testid="markup" className="markup">
      <legend>{t("rules.markup.title")}</legend>
      <label>{t("rules.markup.reply")}
        <select value={d.reply} onChange={(e) => {
          const reply = e.target.value as MarkupDraft["reply"];
          onChange({ ...d, reply, keys: reply === "keyboard" && !d.keys.length ? [[""]] : d.keys });
        }}>
          {(["none", "keyboard", "remove"] as const).map((x) => <option key={x} value={x}>{t(`rules.markup.reply.${x}` as MessageKey)}</option>)}
        </select>
      </label>
      {d.reply === "keyboard" && (
        <div data-testid="keyboard">
          {d.keys.map((row, r) => (
            <div key={r} className="row" data-testid="keyboard-row">
              <strong>{t("rules.markup.rowN", { n: r + 1 })}</strong>
              {row.map((text, k) => (
                <span key={k} className="row" data-testid="keyboard-key">
                  <label>{t("rules.markup.keyText")}
                    <input value={text} onChange={(e) => setKeys(d.keys.map((x, i) => (i === r ? x.map((y, j) => (j === k ? e.target.value : y)) : x)))} />
                  </label>
                  <Moves i={k} count={row.length} back="rules.markup.moveLeft" fwd="rules.markup.moveRight" remove="rules.markup.remove"
                    onMove={(by) => setKeys(d.keys.map((x, i) => (i === r ? swap(x, k, k + by) : x)))}
                    onRemove={() => setKeys(d.keys.map((x, i) => (i === r ? x.filter((_, j) => j !== k) : x)))} />
                </span>
              ))}
              {row.length < MAX_PER_ROW && (
                <button type="button" className="secondary" onClick={() => setKeys(d.keys.map((x, i) => (i === r ? [...x, ""] : x)))}>{t("rules.markup.addKey")}</button>
              )}
              <Moves i={r} count={d.keys.length} back="rules.markup.rowUp" fwd="rules.markup.rowDown" remove="rules.markup.removeRow"
                onMove={(by) => setKeys(swap(d.keys, r, r + by))} onRemove={() => setKeys(d.keys.filter((_, i) => i !== r))} />
            </div>
          ))}
          {d.keys.length < MAX_ROWS && (
            <button type="button" className="secondary" onClick={() => setKeys([...d.keys, [""]])}>{t("rules.markup.addKeyRow")}</button>
          )}
          <div className="row">
            <label>{t("rules.markup.placeholder")}<input value={d.placeholder} onChange={(e) => set("placeholder", e.target.value)} /></label>
            <label>{t("rules.markup.selective")}<input value={d.selective} onChange={(e) => set("selective", e.target.value)} /></label>
            <label className="inline"><input type="checkbox" checked={d.resize} onChange={(e) => set("resize", e.target.checked)} />{t("rules.markup.resize")}</label>
            <label className="inline"><input type="checkbox" checked={d.oneTime} onChange={(e) => set("oneTime", e.target.checked)} />{t("rules.markup.oneTime")}</label>
          </div>
        </div>
      )}
      <p><strong>{t("rules.markup.inline")}</strong></p>
      {d.rows.map((row, r) => (
        <div key={r} data-testid="markup-row">
          <div className="row">
            <strong>{t("rules.markup.rowN", { n: r + 1 })}</strong>
            <label>{t("rules.markup.rowLabel")}<input value={row.label} onChange={(e) => setRow(r, { ...row, label: e.target.value })} /></label>
            <Moves i={r} count={d.rows.length} back="rules.markup.rowUp" fwd="rules.markup.rowDown" remove="rules.markup.removeRow"
              onMove={(by) => set("rows", swap(d.rows, r, r + by))} onRemove={() => set("rows", d.rows.filter((_, i) => i !== r))} />
          </div>
          {row.buttons.map((b, i) => (
            <div key={i} data-testid="markup-button" data-kind={b.type}>
              <ButtonEditor b={b} onChange={(x) => setRow(r, { ...row, buttons: row.buttons.map((y, j) => (j === i ? x : y)) })} />
              <Moves i={i} count={row.buttons.length} back="rules.markup.moveLeft" fwd="rules.markup.moveRight" remove="rules.markup.remove"
                onMove={(by) => setRow(r, { ...row, buttons: swap(row.buttons, i, i + by) })}
                onRemove={() => setRow(r, { ...row, buttons: row.buttons.filter((_, j) => j !== i) })} />
            </div>
          ))}
          {row.buttons.length < MAX_PER_ROW && (
            <button type="button" className="secondary" onClick={() => setRow(r, { ...row, buttons: [...row.buttons, { ...EMPTY_BUTTON, id: freshId(d) }] })}>
              {t("rules.markup.addButton")}
            </button>
          )}
        </div>
      ))}
      {d.rows.length < MAX_ROWS && (
        <button type="button" className="secondary" onClick={() => set("rows", [...d.rows, { label: "", buttons: [{ ...EMPTY_BUTTON, id: freshId(d) }] }])}>
          {t("rules.markup.addRow")}
        </button>
      )}
      {d.kept.ranges.length > 0 && <p className="muted">{t("rules.markup.kept", { count: d.kept.ranges.length })}</p>}
      <details>
        <summary>{t("rules.markup.json")}</summary>
        <pre data-testid="markup-json">{JSON.stringify(markup, null, 2)}</pre>
      </details>
    </fieldset>
  );
}
