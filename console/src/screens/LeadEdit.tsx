// Editing a lead: every field `update-lead` accepts (names, username, phone, notes, tags, custom
// fields, intent score and level, do-not-contact), its stage (`update-lead-stage`) and its owner —
// the human assignee and the account that talks to it (`assign-lead`). Only what changed is sent, with
// the `updatedAt` it was read at (a change by someone else meanwhile is a CONFLICT, not overwritten);
// the gateway's validation errors are shown under the fields they name.
import { useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";
import type { AssignLead, GetLeads, UpdateLead, UpdateLeadStage } from "../api/types.gen";
import { ErrorLine } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

type Lead = GetLeads.Response_.LeadView;
type Stage = NonNullable<Lead["stage"]>;
type IntentLevel = NonNullable<Lead["intentLevel"]>;
type Custom = NonNullable<Lead["customFields"]>;
export const STAGES: Stage[] = ["new", "contacted", "replied", "follow_up", "closed_won", "closed_lost"];
const LEVELS: IntentLevel[] = ["hot", "warm", "neutral", "cold", "none"];

export interface LeadDraft {
  firstName: string;
  lastName: string;
  username: string;
  phone: string;
  notes: string;
  tags: string;
  customFields: string;
  intentScore: string;
  intentLevel: IntentLevel;
  doNotContact: boolean;
  stage: Stage;
  stageReason: string;
  assignee: string;
  accountId: string;
}
export type Field = keyof LeadDraft;
/** Field -> message; `""` is the form itself (an error that names no field). */
export type FieldErrors = Partial<Record<Field | "", string>>;

const show = (v: Custom[string]) => (v === null || v === undefined ? "" : String(v));

export function toDraft(l: Lead): LeadDraft {
  return {
    firstName: l.firstName ?? "",
    lastName: l.lastName ?? "",
    username: l.username ?? "",
    phone: l.phone ?? "",
    notes: l.notes ?? "",
    tags: (l.tags ?? []).join(", "),
    customFields: Object.entries(l.customFields ?? {}).map(([k, v]) => `${k}=${show(v)}`).join("\n"),
    intentScore: l.intentScore == null ? "" : String(l.intentScore),
    intentLevel: l.intentLevel ?? "none",
    doNotContact: !!l.doNotContact,
    stage: l.stage ?? "new",
    stageReason: "",
    assignee: l.assignee ?? "",
    accountId: l.assignedAccountId ?? "",
  };
}

const text = (v: string) => v.trim() || null;
export const splitTags = (v: string) => [...new Set(v.split(/[,\n]/).map((s) => s.trim()).filter(Boolean))];

/** A custom field's typed value: true/false, a number, or the text. */
function typed(v: string): Custom[string] {
  if (v === "true" || v === "false") return v === "true";
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return v;
}

/** `key=value` lines as a map, or the 1-based numbers of the lines that are not `key=value`. */
export function parseCustom(v: string): { fields: Record<string, Custom[string]>; bad: number[] } {
  const fields: Record<string, Custom[string]> = {};
  const bad: number[] = [];
  v.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf("=");
    if (at <= 0 || !line.slice(0, at).trim()) return void bad.push(i + 1);
    fields[line.slice(0, at).trim()] = typed(line.slice(at + 1).trim());
  });
  return { fields, bad };
}

export interface LeadPlan {
  update: UpdateLead.Request | null;
  assign: AssignLead.Request | null;
  stage: UpdateLeadStage.Request | null;
  local: FieldErrors;
}

/** What saving `d` over `base` sends: only the changed fields, each to the command that owns it.
 * `local` names what cannot even be put in a request (a custom-field line without `=`). */
export function leadPlan(base: Lead, d: LeadDraft, t: (k: MessageKey, v?: Record<string, string | number>) => string): LeadPlan {
  const local: FieldErrors = {};
  const patch: Record<string, unknown> = {};
  const scalar = (name: "firstName" | "lastName" | "phone" | "notes", value: string | null) => {
    if (value !== (base[name] ?? null)) patch[name] = value;
  };
  scalar("firstName", text(d.firstName));
  scalar("lastName", text(d.lastName));
  scalar("phone", text(d.phone));
  scalar("notes", d.notes.trim() ? d.notes : null);
  const username = text(d.username.replace(/^\s*@/, ""));
  if (username !== (base.username ?? null)) patch.username = username;
  const tags = splitTags(d.tags);
  if (tags.join("\n") !== (base.tags ?? []).join("\n")) patch.tags = tags;
  const score = d.intentScore.trim();
  // A number as a number; anything else is sent as typed, for the gateway to say what is wrong.
  const scoreValue: unknown = score === "" ? null : /^-?\d+$/.test(score) ? Number(score) : score;
  if (scoreValue !== (base.intentScore ?? null)) patch.intentScore = scoreValue;
  if (d.intentLevel !== (base.intentLevel ?? "none")) patch.intentLevel = d.intentLevel;
  if (d.doNotContact !== !!base.doNotContact) patch.doNotContact = d.doNotContact;
  const custom = parseCustom(d.customFields);
  if (custom.bad.length) local.customFields = t("leads.edit.customBad", { lines: custom.bad.join(", ") });
  const before = base.customFields ?? {};
  const changes: Record<string, Custom[string]> = {};
  for (const [k, v] of Object.entries(custom.fields)) if (show(before[k]) !== show(v) || !(k in before)) changes[k] = v;
  for (const k of Object.keys(before)) if (!(k in custom.fields)) changes[k] = null;
  if (Object.keys(changes).length) patch.customFields = changes;
  const update = Object.keys(patch).length
    ? ({ leadId: base.id, ...patch, expectedUpdatedAt: base.updatedAt } as UpdateLead.Request)
    : null;
  const owner: Record<string, string | null> = {};
  if (text(d.assignee) !== (base.assignee ?? null)) owner.assignee = text(d.assignee);
  if ((d.accountId || null) !== (base.assignedAccountId ?? null)) owner.accountId = d.accountId || null;
  const assign = Object.keys(owner).length ? ({ leadIds: [base.id], ...owner } as AssignLead.Request) : null;
  const stage = d.stage !== (base.stage ?? "new") ? { leadId: base.id, stage: d.stage, reason: text(d.stageReason) ?? "console" } : null;
  return { update, assign, stage, local };
}

/** Where each command's request fields are on the form. */
const FIELD_OF: Record<string, Partial<Record<string, Field>>> = {
  "update-lead": {
    firstName: "firstName", lastName: "lastName", username: "username", phone: "phone", notes: "notes", tags: "tags",
    customFields: "customFields", intentScore: "intentScore", intentLevel: "intentLevel", doNotContact: "doNotContact",
  },
  "assign-lead": { assignee: "assignee", accountId: "accountId" },
  "update-lead-stage": { stage: "stage", reason: "stageReason" },
};

/** A VALIDATION_ERROR's details (`[{loc, msg}]`, loc in the request's camelCase) as messages under
 * the form's fields; what names no field of the form goes to the form itself (`""`). */
export function fieldErrors(command: keyof typeof FIELD_OF, e: unknown): FieldErrors {
  const out: FieldErrors = {};
  const add = (f: Field | "", msg: string) => void (out[f] = out[f] ? `${out[f]}; ${msg}` : msg);
  if (!(e instanceof ApiError) || e.code !== "VALIDATION_ERROR" || !Array.isArray(e.details)) return out;
  for (const d of e.details as { loc?: unknown[]; msg?: string }[]) {
    const [head, ...rest] = (d.loc ?? []).map(String);
    const field = head ? FIELD_OF[command][head] : undefined;
    const msg = String(d.msg ?? e.message).replace(/^Value error, /, "");
    add(field ?? "", field && rest.length ? `${rest.join(".")}: ${msg}` : head && !field ? `${head}: ${msg}` : msg);
  }
  return out;
}

const ORDER: Field[] = [
  "firstName", "lastName", "username", "phone", "stage", "stageReason", "assignee", "accountId",
  "intentScore", "intentLevel", "doNotContact", "tags", "notes", "customFields",
];

export function LeadEditor({ lead, onDone }: { lead: Lead; onDone: (saved: boolean) => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const accounts = useCommand("get-accounts", { limit: 200 }, ["account-added", "account-removed", "account-status-changed"]);
  const [base, setBase] = useState<Lead>(lead);
  const [draft, setDraft] = useState<LeadDraft>(() => toDraft(lead));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => form.current?.querySelector<HTMLElement>("input, select, textarea")?.focus(), []);
  const focusFirst = (errs: FieldErrors) => {
    const first = ORDER.find((f) => errs[f]);
    if (first) requestAnimationFrame(() => form.current?.querySelector<HTMLElement>(`[name="lead-${first}"]`)?.focus());
  };
  const set = <K extends Field>(k: K, v: LeadDraft[K]) => setDraft((d) => ({ ...d, [k]: v }));

  const save = async () => {
    setErrors({});
    setFailure(null);
    setNote("");
    const plan = leadPlan(base, draft, t);
    if (Object.keys(plan.local).length) return (setErrors(plan.local), focusFirst(plan.local));
    if (!plan.update && !plan.assign && !plan.stage) return setNote(t("leads.edit.nothing"));
    setBusy(true);
    let step: keyof typeof FIELD_OF = "update-lead";
    let current = base;
    try {
      if (plan.update) {
        current = await api.call("update-lead", plan.update);
        setBase(current);
      }
      if (plan.assign) {
        step = "assign-lead";
        await api.call("assign-lead", plan.assign);
        current = await api.call("get-lead-details", { leadId: base.id });
        setBase(current);
      }
      if (plan.stage) {
        step = "update-lead-stage";
        current = await api.call("update-lead-stage", plan.stage);
        setBase(current);
      }
      onDone(true);
    } catch (e) {
      const errs = fieldErrors(step, e);
      setErrors(errs);
      setFailure(e);
      focusFirst(errs);
    } finally {
      setBusy(false);
    }
  };
  /** After a CONFLICT: the lead as it is now becomes what the form's changes apply to. */
  const rebase = async () => {
    try {
      setBase(await api.call("get-lead-details", { leadId: base.id }));
      setFailure(null);
    } catch (e) {
      setFailure(e);
    }
  };

  const invalid = (f: Field) => (errors[f] ? { "aria-invalid": true as const, "aria-describedby": `lead-${f}-error` } : {});
  const fieldError = (f: Field) =>
    errors[f] ? <p className="error field-error" id={`lead-${f}-error`} data-testid="field-error" data-field={f}>{errors[f]}</p> : null;
  const input = (f: Field, label: MessageKey, extra: Record<string, unknown> = {}) => (
    <div className="field">
      <label>
        {t(label)}
        <input name={`lead-${f}`} value={draft[f] as string} onChange={(e) => set(f, e.target.value as never)} {...invalid(f)} {...extra} />
      </label>
      {fieldError(f)}
    </div>
  );
  const conflict = failure instanceof ApiError && failure.code === "CONFLICT";
  return (
    <form
      ref={form}
      className="lead-edit"
      data-testid="lead-edit"
      noValidate
      onSubmit={(e) => (e.preventDefault(), void save())}
      onKeyDown={(e) => e.key === "Escape" && (e.preventDefault(), onDone(false))}
    >
      {failure != null && (
        <div role="alert" data-testid="lead-edit-error">
          <ErrorLine error={failure} />
          {errors[""] && <p className="error" data-testid="field-error" data-field="">{errors[""]}</p>}
          {conflict && (
            <button type="button" className="secondary" onClick={() => void rebase()}>{t("leads.edit.rebase")}</button>
          )}
        </div>
      )}
      {failure == null && errors[""] && <p className="error" role="alert">{errors[""]}</p>}
      <div className="form-grid">
        {input("firstName", "leads.edit.firstName")}
        {input("lastName", "leads.edit.lastName")}
        {input("username", "leads.edit.username")}
        {input("phone", "leads.edit.phone", { inputMode: "tel" })}
        <div className="field">
          <label>
            {t("leads.col.stage")}
            <select name="lead-stage" value={draft.stage} onChange={(e) => set("stage", e.target.value as Stage)} {...invalid("stage")}>
              {STAGES.map((s) => <option key={s} value={s}>{t(`stage.${s}` as MessageKey)}</option>)}
            </select>
          </label>
          {fieldError("stage")}
        </div>
        {input("stageReason", "leads.edit.stageReason", { disabled: draft.stage === (base.stage ?? "new") })}
        {input("assignee", "leads.edit.assignee")}
        <div className="field">
          <label>
            {t("leads.edit.account")}
            <select name="lead-accountId" value={draft.accountId} onChange={(e) => set("accountId", e.target.value)} {...invalid("accountId")}>
              <option value="">{t("leads.edit.noAccount")}</option>
              {draft.accountId && !(accounts.data?.items ?? []).some((a) => a.id === draft.accountId) && (
                <option value={draft.accountId}>{draft.accountId}</option>
              )}
              {(accounts.data?.items ?? []).map((a) => (
                <option key={a.id} value={a.id}>{a.phone}{a.label ? ` (${a.label})` : ""}</option>
              ))}
            </select>
          </label>
          {fieldError("accountId")}
        </div>
        {input("intentScore", "leads.edit.intentScore", { inputMode: "numeric" })}
        <div className="field">
          <label>
            {t("leads.col.intent")}
            <select name="lead-intentLevel" value={draft.intentLevel} onChange={(e) => set("intentLevel", e.target.value as IntentLevel)} {...invalid("intentLevel")}>
              {LEVELS.map((l) => <option key={l} value={l}>{t(`intent.${l}` as MessageKey)}</option>)}
            </select>
          </label>
          {fieldError("intentLevel")}
        </div>
        <div className="field">
          <label className="inline">
            <input type="checkbox" name="lead-doNotContact" checked={draft.doNotContact} onChange={(e) => set("doNotContact", e.target.checked)} {...invalid("doNotContact")} />
            {t("leads.edit.doNotContact")}
          </label>
          {fieldError("doNotContact")}
        </div>
        {input("tags", "leads.edit.tags")}
      </div>
      <div className="field">
        <label>
          {t("leads.edit.notes")}
          <textarea name="lead-notes" rows={3} value={draft.notes} onChange={(e) => set("notes", e.target.value)} {...invalid("notes")} />
        </label>
        {fieldError("notes")}
      </div>
      <div className="field">
        <label>
          {t("leads.edit.customFields")}
          <textarea name="lead-customFields" rows={3} value={draft.customFields} onChange={(e) => set("customFields", e.target.value)} {...invalid("customFields")} />
        </label>
        {fieldError("customFields")}
      </div>
      <div className="toolbar">
        <button type="submit" disabled={busy}>{t("common.save")}</button>
        <button type="button" className="secondary" onClick={() => onDone(false)}>{t("common.cancel")}</button>
        {note && <span className="muted" role="status">{note}</span>}
      </div>
    </form>
  );
}
