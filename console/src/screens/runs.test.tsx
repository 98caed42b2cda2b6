// The task centre's ad campaigns and collaboration runs against a fake gateway and a fake live feed:
// progress, state, failures per account with reason and retry time, the actions by role, and the
// rows following the pushed events.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { fakeLive, mount } from "../testing";
import { Queue } from "./Queue";
import { byAccount, jobProgress, peerName } from "./Runs";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";
const retryAt = "2026-01-01T00:05:00Z";

const ad = (status: string, extra: object = {}) => ({
  id: "ad1", name: "Spring sale", status, templateIds: ["t1"], targets: [{ chat: -1001 }], schedule: { type: "once" },
  counters: { runs: 1, posted: 3, failed: 1, skipped: 0 }, nextRunAt: null, lastError: null, createdAt: at, updatedAt: at,
  ...extra,
});
const run = (status: string, extra: object = {}) => ({
  id: "run-000001", scriptId: "s1", scenarioId: null, status, currentStage: 1, currentLine: 0, messagesSent: 1, messagesTotal: 3,
  waitingFor: "manual", replies: 0, outcome: null, createdAt: at,
  target: { kind: "user", userId: 42, firstName: "Tara" }, chat: { kind: "channel", title: "Product Club" },
  participants: [{ slot: "expert", roleId: "r1", roleName: "Expert", accountId: "acc-1" }],
  ...extra,
});
const queue = (extra: object = {}) => ({
  paused: false, generatedAt: at, accounts: [], pauses: [],
  totals: { pending: 1, scheduled: 0, inFlight: 0, sent: 3, failed: 1, skipped: 0 },
  campaigns: [
    { campaignId: "ad1", pending: 1, scheduled: 0, inFlight: 0, sent: 3, failed: 1, skipped: 0, cancelled: 0 },
    { campaignId: "run-000001", pending: 0, scheduled: 1, inFlight: 0, sent: 1, failed: 0, skipped: 0, cancelled: 0 },
  ],
  jobs: { items: [] },
  ...extra,
});
const job = (id: string, state: string, extra: object = {}) => ({
  jobId: id, state, peer: -1001, accountId: "acc-1", attempts: 1, maxAttempts: 3, priority: "high", kind: "group",
  idempotencyKey: id, createdAt: at, updatedAt: at, ...extra,
});

function replies(adStatus = "running", runStatus = "running") {
  return {
    "get-queue-status": queue(),
    "get-campaigns": { items: [] },
    "get-accounts": { items: [{ id: "acc-1", phone: "+15550001" }, { id: "acc-2", phone: "+15550002" }] },
    "get-ad-campaigns": { items: [ad(adStatus)] },
    "get-collaboration-status": { items: [run(runStatus)] },
    "get-scripts": { items: [{ id: "s1", name: "club talk" }] },
    "get-scenarios": { items: [] },
    "get-swarm-status": { items: [] },
    "stop-ad-campaign": ad("stopped"),
    "start-ad-campaign": ad("running"),
    "pause-queue": { scope: "campaign", campaignId: "ad1", paused: true },
    "resume-queue": { scope: "campaign", campaignId: "ad1", paused: false },
    "start-collaboration": run("running", { currentStage: 2, waitingFor: "time" }),
    "stop-collaboration": run("stopped", { outcome: "stopped", waitingFor: null }),
  } as Record<string, unknown>;
}

test("an ad campaign shows its state, progress and counters; the operator's actions send the commands", async () => {
  const gw = mount(<Queue />, "operator", replies());
  const row = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  await waitFor(() => expect(within(row).getByTestId("ad-progress").textContent).toContain("4 / 5"));
  expect(within(row).getByTestId("ad-status").textContent).toBe("running");
  expect(within(row).getByTestId("ad-counters").textContent).toBe("1 runs · 3 posted · 1 failed · 0 skipped");
  expect(within(row).queryByRole("button", { name: "Start" })).toBeNull(); // running already
  fireEvent.click(within(row).getByRole("button", { name: "Pause its sends" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "pause-queue")?.body).toMatchObject({ scope: "campaign", campaignId: "ad1" }));
  // The row's buttons are disabled while its call is under way (long on a loaded machine).
  await waitFor(() => expect(within(row).getByRole("button", { name: "Stop" })).toHaveProperty("disabled", false));
  window.confirm = () => false;
  fireEvent.click(within(row).getByRole("button", { name: "Stop" }));
  expect(gw.calls.some((c) => c.command === "stop-ad-campaign")).toBe(false);
  window.confirm = () => true;
  fireEvent.click(within(row).getByRole("button", { name: "Stop" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "stop-ad-campaign")?.body).toEqual({ id: "ad1", cancelPending: true }));
});

test("a campaign's failures: per account with reason and next retry, then job by job", async () => {
  const r = replies();
  mount(<Queue />, "viewer", r);
  const row = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  // A viewer reads everything but gets no action.
  for (const name of ["Start", "Stop", "Pause its sends"]) expect(within(row).queryByRole("button", { name })).toBeNull();
  r["get-queue-status"] = queue({
    jobs: {
      items: [
        job("job-failed01", "failed", { reason: "chat_write_forbidden", lastError: "CHAT_WRITE_FORBIDDEN" }),
        job("job-retry001", "scheduled", { accountId: "acc-2", reason: "flood_wait", lastError: "FLOOD_WAIT_300", notBefore: retryAt }),
        job("job-waiting1", "pending", { accountId: "acc-2", attempts: 0 }), // simply waiting: no trouble
      ],
    },
  });
  const toggle = within(row).getByRole("button", { name: "Failures (1)" });
  expect(toggle.getAttribute("aria-expanded")).toBe("false");
  fireEvent.click(toggle);
  expect(toggle.getAttribute("aria-expanded")).toBe("true");
  const troubles = await screen.findByTestId("troubles");
  const accounts = await within(troubles).findAllByTestId("trouble-account");
  expect(accounts.map((a) => a.getAttribute("data-account"))).toEqual(["acc-1", "acc-2"]);
  await waitFor(() => expect(accounts[0].textContent).toContain("+15550001"));
  expect(accounts[0].textContent).toContain("chat_write_forbidden");
  expect(accounts[1].textContent).toContain("flood_wait");
  expect(accounts[1].textContent).toContain(new Intl.DateTimeFormat("en-GB", { dateStyle: "short", timeStyle: "medium" }).format(new Date(retryAt)));
  const jobs = within(troubles).getAllByTestId("job-row");
  expect(jobs.map((j) => j.getAttribute("data-job"))).toEqual(["job-failed01", "job-retry001"]);
});

test("rows follow the pushed events: a run completes, a collaboration advances", async () => {
  const r = replies("running", "running");
  const { live, push } = fakeLive();
  const gw = mount(<Queue />, "operator", r, live);
  const adRow = () => screen.getByText("Spring sale").closest("tr")!;
  await screen.findByText("Spring sale");
  r["get-ad-campaigns"] = { items: [ad("completed", { counters: { runs: 1, posted: 4, failed: 1, skipped: 0 } })] };
  r["get-queue-status"] = queue({ campaigns: [{ campaignId: "ad1", pending: 0, scheduled: 0, inFlight: 0, sent: 4, failed: 1, skipped: 0, cancelled: 0 }] });
  push("ad-run-completed", { adCampaignId: "ad1", run: 1, posted: 4, failed: 1, skipped: 0 });
  await waitFor(() => expect(adRow().getAttribute("data-status")).toBe("completed"));
  await waitFor(() => expect(within(adRow()).getByTestId("ad-progress").textContent).toContain("5 / 5"));
  expect(within(adRow()).queryByRole("button", { name: "Stop" })).toBeNull();

  const runRow = () => screen.getByTestId("collaborations").querySelector('[data-testid="collaboration"]')!;
  await waitFor(() => expect(runRow().textContent).toContain("club talk"));
  expect(runRow().textContent).toContain("Tara");
  expect(runRow().textContent).toContain("Product Club");
  expect(runRow().textContent).toContain("Expert (+15550001)");
  expect(within(runRow() as HTMLElement).getByTestId("run-progress").textContent).toContain("1 / 3 lines");
  expect(runRow().textContent).toContain("stage 2, line 1");
  expect(runRow().textContent).toContain("an operator to start the next stage");
  fireEvent.click(within(runRow() as HTMLElement).getByRole("button", { name: "Start the next stage" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "start-collaboration")?.body).toEqual({ advanceRunId: "run-000001" }));
  r["get-collaboration-status"] = { items: [run("completed", { messagesSent: 3, waitingFor: null, outcome: "replied", currentStage: 2 })] };
  push("collaboration-progress", { runId: "run-000001", status: "completed", messagesSent: 3, messagesTotal: 3 });
  await waitFor(() => expect(runRow().getAttribute("data-status")).toBe("completed"));
  expect(within(runRow() as HTMLElement).getByTestId("run-progress").textContent).toContain("3 / 3 lines");
  expect(runRow().textContent).toContain("replied");
  expect(within(runRow() as HTMLElement).queryByRole("button", { name: "Stop" })).toBeNull();
});

test("a run's sends paused show Resume; stopping a run asks first; a stopped ad can be resumed", async () => {
  const r = replies("stopped", "running");
  r["get-queue-status"] = queue({ pauses: [{ scope: "campaign", campaignId: "run-000001", pausedAt: at }] });
  const gw = mount(<Queue />, "operator", r);
  const runRow = await within(await screen.findByTestId("collaborations")).findByText("club talk").then((c) => c.closest("tr")!);
  await waitFor(() => expect(runRow.getAttribute("data-paused")).toBe("true"));
  expect(runRow.textContent).toContain("sends paused");
  fireEvent.click(within(runRow).getByRole("button", { name: "Resume its sends" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "resume-queue")?.body).toEqual({ scope: "campaign", campaignId: "run-000001" }));
  await waitFor(() => expect(within(runRow).getByRole("button", { name: "Stop" })).toHaveProperty("disabled", false));
  window.confirm = () => true;
  fireEvent.click(within(runRow).getByRole("button", { name: "Stop" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "stop-collaboration")?.body).toEqual({ runId: "run-000001", reason: "console" }));
  const adRow = screen.getByText("Spring sale").closest("tr")!;
  fireEvent.click(within(adRow).getByRole("button", { name: "Resume" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "start-ad-campaign")?.body).toEqual({ id: "ad1" }));
});

test("a refused action is shown on its row", async () => {
  const r = replies("draft");
  mount(<Queue />, "operator", r);
  const row = await screen.findByText("Spring sale").then((c) => c.closest("tr")!);
  delete r["start-ad-campaign"]; // the fake gateway answers NOT_FOUND
  fireEvent.click(within(row).getByRole("button", { name: "Start" }));
  expect((await within(row).findByRole("alert")).textContent).toContain("NOT_FOUND");
});

test("the helpers: progress over a campaign's jobs, trouble by account, peer names", () => {
  expect(jobProgress(undefined)).toEqual({ done: 0, total: 0 });
  expect(jobProgress({ sent: 2, failed: 1, skipped: 1, cancelled: 1, pending: 2, scheduled: 1, inFlight: 1 })).toEqual({ done: 5, total: 9 });
  const rows = byAccount([
    job("a", "failed", { reason: "peer_flood" }),
    job("b", "scheduled", { reason: "flood_wait", notBefore: "2026-01-01T00:09:00Z" }),
    job("c", "scheduled", { reason: "flood_wait", notBefore: "2026-01-01T00:07:00Z" }),
    job("d", "sent"),
  ] as never);
  expect(rows).toEqual([{ accountId: "acc-1", failed: 1, retrying: 2, reasons: ["peer_flood", "flood_wait"], nextRetry: "2026-01-01T00:07:00Z" }]);
  expect(peerName({ kind: "user", username: "tara" })).toBe("@tara");
  expect(peerName({ kind: "user", userId: 7 })).toBe("7");
  expect(peerName(null)).toBe("—");
});
