// The task centre's forms: an ad campaign created (`create-ad-campaign`) or changed
// (`update-ad-campaign`, only the changed fields), and the multi-role library — roles (`save-role`),
// scripts (`save-script`) and scenarios (`save-scenario`), listed with `get-roles` / `get-scripts` /
// `get-scenarios`, deleted by admins (`delete-role` / `delete-script` / `delete-scenario`). Each form
// names its missing required fields before anything is sent; the gateway's refusal is shown as is.
// A swarm is started with every field of `start-swarm` (its group, roles, mode, triggers, limits,
// active hours and end).
import { useState, type ReactNode } from "react";
import type { CreateAdCampaign, GetRoles, GetScenarios, GetScripts, SaveRole, SaveScenario, SaveScript, StartSwarm } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import type { Ad } from "./Runs";

type T = (k: MessageKey, v?: Record<string, string | number>) => string;
const LIB_EVENTS = ["entity-changed"];
const ACCOUNT_EVENTS = ["account-added", "account-removed", "account-status-changed"];

const lines = (v: string) => v.split("\n").map((s) => s.trim()).filter(Boolean);
const words = (v: string) => [...new Set(v.split(/[,，\n]/).map((s) => s.trim()).filter(Boolean))];
const text = (v: string) => v.trim() || null;
const int = (v: string) => (v.trim() === "" ? null : Number(v));
/** A chat as typed: a numeric id as a number, anything else (@name, link) as the text. */
export const chatRef = (v: string): number | string => (/^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim());
/** An ISO time as a `datetime-local` value (local time) and back. */
const toLocal = (iso: string | null | undefined) => {
  if (!iso) return "";
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
};
const fromLocal = (v: string) => (v ? new Date(v).toISOString() : null);

/** The missing or wrong fields, named before anything is sent. */
function Problems({ items }: { items: string[] }) {
  if (!items.length) return null;
  return (
    <ul className="error" role="alert" data-testid="form-problems">
      {items.map((p) => <li key={p}>{p}</li>)}
    </ul>
  );
}

function FormShell(props: { title: string; id: string; problems: string[]; error: unknown; busy: boolean; onSave: () => void; onCancel: () => void; children: ReactNode }) {
  const { t } = useI18n();
  return (
    <form data-testid={props.id} aria-label={props.title} noValidate onSubmit={(e) => (e.preventDefault(), props.onSave())}
      onKeyDown={(e) => e.key === "Escape" && (e.preventDefault(), props.onCancel())}>
      <h3>{props.title}</h3>
      <Problems items={props.problems} />
      <ErrorLine error={props.error} />
      {props.children}
      <div className="toolbar">
        <button type="submit" disabled={props.busy}>{t("common.save")}</button>
        <button type="button" className="secondary" onClick={props.onCancel}>{t("common.cancel")}</button>
      </div>
    </form>
  );
}

const multi = (e: React.ChangeEvent<HTMLSelectElement>) => Array.from(e.target.selectedOptions).map((o) => o.value);

// --- ad campaigns --------------------------------------------------------------------------------

type AdSpec = Omit<CreateAdCampaign.Request, "start">;
type ScheduleType = AdSpec["schedule"]["type"];
type AdStrategy = NonNullable<AdSpec["accountStrategy"]>;
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

export interface AdDraft {
  name: string; description: string; templateIds: string[]; templateRotation: "sequential" | "random"; templateWeights: string;
  groupIds: string[]; chats: string; scheduleType: ScheduleType; startAt: string; endAt: string; times: string; weekdays: string[];
  intervalMinutes: string; cron: string; timezone: string; maxRuns: string; accountIds: string[]; accountStrategy: AdStrategy;
  minGroupIntervalMinutes: string; skipIfLastMessageOurs: boolean; maxPostsPerAccountPerDay: string; maxPostsPerGroupPerDay: string;
  quietStart: string; quietEnd: string; start: boolean;
}
export const EMPTY_AD: AdDraft = {
  name: "", description: "", templateIds: [], templateRotation: "sequential", templateWeights: "", groupIds: [], chats: "",
  scheduleType: "once", startAt: "", endAt: "", times: "", weekdays: [], intervalMinutes: "", cron: "", timezone: "", maxRuns: "",
  accountIds: [], accountStrategy: "rotate", minGroupIntervalMinutes: "60", skipIfLastMessageOurs: true,
  maxPostsPerAccountPerDay: "", maxPostsPerGroupPerDay: "", quietStart: "", quietEnd: "", start: false,
};

export function adDraft(a: Ad): AdDraft {
  const s = a.schedule;
  return {
    ...EMPTY_AD, name: a.name, description: a.description ?? "", templateIds: [...(a.templateIds ?? [])],
    templateRotation: a.templateRotation ?? "sequential", templateWeights: (a.templateWeights ?? []).join(", "),
    groupIds: (a.targets ?? []).filter((x) => x.groupId).map((x) => x.groupId!),
    chats: (a.targets ?? []).filter((x) => x.chat != null).map((x) => String(x.chat)).join("\n"),
    scheduleType: s.type, startAt: toLocal(s.startAt), endAt: toLocal(s.endAt), times: (s.times ?? []).join(", "),
    weekdays: [...(s.weekdays ?? [])], intervalMinutes: s.intervalMinutes == null ? "" : String(s.intervalMinutes),
    cron: s.cron ?? "", timezone: s.timezone ?? "", maxRuns: s.maxRuns == null ? "" : String(s.maxRuns),
    accountIds: [...(a.accounts?.accountIds ?? [])], accountStrategy: a.accountStrategy ?? "rotate",
    minGroupIntervalMinutes: String(a.minGroupIntervalMinutes ?? 60), skipIfLastMessageOurs: a.skipIfLastMessageOurs ?? true,
    maxPostsPerAccountPerDay: a.maxPostsPerAccountPerDay == null ? "" : String(a.maxPostsPerAccountPerDay),
    maxPostsPerGroupPerDay: a.maxPostsPerGroupPerDay == null ? "" : String(a.maxPostsPerGroupPerDay),
    quietStart: a.quietHours?.start ?? "", quietEnd: a.quietHours?.end ?? "",
  };
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
/** The draft as the contract's campaign (its required fields checked), or what is missing. */
export function adSpec(d: AdDraft, t: T): { spec: AdSpec | null; problems: string[] } {
  const p: string[] = [];
  if (!d.name.trim()) p.push(t("forms.required", { field: t("forms.ad.name") }));
  if (!d.templateIds.length) p.push(t("forms.required", { field: t("forms.ad.templates") }));
  const targets = [...d.groupIds.map((groupId) => ({ groupId })), ...lines(d.chats).map((c) => ({ chat: chatRef(c) }))];
  if (!targets.length) p.push(t("forms.ad.noTarget"));
  const times = words(d.times);
  const need: Record<ScheduleType, [boolean, MessageKey]> = {
    once: [!!d.startAt, "forms.ad.startAt"], daily: [times.length > 0, "forms.ad.times"],
    interval: [!!d.intervalMinutes.trim(), "forms.ad.interval"], cron: [!!d.cron.trim(), "forms.ad.cron"],
  };
  const [ok, field] = need[d.scheduleType];
  if (!ok) p.push(t("forms.ad.scheduleNeeds", { type: t(`forms.ad.schedule.${d.scheduleType}` as MessageKey), field: t(field) }));
  const bad = times.filter((x) => !HHMM.test(x));
  if (d.scheduleType === "daily" && bad.length) p.push(t("forms.ad.badTimes", { times: bad.join(", ") }));
  if ((d.quietStart && !d.quietEnd) || (!d.quietStart && d.quietEnd)) p.push(t("forms.ad.quietBoth"));
  const weights = words(d.templateWeights).map(Number);
  if (p.length) return { spec: null, problems: p };
  const schedule: Record<string, unknown> = { type: d.scheduleType };
  if (d.startAt) schedule.startAt = fromLocal(d.startAt);
  if (d.endAt) schedule.endAt = fromLocal(d.endAt);
  if (d.scheduleType === "daily") {
    schedule.times = times;
    if (d.weekdays.length) schedule.weekdays = d.weekdays;
  }
  if (d.scheduleType === "interval") schedule.intervalMinutes = Number(d.intervalMinutes);
  if (d.scheduleType === "cron") schedule.cron = d.cron.trim();
  if (d.timezone.trim()) schedule.timezone = d.timezone.trim();
  if (d.maxRuns.trim()) schedule.maxRuns = Number(d.maxRuns);
  const spec = {
    name: d.name.trim(), description: text(d.description), templateIds: d.templateIds, templateRotation: d.templateRotation,
    templateWeights: d.templateRotation === "random" && weights.length ? weights : null,
    targets, schedule, accounts: d.accountIds.length ? { accountIds: d.accountIds } : {}, accountStrategy: d.accountStrategy,
    minGroupIntervalMinutes: Number(d.minGroupIntervalMinutes || 60), skipIfLastMessageOurs: d.skipIfLastMessageOurs,
    maxPostsPerAccountPerDay: int(d.maxPostsPerAccountPerDay), maxPostsPerGroupPerDay: int(d.maxPostsPerGroupPerDay),
    quietHours: d.quietStart ? { start: d.quietStart, end: d.quietEnd } : null,
  } as unknown as AdSpec;
  return { spec, problems: [] };
}

/** update-ad-campaign's patch: the fields whose value differs from the campaign as it was read. */
export function adPatch(before: AdSpec, after: AdSpec): Partial<AdSpec> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(after)) if (JSON.stringify(v) !== JSON.stringify((before as Record<string, unknown>)[k])) out[k] = v;
  return out as Partial<AdSpec>;
}

export function AdCampaignForm({ ad, onDone }: { ad: Ad | null; onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const templates = useCommand("get-ad-templates", { activeOnly: false }, LIB_EVENTS);
  const groups = useCommand("get-monitored-groups", {}, LIB_EVENTS);
  const accounts = useCommand("get-accounts", { limit: 200 }, ACCOUNT_EVENTS);
  const [d, setD] = useState<AdDraft>(() => (ad ? adDraft(ad) : EMPTY_AD));
  const [problems, setProblems] = useState<string[]>([]);
  const [note, setNote] = useState("");
  const action = useAction();
  const set = <K extends keyof AdDraft>(k: K, v: AdDraft[K]) => setD((x) => ({ ...x, [k]: v }));
  const save = () => {
    setNote("");
    const { spec, problems: p } = adSpec(d, t);
    setProblems(p);
    if (!spec) return;
    void action.run(async () => {
      if (!ad) await api.call("create-ad-campaign", { ...spec, start: d.start });
      else {
        const patch = adPatch(adSpec(adDraft(ad), t).spec ?? ({} as AdSpec), spec);
        if (!Object.keys(patch).length) return setNote(t("leads.edit.nothing"));
        await api.call("update-ad-campaign", { id: ad.id, ...patch });
      }
      onDone();
    });
  };
  const tx = (k: keyof AdDraft, label: MessageKey, extra: Record<string, unknown> = {}) => (
    <label>{t(label)}<input name={`ad-${k}`} value={d[k] as string} onChange={(e) => set(k, e.target.value as never)} {...extra} /></label>
  );
  return (
    <FormShell title={ad ? t("forms.ad.edit", { name: ad.name }) : t("forms.ad.new")} id="ad-form" problems={problems} error={action.error}
      busy={action.busy} onSave={save} onCancel={onDone}>
      <div className="form-grid">
        {tx("name", "forms.ad.name")}
        {tx("description", "forms.description")}
        <label>{t("forms.ad.templates")}
          <select multiple name="ad-templateIds" value={d.templateIds} onChange={(e) => set("templateIds", multi(e))}>
            {(templates.data?.items ?? []).map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
          </select>
        </label>
        <label>{t("forms.ad.rotation")}
          <select value={d.templateRotation} onChange={(e) => set("templateRotation", e.target.value as AdDraft["templateRotation"])}>
            <option value="sequential">{t("forms.ad.rotation.sequential")}</option>
            <option value="random">{t("forms.ad.rotation.random")}</option>
          </select>
        </label>
        {d.templateRotation === "random" && tx("templateWeights", "forms.ad.weights")}
        <label>{t("forms.ad.groups")}
          <select multiple name="ad-groupIds" value={d.groupIds} onChange={(e) => set("groupIds", multi(e))}>
            {(groups.data?.items ?? []).map((g) => <option key={g.id} value={g.id}>{g.title ?? (g.username ? `@${g.username}` : g.id)}</option>)}
          </select>
        </label>
        <label>{t("forms.ad.chats")}<textarea name="ad-chats" rows={3} value={d.chats} onChange={(e) => set("chats", e.target.value)} /></label>
        <label>{t("forms.ad.scheduleType")}
          <select name="ad-scheduleType" value={d.scheduleType} onChange={(e) => set("scheduleType", e.target.value as ScheduleType)}>
            {(["once", "daily", "interval", "cron"] as const).map((s) => <option key={s} value={s}>{t(`forms.ad.schedule.${s}` as MessageKey)}</option>)}
          </select>
        </label>
        {tx("startAt", "forms.ad.startAt", { type: "datetime-local" })}
        {tx("endAt", "forms.ad.endAt", { type: "datetime-local" })}
        {d.scheduleType === "daily" && tx("times", "forms.ad.times")}
        {d.scheduleType === "daily" && (
          <label>{t("forms.ad.weekdays")}
            <select multiple value={d.weekdays} onChange={(e) => set("weekdays", multi(e))}>
              {WEEKDAYS.map((w) => <option key={w} value={w}>{t(`forms.weekday.${w}` as MessageKey)}</option>)}
            </select>
          </label>
        )}
        {d.scheduleType === "interval" && tx("intervalMinutes", "forms.ad.interval", { type: "number", min: 10 })}
        {d.scheduleType === "cron" && tx("cron", "forms.ad.cron")}
        {tx("timezone", "forms.ad.timezone")}
        {tx("maxRuns", "forms.ad.maxRuns", { type: "number", min: 1 })}
        <label>{t("forms.ad.accounts")}
          <select multiple name="ad-accountIds" value={d.accountIds} onChange={(e) => set("accountIds", multi(e))}>
            {(accounts.data?.items ?? []).map((a) => <option key={a.id} value={a.id}>{a.phone}</option>)}
          </select>
        </label>
        <label>{t("forms.ad.strategy")}
          <select value={d.accountStrategy} onChange={(e) => set("accountStrategy", e.target.value as AdStrategy)}>
            {(["single", "rotate", "relay", "random"] as const).map((s) => <option key={s} value={s}>{t(`forms.ad.strategy.${s}` as MessageKey)}</option>)}
          </select>
        </label>
        {tx("minGroupIntervalMinutes", "forms.ad.groupInterval", { type: "number", min: 1 })}
        {tx("maxPostsPerAccountPerDay", "forms.ad.perAccount", { type: "number", min: 1 })}
        {tx("maxPostsPerGroupPerDay", "forms.ad.perGroup", { type: "number", min: 1 })}
        {tx("quietStart", "forms.ad.quietStart", { type: "time" })}
        {tx("quietEnd", "forms.ad.quietEnd", { type: "time" })}
        <label className="inline"><input type="checkbox" checked={d.skipIfLastMessageOurs} onChange={(e) => set("skipIfLastMessageOurs", e.target.checked)} />{t("forms.ad.skipOurs")}</label>
        {!ad && <label className="inline"><input type="checkbox" checked={d.start} onChange={(e) => set("start", e.target.checked)} />{t("forms.ad.startNow")}</label>}
      </div>
      {note && <p className="muted" role="status">{note}</p>}
    </FormShell>
  );
}

// --- swarms --------------------------------------------------------------------------------------

export interface SwarmDraft {
  groupId: string; chat: string; roleIds: string[]; mode: "ai" | "script"; scriptId: string; strategyId: string;
  keywordSetIds: string[]; questions: boolean; mentions: boolean; everyN: string; replyProbability: string;
  minIntervalSeconds: string; maxMessagesPerHour: string; activeStart: string; activeEnd: string; activeZone: string;
  until: string; durationMinutes: string; maxTrafficShare: string; trafficWindow: string; accountMinIntervalSeconds: string;
}
export const EMPTY_SWARM: SwarmDraft = {
  groupId: "", chat: "", roleIds: [], mode: "ai", scriptId: "", strategyId: "", keywordSetIds: [], questions: true, mentions: true,
  everyN: "", replyProbability: "0.3", minIntervalSeconds: "120", maxMessagesPerHour: "12", activeStart: "", activeEnd: "",
  activeZone: "", until: "", durationMinutes: "", maxTrafficShare: "0.3", trafficWindow: "20", accountMinIntervalSeconds: "",
};

/** The draft as start-swarm's request (its rules checked), or what is missing. */
export function swarmRequest(d: SwarmDraft, t: T): { request: StartSwarm.Request | null; problems: string[] } {
  const p: string[] = [];
  if (!!d.groupId === !!d.chat.trim()) p.push(t("forms.swarm.oneGroup"));
  if (d.roleIds.length < 2) p.push(t("forms.swarm.twoRoles"));
  if (d.mode === "script" && !d.scriptId) p.push(t("forms.required", { field: t("forms.scenario.script") }));
  if (!!d.activeStart !== !!d.activeEnd) p.push(t("forms.swarm.hoursBoth"));
  const share = Number(d.maxTrafficShare || 0.3);
  const chance = Number(d.replyProbability || 0.3);
  if (!(chance >= 0 && chance <= 1) || !(share > 0 && share <= 1)) p.push(t("forms.swarm.badShare"));
  if (p.length) return { request: null, problems: p };
  return {
    problems: [],
    request: {
      ...(d.groupId ? { groupId: d.groupId } : { chat: chatRef(d.chat) }),
      roleIds: d.roleIds, mode: d.mode, scriptId: d.mode === "script" ? d.scriptId : null,
      strategyId: d.mode === "ai" ? text(d.strategyId) : null,
      triggers: { keywordSetIds: d.keywordSetIds, questions: d.questions, everyNMessages: int(d.everyN), mentions: d.mentions },
      replyProbability: chance, minIntervalSeconds: Number(d.minIntervalSeconds || 120),
      maxMessagesPerHour: Number(d.maxMessagesPerHour || 12),
      activeHours: d.activeStart ? { start: d.activeStart, end: d.activeEnd, timezone: text(d.activeZone) } : null,
      until: fromLocal(d.until), durationMinutes: int(d.durationMinutes), maxTrafficShare: share,
      trafficWindow: Number(d.trafficWindow || 20), accountMinIntervalSeconds: int(d.accountMinIntervalSeconds),
    } as StartSwarm.Request,
  };
}

export function SwarmForm({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const groups = useCommand("get-monitored-groups", {}, LIB_EVENTS);
  const roles = useCommand("get-roles", {}, LIB_EVENTS);
  const scripts = useCommand("get-scripts", {}, LIB_EVENTS);
  const strategies = useCommand("ai-get-strategies", {}, LIB_EVENTS);
  const sets = useCommand("get-keyword-sets", {}, LIB_EVENTS);
  const [d, setD] = useState<SwarmDraft>(EMPTY_SWARM);
  const [problems, setProblems] = useState<string[]>([]);
  const action = useAction();
  const set = <K extends keyof SwarmDraft>(k: K, v: SwarmDraft[K]) => setD((x) => ({ ...x, [k]: v }));
  const save = () => {
    const { request, problems: p } = swarmRequest(d, t);
    setProblems(p);
    if (request) void action.run(async () => (await api.call("start-swarm", request), onDone()));
  };
  const tx = (k: keyof SwarmDraft, label: MessageKey, extra: Record<string, unknown> = {}) => (
    <label>{t(label)}<input name={`swarm-${k}`} value={d[k] as string} onChange={(e) => set(k, e.target.value as never)} {...extra} /></label>
  );
  const check = (k: "questions" | "mentions", label: MessageKey) => (
    <label className="inline"><input type="checkbox" checked={d[k]} onChange={(e) => set(k, e.target.checked)} />{t(label)}</label>
  );
  return (
    <FormShell title={t("forms.swarm.new")} id="swarm-form" problems={problems} error={action.error} busy={action.busy} onSave={save} onCancel={onDone}>
      <div className="form-grid">
        <label>{t("forms.swarm.group")}
          <select name="swarm-groupId" value={d.groupId} onChange={(e) => set("groupId", e.target.value)}>
            <option value="">—</option>
            {(groups.data?.items ?? []).map((g) => <option key={g.id} value={g.id}>{g.title ?? (g.username ? `@${g.username}` : g.id)}</option>)}
          </select>
        </label>
        {tx("chat", "forms.swarm.chat")}
        <label>{t("forms.swarm.roles")}
          <select multiple name="swarm-roleIds" value={d.roleIds} onChange={(e) => set("roleIds", multi(e))}>
            {(roles.data?.items ?? []).map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
          </select>
        </label>
        <label>{t("forms.swarm.mode")}
          <select name="swarm-mode" value={d.mode} onChange={(e) => set("mode", e.target.value as SwarmDraft["mode"])}>
            <option value="ai">{t("forms.swarm.mode.ai")}</option>
            <option value="script">{t("forms.swarm.mode.script")}</option>
          </select>
        </label>
        {d.mode === "script" ? (
          <label>{t("forms.scenario.script")}
            <select name="swarm-scriptId" value={d.scriptId} onChange={(e) => set("scriptId", e.target.value)}>
              <option value="">—</option>
              {(scripts.data?.items ?? []).map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
            </select>
          </label>
        ) : (
          <label>{t("forms.swarm.strategy")}
            <select name="swarm-strategyId" value={d.strategyId} onChange={(e) => set("strategyId", e.target.value)}>
              <option value="">{t("forms.swarm.strategyDefault")}</option>
              {(strategies.data?.items ?? []).map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
            </select>
          </label>
        )}
        <label>{t("forms.swarm.keywordSets")}
          <select multiple name="swarm-keywordSetIds" value={d.keywordSetIds} onChange={(e) => set("keywordSetIds", multi(e))}>
            {(sets.data?.items ?? []).map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
          </select>
        </label>
        {check("questions", "forms.swarm.questions")}
        {check("mentions", "forms.swarm.mentions")}
        {tx("everyN", "forms.swarm.everyN", { type: "number", min: 1, max: 1000 })}
        {tx("replyProbability", "forms.swarm.probability", { type: "number", min: 0, max: 1, step: 0.05 })}
        {tx("minIntervalSeconds", "forms.swarm.interval", { type: "number", min: 10 })}
        {tx("maxMessagesPerHour", "forms.swarm.hourly", { type: "number", min: 1, max: 120 })}
        {tx("accountMinIntervalSeconds", "forms.swarm.accountInterval", { type: "number", min: 0 })}
        {tx("maxTrafficShare", "forms.swarm.share", { type: "number", min: 0.05, max: 1, step: 0.05 })}
        {tx("trafficWindow", "forms.swarm.window", { type: "number", min: 1, max: 200 })}
        {tx("activeStart", "forms.swarm.activeStart", { type: "time" })}
        {tx("activeEnd", "forms.swarm.activeEnd", { type: "time" })}
        {tx("activeZone", "forms.ad.timezone")}
        {tx("until", "forms.swarm.until", { type: "datetime-local" })}
        {tx("durationMinutes", "forms.swarm.duration", { type: "number", min: 1 })}
      </div>
    </FormShell>
  );
}

// --- roles ---------------------------------------------------------------------------------------

type RoleView = GetRoles.Response_.RoleView;
type RoleType = NonNullable<SaveRole.Request["type"]>;
const ROLE_TYPES: RoleType[] = ["expert", "satisfied_customer", "support", "manager", "newbie", "hesitant", "custom"];

export interface RoleDraft {
  name: string; type: RoleType; boundAccountId: string; description: string; speakingStyle: string; traits: string; background: string;
  useGlobalAi: boolean; customPrompt: string; responseLength: "short" | "medium" | "long"; emojiFrequency: "none" | "low" | "medium" | "high";
  typingSpeed: string; responsibilities: string; isActive: boolean;
}
const EMPTY_ROLE: RoleDraft = {
  name: "", type: "custom", boundAccountId: "", description: "", speakingStyle: "", traits: "", background: "", useGlobalAi: true,
  customPrompt: "", responseLength: "short", emojiFrequency: "low", typingSpeed: "200", responsibilities: "", isActive: true,
};
const roleDraft = (r: RoleView): RoleDraft => ({
  name: r.name, type: r.type ?? "custom", boundAccountId: r.boundAccountId ?? "", description: r.personality?.description ?? "",
  speakingStyle: r.personality?.speakingStyle ?? "", traits: (r.personality?.traits ?? []).join(", "), background: r.personality?.background ?? "",
  useGlobalAi: r.aiConfig?.useGlobalAi ?? true, customPrompt: r.aiConfig?.customPrompt ?? "", responseLength: r.aiConfig?.responseLength ?? "short",
  emojiFrequency: r.aiConfig?.emojiFrequency ?? "low", typingSpeed: String(r.aiConfig?.typingSpeed ?? 200),
  responsibilities: (r.responsibilities ?? []).join("\n"), isActive: r.isActive ?? true,
});

export function roleRequest(d: RoleDraft, id: string | null, strategyId: string | null, t: T): { request: SaveRole.Request | null; problems: string[] } {
  const p: string[] = [];
  if (!d.name.trim()) p.push(t("forms.required", { field: t("forms.role.name") }));
  const speed = Number(d.typingSpeed);
  if (!(speed >= 20 && speed <= 2000)) p.push(t("forms.role.badSpeed"));
  if (p.length) return { request: null, problems: p };
  return {
    problems: [],
    request: {
      ...(id ? { id } : {}), name: d.name.trim(), type: d.type, boundAccountId: d.boundAccountId || null,
      personality: { description: text(d.description), speakingStyle: text(d.speakingStyle), traits: words(d.traits), background: text(d.background) },
      aiConfig: { useGlobalAi: d.useGlobalAi, strategyId, customPrompt: text(d.customPrompt), responseLength: d.responseLength, emojiFrequency: d.emojiFrequency, typingSpeed: speed },
      responsibilities: lines(d.responsibilities), isActive: d.isActive,
    } as SaveRole.Request,
  };
}

function RoleForm({ role, onDone }: { role: RoleView | null; onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const accounts = useCommand("get-accounts", { limit: 200 }, ACCOUNT_EVENTS);
  const [d, setD] = useState<RoleDraft>(() => (role ? roleDraft(role) : EMPTY_ROLE));
  const [problems, setProblems] = useState<string[]>([]);
  const action = useAction();
  const set = <K extends keyof RoleDraft>(k: K, v: RoleDraft[K]) => setD((x) => ({ ...x, [k]: v }));
  const save = () => {
    const { request, problems: p } = roleRequest(d, role?.id ?? null, role?.aiConfig?.strategyId ?? null, t);
    setProblems(p);
    if (request) void action.run(async () => (await api.call("save-role", request), onDone()));
  };
  const tx = (k: keyof RoleDraft, label: MessageKey, area = false) => (
    <label>{t(label)}{area
      ? <textarea name={`role-${k}`} rows={2} value={d[k] as string} onChange={(e) => set(k, e.target.value as never)} />
      : <input name={`role-${k}`} value={d[k] as string} onChange={(e) => set(k, e.target.value as never)} />}</label>
  );
  const pick = <K extends "type" | "responseLength" | "emojiFrequency">(k: K, label: MessageKey, values: readonly string[]) => (
    <label>{t(label)}
      <select value={d[k]} onChange={(e) => set(k, e.target.value as RoleDraft[K])}>
        {values.map((v) => <option key={v} value={v}>{t(`forms.role.${k}.${v}` as MessageKey)}</option>)}
      </select>
    </label>
  );
  return (
    <FormShell title={role ? t("forms.role.edit", { name: role.name }) : t("forms.role.new")} id="role-form" problems={problems}
      error={action.error} busy={action.busy} onSave={save} onCancel={onDone}>
      <div className="form-grid">
        {tx("name", "forms.role.name")}
        {pick("type", "forms.role.type", ROLE_TYPES)}
        <label>{t("forms.role.account")}
          <select name="role-boundAccountId" value={d.boundAccountId} onChange={(e) => set("boundAccountId", e.target.value)}>
            <option value="">{t("leads.edit.noAccount")}</option>
            {(accounts.data?.items ?? []).map((a) => <option key={a.id} value={a.id}>{a.phone}</option>)}
          </select>
        </label>
        {tx("speakingStyle", "forms.role.style")}
        {tx("traits", "forms.role.traits")}
        {pick("responseLength", "forms.role.length", ["short", "medium", "long"])}
        {pick("emojiFrequency", "forms.role.emoji", ["none", "low", "medium", "high"])}
        <label>{t("forms.role.speed")}<input type="number" name="role-typingSpeed" min={20} max={2000} value={d.typingSpeed} onChange={(e) => set("typingSpeed", e.target.value)} /></label>
        <label className="inline"><input type="checkbox" checked={d.useGlobalAi} onChange={(e) => set("useGlobalAi", e.target.checked)} />{t("forms.role.globalAi")}</label>
        <label className="inline"><input type="checkbox" checked={d.isActive} onChange={(e) => set("isActive", e.target.checked)} />{t("forms.active")}</label>
      </div>
      {tx("description", "forms.role.persona", true)}
      {tx("background", "forms.role.background", true)}
      {tx("customPrompt", "forms.role.prompt", true)}
      {tx("responsibilities", "forms.role.duties", true)}
    </FormShell>
  );
}

// --- scripts -------------------------------------------------------------------------------------

type ScriptView = GetScripts.Response_.ScriptView;
type Stage = ScriptView["stages"][number];
type Line = Stage["lines"][number];
type TriggerType = NonNullable<NonNullable<Stage["trigger"]>["type"]>;
const SLOT = /^[a-z][a-z0-9_]*$/;

interface StageDraft { name: string; trigger: TriggerType; delaySeconds: string; keywords: string; lines: string }
export interface ScriptDraft { name: string; description: string; slots: string; stages: StageDraft[]; successKeywords: string; isActive: boolean }
const EMPTY_STAGE: StageDraft = { name: "", trigger: "time", delaySeconds: "0", keywords: "", lines: "" };
const EMPTY_SCRIPT: ScriptDraft = { name: "", description: "", slots: "", stages: [EMPTY_STAGE], successKeywords: "", isActive: true };

const lineText = (l: Line) =>
  `${l.slot}: ${l.type === "ai_generate" ? `ai: ${l.prompt ?? ""}` : l.type === "template" ? `template: ${l.templateId ?? ""}` : l.text ?? ""}`;
const scriptDraft = (s: ScriptView): ScriptDraft => ({
  name: s.name, description: s.description ?? "", isActive: s.isActive ?? true,
  slots: (s.roles ?? []).map((r) => (r.description ? `${r.key}: ${r.description}` : r.key)).join("\n"),
  stages: (s.stages ?? []).map((st) => ({
    name: st.name ?? "", trigger: st.trigger?.type ?? "time", delaySeconds: String(st.trigger?.delaySeconds ?? 0),
    keywords: (st.trigger?.keywords ?? []).join(", "), lines: (st.lines ?? []).map(lineText).join("\n"),
  })),
  successKeywords: (s.success?.keywords ?? []).join(", "),
});

/** One `slot: text` line (`slot: ai: prompt`, `slot: template: id`) as a script line, or null. */
function parseLine(v: string): Line | null {
  const m = /^([a-z][a-z0-9_]*)\s*:\s*(.+)$/.exec(v);
  if (!m) return null;
  const [, slot, rest] = m;
  const kind = /^(ai|template)\s*:\s*(.+)$/.exec(rest);
  if (kind?.[1] === "ai") return { slot, type: "ai_generate", prompt: kind[2].trim() } as Line;
  if (kind?.[1] === "template") return { slot, type: "template", templateId: kind[2].trim() } as Line;
  return { slot, type: "text", text: rest.trim() } as Line;
}

/** The draft as save-script's request. Editing keeps what the form does not show (a line's delays,
 * a stage's branches and failure handling) from the script as it was read, stage by stage, line by line. */
export function scriptRequest(d: ScriptDraft, base: ScriptView | null, t: T): { request: SaveScript.Request | null; problems: string[] } {
  const p: string[] = [];
  if (!d.name.trim()) p.push(t("forms.required", { field: t("forms.script.name") }));
  const roles = lines(d.slots).map((l) => {
    const at = l.indexOf(":");
    const key = (at < 0 ? l : l.slice(0, at)).trim();
    const old = base?.roles?.find((r) => r.key === key);
    return { ...(old ?? {}), key, description: at < 0 ? null : text(l.slice(at + 1)) };
  });
  if (!roles.length) p.push(t("forms.required", { field: t("forms.script.slots") }));
  const badSlots = roles.filter((r) => !SLOT.test(r.key)).map((r) => r.key);
  if (badSlots.length) p.push(t("forms.script.badSlot", { slots: badSlots.join(", ") }));
  const keys = new Set(roles.map((r) => r.key));
  const stages = d.stages.map((s, i) => {
    const old = base?.stages?.[i];
    const raw = lines(s.lines);
    if (!raw.length) p.push(t("forms.script.noLines", { stage: i + 1 }));
    const parsed = raw.map((l, j) => {
      const line = parseLine(l);
      if (!line) p.push(t("forms.script.badLine", { stage: i + 1, line: j + 1 }));
      else if (!keys.has(line.slot)) p.push(t("forms.script.unknownSlot", { stage: i + 1, line: j + 1, slot: line.slot }));
      const prev = old?.lines?.[j];
      return line && prev && prev.slot === line.slot && prev.type === line.type ? { ...prev, ...line } : line;
    });
    const kw = words(s.keywords);
    if (s.trigger === "keyword" && !kw.length) p.push(t("forms.script.needKeywords", { stage: i + 1 }));
    return {
      ...(old ?? {}), name: text(s.name), lines: parsed,
      trigger: { ...(old?.trigger ?? {}), type: s.trigger, delaySeconds: Number(s.delaySeconds || 0), keywords: kw },
    };
  });
  if (p.length) return { request: null, problems: p };
  const success = words(d.successKeywords);
  return {
    problems: [],
    request: {
      ...(base ? { id: base.id } : {}), name: d.name.trim(), description: text(d.description), roles, stages,
      success: success.length || base?.success?.minReplies ? { ...(base?.success ?? {}), keywords: success } : null, isActive: d.isActive,
    } as SaveScript.Request,
  };
}

function ScriptForm({ script, onDone }: { script: ScriptView | null; onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [d, setD] = useState<ScriptDraft>(() => (script ? scriptDraft(script) : EMPTY_SCRIPT));
  const [problems, setProblems] = useState<string[]>([]);
  const action = useAction();
  const set = <K extends keyof ScriptDraft>(k: K, v: ScriptDraft[K]) => setD((x) => ({ ...x, [k]: v }));
  const setStage = (i: number, patch: Partial<StageDraft>) => set("stages", d.stages.map((s, j) => (j === i ? { ...s, ...patch } : s)));
  const save = () => {
    const { request, problems: p } = scriptRequest(d, script, t);
    setProblems(p);
    if (request) void action.run(async () => (await api.call("save-script", request), onDone()));
  };
  return (
    <FormShell title={script ? t("forms.script.edit", { name: script.name }) : t("forms.script.new")} id="script-form" problems={problems}
      error={action.error} busy={action.busy} onSave={save} onCancel={onDone}>
      <div className="form-grid">
        <label>{t("forms.script.name")}<input name="script-name" value={d.name} onChange={(e) => set("name", e.target.value)} /></label>
        <label>{t("forms.description")}<input value={d.description} onChange={(e) => set("description", e.target.value)} /></label>
        <label>{t("forms.script.success")}<input value={d.successKeywords} onChange={(e) => set("successKeywords", e.target.value)} /></label>
        <label className="inline"><input type="checkbox" checked={d.isActive} onChange={(e) => set("isActive", e.target.checked)} />{t("forms.active")}</label>
      </div>
      <label>{t("forms.script.slots")}<textarea name="script-slots" rows={2} value={d.slots} onChange={(e) => set("slots", e.target.value)} /></label>
      {d.stages.map((s, i) => (
        <fieldset key={i} data-testid="script-stage">
          <legend>{t("forms.script.stage", { stage: i + 1 })}</legend>
          <div className="row">
            <label>{t("forms.script.stageName")}<input value={s.name} onChange={(e) => setStage(i, { name: e.target.value })} /></label>
            <label>{t("forms.script.trigger")}
              <select value={s.trigger} onChange={(e) => setStage(i, { trigger: e.target.value as TriggerType })}>
                {(["time", "message", "keyword", "manual"] as const).map((x) => <option key={x} value={x}>{t(`forms.script.trigger.${x}` as MessageKey)}</option>)}
              </select>
            </label>
            <label>{t("forms.script.delay")}<input type="number" min={0} value={s.delaySeconds} onChange={(e) => setStage(i, { delaySeconds: e.target.value })} /></label>
            {s.trigger === "keyword" && <label>{t("forms.script.keywords")}<input value={s.keywords} onChange={(e) => setStage(i, { keywords: e.target.value })} /></label>}
            {d.stages.length > 1 && (
              <button type="button" className="secondary" onClick={() => set("stages", d.stages.filter((_, j) => j !== i))}>{t("forms.script.removeStage")}</button>
            )}
          </div>
          <label>{t("forms.script.lines")}<textarea rows={3} value={s.lines} onChange={(e) => setStage(i, { lines: e.target.value })} /></label>
        </fieldset>
      ))}
      <button type="button" className="secondary" onClick={() => set("stages", [...d.stages, EMPTY_STAGE])}>{t("forms.script.addStage")}</button>
    </FormShell>
  );
}

// --- scenarios -----------------------------------------------------------------------------------

type ScenarioView = GetScenarios.Response_.ScenarioView;
type LeadStage = NonNullable<SaveScenario.Request["leadStages"]>[number];
const LEAD_STAGES: LeadStage[] = ["new", "contacted", "replied", "follow_up", "closed_won", "closed_lost"];

export interface ScenarioDraft {
  name: string; description: string; scriptId: string; bindings: Record<string, string>; where: "existing_group" | "new_group"; chat: string;
  title: string; about: string; inviteMessage: string; startOn: "manual" | "lead_stage"; leadStages: LeadStage[]; maxConcurrentRuns: string; isActive: boolean;
}
const EMPTY_SCENARIO: ScenarioDraft = {
  name: "", description: "", scriptId: "", bindings: {}, where: "new_group", chat: "", title: "", about: "", inviteMessage: "",
  startOn: "manual", leadStages: [], maxConcurrentRuns: "5", isActive: true,
};
const scenarioDraft = (s: ScenarioView): ScenarioDraft => ({
  name: s.name, description: s.description ?? "", scriptId: s.scriptId, bindings: { ...(s.roleBindings as Record<string, string>) },
  where: s.where ?? "new_group", chat: s.chat == null ? "" : String(s.chat), title: s.newGroup?.title ?? "", about: s.newGroup?.about ?? "",
  inviteMessage: s.newGroup?.inviteMessage ?? "", startOn: s.startOn ?? "manual", leadStages: [...(s.leadStages ?? [])],
  maxConcurrentRuns: String(s.maxConcurrentRuns ?? 5), isActive: s.isActive ?? true,
});

export function scenarioRequest(d: ScenarioDraft, id: string | null, slots: string[], t: T): { request: SaveScenario.Request | null; problems: string[] } {
  const p: string[] = [];
  if (!d.name.trim()) p.push(t("forms.required", { field: t("forms.scenario.name") }));
  if (!d.scriptId) p.push(t("forms.required", { field: t("forms.scenario.script") }));
  const unbound = slots.filter((s) => !d.bindings[s]);
  if (unbound.length) p.push(t("forms.scenario.unbound", { slots: unbound.join(", ") }));
  if (d.where === "new_group" && !d.title.trim()) p.push(t("forms.required", { field: t("forms.scenario.title") }));
  if (d.startOn === "lead_stage" && !d.leadStages.length) p.push(t("forms.scenario.needStages"));
  if (p.length) return { request: null, problems: p };
  const bindings = Object.fromEntries(slots.map((s) => [s, d.bindings[s]]));
  return {
    problems: [],
    request: {
      ...(id ? { id } : {}), name: d.name.trim(), description: text(d.description), scriptId: d.scriptId, roleBindings: bindings, where: d.where,
      ...(d.where === "existing_group"
        ? { chat: d.chat.trim() ? chatRef(d.chat) : null }
        : { newGroup: { title: d.title.trim(), about: text(d.about), inviteMessage: text(d.inviteMessage) } }),
      startOn: d.startOn, leadStages: d.startOn === "lead_stage" ? d.leadStages : [], maxConcurrentRuns: Number(d.maxConcurrentRuns || 5), isActive: d.isActive,
    } as SaveScenario.Request,
  };
}

function ScenarioForm({ scenario, scripts, roles, onDone }: { scenario: ScenarioView | null; scripts: ScriptView[]; roles: RoleView[]; onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [d, setD] = useState<ScenarioDraft>(() => (scenario ? scenarioDraft(scenario) : EMPTY_SCENARIO));
  const [problems, setProblems] = useState<string[]>([]);
  const action = useAction();
  const set = <K extends keyof ScenarioDraft>(k: K, v: ScenarioDraft[K]) => setD((x) => ({ ...x, [k]: v }));
  const slots = (scripts.find((s) => s.id === d.scriptId)?.roles ?? []).map((r) => r.key);
  const save = () => {
    const { request, problems: p } = scenarioRequest(d, scenario?.id ?? null, slots, t);
    setProblems(p);
    if (request) void action.run(async () => (await api.call("save-scenario", request), onDone()));
  };
  const tx = (k: "name" | "description" | "chat" | "title" | "about" | "inviteMessage", label: MessageKey) => (
    <label>{t(label)}<input name={`scenario-${k}`} value={d[k]} onChange={(e) => set(k, e.target.value)} /></label>
  );
  return (
    <FormShell title={scenario ? t("forms.scenario.edit", { name: scenario.name }) : t("forms.scenario.new")} id="scenario-form"
      problems={problems} error={action.error} busy={action.busy} onSave={save} onCancel={onDone}>
      <div className="form-grid">
        {tx("name", "forms.scenario.name")}
        {tx("description", "forms.description")}
        <label>{t("forms.scenario.script")}
          <select name="scenario-scriptId" value={d.scriptId} onChange={(e) => set("scriptId", e.target.value)}>
            <option value="">—</option>
            {scripts.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
          </select>
        </label>
        {slots.map((slot) => (
          <label key={slot}>{t("forms.scenario.slot", { slot })}
            <select value={d.bindings[slot] ?? ""} onChange={(e) => set("bindings", { ...d.bindings, [slot]: e.target.value })}>
              <option value="">—</option>
              {roles.map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
            </select>
          </label>
        ))}
        <label>{t("forms.scenario.where")}
          <select value={d.where} onChange={(e) => set("where", e.target.value as ScenarioDraft["where"])}>
            <option value="new_group">{t("forms.scenario.where.new_group")}</option>
            <option value="existing_group">{t("forms.scenario.where.existing_group")}</option>
          </select>
        </label>
        {d.where === "existing_group" ? tx("chat", "forms.scenario.chat") : <>{tx("title", "forms.scenario.title")}{tx("about", "forms.scenario.about")}{tx("inviteMessage", "forms.scenario.invite")}</>}
        <label>{t("forms.scenario.startOn")}
          <select value={d.startOn} onChange={(e) => set("startOn", e.target.value as ScenarioDraft["startOn"])}>
            <option value="manual">{t("forms.scenario.startOn.manual")}</option>
            <option value="lead_stage">{t("forms.scenario.startOn.lead_stage")}</option>
          </select>
        </label>
        {d.startOn === "lead_stage" && (
          <label>{t("forms.scenario.stages")}
            <select multiple value={d.leadStages} onChange={(e) => set("leadStages", multi(e) as LeadStage[])}>
              {LEAD_STAGES.map((s) => <option key={s} value={s}>{t(`stage.${s}` as MessageKey)}</option>)}
            </select>
          </label>
        )}
        <label>{t("forms.scenario.concurrent")}<input type="number" min={1} max={100} value={d.maxConcurrentRuns} onChange={(e) => set("maxConcurrentRuns", e.target.value)} /></label>
        <label className="inline"><input type="checkbox" checked={d.isActive} onChange={(e) => set("isActive", e.target.checked)} />{t("forms.active")}</label>
      </div>
    </FormShell>
  );
}

// --- the library panel ---------------------------------------------------------------------------

type Editing<V> = V | "new" | null;

/** One list of the library (roles, scripts or scenarios): its rows, New/Edit for operators, Delete for admins. */
function Section<V extends { id: string; name: string }>(props: {
  title: string; kind: "role" | "script" | "scenario"; items: V[]; error: unknown; save: "save-role" | "save-script" | "save-scenario";
  remove: "delete-role" | "delete-script" | "delete-scenario"; detail: (v: V) => ReactNode; form: (v: V | null, done: () => void) => ReactNode;
}) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const [editing, setEditing] = useState<Editing<V>>(null);
  const action = useAction();
  return (
    <div data-testid={`${props.kind}-list`}>
      <h3>{props.title}</h3>
      <ErrorLine error={props.error ?? action.error} />
      {props.items.length === 0 ? <p className="muted">{t("common.none")}</p> : (
        <table>
          <tbody>
            {props.items.map((v) => (
              <tr key={v.id} data-testid={props.kind} data-id={v.id}>
                <td>{v.name}</td>
                <td>{props.detail(v)}</td>
                <td className="toolbar">
                  {can(props.save) && <button type="button" className="secondary" onClick={() => setEditing(v)}>{t("forms.edit")}</button>}
                  {can(props.remove) && (
                    <ConfirmButton label={t("common.delete")} question={t("forms.deleteConfirm", { name: v.name })} disabled={action.busy}
                      onConfirm={() => void action.run(() => api.call(props.remove, { id: v.id }))} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {can(props.save) && editing === null && (
        <button type="button" onClick={() => setEditing("new")}>{t(`forms.${props.kind}.new` as MessageKey)}</button>
      )}
      {editing !== null && props.form(editing === "new" ? null : editing, () => setEditing(null))}
    </div>
  );
}

export function MultiRoleLibrary() {
  const { t } = useI18n();
  const roles = useCommand("get-roles", {}, LIB_EVENTS);
  const scripts = useCommand("get-scripts", {}, LIB_EVENTS);
  const scenarios = useCommand("get-scenarios", {}, LIB_EVENTS);
  const roleItems = roles.data?.items ?? [];
  const scriptItems = scripts.data?.items ?? [];
  const names = new Map<string, string>([...roleItems, ...scriptItems].map((x) => [x.id, x.name]));
  return (
    <Panel title={t("forms.library.title")} id="multi-role-library">
      <div className="columns">
        <Section title={t("forms.library.roles")} kind="role" items={roleItems} error={roles.error} save="save-role" remove="delete-role"
          detail={(r) => `${t(`forms.role.type.${r.type ?? "custom"}` as MessageKey)}${r.isActive === false ? ` · ${t("forms.inactive")}` : ""}`}
          form={(r, done) => <RoleForm key={r?.id ?? "new"} role={r} onDone={done} />} />
        <Section title={t("forms.library.scripts")} kind="script" items={scriptItems} error={scripts.error} save="save-script" remove="delete-script"
          detail={(s) => t("forms.script.summary", { slots: s.roles?.length ?? 0, stages: s.stages?.length ?? 0 })}
          form={(s, done) => <ScriptForm key={s?.id ?? "new"} script={s} onDone={done} />} />
        <Section title={t("forms.library.scenarios")} kind="scenario" items={scenarios.data?.items ?? []} error={scenarios.error} save="save-scenario"
          remove="delete-scenario" detail={(s) => names.get(s.scriptId) ?? s.scriptId}
          form={(s, done) => <ScenarioForm key={s?.id ?? "new"} scenario={s} scripts={scriptItems} roles={roleItems} onDone={done} />} />
      </div>
    </Panel>
  );
}

