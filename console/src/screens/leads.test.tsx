// The Leads screen's filters against a fake gateway: get-leads gets exactly the filters set (and
// get-funnel-stats those it takes), reset sends none again.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { mount } from "../testing";
import { funnelQuery, leadQuery, Leads, NO_FILTER } from "./Leads";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";
const lead = (id: string, stage: string) => ({
  id, stage, firstName: `Lead ${id}`, sourceType: "keyword", intentLevel: "warm", tags: [], createdAt: at, updatedAt: at,
  blacklisted: false, doNotContact: false, messageCount: 0, customFields: {},
});
const REPLIES = {
  "get-leads": { items: [lead("l1", "new"), lead("l2", "replied")], total: 2 },
  "get-funnel-stats": { total: 9, conversionRate: 0.1, stages: [{ stage: "new", count: 7, reached: 9 }] },
  "get-monitored-groups": { items: [{ id: "mg1", title: "Crypto chat", createdAt: at, isActive: true, keywordSetIds: [] }] },
  "get-keyword-sets": { items: [{ id: "ks1", name: "Buyers", createdAt: at }] },
  "get-campaigns": { items: [{ id: "c1", name: "Spring" }] },
  "get-accounts": { items: [{ id: "a1", phone: "+15550001", label: "main" }] },
};
const BASE = { limit: 200, includeDoNotContact: true };

test("only the filters set are sent, the funnel gets those it takes, and reset sends none", async () => {
  const gw = mount(<Leads />, "viewer", REPLIES);
  const last = (command: string) => gw.calls.filter((c) => c.command === command).at(-1)?.body;
  await screen.findByText("Lead l1");
  expect(last("get-leads")).toEqual(BASE);
  expect(last("get-funnel-stats")).toEqual({});
  expect(screen.queryByTestId("lead-matches")).toBeNull();
  const form = screen.getByTestId("lead-filters");
  const reset = within(form).getByRole("button", { name: "Reset filters" }) as HTMLButtonElement;
  expect(reset.disabled).toBe(true);
  await within(form).findByRole("option", { name: "Crypto chat" });
  await within(form).findByRole("option", { name: "+15550001 (main)" });
  await within(form).findByRole("option", { name: "Spring" });
  await within(form).findByRole("option", { name: "Buyers" });
  const stages = within(form).getByRole("group", { name: "Stage" });
  fireEvent.click(within(stages).getByRole("checkbox", { name: "replied" }));
  fireEvent.click(within(stages).getByRole("checkbox", { name: "new" }));
  const intent = within(form).getByRole("group", { name: "Intent" });
  fireEvent.click(within(intent).getByRole("checkbox", { name: "hot" }));
  fireEvent.change(form.querySelector('input[name="lead-tags"]')!, { target: { value: "vip, paid ,vip" } });
  fireEvent.change(form.querySelector('select[name="lead-sourceType"]')!, { target: { value: "group_member" } });
  fireEvent.change(form.querySelector('select[name="lead-sourceGroupId"]')!, { target: { value: "mg1" } });
  fireEvent.change(form.querySelector('select[name="lead-keywordSetId"]')!, { target: { value: "ks1" } });
  fireEvent.change(form.querySelector('select[name="lead-campaignId"]')!, { target: { value: "c1" } });
  fireEvent.change(form.querySelector('select[name="lead-assignedAccountId"]')!, { target: { value: "a1" } });
  fireEvent.change(form.querySelector('input[name="lead-assignee"]')!, { target: { value: " alice " } });
  fireEvent.change(form.querySelector('input[name="lead-from"]')!, { target: { value: "2026-01-05" } });
  fireEvent.change(form.querySelector('input[name="lead-to"]')!, { target: { value: "2026-01-31" } });
  fireEvent.click(within(form).getByRole("checkbox", { name: "Hide do-not-contact" }));
  fireEvent.change(form.querySelector('select[name="lead-sort"]')!, { target: { value: "intent_score" } });
  fireEvent.change(form.querySelector('input[name="lead-search"]')!, { target: { value: " ada " } });
  const since = new Date("2026-01-05T00:00:00").toISOString();
  const until = new Date("2026-02-01T00:00:00").toISOString();
  await waitFor(() =>
    expect(last("get-leads")).toEqual({
      ...BASE, search: "ada", stages: ["new", "replied"], intentLevels: ["hot"], tags: ["vip", "paid"], sourceType: "group_member",
      sourceGroupId: "mg1", keywordSetId: "ks1", campaignId: "c1", assignedAccountId: "a1", assignee: "alice",
      createdSince: since, createdUntil: until, includeDoNotContact: false, sort: "intent_score",
    }),
  );
  expect(last("get-funnel-stats")).toEqual({ sourceGroupId: "mg1", keywordSetId: "ks1", campaignId: "c1", assignedAccountId: "a1", since, until });
  expect(screen.getByTestId("lead-matches").textContent).toBe("2 match the filters");
  // Filters the funnel cannot take: each stage counts the cards it shows.
  const board = screen.getByTestId("funnel");
  expect(board.querySelector('[data-stage="new"] .badge')!.textContent).toBe("1");
  fireEvent.click(reset);
  await waitFor(() => expect(last("get-leads")).toEqual(BASE));
  expect(last("get-funnel-stats")).toEqual({});
  expect((form.querySelector('input[name="lead-search"]') as HTMLInputElement).value).toBe("");
  await waitFor(() => expect(board.querySelector('[data-stage="new"] .badge')!.textContent).toBe("7"));
});

test("reversed dates are named and not sent; sort order alone is not a filter", async () => {
  expect(leadQuery({ ...NO_FILTER, from: "2026-02-01", to: "2026-01-01" })).toEqual({});
  expect(leadQuery({ ...NO_FILTER, to: "2026-01-31" })).toEqual({ createdUntil: new Date("2026-02-01T00:00:00").toISOString() });
  expect(funnelQuery(leadQuery({ ...NO_FILTER, search: "x", stages: ["new"] }))).toEqual({});
  const gw = mount(<Leads />, "viewer", REPLIES);
  const form = await screen.findByTestId("lead-filters");
  fireEvent.change(form.querySelector('input[name="lead-from"]')!, { target: { value: "2026-02-01" } });
  fireEvent.change(form.querySelector('input[name="lead-to"]')!, { target: { value: "2026-01-01" } });
  expect(within(form).getByTestId("lead-dates-error").textContent).toBe("The first day is after the last: the dates are not applied.");
  fireEvent.click(within(form).getByRole("checkbox", { name: "Oldest or lowest first" }));
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "get-leads").at(-1)?.body).toEqual({ ...BASE, descending: false }));
  expect(screen.queryByTestId("lead-matches")).toBeNull();
});
