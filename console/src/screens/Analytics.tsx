// Analytics: the dashboard's figures, message/user/group/conversion charts over a chosen range
// (plain SVG: no chart library to load, nothing inline for the CSP), report export (downloaded as
// a file) and report schedules. Refetched when the events analytics counts arrive (debounced).
import { useMemo, useState } from "react";
import type { Response } from "../api/client";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
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

// --- report schedules (schedule-report) --------------------------------------------------------

type Report = (typeof REPORTS)[number];
type Win = (typeof WINDOWS)[number];
type Bucket_ = "hour" | "day";
type Filter = "accountId" | "campaignId" | "chatId";
type Kind = "webhook" | "telegram" | "tailchat";
export type Schedule = NonNullable<Response<"schedule-report">["schedules"]>[number];
const KINDS: readonly Kind[] = ["webhook", "telegram", "tailchat"];
const FILTER_ORDER: readonly Filter[] = ["accountId", "campaignId", "chatId"];
/** The scope filters each report takes (services/analytics reports/builders.py FILTERS): the service
 * refuses any other, so the form offers only these. */
export const REPORT_FILTERS: Record<Report, readonly Filter[]> = {
  dashboard: [], messages: FILTER_ORDER, users: FILTER_ORDER, groups: ["accountId", "chatId"],
  conversions: FILTER_ORDER, performance: [], alerts: ["accountId"],
};
/** The bucket the service picks for a window when none is given (reports/timing.py DEFAULT_BUCKET). */
const DEFAULT_BUCKET: Record<Win, Bucket_> = {
  last_24h: "hour", previous_day: "hour", last_7d: "day", previous_week: "day", last_30d: "day", previous_month: "day",
};
const UNITS = { minutes: 60, hours: 3600, days: 86400 } as const;
type Unit = keyof typeof UNITS;
const MIN_INTERVAL = 300, MAX_INTERVAL = 31 * 86400, MAX_RECIPIENTS = 20;
const ZONE = /^(UTC|[A-Za-z_]+(\/[A-Za-z0-9_+-]+){1,2})$/;
const TAILCHAT_ID = /^[A-Za-z0-9_-]+$/;

export interface RecipientDraft { kind: Kind; target: string; accountId: string }
export interface ScheduleDraft {
  name: string; report: Report; format: (typeof FORMATS)[number]; window: Win; bucket: Bucket_;
  timing: "interval" | "cron"; every: string; unit: Unit; cron: string; timezone: string;
  filters: Record<Filter, string>; recipients: RecipientDraft[]; enabled: boolean;
}
type Translate = (k: MessageKey, v?: Record<string, string | number>) => string;
export type ScheduleErrors = Partial<Record<string, string>>;

/** The browser's timezone when the contract's pattern takes it, else UTC. */
export function defaultZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && ZONE.test(zone) ? zone : "UTC";
}

export function newDraft(zone = defaultZone()): ScheduleDraft {
  return {
    name: "", report: "dashboard", format: "csv", window: "previous_day", bucket: "hour",
    timing: "interval", every: "24", unit: "hours", cron: "", timezone: zone,
    filters: { accountId: "", campaignId: "", chatId: "" }, recipients: [], enabled: true,
  };
}

/** A saved schedule as the form shows it. */
export function scheduleDraft(s: Schedule): ScheduleDraft {
  const secs = s.intervalSeconds ?? 0;
  const unit: Unit = secs % 86400 === 0 ? "days" : secs % 3600 === 0 ? "hours" : "minutes";
  const f = (s.filters ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (v == null ? "" : String(v));
  return {
    name: s.name, report: s.report, format: s.format, window: s.window, bucket: s.bucket,
    timing: s.cron ? "cron" : "interval", every: secs ? String(secs / UNITS[unit]) : "24", unit: secs ? unit : "hours",
    cron: s.cron ?? "", timezone: s.timezone ?? "UTC",
    filters: { accountId: str(f.accountId), campaignId: str(f.campaignId), chatId: str(f.chatId) },
    recipients: (s.recipients ?? []).map((r) => ({ kind: r.kind, target: r.target, accountId: r.accountId ?? "" })),
    enabled: s.enabled ?? true,
  };
}

const CRON_FIELDS: readonly [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
const CRON_NAMES: Record<number, readonly string[]> = {
  3: ["", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};
const CRON_MACROS = ["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"];

/** A cron expression as the contract takes it (validate_cron: 5 fields of numbers, `*`, ranges,
 * steps, lists and month/day names, or a macro), normalised; or the reason it is not one. */
export function checkCron(expr: string, t: Translate): { cron: string } | { error: string } {
  const text = expr.trim().split(/\s+/).join(" ");
  if (CRON_MACROS.includes(text.toLowerCase())) return { cron: text.toLowerCase() };
  const fields = text ? text.split(" ") : [];
  if (fields.length !== 5) return { error: t("analytics.err.cronFields") };
  for (const [index, field] of fields.entries()) {
    const [lo, hi] = CRON_FIELDS[index];
    const names = CRON_NAMES[index] ?? [];
    const bad = { error: t("analytics.err.cronField", { position: index + 1, value: field, lo, hi }) };
    for (const part of field.split(",")) {
      const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
      if (!m || (m[2] !== undefined && Number(m[2]) < 1)) return bad;
      if (m[1] === "*") continue;
      for (const bound of m[1].split("-")) {
        const value = /^\d+$/.test(bound) ? Number(bound) : names.indexOf(bound.toLowerCase());
        if (value < lo || value > hi) return bad;
      }
    }
  }
  return { cron: text };
}

function isHttpUrl(value: string) {
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return false;
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && !!u.hostname;
  } catch {
    return false;
  }
}

/** A Telegram peer as PeerRef takes it: a non-zero numeric id, @username, a t.me link to a username or a +phone. */
function isPeer(value: string) {
  const text = value.trim();
  const username = /^@?[A-Za-z][A-Za-z0-9_]{3,31}$/;
  if (/^-?[0-9]{1,20}$/.test(text)) return Number(text) !== 0;
  if (text.startsWith("+")) return /^\+[0-9\s()-]{5,24}$/.test(text);
  const link = /^(?:https?:\/\/)?(?:t\.me|telegram\.me|telegram\.dog)\/(.+)$/i.exec(text);
  if (link) return username.test(link[1].replace(/\/+$/, "").split("/")[0].split("?")[0]);
  return username.test(text);
}

/** `<appId>/<converseId>` or `<appId>/<groupId>/<panelId>`, each part an id Tailchat takes. */
function isTailchatTarget(value: string) {
  const parts = value.split("/");
  return (parts.length === 2 || parts.length === 3) && parts.every((p) => TAILCHAT_ID.test(p)) && parts[0].length <= 64 && parts.slice(1).every((p) => p.length <= 128);
}

/** Why a recipient could not be saved (ReportRecipientInput and the service's save-time checks), or null. */
export function recipientError(r: RecipientDraft, t: Translate): string | null {
  const target = r.target.trim();
  if (!target) return t("analytics.err.target");
  if (target.length > 512) return t("analytics.err.targetLong");
  if (r.kind === "webhook" && !isHttpUrl(target)) return t("analytics.err.webhook");
  if (r.kind === "telegram" && !isPeer(target)) return t("analytics.err.peer");
  if (r.kind === "telegram" && !r.accountId) return t("analytics.err.sender");
  if (r.kind === "tailchat" && !isTailchatTarget(target)) return t("analytics.err.tailchat");
  return null;
}

type Timing = { cron: string } | { intervalSeconds: number };
type Filters = Partial<{ accountId: string; campaignId: string; chatId: number }>;
type Recipient = { kind: Kind; target: string; accountId?: string };

function recipientsOf(rs: RecipientDraft[]): Recipient[] {
  return rs.map((r) => (r.kind === "telegram" ? { kind: r.kind, target: r.target.trim(), accountId: r.accountId } : { kind: r.kind, target: r.target.trim() }));
}

/** The filters the draft's report takes, as the contract's ScopeFilters (only those given). */
function filtersOf(report: Report, values: Record<Filter, string>): Filters {
  const out: Filters = {};
  for (const f of REPORT_FILTERS[report]) {
    const v = values[f].trim();
    if (!v) continue;
    if (f === "chatId") out.chatId = Number(v);
    else out[f] = v;
  }
  return out;
}

/** What saving the draft sends: everything for a new schedule; for `base`, its id and only what
 * changed (null when nothing did). `errors` (by field, `recipient-<i>` for a recipient) are what the
 * contract would refuse: with any, nothing is sent. */
export function schedulePlan(base: Schedule | null, d: ScheduleDraft, t: Translate): { request: Record<string, unknown> | null; errors: ScheduleErrors } {
  const errors: ScheduleErrors = {};
  const name = d.name.trim();
  if (!name) errors.name = t("analytics.err.name");
  else if (name.length > 100) errors.name = t("analytics.err.nameLong");
  let timing: Timing | null = null;
  if (d.timing === "cron") {
    const c = checkCron(d.cron, t);
    if ("error" in c) errors.cron = c.error;
    else timing = { cron: c.cron };
  } else {
    const seconds = Number(d.every) * UNITS[d.unit];
    if (!d.every.trim() || !Number.isInteger(seconds) || seconds < MIN_INTERVAL || seconds > MAX_INTERVAL) errors.every = t("analytics.err.interval");
    else timing = { intervalSeconds: seconds };
  }
  const timezone = d.timezone.trim();
  if (timezone.length > 64 || !ZONE.test(timezone)) errors.timezone = t("analytics.err.timezone");
  const takes = REPORT_FILTERS[d.report];
  const chat = d.filters.chatId.trim();
  if (takes.includes("chatId") && chat && (!/^-?\d+$/.test(chat) || !Number.isSafeInteger(Number(chat)))) errors.chatId = t("analytics.err.chatId");
  if (takes.includes("campaignId") && d.filters.campaignId.trim().length > 128) errors.campaignId = t("analytics.err.campaignId");
  if (d.recipients.length > MAX_RECIPIENTS) errors.recipients = t("analytics.err.recipients", { max: MAX_RECIPIENTS });
  d.recipients.forEach((r, i) => {
    const e = recipientError(r, t);
    if (e) errors[`recipient-${i}`] = e;
  });
  if (Object.keys(errors).length || !timing) return { request: null, errors };
  const filters = filtersOf(d.report, d.filters);
  const recipients = recipientsOf(d.recipients);
  if (!base) {
    return {
      request: { action: "save", name, report: d.report, format: d.format, ...timing, timezone, window: d.window, bucket: d.bucket, filters, recipients, enabled: d.enabled },
      errors,
    };
  }
  const was = scheduleDraft(base);
  const change: Record<string, unknown> = {};
  if (name !== base.name) change.name = name;
  if (d.report !== was.report) change.report = d.report;
  if (d.format !== was.format) change.format = d.format;
  const before: Timing = base.cron ? { cron: base.cron } : { intervalSeconds: base.intervalSeconds ?? 0 };
  if (JSON.stringify(timing) !== JSON.stringify(before)) Object.assign(change, timing);
  if (timezone !== was.timezone) change.timezone = timezone;
  if (d.window !== was.window) change.window = d.window;
  if (d.bucket !== was.bucket) change.bucket = d.bucket;
  // Filters are compared with what was saved (not trimmed to the new report's): a report that no
  // longer takes a saved filter sends the filters without it, or the service would refuse the save.
  const savedFilters: Filters = {};
  for (const f of FILTER_ORDER) if (was.filters[f]) Object.assign(savedFilters, { [f]: f === "chatId" ? Number(was.filters[f]) : was.filters[f] });
  if (JSON.stringify(filters) !== JSON.stringify(savedFilters)) change.filters = filters;
  if (JSON.stringify(recipients) !== JSON.stringify(recipientsOf(was.recipients))) change.recipients = recipients;
  if (d.enabled !== was.enabled) change.enabled = d.enabled;
  if (!Object.keys(change).length) return { request: null, errors };
  return { request: { action: "save", scheduleId: base.id, ...change }, errors };
}

/** An interval as the operator reads it: whole hours as hours, else minutes. */
function every(s: Schedule, t: Translate) {
  if (s.cron) return s.cron;
  if (!s.intervalSeconds) return "—";
  return s.intervalSeconds % 3600 === 0 ? t("analytics.hours", { hours: s.intervalSeconds / 3600 }) : t("analytics.minutes", { minutes: Math.round(s.intervalSeconds / 60) });
}

function Schedules() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const list = useCommand("schedule-report", { action: "list" }, ["report-ready"]);
  const accounts = useCommand("get-accounts", { limit: 200 }, ["account-added", "account-removed"]);
  const action = useAction();
  const [editing, setEditing] = useState<Schedule | null>(null);
  const [draft, setDraft] = useState<ScheduleDraft>(() => newDraft());
  const [errors, setErrors] = useState<ScheduleErrors>({});
  const [note, setNote] = useState("");
  const writable = can("schedule-report");
  const set = <K extends keyof ScheduleDraft>(k: K, v: ScheduleDraft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const setRecipient = (i: number, r: Partial<RecipientDraft>) => set("recipients", draft.recipients.map((x, j) => (j === i ? { ...x, ...r } : x)));
  const reset = () => (setEditing(null), setDraft(newDraft()), setErrors({}));
  const run = (payload: Record<string, unknown>, then?: (r: Response<"schedule-report">) => void) =>
    action.run(async () => {
      setNote("");
      const r = await api.call("schedule-report", payload);
      then?.(r);
      await list.reload();
      return r;
    });
  const edit = (s: Schedule) => (setEditing(s), setDraft(scheduleDraft(s)), setErrors({}), setNote(""));
  const save = () => {
    setNote("");
    const plan = schedulePlan(editing, draft, t);
    setErrors(plan.errors);
    if (Object.keys(plan.errors).length) return;
    if (!plan.request) return setNote(t("analytics.nothingChanged"));
    void run(plan.request, () => reset());
  };
  const accountItems = accounts.data?.items ?? [];
  const accountOptions = (current: string) => (
    <>
      {accountItems.map((a) => <option key={a.id} value={a.id}>{a.label ? `${a.phone} (${a.label})` : a.phone}</option>)}
      {current && !accountItems.some((a) => a.id === current) && <option value={current}>{current}</option>}
    </>
  );
  const error = (k: string) => (errors[k] ? <p className="error field-error" id={`schedule-${k}-error`} data-testid="field-error" data-field={k}>{errors[k]}</p> : null);
  const invalid = (k: string) => (errors[k] ? { "aria-invalid": true as const, "aria-describedby": `schedule-${k}-error` } : {});
  const takes = REPORT_FILTERS[draft.report];
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
              <tr key={s.id} data-testid="schedule" data-name={s.name} data-enabled={String(s.enabled ?? true)}>
                <td>
                  {s.name}
                  {s.enabled === false && <> <span className="muted">{t("analytics.disabled")}</span></>}
                  {(s.recipients ?? []).length > 0 && <div className="muted">{t("analytics.sendsTo", { count: s.recipients!.length })}</div>}
                </td>
                <td>{`${t(`report.${s.report}` as MessageKey)} (${s.format})`}</td>
                <td>{every(s, t)}</td>
                <td>{time(s.nextRunAt)}</td>
                <td>{s.lastError ? <span className="error">{s.lastError}</span> : time(s.lastRunAt)}</td>
                <td>
                  {writable && (
                    <>
                      <button type="button" className="secondary" disabled={action.busy} onClick={() => edit(s)}>{t("analytics.edit")}</button>{" "}
                      <button type="button" className="secondary" disabled={action.busy} onClick={() => void run({ action: "run", scheduleId: s.id }, (r) => setNote(t("analytics.started", { name: s.name, reportId: r.reportId ?? "" })))}>{t("analytics.runNow")}</button>{" "}
                      <button type="button" className="secondary" disabled={action.busy} onClick={() => void run({ action: "save", scheduleId: s.id, enabled: s.enabled === false })}>
                        {s.enabled === false ? t("analytics.enable") : t("analytics.disable")}
                      </button>{" "}
                      <ConfirmButton
                        label={t("common.delete")}
                        question={t("analytics.deleteConfirm", { name: s.name })}
                        disabled={action.busy}
                        onConfirm={() => void run({ action: "delete", scheduleId: s.id }, () => editing?.id === s.id && reset())}
                      />
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {note && <p role="status" data-testid="schedule-note">{note}</p>}
      {writable && (
        <form noValidate data-testid="schedule-form" onSubmit={(e) => (e.preventDefault(), save())}>
          <h3>{editing ? t("analytics.editing", { name: editing.name }) : t("analytics.newSchedule")}</h3>
          <div className="form-grid">
            <div className="field">
              <label>{t("analytics.name")}<input name="schedule-name" value={draft.name} onChange={(e) => set("name", e.target.value)} maxLength={100} required {...invalid("name")} /></label>
              {error("name")}
            </div>
            <div className="field"><ReportSelect value={draft.report} onChange={(r) => set("report", r)} /></div>
            <div className="field">
              <label>
                {t("analytics.format")}
                <select name="schedule-format" value={draft.format} onChange={(e) => set("format", e.target.value as ScheduleDraft["format"])}>
                  {FORMATS.map((f) => <option key={f} value={f}>{f}</option>)}
                </select>
              </label>
            </div>
            <div className="field">
              <label>
                {t("analytics.window")}
                <select name="window" value={draft.window} onChange={(e) => { const w = e.target.value as Win; setDraft((d) => ({ ...d, window: w, bucket: DEFAULT_BUCKET[w] })); }}>
                  {WINDOWS.map((w) => <option key={w} value={w}>{t(`window.${w}` as MessageKey)}</option>)}
                </select>
              </label>
            </div>
            <div className="field">
              <label>
                {t("analytics.bucket")}
                <select name="bucket" value={draft.bucket} onChange={(e) => set("bucket", e.target.value as Bucket_)}>
                  <option value="hour">{t("analytics.bucket.hour")}</option>
                  <option value="day">{t("analytics.bucket.day")}</option>
                </select>
              </label>
            </div>
            <div className="field">
              <label>
                {t("analytics.timing")}
                <select name="timing" value={draft.timing} onChange={(e) => set("timing", e.target.value as ScheduleDraft["timing"])}>
                  <option value="interval">{t("analytics.timing.interval")}</option>
                  <option value="cron">{t("analytics.timing.cron")}</option>
                </select>
              </label>
            </div>
            {draft.timing === "interval" ? (
              <div className="field">
                <div className="row">
                  <label>{t("analytics.every")}<input type="number" name="every" min={1} value={draft.every} onChange={(e) => set("every", e.target.value)} {...invalid("every")} /></label>
                  <label>
                    {t("analytics.unit")}
                    <select name="unit" value={draft.unit} onChange={(e) => set("unit", e.target.value as Unit)}>
                      {(Object.keys(UNITS) as Unit[]).map((u) => <option key={u} value={u}>{t(`analytics.unit.${u}` as MessageKey)}</option>)}
                    </select>
                  </label>
                </div>
                {error("every")}
              </div>
            ) : (
              <div className="field">
                <label>{t("analytics.cron")}<input name="cron" value={draft.cron} placeholder="0 8 * * mon-fri" onChange={(e) => set("cron", e.target.value)} {...invalid("cron")} /></label>
                {error("cron")}
              </div>
            )}
            <div className="field">
              <label>{t("analytics.timezone")}<input name="timezone" value={draft.timezone} onChange={(e) => set("timezone", e.target.value)} {...invalid("timezone")} /></label>
              {error("timezone")}
            </div>
            {takes.includes("accountId") && (
              <div className="field">
                <label>
                  {t("analytics.filter.account")}
                  <select name="filter-accountId" value={draft.filters.accountId} onChange={(e) => set("filters", { ...draft.filters, accountId: e.target.value })}>
                    <option value="">{t("analytics.filter.any")}</option>
                    {accountOptions(draft.filters.accountId)}
                  </select>
                </label>
              </div>
            )}
            {takes.includes("campaignId") && (
              <div className="field">
                <label>{t("analytics.filter.campaign")}<input name="filter-campaignId" value={draft.filters.campaignId} onChange={(e) => set("filters", { ...draft.filters, campaignId: e.target.value })} {...invalid("campaignId")} /></label>
                {error("campaignId")}
              </div>
            )}
            {takes.includes("chatId") && (
              <div className="field">
                <label>{t("analytics.filter.chat")}<input name="filter-chatId" inputMode="numeric" value={draft.filters.chatId} onChange={(e) => set("filters", { ...draft.filters, chatId: e.target.value })} {...invalid("chatId")} /></label>
                {error("chatId")}
              </div>
            )}
          </div>
          {takes.length === 0 && <p className="muted" data-testid="no-filters">{t("analytics.filter.none")}</p>}
          <fieldset data-testid="recipients">
            <legend>{t("analytics.recipients")}</legend>
            {draft.recipients.length === 0 && <p className="muted">{t("analytics.recipients.none")}</p>}
            {draft.recipients.map((r, i) => (
              <div key={i} className="field" data-testid="recipient">
                <div className="row">
                  <label>
                    {t("analytics.recipient.kind")}
                    <select name={`recipient-${i}-kind`} value={r.kind} onChange={(e) => setRecipient(i, { kind: e.target.value as Kind })}>
                      {KINDS.map((k) => <option key={k} value={k}>{t(`analytics.kind.${k}` as MessageKey)}</option>)}
                    </select>
                  </label>
                  <label>
                    {t(`analytics.target.${r.kind}` as MessageKey)}
                    <input name={`recipient-${i}-target`} value={r.target} placeholder={t(`analytics.placeholder.${r.kind}` as MessageKey)} onChange={(e) => setRecipient(i, { target: e.target.value })} {...invalid(`recipient-${i}`)} />
                  </label>
                  {r.kind === "telegram" && (
                    <label>
                      {t("analytics.recipient.sender")}
                      <select name={`recipient-${i}-account`} value={r.accountId} onChange={(e) => setRecipient(i, { accountId: e.target.value })}>
                        <option value="">{t("analytics.recipient.pick")}</option>
                        {accountOptions(r.accountId)}
                      </select>
                    </label>
                  )}
                  <button type="button" className="secondary" onClick={() => set("recipients", draft.recipients.filter((_, j) => j !== i))}>{t("analytics.recipient.remove")}</button>
                </div>
                {error(`recipient-${i}`)}
              </div>
            ))}
            <button type="button" className="secondary" disabled={draft.recipients.length >= MAX_RECIPIENTS} onClick={() => set("recipients", [...draft.recipients, { kind: "webhook", target: "", accountId: "" }])}>
              {t("analytics.recipient.add")}
            </button>
            {error("recipients")}
          </fieldset>
          <label><input type="checkbox" name="enabled" checked={draft.enabled} onChange={(e) => set("enabled", e.target.checked)} /> {t("analytics.enabled")}</label>
          <div className="row">
            <button type="submit" disabled={action.busy || !draft.name.trim()}>{editing ? t("analytics.saveChanges") : t("analytics.schedule")}</button>
            {editing && <button type="button" className="secondary" onClick={() => (reset(), setNote(""))}>{t("common.cancel")}</button>}
          </div>
        </form>
      )}
    </Panel>
  );
}
