// Queue and tasks: the paced queue's totals, every job with its state (failures with account,
// reason and retry time), per-account and per-campaign progress; pause/resume/clear; a send; ad
// campaigns, collaboration runs and swarms as they run (Runs.tsx).
import { useState } from "react";
import { ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import { AccountName, JobsTable, Time } from "./jobs";
import { AdCampaigns, Collaborations, Swarms } from "./Runs";
import { MultiRoleLibrary } from "./RunForms";

const QUEUE_EVENTS = [
  "job-state-changed", "queue-progress", "queue-pause-changed", "queue-cleared", "message-queued",
  "message-sent", "campaign-progress", "campaign-state-changed", "ad-run-completed", "collaboration-progress",
];
const TOTALS = ["pending", "scheduled", "inFlight", "sent", "failed", "skipped"] as const;

export function Queue() {
  const { t } = useI18n();
  const { can } = useSession();
  const [failedOnly, setFailedOnly] = useState(false);
  const status = useCommand(
    "get-queue-status",
    { includeJobs: true, limit: 50, states: failedOnly ? ["failed"] : null },
    QUEUE_EVENTS,
  );
  const q = status.data;
  return (
    <div className="screen">
      <h1>{t("queue.title")}</h1>
      <ErrorLine error={status.error} />
      <Panel title={t("queue.title")} id="queue-totals">
        <p role="status" data-testid="queue-paused" data-paused={q?.paused ? "true" : "false"}>
          {q ? (q.paused ? t("queue.paused") : t("queue.running")) : t("common.loading")}
        </p>
        <dl className="totals">
          {TOTALS.map((k) => (
            <div key={k} data-testid={`total-${k}`}>
              <dt>{t(`queue.totals.${k}` as MessageKey)}</dt>
              <dd>{q?.totals?.[k] ?? 0}</dd>
            </div>
          ))}
        </dl>
        <QueueControls paused={!!q?.paused} />
      </Panel>
      <div className="columns">
        {can("send-message") && <SendMessage />}
        <Panel title={t("queue.accounts.title")} id="queue-accounts">
          <table>
            <thead>
              <tr>
                <th>{t("queue.col.account")}</th>
                <th>{t("queue.col.sentToday")}</th>
                <th>{t("queue.totals.pending")}</th>
                <th>{t("queue.totals.failed")}</th>
                <th>{t("queue.col.next")}</th>
              </tr>
            </thead>
            <tbody>
              {(q?.accounts ?? []).map((a) => (
                <tr key={a.accountId}>
                  <td><AccountName id={a.accountId} /></td>
                  <td>{`${a.sentToday ?? 0} / ${a.dailyCap ?? "—"}`}</td>
                  <td>{(a.pending ?? 0) + (a.scheduled ?? 0)}</td>
                  <td>{a.failed ?? 0}</td>
                  <td><Time iso={a.nextAllowedAt ?? null} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </Panel>
      </div>
      <Panel title={t("queue.jobs.title")} id="queue-jobs">
        <label className="inline">
          <input type="checkbox" checked={failedOnly} onChange={(e) => setFailedOnly(e.target.checked)} />
          {t("queue.jobs.failedOnly")}
        </label>
        <JobsTable jobs={q?.jobs?.items ?? []} />
      </Panel>
      <Campaigns />
      <AdCampaigns queue={q} />
      <Collaborations queue={q} />
      <Swarms queue={q} />
      <MultiRoleLibrary />
    </div>
  );
}

function QueueControls({ paused }: { paused: boolean }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const [note, setNote] = useState("");
  return (
    <div className="toolbar">
      {can("pause-queue") && !paused && (
        <button type="button" disabled={action.busy} onClick={() => void action.run(() => api.call("pause-queue", { scope: "all" }))}>
          {t("queue.pause")}
        </button>
      )}
      {can("resume-queue") && paused && (
        <button type="button" disabled={action.busy} onClick={() => void action.run(() => api.call("resume-queue", { scope: "all" }))}>
          {t("queue.resume")}
        </button>
      )}
      {can("clear-queue") && (
        <button
          type="button"
          className="danger"
          disabled={action.busy}
          onClick={() => {
            if (!window.confirm(t("queue.clearConfirm"))) return;
            void action.run(async () => {
              const r = await api.call("clear-queue", { scope: "all", confirm: true });
              setNote(t("queue.cleared", { count: r.cancelled }));
            });
          }}
        >
          {t("queue.clear")}
        </button>
      )}
      {note && <span className="muted">{note}</span>}
      <ErrorLine error={action.error} />
    </div>
  );
}

export function SendMessage() {
  const { t } = useI18n();
  const { api } = useSession();
  const accounts = useCommand("get-accounts", { state: ["active"], limit: 200 }, ["account-status-changed", "account-logged-in"]);
  const [accountId, setAccountId] = useState("");
  const [peer, setPeer] = useState("");
  const [text, setText] = useState("");
  const [jobId, setJobId] = useState<string | null>(null);
  const action = useAction();
  const send = () =>
    action.run(async () => {
      const r = await api.call("send-message", {
        accountId: accountId || null,
        peer: /^-?\d+$/.test(peer.trim()) ? Number(peer.trim()) : peer.trim(),
        text,
        waitSeconds: 0,
      });
      setJobId(r.jobId);
    });
  return (
    <Panel title={t("queue.send.title")} id="send">
      <form onSubmit={(e) => (e.preventDefault(), void send())}>
        <label>
          {t("queue.send.account")}
          <select name="account" value={accountId} onChange={(e) => setAccountId(e.target.value)}>
            <option value="">{t("queue.send.anyAccount")}</option>
            {(accounts.data?.items ?? []).map((a) => (
              <option key={a.id} value={a.id}>{a.phone}{a.label ? ` (${a.label})` : ""}</option>
            ))}
          </select>
        </label>
        <label>
          {t("queue.send.peer")}
          <input name="peer" value={peer} onChange={(e) => setPeer(e.target.value)} required />
        </label>
        <label>
          {t("queue.send.text")}
          <textarea name="text" value={text} onChange={(e) => setText(e.target.value)} required rows={3} />
        </label>
        <button type="submit" disabled={action.busy || !peer.trim() || !text.trim()}>{t("queue.send.submit")}</button>
      </form>
      {jobId && <p role="status" data-testid="send-queued" data-job={jobId}>{t("queue.send.queued", { jobId: jobId.slice(-8) })}</p>}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

function Campaigns() {
  const { t } = useI18n();
  const campaigns = useCommand("get-campaigns", { limit: 50 }, ["campaign-progress", "campaign-state-changed", "entity-changed"]);
  const items = campaigns.data?.items ?? [];
  return (
    <Panel title={t("queue.campaigns.title")} id="campaigns">
      <ErrorLine error={campaigns.error} />
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t("queue.col.campaign")}</th>
              <th>{t("queue.col.status")}</th>
              <th>{t("queue.col.progress")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => {
              const n = c.counters;
              const done = (n?.sent ?? 0) + (n?.failed ?? 0) + (n?.skipped ?? 0) + (n?.cancelled ?? 0);
              const total = Math.max(n?.targets ?? 0, done);
              return (
                <tr key={c.id}>
                  <td>{c.name}</td>
                  <td>{t(`campaign.${c.status}` as MessageKey)}</td>
                  <td>
                    <progress max={Math.max(total, 1)} value={done} /> {`${done} / ${total}`}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Panel>
  );
}
