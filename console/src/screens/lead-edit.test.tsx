// Editing a lead against a fake gateway: only the changed fields, each to its command; the
// gateway's validation errors under the fields they name; a CONFLICT rebased; no editing for viewers.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { translator } from "../i18n";
import { mount, refusal } from "../testing";
import { fieldErrors, leadPlan, parseCustom, toDraft } from "./LeadEdit";
import { Leads } from "./Leads";
import { ApiError } from "../api/client";

afterEach(cleanup);
const t = translator("en");
const at = "2026-01-01T00:00:00.000Z";
const later = "2026-01-01T00:10:00.000Z";

const ada = {
  id: "l1", stage: "new", firstName: "Ada", lastName: "Lead", username: "ada_lead", phone: null, sourceType: "manual",
  intentLevel: "none", intentScore: null, tags: ["vip"], notes: null, customFields: { plan: "pro", seats: 5 },
  assignee: null, assignedAccountId: null, doNotContact: false, blacklisted: false, messageCount: 0, createdAt: at, updatedAt: at,
};
const replies = (extra: Record<string, unknown> = {}) => ({
  "get-leads": { items: [ada] },
  "get-funnel-stats": { total: 1, conversionRate: 0, stages: [] },
  "get-lead-details": { ...ada, stageHistory: [], recentMessages: [], recentJobs: [], matchedKeywords: [] },
  "get-accounts": { items: [{ id: "acc-1", phone: "+15550001", label: "main" }] },
  "update-lead": { ...ada, notes: "Wants a quote", tags: ["vip", "quote"], updatedAt: later },
  "assign-lead": { affected: 1 },
  "update-lead-stage": { ...ada, stage: "contacted", updatedAt: later },
  ...extra,
});

async function openEditor() {
  fireEvent.click(await screen.findByRole("button", { name: "Ada Lead" }));
  const details = await screen.findByTestId("lead-details");
  fireEvent.click(await within(details).findByRole("button", { name: "Edit" }));
  return within(await screen.findByTestId("lead-edit"));
}

test("saving sends only what changed: details to update-lead, the owner to assign-lead, the stage to update-lead-stage", async () => {
  const gw = mount(<Leads />, "operator", replies());
  const form = await openEditor();
  const first = form.getByRole("textbox", { name: "First name" }) as HTMLInputElement;
  expect(first.value).toBe("Ada");
  expect(document.activeElement).toBe(first); // the form takes the focus
  expect((form.getByRole("textbox", { name: "Tags (comma-separated)" }) as HTMLInputElement).value).toBe("vip");
  expect((form.getByRole("textbox", { name: "Custom fields (one key=value a line)" }) as HTMLTextAreaElement).value).toBe("plan=pro\nseats=5");
  fireEvent.change(form.getByRole("textbox", { name: "Notes" }), { target: { value: "Wants a quote" } });
  fireEvent.change(form.getByRole("textbox", { name: "Tags (comma-separated)" }), { target: { value: "vip, quote, vip" } });
  fireEvent.change(form.getByRole("textbox", { name: "Owner" }), { target: { value: "alice" } });
  await waitFor(() => expect(form.getByRole("option", { name: "+15550001 (main)" })).toBeTruthy());
  fireEvent.change(form.getByRole("combobox", { name: "Talking account" }), { target: { value: "acc-1" } });
  fireEvent.change(form.getByRole("combobox", { name: "Stage" }), { target: { value: "contacted" } });
  fireEvent.change(form.getByRole("textbox", { name: "Why the stage changes" }), { target: { value: "called her" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(screen.queryByTestId("lead-edit")).toBeNull()); // saved: back to the details
  const sent = (c: string) => gw.calls.filter((x) => x.command === c).map((x) => x.body);
  expect(sent("update-lead")).toEqual([{ leadId: "l1", notes: "Wants a quote", tags: ["vip", "quote"], expectedUpdatedAt: at }]);
  expect(sent("assign-lead")).toEqual([{ leadIds: ["l1"], assignee: "alice", accountId: "acc-1" }]);
  expect(sent("update-lead-stage")).toEqual([{ leadId: "l1", stage: "contacted", reason: "called her" }]);
});

test("the gateway's validation errors appear under their fields, the first one focused; nothing else is sent", async () => {
  const invalid = refusal("VALIDATION_ERROR", "update-lead: invalid payload", [
    { loc: ["phone"], msg: "String should match pattern '^\\+[1-9][0-9]{4,15}$'", type: "string_pattern_mismatch" },
    { loc: ["tags", "1"], msg: "String should have at most 40 characters", type: "string_too_long" },
  ]);
  const gw = mount(<Leads />, "operator", replies({ "update-lead": invalid }));
  const form = await openEditor();
  fireEvent.change(form.getByRole("textbox", { name: "Phone" }), { target: { value: "12ab" } });
  fireEvent.change(form.getByRole("textbox", { name: "Tags (comma-separated)" }), { target: { value: `vip, ${"x".repeat(41)}` } });
  fireEvent.change(form.getByRole("textbox", { name: "Owner" }), { target: { value: "alice" } });
  fireEvent.submit(form.getByRole("textbox", { name: "Phone" }).closest("form")!);
  const phoneError = await waitFor(() => {
    const e = document.getElementById("lead-phone-error");
    if (!e) throw new Error("no phone error yet");
    return e;
  });
  expect(phoneError.textContent).toContain("String should match pattern");
  const phone = form.getByRole("textbox", { name: "Phone" });
  expect(phone.getAttribute("aria-invalid")).toBe("true");
  expect(phone.getAttribute("aria-describedby")).toBe("lead-phone-error");
  expect(document.getElementById("lead-tags-error")!.textContent).toBe("1: String should have at most 40 characters");
  await waitFor(() => expect(document.activeElement).toBe(phone));
  expect(form.getByTestId("lead-edit-error").textContent).toContain("VALIDATION_ERROR");
  expect(gw.calls.some((c) => c.command === "assign-lead")).toBe(false); // stopped at the refusal
  expect(screen.getByTestId("lead-edit")).toBeTruthy(); // the form stays, with what was typed
  expect((phone as HTMLInputElement).value).toBe("12ab");
});

test("a custom-field line without = is named before anything is sent; Escape leaves the form", async () => {
  const gw = mount(<Leads />, "operator", replies());
  const form = await openEditor();
  fireEvent.change(form.getByRole("textbox", { name: "Custom fields (one key=value a line)" }), { target: { value: "plan=pro\nbroken" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  expect((await screen.findByTestId("field-error")).textContent).toBe("Write key=value on line 2.");
  expect(gw.calls.some((c) => c.command === "update-lead")).toBe(false);
  fireEvent.keyDown(form.getByRole("textbox", { name: "Notes" }), { key: "Escape" });
  await waitFor(() => expect(screen.queryByTestId("lead-edit")).toBeNull());
  expect(document.activeElement).toBe(screen.getByRole("button", { name: "Edit" })); // focus back where it was
});

test("a CONFLICT (changed meanwhile) offers to apply the changes to the lead as it is now", async () => {
  let conflicts = 1;
  const r = replies({
    "update-lead": (body: { expectedUpdatedAt: string }) =>
      body.expectedUpdatedAt === at && conflicts-- > 0
        ? refusal("CONFLICT", "lead l1 changed since 2026-01-01T00:00:00+00:00")
        : { ...ada, notes: "n", updatedAt: later },
  });
  const gw = mount(<Leads />, "operator", r);
  const form = await openEditor();
  r["get-lead-details"] = { ...ada, updatedAt: "2026-01-01T00:05:00.000Z", stageHistory: [], recentMessages: [], recentJobs: [], matchedKeywords: [] };
  fireEvent.change(form.getByRole("textbox", { name: "Notes" }), { target: { value: "n" } });
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  fireEvent.click(await form.findByRole("button", { name: "Apply my changes to the lead as it is now" }));
  await waitFor(() => expect(form.queryByRole("button", { name: "Apply my changes to the lead as it is now" })).toBeNull());
  fireEvent.click(form.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(screen.queryByTestId("lead-edit")).toBeNull());
  expect(gw.calls.filter((c) => c.command === "update-lead").map((c) => c.body.expectedUpdatedAt)).toEqual([at, "2026-01-01T00:05:00.000Z"]);
});

test("a viewer sees the lead's fields but no Edit", async () => {
  mount(<Leads />, "viewer", replies());
  fireEvent.click(await screen.findByRole("button", { name: "Ada Lead" }));
  const details = await screen.findByTestId("lead-details");
  await within(details).findByText("@ada_lead");
  expect(within(details).getByTestId("lead-tags").textContent).toBe("vip");
  expect(within(details).queryByRole("button", { name: "Edit" })).toBeNull();
});

test("the plan: nothing changed sends nothing; @ and spaces are not changes; a removed custom field is null", () => {
  const base = ada as never;
  const d = toDraft(base);
  expect(leadPlan(base, d, t)).toEqual({ update: null, assign: null, stage: null, local: {} });
  expect(leadPlan(base, { ...d, username: " @ada_lead ", tags: " vip ," }, t).update).toBeNull();
  const plan = leadPlan(base, { ...d, customFields: "plan=team\nactive=true", intentScore: "80", firstName: " " }, t);
  expect(plan.update).toEqual({
    leadId: "l1", firstName: null, intentScore: 80, customFields: { plan: "team", active: true, seats: null }, expectedUpdatedAt: at,
  });
  expect(leadPlan(base, { ...d, intentScore: "lots" }, t).update).toMatchObject({ intentScore: "lots" }); // the gateway says why
  expect(parseCustom("a=1\n=x\n\nb=two=2")).toEqual({ fields: { a: 1, b: "two=2" }, bad: [2] });
  const errs = fieldErrors("assign-lead", new ApiError("VALIDATION_ERROR", "bad", 422, [
    { loc: ["assignee"], msg: "String should have at most 100 characters" },
    { loc: [], msg: "Value error, give accountId and/or assignee" },
    { loc: ["leadIds", "0"], msg: "Field required" },
  ]));
  expect(errs).toEqual({ assignee: "String should have at most 100 characters", "": "give accountId and/or assignee; leadIds: Field required" });
  expect(fieldErrors("update-lead", new ApiError("CONFLICT", "changed", 409))).toEqual({});
});
