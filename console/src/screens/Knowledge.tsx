// Knowledge and AI: documents (upload with the indexing progress pushed live, removal), FAQ and
// text items (added, found, removed), search with citations, provider settings (every field of
// save-ai-settings — models, timeouts, DMflow's platform/branch/domains, embeddings, retrieval options
// — checked as the contract checks them, only the changed ones sent; API keys write-only: the gateway
// only ever shows them masked, a typed one replaces it, a ticked removal sends ""),
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
type T = (k: MessageKey, v?: Record<string, string | number>) => string;
const EMBEDDERS = ["none", "openai", "minilm"] as const;
type Embedder = (typeof EMBEDDERS)[number];
const REMOTES: Remote[] = ["openai", "maiagent", "dmflow"];

/** A provider's fields as the form holds them (numbers as typed); the key is only what was typed. */
interface SectionForm {
  enabled: boolean;
  baseUrl: string;
  apiKey: string;
  removeKey: boolean;
  timeoutSeconds: string;
  model: string;
  embeddingModel: string;
  chatbotId: string;
  platform: string;
  branch: string;
  faqId: string;
  tableqaId: string;
}
const RETRIEVAL = ["bestThreshold", "suggThreshold", "chunkSize", "chunkOverlap", "rrfK", "topK"] as const;
type RetrievalKey = (typeof RETRIEVAL)[number];
/** Each retrieval option's bounds and whether it is a whole number (RetrievalSettingsInput). */
const RETRIEVAL_BOUNDS: Record<RetrievalKey, { min: number; max: number; whole: boolean; fallback: number }> = {
  bestThreshold: { min: 0.1, max: 1, whole: false, fallback: 0.6 },
  suggThreshold: { min: 0.1, max: 1, whole: false, fallback: 0.3 },
  chunkSize: { min: 100, max: 4000, whole: true, fallback: 800 },
  chunkOverlap: { min: 0, max: 1000, whole: true, fallback: 120 },
  rrfK: { min: 1, max: 1000, whole: true, fallback: 60 },
  topK: { min: 1, max: 20, whole: true, fallback: 4 },
};
/** The text fields of each provider (besides base URL and key) and their longest length. */
const TEXTS: Record<Remote, { field: "model" | "embeddingModel" | "chatbotId" | "faqId" | "tableqaId"; max: number }[]> = {
  openai: [{ field: "model", max: 200 }, { field: "embeddingModel", max: 200 }],
  maiagent: [{ field: "chatbotId", max: 100 }],
  dmflow: [{ field: "faqId", max: 64 }, { field: "tableqaId", max: 64 }],
};
const DEFAULT_TIMEOUT: Record<Remote, number> = { openai: 30, maiagent: 60, dmflow: 30 };

export interface AiSettingsForm {
  defaultProvider: Provider;
  embeddingProvider: Embedder;
  openai: SectionForm;
  maiagent: SectionForm;
  dmflow: SectionForm;
  retrieval: Record<RetrievalKey, string>;
}

/** The form of the settings as read, with the view's defaults where a field is missing. */
export function settingsForm(s: Settings): AiSettingsForm {
  const section = (p: Remote): SectionForm => {
    const v = (s[p] ?? {}) as Record<string, any>;
    return {
      enabled: !!v.enabled, baseUrl: v.baseUrl ?? "", apiKey: "", removeKey: false,
      timeoutSeconds: String(v.timeoutSeconds ?? DEFAULT_TIMEOUT[p]), model: v.model ?? "", embeddingModel: v.embeddingModel ?? "",
      chatbotId: v.chatbotId ?? "", platform: v.platform ?? "api", branch: v.branch ?? "prod", faqId: v.faqId ?? "", tableqaId: v.tableqaId ?? "",
    };
  };
  const r = (s.retrieval ?? {}) as Record<string, number | undefined>;
  return {
    defaultProvider: (s.defaultProvider ?? "local") as Provider,
    embeddingProvider: (s.embeddingProvider ?? "none") as Embedder,
    openai: section("openai"), maiagent: section("maiagent"), dmflow: section("dmflow"),
    retrieval: Object.fromEntries(RETRIEVAL.map((k) => [k, String(r[k] ?? RETRIEVAL_BOUNDS[k].fallback)])) as Record<RetrievalKey, string>,
  };
}

const numeric = (v: string) => (v.trim() === "" ? NaN : Number(v));

/** The save-ai-settings payload: only the fields that changed from `was` (a cleared text null), a key
 * only when one was typed or its removal ticked (write-only); null when nothing changed. */
export function settingsPayload(form: AiSettingsForm, was: AiSettingsForm, version: number | undefined) {
  const out: Record<string, unknown> = {};
  if (form.defaultProvider !== was.defaultProvider) out.defaultProvider = form.defaultProvider;
  if (form.embeddingProvider !== was.embeddingProvider) out.embeddingProvider = form.embeddingProvider;
  for (const p of REMOTES) {
    const f = form[p];
    const w = was[p];
    const change: Record<string, unknown> = {};
    if (f.enabled !== w.enabled) change.enabled = f.enabled;
    if (f.baseUrl.trim() !== w.baseUrl.trim()) change.baseUrl = f.baseUrl.trim() || null;
    if (f.apiKey) change.apiKey = f.apiKey;
    else if (f.removeKey) change.apiKey = "";
    if (numeric(f.timeoutSeconds) !== numeric(w.timeoutSeconds)) change.timeoutSeconds = numeric(f.timeoutSeconds);
    for (const { field } of TEXTS[p]) if (f[field].trim() !== w[field].trim()) change[field] = f[field].trim() || null;
    if (p === "dmflow") for (const k of ["platform", "branch"] as const) if (f[k] !== w[k]) change[k] = f[k];
    if (Object.keys(change).length) out[p] = change;
  }
  const retrieval: Record<string, number> = {};
  for (const k of RETRIEVAL) if (numeric(form.retrieval[k]) !== numeric(was.retrieval[k])) retrieval[k] = numeric(form.retrieval[k]);
  if (Object.keys(retrieval).length) out.retrieval = retrieval;
  if (!Object.keys(out).length) return null;
  return { ...out, expectedVersion: version ?? null };
}

function isHttpUrl(value: string) {
  if (!/^https?:\/\//.test(value) || /[\s\u0000-\u001f\u007f]/.test(value)) return false;
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && !!u.hostname;
  } catch {
    return false;
  }
}

const FIELD_LABEL: Record<string, MessageKey> = {
  baseUrl: "knowledge.baseUrl", model: "knowledge.ai.model", embeddingModel: "knowledge.ai.embeddingModel", chatbotId: "knowledge.ai.chatbotId",
  faqId: "knowledge.ai.faqId", tableqaId: "knowledge.ai.tableqaId", timeoutSeconds: "knowledge.ai.timeout", apiKey: "knowledge.ai.key",
  bestThreshold: "knowledge.ai.bestThreshold", suggThreshold: "knowledge.ai.suggThreshold", chunkSize: "knowledge.ai.chunkSize",
  chunkOverlap: "knowledge.ai.chunkOverlap", rrfK: "knowledge.ai.rrfK", topK: "knowledge.ai.topK",
};

/** What save-ai-settings would refuse (its input contract and the service's checks), named first. */
export function settingsProblems(f: AiSettingsForm, minilm: boolean, t: T): string[] {
  const p: string[] = [];
  const where = (section: string, field: string) => `${section} · ${t(FIELD_LABEL[field])}`;
  for (const r of REMOTES) {
    const s = f[r];
    const url = s.baseUrl.trim();
    if (url && (url.length > 500 || !isHttpUrl(url))) p.push(t("knowledge.ai.p.url", { field: where(r, "baseUrl") }));
    if (!url && r === "maiagent") p.push(t("knowledge.ai.p.required", { field: where(r, "baseUrl") }));
    if (s.apiKey.length > 500) p.push(t("knowledge.ai.p.long", { field: where(r, "apiKey"), max: 500 }));
    const timeout = numeric(s.timeoutSeconds);
    if (!(timeout > 0 && timeout <= 300)) p.push(t("knowledge.ai.p.timeout", { field: where(r, "timeoutSeconds") }));
    for (const { field, max } of TEXTS[r]) if ([...s[field].trim()].length > max) p.push(t("knowledge.ai.p.long", { field: where(r, field), max }));
  }
  const ret = t("knowledge.ai.retrieval");
  const n = Object.fromEntries(RETRIEVAL.map((k) => [k, numeric(f.retrieval[k])])) as Record<RetrievalKey, number>;
  for (const k of RETRIEVAL) {
    const { min, max, whole } = RETRIEVAL_BOUNDS[k];
    if (!(n[k] >= min && n[k] <= max) || (whole && !Number.isInteger(n[k])))
      p.push(t(whole ? "knowledge.ai.p.whole" : "knowledge.ai.p.number", { field: where(ret, k), min, max }));
  }
  if (n.suggThreshold > n.bestThreshold) p.push(t("knowledge.ai.p.sugg"));
  if (n.chunkOverlap >= n.chunkSize) p.push(t("knowledge.ai.p.overlap"));
  if (f.embeddingProvider === "minilm" && !minilm) p.push(t("knowledge.ai.p.minilm"));
  return p;
}

function ProviderSettings() {
  const { t } = useI18n();
  const { api, can } = useSession();
  const settings = useCommand("get-ai-settings", {}, ["ai-settings-changed"]);
  const s = settings.data;
  return (
    <Panel title={t("knowledge.providers")} id="ai-settings">
      <ErrorLine error={settings.error} />
      {s && (can("save-ai-settings") ? <SettingsForm key={s.version ?? 0} s={s} save={(p) => api.call("save-ai-settings", p as never)} /> : <SettingsView s={s} />)}
    </Panel>
  );
}

const remote = (s: Settings, p: Remote) => s[p] as { enabled?: boolean; baseUrl?: string | null; apiKeySet?: boolean; apiKeyMasked?: string | null } | undefined;

function SettingsView({ s }: { s: Settings }) {
  const { t } = useI18n();
  const f = settingsForm(s);
  return (
    <table>
      <tbody>
        <tr><th>{t("knowledge.default")}</th><td>{f.defaultProvider}</td></tr>
        <tr><th>{t("knowledge.ai.embedding")}</th><td>{f.embeddingProvider}</td></tr>
        {REMOTES.map((p) => (
          <tr key={p} data-testid="provider" data-provider={p}>
            <th>{p}</th>
            <td>{remote(s, p)?.enabled ? t("common.yes") : t("common.no")}</td>
            <td>{remote(s, p)?.apiKeySet ? remote(s, p)?.apiKeyMasked ?? "••••" : t("knowledge.noKey")}</td>
            <td>{[...TEXTS[p].map(({ field }) => f[p][field]).filter(Boolean), `${f[p].timeoutSeconds} s`].join(" · ")}</td>
          </tr>
        ))}
        <tr data-testid="retrieval"><th>{t("knowledge.ai.retrieval")}</th><td colSpan={3}>{RETRIEVAL.map((k) => `${t(FIELD_LABEL[k])}: ${f.retrieval[k]}`).join(" · ")}</td></tr>
      </tbody>
    </table>
  );
}

function SettingsForm({ s, save }: { s: Settings; save: (p: NonNullable<ReturnType<typeof settingsPayload>>) => Promise<unknown> }) {
  const { t } = useI18n();
  const action = useAction();
  const [status, setStatus] = useState("");
  const [problems, setProblems] = useState<string[]>([]);
  const [was] = useState(() => settingsForm(s));
  const [form, setForm] = useState(was);
  const set = <K extends keyof SectionForm>(p: Remote, k: K, v: SectionForm[K]) => setForm((f) => ({ ...f, [p]: { ...f[p], [k]: v } }));
  const setRetrieval = (k: RetrievalKey, v: string) => setForm((f) => ({ ...f, retrieval: { ...f.retrieval, [k]: v } }));
  const text = (p: Remote, k: "baseUrl" | "model" | "embeddingModel" | "chatbotId" | "faqId" | "tableqaId") => (
    <label>{t(FIELD_LABEL[k])}<input name={`${p}-${k}`} value={form[p][k]} onChange={(e) => set(p, k, e.target.value)} /></label>
  );
  const choice = (p: Remote, k: "platform" | "branch", values: readonly string[]) => (
    <label>{t(`knowledge.ai.${k}` as MessageKey)}
      <select name={`${p}-${k}`} value={form[p][k]} onChange={(e) => set(p, k, e.target.value)}>
        {values.map((v) => <option key={v} value={v}>{v}</option>)}
      </select>
    </label>
  );
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setStatus("");
        const p = settingsProblems(form, !!s.minilmAvailable, t);
        setProblems(p);
        if (p.length) return;
        const payload = settingsPayload(form, was, s.version);
        if (!payload) return setStatus(t("knowledge.ai.nothing"));
        void action.run(async () => {
          await save(payload);
          setStatus(t("common.saved"));
        });
      }}
    >
      {problems.length > 0 && (
        <ul className="error" role="alert" data-testid="settings-problems">
          {problems.map((p) => <li key={p}>{p}</li>)}
        </ul>
      )}
      <div className="row">
        <label>
          {t("knowledge.default")}
          <select name="defaultProvider" value={form.defaultProvider} onChange={(e) => setForm({ ...form, defaultProvider: e.target.value as Provider })}>
            {PROVIDERS.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </label>
        <label>
          {t("knowledge.ai.embedding")}
          <select name="embeddingProvider" value={form.embeddingProvider} onChange={(e) => setForm({ ...form, embeddingProvider: e.target.value as Embedder })}>
            {EMBEDDERS.map((p) => <option key={p} value={p}>{t(`knowledge.ai.embedding.${p}` as MessageKey)}</option>)}
          </select>
        </label>
      </div>
      {REMOTES.map((p) => (
        <fieldset key={p} className="row" data-testid="provider" data-provider={p}>
          <label className="inline"><input type="checkbox" name={`${p}-enabled`} checked={form[p].enabled} onChange={(e) => set(p, "enabled", e.target.checked)} />{p}</label>
          {text(p, "baseUrl")}
          <label>
            {remote(s, p)?.apiKeySet ? t("knowledge.keySet", { masked: remote(s, p)?.apiKeyMasked ?? "••••" }) : t("knowledge.noKey")}
            <input type="password" name={`${p}-apiKey`} autoComplete="off" placeholder={t("knowledge.newKey")} value={form[p].apiKey} onChange={(e) => set(p, "apiKey", e.target.value)} />
          </label>
          {remote(s, p)?.apiKeySet && (
            <label className="inline">
              <input type="checkbox" name={`${p}-removeKey`} checked={form[p].removeKey} disabled={!!form[p].apiKey} onChange={(e) => set(p, "removeKey", e.target.checked)} />
              {t("knowledge.ai.removeKey")}
            </label>
          )}
          {TEXTS[p].map(({ field }) => <span key={field}>{text(p, field)}</span>)}
          {p === "dmflow" && (
            <>
              {choice(p, "platform", ["api", "line", "messenger", "telegram"])}
              {choice(p, "branch", ["prod", "dev"])}
            </>
          )}
          <label>{t("knowledge.ai.timeout")}
            <input type="number" name={`${p}-timeoutSeconds`} min={0} max={300} step="any" value={form[p].timeoutSeconds} onChange={(e) => set(p, "timeoutSeconds", e.target.value)} />
          </label>
        </fieldset>
      ))}
      <fieldset className="row" data-testid="retrieval">
        <legend>{t("knowledge.ai.retrieval")}</legend>
        {RETRIEVAL.map((k) => (
          <label key={k}>{t(FIELD_LABEL[k])}
            <input type="number" name={`retrieval-${k}`} min={RETRIEVAL_BOUNDS[k].min} max={RETRIEVAL_BOUNDS[k].max} step={RETRIEVAL_BOUNDS[k].whole ? 1 : "any"}
              value={form.retrieval[k]} onChange={(e) => setRetrieval(k, e.target.value)} />
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={action.busy}>{t("common.save")}</button>
      {status && <span role="status" className="ok">{status}</span>}
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
