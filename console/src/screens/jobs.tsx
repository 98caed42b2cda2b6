// What the task centre's panels share: an account shown by its phone, a time in the operator's
// zone, and the jobs table (state, attempts, reason and error, retry time, Telegram message id).
import { useEffect, useState } from "react";
import type { GetQueueStatus } from "../api/types.gen";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useSession } from "../session";

export type Job = GetQueueStatus.Response_.JobView;

export function Time({ iso }: { iso: string | null | undefined }) {
  const { time } = useI18n();
  return <>{time(iso)}</>;
}

const names = new Map<string, Promise<string>>();
/** An account's phone, from the fleet (one lookup per id, shared by every cell that shows it). */
export function AccountName({ id }: { id: string | null | undefined }) {
  const { api } = useSession();
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    if (!id) return;
    let lookup = names.get(id);
    if (!lookup) {
      lookup = api.call("get-accounts", { ids: [id], limit: 1 }).then((p) => p.items?.[0]?.phone ?? id, () => id);
      names.set(id, lookup);
    }
    let live = true;
    void lookup.then((n) => live && setName(n));
    return () => {
      live = false;
    };
  }, [api, id]);
  return <>{id ? (name ?? id) : "—"}</>;
}

export function JobsTable({ jobs }: { jobs: Job[] }) {
  const { t } = useI18n();
  if (jobs.length === 0) return <p className="muted">{t("common.none")}</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>{t("queue.col.job")}</th>
          <th>{t("queue.col.peer")}</th>
          <th>{t("queue.col.account")}</th>
          <th>{t("queue.col.state")}</th>
          <th>{t("queue.col.attempts")}</th>
          <th>{t("queue.col.reason")}</th>
          <th>{t("queue.col.retry")}</th>
          <th>{t("queue.col.message")}</th>
          <th>{t("queue.col.updated")}</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((j) => (
          <tr key={j.jobId} data-testid="job-row" data-job={j.jobId} data-state={j.state}>
            <td><code>{j.jobId.slice(-8)}</code></td>
            <td>{String(j.peer ?? "—")}</td>
            <td><AccountName id={j.accountId} /></td>
            <td><span className={`badge job-${j.state}`}>{t(`job.${j.state}` as MessageKey)}</span></td>
            <td>{`${j.attempts ?? 0} / ${j.maxAttempts ?? "—"}`}</td>
            <td>{[j.reason, j.lastError].filter(Boolean).join(": ") || "—"}</td>
            <td>{j.state === "scheduled" || j.state === "pending" ? <Time iso={j.notBefore} /> : "—"}</td>
            <td>{j.messageId ?? "—"}</td>
            <td><Time iso={j.updatedAt} /></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

