// Knowledge and AI: documents (upload with the indexing progress pushed live, removal), FAQ and
// text items (added, found, removed), search with citations, provider settings (API keys write-only: the gateway only ever shows them masked),
// a connection test per provider, and token usage.
import { useState } from "react";
import type { AddKnowledge, GetAiSettings, SearchKnowledge } from "../api/types.gen";
import { ConfirmButton, ErrorLine, Panel, useAction } from "../components";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/en";
import { useCommand, useSession } from "../session";

const DOC_EVENTS = ["rag-document-progress", "knowledge-changed"];
const PROVIDERS = ["local", "openai", "maiagent", "dmflow"] as const;
type Provider = (typeof PROVIDERS)[number];
type Remote = Exclude<Provider, "local">;

export function Knowledge() {
  const { t } = useI18n();
  const { can } = useSession();
  return (
    <div className="screen">
      <h1>{t("knowledge.title")}</h1>
      <div className="columns">
        <Documents />
        <Search />
      </div>
      <Items />
      <div className="columns">
        <ProviderSettings />
        {can("test-ai-connection") && <TestConnection />}
      </div>
      <Usage />
    </div>
  );
}

/** A file's bytes as base64 (what `rag-add-document` takes). */
export async function fileBase64(file: Blob): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function Documents() {
  const { t, time } = useI18n();
  const { api, can } = useSession();
  const status = useCommand("rag-get-status", { limit: 50 }, DOC_EVENTS);
  const upload = useAction();
  const removal = useAction();
  const removable = can("remove-knowledge");
  const [file, setFile] = useState<File | null>(null);
  const [title, setTitle] = useState("");
  const docs = status.data?.documents ?? [];
  return (
    <Panel title={t("knowledge.documents")} id="documents">
      <p className="muted">
        {t("knowledge.totals", { documents: status.data?.totalDocuments ?? 0, chunks: status.data?.totalChunks ?? 0 })}
      </p>
      {can("rag-add-document") && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (!file) return;
            void upload.run(async () => {
              await api.call("rag-add-document", {
                contentBase64: await fileBase64(file),
                filename: file.name,
                mimeType: file.type || null,
                title: title.trim() || null,
                wait: false,
              });
              setFile(null);
              setTitle("");
              (e.target as HTMLFormElement).reset();
            });
          }}
        >
          <label>{t("knowledge.file")}<input type="file" name="document" onChange={(e) => setFile(e.target.files?.[0] ?? null)} required /></label>
          <label>{t("knowledge.docTitle")}<input name="doc-title" value={title} onChange={(e) => setTitle(e.target.value)} /></label>
          <button type="submit" disabled={upload.busy || !file}>{upload.busy ? t("knowledge.uploading") : t("knowledge.upload")}</button>
        </form>
      )}
      <ErrorLine error={upload.error ?? removal.error ?? status.error} />
      {docs.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <table>
          <thead>
            <tr><th>{t("knowledge.docTitle")}</th><th>{t("knowledge.state")}</th><th>{t("knowledge.progress")}</th><th>{t("knowledge.chunks")}</th><th>{t("knowledge.added")}</th>{removable && <th />}</tr>
          </thead>
          <tbody>
            {docs.map((d) => (
              <tr key={d.documentId} data-testid="document" data-state={d.state} data-title={d.title ?? d.filename ?? ""}>
                <td>{d.title ?? d.filename ?? d.documentId}</td>
                <td><span className={`badge doc-${d.state}`}>{t(`doc.${d.state}` as MessageKey)}</span>{d.error ? ` ${d.error}` : ""}</td>
                <td><progress max={1} value={d.progress ?? 0} /> {`${Math.round((d.progress ?? 0) * 100)}%`}</td>
                <td>{d.chunks}</td>
                <td>{time(d.createdAt)}</td>
                {removable && (
                  <td>
                    <ConfirmButton
                      label={t("knowledge.remove")}
                      question={t("knowledge.doc.removeConfirm", { title: d.title ?? d.filename ?? d.documentId })}
                      disabled={removal.busy}
                      onConfirm={() => void removal.run(async () => (await api.call("remove-knowledge", { documentId: d.documentId }), status.reload()))}
                    />
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

type Item = AddKnowledge.Response["added"][number];
type ItemType = "faq" | "text";
type Translate = (k: MessageKey, v?: Record<string, string | number>) => string;
const SCOPE = /^[A-Za-z0-9_.:-]+$/;

export interface ItemDraft { type: ItemType; scope: string; question: string; answer: string; content: string; title: string; tags: string; source: string }
export const newItem = (type: ItemType = "faq", scope = "default"): ItemDraft => ({ type, scope, question: "", answer: "", content: "", title: "", tags: "", source: "" });

/** The add-knowledge body of the form (one item by the flat fields), or what KnowledgeInput would
 * refuse, by field: then nothing is sent. */
export function itemPlan(d: ItemDraft, t: Translate): { request: Record<string, unknown> | null; errors: Partial<Record<keyof ItemDraft, string>> } {
  const errors: Partial<Record<keyof ItemDraft, string>> = {};
  const scope = d.scope.trim();
  if (!scope || scope.length > 64 || !SCOPE.test(scope)) errors.scope = t("knowledge.err.scope");
  const text = (k: "question" | "answer" | "content", max: number, missing: MessageKey) => {
    const v = d[k].trim();
    if (!v) errors[k] = t(missing);
    else if (v.length > max) errors[k] = t("knowledge.err.long", { max });
    return v;
  };
  const body: Record<string, unknown> = { scope, type: d.type };
  if (d.type === "faq") {
    body.question = text("question", 1000, "knowledge.err.question");
    body.answer = text("answer", 8000, "knowledge.err.answer");
  } else {
    body.content = text("content", 20000, "knowledge.err.content");
  }
  const title = d.title.trim(), source = d.source.trim();
  if (title.length > 200) errors.title = t("knowledge.err.long", { max: 200 });
  if (source.length > 500) errors.source = t("knowledge.err.long", { max: 500 });
  const tags = [...new Set(d.tags.split(",").map((x) => x.trim()).filter(Boolean))];
  if (tags.length > 20) errors.tags = t("knowledge.err.tags");
  else if (tags.some((x) => x.length > 50)) errors.tags = t("knowledge.err.tag");
  if (title) body.title = title;
  body.tags = tags;
  if (source) body.source = source;
  return Object.keys(errors).length ? { request: null, errors } : { request: body, errors };
}

/** An item as one line: a FAQ's question, a text's title or the start of its content. */
export function itemLabel(i: Item): string {
  const text = i.question ?? i.title ?? i.content ?? i.id;
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** FAQ pairs and free texts: counted by get-knowledge-stats, added with add-knowledge, found with
 * search-knowledge (the ai service has no list command: items are found by what they say) and removed
 * with remove-knowledge, one or the selected ones, after a confirm. */
function Items() {
  const { t } = useI18n();
  const { api, can } = useSession();
  const stats = useCommand("get-knowledge-stats", {}, DOC_EVENTS);
  const action = useAction();
  const [query, setQuery] = useState("");
  const [type, setType] = useState<"" | ItemType>("");
  const [items, setItems] = useState<Item[] | null>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const [note, setNote] = useState("");
  const removable = can("remove-knowledge");
  const remove = (ids: [string, ...string[]]) =>
    void action.run(async () => {
      setNote("");
      const r = await api.call("remove-knowledge", { ids });
      setItems((list) => (list ?? []).filter((i) => !ids.includes(i.id)));
      setSelected((s) => s.filter((id) => !ids.includes(id)));
      setNote(t("knowledge.items.removed", { count: r.affected ?? ids.length }));
      void stats.reload();
    });
  const byType = stats.data?.byType ?? {};
  return (
    <Panel title={t("knowledge.items")} id="knowledge-items">
      <p className="muted" data-testid="item-totals">{t("knowledge.items.totals", { faq: byType.faq ?? 0, text: byType.text ?? 0 })}</p>
      {can("add-knowledge") && (
        <AddItem
          onAdded={(added, duplicates) => {
            setItems((list) => [...added, ...(list ?? []).filter((i) => !added.some((a) => a.id === i.id))]);
            setNote(added.length ? t("knowledge.items.added", { count: added.length }) : t("knowledge.items.duplicate", { count: duplicates }));
            void stats.reload();
          }}
        />
      )}
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            setNote("");
            const r = await api.call("search-knowledge", { query: query.trim(), includeDocs: false, limit: 50, ...(type ? { type } : {}) });
            setItems(r.hits.map((h) => h.item).filter((i) => i.type !== "document"));
            setSelected([]);
          });
        }}
      >
        <label>{t("knowledge.items.query")}<input type="search" name="item-query" value={query} onChange={(e) => setQuery(e.target.value)} required /></label>
        <label>
          {t("knowledge.items.typeFilter")}
          <select name="item-type-filter" value={type} onChange={(e) => setType(e.target.value as typeof type)}>
            <option value="">{t("common.all")}</option>
            <option value="faq">{t("knowledge.type.faq")}</option>
            <option value="text">{t("knowledge.type.text")}</option>
          </select>
        </label>
        <button type="submit" disabled={action.busy || !query.trim()}>{t("knowledge.items.find")}</button>
      </form>
      <ErrorLine error={action.error ?? stats.error} />
      {note && <p role="status" data-testid="items-note">{note}</p>}
      {items && (items.length === 0 ? (
        <p className="muted">{t("knowledge.noHits")}</p>
      ) : (
        <>
          <table>
            <thead>
              <tr>{removable && <th />}<th>{t("knowledge.items.type")}</th><th>{t("knowledge.items.scope")}</th><th>{t("knowledge.items.what")}</th><th>{t("knowledge.items.tags")}</th>{removable && <th />}</tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.id} data-testid="knowledge-item" data-id={i.id} data-type={i.type}>
                  {removable && (
                    <td>
                      <input
                        type="checkbox"
                        aria-label={t("knowledge.items.select", { item: itemLabel(i) })}
                        checked={selected.includes(i.id)}
                        onChange={(e) => setSelected((s) => (e.target.checked ? [...s, i.id] : s.filter((id) => id !== i.id)))}
                      />
                    </td>
                  )}
                  <td>{t(`knowledge.type.${i.type}` as MessageKey)}</td>
                  <td>{i.scope}</td>
                  <td>
                    <strong>{i.type === "faq" ? i.question : i.title ?? ""}</strong>
                    <div className="muted">{i.type === "faq" ? i.answer : i.content}</div>
                  </td>
                  <td>{(i.tags ?? []).join(", ")}</td>
                  {removable && (
                    <td>
                      <ConfirmButton
                        label={t("knowledge.remove")}
                        question={t("knowledge.items.removeConfirm", { item: itemLabel(i) })}
                        disabled={action.busy}
                        onConfirm={() => remove([i.id])}
                      />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {removable && (
            <ConfirmButton
              label={t("knowledge.items.removeSelected", { count: selected.length })}
              question={t("knowledge.items.removeSelectedConfirm", { count: selected.length })}
              disabled={action.busy || selected.length === 0}
              onConfirm={() => selected.length && remove(selected as [string, ...string[]])}
            />
          )}
        </>
      ))}
    </Panel>
  );
}

function AddItem({ onAdded }: { onAdded: (added: Item[], duplicates: number) => void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const action = useAction();
  const [d, setD] = useState<ItemDraft>(() => newItem());
  const [errors, setErrors] = useState<Partial<Record<keyof ItemDraft, string>>>({});
  const set = (k: keyof ItemDraft, v: string) => setD((x) => ({ ...x, [k]: v }));
  const field = (k: keyof ItemDraft, label: MessageKey, area = false) => (
    <div className="field">
      <label>
        {t(label)}
        {area ? (
          <textarea name={`item-${k}`} rows={3} value={d[k]} onChange={(e) => set(k, e.target.value)} aria-invalid={errors[k] ? true : undefined} aria-describedby={errors[k] ? `item-${k}-error` : undefined} />
        ) : (
          <input name={`item-${k}`} value={d[k]} onChange={(e) => set(k, e.target.value)} aria-invalid={errors[k] ? true : undefined} aria-describedby={errors[k] ? `item-${k}-error` : undefined} />
        )}
      </label>
      {errors[k] && <p className="error field-error" id={`item-${k}-error`} data-testid="field-error" data-field={k}>{errors[k]}</p>}
    </div>
  );
  return (
    <form
      noValidate
      data-testid="add-item"
      onSubmit={(e) => {
        e.preventDefault();
        const plan = itemPlan(d, t);
        setErrors(plan.errors);
        if (!plan.request) return;
        void action.run(async () => {
          const r = await api.call("add-knowledge", plan.request!);
          setD(newItem(d.type, d.scope));
          onAdded(r.added, r.duplicates ?? 0);
        });
      }}
    >
      <div className="form-grid">
        <div className="field">
          <label>
            {t("knowledge.items.type")}
            <select name="item-type" value={d.type} onChange={(e) => set("type", e.target.value)}>
              <option value="faq">{t("knowledge.type.faq")}</option>
              <option value="text">{t("knowledge.type.text")}</option>
            </select>
          </label>
        </div>
        {field("scope", "knowledge.items.scope")}
        {field("title", "knowledge.items.title")}
        {field("tags", "knowledge.items.tagsInput")}
        {field("source", "knowledge.items.source")}
      </div>
      {d.type === "faq" ? (
        <>
          {field("question", "knowledge.items.question")}
          {field("answer", "knowledge.items.answer", true)}
        </>
      ) : (
        field("content", "knowledge.items.content", true)
      )}
      <button type="submit" disabled={action.busy}>{t("knowledge.items.add")}</button>
      <ErrorLine error={action.error} />
    </form>
  );
}

type Hit = SearchKnowledge.Response_.KnowledgeHit;

/** Where a hit comes from, as the operator reads it: title, page, source. */
export function citation(h: Hit, t: (k: MessageKey, v?: Record<string, string | number>) => string): string {
  const c = h.citation;
  const parts = [c.title ?? h.item.title ?? h.item.question ?? c.knowledgeId];
  if (c.page != null) parts.push(t("knowledge.page", { page: c.page }));
  if (c.source) parts.push(c.source);
  return parts.join(" · ");
}

function Search() {
  const { t } = useI18n();
  const { api } = useSession();
  const [query, setQuery] = useState("");
  const [result, setResult] = useState<SearchKnowledge.Response | null>(null);
  const action = useAction();
  return (
    <Panel title={t("knowledge.search")} id="knowledge-search">
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => setResult(await api.call("search-knowledge", { query: query.trim(), includeDocs: true, limit: 5 })));
        }}
      >
        <label>{t("knowledge.query")}<input type="search" name="query" value={query} onChange={(e) => setQuery(e.target.value)} required /></label>
        <button type="submit" disabled={action.busy || !query.trim()}>{t("common.search")}</button>
      </form>
      <ErrorLine error={action.error} />
      {result && (
        <ol className="hits" data-testid="hits">
          {result.hits.length === 0 && <li className="muted">{t("knowledge.noHits")}</li>}
          {result.hits.map((h, i) => (
            <li key={i} data-testid="hit">
              <p>{h.citation.snippet ?? h.item.answer ?? h.item.content}</p>
              <cite data-testid="citation">{citation(h, t)}</cite> <span className="muted">{t("knowledge.score", { score: h.score.toFixed(3) })}</span>
            </li>
          ))}
        </ol>
      )}
    </Panel>
  );
}

type Settings = GetAiSettings.Response;

/** The save-ai-settings payload of the form: a key is sent only when one was typed (write-only). */
export function settingsPayload(
  form: { defaultProvider: Provider; enabled: Record<Remote, boolean>; baseUrl: Record<Remote, string>; apiKey: Record<Remote, string> },
  version: number | undefined,
) {
  const section = (p: Remote) => ({
    enabled: form.enabled[p],
    baseUrl: form.baseUrl[p].trim() || null,
    ...(form.apiKey[p] ? { apiKey: form.apiKey[p] } : {}),
  });
  return {
    defaultProvider: form.defaultProvider,
    openai: section("openai"),
    maiagent: section("maiagent"),
    dmflow: section("dmflow"),
    expectedVersion: version ?? null,
  };
}

function ProviderSettings() {
  const { t } = useI18n();
  const { api, can } = useSession();
  const settings = useCommand("get-ai-settings", {}, ["ai-settings-changed"]);
  const s = settings.data;
  return (
    <Panel title={t("knowledge.providers")} id="ai-settings">
      <ErrorLine error={settings.error} />
      {s && (can("save-ai-settings") ? <SettingsForm key={s.version ?? 0} s={s} save={(p) => api.call("save-ai-settings", p)} /> : <SettingsView s={s} />)}
    </Panel>
  );
}

const remote = (s: Settings, p: Remote) => s[p] as { enabled?: boolean; baseUrl?: string | null; apiKeySet?: boolean; apiKeyMasked?: string | null } | undefined;

function SettingsView({ s }: { s: Settings }) {
  const { t } = useI18n();
  return (
    <table>
      <tbody>
        <tr><th>{t("knowledge.default")}</th><td>{s.defaultProvider ?? "local"}</td></tr>
        {(["openai", "maiagent", "dmflow"] as Remote[]).map((p) => (
          <tr key={p} data-testid="provider" data-provider={p}>
            <th>{p}</th>
            <td>{remote(s, p)?.enabled ? t("common.yes") : t("common.no")}</td>
            <td>{remote(s, p)?.apiKeySet ? remote(s, p)?.apiKeyMasked ?? "••••" : t("knowledge.noKey")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SettingsForm({ s, save }: { s: Settings; save: (p: ReturnType<typeof settingsPayload>) => Promise<unknown> }) {
  const { t } = useI18n();
  const action = useAction();
  const [saved, setSaved] = useState(false);
  const init = <T,>(f: (p: Remote) => T) => ({ openai: f("openai"), maiagent: f("maiagent"), dmflow: f("dmflow") });
  const [form, setForm] = useState({
    defaultProvider: (s.defaultProvider ?? "local") as Provider,
    enabled: init((p) => !!remote(s, p)?.enabled),
    baseUrl: init((p) => remote(s, p)?.baseUrl ?? ""),
    apiKey: init(() => ""),
  });
  const set = <K extends "enabled" | "baseUrl" | "apiKey">(k: K, p: Remote, v: (typeof form)[K][Remote]) =>
    setForm((f) => ({ ...f, [k]: { ...f[k], [p]: v } }));
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        void action.run(async () => {
          await save(settingsPayload(form, s.version));
          setSaved(true);
        });
      }}
    >
      <label>
        {t("knowledge.default")}
        <select name="defaultProvider" value={form.defaultProvider} onChange={(e) => setForm({ ...form, defaultProvider: e.target.value as Provider })}>
          {PROVIDERS.map((p) => <option key={p} value={p}>{p}</option>)}
        </select>
      </label>
      {(["openai", "maiagent", "dmflow"] as Remote[]).map((p) => (
        <fieldset key={p} className="row" data-testid="provider" data-provider={p}>
          <label className="inline"><input type="checkbox" name={`${p}-enabled`} checked={form.enabled[p]} onChange={(e) => set("enabled", p, e.target.checked)} />{p}</label>
          <label>{t("knowledge.baseUrl")}<input name={`${p}-baseUrl`} value={form.baseUrl[p]} onChange={(e) => set("baseUrl", p, e.target.value)} /></label>
          <label>
            {remote(s, p)?.apiKeySet ? t("knowledge.keySet", { masked: remote(s, p)?.apiKeyMasked ?? "••••" }) : t("knowledge.noKey")}
            <input type="password" name={`${p}-apiKey`} autoComplete="off" placeholder={t("knowledge.newKey")} value={form.apiKey[p]} onChange={(e) => set("apiKey", p, e.target.value)} />
          </label>
        </fieldset>
      ))}
      <button type="submit" disabled={action.busy}>{t("common.save")}</button>
      {saved && <span role="status" className="ok">{t("common.saved")}</span>}
      <ErrorLine error={action.error} />
    </form>
  );
}

function TestConnection() {
  const { t } = useI18n();
  const { api } = useSession();
  const [provider, setProvider] = useState<Provider>("local");
  const [result, setResult] = useState<{ ok: boolean; latencyMs: number; model?: string | null; reply?: string | null; error?: { code: string; message: string } | null } | null>(null);
  const action = useAction();
  return (
    <Panel title={t("knowledge.test")} id="ai-test">
      <form className="row" onSubmit={(e) => (e.preventDefault(), void action.run(async () => setResult(await api.call("test-ai-connection", { provider }))))}>
        <label>
          {t("knowledge.provider")}
          <select name="test-provider" value={provider} onChange={(e) => setProvider(e.target.value as Provider)}>
            {PROVIDERS.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </label>
        <button type="submit" disabled={action.busy}>{t("knowledge.testRun")}</button>
      </form>
      <ErrorLine error={action.error} />
      {result && (
        <p role="status" data-testid="ai-test-result" data-ok={String(result.ok)} className={result.ok ? "ok" : "error"}>
          {result.ok
            ? t("knowledge.testOk", { model: result.model ?? "—", ms: Math.round(result.latencyMs) })
            : t("knowledge.testFailed", { code: result.error?.code ?? "?", message: result.error?.message ?? "" })}
        </p>
      )}
    </Panel>
  );
}

function Usage() {
  const { t } = useI18n();
  const usage = useCommand("get-ai-usage", {}, ["ai-response-generated", "ai-provider-failed"]);
  const u = usage.data;
  return (
    <Panel title={t("knowledge.usage")} id="ai-usage">
      <ErrorLine error={usage.error} />
      <dl className="totals">
        {(["calls", "promptTokens", "completionTokens", "errors"] as const).map((k) => (
          <div key={k} data-testid={`usage-${k}`}><dt>{t(`knowledge.usage.${k}` as MessageKey)}</dt><dd>{u?.totals?.[k] ?? 0}</dd></div>
        ))}
      </dl>
      {(u?.rows ?? []).length > 0 && (
        <table>
          <thead><tr><th>{t("knowledge.day")}</th><th>{t("knowledge.provider")}</th><th>{t("knowledge.model")}</th><th>{t("knowledge.usage.calls")}</th><th>{t("knowledge.usage.promptTokens")}</th><th>{t("knowledge.usage.completionTokens")}</th><th>{t("knowledge.latency")}</th></tr></thead>
          <tbody>
            {u!.rows.map((r, i) => (
              <tr key={i}><td>{r.day}</td><td>{r.provider}</td><td>{r.model}</td><td>{r.calls}</td><td>{r.promptTokens}</td><td>{r.completionTokens}</td><td>{`${Math.round(r.latencyMsAvg ?? 0)} ms`}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}
