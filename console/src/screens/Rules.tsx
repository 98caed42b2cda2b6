// Monitoring and rules: monitored groups, keyword sets, trigger rules (a form for the rule's
// fields) and the "test this rule" panel, which runs the `test-trigger-rule` dry run.
import { useState } from "react";
import type { Response } from "../api/client";
import type { SaveTriggerRule } from "../api/types.gen";
import { ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

const RULE_EVENTS = ["entity-changed", "monitoring-state-changed", "trigger-fired", "keyword-matched"];
type RuleRequest = SaveTriggerRule.Request;
type ActionType = "notify" | "ai_reply" | "add_lead" | "reply_template";

export interface RuleForm {
  id: string | null;
  name: string;
  description: string;
  isActive: boolean;
  keywordSetIds: string[];
  sourceType: "all" | "specific";
  sourceGroupIds: string[];
  senderType: "auto" | "specific" | "listener";
  action: ActionType;
  actionText: string;
  target: "private" | "group";
  delayMin: number;
  delayMax: number;
  dailyLimit: number;
  cooldownSeconds: number | null;
  priority: number;
  exclusive: boolean;
  oncePerUser: boolean;
  excludeAdmin: boolean;
  newMemberOnly: boolean;
  minIntentScore: number | null;
}

export const EMPTY_RULE: RuleForm = {
  id: null, name: "", description: "", isActive: true, keywordSetIds: [], sourceType: "all",
  sourceGroupIds: [], senderType: "auto", action: "notify", actionText: "", target: "private",
  delayMin: 30, delayMax: 120, dailyLimit: 50, cooldownSeconds: null, priority: 2, exclusive: true,
  oncePerUser: false, excludeAdmin: true, newMemberOnly: false, minIntentScore: null,
};

/** The form as the contract's rule (save-trigger-rule, and test-trigger-rule's `rule`). */
export function toRule(f: RuleForm): RuleRequest {
  const text = f.actionText.trim() || null;
  const action =
    f.action === "notify" ? { type: "notify" as const, message: text }
    : f.action === "ai_reply" ? { type: "ai_reply" as const, prompt: text, target: f.target }
    : f.action === "add_lead" ? { type: "add_lead" as const }
    : { type: "reply_template" as const, templateId: text ?? "", target: f.target };
  return {
    ...(f.id ? { id: f.id } : {}),
    name: f.name.trim(),
    description: f.description.trim() || null,
    isActive: f.isActive,
    keywordSetIds: f.keywordSetIds,
    sourceType: f.sourceType,
    sourceGroupIds: f.sourceType === "specific" ? f.sourceGroupIds : [],
    senderType: f.senderType,
    actions: [action] as RuleRequest["actions"],
    delayMin: f.delayMin,
    delayMax: f.delayMax,
    dailyLimit: f.dailyLimit,
    cooldownSeconds: f.cooldownSeconds,
    priority: f.priority,
    exclusive: f.exclusive,
    conditions: {
      oncePerUser: f.oncePerUser,
      excludeAdmin: f.excludeAdmin,
      newMemberOnly: f.newMemberOnly,
      minIntentScore: f.minIntentScore,
    },
  } as RuleRequest;
}

type RuleView = NonNullable<Response<"get-trigger-rules">["items"]>[number];
type Items<C extends "get-monitored-groups" | "get-keyword-sets"> = NonNullable<Response<C>["items"]>;
export function fromRule(r: RuleView): RuleForm {
  const a = (r.actions?.[0] ?? { type: "notify" }) as Record<string, any>;
  const c = (r.conditions ?? {}) as Record<string, any>;
  return {
    ...EMPTY_RULE,
    id: r.id, name: r.name, description: r.description ?? "", isActive: r.isActive ?? true,
    keywordSetIds: r.keywordSetIds ?? [], sourceType: r.sourceType ?? "all", sourceGroupIds: r.sourceGroupIds ?? [],
    senderType: r.senderType ?? "auto", action: (["notify", "ai_reply", "add_lead", "reply_template"].includes(a.type) ? a.type : "notify") as ActionType,
    actionText: a.message ?? a.prompt ?? a.templateId ?? "", target: a.target ?? "private",
    delayMin: r.delayMin ?? 30, delayMax: r.delayMax ?? 120, dailyLimit: r.dailyLimit ?? 50,
    cooldownSeconds: r.cooldownSeconds ?? null, priority: r.priority ?? 2, exclusive: r.exclusive ?? true,
    oncePerUser: !!c.oncePerUser, excludeAdmin: c.excludeAdmin ?? true, newMemberOnly: !!c.newMemberOnly,
    minIntentScore: c.minIntentScore ?? null,
  };
}

export function Rules() {
  const { t } = useI18n();
  const sets = useCommand("get-keyword-sets", {}, RULE_EVENTS);
  const groups = useCommand("get-monitored-groups", {}, RULE_EVENTS);
  const rules = useCommand("get-trigger-rules", {}, RULE_EVENTS);
  const [form, setForm] = useState<RuleForm>(EMPTY_RULE);
  return (
    <div className="screen">
      <h1>{t("rules.title")}</h1>
      <div className="columns">
        <Groups groups={groups.data?.items ?? []} error={groups.error} />
        <KeywordSets sets={sets.data?.items ?? []} error={sets.error} />
      </div>
      <RuleList rules={rules.data?.items ?? []} error={rules.error} onEdit={(r) => setForm(fromRule(r))} />
      <div className="columns">
        <RuleEditor form={form} setForm={setForm} sets={sets.data?.items ?? []} groups={groups.data?.items ?? []} />
        <RuleTest form={form} rules={rules.data?.items ?? []} />
      </div>
    </div>
  );
}

function Groups({ groups, error }: { groups: Items<"get-monitored-groups">; error: unknown }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const [ref, setRef] = useState("");
  const action = useAction();
  const add = () =>
    action.run(async () => {
      const v = ref.trim();
      await api.call("add-group", { group: /^-?\d+$/.test(v) ? Number(v) : v });
      setRef("");
    });
  return (
    <Panel title={t("rules.groups.title")} id="groups">
      <ErrorLine error={error ?? action.error} />
      <table>
        <thead>
          <tr><th>{t("rules.col.group")}</th><th>{t("rules.col.status")}</th><th>{t("rules.col.matches")}</th><th>{t("rules.col.keywordSets")}</th></tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr key={g.id}>
              <td>{g.title ?? (g.username ? `@${g.username}` : g.url ?? g.chatId ?? g.id)}</td>
              <td>{g.status}{g.paused ? " ⏸" : ""}{g.statusDetail ? ` (${g.statusDetail})` : ""}</td>
              <td>{g.matchCount ?? 0}</td>
              <td>{g.keywordSetIds?.length ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {can("add-group") && (
        <form className="row" onSubmit={(e) => (e.preventDefault(), void add())}>
          <label>
            {t("rules.groups.ref")}
            <input name="group" value={ref} onChange={(e) => setRef(e.target.value)} required />
          </label>
          <button type="submit" disabled={action.busy || !ref.trim()}>{t("rules.groups.add")}</button>
        </form>
      )}
    </Panel>
  );
}

const MODES = ["contains", "exact", "regex", "fuzzy"] as const;
function KeywordSets({ sets, error }: { sets: Items<"get-keyword-sets">; error: unknown }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const [name, setName] = useState("");
  const [mode, setMode] = useState<(typeof MODES)[number]>("contains");
  const [words, setWords] = useState("");
  const action = useAction();
  const save = () =>
    action.run(async () => {
      const keywords = words.split(/[,，]/).map((w) => w.trim()).filter(Boolean).map((keyword) => ({ keyword }));
      await api.call("save-keyword-set", { name: name.trim(), matchMode: mode, keywords });
      setName("");
      setWords("");
    });
  return (
    <Panel title={t("rules.sets.title")} id="keyword-sets">
      <ErrorLine error={error ?? action.error} />
      <table>
        <thead>
          <tr><th>{t("rules.sets.name")}</th><th>{t("rules.sets.mode")}</th><th>{t("rules.col.keywords")}</th><th>{t("rules.col.matches")}</th></tr>
        </thead>
        <tbody>
          {sets.map((s) => (
            <tr key={s.id}>
              <td>{s.name}</td>
              <td>{s.matchMode}</td>
              <td>{(s.keywords ?? []).map((k) => k.keyword).join(", ")}</td>
              <td>{s.totalMatches ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {can("save-keyword-set") && (
        <form onSubmit={(e) => (e.preventDefault(), void save())}>
          <label>{t("rules.sets.name")}<input name="set-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
          <label>
            {t("rules.sets.mode")}
            <select value={mode} onChange={(e) => setMode(e.target.value as (typeof MODES)[number])}>
              {MODES.map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          </label>
          <label>{t("rules.sets.keywords")}<input name="set-keywords" value={words} onChange={(e) => setWords(e.target.value)} required /></label>
          <button type="submit" disabled={action.busy || !name.trim() || !words.trim()}>{t("rules.sets.add")}</button>
        </form>
      )}
    </Panel>
  );
}

function RuleList({ rules, error, onEdit }: { rules: RuleView[]; error: unknown; onEdit: (r: RuleView) => void }) {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  return (
    <Panel title={t("rules.rules.title")} id="rules">
      <ErrorLine error={error ?? action.error} />
      {rules.length === 0 ? <p className="muted">{t("common.none")}</p> : (
        <table>
          <thead>
            <tr><th>{t("rules.col.rule")}</th><th>{t("rules.rules.active")}</th><th>{t("rules.col.fired")}</th><th>{t("queue.col.updated")}</th>{can("save-trigger-rule") && <th>{t("common.actions")}</th>}</tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <tr key={r.id} data-testid="rule-row">
                <td>{r.name}</td>
                <td>{r.isActive ? t("common.yes") : t("common.no")}</td>
                <td>{`${r.triggerCount ?? 0} (${time(r.lastTriggeredAt)})`}</td>
                <td>{time(r.updatedAt)}</td>
                {can("save-trigger-rule") && (
                  <td className="toolbar">
                    <button type="button" className="secondary" onClick={() => onEdit(r)}>{t("rules.rules.edit")}</button>
                    <button type="button" disabled={action.busy} onClick={() => void action.run(() => api.call("toggle-trigger-rule", { id: r.id }))}>
                      {t("rules.rules.toggle")}
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function num(v: string): number | null {
  return v.trim() === "" ? null : Number(v);
}

function RuleEditor(props: {
  form: RuleForm;
  setForm: (f: RuleForm) => void;
  sets: Items<"get-keyword-sets">;
  groups: Items<"get-monitored-groups">;
}) {
  const { form: f, setForm, sets, groups } = props;
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const [saved, setSaved] = useState("");
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) => setForm({ ...f, [k]: v });
  const multi = (e: React.ChangeEvent<HTMLSelectElement>) => Array.from(e.target.selectedOptions).map((o) => o.value);
  const writable = can("save-trigger-rule");
  const save = () =>
    action.run(async () => {
      const r = await api.call("save-trigger-rule", toRule(f));
      setForm(fromRule(r));
      setSaved(t("rules.rules.saved", { name: r.name }));
    });
  return (
    <Panel title={f.id ? `${t("rules.rules.edit")}: ${f.name}` : t("rules.rules.new")} id="rule-form">
      <form onSubmit={(e) => (e.preventDefault(), void save())} className="grid">
        <fieldset>
          <label>{t("rules.rules.name")}<input name="rule-name" value={f.name} onChange={(e) => set("name", e.target.value)} required /></label>
          <label>{t("rules.rules.description")}<input value={f.description} onChange={(e) => set("description", e.target.value)} /></label>
          <label>
            {t("rules.rules.sets")}
            <select name="rule-sets" multiple value={f.keywordSetIds} onChange={(e) => set("keywordSetIds", multi(e))}>
              {sets.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
            </select>
          </label>
          <label>
            {t("rules.rules.sourceType")}
            <select value={f.sourceType} onChange={(e) => set("sourceType", e.target.value as RuleForm["sourceType"])}>
              <option value="all">{t("rules.rules.sourceAll")}</option>
              <option value="specific">{t("rules.rules.sourceSpecific")}</option>
            </select>
          </label>
          {f.sourceType === "specific" && (
            <select multiple aria-label={t("rules.rules.sourceSpecific")} value={f.sourceGroupIds} onChange={(e) => set("sourceGroupIds", multi(e))}>
              {groups.map((g) => <option key={g.id} value={g.id}>{g.title ?? g.username ?? g.id}</option>)}
            </select>
          )}
          <label>
            {t("rules.rules.senderType")}
            <select value={f.senderType} onChange={(e) => set("senderType", e.target.value as RuleForm["senderType"])}>
              {(["auto", "listener", "specific"] as const).map((s) => <option key={s} value={s}>{t(`rules.rules.sender.${s}` as MessageKey)}</option>)}
            </select>
          </label>
          <label>
            {t("rules.rules.action")}
            <select name="rule-action" value={f.action} onChange={(e) => set("action", e.target.value as ActionType)}>
              {(["notify", "ai_reply", "add_lead", "reply_template"] as const).map((a) => <option key={a} value={a}>{t(`rules.rules.action.${a}` as MessageKey)}</option>)}
            </select>
          </label>
          {f.action !== "add_lead" && (
            <label>{t("rules.rules.actionText")}<input name="rule-action-text" value={f.actionText} onChange={(e) => set("actionText", e.target.value)} /></label>
          )}
          {(f.action === "ai_reply" || f.action === "reply_template") && (
            <label>
              {t("rules.rules.target")}
              <select value={f.target} onChange={(e) => set("target", e.target.value as RuleForm["target"])}>
                <option value="private">{t("rules.rules.target.private")}</option>
                <option value="group">{t("rules.rules.target.group")}</option>
              </select>
            </label>
          )}
          <div className="row">
            <label>{t("rules.rules.delayMin")}<input type="number" min={0} value={f.delayMin} onChange={(e) => set("delayMin", Number(e.target.value))} /></label>
            <label>{t("rules.rules.delayMax")}<input type="number" min={0} value={f.delayMax} onChange={(e) => set("delayMax", Number(e.target.value))} /></label>
            <label>{t("rules.rules.dailyLimit")}<input type="number" min={0} value={f.dailyLimit} onChange={(e) => set("dailyLimit", Number(e.target.value))} /></label>
            <label>{t("rules.rules.cooldown")}<input type="number" min={0} value={f.cooldownSeconds ?? ""} onChange={(e) => set("cooldownSeconds", num(e.target.value))} /></label>
            <label>{t("rules.rules.priority")}<input type="number" min={0} value={f.priority} onChange={(e) => set("priority", Number(e.target.value))} /></label>
            <label>{t("rules.rules.minIntent")}<input type="number" min={0} max={100} value={f.minIntentScore ?? ""} onChange={(e) => set("minIntentScore", num(e.target.value))} /></label>
          </div>
          <div className="row">
            {(["isActive", "exclusive", "oncePerUser", "excludeAdmin", "newMemberOnly"] as const).map((k) => (
              <label key={k} className="inline">
                <input type="checkbox" checked={f[k]} onChange={(e) => set(k, e.target.checked)} />
                {t((k === "isActive" ? "rules.rules.active" : `rules.rules.${k}`) as MessageKey)}
              </label>
            ))}
          </div>
        </fieldset>
        <div className="toolbar">
          {writable && <button type="submit" disabled={action.busy || !f.name.trim() || f.keywordSetIds.length === 0}>{t("common.save")}</button>}
          <button type="button" className="secondary" onClick={() => setForm(EMPTY_RULE)}>{t("rules.rules.new")}</button>
          {saved && <span className="ok" role="status">{saved}</span>}
        </div>
      </form>
      <ErrorLine error={action.error} />
    </Panel>
  );
}

function RuleTest({ form, rules }: { form: RuleForm; rules: RuleView[] }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [ruleId, setRuleId] = useState("");
  const [text, setText] = useState("");
  const [sender, setSender] = useState("");
  // A sample sender id: a rule with a reply has nobody to reply to without one.
  const [senderId, setSenderId] = useState("100000001");
  const [result, setResult] = useState<Response<"test-trigger-rule"> | null>(null);
  const action = useAction();
  const run = () =>
    action.run(async () => {
      const message = {
        text,
        sender: { username: sender.replace(/^@/, "") || null, userId: senderId.trim() ? Number(senderId) : null },
      };
      const body = ruleId ? { ruleId, message } : { rule: toRule(form), message };
      setResult(await api.call("test-trigger-rule", { ...body, ignoreCooldown: true } as never));
    });
  const yn = (v: boolean) => (v ? t("common.yes") : t("common.no"));
  return (
    <Panel title={t("rules.test.title")} id="rule-test">
      <form onSubmit={(e) => (e.preventDefault(), void run())}>
        <label>
          {t("rules.test.rule")}
          <select value={ruleId} onChange={(e) => setRuleId(e.target.value)}>
            <option value="">{t("rules.test.formRule")}</option>
            {rules.map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
          </select>
        </label>
        <label>{t("rules.test.text")}<textarea name="test-text" rows={3} value={text} onChange={(e) => setText(e.target.value)} required /></label>
        <div className="row">
          <label>{t("rules.test.sender")}<input value={sender} onChange={(e) => setSender(e.target.value)} /></label>
          <label>{t("rules.test.senderId")}<input inputMode="numeric" value={senderId} onChange={(e) => setSenderId(e.target.value)} /></label>
        </div>
        <button type="submit" disabled={action.busy || !text.trim()}>{t("rules.test.run")}</button>
      </form>
      <ErrorLine error={action.error} />
      {result && (
        <div role="status" data-testid="rule-test-result" data-would-fire={String(result.wouldFire)}>
          <p>{t("rules.test.matched", { value: yn(result.matched) })}</p>
          <p>{t("rules.test.wouldFire", { value: yn(result.wouldFire) })}</p>
          {result.matches?.length ? <p>{t("rules.test.matches", { keywords: result.matches.map((m) => m.keyword).join(", ") })}</p> : null}
          {result.reason && <p>{t("rules.test.reason", { reason: result.reason })}</p>}
          {result.actions?.length ? <p>{t("rules.test.planned", { actions: result.actions.map((a) => a.type).join(", ") })}</p> : null}
          <ul>
            {(result.conditions ?? []).map((c, i) => <li key={i}>{`${c.passed ? "✔" : "✘"} ${c.condition}${c.detail ? `: ${c.detail}` : ""}`}</li>)}
          </ul>
        </div>
      )}
    </Panel>
  );
}
