// Analytics: the dashboard's figures, message/user/group/conversion charts over a chosen range
// (plain SVG: no chart library to load, nothing inline for the CSP), report export (downloaded as
// a file) and report schedules. Refetched when the events analytics counts arrive (debounced).
import { useMemo, useState } from "react";
import { ErrorLine, Panel, useAction } from "../components";
import { downloadExport } from "../download";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

const COUNTED = [
  "message-sent", "message-received", "job-state-changed", "lead-captured", "lead-stage-changed",
  "account-status-changed", "alert-raised", "report-ready",
];
export const RANGES = { "24h": { hours: 24, bucket: "hour" }, "7d": { hours: 168, bucket: "day" }, "30d": { hours: 720, bucket: "day" } } as const;
type Range = keyof typeof RANGES;
const REPORTS = ["dashboard", "messages", "users", "groups", "conversions", "performance", "alerts"] as const;
const FORMATS = ["csv", "xlsx", "json"] as const;
const WINDOWS = ["last_24h", "last_7d", "last_30d", "previous_day", "previous_week", "previous_month"] as const;

/** The window of a range: from `hours` before now (minute-aligned) up to now — no `until`, so
 * every refetch on a pushed event counts up to the moment it asks. */
export function windowOf(range: Range, now = Date.now()) {
  const since = new Date(Math.floor(now / 60_000) * 60_000 - RANGES[range].hours * 3_600_000);
  return { since: since.toISOString(), bucket: RANGES[range].bucket, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone };
}

export function Analytics() {
  const { t } = useI18n();
  const [range, setRange] = useState<Range>("7d");
  const { can } = useSession();
  const win = useMemo(() => windowOf(range), [range]);
  const dash = useCommand("get-dashboard-stats", win, COUNTED);
  const messages = useCommand("get-message-stats", win, COUNTED);
  const users = useCommand("get-user-stats", win, COUNTED);
  const groups = useCommand("get-group-stats", win, COUNTED);
  const conversions = useCommand("get-conversion-stats", win, COUNTED);
  const d = dash.data;
  return (
    <div className="screen">
      <h1>{t("analytics.title")}</h1>
      <div className="filters">
        <label>
          {t("analytics.range")}
          <select name="range" value={range} onChange={(e) => setRange(e.target.value as Range)}>
            {(Object.keys(RANGES) as Range[]).map((r) => <option key={r} value={r}>{t(`analytics.range.${r}` as MessageKey)}</option>)}
          </select>
        </label>
      </div>
      <ErrorLine error={dash.error ?? messages.error ?? users.error ?? groups.error ?? conversions.error} />
      <Panel title={t("analytics.dashboard")} id="dashboard">
        <dl className="totals wrap">
          <Figure k="analytics.sent" v={d?.messages.sent} />
          <Figure k="analytics.received" v={d?.messages.received} />
          <Figure k="analytics.failed" v={d?.messages.failed} />
          <Figure k="analytics.replyRate" v={d?.messages.replyRate == null ? "—" : `${Math.round(d.messages.replyRate * 100)}%`} />
          <Figure k="analytics.newLeads" v={d?.leads.new} />
          <Figure k="analytics.converted" v={d?.leads.converted} />
          <Figure k="analytics.accounts" v={d ? `${d.accounts.connected} / ${d.accounts.total}` : undefined} />
          <Figure k="analytics.aiReplies" v={d?.ai.replies} />
          <Figure k="analytics.alerts" v={d?.unresolvedAlerts} />
        </dl>
      </Panel>
      <div className="columns">
        <Chart id="chart-messages" title={t("analytics.messages")} buckets={messages.data?.buckets ?? []} series={["sent", "received", "failed"]} />
        <Chart id="chart-users" title={t("analytics.users")} buckets={users.data?.buckets ?? []} series={["newUsers", "activeUsers", "repliedUsers"]} />
        <Chart id="chart-groups" title={t("analytics.groups")} buckets={groups.data?.buckets ?? []} series={["messages", "keywordMatches", "leads"]} />
        <Chart id="chart-conversions" title={t("analytics.conversions")} buckets={conversions.data?.buckets ?? []} series={["leads", "contacted", "replied", "converted"]} />
      </div>
      <div className="columns">
        <Export win={win} />
        {can("schedule-report") && <Schedules />}
      </div>
    </div>
  );
}

function Figure({ k, v }: { k: MessageKey; v: number | string | null | undefined }) {
  const { t } = useI18n();
  return <div data-testid={`fig-${k.split(".")[1]}`}><dt>{t(k)}</dt><dd>{v ?? 0}</dd></div>;
}

type Bucket = { start: string };
const W = 460, H = 160, PAD = 28;
const val = (b: Bucket, s: string) => Number((b as unknown as Record<string, unknown>)[s] ?? 0);

/** Each series as an SVG polyline's points over the buckets, scaled to the largest value. */
export function polylines(buckets: Bucket[], series: readonly string[]) {
  const max = Math.max(1, ...buckets.flatMap((b) => series.map((s) => val(b, s))));
  const x = (i: number) => PAD + (buckets.length <= 1 ? 0 : (i * (W - 2 * PAD)) / (buckets.length - 1));
  const y = (v: number) => H - PAD - (v * (H - 2 * PAD)) / max;
  return { max, lines: series.map((s) => buckets.map((b, i) => `${x(i).toFixed(1)},${y(val(b, s)).toFixed(1)}`).join(" ")) };
}

function Chart({ id, title, buckets, series }: { id: string; title: string; buckets: Bucket[]; series: readonly string[] }) {
  const { t, time } = useI18n();
  const { max, lines } = polylines(buckets, series);
  const totals = series.map((s) => buckets.reduce((n, b) => n + val(b, s), 0));
  return (
    <Panel title={title} id={id}>
      <svg className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title} data-buckets={buckets.length}>
        <line className="axis" x1={PAD} y1={H - PAD} x2={W - PAD} y2={H - PAD} />
        <line className="axis" x1={PAD} y1={PAD} x2={PAD} y2={H - PAD} />
        <text className="tick" x={PAD - 4} y={PAD + 4} textAnchor="end">{max}</text>
        <text className="tick" x={PAD - 4} y={H - PAD} textAnchor="end">0</text>
        {buckets.length > 0 && <text className="tick" x={PAD} y={H - 8}>{time(buckets[0].start)}</text>}
        {buckets.length > 1 && <text className="tick" x={W - PAD} y={H - 8} textAnchor="end">{time(buckets[buckets.length - 1].start)}</text>}
        {lines.map((points, i) => <polyline key={series[i]} className={`series s${i}`} points={points} />)}
      </svg>
      <ul className="legend">
        {series.map((s, i) => (
          <li key={s} className={`s${i}`} data-testid={`${id}-${s}`} data-total={totals[i]}>
            {t(`series.${s}` as MessageKey)}: {totals[i]}
          </li>
        ))}
      </ul>
    </Panel>
  );
}

function Export({ win }: { win: ReturnType<typeof windowOf> }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [report, setReport] = useState<(typeof REPORTS)[number]>("messages");
  const [format, setFormat] = useState<(typeof FORMATS)[number]>("csv");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  return (
    <Panel title={t("analytics.export")} id="export">
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const r = await api.call("export-report", { ...win, report, format });
            await downloadExport(api, r);
            setDone(t("analytics.exported", { filename: r.filename, rows: r.rows }));
          });
        }}
      >
        <ReportSelect value={report} onChange={setReport} />
        <label>
          {t("analytics.format")}
          <select name="format" value={format} onChange={(e) => setFormat(e.target.value as typeof format)}>
            {FORMATS.map((f) => <option key={f} value={f}>{f}</option>)}
          </select>
        </label>
        <button type="submit" disabled={action.busy}>{t("analytics.download")}</button>
      </form>
      {done && <p role="status" data-testid="exported">{done}</p>}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

function ReportSelect({ value, onChange }: { value: (typeof REPORTS)[number]; onChange: (r: (typeof REPORTS)[number]) => void }) {
  const { t } = useI18n();
  return (
    <label>
      {t("analytics.report")}
      <select name="report" value={value} onChange={(e) => onChange(e.target.value as (typeof REPORTS)[number])}>
        {REPORTS.map((r) => <option key={r} value={r}>{t(`report.${r}` as MessageKey)}</option>)}
      </select>
    </label>
  );
}

function Schedules() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const list = useCommand("schedule-report", { action: "list" }, ["report-ready"]);
  const action = useAction();
  const [name, setName] = useState("");
  const [report, setReport] = useState<(typeof REPORTS)[number]>("dashboard");
  const [window_, setWindow] = useState<(typeof WINDOWS)[number]>("previous_day");
  const [hours, setHours] = useState(24);
  const [webhook, setWebhook] = useState("");
  const writable = can("schedule-report");
  const run = (payload: object) => action.run(async () => (await api.call("schedule-report", payload), list.reload()));
  return (
    <Panel title={t("analytics.schedules")} id="schedules">
      <ErrorLine error={list.error ?? action.error} />
      {(list.data?.schedules ?? []).length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead><tr><th>{t("analytics.name")}</th><th>{t("analytics.report")}</th><th>{t("analytics.every")}</th><th>{t("analytics.next")}</th><th>{t("analytics.last")}</th><th /></tr></thead>
          <tbody>
            {list.data!.schedules!.map((s) => (
              <tr key={s.id} data-testid="schedule" data-name={s.name}>
                <td>{s.name}</td>
                <td>{`${t(`report.${s.report}` as MessageKey)} (${s.format})`}</td>
                <td>{s.cron ?? (s.intervalSeconds ? t("analytics.hours", { hours: s.intervalSeconds / 3600 }) : "—")}</td>
                <td>{time(s.nextRunAt)}</td>
                <td>{s.lastError ? <span className="error">{s.lastError}</span> : time(s.lastRunAt)}</td>
                <td>
                  {writable && (
                    <>
                      <button type="button" className="secondary" disabled={action.busy} onClick={() => void run({ action: "run", scheduleId: s.id })}>{t("analytics.runNow")}</button>{" "}
                      <button type="button" className="danger" disabled={action.busy} onClick={() => void run({ action: "delete", scheduleId: s.id })}>{t("common.delete")}</button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {writable && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void run({
              action: "save", name: name.trim(), report, window: window_, format: "csv", intervalSeconds: hours * 3600,
              recipients: webhook.trim() ? [{ kind: "webhook", target: webhook.trim() }] : [],
            }).then(() => setName(""));
          }}
        >
          <label>{t("analytics.name")}<input name="schedule-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
          <ReportSelect value={report} onChange={setReport} />
          <label>
            {t("analytics.window")}
            <select name="window" value={window_} onChange={(e) => setWindow(e.target.value as typeof window_)}>
              {WINDOWS.map((w) => <option key={w} value={w}>{t(`window.${w}` as MessageKey)}</option>)}
            </select>
          </label>
          <label>{t("analytics.everyHours")}<input type="number" name="hours" min={1} value={hours} onChange={(e) => setHours(Number(e.target.value))} /></label>
          <label>{t("analytics.webhook")}<input type="url" name="webhook" value={webhook} onChange={(e) => setWebhook(e.target.value)} /></label>
          <button type="submit" disabled={action.busy || !name.trim()}>{t("analytics.schedule")}</button>
        </form>
      )}
    </Panel>
  );
}
