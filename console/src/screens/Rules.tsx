// Monitoring and rules: monitored groups, keyword sets, trigger rules (a form for every field of the
// rule: its actions — up to ten, each of any type the contract has, added, edited, moved and
// removed — a reply's buttons edited button by button (MarkupEditor), the `specific` sender accounts,
// conditions with their time window and excluded lead stages) and the "test this rule" panel, which
// runs the `test-trigger-rule` dry run.
import { useState } from "react";
import type { Response } from "../api/client";
import type { SaveTriggerRule } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import { EMPTY_MARKUP, fromMarkup, MarkupEditor, markupProblems, toMarkup, type MarkupDraft } from "./MarkupEditor";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

const RULE_EVENTS = ["entity-changed", "monitoring-state-changed", "trigger-fired", "keyword-matched"];
const ACCOUNT_EVENTS = ["account-added", "account-removed", "account-status-changed"];
type RuleRequest = SaveTriggerRule.Request;
type T = (k: MessageKey, v?: Record<string, string | number>) => string;

export const ACTION_TYPES = ["notify", "ai_reply", "reply_template", "add_lead", "start_scenario"] as const;
export type ActionType = (typeof ACTION_TYPES)[number];
type ReplyTarget = "private" | "group_reply";
type LeadStage = "new" | "contacted" | "replied" | "follow_up" | "closed_won" | "closed_lost";
export const LEAD_STAGES: LeadStage[] = ["new", "contacted", "replied", "follow_up", "closed_won", "closed_lost"];
const MAX_ACTIONS = 10;

/** One action as the form holds it: every type's fields, so switching the type loses nothing typed;
 * `original` is the action as it was read, whose fields the form does not know are kept. */
export interface ActionDraft {
  type: ActionType;
  channel: "console" | "alert";
  message: string;
  mode: "full" | "semi";
  strategyId: string;
  prompt: string;
  target: ReplyTarget;
  templateId: string;
  markup: MarkupDraft;
  stage: LeadStage;
  tags: string;
  scenarioId: string;
  original: Record<string, unknown> | null;
}

export const EMPTY_ACTION: ActionDraft = {
  type: "notify", channel: "console", message: "", mode: "full", strategyId: "", prompt: "", target: "private",
  templateId: "", markup: EMPTY_MARKUP, stage: "new", tags: "", scenarioId: "", original: null,
};

export interface RuleForm {
  id: string | null;
  name: string;
  description: string;
  isActive: boolean;
  keywordSetIds: string[];
  sourceType: "all" | "specific";
  sourceGroupIds: string[];
  senderType: "auto" | "specific" | "listener";
  senderAccountIds: string[];
  actions: ActionDraft[];
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
  timeStart: string;
  timeEnd: string;
  timeZone: string;
  excludeLeadStages: LeadStage[];
}

export const EMPTY_RULE: RuleForm = {
  id: null, name: "", description: "", isActive: true, keywordSetIds: [], sourceType: "all",
  sourceGroupIds: [], senderType: "auto", senderAccountIds: [], actions: [EMPTY_ACTION],
  delayMin: 30, delayMax: 120, dailyLimit: 50, cooldownSeconds: null, priority: 2, exclusive: true,
  oncePerUser: false, excludeAdmin: true, newMemberOnly: false, minIntentScore: null,
  timeStart: "", timeEnd: "", timeZone: "", excludeLeadStages: ["closed_won", "closed_lost"],
};

const text = (v: string) => v.trim() || null;
const tags = (v: string) => [...new Set(v.split(/[,，\n]/).map((s) => s.trim()).filter(Boolean))];
const REPLIES = new Set<ActionType>(["ai_reply", "reply_template"]);

/** One action as the contract's (its own type's fields only, over what the form does not show). */
export function toAction(a: ActionDraft): Record<string, unknown> {
  const base = a.original && a.original.type === a.type ? { ...a.original } : {};
  const markup = toMarkup(a.markup);
  switch (a.type) {
    case "notify":
      return { ...base, type: "notify", channel: a.channel, message: text(a.message) };
    case "ai_reply":
      return { ...base, type: "ai_reply", mode: a.mode, strategyId: text(a.strategyId), prompt: text(a.prompt), target: a.target, markup };
    case "reply_template":
      return { ...base, type: "reply_template", templateId: a.templateId, target: a.target, markup };
    case "add_lead":
      return { ...base, type: "add_lead", stage: a.stage, tags: tags(a.tags) };
    case "start_scenario":
      return { ...base, type: "start_scenario", scenarioId: a.scenarioId };
  }
}

export function fromAction(raw: Record<string, any>): ActionDraft {
  const type = (ACTION_TYPES as readonly string[]).includes(raw.type) ? (raw.type as ActionType) : "notify";
  return {
    ...EMPTY_ACTION, type, original: raw,
    channel: raw.channel ?? "console", message: raw.message ?? "", mode: raw.mode ?? "full", strategyId: raw.strategyId ?? "",
    prompt: raw.prompt ?? "", target: raw.target === "group_reply" ? "group_reply" : "private", templateId: raw.templateId ?? "",
    markup: fromMarkup(raw.markup), stage: raw.stage ?? "new", tags: (raw.tags ?? []).join(", "),
    scenarioId: raw.scenarioId ?? "",
  };
}

/** The form as the contract's rule (save-trigger-rule, and test-trigger-rule's `rule`). */
export function toRule(f: RuleForm): RuleRequest {
  return {
    ...(f.id ? { id: f.id } : {}),
    name: f.name.trim(),
    description: f.description.trim() || null,
    isActive: f.isActive,
    keywordSetIds: f.keywordSetIds,
    sourceType: f.sourceType,
    sourceGroupIds: f.sourceType === "specific" ? f.sourceGroupIds : [],
    senderType: f.senderType,
    senderAccountIds: f.senderType === "specific" ? f.senderAccountIds : [],
    actions: f.actions.map(toAction) as unknown as RuleRequest["actions"],
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
      timeRange: f.timeStart && f.timeEnd ? { start: f.timeStart, end: f.timeEnd, timezone: text(f.timeZone) } : null,
      excludeLeadStages: f.excludeLeadStages,
    },
  } as RuleRequest;
}

/** What the contract would refuse, named before anything is sent. */
export function ruleProblems(f: RuleForm, t: T): string[] {
  const p: string[] = [];
  if (!f.name.trim()) p.push(t("forms.required", { field: t("rules.rules.name") }));
  if (!f.keywordSetIds.length) p.push(t("forms.required", { field: t("rules.rules.sets") }));
  if (f.sourceType === "specific" && !f.sourceGroupIds.length) p.push(t("rules.rules.needGroups"));
  if (f.senderType === "specific" && !f.senderAccountIds.length) p.push(t("rules.rules.needAccounts"));
  if (f.delayMax < f.delayMin) p.push(t("rules.rules.badDelay"));
  if (!!f.timeStart !== !!f.timeEnd) p.push(t("rules.rules.timeBoth"));
  if (!f.actions.length) p.push(t("rules.rules.needAction"));
  if (f.actions.filter((a) => REPLIES.has(a.type)).length > 1) p.push(t("rules.rules.oneReply"));
  f.actions.forEach((a, i) => {
    const n = i + 1;
    if (a.type === "reply_template" && !a.templateId) p.push(t("rules.rules.needTemplate", { n }));
    if (a.type === "start_scenario" && !a.scenarioId) p.push(t("rules.rules.needScenario", { n }));
    if (REPLIES.has(a.type)) p.push(...markupProblems(a.markup, n, t));
  });
  return p;
}

type RuleView = NonNullable<Response<"get-trigger-rules">["items"]>[number];
type Items<C extends "get-monitored-groups" | "get-keyword-sets"> = NonNullable<Response<C>["items"]>;
export function fromRule(r: RuleView): RuleForm {
  const c = (r.conditions ?? {}) as Record<string, any>;
  const actions = ((r.actions ?? []) as Record<string, any>[]).map(fromAction);
  return {
    ...EMPTY_RULE,
    id: r.id, name: r.name, description: r.description ?? "", isActive: r.isActive ?? true,
    keywordSetIds: r.keywordSetIds ?? [], sourceType: r.sourceType ?? "all", sourceGroupIds: r.sourceGroupIds ?? [],
    senderType: r.senderType ?? "auto", senderAccountIds: [...(r.senderAccountIds ?? [])],
    actions: actions.length ? actions : [EMPTY_ACTION],
    delayMin: r.delayMin ?? 30, delayMax: r.delayMax ?? 120, dailyLimit: r.dailyLimit ?? 50,
    cooldownSeconds: r.cooldownSeconds ?? null, priority: r.priority ?? 2, exclusive: r.exclusive ?? true,
    oncePerUser: !!c.oncePerUser, excludeAdmin: c.excludeAdmin ?? true, newMemberOnly: !!c.newMemberOnly,
    minIntentScore: c.minIntentScore ?? null, timeStart: c.timeRange?.start ?? "", timeEnd: c.timeRange?.end ?? "",
    timeZone: c.timeRange?.timezone ?? "", excludeLeadStages: [...(c.excludeLeadStages ?? EMPTY_RULE.excludeLeadStages)],
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
        <RuleTest form={form} rules={rules.data?.items ?? []} groups={groups.data?.items ?? []} />
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
            <tr><th>{t("rules.col.rule")}</th><th>{t("rules.rules.active")}</th><th>{t("rules.col.fired")}</th><th>{t("queue.col.updated")}</th>{(can("save-trigger-rule") || can("delete-trigger-rule")) && <th>{t("common.actions")}</th>}</tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <tr key={r.id} data-testid="rule-row">
                <td>{r.name}</td>
                <td>{r.isActive ? t("common.yes") : t("common.no")}</td>
                <td>{`${r.triggerCount ?? 0} (${time(r.lastTriggeredAt)})`}</td>
                <td>{time(r.updatedAt)}</td>
                {(can("save-trigger-rule") || can("delete-trigger-rule")) && (
                  <td className="toolbar">
                    {can("save-trigger-rule") && (
                      <>
                        <button type="button" className="secondary" onClick={() => onEdit(r)}>{t("rules.rules.edit")}</button>
                        <button type="button" disabled={action.busy} onClick={() => void action.run(() => api.call("toggle-trigger-rule", { id: r.id }))}>
                          {t("rules.rules.toggle")}
                        </button>
                      </>
                    )}
                    {can("delete-trigger-rule") && (
                      <ConfirmButton label={t("common.delete")} question={t("forms.deleteConfirm", { name: r.name })} disabled={action.busy}
                        onConfirm={() => void action.run(() => api.call("delete-trigger-rule", { id: r.id }))} />
                    )}
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

const multi = (e: React.ChangeEvent<HTMLSelectElement>) => Array.from(e.target.selectedOptions).map((o) => o.value);

/** The pickers' lists: accounts, reply templates, AI strategies and scenarios. */
interface Choices {
  accounts: { id: string; label: string }[];
  templates: { id: string; label: string }[];
  strategies: { id: string; label: string }[];
  scenarios: { id: string; label: string }[];
}

/** One action of the rule: its type and that type's fields; moved up or down, removed. */
function ActionEditor(props: {
  index: number; count: number; action: ActionDraft; choices: Choices;
  onChange: (a: ActionDraft) => void; onMove: (by: -1 | 1) => void; onRemove: () => void;
}) {
  const { index: i, count, action: a, choices, onChange } = props;
  const { t } = useI18n();
  const set = <K extends keyof ActionDraft>(k: K, v: ActionDraft[K]) => onChange({ ...a, [k]: v });
  const name = (field: string) => `rule-action-${i}-${field}`;
  const pick = (field: "templateId" | "strategyId" | "scenarioId", label: MessageKey, items: { id: string; label: string }[], none: boolean) => (
    <label>{t(label)}
      <select name={name(field)} value={a[field]} onChange={(e) => set(field, e.target.value)}>
        <option value="">{none ? t("rules.rules.strategyDefault") : "—"}</option>
        {/* A saved id no longer in the list is still shown, so an edit does not drop it unseen. */}
        {a[field] && !items.some((x) => x.id === a[field]) && <option value={a[field]}>{a[field]}</option>}
        {items.map((x) => <option key={x.id} value={x.id}>{x.label}</option>)}
      </select>
    </label>
  );
  const target = (
    <label>{t("rules.rules.target")}
      <select name={name("target")} value={a.target} onChange={(e) => set("target", e.target.value as ReplyTarget)}>
        <option value="private">{t("rules.rules.target.private")}</option>
        <option value="group_reply">{t("rules.rules.target.group_reply")}</option>
      </select>
    </label>
  );
  const markup = <MarkupEditor value={a.markup} onChange={(m) => set("markup", m)} />;
  return (
    <fieldset data-testid="rule-action" data-type={a.type}>
      <legend>{t("rules.rules.actionN", { n: i + 1 })}</legend>
      <div className="row">
        <label>{t("rules.rules.action")}
          <select name={name("type")} value={a.type} onChange={(e) => set("type", e.target.value as ActionType)}>
            {ACTION_TYPES.map((x) => <option key={x} value={x}>{t(`rules.rules.action.${x}` as MessageKey)}</option>)}
          </select>
        </label>
        {a.type === "notify" && (
          <>
            <label>{t("rules.rules.channel")}
              <select name={name("channel")} value={a.channel} onChange={(e) => set("channel", e.target.value as ActionDraft["channel"])}>
                <option value="console">{t("rules.rules.channel.console")}</option>
                <option value="alert">{t("rules.rules.channel.alert")}</option>
              </select>
            </label>
            <label>{t("rules.rules.message")}<input name={name("message")} value={a.message} onChange={(e) => set("message", e.target.value)} /></label>
          </>
        )}
        {a.type === "ai_reply" && (
          <>
            <label>{t("rules.rules.mode")}
              <select name={name("mode")} value={a.mode} onChange={(e) => set("mode", e.target.value as ActionDraft["mode"])}>
                <option value="full">{t("rules.rules.mode.full")}</option>
                <option value="semi">{t("rules.rules.mode.semi")}</option>
              </select>
            </label>
            {pick("strategyId", "rules.rules.strategy", choices.strategies, true)}
            <label>{t("rules.rules.prompt")}<input name={name("prompt")} value={a.prompt} onChange={(e) => set("prompt", e.target.value)} /></label>
            {target}
          </>
        )}
        {a.type === "reply_template" && (
          <>
            {pick("templateId", "rules.rules.template", choices.templates, false)}
            {target}
          </>
        )}
        {a.type === "add_lead" && (
          <>
            <label>{t("rules.rules.leadStage")}
              <select name={name("stage")} value={a.stage} onChange={(e) => set("stage", e.target.value as LeadStage)}>
                {LEAD_STAGES.map((s) => <option key={s} value={s}>{t(`stage.${s}` as MessageKey)}</option>)}
              </select>
            </label>
            <label>{t("rules.rules.tags")}<input name={name("tags")} value={a.tags} onChange={(e) => set("tags", e.target.value)} /></label>
          </>
        )}
        {a.type === "start_scenario" && pick("scenarioId", "rules.rules.scenario", choices.scenarios, false)}
      </div>
      {REPLIES.has(a.type) && markup}
      <div className="toolbar">
        <button type="button" className="secondary" disabled={i === 0} onClick={() => props.onMove(-1)}
          aria-label={t("rules.rules.moveUpN", { n: i + 1 })}>{t("rules.rules.moveUp")}</button>
        <button type="button" className="secondary" disabled={i === count - 1} onClick={() => props.onMove(1)}
          aria-label={t("rules.rules.moveDownN", { n: i + 1 })}>{t("rules.rules.moveDown")}</button>
        <button type="button" className="secondary" disabled={count === 1} onClick={props.onRemove}
          aria-label={t("rules.rules.removeActionN", { n: i + 1 })}>{t("rules.rules.removeAction")}</button>
      </div>
    </fieldset>
  );
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
  const [problems, setProblems] = useState<string[]>([]);
  const accounts = useCommand("get-accounts", { limit: 200 }, ACCOUNT_EVENTS);
  const templates = useCommand("get-chat-templates", {}, ["entity-changed"]);
  const strategies = useCommand("ai-get-strategies", {}, ["entity-changed"]);
  const scenarios = useCommand("get-scenarios", {}, ["entity-changed"]);
  const choices: Choices = {
    accounts: (accounts.data?.items ?? []).map((a) => ({ id: a.id, label: `${a.phone}${a.label ? ` (${a.label})` : ""}` })),
    templates: (templates.data?.items ?? []).map((x) => ({ id: x.id, label: `${x.name}${x.isActive === false ? ` · ${t("forms.inactive")}` : ""}` })),
    strategies: (strategies.data?.items ?? []).map((x) => ({ id: x.id, label: x.name })),
    scenarios: (scenarios.data?.items ?? []).map((x) => ({ id: x.id, label: x.name })),
  };
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) => setForm({ ...f, [k]: v });
  const setAction = (i: number, a: ActionDraft) => set("actions", f.actions.map((x, j) => (j === i ? a : x)));
  const move = (i: number, by: -1 | 1) => {
    const next = [...f.actions];
    [next[i], next[i + by]] = [next[i + by], next[i]];
    set("actions", next);
  };
  const writable = can("save-trigger-rule");
  const save = () => {
    setSaved("");
    const p = ruleProblems(f, t);
    setProblems(p);
    if (p.length) return;
    void action.run(async () => {
      const r = await api.call("save-trigger-rule", toRule(f));
      setForm(fromRule(r));
      setSaved(t("rules.rules.saved", { name: r.name }));
    });
  };
  // A sender account no longer in the list is still shown, so an edit does not drop it unseen.
  const accountOptions = [...choices.accounts, ...f.senderAccountIds.filter((id) => !choices.accounts.some((a) => a.id === id)).map((id) => ({ id, label: id }))];
  return (
    <Panel title={f.id ? `${t("rules.rules.edit")}: ${f.name}` : t("rules.rules.new")} id="rule-form">
      <form onSubmit={(e) => (e.preventDefault(), save())} className="grid" noValidate>
        {problems.length > 0 && (
          <ul className="error" role="alert" data-testid="form-problems">
            {problems.map((p) => <li key={p}>{p}</li>)}
          </ul>
        )}
        <fieldset>
          <label>{t("rules.rules.name")}<input name="rule-name" value={f.name} onChange={(e) => set("name", e.target.value)} required /></label>
          <label>{t("rules.rules.description")}<input name="rule-description" value={f.description} onChange={(e) => set("description", e.target.value)} /></label>
          <label>
            {t("rules.rules.sets")}
            <select name="rule-sets" multiple value={f.keywordSetIds} onChange={(e) => set("keywordSetIds", multi(e))}>
              {sets.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
            </select>
          </label>
          <label>
            {t("rules.rules.sourceType")}
            <select name="rule-source-type" value={f.sourceType} onChange={(e) => set("sourceType", e.target.value as RuleForm["sourceType"])}>
              <option value="all">{t("rules.rules.sourceAll")}</option>
              <option value="specific">{t("rules.rules.sourceSpecific")}</option>
            </select>
          </label>
          {f.sourceType === "specific" && (
            <select multiple name="rule-source-groups" aria-label={t("rules.rules.sourceSpecific")} value={f.sourceGroupIds} onChange={(e) => set("sourceGroupIds", multi(e))}>
              {groups.map((g) => <option key={g.id} value={g.id}>{g.title ?? g.username ?? g.id}</option>)}
            </select>
          )}
          <label>
            {t("rules.rules.senderType")}
            <select name="rule-sender-type" value={f.senderType} onChange={(e) => set("senderType", e.target.value as RuleForm["senderType"])}>
              {(["auto", "listener", "specific"] as const).map((s) => <option key={s} value={s}>{t(`rules.rules.sender.${s}` as MessageKey)}</option>)}
            </select>
          </label>
          {f.senderType === "specific" && (
            <label>{t("rules.rules.senderAccounts")}
              <select multiple name="rule-sender-accounts" value={f.senderAccountIds} onChange={(e) => set("senderAccountIds", multi(e))}>
                {accountOptions.map((a) => <option key={a.id} value={a.id}>{a.label}</option>)}
              </select>
            </label>
          )}
        </fieldset>
        <div data-testid="rule-actions">
          {f.actions.map((a, i) => (
            <ActionEditor key={i} index={i} count={f.actions.length} action={a} choices={choices} onChange={(x) => setAction(i, x)}
              onMove={(by) => move(i, by)} onRemove={() => set("actions", f.actions.filter((_, j) => j !== i))} />
          ))}
          {f.actions.length < MAX_ACTIONS && (
            <button type="button" className="secondary" onClick={() => set("actions", [...f.actions, EMPTY_ACTION])}>{t("rules.rules.addAction")}</button>
          )}
        </div>
        <fieldset>
          <div className="row">
            <label>{t("rules.rules.delayMin")}<input type="number" min={0} value={f.delayMin} onChange={(e) => set("delayMin", Number(e.target.value))} /></label>
            <label>{t("rules.rules.delayMax")}<input type="number" min={0} value={f.delayMax} onChange={(e) => set("delayMax", Number(e.target.value))} /></label>
            <label>{t("rules.rules.dailyLimit")}<input type="number" min={1} value={f.dailyLimit} onChange={(e) => set("dailyLimit", Number(e.target.value))} /></label>
            <label>{t("rules.rules.cooldown")}<input type="number" min={0} value={f.cooldownSeconds ?? ""} onChange={(e) => set("cooldownSeconds", num(e.target.value))} /></label>
            <label>{t("rules.rules.priority")}<input type="number" min={1} max={100} value={f.priority} onChange={(e) => set("priority", Number(e.target.value))} /></label>
            <label>{t("rules.rules.minIntent")}<input type="number" min={0} max={100} value={f.minIntentScore ?? ""} onChange={(e) => set("minIntentScore", num(e.target.value))} /></label>
          </div>
          <div className="row">
            <label>{t("rules.rules.timeStart")}<input type="time" name="rule-time-start" value={f.timeStart} onChange={(e) => set("timeStart", e.target.value)} /></label>
            <label>{t("rules.rules.timeEnd")}<input type="time" name="rule-time-end" value={f.timeEnd} onChange={(e) => set("timeEnd", e.target.value)} /></label>
            <label>{t("rules.rules.timeZone")}<input name="rule-time-zone" value={f.timeZone} onChange={(e) => set("timeZone", e.target.value)} /></label>
            <label>{t("rules.rules.excludeStages")}
              <select multiple name="rule-exclude-stages" value={f.excludeLeadStages} onChange={(e) => set("excludeLeadStages", multi(e) as LeadStage[])}>
                {LEAD_STAGES.map((s) => <option key={s} value={s}>{t(`stage.${s}` as MessageKey)}</option>)}
              </select>
            </label>
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
          <button type="button" className="secondary" onClick={() => (setProblems([]), setForm(EMPTY_RULE))}>{t("rules.rules.new")}</button>
          {saved && <span className="ok" role="status">{saved}</span>}
        </div>
      </form>
      <ErrorLine error={action.error} />
    </Panel>
  );
}

/** The dry run's sample message: its text and group, when it is posted, and who sends it. */
export interface Sample {
  text: string; groupId: string; at: string; username: string; userId: string; firstName: string;
  isAdmin: boolean; isNewMember: boolean; intentScore: string; ignoreCooldown: boolean;
}
// A sample sender id: a rule with a reply has nobody to reply to without one.
export const EMPTY_SAMPLE: Sample = {
  text: "", groupId: "", at: "", username: "", userId: "100000001", firstName: "", isAdmin: false, isNewMember: false,
  intentScore: "", ignoreCooldown: true,
};

/** test-trigger-rule's `message` (and `ignoreCooldown`) from the sample as typed. */
export function sampleMessage(x: Sample) {
  return {
    message: {
      text: x.text,
      groupId: x.groupId || null,
      at: x.at ? new Date(x.at).toISOString() : null,
      sender: {
        username: x.username.replace(/^@/, "") || null, userId: x.userId.trim() ? Number(x.userId) : null,
        firstName: x.firstName.trim() || null, isAdmin: x.isAdmin, isNewMember: x.isNewMember, intentScore: num(x.intentScore),
      },
    },
    ignoreCooldown: x.ignoreCooldown,
  };
}

function RuleTest({ form, rules, groups }: { form: RuleForm; rules: RuleView[]; groups: Items<"get-monitored-groups"> }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [ruleId, setRuleId] = useState("");
  const [x, setX] = useState<Sample>(EMPTY_SAMPLE);
  const set = <K extends keyof Sample>(k: K, v: Sample[K]) => setX((o) => ({ ...o, [k]: v }));
  const [result, setResult] = useState<Response<"test-trigger-rule"> | null>(null);
  const action = useAction();
  const run = () =>
    action.run(async () => {
      const sample = sampleMessage(x);
      const body = ruleId ? { ruleId, ...sample } : { rule: toRule(form), ...sample };
      setResult(await api.call("test-trigger-rule", body as never));
    });
  const yn = (v: boolean) => (v ? t("common.yes") : t("common.no"));
  return (
    <Panel title={t("rules.test.title")} id="rule-test">
      <form onSubmit={(e) => (e.preventDefault(), void run())}>
        <label>
          {t("rules.test.rule")}
          <select name="test-rule" value={ruleId} onChange={(e) => setRuleId(e.target.value)}>
            <option value="">{t("rules.test.formRule")}</option>
            {rules.map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
          </select>
        </label>
        <label>{t("rules.test.text")}<textarea name="test-text" rows={3} value={x.text} onChange={(e) => set("text", e.target.value)} required /></label>
        <div className="row">
          <label>{t("rules.test.group")}
            <select name="test-group" value={x.groupId} onChange={(e) => set("groupId", e.target.value)}>
              <option value="">{t("rules.test.anyGroup")}</option>
              {groups.map((g) => <option key={g.id} value={g.id}>{g.title ?? g.username ?? g.id}</option>)}
            </select>
          </label>
          <label>{t("rules.test.at")}<input type="datetime-local" name="test-at" value={x.at} onChange={(e) => set("at", e.target.value)} /></label>
        </div>
        <div className="row">
          <label>{t("rules.test.sender")}<input value={x.username} onChange={(e) => set("username", e.target.value)} /></label>
          <label>{t("rules.test.senderId")}<input inputMode="numeric" value={x.userId} onChange={(e) => set("userId", e.target.value)} /></label>
          <label>{t("rules.test.firstName")}<input value={x.firstName} onChange={(e) => set("firstName", e.target.value)} /></label>
          <label>{t("rules.test.intent")}<input type="number" min={0} max={100} value={x.intentScore} onChange={(e) => set("intentScore", e.target.value)} /></label>
        </div>
        <div className="row">
          {(["isAdmin", "isNewMember", "ignoreCooldown"] as const).map((k) => (
            <label key={k} className="inline">
              <input type="checkbox" checked={x[k]} onChange={(e) => set(k, e.target.checked)} />
              {t(`rules.test.${k}` as MessageKey)}
            </label>
          ))}
        </div>
        <button type="submit" disabled={action.busy || !x.text.trim()}>{t("rules.test.run")}</button>
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
