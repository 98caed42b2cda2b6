// The Fleet screen's tools beside the account list: batch import of session strings, the API credential
// pool with the developer-site scrape (its code step inline), and proxies (test with the exit IP they
// give, bind to an account, verify, unbind); and one account's settings (update-account: group, tags,
// persona, role, daily limit, label, notes; only what changed is sent).
import { useState } from "react";
import type { Response } from "../api/client";
import type { BulkDeleteAccounts, GetAccounts, TestProxy, UpdateAccount } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";
import { ACCOUNT_EVENTS, ROLES } from "./Fleet";

export type Bulk = BulkDeleteAccounts.Response;

/** A bulk command's outcome: how many of how many, and each failure with its account and reason. */
export function BulkOutcome({ result }: { result: Bulk | null }) {
  const { t } = useI18n();
  if (!result) return null;
  return (
    <div role="status" data-testid="bulk-result" data-ok={String(result.ok)}>
      <span className={result.ok ? "ok" : "error"}>{t("fleet.bulk.result", { affected: result.affected, requested: result.requested })}</span>
      {(result.failed ?? []).length > 0 && (
        <ul className="failures">
          {(result.failed ?? []).map((f) => <li key={f.accountId}>{`${f.accountId}: ${f.code} ${f.message}`}</li>)}
        </ul>
      )}
    </div>
  );
}

/** The accounts as options for a picker (phone and name). */
function useAccountOptions() {
  const q = useCommand("get-accounts", { limit: 200 }, ACCOUNT_EVENTS);
  return q.data?.items ?? [];
}

function AccountSelect({ name, value, onChange }: { name: string; value: string; onChange: (id: string) => void }) {
  const { t } = useI18n();
  const accounts = useAccountOptions();
  return (
    <label>
      {t("fleet.account")}
      <select name={name} value={value} onChange={(e) => onChange(e.target.value)} required>
        <option value="">—</option>
        {accounts.map((a) => <option key={a.id} value={a.id}>{a.label ? `${a.phone} (${a.label})` : a.phone}</option>)}
      </select>
    </label>
  );
}

// ---- batch import of session strings ----

export interface SessionLine {
  line: number;
  phone: string;
  sessionString: string;
}

/** One account per line: `phone session-string` (space, tab, comma or `|` between them; blank lines and
 * `#` comments skipped). A line without both parts is an error naming its number. */
export function parseSessionLines(text: string): { ok: SessionLine[]; bad: number[] } {
  const ok: SessionLine[] = [];
  const bad: number[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const m = line.match(/^(\+?[\d\s()-]{5,}?)\s*[\s,|;]\s*(\S{20,})$/);
    if (m) ok.push({ line: i + 1, phone: m[1].replace(/[\s()-]/g, ""), sessionString: m[2] });
    else bad.push(i + 1);
  });
  return { ok, bad };
}

export function ImportSessions() {
  const { t } = useI18n();
  const { api } = useSession();
  const [text, setText] = useState("");
  const [results, setResults] = useState<{ line: number; phone: string; error: string | null }[]>([]);
  const [done, setDone] = useState(0);
  const action = useAction();
  const parsed = parseSessionLines(text);
  const run = () =>
    action.run(async () => {
      const out: typeof results = [];
      setDone(0);
      for (const l of parsed.ok) {
        try {
          await api.call("add-account", { phone: l.phone, sessionString: l.sessionString });
          out.push({ line: l.line, phone: l.phone, error: null });
        } catch (e) {
          out.push({ line: l.line, phone: l.phone, error: e instanceof Error ? `${(e as { code?: string }).code ?? ""} ${e.message}`.trim() : String(e) });
        }
        setDone(out.length);
        setResults([...out]);
      }
      setText(out.filter((r) => r.error).length ? text : "");
    });
  return (
    <Panel title={t("fleet.import.title")} id="import-sessions">
      <form onSubmit={(e) => (e.preventDefault(), void run())}>
        <label>
          {t("fleet.import.lines")}
          <textarea name="sessions" className="code" rows={5} value={text} onChange={(e) => setText(e.target.value)} placeholder="+15550001234 1BVtsOK…" spellCheck={false} />
        </label>
        <p className="muted">{t("fleet.import.hint")}</p>
        {parsed.bad.length > 0 && <p className="error">{t("fleet.import.bad", { lines: parsed.bad.join(", ") })}</p>}
        <button type="submit" disabled={action.busy || parsed.ok.length === 0 || parsed.bad.length > 0}>
          {t("fleet.import.submit", { count: parsed.ok.length })}
        </button>
        {action.busy && <progress max={parsed.ok.length} value={done} />}
      </form>
      {results.length > 0 && (
        <ul className="failures" data-testid="import-results">
          {results.map((r) => (
            <li key={r.line} className={r.error ? "error" : "ok"} data-testid="import-result" data-ok={String(!r.error)}>
              {r.error ? t("fleet.import.failed", { line: r.line, phone: r.phone, error: r.error }) : t("fleet.import.added", { phone: r.phone })}
            </li>
          ))}
        </ul>
      )}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

// ---- API credentials and the developer-site scrape ----

export function ApiCredentials() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const creds = useCommand("get-api-credentials", {}, ["credential-scrape-updated"]);
  const [form, setForm] = useState({ apiId: "", apiHash: "", name: "", maxAccounts: "" });
  const [tested, setTested] = useState<Record<string, string>>({});
  const action = useAction();
  const items = creds.data?.items ?? [];
  const run = (fn: () => Promise<unknown>) => action.run(async () => (await fn(), creds.reload()));
  return (
    <Panel title={t("fleet.creds.title")} id="api-credentials">
      {creds.data && <p className="muted">{t("fleet.creds.capacity", { inUse: creds.data.inUse, capacity: creds.data.capacity })}</p>}
      <ErrorLine error={creds.error ?? action.error} />
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr><th>{t("fleet.creds.apiId")}</th><th>{t("fleet.creds.hash")}</th><th>{t("fleet.creds.use")}</th><th>{t("fleet.creds.test")}</th><th /></tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id} data-testid="api-credential" data-api-id={c.apiId}>
                <td>{c.name ? `${c.apiId} (${c.name})` : c.apiId}<br /><span className="muted">{t(`fleet.creds.source.${c.source ?? "manual"}` as MessageKey)}</span></td>
                <td><code>{c.apiHashMasked}</code></td>
                <td>{`${c.accountsInUse ?? 0} / ${c.maxAccounts}`}</td>
                <td>{tested[c.id] ?? (c.lastTestOk == null ? "—" : c.lastTestOk ? t("fleet.creds.ok", { time: time(c.lastTestedAt) }) : t("fleet.creds.failed", { error: c.lastTestError ?? "?" }))}</td>
                <td className="actions">
                  {can("test-api-credential") && (
                    <button
                      type="button"
                      className="secondary"
                      disabled={action.busy}
                      onClick={() => void run(async () => {
                        const r = await api.call("test-api-credential", { id: c.id });
                        setTested((v) => ({ ...v, [c.id]: r.ok ? t("fleet.creds.ok", { time: time(r.testedAt) }) : t("fleet.creds.failed", { error: r.error ?? "?" }) }));
                      })}
                    >
                      {t("fleet.creds.testNow")}
                    </button>
                  )}
                  {can("delete-api-credential") && (
                    <ConfirmButton
                      label={t("fleet.remove")}
                      question={t("fleet.creds.deleteConfirm", { apiId: c.apiId })}
                      disabled={action.busy}
                      onConfirm={() => void run(() => api.call("delete-api-credential", { id: c.id, reassignToPool: true }))}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {can("save-api-credential") && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await api.call("save-api-credential", {
                apiId: Number(form.apiId), apiHash: form.apiHash.trim(), name: form.name.trim() || null,
                maxAccounts: form.maxAccounts ? Number(form.maxAccounts) : null, test: true,
              });
              setForm({ apiId: "", apiHash: "", name: "", maxAccounts: "" });
            });
          }}
        >
          <label>{t("fleet.creds.apiId")}<input name="cred-api-id" type="number" min={1} value={form.apiId} onChange={(e) => setForm({ ...form, apiId: e.target.value })} required /></label>
          <label>{t("fleet.creds.hash")}<input name="cred-api-hash" type="password" autoComplete="off" value={form.apiHash} onChange={(e) => setForm({ ...form, apiHash: e.target.value })} required /></label>
          <label>{t("channels.name")}<input name="cred-name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
          <label>{t("fleet.creds.max")}<input name="cred-max" type="number" min={1} max={1000} value={form.maxAccounts} onChange={(e) => setForm({ ...form, maxAccounts: e.target.value })} /></label>
          <button type="submit" disabled={action.busy}>{t("fleet.creds.add")}</button>
        </form>
      )}
    </Panel>
  );
}

type Scrape = Response<"credential-get-status">;
const SCRAPE_OPEN = new Set(["starting", "waiting_code", "submitting_code", "reading_app", "creating_app"]);

/** my.telegram.org: log in to the developer site as one account, read (or create) its app, and pool
 * the credential. The site sends a code to the account: read automatically from its messages, or typed
 * here when `manual`. Its progress comes live (credential-scrape-updated). */
export function CredentialScrape() {
  const { t } = useI18n();
  const { api } = useSession();
  const [accountId, setAccountId] = useState("");
  const [codeSource, setCodeSource] = useState<"auto" | "manual">("auto");
  const [scrapeId, setScrapeId] = useState<string | null>(null);
  const action = useAction();
  return (
    <Panel title={t("fleet.scrape.title")} id="credential-scrape">
      {scrapeId ? (
        <ScrapeView scrapeId={scrapeId} onAgain={() => setScrapeId(null)} />
      ) : (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => {
              const r = await api.call("credential-start-scrape", { accountId, codeSource, addToPool: true, assignToAccount: true });
              setScrapeId(r.scrapeId);
            });
          }}
        >
          <AccountSelect name="scrape-account" value={accountId} onChange={setAccountId} />
          <label>
            {t("fleet.scrape.code")}
            <select name="scrape-code-source" value={codeSource} onChange={(e) => setCodeSource(e.target.value as "auto" | "manual")}>
              <option value="auto">{t("fleet.scrape.auto")}</option>
              <option value="manual">{t("fleet.scrape.manual")}</option>
            </select>
          </label>
          <button type="submit" disabled={action.busy || !accountId}>{t("fleet.scrape.start")}</button>
        </form>
      )}
      <ErrorLine error={action.error} />
    </Panel>
  );
}

/** One scrape as it goes: its state and log, the code form while the site waits for a typed code. */
function ScrapeView({ scrapeId, onAgain }: { scrapeId: string; onAgain: () => void }) {
  const { t, time } = useI18n();
  const { api } = useSession();
  const [code, setCode] = useState("");
  const action = useAction();
  const status = useCommand("credential-get-status", { scrapeId }, ["credential-scrape-updated"]);
  const view: Scrape | null = status.data;
  if (!view) return <ErrorLine error={status.error} />;
  const open = SCRAPE_OPEN.has(view.state);
  return (
    <div data-testid="scrape" data-state={view.state}>
      <p>
        <span className="badge">{t(`fleet.scrape.state.${view.state}` as MessageKey)}</span>{" "}
        {view.state === "completed" && t("fleet.scrape.done", { apiId: view.apiId ?? "?", hash: view.apiHashMasked ?? "?" })}
        {view.error && <span className="error">{` ${view.error}`}</span>}
      </p>
      {view.state === "waiting_code" && view.codeSource === "manual" && (
        <form className="row" onSubmit={(e) => (e.preventDefault(), void action.run(async () => (await api.call("credential-submit-code", { scrapeId, code: code.trim() }), setCode(""), status.reload())))}>
          <label>{t("fleet.scrape.codeLabel")}<input name="scrape-code" autoComplete="one-time-code" autoFocus value={code} onChange={(e) => setCode(e.target.value)} required /></label>
          <button type="submit" disabled={action.busy || !code.trim()}>{t("common.submit")}</button>
        </form>
      )}
      {open ? (
        <button type="button" className="secondary" disabled={action.busy} onClick={() => void action.run(async () => (await api.call("credential-cancel-scrape", { scrapeId }), status.reload()))}>
          {t("common.cancel")}
        </button>
      ) : (
        <button type="button" className="secondary" onClick={onAgain}>{t("fleet.scrape.again")}</button>
      )}
      <ul className="timeline">
        {(view.log ?? []).map((l, i) => <li key={i} className={l.level === "error" ? "error" : undefined}><time>{time(l.at)}</time> {l.message}</li>)}
      </ul>
      <ErrorLine error={status.error ?? action.error} />
    </div>
  );
}

// ---- proxies ----

type ProxyType = TestProxy.Request["type"];
export interface ProxyDraft { type: NonNullable<ProxyType>; host: string; port: string; username: string; password: string; secret: string }
export const EMPTY_PROXY: ProxyDraft = { type: "socks5", host: "", port: "", username: "", password: "", secret: "" };

const PROXY_URL = /^(socks5|socks4|http|mtproxy):\/\/(?:([^:@/]+)(?::([^@/]*))?@)?([^:/@]+):(\d+)\/?$/;

/** The ProxyConfig a draft stands for; a `type://user:pass@host:port` pasted into the host is split. */
export function proxyConfig(d: ProxyDraft) {
  const url = d.host.trim().match(PROXY_URL);
  const type = (url?.[1] ?? d.type) as ProxyDraft["type"];
  return {
    type,
    host: url ? url[4] : d.host.trim(),
    port: Number(url ? url[5] : d.port),
    username: (url?.[2] ?? d.username).trim() || null,
    password: url?.[3] ?? (d.password || null),
    secret: type === "mtproxy" ? d.secret.trim() || null : null,
  };
}

export function Proxies() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const bindings = useCommand("ip-get-all-bindings", { limit: 500, activeOnly: true }, ACCOUNT_EVENTS);
  const [d, setD] = useState<ProxyDraft>(EMPTY_PROXY);
  const [result, setResult] = useState<TestProxy.Response | null>(null);
  const [accountId, setAccountId] = useState("");
  const action = useAction();
  const items = bindings.data?.items ?? [];
  const set = (k: keyof ProxyDraft) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setD({ ...d, [k]: e.target.value });
  return (
    <Panel title={t("fleet.proxy.title")} id="proxies">
      {can("test-proxy") && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => setResult(await api.call("test-proxy", { ...proxyConfig(d), checkTelegram: true })));
          }}
        >
          <label>
            {t("fleet.proxy.type")}
            <select name="proxy-type" value={d.type} onChange={set("type")}>
              {(["socks5", "socks4", "http", "mtproxy"] as const).map((p) => <option key={p} value={p}>{p}</option>)}
            </select>
          </label>
          <label>{t("fleet.proxy.host")}<input name="proxy-host" value={d.host} onChange={set("host")} required /></label>
          <label>{t("fleet.proxy.port")}<input name="proxy-port" type="number" min={1} max={65535} value={d.port} onChange={set("port")} /></label>
          <label>{t("fleet.proxy.username")}<input name="proxy-username" autoComplete="off" value={d.username} onChange={set("username")} /></label>
          <label>{t("fleet.proxy.password")}<input name="proxy-password" type="password" autoComplete="off" value={d.password} onChange={set("password")} /></label>
          {d.type === "mtproxy" && <label>{t("fleet.proxy.secret")}<input name="proxy-secret" type="password" autoComplete="off" value={d.secret} onChange={set("secret")} /></label>}
          <button type="submit" disabled={action.busy}>{t("fleet.proxy.test")}</button>
        </form>
      )}
      {result && (
        <p role="status" data-testid="proxy-result" data-ok={String(result.ok)} className={result.ok ? "ok" : "error"}>
          {result.ok
            ? t("fleet.proxy.ok", { ip: result.exitIp ?? "?", ms: Math.round(result.latencyMs ?? 0), telegram: result.telegramReachable ? t("common.yes") : t("common.no") })
            : t("fleet.proxy.failed", { kind: result.errorKind ?? "?", error: result.error ?? "" })}
        </p>
      )}
      {can("ip-bind") && result?.ok && (
        <form className="row" onSubmit={(e) => (e.preventDefault(), void action.run(async () => (await api.call("ip-bind", { accountId, proxy: proxyConfig(d), verify: true, reconnect: true }), bindings.reload())))}>
          <AccountSelect name="bind-account" value={accountId} onChange={setAccountId} />
          <button type="submit" disabled={action.busy || !accountId}>{t("fleet.proxy.bind")}</button>
        </form>
      )}
      <ErrorLine error={bindings.error ?? action.error} />
      <h3>{t("fleet.proxy.bindings")}</h3>
      {items.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr><th>{t("fleet.col.phone")}</th><th>{t("fleet.col.proxy")}</th><th>{t("fleet.col.exitIp")}</th><th>{t("fleet.proxy.verified")}</th><th>{t("fleet.proxy.stats")}</th><th /></tr>
          </thead>
          <tbody>
            {items.map((b) => (
              <tr key={b.accountId} data-testid="binding" data-account={b.accountId}>
                <td>{b.phone ?? b.accountId}</td>
                <td>{`${b.proxy.type}://${b.proxy.host}:${b.proxy.port}`}</td>
                <td>{b.exitIp ?? "—"}{b.country ? ` (${b.country})` : ""}</td>
                <td>{time(b.lastVerifiedAt)}</td>
                <td>{t("fleet.proxy.counts", { ok: b.successCount ?? 0, failed: b.failCount ?? 0, ms: b.avgLatencyMs == null ? "—" : Math.round(b.avgLatencyMs) })}</td>
                <td>
                  {can("ip-unbind") && (
                    <ConfirmButton
                      className="secondary"
                      label={t("fleet.proxy.unbind")}
                      question={t("fleet.proxy.unbindConfirm", { phone: b.phone ?? b.accountId })}
                      disabled={action.busy}
                      onConfirm={() => void action.run(async () => (await api.call("ip-unbind", { accountId: b.accountId, reconnect: true }), bindings.reload()))}
                    />
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

// ---- one account's settings: group, tags, persona, role, limit, label, notes ----

type AccountView = GetAccounts.Response_.AccountView;
type AccountRole = GetAccounts.Request_.AccountRole;
export type AccountChoices = { groups: string[]; tags: string[]; personas: { id: string; name: string }[] };

export interface AccountDraft {
  label: string;
  group: string;
  tags: string[];
  newTags: string;
  personaId: string;
  role: AccountRole;
  dailySendLimit: string;
  notes: string;
}

export const accountDraft = (a: AccountView): AccountDraft => ({
  label: a.label ?? "",
  group: a.group ?? "",
  tags: [...(a.tags ?? [])],
  newTags: "",
  personaId: a.personaId ?? "",
  role: a.role ?? "unassigned",
  dailySendLimit: String(a.dailySendLimit ?? 50),
  notes: a.notes ?? "",
});

/** Tags typed as a comma-separated list: trimmed, empty ones dropped, each once. */
export const tagList = (v: string) => [...new Set(v.split(",").map((s) => s.trim()).filter(Boolean))];
const badTags = (tags: string[]) => tags.filter((t) => t.length > 40);

/** The update-account fields that differ from the account (a cleared text is null, no tags `[]`),
 * or the message key of what the contract would refuse. */
export function accountChanges(a: AccountView, d: AccountDraft): { changes: Partial<UpdateAccount.Request>; error: MessageKey | null } {
  const changes: Partial<UpdateAccount.Request> = {};
  const label = d.label.trim() || null;
  if (label !== (a.label ?? null)) changes.label = label;
  const group = d.group.trim() || null;
  if (group !== (a.group ?? null)) changes.group = group;
  const tags = [...new Set([...d.tags, ...tagList(d.newTags)])];
  const before = new Set(a.tags ?? []);
  if (tags.length !== before.size || tags.some((t) => !before.has(t))) changes.tags = tags;
  const persona = d.personaId || null;
  if (persona !== (a.personaId ?? null)) changes.personaId = persona;
  if (d.role !== (a.role ?? "unassigned")) changes.role = d.role;
  const limit = Number(d.dailySendLimit);
  if (d.dailySendLimit.trim() === "" || !Number.isInteger(limit) || limit < 0 || limit > 1000) return { changes, error: "fleet.edit.badLimit" };
  if (limit !== (a.dailySendLimit ?? 50)) changes.dailySendLimit = limit;
  const notes = d.notes.trim() ? d.notes : null;
  if (notes !== (a.notes ?? null)) changes.notes = notes;
  if (badTags(tags).length) return { changes, error: "fleet.edit.badTag" };
  if (tags.length > 50) return { changes, error: "fleet.edit.tooManyTags" };
  return { changes, error: null };
}

/** The choices offered: the groups, tags and personas defined (get-groups, get-tags, get-personas). */
export function useAccountChoices(): AccountChoices {
  const groups = useCommand("get-groups", {}, ACCOUNT_EVENTS);
  const tags = useCommand("get-tags", {}, ACCOUNT_EVENTS);
  const personas = useCommand("get-personas", {}, ACCOUNT_EVENTS);
  return {
    groups: (groups.data?.groups ?? []).map((g) => g.name),
    tags: (tags.data?.tags ?? []).map((g) => g.name),
    personas: (personas.data?.personas ?? []).map((p) => ({ id: p.id, name: p.name })),
  };
}

/** The groups as suggestions for a group field (a new name creates the group). */
export function GroupList({ id, groups }: { id: string; groups: string[] }) {
  return <datalist id={id}>{groups.map((g) => <option key={g} value={g} />)}</datalist>;
}

export function AccountEditor({ account, choices, onDone }: { account: AccountView; choices: AccountChoices; onDone: (saved: boolean) => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [draft, setDraft] = useState(() => accountDraft(account));
  const action = useAction();
  const set = <K extends keyof AccountDraft>(k: K, v: AccountDraft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const { changes, error } = accountChanges(account, draft);
  const changed = Object.keys(changes).length > 0;
  const known = [...new Set([...choices.tags, ...(account.tags ?? []), ...draft.tags])];
  const persona = choices.personas.some((p) => p.id === draft.personaId) || !draft.personaId ? choices.personas : [...choices.personas, { id: draft.personaId, name: draft.personaId }];
  const save = () =>
    action.run(async () => {
      await api.call("update-account", { accountId: account.id, ...changes });
      onDone(true);
    });
  return (
    <form className="account-edit" data-testid="account-edit" aria-label={t("fleet.edit.title", { phone: account.phone })} onSubmit={(e) => (e.preventDefault(), !error && changed && void save())}>
      <h3>{t("fleet.edit.title", { phone: account.phone })}</h3>
      <label>{t("fleet.edit.label")}<input name="edit-label" maxLength={64} value={draft.label} onChange={(e) => set("label", e.target.value)} /></label>
      <label>
        {t("fleet.edit.group")}
        <input name="edit-group" list="edit-groups" maxLength={64} value={draft.group} onChange={(e) => set("group", e.target.value)} />
      </label>
      <GroupList id="edit-groups" groups={choices.groups} />
      <fieldset>
        <legend>{t("fleet.col.tags")}</legend>
        {known.map((tag) => (
          <label key={tag} className="check">
            <input
              type="checkbox"
              checked={draft.tags.includes(tag)}
              onChange={(e) => set("tags", e.target.checked ? [...draft.tags, tag] : draft.tags.filter((x) => x !== tag))}
            />
            {tag}
          </label>
        ))}
        <label>{t("fleet.edit.newTags")}<input name="edit-new-tags" value={draft.newTags} onChange={(e) => set("newTags", e.target.value)} /></label>
      </fieldset>
      <label>
        {t("fleet.col.persona")}
        <select name="edit-persona" value={draft.personaId} onChange={(e) => set("personaId", e.target.value)}>
          <option value="">{t("fleet.edit.noPersona")}</option>
          {persona.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
        </select>
      </label>
      <label>
        {t("fleet.col.role")}
        <select name="edit-role" value={draft.role} onChange={(e) => set("role", e.target.value as AccountRole)}>
          {ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>)}
        </select>
      </label>
      <label>{t("fleet.bulk.limitLabel")}<input name="edit-limit" type="number" min={0} max={1000} value={draft.dailySendLimit} onChange={(e) => set("dailySendLimit", e.target.value)} /></label>
      <label>{t("fleet.edit.notes")}<textarea name="edit-notes" rows={2} maxLength={2000} value={draft.notes} onChange={(e) => set("notes", e.target.value)} /></label>
      {error && <p className="error" data-testid="edit-error">{t(error, { tags: badTags([...draft.tags, ...tagList(draft.newTags)]).join(", ") })}</p>}
      <div className="toolbar">
        <button type="submit" disabled={action.busy || !changed || !!error}>{t("common.save")}</button>
        <button type="button" className="secondary" onClick={() => onDone(false)}>{t("common.cancel")}</button>
      </div>
      <ErrorLine error={action.error} />
    </form>
  );
}
