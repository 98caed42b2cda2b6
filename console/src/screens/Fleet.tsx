// Fleet: every account with its state, health, proxy and exit IP, role and daily sends; filters and
// search; bulk actions on the selected accounts; adding one by phone (code, then 2FA) and by QR code,
// inline; batch import of session strings, API credentials with the developer-site scrape, proxies,
// one account's settings (group, tags, persona...) edited in place (FleetTools.tsx).
import { useEffect, useRef, useState } from "react";
import QRCode from "qrcode";
import type { Response } from "../api/client";
import type { GetAccounts } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n, type Translate } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useLive, useSession } from "../session";
import {
  AccountEditor, ApiCredentials, BulkOutcome, CredentialScrape, GroupList, ImportSessions, Proxies, tagList, useAccountChoices,
  type AccountChoices, type Bulk,
} from "./FleetTools";

type Account = GetAccounts.Response_.AccountView;
type AccountState = GetAccounts.Request_.AccountState;
type AccountRole = GetAccounts.Request_.AccountRole;

export const STATES: AccountState[] = [
  "new", "code_sent", "password_needed", "active", "flood_wait", "peer_flood",
  "frozen", "unauthorized", "banned", "proxy_error", "disconnected",
];
export const ROLES: AccountRole[] = ["unassigned", "listener", "sender", "explorer", "ai", "backup"];
export const ACCOUNT_EVENTS = [
  "account-added", "account-removed", "account-status-changed", "account-logged-in",
  "flood-wait-recorded", "lease-moved", "message-sent",
];

/** The health cell: flood wait with its time left, cool-down, or the score. */
export function health(a: Account, t: Translate, now: number, time: (s: string) => string): string {
  if (a.state === "flood_wait" && a.floodWaitUntil) {
    const left = Math.max(0, Math.round((Date.parse(a.floodWaitUntil) - now) / 1000));
    return t("fleet.floodLeft", { seconds: left });
  }
  if (a.cooldownUntil && Date.parse(a.cooldownUntil) > now) return t("fleet.cooldownLeft", { time: time(a.cooldownUntil) });
  return `${a.healthScore ?? 100}/100`;
}

function useNow(ms = 1000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

export function Fleet() {
  const { t } = useI18n();
  const { can } = useSession();
  return (
    <div className="screen">
      <h1>{t("fleet.title")}</h1>
      <AccountList />
      <div className="columns">
        {can("login-account") && <AddByPhone />}
        {can("qr-login-create") && <QrLogin />}
        {can("add-account") && <ImportSessions />}
      </div>
      <Proxies />
      <div className="columns">
        <ApiCredentials />
        {can("credential-start-scrape") && <CredentialScrape />}
      </div>
    </div>
  );
}

function AccountList() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const [text, setText] = useState("");
  const [state, setState] = useState("");
  const [role, setRole] = useState("");
  const payload = { limit: 200, text: text.trim() || null, state: state ? [state] : null, role: role || null };
  const accounts = useCommand("get-accounts", payload, ACCOUNT_EVENTS);
  const bindings = useCommand("ip-get-all-bindings", { limit: 500, activeOnly: true }, ACCOUNT_EVENTS);
  const exitIp = new Map((bindings.data?.items ?? []).map((b) => [b.accountId, b.exitIp ?? null]));
  const now = useNow();
  const action = useAction();
  const items = accounts.data?.items ?? [];
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [verified, setVerified] = useState<Record<string, string>>({});
  const [editing, setEditing] = useState<string | null>(null);
  const choices = useAccountChoices();
  const personaName = new Map(choices.personas.map((p) => [p.id, p.name]));
  const edited = items.find((a) => a.id === editing) ?? null;
  const bulk = can("bulk-assign-role") || can("batch-update-accounts") || can("bulk-delete-accounts") || can("bulk-assign-group");
  const actions = can("remove-account") || can("ip-verify-binding") || can("update-account");
  const shown = items.filter((a) => selected.has(a.id)).map((a) => a.id);
  const toggle = (id: string) => setSelected((prev) => {
    const next = new Set(prev);
    if (!next.delete(id)) next.add(id);
    return next;
  });
  const verify = (a: Account) =>
    action.run(async () => {
      const r = await api.call("ip-verify-binding", { accountId: a.id });
      setVerified((v) => ({ ...v, [a.id]: r.isValid ? t("fleet.ipOk", { ip: r.exitIp ?? "?" }) : t("fleet.ipBad", { error: r.error ?? (r.ipChanged ? t("fleet.ipChanged", { ip: r.exitIp ?? "?" }) : "?") }) }));
    });
  return (
    <Panel title={t("fleet.title")} id="accounts">
      <div className="filters" role="search">
        <label>
          {t("common.search")}
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <label>
          {t("fleet.filter.state")}
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">{t("common.all")}</option>
            {STATES.map((s) => (
              <option key={s} value={s}>{t(`state.${s}` as MessageKey)}</option>
            ))}
          </select>
        </label>
        <label>
          {t("fleet.filter.role")}
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            <option value="">{t("common.all")}</option>
            {ROLES.map((r) => (
              <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>
            ))}
          </select>
        </label>
        <span className="muted">{t("common.total", { count: items.length })}</span>
      </div>
      {bulk && <BulkBar ids={shown} choices={choices} onDone={() => (setSelected(new Set()), accounts.reload())} />}
      <ErrorLine error={accounts.error ?? action.error} />
      <table>
        <thead>
          <tr>
            {bulk && (
              <th>
                <input
                  type="checkbox"
                  aria-label={t("fleet.selectAll")}
                  checked={items.length > 0 && shown.length === items.length}
                  onChange={(e) => setSelected(new Set(e.target.checked ? items.map((a) => a.id) : []))}
                />
              </th>
            )}
            <th>{t("fleet.col.phone")}</th>
            <th>{t("fleet.col.name")}</th>
            <th>{t("fleet.col.state")}</th>
            <th>{t("fleet.col.health")}</th>
            <th>{t("fleet.col.proxy")}</th>
            <th>{t("fleet.col.exitIp")}</th>
            <th>{t("fleet.col.role")}</th>
            <th>{t("fleet.col.sends")}</th>
            <th>{t("fleet.col.group")}</th>
            <th>{t("fleet.col.tags")}</th>
            <th>{t("fleet.col.persona")}</th>
            {actions && <th>{t("common.actions")}</th>}
          </tr>
        </thead>
        <tbody>
          {items.map((a) => (
            <tr key={a.id} data-testid="account-row" data-phone={a.phone} data-state={a.state}>
              {bulk && (
                <td><input type="checkbox" aria-label={t("fleet.select", { phone: a.phone })} checked={selected.has(a.id)} onChange={() => toggle(a.id)} /></td>
              )}
              <td>{a.phone}</td>
              <td>{a.label ?? a.profile?.username ?? a.profile?.firstName ?? "—"}</td>
              <td><span className={`badge state-${a.state}`}>{t(`state.${a.state}` as MessageKey)}</span></td>
              <td>{health(a, t, now, time)}</td>
              <td>{a.proxy ? `${a.proxy.type}://${a.proxy.host}:${a.proxy.port}` : t("fleet.noProxy")}</td>
              <td data-testid="exit-ip">{verified[a.id] ?? exitIp.get(a.id) ?? "—"}</td>
              <td>{t(`role.${a.role ?? "unassigned"}` as MessageKey)}</td>
              <td>{`${a.dailySendCount ?? 0} / ${a.dailySendLimit ?? 0}`}</td>
              <td>{a.group ?? "—"}</td>
              <td>{(a.tags ?? []).join(", ") || "—"}</td>
              <td>{a.personaId ? personaName.get(a.personaId) ?? a.personaId : "—"}</td>
              {actions && (
                <td className="actions">
                  {can("update-account") && (
                    <button type="button" className="secondary" aria-pressed={editing === a.id} onClick={() => setEditing(editing === a.id ? null : a.id)}>
                      {t("fleet.edit")}
                    </button>
                  )}
                  {can("ip-verify-binding") && exitIp.has(a.id) && (
                    <button type="button" className="secondary" disabled={action.busy} onClick={() => void verify(a)}>{t("fleet.verifyIp")}</button>
                  )}
                  {can("remove-account") && <button
                    type="button"
                    className="danger"
                    disabled={action.busy}
                    onClick={() => {
                      if (!window.confirm(t("fleet.removeConfirm", { phone: a.phone }))) return;
                      void action.run(() => api.call("remove-account", { accountId: a.id, logout: true, confirm: true }));
                    }}
                  >
                    {t("fleet.remove")}
                  </button>}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {accounts.data && items.length === 0 && <p className="muted">{t("common.none")}</p>}
      {edited && (
        <AccountEditor
          key={edited.id}
          account={edited}
          choices={choices}
          onDone={(saved) => {
            setEditing(null);
            if (saved) accounts.reload();
          }}
        />
      )}
    </Panel>
  );
}

type TagMode = "add" | "remove" | "set";
const TAG_MODES: TagMode[] = ["add", "remove", "set"];

/** What an operator may do to the selected accounts at once: a role, a daily cap, a group, tags added,
 * removed or replaced, a persona; delete for admins. */
function BulkBar({ ids, choices, onDone }: { ids: string[]; choices: AccountChoices; onDone: () => void }) {
  const { t } = useI18n();
  const { api, can } = useSession();
  const [role, setRole] = useState<AccountRole>("sender");
  const [limit, setLimit] = useState("");
  const [group, setGroup] = useState("");
  const [tagMode, setTagMode] = useState<TagMode>("add");
  const [tags, setTags] = useState("");
  const [persona, setPersona] = useState("");
  const [result, setResult] = useState<Bulk | null>(null);
  const tagNames = tagList(tags);
  const tagsOk = tagNames.length > 0 && tagNames.length <= 50 && tagNames.every((x) => x.length <= 40);
  const action = useAction();
  const none = ids.length === 0 || action.busy;
  const run = (fn: () => Promise<Bulk>) =>
    action.run(async () => {
      setResult(await fn());
      onDone();
    });
  const accountIds = ids as [string, ...string[]];
  return (
    <div className="toolbar bulk" data-testid="bulk">
      <span className="muted">{t("fleet.selected", { count: ids.length })}</span>
      {can("bulk-assign-role") && (
        <>
          <label>
            {t("fleet.col.role")}
            <select name="bulk-role" value={role} onChange={(e) => setRole(e.target.value as AccountRole)}>
              {ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>)}
            </select>
          </label>
          <button type="button" disabled={none} onClick={() => void run(() => api.call("bulk-assign-role", { accountIds, role }))}>{t("fleet.bulk.role")}</button>
        </>
      )}
      {can("batch-update-accounts") && (
        <>
          <label>{t("fleet.bulk.limitLabel")}<input name="bulk-limit" type="number" min={0} max={1000} value={limit} onChange={(e) => setLimit(e.target.value)} /></label>
          <button type="button" disabled={none || limit === ""} onClick={() => void run(() => api.call("batch-update-accounts", { accountIds, updates: { dailySendLimit: Number(limit) } }))}>
            {t("fleet.bulk.limit")}
          </button>
        </>
      )}
      {can("bulk-assign-group") && (
        <>
          <label>{t("fleet.edit.group")}<input name="bulk-group" list="bulk-groups" maxLength={64} value={group} onChange={(e) => setGroup(e.target.value)} /></label>
          <GroupList id="bulk-groups" groups={choices.groups} />
          <button type="button" disabled={none} onClick={() => void run(() => api.call("bulk-assign-group", { accountIds, group: group.trim() || null }))}>
            {t("fleet.bulk.group")}
          </button>
        </>
      )}
      {can("batch-update-accounts") && (
        <>
          <label>
            {t("fleet.bulk.tagMode")}
            <select name="bulk-tag-mode" value={tagMode} onChange={(e) => setTagMode(e.target.value as TagMode)}>
              {TAG_MODES.map((m) => <option key={m} value={m}>{t(`fleet.bulk.tagMode.${m}` as MessageKey)}</option>)}
            </select>
          </label>
          <label>{t("fleet.bulk.tagsLabel")}<input name="bulk-tags" list="bulk-tag-names" value={tags} onChange={(e) => setTags(e.target.value)} /></label>
          <datalist id="bulk-tag-names">{choices.tags.map((x) => <option key={x} value={x} />)}</datalist>
          <button
            type="button"
            disabled={none || !tagsOk}
            onClick={() => void run(() => api.call("batch-update-accounts", { accountIds, updates: { tags: { mode: tagMode, tags: tagNames } } }))}
          >
            {t("fleet.bulk.tags")}
          </button>
          <label>
            {t("fleet.col.persona")}
            <select name="bulk-persona" value={persona} onChange={(e) => setPersona(e.target.value)}>
              <option value="">{t("fleet.edit.noPersona")}</option>
              {choices.personas.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
            </select>
          </label>
          <button type="button" disabled={none} onClick={() => void run(() => api.call("batch-update-accounts", { accountIds, updates: { personaId: persona || null } }))}>
            {t("fleet.bulk.persona")}
          </button>
        </>
      )}
      {can("bulk-delete-accounts") && (
        <ConfirmButton
          label={t("fleet.bulk.delete")}
          question={t("fleet.bulk.deleteConfirm", { count: ids.length })}
          disabled={none}
          onConfirm={() => void run(() => api.call("bulk-delete-accounts", { accountIds, logout: true, confirm: true }))}
        />
      )}
      <BulkOutcome result={result} />
      <ErrorLine error={action.error} />
    </div>
  );
}

type Step = Response<"login-account">;

/** Phone, then the code Telegram sent, then the 2FA password when the account has one. */
export function AddByPhone() {
  const { t } = useI18n();
  const { api } = useSession();
  const [phone, setPhone] = useState("");
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const [step, setStep] = useState<Step | null>(null);
  const action = useAction();

  const start = () =>
    action.run(async () => {
      const existing = await api.call("get-accounts", { text: phone.trim(), limit: 5 });
      const digits = phone.replace(/\D/g, "");
      const found = (existing.items ?? []).find((a) => a.phone.replace(/\D/g, "") === digits);
      const account = found ?? (await api.call("add-account", { phone: phone.trim() }));
      setStep(await api.call("login-account", { accountId: account.id, restart: true }));
    });
  const verify = () =>
    action.run(async () => setStep(await api.call("verify-code", { accountId: step!.accountId, phoneCode: code.trim() })));
  const submit = () =>
    action.run(async () => setStep(await api.call("submit-2fa-password", { accountId: step!.accountId, password })));
  const reset = () => {
    setStep(null);
    setPhone("");
    setCode("");
    setPassword("");
  };

  return (
    <Panel title={t("fleet.add.title")} id="add-phone">
      {!step && (
        <form onSubmit={(e) => (e.preventDefault(), void start())}>
          <label>
            {t("fleet.add.phone")}
            <input name="phone" inputMode="tel" autoComplete="off" value={phone} onChange={(e) => setPhone(e.target.value)} required />
          </label>
          <button type="submit" disabled={action.busy || !phone.trim()}>{t("fleet.add.start")}</button>
        </form>
      )}
      {step?.next === "code" && (
        <form onSubmit={(e) => (e.preventDefault(), void verify())}>
          <p>{t("fleet.add.codeSent", { phone: step.phone, type: step.codeType ?? "app" })}</p>
          <label>
            {t("fleet.add.code")}
            <input name="code" inputMode="numeric" autoComplete="one-time-code" autoFocus value={code} onChange={(e) => setCode(e.target.value)} required />
          </label>
          <button type="submit" disabled={action.busy || !code.trim()}>{t("fleet.add.verify")}</button>
        </form>
      )}
      {step?.next === "password" && (
        <form onSubmit={(e) => (e.preventDefault(), void submit())}>
          <p>{t("fleet.add.passwordHint", { hint: step.passwordHint ?? "—" })}</p>
          <label>
            {t("fleet.add.password")}
            <input name="password" type="password" autoComplete="off" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} required />
          </label>
          <button type="submit" disabled={action.busy || !password}>{t("fleet.add.submitPassword")}</button>
        </form>
      )}
      {step?.next === "done" && (
        <div>
          <p className="ok" role="status">{t("fleet.add.done", { phone: step.phone })}</p>
          <button type="button" onClick={reset}>{t("fleet.add.again")}</button>
        </div>
      )}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

type QrView = Response<"qr-login-create">;
const QR_OPEN = new Set(["pending", "scanned", "password_needed"]);

/** The QR code drawn from the login URL Telegram gave (the qrcode library, on a canvas). */
export function QrCanvas({ url }: { url: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current) void QRCode.toCanvas(canvas.current, url, { width: 232, margin: 2 }).catch(() => undefined);
  }, [url]);
  return <canvas ref={canvas} data-testid="qr-code" data-url={url} aria-label="QR" />;
}

export function QrLogin() {
  const { t } = useI18n();
  const { api } = useSession();
  const [view, setView] = useState<QrView | null>(null);
  const [password, setPassword] = useState("");
  const action = useAction();
  const now = useNow(500);
  const refreshing = useRef(false);

  // Live: the session's own event moves it on (scanned, 2FA, success, a new token).
  useLive(["qr-login-updated"], (e) => {
    if (!view || e.data?.sessionId !== view.sessionId) return;
    void api.call("qr-login-status", { sessionId: view.sessionId, includeImage: false }).then(setView, () => undefined);
  }, 50);

  const left = view?.expiresAt ? Math.round((Date.parse(view.expiresAt) - now) / 1000) : null;
  // Refreshed as it expires: a new token shortly before the old one runs out.
  useEffect(() => {
    if (!view || view.state !== "pending" || left === null || left > 2 || refreshing.current) return;
    refreshing.current = true;
    api
      .call("qr-login-refresh", { sessionId: view.sessionId })
      .then(setView, (e) => action.setError(e))
      .finally(() => (refreshing.current = false));
  }, [view, left, api, action]);

  const start = () => action.run(async () => setView(await api.call("qr-login-create", {})));
  const submit = () =>
    action.run(async () => setView(await api.call("qr-login-submit-2fa", { sessionId: view!.sessionId, password })));
  const cancel = () =>
    action.run(async () => {
      await api.call("qr-login-cancel", { sessionId: view!.sessionId });
      setView(null);
    });

  return (
    <Panel title={t("fleet.qr.title")} id="qr-login">
      {(!view || !QR_OPEN.has(view.state)) && (
        <button type="button" onClick={() => void start()} disabled={action.busy}>{t("fleet.qr.start")}</button>
      )}
      {view?.state === "pending" && view.qrUrl && (
        <div className="qr">
          <QrCanvas url={view.qrUrl} />
          <p>{t("fleet.qr.scan")}</p>
          <p className="muted" data-testid="qr-expires">
            {left !== null && left > 2 ? t("fleet.qr.expiresIn", { seconds: left }) : t("fleet.qr.refreshing")}
          </p>
        </div>
      )}
      {view?.state === "scanned" && <p role="status">{t("fleet.qr.scanned")}</p>}
      {view?.state === "password_needed" && (
        <form onSubmit={(e) => (e.preventDefault(), void submit())}>
          <p>{t("fleet.qr.password")}</p>
          <label>
            {t("fleet.add.password")}
            <input name="qr-password" type="password" autoComplete="off" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} required />
          </label>
          <button type="submit" disabled={action.busy || !password}>{t("fleet.add.submitPassword")}</button>
        </form>
      )}
      {view?.state === "success" && <p className="ok" role="status">{t("fleet.qr.done", { phone: view.phone ?? view.profile?.phone ?? "" })}</p>}
      {view && ["expired", "cancelled", "failed"].includes(view.state) && (
        <p className="error">{t("fleet.qr.failed", { state: view.error ?? view.state })}</p>
      )}
      {view && QR_OPEN.has(view.state) && (
        <button type="button" className="secondary" onClick={() => void cancel()} disabled={action.busy}>{t("fleet.qr.cancel")}</button>
      )}
      <ErrorLine error={action.error} />
    </Panel>
  );
}
