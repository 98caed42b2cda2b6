// Knowledge items and document removal against a fake gateway: a FAQ pair or a text added with
// add-knowledge (what KnowledgeInput would refuse named, nothing sent), items found with
// search-knowledge and removed with remove-knowledge, a document removed with its chunks; every
// removal only after a confirm; a viewer finds items but changes nothing.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { translator } from "../i18n";
import { mount } from "../testing";
import { itemLabel, itemPlan, Knowledge, newItem } from "./Knowledge";

afterEach(cleanup);
const t = translator("en");
const at = "2026-01-01T00:00:00Z";

const faq = { id: "k1", scope: "default", type: "faq", question: "How long is shipping?", answer: "3 to 5 days.", tags: ["shipping"], createdAt: at };
const text = { id: "k2", scope: "group:vip", type: "text", title: "Opening hours", content: "We open at 9.", tags: [], createdAt: at };
const chunk = { id: "k3", scope: "default", type: "document", content: "a chunk", tags: [], documentId: "d1", createdAt: at };
const hit = (item: object) => ({ score: 0.5, item, citation: { knowledgeId: (item as { id: string }).id } });
const REPLIES = {
  "rag-get-status": {
    documents: [{ documentId: "d1", title: "Prices", state: "ready", progress: 1, chunks: 2, createdAt: at, bytes: 1, chars: 1, scope: "default" }],
    totalDocuments: 1, totalChunks: 2, denseReady: false, embeddingProvider: "none",
  },
  "get-ai-settings": { defaultProvider: "local", version: 1, openai: { enabled: false }, maiagent: { enabled: false }, dmflow: { enabled: false } },
  "get-ai-usage": { totals: { calls: 0, promptTokens: 0, completionTokens: 0, errors: 0 }, rows: [], byProvider: {}, since: at, until: at },
  "get-knowledge-stats": { totalItems: 5, byType: { faq: 2, text: 1, document: 2 }, scopes: [], documents: 1, documentsByState: {}, vocabulary: 9, denseVectors: 0 },
  "search-knowledge": { query: "x", tookMs: 1, faq: null, hits: [hit(faq), hit(text), hit(chunk)] },
  "add-knowledge": (body: Record<string, unknown>) => ({ added: [{ id: "k9", createdAt: at, tags: [], ...body }], duplicates: 0 }),
  "remove-knowledge": (body: { ids?: string[] }) => ({ affected: body.ids ? body.ids.length : 3 }),
};
const sent = (gw: ReturnType<typeof mount>, command: string) => gw.calls.filter((c) => c.command === command).map((c) => c.body);

async function findItems(query: string, type = "") {
  const panel = within(await screen.findByTestId("knowledge-items"));
  fireEvent.change(panel.getByRole("searchbox", { name: "Find items by their words" }), { target: { value: query } });
  if (type) fireEvent.change(panel.getByRole("combobox", { name: "Of type" }), { target: { value: type } });
  fireEvent.click(panel.getByRole("button", { name: "Find" }));
  await panel.findAllByTestId("knowledge-item");
  return panel;
}

test("a FAQ pair and a text are added with exactly their fields, and listed at once", async () => {
  const gw = mount(<Knowledge />, "operator", REPLIES);
  const form = within(await screen.findByTestId("add-item"));
  await waitFor(() => expect(screen.getByTestId("item-totals").textContent).toBe("FAQ pairs: 2, texts: 1"));
  fireEvent.change(form.getByRole("textbox", { name: "Question" }), { target: { value: " Do you ship abroad? " } });
  fireEvent.change(form.getByRole("textbox", { name: "Answer" }), { target: { value: "Yes, to 30 countries." } });
  fireEvent.change(form.getByRole("textbox", { name: "Tags (comma-separated)" }), { target: { value: "shipping, abroad, shipping" } });
  fireEvent.click(form.getByRole("button", { name: "Add to knowledge" }));
  await waitFor(() => expect(sent(gw, "add-knowledge")).toEqual([
    { scope: "default", type: "faq", question: "Do you ship abroad?", answer: "Yes, to 30 countries.", tags: ["shipping", "abroad"] },
  ]));
  expect((await screen.findByTestId("items-note")).textContent).toBe("1 added.");
  expect(screen.getByTestId("knowledge-item").textContent).toContain("Do you ship abroad?");
  expect((form.getByRole("textbox", { name: "Question" }) as HTMLInputElement).value).toBe(""); // ready for the next one
  fireEvent.change(form.getByRole("combobox", { name: "Type" }), { target: { value: "text" } });
  expect(form.queryByRole("textbox", { name: "Question" })).toBeNull();
  fireEvent.change(form.getByRole("textbox", { name: "Scope" }), { target: { value: "strategy:s1" } });
  fireEvent.change(form.getByRole("textbox", { name: "Title (optional)" }), { target: { value: "Returns" } });
  fireEvent.change(form.getByRole("textbox", { name: "Text" }), { target: { value: "Returns within 14 days." } });
  fireEvent.change(form.getByRole("textbox", { name: "Source (optional)" }), { target: { value: "policy.pdf" } });
  fireEvent.click(form.getByRole("button", { name: "Add to knowledge" }));
  await waitFor(() => expect(sent(gw, "add-knowledge")).toHaveLength(2));
  expect(sent(gw, "add-knowledge")[1]).toEqual({ scope: "strategy:s1", type: "text", content: "Returns within 14 days.", title: "Returns", tags: [], source: "policy.pdf" });
});

test("what KnowledgeInput would refuse is named under its field and nothing is sent", async () => {
  const gw = mount(<Knowledge />, "operator", REPLIES);
  const form = within(await screen.findByTestId("add-item"));
  fireEvent.change(form.getByRole("textbox", { name: "Scope" }), { target: { value: "my scope" } });
  fireEvent.change(form.getByRole("textbox", { name: "Question" }), { target: { value: "   " } });
  fireEvent.change(form.getByRole("textbox", { name: "Tags (comma-separated)" }), { target: { value: `ok, ${"x".repeat(51)}` } });
  fireEvent.click(form.getByRole("button", { name: "Add to knowledge" }));
  const errors = await screen.findAllByTestId("field-error");
  expect(Object.fromEntries(errors.map((e) => [e.dataset.field, e.textContent]))).toEqual({
    scope: "A scope is 1-64 letters, digits, _ . : or - (default, group:<id>, strategy:<id>).",
    tags: "A tag has at most 50 characters.",
    question: "A FAQ item needs its question.",
    answer: "A FAQ item needs its answer.",
  });
  expect(form.getByRole("textbox", { name: "Scope" }).getAttribute("aria-invalid")).toBe("true");
  expect(sent(gw, "add-knowledge")).toEqual([]);
});

test("items are found by their words and removed, one or the selected ones, only once confirmed", async () => {
  const gw = mount(<Knowledge />, "operator", REPLIES);
  const panel = await findItems("shipping", "faq");
  expect(sent(gw, "search-knowledge")).toEqual([{ query: "shipping", includeDocs: false, limit: 50, type: "faq" }]);
  // Document chunks are the Documents panel's: not listed as items.
  expect(panel.getAllByTestId("knowledge-item").map((r) => r.dataset.id)).toEqual(["k1", "k2"]);
  const row = (id: string) => within(panel.getAllByTestId("knowledge-item").find((r) => r.dataset.id === id)!);
  expect(row("k2").getAllByRole("cell")[2].textContent).toBe("group:vip");
  const asked: string[] = [];
  window.confirm = (q?: string) => (asked.push(String(q)), false);
  fireEvent.click(row("k1").getByRole("button", { name: "Remove" }));
  expect(asked).toEqual(["Remove “How long is shipping?” from the knowledge base?"]);
  expect(sent(gw, "remove-knowledge")).toEqual([]);
  window.confirm = () => true;
  fireEvent.click(row("k1").getByRole("button", { name: "Remove" }));
  await waitFor(() => expect(sent(gw, "remove-knowledge")).toEqual([{ ids: ["k1"] }]));
  await waitFor(() => expect(panel.getAllByTestId("knowledge-item").map((r) => r.dataset.id)).toEqual(["k2"]));
  expect(screen.getByTestId("items-note").textContent).toBe("1 removed.");
  // The selected ones at once.
  await findItems("hours");
  expect(sent(gw, "search-knowledge")[1]).toEqual({ query: "hours", includeDocs: false, limit: 50, type: "faq" });
  fireEvent.change(panel.getByRole("combobox", { name: "Of type" }), { target: { value: "" } });
  fireEvent.click(panel.getByRole("button", { name: "Find" }));
  await waitFor(() => expect(sent(gw, "search-knowledge")[2]).toEqual({ query: "hours", includeDocs: false, limit: 50 }));
  expect((panel.getByRole("button", { name: "Remove selected (0)" }) as HTMLButtonElement).disabled).toBe(true);
  await waitFor(() => expect((panel.getByRole("button", { name: "Find" }) as HTMLButtonElement).disabled).toBe(false));
  fireEvent.click(panel.getByRole("checkbox", { name: "Select How long is shipping?" }));
  fireEvent.click(panel.getByRole("checkbox", { name: "Select Opening hours" }));
  const asked2: string[] = [];
  window.confirm = (q?: string) => (asked2.push(String(q)), true);
  fireEvent.click(panel.getByRole("button", { name: "Remove selected (2)" }));
  expect(asked2).toEqual(["Remove the 2 selected items from the knowledge base?"]);
  await waitFor(() => expect(sent(gw, "remove-knowledge")[1]).toEqual({ ids: ["k1", "k2"] }));
  await waitFor(() => expect(panel.queryAllByTestId("knowledge-item")).toHaveLength(0));
});

test("a document is removed with its chunks, only once confirmed", async () => {
  const gw = mount(<Knowledge />, "operator", REPLIES);
  const doc = within((await screen.findByText("Prices")).closest("tr")!);
  window.confirm = () => false;
  fireEvent.click(doc.getByRole("button", { name: "Remove" }));
  expect(sent(gw, "remove-knowledge")).toEqual([]);
  const asked: string[] = [];
  window.confirm = (q?: string) => (asked.push(String(q)), true);
  fireEvent.click(doc.getByRole("button", { name: "Remove" }));
  expect(asked).toEqual(["Remove the document “Prices” and all its chunks from the knowledge base?"]);
  await waitFor(() => expect(sent(gw, "remove-knowledge")).toEqual([{ documentId: "d1" }]));
  await waitFor(() => expect(sent(gw, "rag-get-status").length).toBeGreaterThan(1)); // the list is asked again
});

test("a viewer finds items but has no add form and no remove buttons", async () => {
  const gw = mount(<Knowledge />, "viewer", REPLIES);
  const panel = await findItems("shipping");
  expect(screen.queryByTestId("add-item")).toBeNull();
  expect(panel.queryByRole("checkbox")).toBeNull();
  expect(screen.queryByRole("button", { name: /^Remove/ })).toBeNull();
  expect(gw.calls.some((c) => c.command === "remove-knowledge" || c.command === "add-knowledge")).toBe(false);
});

test("an item's plan: the flat add-knowledge body, limits as the contract has them", () => {
  expect(itemPlan({ ...newItem("text"), content: "hi", tags: " a ,, b " }, t as never)).toEqual({
    request: { scope: "default", type: "text", content: "hi", tags: ["a", "b"] }, errors: {},
  });
  const tooMany = Array.from({ length: 21 }, (_, i) => `t${i}`).join(",");
  expect(itemPlan({ ...newItem(), question: "q", answer: "a".repeat(8001), tags: tooMany, title: "x".repeat(201) }, t as never).errors).toEqual({
    answer: "At most 8000 characters.", tags: "At most 20 tags.", title: "At most 200 characters.",
  });
  expect(itemPlan({ ...newItem(), scope: "x".repeat(65), question: "q", answer: "a" }, t as never).request).toBeNull();
  expect(itemLabel({ id: "k", content: "y".repeat(100) } as never)).toBe(`${"y".repeat(79)}…`);
});
