// Leads: the funnel board (drag a card to another stage, or pick one from its menu with the
// keyboard) narrowed by get-leads' filters (only those set are sent), a lead's details with its
// timeline (stage changes and messages) and its editing (LeadEdit.tsx), and the blacklist.
import { useEffect, useRef, useState } from "react";
import type { GetLeadDetails, GetLeads } from "../api/types.gen";
import { ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import { AccountName } from "./jobs";
import { LeadEditor, splitTags, STAGES } from "./LeadEdit";

type Lead = GetLeads.Response_.LeadView;
type Stage = Lead["stage"];
type LeadQuery = Partial<GetLeads.Request>;
type Level = NonNullable<Lead["intentLevel"]>;
type Sort = NonNullable<GetLeads.Request["sort"]>;
const LEVELS: Level[] = ["hot", "warm", "neutral", "cold", "none"];
const SOURCES = ["keyword", "group_member", "private_message", "manual", "import", "campaign", "ai"] as const;
const SORTS: Sort[] = ["created_at", "updated_at", "intent_score", "last_contacted_at"];
const LEAD_EVENTS = ["lead-captured", "lead-stage-changed", "entity-changed", "user-blacklisted", "user-opted-out"];

export const leadName = (l: Pick<Lead, "firstName" | "lastName" | "username" | "userId" | "id">) =>
  [l.firstName, l.lastName].filter(Boolean).join(" ") || (l.username ? `@${l.username}` : String(l.userId ?? l.id));

/** What the filter form holds; "" (or none ticked) is "any". */
export interface LeadFilter {
  search: string;
  stages: NonNullable<Stage>[];
  intentLevels: Level[];
  tags: string;
  sourceType: string;
  sourceGroupId: string;
  keywordSetId: string;
  campaignId: string;
  assignedAccountId: string;
  assignee: string;
  from: string;
  to: string;
  hideDoNotContact: boolean;
  sort: Sort;
  ascending: boolean;
}
export const NO_FILTER: LeadFilter = {
  search: "", stages: [], intentLevels: [], tags: "", sourceType: "", sourceGroupId: "", keywordSetId: "", campaignId: "",
  assignedAccountId: "", assignee: "", from: "", to: "", hideDoNotContact: false, sort: "created_at", ascending: false,
};

/** A `yyyy-mm-dd` day's start in the browser's timezone, `days` later, as an ISO instant. */
const dayStart = (day: string, days = 0) => {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + days);
  return d.toISOString();
};
export const datesReversed = (f: LeadFilter) => !!f.from && !!f.to && f.from > f.to;

/** The get-leads fields for the filters set, and no others: the dates as the start of the first day
 * and the start of the day after the last (the service reads `since <= created < until`). */
export function leadQuery(f: LeadFilter): LeadQuery {
  const q: LeadQuery = {};
  if (f.search.trim()) q.search = f.search.trim();
  if (f.stages.length) q.stages = STAGES.filter((s) => f.stages.includes(s)) as NonNullable<LeadQuery["stages"]>;
  if (f.intentLevels.length) q.intentLevels = LEVELS.filter((l) => f.intentLevels.includes(l)) as NonNullable<LeadQuery["intentLevels"]>;
  const tags = splitTags(f.tags);
  if (tags.length) q.tags = tags as NonNullable<LeadQuery["tags"]>;
  if (f.sourceType) q.sourceType = f.sourceType as LeadQuery["sourceType"];
  if (f.sourceGroupId) q.sourceGroupId = f.sourceGroupId;
  if (f.keywordSetId) q.keywordSetId = f.keywordSetId;
  if (f.campaignId) q.campaignId = f.campaignId;
  if (f.assignedAccountId) q.assignedAccountId = f.assignedAccountId;
  if (f.assignee.trim()) q.assignee = f.assignee.trim();
  if (!datesReversed(f)) {
    if (f.from) q.createdSince = dayStart(f.from);
    if (f.to) q.createdUntil = dayStart(f.to, 1);
  }
  if (f.hideDoNotContact) q.includeDoNotContact = false;
  if (f.sort !== "created_at") q.sort = f.sort;
  if (f.ascending) q.descending = false;
  return q;
}

/** The filters get-funnel-stats takes too; the others make the board count its own cards. */
export function funnelQuery(q: LeadQuery) {
  const out: Record<string, string> = {};
  for (const k of ["assignedAccountId", "campaignId", "keywordSetId", "sourceGroupId"] as const) if (q[k]) out[k] = q[k];
  if (q.createdSince) out.since = q.createdSince;
  if (q.createdUntil) out.until = q.createdUntil;
  return out;
}
const FUNNEL_LESS = ["search", "stages", "intentLevels", "tags", "sourceType", "assignee", "includeDoNotContact"] as const;

export function Leads() {
  const { t } = useI18n();
  const [filter, setFilter] = useState<LeadFilter>(NO_FILTER);
  const [selected, setSelected] = useState<string | null>(null);
  const query = leadQuery(filter);
  const leads = useCommand("get-leads", { limit: 200, includeDoNotContact: true, ...query }, LEAD_EVENTS);
  const funnel = useCommand("get-funnel-stats", funnelQuery(query), LEAD_EVENTS);
  const items = leads.data?.items ?? [];
  const filtered = Object.keys(query).some((k) => k !== "sort" && k !== "descending");
  const ownCounts = FUNNEL_LESS.some((k) => k in query);
  return (
    <div className="screen">
      <h1>{t("leads.title")}</h1>
      <LeadFilters filter={filter} onChange={setFilter} />
      <div className="filters">
        <span className="muted" data-testid="funnel-total">
          {t("leads.total", { count: funnel.data?.total ?? 0, rate: pct(funnel.data?.conversionRate) })}
        </span>
        {filtered && <span className="muted" data-testid="lead-matches">{t("leads.filter.matches", { count: leads.data?.total ?? items.length })}</span>}
      </div>
      <ErrorLine error={leads.error ?? funnel.error} />
      <Board leads={items.filter((l) => !l.blacklisted)} counts={ownCounts ? [] : funnel.data?.stages ?? []} onOpen={setSelected} />
      <div className="columns">
        {selected && <LeadDetails id={selected} onClose={() => setSelected(null)} />}
        <Blacklist leads={items.filter((l) => l.blacklisted)} />
      </div>
    </div>
  );
}

function LeadFilters({ filter, onChange }: { filter: LeadFilter; onChange: (f: LeadFilter) => void }) {
  const { t } = useI18n();
  const set = <K extends keyof LeadFilter>(k: K, v: LeadFilter[K]) => onChange({ ...filter, [k]: v });
  const toggle = <T,>(list: T[], v: T) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);
  const groups = useCommand("get-monitored-groups", {}, []).data?.items ?? [];
  const sets = useCommand("get-keyword-sets", {}, []).data?.items ?? [];
  const campaigns = useCommand("get-campaigns", { limit: 200 }, []).data?.items ?? [];
  const accounts = useCommand("get-accounts", { limit: 200 }, ["account-added", "account-removed"]).data?.items ?? [];
  const pick = (k: "sourceType" | "sourceGroupId" | "keywordSetId" | "campaignId" | "assignedAccountId", label: MessageKey, options: { id: string; name: string }[]) => (
    <label>
      {t(label)}
      <select name={`lead-${k}`} value={filter[k]} onChange={(e) => set(k, e.target.value)}>
        <option value="">{t("common.all")}</option>
        {options.map((o) => <option key={o.id} value={o.id}>{o.name}</option>)}
      </select>
    </label>
  );
  const checks = <K extends "stages" | "intentLevels">(k: K, name: string, legend: MessageKey, values: readonly LeadFilter[K][number][], prefix: string) => (
    <fieldset>
      <legend>{t(legend)}</legend>
      {values.map((v) => (
        <label key={v} className="check">
          <input type="checkbox" name={name} checked={(filter[k] as string[]).includes(v)} onChange={() => set(k, toggle(filter[k] as string[], v) as LeadFilter[K])} />
          {t(`${prefix}.${v}` as MessageKey)}
        </label>
      ))}
    </fieldset>
  );
  return (
    <form className="filters lead-filters" role="search" data-testid="lead-filters" onSubmit={(e) => e.preventDefault()}>
      <label>
        {t("common.search")}
        <input type="search" name="lead-search" value={filter.search} onChange={(e) => set("search", e.target.value)} />
      </label>
      {checks("stages", "lead-stage", "leads.col.stage", STAGES, "stage")}
      {checks("intentLevels", "lead-intent", "leads.col.intent", LEVELS, "intent")}
      <label>{t("leads.filter.tags")}<input name="lead-tags" value={filter.tags} onChange={(e) => set("tags", e.target.value)} /></label>
      {pick("sourceType", "leads.col.source", SOURCES.map((s) => ({ id: s, name: t(`source.${s}` as MessageKey) })))}
      {pick("sourceGroupId", "leads.filter.group", groups.map((g) => ({ id: g.id, name: g.title ?? (g.username ? `@${g.username}` : String(g.chatId ?? g.id)) })))}
      {pick("keywordSetId", "leads.filter.keywordSet", sets.map((k) => ({ id: k.id, name: k.name })))}
      {pick("campaignId", "leads.filter.campaign", campaigns.map((c) => ({ id: c.id, name: c.name })))}
      {pick("assignedAccountId", "leads.edit.account", accounts.map((a) => ({ id: a.id, name: a.label ? `${a.phone} (${a.label})` : a.phone })))}
      <label>{t("leads.edit.assignee")}<input name="lead-assignee" value={filter.assignee} onChange={(e) => set("assignee", e.target.value)} /></label>
      <label>{t("leads.filter.from")}<input type="date" name="lead-from" value={filter.from} onChange={(e) => set("from", e.target.value)} /></label>
      <label>{t("leads.filter.to")}<input type="date" name="lead-to" value={filter.to} onChange={(e) => set("to", e.target.value)} /></label>
      <label className="check">
        <input type="checkbox" name="lead-hide-dnc" checked={filter.hideDoNotContact} onChange={(e) => set("hideDoNotContact", e.target.checked)} />
        {t("leads.filter.hideDoNotContact")}
      </label>
      <label>
        {t("leads.filter.sort")}
        <select name="lead-sort" value={filter.sort} onChange={(e) => set("sort", e.target.value as Sort)}>
          {SORTS.map((s) => <option key={s} value={s}>{t(`leads.filter.sort.${s}` as MessageKey)}</option>)}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" name="lead-ascending" checked={filter.ascending} onChange={(e) => set("ascending", e.target.checked)} />
        {t("leads.filter.ascending")}
      </label>
      <button type="button" className="secondary" disabled={JSON.stringify(filter) === JSON.stringify(NO_FILTER)} onClick={() => onChange(NO_FILTER)}>
        {t("leads.filter.reset")}
      </button>
      {datesReversed(filter) && <p className="error" data-testid="lead-dates-error">{t("leads.filter.datesReversed")}</p>}
    </form>
  );
}

export const pct = (r: number | null | undefined) => (r == null ? "—" : `${Math.round(r * 1000) / 10}%`);

export function Board(props: { leads: Lead[]; counts: { stage: string; count: number }[]; onOpen: (id: string) => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const move = useAction();
  const [over, setOver] = useState<Stage | null>(null);
  const writable = can("update-lead-stage");
  const drop = (leadId: string, stage: Stage) => {
    const lead = props.leads.find((l) => l.id === leadId);
    if (!lead || lead.stage === stage) return;
    void move.run(() => api.call("update-lead-stage", { leadId, stage, reason: "console" }));
  };
  return (
    <Panel title={t("leads.board")} id="funnel">
      <ErrorLine error={move.error} />
      <div className="board">
        {STAGES.map((stage) => {
          const cards = props.leads.filter((l) => l.stage === stage);
          const count = props.counts.find((c) => c.stage === stage)?.count ?? cards.length;
          return (
            <section
              key={stage}
              className={`stage${over === stage ? " over" : ""}`}
              data-testid="stage"
              data-stage={stage}
              aria-label={t(`stage.${stage}` as MessageKey)}
              onDragOver={(e) => writable && (e.preventDefault(), setOver(stage))}
              onDragLeave={() => setOver(null)}
              onDrop={(e) => {
                e.preventDefault();
                setOver(null);
                drop(e.dataTransfer.getData("text/plain"), stage);
              }}
            >
              <h3>{t(`stage.${stage}` as MessageKey)} <span className="badge">{count}</span></h3>
              {cards.map((l) => (
                <article
                  key={l.id}
                  className="card"
                  data-testid="lead-card"
                  data-lead={l.id}
                  draggable={writable}
                  onDragStart={(e) => e.dataTransfer.setData("text/plain", l.id)}
                >
                  <button type="button" className="link" onClick={() => props.onOpen(l.id)}>{leadName(l)}</button>
                  <span className="muted">{l.sourceChatTitle ?? t(`source.${l.sourceType}` as MessageKey)}</span>
                  {writable && (
                    <select
                      aria-label={t("leads.moveTo")}
                      value={l.stage}
                      disabled={move.busy}
                      onChange={(e) => drop(l.id, e.target.value as Stage)}
                    >
                      {STAGES.map((s) => <option key={s} value={s}>{t(`stage.${s}` as MessageKey)}</option>)}
                    </select>
                  )}
                </article>
              ))}
            </section>
          );
        })}
      </div>
    </Panel>
  );
}

type Details = GetLeadDetails.Response;
interface TimelineItem { at: string; kind: "stage" | "in" | "out"; text: string }

/** Stage changes and messages, newest first. */
export function timeline(d: Details, t: (k: MessageKey, v?: Record<string, string>) => string): TimelineItem[] {
  const stage = (s: string | null | undefined) => (s ? t(`stage.${s}` as MessageKey) : "—");
  const items: TimelineItem[] = [
    ...(d.stageHistory ?? []).map((h) => ({
      at: h.at,
      kind: "stage" as const,
      text: t("leads.stageChange", { from: stage(h.fromStage), to: stage(h.toStage), by: h.by ?? "—" }) + (h.reason ? ` (${h.reason})` : ""),
    })),
    ...(d.recentMessages ?? []).map((m) => ({ at: m.date, kind: m.direction, text: m.text ?? m.mediaKind ?? "" })),
  ];
  return items.sort((a, b) => b.at.localeCompare(a.at));
}

function LeadDetails({ id, onClose }: { id: string; onClose: () => void }) {
  const { t, time } = useI18n();
  const { can } = useSession();
  const [editing, setEditing] = useState(false);
  // Back from the form, the keyboard's focus returns to the Edit button.
  const editButton = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(false);
  useEffect(() => {
    if (wasEditing.current && !editing) editButton.current?.focus();
    wasEditing.current = editing;
  }, [editing]);
  const details = useCommand("get-lead-details", { leadId: id }, [...LEAD_EVENTS, "message-sent", "message-received"]);
  const d = details.data;
  const editable = can("update-lead") && can("assign-lead") && can("update-lead-stage");
  return (
    <Panel title={t("leads.details")} id="lead-details">
      <ErrorLine error={details.error} />
      {d && editing && (
        <LeadEditor
          key={d.id}
          lead={d}
          onDone={(saved) => {
            setEditing(false);
            if (saved) details.reload(); // what was saved, now, not only when its event arrives
          }}
        />
      )}
      {d && !editing && (
        <>
          <dl className="facts">
            <dt>{t("leads.col.name")}</dt><dd data-testid="lead-name">{leadName(d)}</dd>
            <dt>{t("leads.col.stage")}</dt><dd data-testid="lead-stage">{t(`stage.${d.stage ?? "new"}` as MessageKey)}</dd>
            <dt>{t("leads.col.intent")}</dt><dd data-testid="lead-intent">{t(`intent.${d.intentLevel ?? "none"}` as MessageKey)}{d.intentScore != null ? ` (${d.intentScore})` : ""}</dd>
            <dt>{t("leads.col.source")}</dt><dd>{d.sourceChatTitle ?? t(`source.${d.sourceType ?? "manual"}` as MessageKey)}</dd>
            <dt>{t("leads.col.keyword")}</dt><dd>{(d.matchedKeywords ?? []).join(", ") || d.triggeredKeyword || "—"}</dd>
            <dt>{t("leads.col.tags")}</dt><dd data-testid="lead-tags">{(d.tags ?? []).join(", ") || "—"}</dd>
            <dt>{t("leads.edit.username")}</dt><dd>{d.username ? `@${d.username}` : "—"}</dd>
            <dt>{t("leads.edit.phone")}</dt><dd>{d.phone ?? "—"}</dd>
            <dt>{t("leads.edit.assignee")}</dt><dd data-testid="lead-assignee">{d.assignee ?? "—"}</dd>
            <dt>{t("leads.edit.account")}</dt><dd>{d.assignedAccountId ? <AccountName id={d.assignedAccountId} /> : "—"}</dd>
            <dt>{t("leads.edit.doNotContact")}</dt><dd>{d.doNotContact ? t("common.yes") : t("common.no")}</dd>
            <dt>{t("leads.edit.notes")}</dt><dd className="notes" data-testid="lead-notes">{d.notes ?? "—"}</dd>
            <dt>{t("leads.edit.customFields")}</dt>
            <dd>{Object.entries(d.customFields ?? {}).map(([k, v]) => `${k}: ${String(v)}`).join(", ") || "—"}</dd>
          </dl>
          <div className="toolbar">
            {editable && <button type="button" ref={editButton} onClick={() => setEditing(true)}>{t("leads.edit")}</button>}
            <button type="button" className="secondary" onClick={onClose}>{t("common.close")}</button>
          </div>
          <h3>{t("leads.timeline")}</h3>
          <ol className="timeline" data-testid="timeline">
            {timeline(d, t).map((e, i) => (
              <li key={i} data-kind={e.kind}>
                <time>{time(e.at)}</time> <span className="badge">{t(`leads.kind.${e.kind}` as MessageKey)}</span> {e.text}
              </li>
            ))}
          </ol>
        </>
      )}
      {!d && <button type="button" className="secondary" onClick={onClose}>{t("common.close")}</button>}
    </Panel>
  );
}

function Blacklist({ leads }: { leads: Lead[] }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const [who, setWho] = useState("");
  const [reason, setReason] = useState("");
  const target = (v: string) => (/^\d+$/.test(v) ? { userId: Number(v) } : { username: v.replace(/^@/, "") });
  return (
    <Panel title={t("leads.blacklist")} id="blacklist">
      {can("blacklist-user") && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => {
              await api.call("blacklist-user", { ...target(who.trim()), reason: reason || null, blacklist: true });
              setWho("");
              setReason("");
            });
          }}
        >
          <label>{t("leads.blacklist.who")}<input name="blacklist-who" value={who} onChange={(e) => setWho(e.target.value)} required /></label>
          <label>{t("leads.blacklist.reason")}<input name="blacklist-reason" value={reason} onChange={(e) => setReason(e.target.value)} /></label>
          <button type="submit" disabled={action.busy || !who.trim()}>{t("leads.blacklist.add")}</button>
        </form>
      )}
      <ErrorLine error={action.error} />
      {leads.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <tbody>
            {leads.map((l) => (
              <tr key={l.id} data-testid="blacklisted">
                <td>{leadName(l)}</td>
                <td>
                  {can("blacklist-user") && (
                    <button
                      type="button"
                      className="secondary"
                      disabled={action.busy}
                      onClick={() => void action.run(() => api.call("blacklist-user", { ...(l.userId ? { userId: l.userId } : { username: l.username }), blacklist: false }))}
                    >
                      {t("leads.blacklist.remove")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}
