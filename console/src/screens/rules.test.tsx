// The trigger-rule form against a fake gateway: several actions of every type (added, moved,
// removed), the `specific` sender accounts, the conditions' time window and excluded stages — each
// sent exactly as the contract's fields; an edited rule saved with every field it had; what the
// contract would refuse named with nothing sent; delete for admins only, after a confirm.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { mount, refusal } from "../testing";
import { Rules } from "./Rules";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";
// A markup as the contract takes it (MessageMarkup): it comes back from the editor unchanged.
const markup = {
  replyKeyboard: { rows: [[{ text: "Prices" }, { text: "Talk to us" }]], oneTime: true },
  inline: {
    actions: [{ id: "buy", type: "url", label: "Buy", url: "https://example.com/buy" }, { id: "more", type: "invoke", label: "More", params: { page: 2, sku: "12" } }],
    rows: [{ actions: ["buy", "more"] }],
  },
};
const saved = {
  id: "rule1", name: "pricing", description: "answers prices", priority: 5, exclusive: false, isActive: true,
  sourceType: "specific", sourceGroupIds: ["g1"], keywordSetIds: ["ks1"],
  conditions: { newMemberOnly: true, excludeAdmin: false, timeRange: { start: "09:00", end: "18:00", timezone: "Asia/Taipei" },
    oncePerUser: true, minIntentScore: 40, excludeLeadStages: ["closed_lost"] },
  actions: [
    { type: "reply_template", templateId: "tpl1", target: "group_reply", markup },
    { type: "add_lead", stage: "contacted", tags: ["pricing", "vip"] },
    { type: "notify", channel: "alert", message: "priced {name}" },
  ],
  senderType: "specific", senderAccountIds: ["acc-2"], delayMin: 5, delayMax: 10, dailyLimit: 20, cooldownSeconds: 600,
  triggerCount: 3, successCount: 2, lastTriggeredAt: at, overlapWarning: null, createdAt: at, updatedAt: at,
};
/** The rule as save-trigger-rule takes it: the view without its counters and times. */
const { triggerCount, successCount, lastTriggeredAt, overlapWarning, createdAt, updatedAt, ...savedSpec } = saved;
void [triggerCount, successCount, lastTriggeredAt, overlapWarning, createdAt, updatedAt];

function replies(extra: Record<string, unknown> = {}) {
  return {
    "get-keyword-sets": { items: [{ id: "ks1", name: "prices", matchMode: "contains", keywords: [{ keyword: "price" }] }] },
    "get-monitored-groups": { items: [{ id: "g1", title: "Product Club", status: "active" }] },
    "get-trigger-rules": { items: [saved] },
    "get-accounts": { items: [{ id: "acc-1", phone: "+15550001" }, { id: "acc-2", phone: "+15550002", label: "sales" }] },
    "get-chat-templates": { items: [{ id: "tpl1", name: "Price list", isActive: true }] },
    "ai-get-strategies": { items: [{ id: "st1", name: "Friendly seller" }] },
    "get-scenarios": { items: [{ id: "sc1", name: "Club welcome" }] },
    "save-trigger-rule": (body: Record<string, unknown>) => ({ ...saved, ...body, id: "rule2" }),
    "delete-trigger-rule": { ok: true },
    ...extra,
  } as Record<string, unknown>;
}
const choose = (select: HTMLElement, values: string[]) => {
  for (const o of Array.from((select as HTMLSelectElement).options)) o.selected = values.includes(o.value);
  fireEvent.change(select);
};
const sent = (gw: ReturnType<typeof mount>, command: string) => gw.calls.filter((c) => c.command === command);
const actions = () => within(screen.getByTestId("rule-form")).getAllByTestId("rule-action");

test("a new rule with several actions and specific sender accounts sends the contract's fields", async () => {
  const gw = mount(<Rules />, "operator", replies());
  const form = within(screen.getByTestId("rule-form"));
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: " quotes " } });
  await form.findByRole("option", { name: "prices" });
  choose(form.getByRole("listbox", { name: "Keyword sets" }), ["ks1"]);
  fireEvent.change(form.getByRole("combobox", { name: "Reply from" }), { target: { value: "specific" } });
  await form.findByRole("option", { name: "+15550002 (sales)" });
  choose(form.getByRole("listbox", { name: "Sender accounts" }), ["acc-1", "acc-2"]);
  // Action 1 (notify) stays; add an AI reply, a lead, a scenario.
  fireEvent.change(within(actions()[0]).getByRole("textbox", { name: /Notification text/ }), { target: { value: "asked" } });
  for (const type of ["ai_reply", "add_lead", "start_scenario"]) {
    fireEvent.click(form.getByRole("button", { name: "Add an action" }));
    fireEvent.change(within(actions()[actions().length - 1]).getByRole("combobox", { name: "Action" }), { target: { value: type } });
  }
  const ai = within(actions()[1]);
  fireEvent.change(ai.getByRole("combobox", { name: "AI mode" }), { target: { value: "semi" } });
  await ai.findByRole("option", { name: "Friendly seller" });
  fireEvent.change(ai.getByRole("combobox", { name: "AI strategy" }), { target: { value: "st1" } });
  fireEvent.change(ai.getByRole("textbox", { name: /Extra instruction/ }), { target: { value: "be brief" } });
  fireEvent.change(ai.getByRole("combobox", { name: "Reply in" }), { target: { value: "group_reply" } });
  const lead = within(actions()[2]);
  fireEvent.change(lead.getByRole("combobox", { name: "Lead stage" }), { target: { value: "replied" } });
  fireEvent.change(lead.getByRole("textbox", { name: /Tags/ }), { target: { value: "hot, hot, price" } });
  const scenario = within(actions()[3]);
  await scenario.findByRole("option", { name: "Club welcome" });
  fireEvent.change(scenario.getByRole("combobox", { name: "Scenario" }), { target: { value: "sc1" } });
  // Reorder: the lead first, then drop the notification.
  fireEvent.click(form.getByRole("button", { name: "Move action 3 up" }));
  fireEvent.click(form.getByRole("button", { name: "Move action 2 up" }));
  expect(actions().map((a) => a.getAttribute("data-type"))).toEqual(["add_lead", "notify", "ai_reply", "start_scenario"]);
  fireEvent.click(form.getByRole("button", { name: "Remove action 2" }));
  expect(form.getByRole("button", { name: "Move action 1 up" })).toHaveProperty("disabled", true);
  fireEvent.change(form.getByLabelText("Only from (time of day)"), { target: { value: "08:00" } });
  fireEvent.change(form.getByLabelText("Only until (time of day)"), { target: { value: "20:00" } });
  choose(form.getByRole("listbox", { name: "Skip leads in these stages" }), ["closed_won"]);
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(1));
  expect(sent(gw, "save-trigger-rule")[0].body).toEqual({
    name: "quotes", description: null, isActive: true, keywordSetIds: ["ks1"], sourceType: "all", sourceGroupIds: [],
    senderType: "specific", senderAccountIds: ["acc-1", "acc-2"],
    actions: [
      { type: "add_lead", stage: "replied", tags: ["hot", "price"] },
      { type: "ai_reply", mode: "semi", strategyId: "st1", prompt: "be brief", target: "group_reply", markup: null },
      { type: "start_scenario", scenarioId: "sc1" },
    ],
    delayMin: 30, delayMax: 120, dailyLimit: 50, cooldownSeconds: null, priority: 2, exclusive: true,
    conditions: { oncePerUser: false, excludeAdmin: true, newMemberOnly: false, minIntentScore: null,
      timeRange: { start: "08:00", end: "20:00", timezone: null }, excludeLeadStages: ["closed_won"] },
  });
  expect((await form.findByRole("status")).textContent).toBe("Rule quotes saved.");
});

test("an edited rule is saved with every field it had, and a changed action keeps the rest", async () => {
  const gw = mount(<Rules />, "operator", replies());
  const row = (await screen.findAllByTestId("rule-row"))[0];
  fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
  const form = within(screen.getByTestId("rule-form"));
  await waitFor(() => expect(actions()).toHaveLength(3));
  expect(actions().map((a) => a.getAttribute("data-type"))).toEqual(["reply_template", "add_lead", "notify"]);
  const buttons = within(actions()[0]).getAllByTestId("markup-button");
  expect((within(buttons[0]).getByRole("textbox", { name: "URL" }) as HTMLInputElement).value).toBe("https://example.com/buy");
  expect((within(buttons[1]).getByRole("textbox", { name: /Params/ }) as HTMLTextAreaElement).value).toBe('page=2\nsku="12"');
  expect(JSON.parse(within(actions()[0]).getByTestId("markup-json").textContent!)).toEqual(markup);
  await form.findByRole("option", { name: "+15550002 (sales)" });
  expect((form.getByRole("listbox", { name: "Sender accounts" }) as HTMLSelectElement).selectedOptions[0].value).toBe("acc-2");
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(1));
  expect(sent(gw, "save-trigger-rule")[0].body).toEqual(savedSpec);
  await form.findByText("Rule pricing saved.");
  // The notification's text changed: its channel stays, the other actions are as they were.
  fireEvent.change(within(actions()[2]).getByRole("textbox", { name: /Notification text/ }), { target: { value: "new text" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(2));
  const body = sent(gw, "save-trigger-rule")[1].body;
  expect(body.id).toBe("rule2"); // the rule as saved the first time
  expect(body.actions).toEqual([saved.actions[0], saved.actions[1], { type: "notify", channel: "alert", message: "new text" }]);
});

test("what the contract refuses is named first and nothing is sent; the gateway's refusal is shown", async () => {
  const r = replies();
  const gw = mount(<Rules />, "operator", r);
  const form = within(screen.getByTestId("rule-form"));
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "two replies" } });
  await form.findByRole("option", { name: "prices" });
  choose(form.getByRole("listbox", { name: "Keyword sets" }), ["ks1"]);
  fireEvent.change(form.getByRole("combobox", { name: "Reply from" }), { target: { value: "specific" } });
  fireEvent.change(within(actions()[0]).getByRole("combobox", { name: "Action" }), { target: { value: "reply_template" } });
  fireEvent.click(within(actions()[0]).getByRole("button", { name: "Add a button row" }));
  fireEvent.click(form.getByRole("button", { name: "Add an action" }));
  fireEvent.change(within(actions()[1]).getByRole("combobox", { name: "Action" }), { target: { value: "ai_reply" } });
  fireEvent.change(form.getByLabelText("Only from (time of day)"), { target: { value: "08:00" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  const problems = await form.findByTestId("form-problems");
  expect(Array.from(problems.querySelectorAll("li")).map((li) => li.textContent)).toEqual([
    "Choose the sender accounts, or another sender.",
    "The time window needs both a start and an end.",
    "A rule has at most one reply (AI reply or template reply).",
    "Action 1: choose the reply template.",
    "Action 1, buttons under the message row 1 button 1: the label must not be empty or blank.",
    "Action 1, buttons under the message row 1 button 1: give an absolute http(s) URL with a host.",
  ]);
  expect(sent(gw, "save-trigger-rule")).toHaveLength(0);
  // Fixed, the gateway may still refuse (here: the template is inactive).
  fireEvent.click(form.getByRole("button", { name: "Remove action 2" }));
  fireEvent.click(within(actions()[0]).getByRole("button", { name: "Remove row" }));
  await within(actions()[0]).findByRole("option", { name: "Price list" });
  fireEvent.change(within(actions()[0]).getByRole("combobox", { name: "Reply template" }), { target: { value: "tpl1" } });
  choose(form.getByRole("listbox", { name: "Sender accounts" }), ["acc-1"]);
  fireEvent.change(form.getByLabelText("Only from (time of day)"), { target: { value: "" } });
  r["save-trigger-rule"] = refusal("CONFLICT", "template tpl1 is inactive; activate it first");
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(1));
  expect(sent(gw, "save-trigger-rule")[0].body.actions).toEqual([{ type: "reply_template", templateId: "tpl1", target: "private", markup: null }]);
  expect((await screen.findByText(/template tpl1 is inactive/)).textContent).toContain("CONFLICT");
  expect(form.queryByTestId("form-problems")).toBeNull();
});

test("delete is for admins, after a confirm; a viewer has no Save, Edit or Delete", async () => {
  const gw = mount(<Rules />, "admin", replies());
  const row = (await screen.findAllByTestId("rule-row"))[0];
  window.confirm = () => false;
  fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
  expect(sent(gw, "delete-trigger-rule")).toHaveLength(0);
  window.confirm = () => true;
  fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
  await waitFor(() => expect(sent(gw, "delete-trigger-rule")[0]?.body).toEqual({ id: "rule1" }));
  cleanup();
  mount(<Rules />, "operator", replies());
  const opRow = (await screen.findAllByTestId("rule-row"))[0];
  expect(within(opRow).queryByRole("button", { name: "Delete" })).toBeNull();
  cleanup();
  mount(<Rules />, "viewer", replies());
  const viewRow = (await screen.findAllByTestId("rule-row"))[0];
  for (const name of ["Edit", "Delete", "Turn on/off"]) expect(within(viewRow).queryByRole("button", { name })).toBeNull();
  expect(within(screen.getByTestId("rule-form")).queryByRole("button", { name: "Save" })).toBeNull();
});

test("the dry run sends the sample message as typed: its group, time and sender, on a saved rule or the form", async () => {
  const r = replies({
    "test-trigger-rule": { matched: true, wouldFire: false, reason: "exclude_admin", matches: [{ keyword: "price" }], actions: [], conditions: [{ condition: "exclude_admin", passed: false, detail: "an admin" }] },
  });
  const gw = mount(<Rules />, "operator", r);
  const probe = within(screen.getByTestId("rule-test"));
  await probe.findByRole("option", { name: "pricing" });
  fireEvent.change(probe.getByRole("combobox", { name: "Rule" }), { target: { value: "rule1" } });
  fireEvent.change(probe.getByRole("textbox", { name: "Sample message" }), { target: { value: "price?" } });
  await probe.findByRole("option", { name: "Product Club" });
  fireEvent.change(probe.getByRole("combobox", { name: "Posted in" }), { target: { value: "g1" } });
  fireEvent.change(probe.getByLabelText("Posted at (now when empty)"), { target: { value: "2026-03-01T10:30" } });
  fireEvent.change(probe.getByRole("textbox", { name: "Sender @username" }), { target: { value: "@tara" } });
  fireEvent.change(probe.getByRole("textbox", { name: "Sender's first name" }), { target: { value: "Tara" } });
  fireEvent.change(probe.getByRole("spinbutton", { name: "Sender's intent score" }), { target: { value: "70" } });
  fireEvent.click(probe.getByRole("checkbox", { name: "The sender is a group admin" }));
  fireEvent.click(probe.getByRole("checkbox", { name: "Ignore the cool-down" }));
  fireEvent.click(probe.getByRole("button", { name: "Test" }));
  await waitFor(() => expect(sent(gw, "test-trigger-rule")).toHaveLength(1));
  expect(sent(gw, "test-trigger-rule")[0].body).toEqual({
    ruleId: "rule1",
    message: {
      text: "price?", groupId: "g1", at: new Date("2026-03-01T10:30").toISOString(),
      sender: { username: "tara", userId: 100000001, firstName: "Tara", isAdmin: true, isNewMember: false, intentScore: 70 },
    },
    ignoreCooldown: false,
  });
  const result = await probe.findByTestId("rule-test-result");
  expect(result.getAttribute("data-would-fire")).toBe("false");
  expect(result.textContent).toContain("✘ exclude_admin: an admin");
  // On the form as it stands: the rule itself goes with the sample.
  fireEvent.change(probe.getByRole("combobox", { name: "Rule" }), { target: { value: "" } });
  fireEvent.click(probe.getByRole("button", { name: "Test" }));
  await waitFor(() => expect(sent(gw, "test-trigger-rule")).toHaveLength(2));
  expect(sent(gw, "test-trigger-rule")[1].body.rule).toMatchObject({ name: "", actions: [{ type: "notify", channel: "console", message: null }] });
  expect(sent(gw, "test-trigger-rule")[1].body).not.toHaveProperty("ruleId");
});

/** A new rule with one template reply (tpl1), whose buttons the test then builds. */
async function templateReply() {
  const gw = mount(<Rules />, "operator", replies());
  const form = within(screen.getByTestId("rule-form"));
  fireEvent.change(form.getByRole("textbox", { name: "Name" }), { target: { value: "buttons" } });
  await form.findByRole("option", { name: "prices" });
  choose(form.getByRole("listbox", { name: "Keyword sets" }), ["ks1"]);
  const action = within(actions()[0]);
  fireEvent.change(action.getByRole("combobox", { name: "Action" }), { target: { value: "reply_template" } });
  await action.findByRole("option", { name: "Price list" });
  fireEvent.change(action.getByRole("combobox", { name: "Reply template" }), { target: { value: "tpl1" } });
  return { gw, form, m: within(action.getByTestId("markup")) };
}
const type = (scope: ReturnType<typeof within>, role: "textbox" | "combobox", name: string | RegExp, value: string) =>
  fireEvent.change(scope.getByRole(role, { name }), { target: { value } });

test("buttons are built one by one (keys and inline buttons added, moved, removed) and sent as the contract's markup", async () => {
  const { gw, form, m } = await templateReply();
  // The reply keyboard: a row of two keys (the second moved left), a second row moved up.
  type(m, "combobox", "Reply keyboard", "keyboard");
  const keys = () => m.getAllByTestId("keyboard-key").map((k) => within(k));
  type(keys()[0], "textbox", "Key text", "Prices");
  fireEvent.click(m.getByRole("button", { name: "Add a key" }));
  type(keys()[1], "textbox", "Key text", "Hours");
  fireEvent.click(keys()[1].getByRole("button", { name: "Move left" }));
  fireEvent.click(m.getByRole("button", { name: "Add a keyboard row" }));
  type(keys()[2], "textbox", "Key text", "Talk to us");
  fireEvent.click(within(m.getAllByTestId("keyboard-row")[1]).getByRole("button", { name: "Move row up" }));
  type(m, "textbox", "Input placeholder", "Ask away");
  fireEvent.click(m.getByRole("checkbox", { name: "Close after one press" }));
  // Inline: a url button and a callback with typed params (moved left), a command row, a row removed.
  const buttons = () => m.getAllByTestId("markup-button").map((b) => within(b));
  fireEvent.click(m.getByRole("button", { name: "Add a button row" }));
  type(buttons()[0], "textbox", "Label", "Buy");
  type(buttons()[0], "textbox", "URL", "https://example.com/buy");
  fireEvent.click(m.getByRole("button", { name: "Add a button" }));
  type(buttons()[1], "combobox", "Kind", "invoke");
  type(buttons()[1], "textbox", "Label", "More");
  type(buttons()[1], "textbox", /Params/, 'page=2\nsku="12"\nvip=true');
  fireEvent.click(buttons()[1].getByRole("checkbox", { name: "Ask to confirm first" }));
  fireEvent.click(buttons()[1].getByRole("button", { name: "Move left" }));
  fireEvent.click(m.getByRole("button", { name: "Add a button row" }));
  type(buttons()[2], "combobox", "Kind", "command");
  type(buttons()[2], "textbox", "Label", "Help");
  type(buttons()[2], "textbox", "Command", "/help prices");
  type(buttons()[2], "combobox", "Command mode", "send");
  type(buttons()[2], "combobox", "Look", "primary");
  type(within(m.getAllByTestId("markup-row")[1]), "textbox", "Row caption (Tailchat)", "More help");
  fireEvent.click(m.getByRole("button", { name: "Add a button row" }));
  type(buttons()[3], "textbox", "Label", "Gone");
  fireEvent.click(within(m.getAllByTestId("markup-row")[2]).getByRole("button", { name: "Remove row" }));
  const expected = {
    replyKeyboard: { rows: [[{ text: "Talk to us" }], [{ text: "Hours" }, { text: "Prices" }]], placeholder: "Ask away", oneTime: true },
    inline: {
      actions: [
        { id: "b2", type: "invoke", label: "More", params: { page: 2, sku: "12", vip: true }, confirm: true },
        { id: "b1", type: "url", label: "Buy", url: "https://example.com/buy" },
        { id: "b3", type: "command", label: "Help", command: "/help prices", mode: "send", priority: "primary" },
      ],
      rows: [{ actions: ["b2", "b1"] }, { actions: ["b3"], label: "More help" }],
    },
  };
  expect(JSON.parse(m.getByTestId("markup-json").textContent!)).toEqual(expected);
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(1));
  expect(sent(gw, "save-trigger-rule")[0].body.actions).toEqual([{ type: "reply_template", templateId: "tpl1", target: "private", markup: expected }]);
  // "Remove the user's keyboard" alone, no inline buttons: just that.
  type(within(actions()[0]), "combobox", "Reply keyboard", "remove");
  const removeFirstRow = () => fireEvent.click(within(within(actions()[0]).getAllByTestId("markup-row")[0]).getByRole("button", { name: "Remove row" }));
  removeFirstRow();
  removeFirstRow();
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(sent(gw, "save-trigger-rule")).toHaveLength(2));
  expect(sent(gw, "save-trigger-rule")[1].body.actions[0].markup).toEqual({ replyKeyboard: { remove: true } });
});

test("buttons the contract would refuse are named, part by part, and nothing is sent", async () => {
  const { gw, form, m } = await templateReply();
  type(m, "combobox", "Reply keyboard", "keyboard");
  type(m, "textbox", "Input placeholder", "x".repeat(65));
  const buttons = () => m.getAllByTestId("markup-button").map((b) => within(b));
  fireEvent.click(m.getByRole("button", { name: "Add a button row" }));
  type(buttons()[0], "textbox", "Label", "A label of thirty-three characters");
  type(buttons()[0], "textbox", "URL", "ftp://example.com");
  fireEvent.click(m.getByRole("button", { name: "Add a button" }));
  type(buttons()[1], "textbox", "Id", "b1");
  type(buttons()[1], "combobox", "Kind", "command");
  type(buttons()[1], "textbox", "Label", "Help");
  type(buttons()[1], "textbox", "Command", "help");
  fireEvent.click(m.getByRole("button", { name: "Add a button row" }));
  type(buttons()[2], "textbox", "Id", "order_lookup");
  type(buttons()[2], "combobox", "Kind", "invoke");
  type(buttons()[2], "textbox", "Label", "Order");
  type(buttons()[2], "textbox", /Params/, "order=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef");
  fireEvent.click(m.getAllByRole("button", { name: "Add a button" })[1]);
  type(buttons()[3], "combobox", "Kind", "modal");
  type(buttons()[3], "textbox", "Label", "Cancel");
  type(buttons()[3], "textbox", /Params/, "botId=1");
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  const problems = await form.findByTestId("form-problems");
  const inline = "Action 1, buttons under the message row";
  expect(Array.from(problems.querySelectorAll("li")).map((li) => li.textContent)).toEqual([
    "Action 1, reply keyboard row 1 key 1: the key's text must not be empty or blank.",
    "Action 1, reply keyboard: the placeholder is 65 characters; at most 64.",
    `${inline} 1 button 1: id b1 is used by another button.`,
    `${inline} 1 button 1: the label is 34 characters; at most 32.`,
    `${inline} 1 button 1: give an absolute http(s) URL with a host.`,
    `${inline} 1 button 2: id b1 is used by another button.`,
    `${inline} 1 button 2: a command is / and a name of a-z, 0-9 and _ (up to 32), optionally a space and arguments, 64 characters in all.`,
    `${inline} 2 button 1: the id and params take 67 bytes as callback data; Telegram carries at most 64.`,
    `${inline} 2 button 2: params are key=value lines: at most 8, names of letters, digits and _ (up to 32), not botId, each once.`,
  ]);
  expect(sent(gw, "save-trigger-rule")).toHaveLength(0);
});
