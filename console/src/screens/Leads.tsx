// Leads: the funnel board (drag a card to another stage, or pick one from its menu with the
// keyboard), a lead's details with its timeline (stage changes and messages) and its editing
// (LeadEdit.tsx), and the blacklist.
import { useEffect, useRef, useState } from "react";
import type { GetLeadDetails, GetLeads } from "../api/types.gen";
import { ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import { AccountName } from "./jobs";
import { LeadEditor, STAGES } from "./LeadEdit";

type Lead = GetLeads.Response_.LeadView;
type Stage = Lead["stage"];
const LEAD_EVENTS = ["lead-captured", "lead-stage-changed", "entity-changed", "user-blacklisted", "user-opted-out"];

export const leadName = (l: Pick<Lead, "firstName" | "lastName" | "username" | "userId" | "id">) =>
  [l.firstName, l.lastName].filter(Boolean).join(" ") || (l.username ? `@${l.username}` : String(l.userId ?? l.id));

export function Leads() {
  const { t } = useI18n();
  const [search, setSearch] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const leads = useCommand("get-leads", { limit: 200, search: search.trim() || null, includeDoNotContact: true }, LEAD_EVENTS);
  const funnel = useCommand("get-funnel-stats", {}, LEAD_EVENTS);
  const items = leads.data?.items ?? [];
  return (
    <div className="screen">
      <h1>{t("leads.title")}</h1>
      <div className="filters">
        <label>
          {t("common.search")}
          <input type="search" name="lead-search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
        <span className="muted" data-testid="funnel-total">
          {t("leads.total", { count: funnel.data?.total ?? 0, rate: pct(funnel.data?.conversionRate) })}
        </span>
      </div>
      <ErrorLine error={leads.error ?? funnel.error} />
      <Board leads={items.filter((l) => !l.blacklisted)} counts={funnel.data?.stages ?? []} onOpen={setSelected} />
      <div className="columns">
        {selected && <LeadDetails id={selected} onClose={() => setSelected(null)} />}
        <Blacklist leads={items.filter((l) => l.blacklisted)} />
      </div>
    </div>
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
