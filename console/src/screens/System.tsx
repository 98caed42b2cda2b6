// System: services' health, alerts (dismiss), a live log tail with filters, settings by section,
// backups/restores with progress, migrations, and the API keys (admins).
//
// Health and logs have no event on the WebSocket (services ship logs on a telemetry subject, not an
// event one), so those two panels ask again every few seconds; everything else refetches on events.
import { useEffect, useState } from "react";
import type { ApiKeyView } from "../api/client";
import type { Role } from "../api/types.gen";
import { ErrorLine, Panel, useAction } from "../components";
import { downloadExport } from "../download";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession, type Query } from "../session";
import { Settings } from "./SettingsForm";

const SERVICES = ["gateway", "tg-session", "campaign", "ai", "analytics", "tailchat"] as const;
const LEVELS = ["debug", "info", "warning", "error", "critical"] as const;

/** Calls `reload` every `ms` while mounted (for what no event announces). */
function usePoll(q: Query<unknown>, ms: number) {
  useEffect(() => {
    const id = setInterval(q.reload, ms);
    return () => clearInterval(id);
  }, [q.reload, ms]);
}

export function System() {
  const { t } = useI18n();
  const { role } = useSession();
  return (
    <div className="screen">
      <h1>{t("system.title")}</h1>
      <div className="columns">
        <Health />
        <Alerts />
      </div>
      <Logs />
      <div className="columns">
        <Backups />
        <Migrations />
      </div>
      <Settings />
      {role === "admin" && <Keys />}
    </div>
  );
}

function Health() {
  const { t } = useI18n();
  const info = useCommand("get-system-info", {}, []);
  usePoll(info, 5000);
  const services = (info.data?.services ?? {}) as Record<string, { status?: string; replicas?: { replicaId?: string; health?: string; version?: string }[] }>;
  return (
    <Panel title={t("system.health")} id="health">
      <ErrorLine error={info.error} />
      <p role="status" data-testid="healthy" data-healthy={String(!!info.data?.healthy)} className={info.data?.healthy ? "ok" : "error"}>
        {info.data ? (info.data.healthy ? t("system.healthy") : t("system.unhealthy")) : t("common.loading")}
      </p>
      <table>
        <thead><tr><th>{t("system.service")}</th><th>{t("system.status")}</th><th>{t("system.replicas")}</th></tr></thead>
        <tbody>
          {Object.entries(services).map(([name, s]) => (
            <tr key={name} data-testid="service" data-service={name} data-status={s.status}>
              <td>{name}</td>
              <td><span className={`badge svc-${s.status}`}>{s.status ?? "—"}</span></td>
              <td>{(s.replicas ?? []).map((r) => `${r.replicaId ?? "?"}: ${r.health ?? "?"}`).join(", ") || "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

function Alerts() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const alerts = useCommand("get-alerts", { unresolvedOnly: true, limit: 50 }, ["alert-raised", "alert-dismissed", "alerts-cleared"]);
  const action = useAction();
  const items = alerts.data?.items ?? [];
  return (
    <Panel title={t("system.alerts")} id="alerts">
      <ErrorLine error={alerts.error ?? action.error} />
      {items.length === 0 ? (
        <p className="muted">{t("system.noAlerts")}</p>
      ) : (
        <table>
          <tbody>
            {items.map((a) => (
              <tr key={a.id} data-testid="alert" data-code={a.code}>
                <td><span className={`badge level-${a.level}`}>{t(`level.${a.level}` as MessageKey)}</span></td>
                <td>{a.title}<br /><span className="muted">{a.message}</span></td>
                <td>{a.service ?? "—"}</td>
                <td>{`×${a.count}`} {time(a.lastSeenAt)}</td>
                <td>
                  {can("dismiss-alert") && (
                    <button type="button" className="secondary" disabled={action.busy} onClick={() => void action.run(() => api.call("dismiss-alert", { alertId: a.id }))}>
                      {t("system.dismiss")}
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

function Logs() {
  const { t, time } = useI18n();
  const { api } = useSession();
  const exporting = useAction();
  const [exported, setExported] = useState<string | null>(null);
  const [minLevel, setMinLevel] = useState<(typeof LEVELS)[number]>("info");
  const [service, setService] = useState("");
  const [text, setText] = useState("");
  const [paused, setPaused] = useState(false);
  const filters = { minLevel, service: service ? [service as (typeof SERVICES)[number]] : null, text: text.trim() || null };
  const logs = useCommand("get-logs", { order: "desc", limit: 100, ...filters }, []);
  const exportLogs = () =>
    exporting.run(async () => {
      const r = await api.call("export-logs", { ...filters, format: "csv" });
      await downloadExport(api, r);
      setExported(t("analytics.exported", { filename: r.filename, rows: r.rows }));
    });
  usePoll(logs, paused ? 3_600_000 : 2000);
  return (
    <Panel title={t("system.logs")} id="logs">
      <div className="filters">
        <label>
          {t("system.minLevel")}
          <select name="log-level" value={minLevel} onChange={(e) => setMinLevel(e.target.value as typeof minLevel)}>
            {LEVELS.map((l) => <option key={l} value={l}>{t(`level.${l}` as MessageKey)}</option>)}
          </select>
        </label>
        <label>
          {t("system.service")}
          <select name="log-service" value={service} onChange={(e) => setService(e.target.value)}>
            <option value="">{t("common.all")}</option>
            {SERVICES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>{t("common.search")}<input type="search" name="log-text" value={text} onChange={(e) => setText(e.target.value)} /></label>
        <label className="inline"><input type="checkbox" checked={paused} onChange={(e) => setPaused(e.target.checked)} />{t("system.pauseTail")}</label>
        <button type="button" className="secondary" disabled={exporting.busy} onClick={() => void exportLogs()}>{t("system.exportLogs")}</button>
      </div>
      {exported && <p role="status" data-testid="logs-exported">{exported}</p>}
      <ErrorLine error={logs.error ?? exporting.error} />
      <div className="logtail" data-testid="log-tail" tabIndex={0}>
        {(logs.data?.items ?? []).map((l) => (
          <div key={l.id} className={`log level-${l.level}`} data-testid="log-line" data-service={l.service} data-level={l.level}>
            <time>{time(l.timestamp)}</time> <b>{l.service}</b> <span className="badge">{l.level}</span> {l.message}
          </div>
        ))}
      </div>
    </Panel>
  );
}

function Backups() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const status = useCommand("get-backup-status", { limit: 20 }, ["backup-progress"]);
  const action = useAction();
  const [label, setLabel] = useState("");
  const items = status.data?.items ?? [];
  const running = items.some((b) => b.state === "running");
  return (
    <Panel title={t("system.backups")} id="backups">
      {can("backup-database") && (
        <form className="row" onSubmit={(e) => (e.preventDefault(), void action.run(() => api.call("backup-database", { label: label.trim() || null, wait: false })))}>
          <label>{t("system.backupLabel")}<input name="backup-label" value={label} onChange={(e) => setLabel(e.target.value)} /></label>
          <button type="submit" disabled={action.busy || running}>{t("system.backupNow")}</button>
        </form>
      )}
      <ErrorLine error={status.error ?? action.error} />
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <tbody>
            {items.map((b) => (
              <tr key={`${b.kind}-${b.backupId}-${b.startedAt}`} data-testid="backup" data-kind={b.kind} data-state={b.state} data-label={b.label ?? ""}>
                <td>{t(`system.kind.${b.kind}` as MessageKey)}</td>
                <td>{b.label ?? b.backupId.slice(-8)}</td>
                <td><span className={`badge backup-${b.state}`}>{t(`system.state.${b.state}` as MessageKey)}</span>{b.error ? ` ${b.error}` : ""}</td>
                <td><progress max={1} value={b.progress ?? 0} /> {`${Math.round((b.progress ?? 0) * 100)}%`}</td>
                <td>{time(b.finishedAt ?? b.startedAt)}</td>
                <td>
                  {can("restore-database") && b.kind === "backup" && b.state === "completed" && (
                    <button
                      type="button"
                      className="danger"
                      disabled={action.busy || running}
                      onClick={() => window.confirm(t("system.restoreConfirm", { label: b.label ?? b.backupId })) && void action.run(() => api.call("restore-database", { backupId: b.backupId, wait: false, confirm: true }))}
                    >
                      {t("system.restore")}
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

function Migrations() {
  const { t } = useI18n();
  const { api, can } = useSession();
  const status = useCommand("get-migration-status", {}, []);
  const action = useAction();
  const services = (status.data?.services ?? {}) as Record<string, { applied?: unknown[]; pending?: unknown[] }>;
  return (
    <Panel title={t("system.migrations")} id="migrations">
      <ErrorLine error={status.error ?? action.error} />
      <p role="status" data-testid="migrations-state" data-up-to-date={String(!!status.data?.upToDate)}>
        {status.data ? (status.data.upToDate ? t("system.upToDate") : t("system.pending")) : t("common.loading")}
      </p>
      <table>
        <tbody>
          {Object.entries(services).map(([name, s]) => (
            <tr key={name}><td>{name}</td><td>{t("system.migrationCounts", { applied: s.applied?.length ?? 0, pending: s.pending?.length ?? 0 })}</td></tr>
          ))}
        </tbody>
      </table>
      {can("run-migrations") && (
        <button type="button" disabled={action.busy} onClick={() => void action.run(async () => (await api.call("run-migrations", {}), status.reload()))}>
          {t("system.runMigrations")}
        </button>
      )}
    </Panel>
  );
}

function Keys() {
  const { t, time } = useI18n();
  const { api } = useSession();
  const [keys, setKeys] = useState<ApiKeyView[]>([]);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [created, setCreated] = useState<string | null>(null);
  const action = useAction();
  const load = () => action.run(async () => setKeys(await api.keys()));
  useEffect(() => void load(), []); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <Panel title={t("system.keys")} id="keys">
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const k = await api.createKey(name.trim(), role);
            setCreated(k.key);
            setName("");
            setKeys(await api.keys());
          });
        }}
      >
        <label>{t("system.keyName")}<input name="key-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <label>
          {t("fleet.col.role")}
          <select name="key-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {(["viewer", "operator", "admin"] as Role[]).map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </label>
        <button type="submit" disabled={action.busy || !name.trim()}>{t("system.createKey")}</button>
      </form>
      {created && (
        <p role="status" data-testid="new-key">
          {t("system.keyOnce")} <code>{created}</code>
        </p>
      )}
      <ErrorLine error={action.error} />
      <table>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id} data-testid="api-key" data-name={k.name} data-revoked={String(k.revoked)}>
              <td><code>{k.id}</code></td>
              <td>{k.name}</td>
              <td>{k.role}</td>
              <td>{time(k.createdAt)}</td>
              <td>
                {k.revoked ? (
                  t("system.revoked")
                ) : (
                  <button
                    type="button"
                    className="danger"
                    disabled={action.busy}
                    onClick={() => window.confirm(t("system.revokeConfirm", { name: k.name })) && void action.run(async () => (await api.revokeKey(k.id), setKeys(await api.keys())))}
                  >
                    {t("system.revoke")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}
