// Channels: the Tailchat bot apps beside the Telegram accounts (the `channels` commands of the tailchat
// service, through the public API like everything else). Registered apps with their check status; for
// admins registering one (the secret is write-only: sent once, never shown or returned), rotating its
// callback token (the new callback path is shown once), the bot's info and commands, removing it; for
// operators a `whoami` check; for everyone the bot's commands by scope and what the bots receive, live
// (channel-message-received, channel-dm-started, button-pressed pushed over the WebSocket).
import { useState } from "react";
import type { PushedEvent } from "../api/live";
import type { GetTailchatApps, SetTailchatBotInfo } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n, type Translate } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useEvents, useSession } from "../session";

type App = GetTailchatApps.Response_.TailchatAppView;
type BotInfo = SetTailchatBotInfo.Request;
type ScopeType = NonNullable<NonNullable<SetTailchatBotInfo.Request_.BotCommand["scope"]>["type"]>;

export const INBOUND = ["channel-message-received", "channel-dm-started", "button-pressed"] as const;
const SCOPES: ScopeType[] = ["default", "all_private_chats", "all_group_chats", "chat", "chat_member"];

export function Channels() {
  const { t } = useI18n();
  const { can } = useSession();
  const apps = useCommand("get-tailchat-apps", {}, []);
  const items = apps.data?.items ?? [];
  return (
    <div className="screen">
      <h1>{t("channels.title")}</h1>
      <AppList apps={items} error={apps.error} reload={apps.reload} />
      <div className="columns">
        {can("register-tailchat-app") && <RegisterApp onDone={apps.reload} />}
        {can("set-tailchat-bot-info") && items.length > 0 && <BotInfoForm apps={items} />}
        {items.length > 0 && <BotCommands apps={items} />}
      </div>
      <Inbound />
    </div>
  );
}

function AppList(props: { apps: App[]; error: unknown; reload: () => void }) {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const action = useAction();
  const [path, setPath] = useState<{ appId: string; path: string; applied: boolean } | null>(null);
  const run = (fn: () => Promise<unknown>) => action.run(async () => (await fn(), props.reload()));
  return (
    <Panel title={t("channels.apps")} id="tailchat-apps">
      <ErrorLine error={props.error ?? action.error} />
      {path && (
        <p role="status" data-testid="callback-path">
          {t(path.applied ? "channels.rotatedApplied" : "channels.rotated", { app: path.appId })} <code>{`${location.origin}${path.path}`}</code>
        </p>
      )}
      {props.apps.length === 0 ? (
        <p className="muted">{t("channels.noApps")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t("channels.name")}</th>
              <th>{t("channels.appId")}</th>
              <th>{t("channels.server")}</th>
              <th>{t("channels.status")}</th>
              <th>{t("channels.bot")}</th>
              <th>{t("channels.token")}</th>
              {(can("check-tailchat-app") || can("remove-tailchat-app")) && <th>{t("common.actions")}</th>}
            </tr>
          </thead>
          <tbody>
            {props.apps.map((a) => (
              <tr key={a.appId} data-testid="tailchat-app" data-app={a.appId} data-status={a.status ?? "unchecked"}>
                <td>{a.name}</td>
                <td><code>{a.appId}</code></td>
                <td>{a.serverUrl}</td>
                <td>
                  <span className={`badge app-${a.status ?? "unchecked"}`}>{t(`channels.state.${a.status ?? "unchecked"}` as MessageKey)}</span>
                  {a.lastError ? <span className="muted">{` ${a.lastError}`}</span> : null}
                  <br /><span className="muted">{time(a.lastCheckedAt)}</span>
                </td>
                <td>{a.botNickname ?? "—"}{a.botUserId ? <span className="muted">{` (${a.botUserId})`}</span> : null}</td>
                <td>{a.callbackTokenSet ? t("channels.tokenSet", { time: time(a.callbackTokenRotatedAt) }) : t("channels.tokenUnset")}</td>
                {(can("check-tailchat-app") || can("remove-tailchat-app")) && (
                  <td className="actions">
                    {can("check-tailchat-app") && (
                      <button type="button" className="secondary" disabled={action.busy} onClick={() => void run(() => api.call("check-tailchat-app", { appId: a.appId }))}>
                        {t("channels.check")}
                      </button>
                    )}
                    {can("rotate-tailchat-callback-token") && (
                      <ConfirmButton
                        className="secondary"
                        label={t("channels.rotate")}
                        question={t("channels.rotateConfirm", { app: a.name })}
                        disabled={action.busy}
                        onConfirm={() =>
                          void run(async () => {
                            const r = await api.call("rotate-tailchat-callback-token", { appId: a.appId });
                            setPath({ appId: a.appId, path: r.callbackPath, applied: !!r.applied });
                          })
                        }
                      />
                    )}
                    {can("remove-tailchat-app") && (
                      <ConfirmButton
                        label={t("fleet.remove")}
                        question={t("channels.removeConfirm", { app: a.name })}
                        disabled={action.busy}
                        onConfirm={() => void run(() => api.call("remove-tailchat-app", { appId: a.appId }))}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

/** Register an app: the secret is a password field, sent once and cleared; the reply's callback path
 * (with its token) is shown this once. */
export function RegisterApp({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [form, setForm] = useState({ serverUrl: "", appId: "", appSecret: "", name: "", check: true });
  const [path, setPath] = useState<string | null>(null);
  const action = useAction();
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) =>
    setForm({ ...form, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  return (
    <Panel title={t("channels.register")} id="tailchat-register">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const r = await api.call("register-tailchat-app", {
              serverUrl: form.serverUrl.trim(), appId: form.appId.trim(), appSecret: form.appSecret,
              name: form.name.trim() || null, check: form.check,
            });
            setPath(r.callbackPath);
            setForm({ serverUrl: "", appId: "", appSecret: "", name: "", check: true });
            onDone();
          });
        }}
      >
        <label>{t("channels.server")}<input name="tc-server" type="url" value={form.serverUrl} onChange={set("serverUrl")} required /></label>
        <label>{t("channels.appId")}<input name="tc-app-id" value={form.appId} onChange={set("appId")} required /></label>
        <label>{t("channels.secret")}<input name="tc-secret" type="password" autoComplete="off" value={form.appSecret} onChange={set("appSecret")} required /></label>
        <label>{t("channels.name")}<input name="tc-name" value={form.name} onChange={set("name")} /></label>
        <label className="inline"><input type="checkbox" name="tc-check" checked={form.check} onChange={set("check")} />{t("channels.checkFirst")}</label>
        <p className="muted">{t("channels.secretHint")}</p>
        <button type="submit" disabled={action.busy}>{t("channels.registerSubmit")}</button>
      </form>
      {path && (
        <p role="status" data-testid="registered-path">
          {t("channels.callbackOnce")} <code>{`${location.origin}${path}`}</code>
        </p>
      )}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

export interface BotInfoDraft {
  callbackUrl: string;
  username: string;
  allowGroup: "" | "yes" | "no";
  receiveAll: "" | "yes" | "no";
  commands: { command: string; description: string; scope: ScopeType }[];
  setCommands: boolean;
}
export const EMPTY_BOT_INFO: BotInfoDraft = { callbackUrl: "", username: "", allowGroup: "", receiveAll: "", commands: [], setCommands: false };

const tri = (v: "" | "yes" | "no") => (v === "" ? undefined : v === "yes");

/** The set-tailchat-bot-info request: only the fields the operator filled in (each is one call to the
 * server, and the username can be set once). */
export function botInfoPayload(appId: string, d: BotInfoDraft): BotInfo {
  const out: BotInfo = { appId };
  if (d.callbackUrl.trim()) out.callbackUrl = d.callbackUrl.trim();
  if (d.username.trim()) out.username = d.username.trim();
  if (tri(d.allowGroup) !== undefined) out.allowGroup = tri(d.allowGroup);
  if (tri(d.receiveAll) !== undefined) out.receiveAllGroupMessages = tri(d.receiveAll);
  if (d.setCommands) {
    out.commands = d.commands
      .filter((c) => c.command.trim())
      .map((c) => ({ command: c.command.trim().replace(/^\//, ""), description: c.description.trim(), scope: c.scope === "default" ? null : { type: c.scope } }));
  }
  return out;
}

function TriSelect(props: { name: string; label: string; value: "" | "yes" | "no"; onChange: (v: "" | "yes" | "no") => void }) {
  const { t } = useI18n();
  return (
    <label>
      {props.label}
      <select name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value as "" | "yes" | "no")}>
        <option value="">{t("channels.unchanged")}</option>
        <option value="yes">{t("common.yes")}</option>
        <option value="no">{t("common.no")}</option>
      </select>
    </label>
  );
}

function AppSelect({ apps, value, onChange }: { apps: App[]; value: string; onChange: (id: string) => void }) {
  const { t } = useI18n();
  return (
    <label>
      {t("channels.app")}
      <select name="tc-app" value={value} onChange={(e) => onChange(e.target.value)}>
        {apps.map((a) => <option key={a.appId} value={a.appId}>{a.name}</option>)}
      </select>
    </label>
  );
}

function BotInfoForm({ apps }: { apps: App[] }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [appId, setAppId] = useState(apps[0].appId);
  const [d, setD] = useState<BotInfoDraft>(EMPTY_BOT_INFO);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const current = apps.some((a) => a.appId === appId) ? appId : apps[0].appId;
  const setRow = (i: number, patch: Partial<BotInfoDraft["commands"][number]>) =>
    setD({ ...d, commands: d.commands.map((c, j) => (j === i ? { ...c, ...patch } : c)) });
  return (
    <Panel title={t("channels.botInfo")} id="tailchat-bot-info">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const r = await api.call("set-tailchat-bot-info", botInfoPayload(current, d));
            setDone(t("channels.botInfoSaved", { fields: r.fields.join(", ") || "—" }));
            setD(EMPTY_BOT_INFO);
          });
        }}
      >
        <AppSelect apps={apps} value={current} onChange={setAppId} />
        <label>{t("channels.callbackUrl")}<input name="tc-callback-url" type="url" value={d.callbackUrl} onChange={(e) => setD({ ...d, callbackUrl: e.target.value })} /></label>
        <label>{t("channels.username")}<input name="tc-username" pattern=".*bot$" value={d.username} onChange={(e) => setD({ ...d, username: e.target.value })} /></label>
        <div className="row">
          <TriSelect name="tc-allow-group" label={t("channels.allowGroup")} value={d.allowGroup} onChange={(v) => setD({ ...d, allowGroup: v })} />
          <TriSelect name="tc-receive-all" label={t("channels.receiveAll")} value={d.receiveAll} onChange={(v) => setD({ ...d, receiveAll: v })} />
        </div>
        <label className="inline"><input type="checkbox" name="tc-set-commands" checked={d.setCommands} onChange={(e) => setD({ ...d, setCommands: e.target.checked })} />{t("channels.setCommands")}</label>
        {d.setCommands && (
          <fieldset>
            {d.commands.map((c, i) => (
              <div className="row" key={i} data-testid="command-row">
                <label>{t("channels.command")}<input name={`tc-cmd-${i}`} value={c.command} onChange={(e) => setRow(i, { command: e.target.value })} /></label>
                <label>{t("channels.description")}<input name={`tc-desc-${i}`} value={c.description} onChange={(e) => setRow(i, { description: e.target.value })} /></label>
                <label>
                  {t("channels.scope")}
                  <select name={`tc-scope-${i}`} value={c.scope} onChange={(e) => setRow(i, { scope: e.target.value as ScopeType })}>
                    {SCOPES.slice(0, 3).map((s) => <option key={s} value={s}>{t(`channels.scope.${s}` as MessageKey)}</option>)}
                  </select>
                </label>
                <button type="button" className="secondary" onClick={() => setD({ ...d, commands: d.commands.filter((_, j) => j !== i) })}>{t("channels.removeRow")}</button>
              </div>
            ))}
            <button type="button" className="secondary" onClick={() => setD({ ...d, commands: [...d.commands, { command: "", description: "", scope: "default" }] })}>
              {t("channels.addCommand")}
            </button>
          </fieldset>
        )}
        <button type="submit" disabled={action.busy}>{t("common.save")}</button>
      </form>
      {done && <p role="status" data-testid="bot-info-saved">{done}</p>}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

function BotCommands({ apps }: { apps: App[] }) {
  const { t } = useI18n();
  const [appId, setAppId] = useState(apps[0].appId);
  const [scope, setScope] = useState<ScopeType>("default");
  const current = apps.some((a) => a.appId === appId) ? appId : apps[0].appId;
  const q = useCommand("get-tailchat-commands", { appId: current, scopeType: scope === "default" ? null : scope }, []);
  return (
    <Panel title={t("channels.commands")} id="tailchat-commands">
      <div className="filters">
        <AppSelect apps={apps} value={current} onChange={setAppId} />
        <label>
          {t("channels.scope")}
          <select name="tc-read-scope" value={scope} onChange={(e) => setScope(e.target.value as ScopeType)}>
            {SCOPES.slice(0, 3).map((s) => <option key={s} value={s}>{t(`channels.scope.${s}` as MessageKey)}</option>)}
          </select>
        </label>
        {q.data?.version != null && <span className="muted">{t("channels.version", { version: q.data.version })}</span>}
      </div>
      <ErrorLine error={q.error} />
      {(q.data?.commands ?? []).length === 0 ? (
        <p className="muted">{q.data ? t("common.none") : t("common.loading")}</p>
      ) : (
        <ul data-testid="bot-commands">
          {(q.data?.commands ?? []).map((c) => <li key={c.command}><code>{`/${c.command}`}</code> {c.description}</li>)}
        </ul>
      )}
    </Panel>
  );
}

/** One line for an inbound event: who, where and what. */
export function inboundLine(e: PushedEvent, t: Translate): string {
  const d = e.data ?? {};
  if (e.event === "channel-message-received") {
    return t(d.isDm ? "channels.in.dm" : "channels.in.group", { who: d.senderName ?? d.senderId, text: d.text ?? "", group: d.groupId ?? "" });
  }
  if (e.event === "channel-dm-started") return t("channels.in.dmStarted", { who: d.userId, param: d.startParam ?? "—" });
  return t("channels.in.button", { who: d.userId, action: d.actionId });
}

function Inbound() {
  const { t, time } = useI18n();
  const [events, setEvents] = useState<PushedEvent[]>([]);
  useEvents(INBOUND, (e) => setEvents((prev) => [e, ...prev].slice(0, 30)));
  return (
    <Panel title={t("channels.inbound")} id="tailchat-inbound">
      {events.length === 0 ? (
        <p className="muted">{t("channels.inboundNone")}</p>
      ) : (
        <ul className="timeline">
          {events.map((e, i) => (
            <li key={`${e.data?.eventId ?? i}-${e.timestamp}`} data-testid="inbound" data-event={e.event}>
              <time>{time(e.timestamp)}</time> <span className="badge">{e.data?.appId}</span> {inboundLine(e, t)}
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
