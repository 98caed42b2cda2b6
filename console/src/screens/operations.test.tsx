// The second slice's screens (Leads, Knowledge and AI, Analytics, System) against a fake gateway,
// and the client's who-am-I and WebSocket first-frame authentication.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { Api } from "../api/client";
import { Live } from "../api/live";
import { translator } from "../i18n";
import { fakeGateway, mount } from "../testing";
import { Analytics, checkCron, defaultZone, polylines, recipientError, windowOf } from "./Analytics";
import { citation, fileBase64, Knowledge, settingsForm, settingsPayload } from "./Knowledge";
import { Leads, timeline } from "./Leads";
import { fromDraft, parseSection, toDraft } from "./SettingsForm";
import { System } from "./System";

afterEach(cleanup);
const t = translator("en");
const at = "2026-01-01T00:00:00Z";

const lead = (id: string, stage: string, extra: object = {}) => ({
  id, stage, firstName: `Lead ${id}`, sourceType: "keyword", intentLevel: "warm", tags: [], createdAt: at, updatedAt: at,
  blacklisted: false, doNotContact: false, messageCount: 0, customFields: {}, ...extra,
});
const LEADS = {
  "get-leads": { items: [lead("l1", "new"), lead("l2", "replied"), lead("l3", "new", { blacklisted: true, username: "spam" })] },
  "get-funnel-stats": { total: 3, conversionRate: 0.25, stages: [{ stage: "new", count: 2, reached: 3 }] },
  "update-lead-stage": lead("l1", "contacted"),
  "blacklist-user": { blacklisted: true, changedAt: at },
};

test("the funnel board puts each lead in its stage; dragging a card moves it", async () => {
  const gw = mount(<Leads />, "operator", LEADS);
  const card = await screen.findByText("Lead l1");
  const board = screen.getByTestId("funnel");
  const stageOf = (name: string) => board.querySelector(`[data-stage="${name}"]`) as HTMLElement;
  expect(within(stageOf("new")).getByText("Lead l1")).toBeTruthy();
  expect(within(stageOf("replied")).getByText("Lead l2")).toBeTruthy();
  expect(within(board).queryByText("Lead l3")).toBeNull(); // blacklisted: on the blacklist instead
  expect(within(screen.getByTestId("blacklist")).getByText("Lead l3")).toBeTruthy();
  const data = new Map<string, string>();
  const dataTransfer = { setData: (k: string, v: string) => data.set(k, v), getData: (k: string) => data.get(k) ?? "" };
  fireEvent.dragStart(card.closest("article")!, { dataTransfer });
  fireEvent.dragOver(stageOf("contacted"), { dataTransfer });
  fireEvent.drop(stageOf("contacted"), { dataTransfer });
  await waitFor(() => expect(gw.calls.find((c) => c.command === "update-lead-stage")?.body).toMatchObject({ leadId: "l1", stage: "contacted" }));
  // The keyboard way: the card's own stage menu.
  fireEvent.change(within(stageOf("replied")).getByRole("combobox"), { target: { value: "closed_won" } });
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "update-lead-stage").at(-1)?.body).toMatchObject({ leadId: "l2", stage: "closed_won" }));
  fireEvent.change(screen.getByRole("textbox", { name: "Username or user id" }), { target: { value: "@mallory" } });
  fireEvent.click(within(screen.getByTestId("blacklist")).getByRole("button", { name: "Blacklist" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "blacklist-user")?.body).toMatchObject({ username: "mallory", blacklist: true }));
});

test("a viewer's board has no stage menus, no dragging and no blacklist form", async () => {
  mount(<Leads />, "viewer", LEADS);
  const card = await screen.findByText("Lead l1");
  expect(card.closest("article")!.getAttribute("draggable")).toBe("false");
  expect(within(screen.getByTestId("funnel")).queryByRole("combobox")).toBeNull();
  expect(screen.queryByRole("button", { name: "Blacklist" })).toBeNull();
  expect(screen.queryByRole("button", { name: "Remove from blacklist" })).toBeNull();
});

test("a lead's timeline merges stage changes and messages, newest first", () => {
  const items = timeline(
    {
      id: "l1", createdAt: at, updatedAt: at,
      stageHistory: [{ at: "2026-01-01T10:00:00Z", fromStage: "new", toStage: "contacted", by: "console", reason: null }],
      recentMessages: [{ id: "m", accountId: "a", date: "2026-01-01T11:00:00Z", direction: "in", text: "how much?", source: "telegram", peer: { kind: "user" } }],
    } as never,
    t as never,
  );
  expect(items.map((i) => [i.kind, i.text])).toEqual([["in", "how much?"], ["stage", "new → contacted by console"]]);
});

const AI_SETTINGS = {
  defaultProvider: "local", version: 3,
  openai: { enabled: true, apiKeySet: true, apiKeyMasked: "sk-…abcd", baseUrl: null, timeoutSeconds: 30 },
  maiagent: { enabled: false, apiKeySet: false, baseUrl: "https://api.maiagent.ai", timeoutSeconds: 30 },
  dmflow: { enabled: false, apiKeySet: false, baseUrl: null, timeoutSeconds: 30 },
};
const KNOWLEDGE = {
  "rag-get-status": { documents: [{ documentId: "d1", title: "Prices", state: "processing", progress: 0.4, chunks: 2, createdAt: at, bytes: 1, chars: 1, scope: "default" }], totalDocuments: 1, totalChunks: 2, denseReady: false, embeddingProvider: "none" },
  "get-ai-settings": AI_SETTINGS,
  "get-ai-usage": { totals: { calls: 4, promptTokens: 100, completionTokens: 50, errors: 0, latencyMsAvg: 3 }, rows: [], byProvider: {}, since: at, until: at },
  "search-knowledge": {
    query: "price", tookMs: 1, faq: null,
    hits: [{ score: 0.91, item: { id: "k1", type: "document", scope: "default", tags: [], createdAt: at }, citation: { knowledgeId: "k1", title: "Prices", page: 2, source: "prices.pdf", snippet: "The plan costs 10 USD." } }],
  },
  "test-ai-connection": { ok: true, provider: "local", model: "local-extractive", latencyMs: 4.2 },
};

test("documents show indexing progress; search shows each hit's citation; the test runs", async () => {
  const gw = mount(<Knowledge />, "operator", KNOWLEDGE);
  const doc = await screen.findByText("Prices");
  expect(doc.closest("tr")!.textContent).toContain("40%");
  fireEvent.change(screen.getByRole("searchbox", { name: "Question or words" }), { target: { value: "price" } });
  fireEvent.submit(screen.getByRole("searchbox", { name: "Question or words" }).closest("form")!);
  expect((await screen.findByTestId("citation")).textContent).toBe("Prices · page 2 · prices.pdf");
  expect(screen.getByTestId("hit").textContent).toContain("The plan costs 10 USD.");
  fireEvent.click(screen.getByRole("button", { name: "Test" }));
  expect((await screen.findByTestId("ai-test-result")).textContent).toBe("Connected: local-extractive, 4 ms");
  expect(gw.calls.find((c) => c.command === "test-ai-connection")?.body).toEqual({ provider: "local" });
  // An operator may upload and test, but provider settings are the admin's: shown, not editable.
  expect(screen.getByRole("button", { name: "Upload" })).toBeTruthy();
  expect(document.querySelector('input[type="password"]')).toBeNull();
  expect(screen.getByTestId("ai-settings").textContent).toContain("sk-…abcd");
});

test("provider keys are write-only: an empty key field is never sent, a typed one is", async () => {
  const gw = mount(<Knowledge />, "admin", { ...KNOWLEDGE, "save-ai-settings": AI_SETTINGS });
  const panel = await screen.findByTestId("ai-settings");
  // The form appears once get-ai-settings has answered.
  const key = await waitFor(() => {
    const k = panel.querySelector('input[name="maiagent-apiKey"]') as HTMLInputElement | null;
    if (!k) throw new Error("no key field yet");
    return k;
  });
  expect(key.value).toBe("");
  fireEvent.change(key, { target: { value: "mai-secret" } });
  fireEvent.click(within(screen.getByTestId("ai-settings")).getByRole("button", { name: "Save" }));
  await waitFor(() => expect(gw.calls.some((c) => c.command === "save-ai-settings")).toBe(true));
  const body = gw.calls.find((c) => c.command === "save-ai-settings")!.body;
  // Only what changed: the typed key; the other providers (no key typed) are not sent at all.
  expect(body).toEqual({ maiagent: { apiKey: "mai-secret" }, expectedVersion: 3 });
  const form = settingsForm(AI_SETTINGS as never);
  expect(settingsPayload(form, form, 1)).toBeNull();
  expect(JSON.stringify(settingsPayload({ ...form, defaultProvider: "openai" }, form, 1))).not.toContain("apiKey");
});

/** The admin's provider form once get-ai-settings has answered, and a typer scoped to it. */
async function aiForm(extra: Record<string, unknown> = {}) {
  const gw = mount(<Knowledge />, "admin", { ...KNOWLEDGE, "save-ai-settings": AI_SETTINGS, ...extra });
  const panel = await screen.findByTestId("ai-settings");
  await waitFor(() => expect(panel.querySelector('input[name="openai-model"]')).not.toBeNull());
  const field = (name: string) => panel.querySelector(`[name="${name}"]`) as HTMLInputElement;
  const type = (name: string, value: string) => fireEvent.change(field(name), { target: { value } });
  const save = () => fireEvent.click(within(panel).getByRole("button", { name: "Save" }));
  return { gw, panel, field, type, save, saves: () => gw.calls.filter((c) => c.command === "save-ai-settings") };
}

test("provider models, timeouts, domains and retrieval options are sent, only those changed, a cleared one null", async () => {
  const { panel, field, type, save, saves } = await aiForm();
  expect(field("openai-timeoutSeconds").value).toBe("30");
  expect(field("maiagent-baseUrl").value).toBe("https://api.maiagent.ai");
  expect(field("retrieval-topK").value).toBe("4"); // the contract's default where the view has none
  // Nothing changed: nothing sent.
  save();
  expect((await within(panel).findByRole("status")).textContent).toBe("Nothing changed.");
  expect(saves()).toHaveLength(0);
  type("embeddingProvider", "openai");
  type("openai-model", " gpt-4o-mini ");
  type("openai-embeddingModel", "text-embedding-3-small");
  type("openai-timeoutSeconds", "45.5");
  fireEvent.click(field("openai-removeKey"));
  type("maiagent-chatbotId", "bot-7");
  type("maiagent-timeoutSeconds", "30"); // as it was: not sent
  type("dmflow-platform", "line");
  type("dmflow-branch", "dev");
  type("dmflow-faqId", "faq-1");
  type("dmflow-baseUrl", "https://dmflow.example.com/api");
  type("retrieval-topK", "6");
  type("retrieval-chunkOverlap", "200");
  type("retrieval-bestThreshold", "0.7");
  save();
  await waitFor(() => expect(saves()).toHaveLength(1));
  expect(saves()[0].body).toEqual({
    embeddingProvider: "openai",
    openai: { model: "gpt-4o-mini", embeddingModel: "text-embedding-3-small", timeoutSeconds: 45.5, apiKey: "" },
    maiagent: { chatbotId: "bot-7" },
    dmflow: { baseUrl: "https://dmflow.example.com/api", platform: "line", branch: "dev", faqId: "faq-1" },
    retrieval: { bestThreshold: 0.7, chunkOverlap: 200, topK: 6 },
    expectedVersion: 3,
  });
  expect(JSON.stringify(saves()[0].body)).not.toContain("sk-");
  cleanup();
  // A text cleared is sent as null (the stored value removed).
  const again = await aiForm({ "get-ai-settings": { ...AI_SETTINGS, openai: { ...AI_SETTINGS.openai, model: "gpt-4o", baseUrl: "https://api.openai.com/v1" } } });
  again.type("openai-model", "");
  again.type("openai-baseUrl", " ");
  again.save();
  await waitFor(() => expect(again.saves()).toHaveLength(1));
  expect(again.saves()[0].body).toEqual({ openai: { model: null, baseUrl: null }, expectedVersion: 3 });
});

test("provider fields the contract refuses are named, each with its provider, and nothing is sent", async () => {
  const { panel, type, save, saves } = await aiForm();
  type("embeddingProvider", "minilm");
  type("openai-baseUrl", "ftp://example.com");
  type("openai-timeoutSeconds", "0");
  type("openai-model", "m".repeat(201));
  type("maiagent-baseUrl", "");
  type("dmflow-timeoutSeconds", "301");
  type("dmflow-tableqaId", "t".repeat(65));
  type("retrieval-bestThreshold", "0.05");
  type("retrieval-suggThreshold", "0.5");
  type("retrieval-chunkSize", "150.5");
  type("retrieval-rrfK", "");
  type("retrieval-chunkOverlap", "900");
  save();
  const problems = await within(panel).findByTestId("settings-problems");
  expect(Array.from(problems.querySelectorAll("li")).map((li) => li.textContent)).toEqual([
    "openai · Base URL: give an absolute http(s) URL with a host, up to 500 characters.",
    "openai · Timeout (seconds, up to 300): give a number of seconds more than 0, at most 300.",
    "openai · Chat model: at most 200 characters.",
    "maiagent · Base URL: cannot be left empty.",
    "dmflow · Timeout (seconds, up to 300): give a number of seconds more than 0, at most 300.",
    "dmflow · Table-QA domain id: at most 64 characters.",
    "Retrieval · Best-answer threshold (0.1–1): give a number from 0.1 to 1.",
    "Retrieval · Chunk size (characters): give a whole number from 100 to 4000.",
    "Retrieval · Rank-fusion constant: give a whole number from 1 to 1000.",
    "Retrieval: the suggestion threshold must not exceed the best-answer threshold.",
    "Retrieval: the chunk overlap must be smaller than the chunk size.",
    "MiniLM embeddings need the optional package (tgm-ai[minilm]), which is not installed.",
  ]);
  expect(saves()).toHaveLength(0);
});

test("a file is sent as base64, and a citation without a page names what it has", async () => {
  expect(await fileBase64(new Blob(["héllo"]))).toBe(btoa(unescape(encodeURIComponent("héllo"))));
  expect(citation({ score: 1, item: { question: "Q?" }, citation: { knowledgeId: "k" } } as never, t as never)).toBe("Q?");
});

const bucketed = (keys: string[]) => [0, 1, 2].map((i) => ({ start: `2026-01-0${i + 1}T00:00:00Z`, ...Object.fromEntries(keys.map((k) => [k, i * 2])) }));
const win = { bucket: "day", since: at, until: at, timezone: "UTC" };
const ANALYTICS = {
  "get-dashboard-stats": { generatedAt: at, window: win, accounts: { total: 3, connected: 2, byState: {} }, ai: { replies: 7, handoffs: 0, tokens: 0 }, leads: { total: 9, new: 4, converted: 1 }, messages: { sent: 12, received: 5, failed: 1, floodWaits: 0, repliesReceived: 3, replyRate: 0.25 }, unresolvedAlerts: 2 },
  "get-message-stats": { window: win, totals: {}, buckets: bucketed(["sent", "received", "failed", "floodWaits"]) },
  "get-user-stats": { window: win, totals: {}, buckets: bucketed(["newUsers", "activeUsers", "repliedUsers"]) },
  "get-group-stats": { window: win, totals: {}, buckets: bucketed(["messages", "keywordMatches", "leads", "membersJoined"]) },
  "get-conversion-stats": { window: win, leads: 0, converted: 0, stages: [], buckets: bucketed(["leads", "contacted", "replied", "converted"]) },
  "export-report": { filename: "messages.csv", format: "csv", mimeType: "text/csv", rows: 3, sizeBytes: 4, generatedAt: at, contentBase64: btoa("a,b\n") },
  "schedule-report": { action: "list", schedules: [{ id: "s1", name: "daily", report: "dashboard", format: "csv", intervalSeconds: 86400, enabled: true, window: "previous_day", bucket: "day", filters: {}, recipients: [], timezone: "UTC", createdAt: at, nextRunAt: at }] },
};

test("the dashboard and four charts; the range changes what is asked; export downloads", async () => {
  URL.createObjectURL = vi.fn(() => "blob:x");
  URL.revokeObjectURL = vi.fn();
  const gw = mount(<Analytics />, "operator", ANALYTICS);
  await waitFor(() => expect(screen.getByTestId("fig-sent").textContent).toBe("Sent12"));
  expect(screen.getByTestId("fig-replyRate").textContent).toBe("Reply rate25%");
  expect(screen.getByTestId("chart-messages-sent").dataset.total).toBe("6");
  expect(screen.getByTestId("chart-conversions-converted").dataset.total).toBe("6");
  expect(document.querySelectorAll("svg.chart polyline").length).toBe(13);
  fireEvent.change(screen.getByRole("combobox", { name: "Range" }), { target: { value: "24h" } });
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "get-message-stats").at(-1)?.body.bucket).toBe("hour"));
  fireEvent.click(screen.getByRole("button", { name: "Download" }));
  expect((await screen.findByTestId("exported")).textContent).toBe("messages.csv: 3 rows downloaded.");
  expect(URL.createObjectURL).toHaveBeenCalled();
  expect(screen.getByTestId("schedule").textContent).toContain("24 h");
});

test("a viewer sees charts but no schedules (listing them is an operator command)", async () => {
  const gw = mount(<Analytics />, "viewer", ANALYTICS);
  await screen.findByText("Sent");
  expect(screen.queryByTestId("schedules")).toBeNull();
  expect(gw.calls.some((c) => c.command === "schedule-report")).toBe(false);
});

test("chart lines are scaled to the largest value; a range's window starts that long ago", () => {
  const { max, lines } = polylines([{ start: "a", v: 0 }, { start: "b", v: 10 }] as never, ["v"]);
  expect(max).toBe(10);
  expect(lines[0]).toBe("28.0,132.0 432.0,28.0");
  const w = windowOf("24h", Date.parse("2026-01-02T00:00:30Z"));
  expect(w).toMatchObject({ since: "2026-01-01T00:00:00.000Z", bucket: "hour" });
});

const saved = {
  id: "s2", name: "weekly sales", report: "messages", format: "xlsx", cron: "0 8 * * mon", intervalSeconds: null, enabled: true,
  window: "previous_week", bucket: "day", filters: { accountId: "acc-1", chatId: -100123 }, timezone: "Asia/Taipei", createdAt: at, nextRunAt: at,
  recipients: [{ kind: "webhook", target: "https://hooks.example.com/r" }, { kind: "telegram", target: "@boss", accountId: "acc-1" }],
};
const SCHEDULES = {
  ...ANALYTICS,
  "get-accounts": { items: [{ id: "acc-1", phone: "+15550001", label: "main" }, { id: "acc-2", phone: "+15550002" }] },
  "schedule-report": (body: { action: string }) =>
    body.action === "run" ? { action: "run", schedule: saved, reportId: "rp-7" } : { action: body.action, schedules: [ANALYTICS["schedule-report"].schedules[0], saved] },
};
const scheduleCalls = (gw: ReturnType<typeof mount>) => gw.calls.filter((c) => c.command === "schedule-report" && c.body.action !== "list").map((c) => c.body);

async function scheduleForm() {
  const panel = await screen.findByTestId("schedules");
  await within(panel).findAllByTestId("schedule");
  return { panel: within(panel), form: within(screen.getByTestId("schedule-form")) };
}
/** Choose an account once the accounts have loaded. */
async function chooseAccount(select: HTMLElement, id: string) {
  await waitFor(() => expect(select.querySelector(`option[value="${id}"]`)).not.toBeNull());
  fireEvent.change(select, { target: { value: id } });
}
const recipientRow = (i: number) => within(screen.getAllByTestId("recipient")[i]);

test("a new schedule sends every field: a cron, the filters its report takes, recipients of the three kinds", async () => {
  const gw = mount(<Analytics />, "operator", SCHEDULES);
  const { form } = await scheduleForm();
  expect((form.getByRole("textbox", { name: "Timezone (IANA)" }) as HTMLInputElement).value).toBe(defaultZone());
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: " weekday sends " } });
  fireEvent.change(form.getByRole("combobox", { name: "Report" }), { target: { value: "messages" } });
  fireEvent.change(form.getByRole("combobox", { name: "Format" }), { target: { value: "json" } });
  fireEvent.change(form.getByRole("combobox", { name: "Window" }), { target: { value: "last_7d" } });
  expect((form.getByRole("combobox", { name: "Buckets" }) as HTMLSelectElement).value).toBe("day"); // the window's own bucket
  fireEvent.change(form.getByRole("combobox", { name: "Runs" }), { target: { value: "cron" } });
  fireEvent.change(form.getByRole("textbox", { name: "Cron (minute hour day month weekday)" }), { target: { value: " 0  8 * * mon-fri " } });
  fireEvent.change(form.getByRole("textbox", { name: "Timezone (IANA)" }), { target: { value: "Asia/Taipei" } });
  await chooseAccount(form.getByRole("combobox", { name: "Account" }), "acc-2");
  fireEvent.change(form.getByRole("textbox", { name: "Chat id" }), { target: { value: "-100123" } });
  for (let i = 0; i < 3; i++) fireEvent.click(form.getByRole("button", { name: "Add recipient" }));
  fireEvent.change(recipientRow(0).getByRole("textbox", { name: "URL" }), { target: { value: "https://hooks.example.com/r" } });
  fireEvent.change(recipientRow(1).getByRole("combobox", { name: "Send by" }), { target: { value: "telegram" } });
  fireEvent.change(recipientRow(1).getByRole("textbox", { name: "Peer" }), { target: { value: "@boss" } });
  await chooseAccount(recipientRow(1).getByRole("combobox", { name: "Sending account" }), "acc-1");
  fireEvent.change(recipientRow(2).getByRole("combobox", { name: "Send by" }), { target: { value: "tailchat" } });
  fireEvent.change(recipientRow(2).getByRole("textbox", { name: "Converse" }), { target: { value: "app1/g1/p1" } });
  expect(recipientRow(2).queryByRole("combobox", { name: "Sending account" })).toBeNull(); // only telegram has a sender
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  await waitFor(() => expect(scheduleCalls(gw)).toEqual([{
    action: "save", name: "weekday sends", report: "messages", format: "json", cron: "0 8 * * mon-fri", timezone: "Asia/Taipei",
    window: "last_7d", bucket: "day", filters: { accountId: "acc-2", chatId: -100123 }, enabled: true,
    recipients: [
      { kind: "webhook", target: "https://hooks.example.com/r" },
      { kind: "telegram", target: "@boss", accountId: "acc-1" },
      { kind: "tailchat", target: "app1/g1/p1" },
    ],
  }]));
  await waitFor(() => expect((form.getByRole("textbox", { name: "Name" }) as HTMLInputElement).value).toBe("")); // saved: the form is new again
  expect(screen.queryAllByTestId("recipient")).toHaveLength(0);
});

test("an interval in minutes, hours or days; the default schedule is the e2e's", async () => {
  const gw = mount(<Analytics />, "operator", SCHEDULES);
  const { form } = await scheduleForm();
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "daily" } });
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  await waitFor(() => expect(scheduleCalls(gw)).toHaveLength(1));
  expect(scheduleCalls(gw)[0]).toEqual({
    action: "save", name: "daily", report: "dashboard", format: "csv", intervalSeconds: 86400, timezone: defaultZone(),
    window: "previous_day", bucket: "hour", filters: {}, recipients: [], enabled: true,
  });
  await waitFor(() => expect((form.getByRole("textbox", { name: "Name" }) as HTMLInputElement).value).toBe(""));
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "often" } });
  fireEvent.change(form.getByRole("spinbutton", { name: "Every" }), { target: { value: "15" } });
  fireEvent.change(form.getByRole("combobox", { name: "Unit" }), { target: { value: "minutes" } });
  fireEvent.change(form.getByRole("textbox", { name: "Timezone (IANA)" }), { target: { value: "UTC" } });
  fireEvent.click(form.getByRole("checkbox", { name: "Enabled" }));
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  await waitFor(() => expect(scheduleCalls(gw)).toHaveLength(2));
  expect(scheduleCalls(gw)[1]).toEqual({
    action: "save", name: "often", report: "dashboard", format: "csv", intervalSeconds: 900, timezone: "UTC",
    window: "previous_day", bucket: "hour", filters: {}, recipients: [], enabled: false,
  });
});

test("the account, campaign and chat filters are offered only for the reports that take them", async () => {
  const gw = mount(<Analytics />, "operator", SCHEDULES);
  const { form } = await scheduleForm();
  const shown = () => ["Account", "Campaign id", "Chat id"].filter((name) => form.queryByRole(name === "Account" ? "combobox" : "textbox", { name }));
  const report = (r: string) => fireEvent.change(form.getByRole("combobox", { name: "Report" }), { target: { value: r } });
  expect(shown()).toEqual([]);
  expect(screen.getByTestId("no-filters").textContent).toBe("This report takes no account, campaign or chat filter.");
  for (const [r, filters] of [["messages", ["Account", "Campaign id", "Chat id"]], ["users", ["Account", "Campaign id", "Chat id"]], ["conversions", ["Account", "Campaign id", "Chat id"]], ["groups", ["Account", "Chat id"]], ["alerts", ["Account"]], ["performance", []]] as const) {
    report(r);
    expect([r, shown()]).toEqual([r, filters]);
  }
  // A filter typed for a report that takes it is not sent for one that does not.
  report("messages");
  fireEvent.change(form.getByRole("textbox", { name: "Campaign id" }), { target: { value: "c1" } });
  fireEvent.change(form.getByRole("textbox", { name: "Chat id" }), { target: { value: "42" } });
  report("alerts");
  expect(screen.queryByTestId("no-filters")).toBeNull();
  await chooseAccount(form.getByRole("combobox", { name: "Account" }), "acc-1");
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "alerts" } });
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  await waitFor(() => expect(scheduleCalls(gw)).toHaveLength(1));
  expect(scheduleCalls(gw)[0]).toEqual({
    action: "save", name: "alerts", report: "alerts", format: "csv", intervalSeconds: 86400, timezone: defaultZone(),
    window: "previous_day", bucket: "hour", filters: { accountId: "acc-1" }, recipients: [], enabled: true,
  });
});

test("what the contract would refuse is named under its field and nothing is sent", async () => {
  const gw = mount(<Analytics />, "operator", SCHEDULES);
  const { form } = await scheduleForm();
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "bad" } });
  fireEvent.change(form.getByRole("combobox", { name: "Report" }), { target: { value: "groups" } });
  fireEvent.change(form.getByRole("textbox", { name: "Chat id" }), { target: { value: "@group" } });
  fireEvent.change(form.getByRole("spinbutton", { name: "Every" }), { target: { value: "2" } });
  fireEvent.change(form.getByRole("combobox", { name: "Unit" }), { target: { value: "minutes" } });
  fireEvent.change(form.getByRole("textbox", { name: "Timezone (IANA)" }), { target: { value: "Taipei time" } });
  for (let i = 0; i < 4; i++) fireEvent.click(form.getByRole("button", { name: "Add recipient" }));
  fireEvent.change(recipientRow(0).getByRole("textbox", { name: "URL" }), { target: { value: "ftp://files.example.com" } });
  fireEvent.change(recipientRow(1).getByRole("combobox", { name: "Send by" }), { target: { value: "telegram" } });
  fireEvent.change(recipientRow(1).getByRole("textbox", { name: "Peer" }), { target: { value: "@boss" } });
  fireEvent.change(recipientRow(2).getByRole("combobox", { name: "Send by" }), { target: { value: "tailchat" } });
  fireEvent.change(recipientRow(2).getByRole("textbox", { name: "Converse" }), { target: { value: "app1" } });
  fireEvent.change(recipientRow(3).getByRole("combobox", { name: "Send by" }), { target: { value: "telegram" } });
  fireEvent.change(recipientRow(3).getByRole("textbox", { name: "Peer" }), { target: { value: "bo" } });
  await chooseAccount(recipientRow(3).getByRole("combobox", { name: "Sending account" }), "acc-1");
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  const errors = await screen.findAllByTestId("field-error");
  expect(Object.fromEntries(errors.map((e) => [e.dataset.field, e.textContent]))).toEqual({
    every: "The interval is from 5 minutes to 31 days, in whole seconds.",
    timezone: "Give an IANA timezone such as Asia/Taipei, or UTC.",
    chatId: "A chat id is a whole number (negative for groups).",
    "recipient-0": "A webhook is an absolute http(s) URL with a host and no spaces.",
    "recipient-1": "A Telegram recipient needs the account that sends the report.",
    "recipient-2": "A Tailchat target is appId/converseId or appId/groupId/panelId (letters, digits, _ and -).",
    "recipient-3": "A Telegram peer is a numeric id, @username, t.me link or +phone.",
  });
  expect(form.getByRole("textbox", { name: "Chat id" }).getAttribute("aria-invalid")).toBe("true");
  // A removed recipient takes its error with it; a cron is checked as the contract checks it.
  fireEvent.click(recipientRow(0).getByRole("button", { name: "Remove" }));
  fireEvent.change(form.getByRole("combobox", { name: "Runs" }), { target: { value: "cron" } });
  fireEvent.change(form.getByRole("textbox", { name: "Cron (minute hour day month weekday)" }), { target: { value: "0 25 * * *" } });
  fireEvent.click(form.getByRole("button", { name: "Schedule" }));
  await waitFor(() => expect(document.querySelector('[data-field="cron"]')?.textContent).toBe("Cron field 2 “25” is not valid (it takes 0-23, *, ranges, steps and lists)."));
  expect(document.querySelector('[data-field="every"]')).toBeNull();
  expect(scheduleCalls(gw)).toEqual([]);
});

test("editing a schedule opens it in the form and saves only what changed, with its id", async () => {
  const gw = mount(<Analytics />, "operator", SCHEDULES);
  const { panel, form } = await scheduleForm();
  const row = panel.getAllByTestId("schedule").find((r) => r.dataset.name === "weekly sales")!;
  expect(row.textContent).toContain("0 8 * * mon");
  expect(row.textContent).toContain("Recipients: 2");
  fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
  expect(screen.getByRole("heading", { name: "Editing “weekly sales”" })).toBeTruthy();
  expect((form.getByRole("textbox", { name: "Name" }) as HTMLInputElement).value).toBe("weekly sales");
  expect((form.getByRole("combobox", { name: "Format" }) as HTMLSelectElement).value).toBe("xlsx");
  expect((form.getByRole("textbox", { name: "Cron (minute hour day month weekday)" }) as HTMLInputElement).value).toBe("0 8 * * mon");
  expect((form.getByRole("combobox", { name: "Account" }) as HTMLSelectElement).value).toBe("acc-1");
  expect((form.getByRole("textbox", { name: "Chat id" }) as HTMLInputElement).value).toBe("-100123");
  expect((recipientRow(1).getByRole("textbox", { name: "Peer" }) as HTMLInputElement).value).toBe("@boss");
  // Saved untouched: nothing is sent.
  fireEvent.click(form.getByRole("button", { name: "Save changes" }));
  expect((await screen.findByTestId("schedule-note")).textContent).toBe("Nothing changed.");
  expect(scheduleCalls(gw)).toEqual([]);
  fireEvent.change(form.getByRole("combobox", { name: "Runs" }), { target: { value: "interval" } });
  fireEvent.change(form.getByRole("spinbutton", { name: "Every" }), { target: { value: "12" } });
  fireEvent.click(recipientRow(0).getByRole("button", { name: "Remove" }));
  fireEvent.click(form.getByRole("button", { name: "Save changes" }));
  await waitFor(() => expect(scheduleCalls(gw)).toEqual([
    { action: "save", scheduleId: "s2", intervalSeconds: 43200, recipients: [{ kind: "telegram", target: "@boss", accountId: "acc-1" }] },
  ]));
  await waitFor(() => expect(screen.getByRole("heading", { name: "New schedule" })).toBeTruthy());
  // A report that does not take the saved filters sends the filters without them.
  fireEvent.click(within(panel.getAllByTestId("schedule").find((r) => r.dataset.name === "weekly sales")!).getByRole("button", { name: "Edit" }));
  fireEvent.change(form.getByRole("combobox", { name: "Report" }), { target: { value: "alerts" } });
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "weekly alerts" } });
  fireEvent.click(form.getByRole("button", { name: "Save changes" }));
  await waitFor(() => expect(scheduleCalls(gw)[1]).toEqual({ action: "save", scheduleId: "s2", name: "weekly alerts", report: "alerts", filters: { accountId: "acc-1" } }));
  // Cancel leaves the form without sending.
  fireEvent.click(within(panel.getAllByTestId("schedule")[0]).getByRole("button", { name: "Edit" }));
  fireEvent.click(form.getByRole("button", { name: "Cancel" }));
  expect(screen.getByRole("heading", { name: "New schedule" })).toBeTruthy();
  expect(scheduleCalls(gw)).toHaveLength(2);
});

test("a schedule is disabled or enabled, run now, and deleted only once confirmed", async () => {
  const gw = mount(<Analytics />, "operator", {
    ...SCHEDULES,
    "schedule-report": (body: { action: string }) =>
      body.action === "run" ? { action: "run", schedule: saved, reportId: "rp-7" } : { action: body.action, schedules: [saved, { ...saved, id: "s3", name: "paused", enabled: false }] },
  });
  const { panel } = await scheduleForm();
  const row = (name: string) => within(panel.getAllByTestId("schedule").find((r) => r.dataset.name === name)!);
  expect(row("paused").getByText("(disabled)")).toBeTruthy();
  fireEvent.click(row("weekly sales").getByRole("button", { name: "Disable" }));
  await waitFor(() => expect(scheduleCalls(gw)).toEqual([{ action: "save", scheduleId: "s2", enabled: false }]));
  await waitFor(() => expect((row("paused").getByRole("button", { name: "Enable" }) as HTMLButtonElement).disabled).toBe(false));
  fireEvent.click(row("paused").getByRole("button", { name: "Enable" }));
  await waitFor(() => expect(scheduleCalls(gw)[1]).toEqual({ action: "save", scheduleId: "s3", enabled: true }));
  await waitFor(() => expect((row("weekly sales").getByRole("button", { name: "Run now" }) as HTMLButtonElement).disabled).toBe(false));
  fireEvent.click(row("weekly sales").getByRole("button", { name: "Run now" }));
  expect((await screen.findByTestId("schedule-note")).textContent).toBe("weekly sales: report rp-7 is being generated.");
  expect(scheduleCalls(gw)[2]).toEqual({ action: "run", scheduleId: "s2" });
  await waitFor(() => expect((row("paused").getByRole("button", { name: "Delete" }) as HTMLButtonElement).disabled).toBe(false));
  const asked: string[] = [];
  window.confirm = (q?: string) => (asked.push(String(q)), false);
  fireEvent.click(row("paused").getByRole("button", { name: "Delete" }));
  expect(asked).toEqual(["Delete the schedule “paused” and the reports it produced?"]);
  expect(scheduleCalls(gw)).toHaveLength(3);
  window.confirm = () => true;
  fireEvent.click(row("paused").getByRole("button", { name: "Delete" }));
  await waitFor(() => expect(scheduleCalls(gw)[3]).toEqual({ action: "delete", scheduleId: "s3" }));
});

test("cron expressions and recipients are checked as the contract checks them", () => {
  expect(checkCron(" @Daily ", t as never)).toEqual({ cron: "@daily" });
  expect(checkCron("*/15 8-18 1,15 jan-jun MON-fri", t as never)).toEqual({ cron: "*/15 8-18 1,15 jan-jun MON-fri" });
  expect(checkCron("0 0 * * 7", t as never)).toEqual({ cron: "0 0 * * 7" });
  expect(checkCron("0 8 * *", t as never)).toEqual({ error: t("analytics.err.cronFields") });
  for (const bad of ["60 * * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "* * * foo *", "* mon * * *", "1-x * * * *"]) {
    expect([bad, "error" in checkCron(bad, t as never)]).toEqual([bad, true]);
  }
  const r = (kind: "webhook" | "telegram" | "tailchat", target: string, accountId = "") => recipientError({ kind, target, accountId }, t as never);
  expect(r("webhook", "http://127.0.0.1:9000/hook?x=1")).toBeNull();
  expect(r("webhook", "https://a.example.com/with space")).toBe(t("analytics.err.webhook"));
  expect(r("webhook", "hooks.example.com")).toBe(t("analytics.err.webhook"));
  for (const peer of ["-1001234567890", "777000", "@alice", "alice_bot", "https://t.me/alice", "t.me/alice/12", "+886 912 345 678"]) {
    expect([peer, r("telegram", peer, "acc-1")]).toEqual([peer, null]);
  }
  for (const peer of ["0", "@abc", "t.me/+invitehash1", "+12", "1alice"]) expect([peer, r("telegram", peer, "acc-1")]).toEqual([peer, t("analytics.err.peer")]);
  expect(r("tailchat", "app_1/64f0c0ffee")).toBeNull();
  for (const target of ["app", "app/", "a/b/c/d", "app/conv id"]) expect([target, r("tailchat", target)]).toEqual([target, t("analytics.err.tailchat")]);
  expect(r("webhook", " ")).toBe(t("analytics.err.target"));
});

const SYSTEM = {
  "get-system-info": { healthy: false, gateway: {}, services: { campaign: { status: "up", replicas: [{ replicaId: "c1", health: "ok" }] }, ai: { status: "down", replicas: [] } } },
  "get-alerts": { items: [{ id: "al1", code: "ACCOUNT_BANNED", level: "critical", title: "Account banned", message: "+1555 was banned", count: 2, dismissed: false, firstSeenAt: at, lastSeenAt: at }] },
  "dismiss-alert": {},
  "get-logs": { items: [{ id: "g1", service: "campaign", level: "warning", message: "slow query", timestamp: at, fields: {} }] },
  "get-backup-status": { items: [{ backupId: "b1", kind: "backup", label: "nightly", state: "completed", progress: 1, startedAt: at, services: {} }] },
  "get-migration-status": { upToDate: true, services: { campaign: { applied: [1, 2], pending: [] } } },
  "get-settings": {
    settings: {},
    sections: [
      { section: "general", owner: "gateway", version: 2, values: { timezone: "UTC" }, updatedAt: at },
      { section: "compliance", owner: "campaign", version: 0, values: { stopWords: ["stop", "退訂"], perRecipientDailyCap: 3, optIn: false, newThing: null }, updatedAt: null },
    ],
  },
  "GET /keys": { items: [{ id: "k1", name: "ops", role: "operator", createdAt: at, revoked: false }] },
};

test("health, alerts with dismiss, the log tail with its filters, backups and migrations", async () => {
  const gw = mount(<System />, "operator", SYSTEM);
  expect((await screen.findByText("Account banned")).closest("tr")!.textContent).toContain("×2");
  expect(screen.getByTestId("healthy").dataset.healthy).toBe("false");
  expect(document.querySelector('[data-service="ai"]')!.getAttribute("data-status")).toBe("down");
  fireEvent.click(screen.getByRole("button", { name: "Dismiss" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "dismiss-alert")?.body).toEqual({ alertId: "al1" }));
  expect((await screen.findByText("slow query")).closest("[data-testid=log-line]")!.getAttribute("data-level")).toBe("warning");
  fireEvent.change(screen.getByRole("combobox", { name: "Lowest level" }), { target: { value: "error" } });
  fireEvent.change(within(screen.getByTestId("logs")).getByRole("combobox", { name: "Service" }), { target: { value: "ai" } });
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "get-logs").at(-1)?.body).toMatchObject({ minLevel: "error", service: ["ai"], order: "desc" }));
  expect(screen.getByTestId("backup").textContent).toContain("nightly");
  // Operators see backups and migrations but may run neither; API keys are not shown at all.
  expect(screen.queryByRole("button", { name: "Back up now" })).toBeNull();
  expect(screen.queryByRole("button", { name: "Restore" })).toBeNull();
  expect(screen.queryByRole("button", { name: "Run migrations" })).toBeNull();
  expect(screen.queryByTestId("keys")).toBeNull();
  expect(gw.calls.some((c) => c.command === "GET /keys")).toBe(false);
  // Settings are shown as a form the operator cannot change (save-settings is the admin's).
  expect((screen.getByTestId("settings-form") as HTMLFieldSetElement).disabled).toBe(true);
  expect(within(screen.getByTestId("settings")).queryByRole("button", { name: "Save" })).toBeNull();
});

test("an admin backs up, restores, runs migrations, edits settings and manages keys", async () => {
  const gw = mount(<System />, "admin", {
    ...SYSTEM, "backup-database": {}, "restore-database": {}, "run-migrations": { upToDate: true, services: {} }, "save-settings": {},
    "POST /keys": { id: "k2", name: "new", role: "viewer", createdAt: at, revoked: false, key: "tgm_k2_secret" },
    "DELETE /keys/k1": { id: "k1", revoked: true },
  });
  window.confirm = () => true;
  fireEvent.click(await screen.findByRole("button", { name: "Back up now" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "backup-database")?.body).toMatchObject({ wait: false }));
  fireEvent.click(screen.getByRole("button", { name: "Restore" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "restore-database")?.body).toEqual({ backupId: "b1", wait: false, confirm: true }));
  fireEvent.click(screen.getByRole("button", { name: "Run migrations" }));
  await waitFor(() => expect(gw.calls.some((c) => c.command === "run-migrations")).toBe(true));
  // Settings as a form: a field per value, labelled in the console's language, saved with its version.
  const settings = screen.getByTestId("settings");
  const tz = (await within(settings).findByRole("textbox", { name: "Timezone (IANA)" })) as HTMLInputElement;
  expect(tz.value).toBe("UTC");
  fireEvent.change(tz, { target: { value: "Asia/Taipei" } });
  fireEvent.click(within(settings).getByRole("button", { name: "Save" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "save-settings")?.body).toEqual({ settings: { general: { timezone: "Asia/Taipei" } }, expectedVersions: { general: 2 } }));
  fireEvent.change(within(settings).getByRole("combobox", { name: "Section" }), { target: { value: "compliance" } });
  fireEvent.change(within(settings).getByRole("spinbutton", { name: "Messages per recipient per day" }), { target: { value: "5" } });
  fireEvent.click(within(settings).getByRole("checkbox", { name: "optIn" })); // a field the catalogue has no label for yet
  fireEvent.click(within(settings).getByRole("button", { name: "Save" }));
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "save-settings").at(-1)?.body).toEqual({
    settings: { compliance: { stopWords: ["stop", "退訂"], perRecipientDailyCap: 5, optIn: true, newThing: null } }, expectedVersions: { compliance: 0 },
  }));
  // The whole section as JSON is still there.
  fireEvent.click(within(settings).getByRole("checkbox", { name: "Edit as JSON" }));
  expect((settings.querySelector('textarea[name="section-values"]') as HTMLTextAreaElement).value).toContain('"perRecipientDailyCap": 3');
  expect((await screen.findByTestId("api-key")).textContent).toContain("ops");
  fireEvent.change(screen.getByRole("textbox", { name: "Name" }), { target: { value: "new" } });
  fireEvent.click(screen.getByRole("button", { name: "Create key" }));
  expect((await screen.findByTestId("new-key")).textContent).toContain("tgm_k2_secret");
  expect(gw.calls.find((c) => c.command === "POST /keys")?.body).toEqual({ name: "new", role: "viewer" });
  fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
  await waitFor(() => expect(gw.calls.some((c) => c.command === "DELETE /keys/k1")).toBe(true));
});

test("a settings form gives back the values with their types; a bad field is named", () => {
  const values = { on: true, n: 1.5, s: "x", none: null, words: ["a", "b"], map: { "+1": "UTC" } };
  const draft = toDraft(values);
  expect(draft).toEqual({ on: true, n: "1.5", s: "x", none: "", words: "a\nb", map: '{\n  "+1": "UTC"\n}' });
  expect(fromDraft(values, draft)).toEqual(values);
  expect(fromDraft(values, { ...draft, words: " a \n\n c ", none: "y", n: "2" })).toMatchObject({ words: ["a", "c"], none: "y", n: 2 });
  expect(() => fromDraft(values, { ...draft, n: "two" }, (k) => `[${k}]`)).toThrow("[n]: not a number");
  expect(() => fromDraft(values, { ...draft, map: "{" })).toThrow("map: not valid JSON");
});

test("a section's values must be a JSON object", () => {
  expect(parseSection('{"a": 1}')).toEqual({ a: 1 });
  expect(() => parseSection("[1]")).toThrow(/JSON object/);
  expect(() => parseSection("{")).toThrow();
});

test("the role comes from GET /keys/me, with no other call", async () => {
  const gw = fakeGateway({ "GET /keys/me": { id: "k1", name: "ops", role: "operator" } });
  expect(await gw.api.role()).toBe("operator");
  expect(gw.calls.map((c) => c.command)).toEqual(["GET /keys/me"]);
  await expect(new Api("k", fakeGateway({}).api["fetcher"]).role()).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("the live socket has no key in its URL: it authenticates by its first frame, then subscribes", () => {
  const sent: string[] = [];
  let url = "";
  const sock: any = { send: (m: string) => sent.push(m), close: () => undefined };
  const live = new Live("tgm_abc_secret", (u) => ((url = u), sock)).start();
  expect(url).toMatch(/\/api\/v1\/ws$/);
  expect(url).not.toContain("secret");
  sock.onopen();
  expect(JSON.parse(sent[0])).toEqual({ action: "auth", token: "tgm_abc_secret", requestId: "auth" });
  expect(sent.length).toBe(1); // nothing else before the gateway admits the key
  sock.onmessage({ data: JSON.stringify({ event: "auth-result", data: { role: "viewer" }, requestId: "auth" }) });
  expect(JSON.parse(sent[1])).toMatchObject({ action: "subscribe" });
  sock.onmessage({ data: JSON.stringify({ event: "subscribe-result", data: {}, requestId: "live" }) });
  expect(live.state).toBe("open");
  live.stop();
});
