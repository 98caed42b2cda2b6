// The task centre's ad campaigns and collaboration (multi-role) runs, live over the WebSocket: each
// with its status and progress, its failures per account (reason, retry time) and the actions its
// commands offer — ads: start / resume (`start-ad-campaign`), stop (`stop-ad-campaign`); runs: start
// the stage an operator must start (`start-collaboration` with `advanceRunId`), stop
// (`stop-collaboration`); swarms: their group, roles, limits, what they did with the group's messages
// (answered, or why not, by reason; the latest decisions; answers per account), stop (`stop-swarm`);
// all three: pause and resume their sends (`pause-queue` / `resume-queue`, scope `campaign`: an ad
// post's, a script line's and a swarm answer's job carry the campaign's, run's or swarm's id). Admins
// delete an ad campaign (`delete-ad-campaign`, after a confirm). New and edited ad campaigns, swarms
// started, roles, scripts and scenarios: RunForms.tsx.
import { Fragment, useState } from "react";
import type { GetAdCampaigns, GetCollaborationStatus, GetQueueStatus, GetSwarmStatus } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import { AccountName, type Job, JobsTable, Time } from "./jobs";
import { AdCampaignForm, SwarmForm } from "./RunForms";

export type Ad = GetAdCampaigns.Response_.AdCampaignView;
export type Run = GetCollaborationStatus.Response_.CollaborationRunView;
export type Swarm = GetSwarmStatus.Response_.SwarmView;
type QueueStatus = GetQueueStatus.Response;
type QueueCounts = Pick<GetQueueStatus.Response_.CampaignQueueRow, "pending" | "scheduled" | "inFlight" | "sent" | "failed" | "skipped" | "cancelled">;
type Peer = NonNullable<Run["target"]>;

const AD_EVENTS = ["campaign-state-changed", "ad-run-completed", "entity-changed", "job-state-changed", "message-queued"];
const RUN_EVENTS = ["collaboration-progress", "entity-changed", "job-state-changed"];
const JOB_EVENTS = ["job-state-changed", "message-queued", "queue-cleared"];
const AD_STARTABLE = new Set(["draft", "stopped", "paused", "failed"]);
const AD_ACTIVE = new Set(["scheduled", "running", "paused"]);
const RUN_ACTIVE = new Set(["creating", "inviting", "running", "paused"]);
// A swarm decides on every group message (message-received) and answers through the queue.
const SWARM_EVENTS = ["swarm-state-changed", "job-state-changed", "message-received", "entity-changed"];
const SWARM_ACTIVE = new Set(["starting", "running"]);

/** A campaign's (or run's) jobs in the queue: done (sent, failed, skipped, cancelled) of all. */
export function jobProgress(row: Partial<QueueCounts> | undefined): { done: number; total: number } {
  const r = row ?? {};
  const done = (r.sent ?? 0) + (r.failed ?? 0) + (r.skipped ?? 0) + (r.cancelled ?? 0);
  return { done, total: done + (r.pending ?? 0) + (r.scheduled ?? 0) + (r.inFlight ?? 0) };
}

/** Whether the queue holds this campaign's (or run's) sends. */
const sendsPaused = (queue: QueueStatus | null, id: string) =>
  !!queue?.pauses?.some((p) => p.scope === "campaign" && p.campaignId === id) ||
  !!queue?.campaigns?.some((c) => c.campaignId === id && c.paused);

/** A job that failed, was skipped, or waits for a retry (a reason, an error or an earlier attempt). */
export const troubled = (j: Job) =>
  j.state === "failed" || j.state === "skipped" ||
  ((j.state === "scheduled" || j.state === "pending") && ((j.attempts ?? 0) > 0 || !!j.reason || !!j.lastError));

export interface AccountTrouble { accountId: string | null; failed: number; retrying: number; reasons: string[]; nextRetry: string | null }

/** The troubled jobs by account: failures, jobs waiting to retry, their reasons and the next retry. */
export function byAccount(jobs: Job[]): AccountTrouble[] {
  const rows = new Map<string, AccountTrouble>();
  for (const j of jobs.filter(troubled)) {
    const key = j.accountId ?? "";
    const row = rows.get(key) ?? { accountId: j.accountId ?? null, failed: 0, retrying: 0, reasons: [], nextRetry: null };
    if (j.state === "failed" || j.state === "skipped") row.failed += 1;
    else {
      row.retrying += 1;
      if (j.notBefore && (!row.nextRetry || j.notBefore < row.nextRetry)) row.nextRetry = j.notBefore;
    }
    const reason = j.reason ?? j.lastError;
    if (reason && !row.reasons.includes(reason)) row.reasons.push(reason);
    rows.set(key, row);
  }
  return [...rows.values()];
}

/** A peer as the operator knows it: a group's title, a user's name or @username, else its id. */
export function peerName(p: Peer | null | undefined): string {
  if (!p) return "—";
  const name = p.title ?? ([p.firstName, p.lastName].filter(Boolean).join(" ") || null);
  return name ?? (p.username ? `@${p.username}` : String(p.userId ?? p.chatId ?? "—"));
}

/** The failures and retries of one campaign or run: per account, then job by job. */
function Troubles({ campaignId }: { campaignId: string }) {
  const { t } = useI18n();
  const jobs = useCommand(
    "get-queue-status",
    { campaignId, includeJobs: true, limit: 200, states: ["failed", "skipped", "scheduled", "pending"] },
    JOB_EVENTS,
  );
  const items = (jobs.data?.jobs?.items ?? []).filter(troubled);
  const accounts = byAccount(items);
  return (
    <div className="troubles" data-testid="troubles" data-campaign={campaignId}>
      <ErrorLine error={jobs.error} />
      {!jobs.data ? (
        <p className="muted">{t("common.loading")}</p>
      ) : items.length === 0 ? (
        <p className="muted">{t("runs.failures.none")}</p>
      ) : (
        <>
          <h3>{t("runs.failures.byAccount")}</h3>
          <table>
            <thead>
              <tr>
                <th>{t("queue.col.account")}</th>
                <th>{t("runs.col.failed")}</th>
                <th>{t("runs.col.retrying")}</th>
                <th>{t("runs.col.reasons")}</th>
                <th>{t("runs.col.nextRetry")}</th>
              </tr>
            </thead>
            <tbody>
              {accounts.map((a) => (
                <tr key={a.accountId ?? ""} data-testid="trouble-account" data-account={a.accountId ?? ""}>
                  <td><AccountName id={a.accountId} /></td>
                  <td>{a.failed}</td>
                  <td>{a.retrying}</td>
                  <td>{a.reasons.join(", ") || "—"}</td>
                  <td><Time iso={a.nextRetry} /></td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>{t("queue.jobs.title")}</h3>
          <JobsTable jobs={items} />
        </>
      )}
    </div>
  );
}

/** The button that opens a row's failures (`aria-expanded`), labelled with how many there are. */
function TroublesToggle(props: { open: boolean; count: number; controls: string; onToggle: () => void }) {
  const { t } = useI18n();
  return (
    <button type="button" className="secondary" aria-expanded={props.open} aria-controls={props.controls} onClick={props.onToggle}>
      {t("runs.failures.show", { count: props.count })}
    </button>
  );
}

/** Pause / resume the queue's sends of one campaign or run (operators). */
function SendsControl({ id, paused, busy, run }: { id: string; paused: boolean; busy: boolean; run: (fn: () => Promise<unknown>) => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  if (paused)
    return can("resume-queue") ? (
      <button type="button" className="secondary" disabled={busy} onClick={() => run(() => api.call("resume-queue", { scope: "campaign", campaignId: id }))}>
        {t("runs.resumeSends")}
      </button>
    ) : null;
  return can("pause-queue") ? (
    <button type="button" className="secondary" disabled={busy} onClick={() => run(() => api.call("pause-queue", { scope: "campaign", campaignId: id, reason: "console" }))}>
      {t("runs.pauseSends")}
    </button>
  ) : null;
}

export function AdCampaigns({ queue }: { queue: QueueStatus | null }) {
  const { t } = useI18n();
  const { can } = useSession();
  const ads = useCommand("get-ad-campaigns", { limit: 50 }, AD_EVENTS);
  const [open, setOpen] = useState<string | null>(null);
  const [editing, setEditing] = useState<Ad | "new" | null>(null);
  const items = ads.data?.items ?? [];
  const done = () => (setEditing(null), ads.reload());
  return (
    <Panel title={t("runs.ads.title")} id="ad-campaigns">
      <ErrorLine error={ads.error} />
      {can("create-ad-campaign") && editing === null && (
        <div className="toolbar"><button type="button" onClick={() => setEditing("new")}>{t("forms.ad.new")}</button></div>
      )}
      {editing !== null && <AdCampaignForm key={editing === "new" ? "new" : editing.id} ad={editing === "new" ? null : editing} onDone={done} />}
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t("runs.col.ad")}</th>
              <th>{t("queue.col.status")}</th>
              <th>{t("queue.col.progress")}</th>
              <th>{t("runs.col.counters")}</th>
              <th>{t("runs.col.nextRun")}</th>
              <th>{t("runs.col.lastError")}</th>
              <th>{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((ad) => (
              <AdRow key={ad.id} ad={ad} queue={queue} open={open === ad.id} onToggle={() => setOpen(open === ad.id ? null : ad.id)} onEdit={() => setEditing(ad)} />
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function AdRow({ ad, queue, open, onToggle, onEdit }: { ad: Ad; queue: QueueStatus | null; open: boolean; onToggle: () => void; onEdit: () => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const row = queue?.campaigns?.find((c) => c.campaignId === ad.id);
  const { done, total } = jobProgress(row);
  const paused = sendsPaused(queue, ad.id);
  const c = ad.counters ?? {};
  const run = (fn: () => Promise<unknown>) => void action.run(fn);
  const detail = `ad-troubles-${ad.id}`;
  return (
    <Fragment>
      <tr data-testid="ad-campaign" data-id={ad.id} data-name={ad.name} data-status={ad.status} data-paused={paused ? "true" : "false"}>
        <td>{ad.name}</td>
        <td>
          <span className={`badge campaign-${ad.status}`} data-testid="ad-status">{t(`campaign.${ad.status}` as MessageKey)}</span>
          {paused && <> <span className="badge job-scheduled">{t("runs.sendsPaused")}</span></>}
        </td>
        <td data-testid="ad-progress" data-done={done} data-total={total}>
          <progress max={Math.max(total, 1)} value={done} aria-label={t("queue.col.progress")} /> {`${done} / ${total}`}
        </td>
        <td data-testid="ad-counters" data-posted={c.posted ?? 0} data-failed={c.failed ?? 0}>
          {t("runs.counters", { runs: c.runs ?? 0, posted: c.posted ?? 0, failed: c.failed ?? 0, skipped: c.skipped ?? 0 })}
        </td>
        <td><Time iso={ad.nextRunAt} /></td>
        <td>{ad.lastError ?? "—"}</td>
        <td>
          <div className="toolbar">
            {can("start-ad-campaign") && AD_STARTABLE.has(ad.status) && (
              <button type="button" disabled={action.busy} onClick={() => run(() => api.call("start-ad-campaign", { id: ad.id }))}>
                {ad.status === "paused" || ad.status === "stopped" ? t("runs.resume") : t("runs.start")}
              </button>
            )}
            {can("stop-ad-campaign") && AD_ACTIVE.has(ad.status) && (
              <ConfirmButton
                label={t("runs.stop")}
                question={t("runs.stopAdConfirm", { name: ad.name })}
                disabled={action.busy}
                onConfirm={() => run(() => api.call("stop-ad-campaign", { id: ad.id, cancelPending: true }))}
              />
            )}
            {AD_ACTIVE.has(ad.status) && <SendsControl id={ad.id} paused={paused} busy={action.busy} run={run} />}
            {can("update-ad-campaign") && <button type="button" className="secondary" onClick={onEdit}>{t("forms.edit")}</button>}
            {can("delete-ad-campaign") && (
              <ConfirmButton
                label={t("common.delete")}
                question={t("runs.deleteAdConfirm", { name: ad.name })}
                disabled={action.busy}
                onConfirm={() => run(() => api.call("delete-ad-campaign", { id: ad.id }))}
              />
            )}
            <TroublesToggle open={open} count={(row?.failed ?? 0) + (row?.skipped ?? 0)} controls={detail} onToggle={onToggle} />
          </div>
          <ErrorLine error={action.error} />
        </td>
      </tr>
      {open && (
        <tr id={detail}>
          <td colSpan={7}><Troubles campaignId={ad.id} /></td>
        </tr>
      )}
    </Fragment>
  );
}

export function Collaborations({ queue }: { queue: QueueStatus | null }) {
  const { t } = useI18n();
  const runs = useCommand("get-collaboration-status", { limit: 50 }, RUN_EVENTS);
  const scripts = useCommand("get-scripts", {}, ["entity-changed"]);
  const scenarios = useCommand("get-scenarios", {}, ["entity-changed"]);
  const [open, setOpen] = useState<string | null>(null);
  const items = runs.data?.items ?? [];
  const names = new Map<string, string>();
  for (const s of scripts.data?.items ?? []) names.set(s.id, s.name);
  for (const s of scenarios.data?.items ?? []) names.set(s.id, s.name);
  return (
    <Panel title={t("runs.collab.title")} id="collaborations">
      <ErrorLine error={runs.error} />
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t("runs.col.run")}</th>
              <th>{t("runs.col.target")}</th>
              <th>{t("runs.col.roles")}</th>
              <th>{t("queue.col.status")}</th>
              <th>{t("queue.col.progress")}</th>
              <th>{t("runs.col.waiting")}</th>
              <th>{t("runs.col.replies")}</th>
              <th>{t("runs.col.outcome")}</th>
              <th>{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <RunRow
                key={r.id}
                run={r}
                name={names.get(r.scenarioId ?? "") ?? names.get(r.scriptId) ?? r.scriptId}
                queue={queue}
                open={open === r.id}
                onToggle={() => setOpen(open === r.id ? null : r.id)}
              />
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function Waiting({ run }: { run: Run }) {
  const { t, time } = useI18n();
  if (!RUN_ACTIVE.has(run.status) || !run.waitingFor) return <>—</>;
  if (run.waitingFor === "time") return <>{t("runs.waiting.time", { time: time(run.nextLineAt) })}</>;
  return <>{t(`runs.waiting.${run.waitingFor}` as MessageKey)}</>;
}

function RunRow({ run, name, queue, open, onToggle }: { run: Run; name: string; queue: QueueStatus | null; open: boolean; onToggle: () => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const active = RUN_ACTIVE.has(run.status);
  const paused = sendsPaused(queue, run.id);
  const row = queue?.campaigns?.find((c) => c.campaignId === run.id);
  const sent = run.messagesSent ?? 0;
  const total = Math.max(run.messagesTotal ?? 0, sent);
  const call = (fn: () => Promise<unknown>) => void action.run(fn);
  const detail = `run-troubles-${run.id}`;
  return (
    <Fragment>
      <tr data-testid="collaboration" data-id={run.id} data-status={run.status} data-waiting={run.waitingFor ?? ""} data-paused={paused ? "true" : "false"}>
        <td>
          {name} <code className="muted">{run.id.slice(-6)}</code>
          {run.chat && <div className="muted">{peerName(run.chat)}</div>}
        </td>
        <td>{peerName(run.target)}</td>
        <td>
          {(run.participants ?? []).map((p) => (
            <div key={p.slot}>
              {p.roleName ?? p.slot} (<AccountName id={p.accountId} />)
            </div>
          ))}
        </td>
        <td>
          <span className={`badge campaign-${run.status}`} data-testid="run-status">{t(`collab.${run.status}` as MessageKey)}</span>
          {paused && <> <span className="badge job-scheduled">{t("runs.sendsPaused")}</span></>}
        </td>
        <td data-testid="run-progress" data-sent={sent} data-total={total}>
          <progress max={Math.max(total, 1)} value={sent} aria-label={t("queue.col.progress")} />{" "}
          {t("runs.lines", { sent, total })}
          <div className="muted">{t("runs.stageLine", { stage: (run.currentStage ?? 0) + 1, line: (run.currentLine ?? 0) + 1 })}</div>
        </td>
        <td><Waiting run={run} /></td>
        <td>{run.replies ?? 0}</td>
        <td>
          {run.outcome ? t(`outcome.${run.outcome}` as MessageKey) : "—"}
          {run.lastError && <div className="error">{run.lastError}</div>}
        </td>
        <td>
          <div className="toolbar">
            {can("start-collaboration") && active && run.waitingFor === "manual" && (
              <button type="button" disabled={action.busy} onClick={() => call(() => api.call("start-collaboration", { advanceRunId: run.id }))}>
                {t("runs.advance")}
              </button>
            )}
            {can("stop-collaboration") && active && (
              <ConfirmButton
                label={t("runs.stop")}
                question={t("runs.stopRunConfirm")}
                disabled={action.busy}
                onConfirm={() => call(() => api.call("stop-collaboration", { runId: run.id, reason: "console" }))}
              />
            )}
            {active && <SendsControl id={run.id} paused={paused} busy={action.busy} run={call} />}
            <TroublesToggle open={open} count={(row?.failed ?? 0) + (row?.skipped ?? 0)} controls={detail} onToggle={onToggle} />
          </div>
          <ErrorLine error={action.error} />
        </td>
      </tr>
      {open && (
        <tr id={detail}>
          <td colSpan={9}><Troubles campaignId={run.id} /></td>
        </tr>
      )}
    </Fragment>
  );
}

/** Where a swarm talks: the group as resolved, else its id. */
const swarmChat = (s: Swarm) => (s.chatView ? peerName(s.chatView) : String(s.chatId ?? s.groupId ?? s.chat ?? "—"));

export function Swarms({ queue }: { queue: QueueStatus | null }) {
  const { t } = useI18n();
  const { can } = useSession();
  const swarms = useCommand("get-swarm-status", {}, SWARM_EVENTS);
  const [open, setOpen] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const items = swarms.data?.items ?? [];
  return (
    <Panel title={t("runs.swarms.title")} id="swarms">
      <ErrorLine error={swarms.error} />
      {can("start-swarm") && !starting && (
        <div className="toolbar"><button type="button" onClick={() => setStarting(true)}>{t("forms.swarm.new")}</button></div>
      )}
      {starting && <SwarmForm onDone={() => (setStarting(false), swarms.reload())} />}
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t("runs.col.group")}</th>
              <th>{t("runs.col.roles")}</th>
              <th>{t("queue.col.status")}</th>
              <th>{t("runs.col.activity")}</th>
              <th>{t("runs.col.limits")}</th>
              <th>{t("runs.col.ends")}</th>
              <th>{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => (
              <SwarmRow key={s.id} swarm={s} queue={queue} open={open === s.id} onToggle={() => setOpen(open === s.id ? null : s.id)} />
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function SwarmRow({ swarm: s, queue, open, onToggle }: { swarm: Swarm; queue: QueueStatus | null; open: boolean; onToggle: () => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const active = SWARM_ACTIVE.has(s.status);
  const paused = sendsPaused(queue, s.id);
  const stats = s.stats ?? {};
  const call = (fn: () => Promise<unknown>) => void action.run(fn);
  const detail = `swarm-detail-${s.id}`;
  const pct = (v: number | undefined, d: number) => `${Math.round((v ?? d) * 100)}%`;
  return (
    <Fragment>
      <tr data-testid="swarm" data-id={s.id} data-status={s.status} data-paused={paused ? "true" : "false"}>
        <td>
          {swarmChat(s)} <code className="muted">{s.id.slice(-6)}</code>
          <div className="muted">{t(`forms.swarm.mode.${s.mode ?? "ai"}` as MessageKey)}</div>
        </td>
        <td>
          {(s.participants ?? []).map((p) => (
            <div key={p.roleId}>{p.roleName ?? p.roleId} (<AccountName id={p.accountId} />)</div>
          ))}
        </td>
        <td>
          <span className={`badge campaign-${s.status === "starting" ? "scheduled" : s.status}`} data-testid="swarm-status">{t(`swarm.${s.status}` as MessageKey)}</span>
          {paused && <> <span className="badge job-scheduled">{t("runs.sendsPaused")}</span></>}
          {(s.stopReason || s.lastError) && <div className="error">{s.lastError ?? s.stopReason}</div>}
        </td>
        <td className="wrap" data-testid="swarm-activity" data-sent={s.messagesSent ?? 0} data-seen={stats.messagesSeen ?? 0} data-answered={stats.answered ?? 0}>
          {t("runs.swarm.activity", { sent: s.messagesSent ?? 0, seen: stats.messagesSeen ?? 0, answered: stats.answered ?? 0 })}
          <div className="muted">{t("runs.swarm.lastMessage")} <Time iso={s.lastMessageAt} /></div>
        </td>
        <td className="muted wrap">
          {t("runs.swarm.limits", {
            probability: pct(s.replyProbability, 0.3), interval: s.minIntervalSeconds ?? 120,
            hourly: s.maxMessagesPerHour ?? 12, share: pct(s.maxTrafficShare, 0.3), window: s.trafficWindow ?? 20,
          })}
        </td>
        <td><Time iso={s.stoppedAt ?? s.endsAt} /></td>
        <td>
          <div className="toolbar">
            {can("stop-swarm") && active && (
              <ConfirmButton label={t("runs.stop")} question={t("runs.stopSwarmConfirm", { group: swarmChat(s) })} disabled={action.busy}
                onConfirm={() => call(() => api.call("stop-swarm", { swarmId: s.id }))} />
            )}
            {active && <SendsControl id={s.id} paused={paused} busy={action.busy} run={call} />}
            <button type="button" className="secondary" aria-expanded={open} aria-controls={detail} onClick={onToggle}>
              {t("runs.swarm.details")}
            </button>
          </div>
          <ErrorLine error={action.error} />
        </td>
      </tr>
      {open && (
        <tr id={detail}>
          <td colSpan={7}><SwarmDetail swarm={s} /></td>
        </tr>
      )}
    </Fragment>
  );
}

/** What a swarm did with the group's messages: outcomes by count, answers per account, the latest
 * decisions, then its failed or retrying answers. */
function SwarmDetail({ swarm: s }: { swarm: Swarm }) {
  const { t } = useI18n();
  const stats = s.stats ?? {};
  const reasons = Object.entries((stats.reasons ?? {}) as Record<string, number>).sort((a, b) => b[1] - a[1]);
  const outcome = (o: string) => t(`swarm.outcome.${o}` as MessageKey);
  return (
    <div className="troubles" data-testid="swarm-detail" data-swarm={s.id}>
      <h3>{t("runs.swarm.reasons")}</h3>
      {reasons.length === 0 ? <p className="muted">{t("common.none")}</p> : (
        <ul>
          {reasons.map(([k, n]) => <li key={k} data-testid="swarm-reason" data-reason={k}>{`${outcome(k)}: ${n}`}</li>)}
        </ul>
      )}
      <h3>{t("runs.swarm.accounts")}</h3>
      <table>
        <thead>
          <tr><th>{t("queue.col.account")}</th><th>{t("runs.swarm.answered")}</th><th>{t("runs.swarm.lastAnswer")}</th></tr>
        </thead>
        <tbody>
          {(stats.accounts ?? []).map((a) => (
            <tr key={a.accountId} data-testid="swarm-account" data-account={a.accountId}>
              <td><AccountName id={a.accountId} /></td>
              <td>{a.answered ?? 0}</td>
              <td><Time iso={a.lastAnswerAt} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>{t("runs.swarm.decisions")}</h3>
      {(stats.lastDecisions ?? []).length === 0 ? <p className="muted">{t("common.none")}</p> : (
        <table>
          <thead>
            <tr><th>{t("runs.swarm.at")}</th><th>{t("runs.swarm.outcome")}</th><th>{t("runs.swarm.trigger")}</th><th>{t("queue.col.account")}</th><th>{t("runs.swarm.message")}</th><th>{t("runs.swarm.detail")}</th></tr>
          </thead>
          <tbody>
            {(stats.lastDecisions ?? []).map((d) => (
              <tr key={`${d.messageId}-${d.at}`} data-testid="swarm-decision" data-outcome={d.outcome}>
                <td><Time iso={d.at} /></td>
                <td>{outcome(d.outcome)}</td>
                <td>{d.trigger ?? "—"}</td>
                <td>{d.accountId ? <AccountName id={d.accountId} /> : "—"}</td>
                <td className="wrap">{d.preview ?? "—"}</td>
                <td className="wrap">{d.detail ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Troubles campaignId={s.id} />
    </div>
  );
}
