// The task centre's swarms and an ad campaign's delete, against a fake gateway and a fake live feed:
// a swarm's group, roles, activity and limits; what it did with the group's messages (by reason,
// by account, the latest decisions); its row following `swarm-state-changed`; stop after a confirm;
// its sends paused; a new swarm's exact `start-swarm` payload, its missing fields named with nothing
// sent, the gateway's refusal shown; delete-ad-campaign for admins only, after a confirm.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { fakeLive, mount, refusal } from "../testing";
import { Queue } from "./Queue";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";

const swarm = (status: string, extra: object = {}) => ({
  id: "swarm-000001", status, groupId: "g1", roleIds: ["r1", "r2"], mode: "ai", replyProbability: 0.5, minIntervalSeconds: 60,
  maxMessagesPerHour: 10, maxTrafficShare: 0.25, trafficWindow: 40, chatView: { kind: "channel", title: "Product Club" },
  participants: [
    { slot: "r1", roleId: "r1", roleName: "Expert Amy", accountId: "acc-1" },
    { slot: "r2", roleId: "r2", roleName: "Fan Bo", accountId: "acc-2" },
  ],
  messagesSent: 2, triggersSeen: 5, lastMessageAt: at, startedAt: at, endsAt: "2026-01-01T02:00:00Z",
  stats: {
    messagesSeen: 9, answered: 2, reasons: { answered: 2, probability: 4, own_message: 3 },
    accounts: [{ accountId: "acc-1", roleId: "r1", answered: 2, lastAnswerAt: at }],
    lastDecisions: [
      { messageId: 11, at, outcome: "answered", trigger: "question", accountId: "acc-1", jobId: "job-1", preview: "Yes, it ships today" },
      { messageId: 10, at, outcome: "probability", trigger: "keyword" },
    ],
  },
  ...extra,
});
const ad = {
  id: "ad1", name: "Spring sale", status: "draft", templateIds: ["t1"], targets: [{ chat: -1001 }], schedule: { type: "once" },
  counters: { runs: 0, posted: 0, failed: 0, skipped: 0 }, createdAt: at, updatedAt: at,
};

function replies(extra: Record<string, unknown> = {}) {
  return {
    "get-queue-status": { paused: false, generatedAt: at, accounts: [], pauses: [], totals: {}, campaigns: [], jobs: { items: [] } },
    "get-campaigns": { items: [] },
    "get-accounts": (body: { ids?: string[] }) => ({
      items: [{ id: "acc-1", phone: "+15550001" }, { id: "acc-2", phone: "+15550002" }].filter((a) => !body.ids || body.ids.includes(a.id)),
    }),
    "get-ad-campaigns": { items: [ad] },
    "get-collaboration-status": { items: [] },
    "get-roles": { items: [{ id: "r1", name: "Expert Amy" }, { id: "r2", name: "Fan Bo" }, { id: "r3", name: "Helper Cy" }] },
    "get-scripts": { items: [{ id: "s1", name: "club talk", roles: [], stages: [] }] },
    "get-scenarios": { items: [] },
    "get-monitored-groups": { items: [{ id: "g1", title: "Product Club" }] },
    "get-keyword-sets": { items: [{ id: "ks1", name: "prices" }] },
    "ai-get-strategies": { items: [{ id: "st1", name: "Friendly seller" }] },
    "get-swarm-status": { items: [swarm("running")] },
    "stop-swarm": swarm("stopped", { stoppedAt: at, stopReason: "stopped" }),
    "start-swarm": swarm("running", { id: "swarm-000002" }),
    "pause-queue": { scope: "campaign", campaignId: "swarm-000001", paused: true },
    "delete-ad-campaign": { ok: true },
    ...extra,
  } as Record<string, unknown>;
}
const sent = (gw: ReturnType<typeof mount>, command: string) => gw.calls.filter((c) => c.command === command);
const choose = (select: HTMLElement, values: string[]) => {
  for (const o of Array.from((select as HTMLSelectElement).options)) o.selected = values.includes(o.value);
  fireEvent.change(select);
};

test("a swarm shows its group, roles, activity and limits; its decisions open in place; stop asks first", async () => {
  const r = replies();
  const { live, push } = fakeLive();
  const gw = mount(<Queue />, "operator", r, live);
  const row = () => screen.getByTestId("swarms").querySelector('[data-testid="swarm"]') as HTMLElement;
  await waitFor(() => expect(row()).not.toBeNull());
  expect(row().getAttribute("data-status")).toBe("running");
  expect(within(row()).getByTestId("swarm-status").textContent).toBe("running");
  expect(row().textContent).toContain("Product Club");
  await waitFor(() => expect(row().textContent).toContain("Expert Amy (+15550001)"));
  await waitFor(() => expect(row().textContent).toContain("Fan Bo (+15550002)"));
  expect(within(row()).getByTestId("swarm-activity").textContent).toContain("2 sent · 2 answered of 9 messages seen");
  expect(row().textContent).toContain("50% chance · 60 s apart · 10 an hour · at most 25% of the last 40 messages");
  const details = within(row()).getByRole("button", { name: "Details" });
  fireEvent.click(details);
  expect(details.getAttribute("aria-expanded")).toBe("true");
  const detail = await screen.findByTestId("swarm-detail");
  expect(within(detail).getAllByTestId("swarm-reason").map((li) => li.textContent)).toEqual([
    "left to chance: 4", "its own message: 3", "answered: 2",
  ]);
  expect(within(detail).getAllByTestId("swarm-decision").map((d) => d.getAttribute("data-outcome"))).toEqual(["answered", "probability"]);
  expect(detail.textContent).toContain("Yes, it ships today");
  await waitFor(() => expect(within(detail).getByTestId("swarm-account").textContent).toContain("+15550001"));
  // Its answers' failures (the queue's jobs carry the swarm's id), as for a campaign.
  await waitFor(() => expect(sent(gw, "get-queue-status").some((c) => c.body.campaignId === "swarm-000001")).toBe(true));
  fireEvent.click(within(row()).getByRole("button", { name: "Pause its sends" }));
  await waitFor(() => expect(sent(gw, "pause-queue")[0]?.body).toEqual({ scope: "campaign", campaignId: "swarm-000001", reason: "console" }));
  // The row's buttons are disabled while its call is under way (long on a loaded machine).
  await waitFor(() => expect(within(row()).getByRole("button", { name: "Stop" })).toHaveProperty("disabled", false));
  window.confirm = () => false;
  fireEvent.click(within(row()).getByRole("button", { name: "Stop" }));
  expect(sent(gw, "stop-swarm")).toHaveLength(0);
  window.confirm = () => true;
  fireEvent.click(within(row()).getByRole("button", { name: "Stop" }));
  await waitFor(() => expect(sent(gw, "stop-swarm")[0]?.body).toEqual({ swarmId: "swarm-000001" }));
  // The row follows the pushed state.
  r["get-swarm-status"] = { items: [swarm("stopped", { messagesSent: 3, stoppedAt: at, stopReason: "duration" })] };
  push("swarm-state-changed", { swarmId: "swarm-000001", status: "stopped", messagesSent: 3, error: "duration" });
  await waitFor(() => expect(row().getAttribute("data-status")).toBe("stopped"));
  expect(within(row()).getByTestId("swarm-activity").getAttribute("data-sent")).toBe("3");
  expect(row().textContent).toContain("duration");
  expect(within(row()).queryByRole("button", { name: "Stop" })).toBeNull();
});

test("a new swarm sends start-swarm with the contract's fields; what is missing is named first", async () => {
  const r = replies();
  const gw = mount(<Queue />, "operator", r);
  fireEvent.click(await screen.findByRole("button", { name: "Start a swarm" }));
  const form = within(await screen.findByTestId("swarm-form"));
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  const problems = await form.findByTestId("form-problems");
  expect(Array.from(problems.querySelectorAll("li")).map((li) => li.textContent)).toEqual([
    "Give exactly one group: a monitored group or another one.", "Choose at least two roles.",
  ]);
  expect(sent(gw, "start-swarm")).toHaveLength(0);
  await form.findByRole("option", { name: "Product Club" });
  fireEvent.change(form.getByRole("combobox", { name: "Monitored group" }), { target: { value: "g1" } });
  await form.findByRole("option", { name: "Helper Cy" });
  choose(form.getByRole("listbox", { name: "Roles (at least two)" }), ["r1", "r3"]);
  await form.findByRole("option", { name: "Friendly seller" });
  fireEvent.change(form.getByRole("combobox", { name: "AI strategy" }), { target: { value: "st1" } });
  await form.findByRole("option", { name: "prices" });
  choose(form.getByRole("listbox", { name: "Answer messages with these keyword sets" }), ["ks1"]);
  fireEvent.click(form.getByRole("checkbox", { name: "Answer mentions of and replies to a role" }));
  fireEvent.change(form.getByRole("spinbutton", { name: "Chance to answer (0-1)" }), { target: { value: "0.6" } });
  fireEvent.change(form.getByRole("spinbutton", { name: "Or stop after (minutes)" }), { target: { value: "90" } });
  fireEvent.change(form.getByLabelText("Active from"), { target: { value: "09:00" } });
  fireEvent.change(form.getByLabelText("Active until"), { target: { value: "21:00" } });
  r["start-swarm"] = refusal("CONFLICT", "a swarm already runs in this group");
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "start-swarm")).toHaveLength(1));
  expect(sent(gw, "start-swarm")[0].body).toEqual({
    groupId: "g1", roleIds: ["r1", "r3"], mode: "ai", scriptId: null, strategyId: "st1",
    triggers: { keywordSetIds: ["ks1"], questions: true, everyNMessages: null, mentions: false },
    replyProbability: 0.6, minIntervalSeconds: 120, maxMessagesPerHour: 12, activeHours: { start: "09:00", end: "21:00", timezone: null },
    until: null, durationMinutes: 90, maxTrafficShare: 0.3, trafficWindow: 20, accountMinIntervalSeconds: null,
  });
  expect((await form.findByText(/a swarm already runs in this group/)).textContent).toContain("CONFLICT");
  // A script swarm in another group, accepted: the form closes.
  r["start-swarm"] = swarm("running", { id: "swarm-000002" });
  fireEvent.change(form.getByRole("combobox", { name: "Monitored group" }), { target: { value: "" } });
  fireEvent.change(form.getByRole("textbox", { name: /Or another group/ }), { target: { value: "-100777" } });
  fireEvent.change(form.getByRole("combobox", { name: "Speaks" }), { target: { value: "script" } });
  fireEvent.change(form.getByRole("combobox", { name: "Script" }), { target: { value: "s1" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "start-swarm")).toHaveLength(2));
  expect(sent(gw, "start-swarm")[1].body).toMatchObject({ chat: -100777, mode: "script", scriptId: "s1", strategyId: null });
  expect(sent(gw, "start-swarm")[1].body).not.toHaveProperty("groupId");
  await waitFor(() => expect(screen.queryByTestId("swarm-form")).toBeNull());
});

test("an ad campaign is deleted by an admin after a confirm; an operator and a viewer get no delete", async () => {
  const gw = mount(<Queue />, "admin", replies());
  const row = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  window.confirm = () => false;
  fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
  expect(sent(gw, "delete-ad-campaign")).toHaveLength(0);
  window.confirm = () => true;
  fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
  await waitFor(() => expect(sent(gw, "delete-ad-campaign")[0]?.body).toEqual({ id: "ad1" }));
  cleanup();
  mount(<Queue />, "operator", replies());
  const opRow = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  expect(within(opRow).queryByRole("button", { name: "Delete" })).toBeNull();
  expect(await screen.findByRole("button", { name: "Start a swarm" })).toBeTruthy();
  cleanup();
  mount(<Queue />, "viewer", replies());
  const viewRow = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  expect(within(viewRow).queryByRole("button", { name: "Delete" })).toBeNull();
  const swarmRow = await within(screen.getByTestId("swarms")).findByTestId("swarm");
  for (const name of ["Stop", "Pause its sends"]) expect(within(swarmRow).queryByRole("button", { name })).toBeNull();
  expect(within(swarmRow).getByRole("button", { name: "Details" })).toBeTruthy();
  expect(screen.queryByRole("button", { name: "Start a swarm" })).toBeNull();
});
