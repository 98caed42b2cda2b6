import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { translator } from "../i18n";
import { mount } from "../testing";
import { Fleet, health } from "./Fleet";
import { Queue } from "./Queue";
import { EMPTY_ACTION, EMPTY_RULE, toRule } from "./Rules";

afterEach(cleanup);

const account = {
  id: "a1", phone: "+15550001", state: "flood_wait", role: "sender", dailySendCount: 3, dailySendLimit: 40,
  floodWaitUntil: new Date(Date.now() + 90_000).toISOString(), proxy: { type: "socks5", host: "10.0.0.1", port: 1080 },
  createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z",
};

test("the fleet shows state, health with time left, proxy, exit IP, role and sends", async () => {
  const bindings = { items: [{ accountId: "a1", boundAt: "2026-01-01T00:00:00Z", exitIp: "203.0.113.7", proxy: account.proxy }] };
  mount(<Fleet />, "viewer", { "get-accounts": { items: [account] }, "ip-get-all-bindings": bindings });
  const row = await screen.findByText("+15550001");
  await screen.findAllByText("203.0.113.7");
  const cells = Array.from(row.closest("tr")!.querySelectorAll("td")).map((c) => c.textContent);
  expect(cells[2]).toBe("flood wait");
  expect(cells[3]).toMatch(/^flood wait, (89|90) s left$/);
  expect(cells[4]).toBe("socks5://10.0.0.1:1080");
  expect(cells[5]).toBe("203.0.113.7");
  expect(cells[6]).toBe("sender");
  expect(cells[7]).toBe("3 / 40");
});

test("a viewer gets no write controls; an operator gets add and QR but not remove (admin)", async () => {
  mount(<Fleet />, "viewer", { "get-accounts": { items: [account] } });
  await screen.findByText("+15550001");
  expect(screen.queryByText("Add an account by phone")).toBeNull();
  expect(screen.queryByText("QR login")).toBeNull();
  expect(screen.queryByRole("button", { name: "Remove" })).toBeNull();
  cleanup();
  mount(<Fleet />, "operator", { "get-accounts": { items: [account] } });
  await screen.findByText("+15550001");
  expect(screen.getByText("Add an account by phone")).toBeTruthy();
  expect(screen.getByText("QR login")).toBeTruthy();
  expect(screen.queryByRole("button", { name: "Remove" })).toBeNull();
});

test("filters are sent to get-accounts", async () => {
  const gw = mount(<Fleet />, "viewer", { "get-accounts": { items: [] } });
  fireEvent.change(screen.getByRole("searchbox"), { target: { value: "alice" } });
  fireEvent.change(screen.getAllByRole("combobox")[0], { target: { value: "banned" } });
  await waitFor(() =>
    expect(gw.calls.some((c) => c.body.text === "alice" && c.body.state?.[0] === "banned")).toBe(true),
  );
});

test("the task centre shows a failure's account, reason and retry time; pause for operators only", async () => {
  const status = {
    paused: false, generatedAt: "2026-01-01T00:00:00Z", accounts: [], campaigns: [], pauses: [],
    totals: { pending: 1, scheduled: 0, inFlight: 0, sent: 5, failed: 1, skipped: 0 },
    jobs: { items: [{ jobId: "job-00000001", peer: "@bob", accountId: null, state: "failed", attempts: 3, maxAttempts: 3, reason: "peer_flood", lastError: "PEER_FLOOD", updatedAt: "2026-01-01T00:00:00Z" }] },
  };
  mount(<Queue />, "operator", { "get-queue-status": status, "get-campaigns": { items: [] }, "get-accounts": { items: [] } });
  const row = await screen.findByText("@bob");
  expect(row.closest("tr")!.textContent).toContain("peer_flood: PEER_FLOOD");
  expect(screen.getByRole("button", { name: "Pause queue" })).toBeTruthy();
  expect(screen.queryByRole("button", { name: "Clear waiting jobs" })).toBeNull(); // admin only
  cleanup();
  mount(<Queue />, "viewer", { "get-queue-status": status, "get-campaigns": { items: [] } });
  await screen.findByText("@bob");
  expect(screen.queryByRole("button", { name: "Pause queue" })).toBeNull();
  expect(screen.queryByText("Send a message")).toBeNull();
});

test("an admin clears the queue only after the dialog, and the call carries confirm: true", async () => {
  const status = {
    paused: false, generatedAt: "2026-01-01T00:00:00Z", accounts: [], campaigns: [], pauses: [],
    totals: { pending: 2, scheduled: 0, inFlight: 0, sent: 0, failed: 0, skipped: 0 }, jobs: { items: [] },
  };
  const gw = mount(<Queue />, "admin", {
    "get-queue-status": status, "get-campaigns": { items: [] }, "get-accounts": { items: [] },
    "clear-queue": { cancelled: 2, inFlightUntouched: 0 },
  });
  const clear = await screen.findByRole("button", { name: "Clear waiting jobs" });
  window.confirm = () => false;
  fireEvent.click(clear);
  expect(gw.calls.some((c) => c.command === "clear-queue")).toBe(false);
  window.confirm = () => true;
  fireEvent.click(clear);
  await waitFor(() => expect(gw.calls.find((c) => c.command === "clear-queue")?.body).toEqual({ scope: "all", confirm: true }));
});

test("the rule form becomes the contract's rule", () => {
  const rule = toRule({ ...EMPTY_RULE, name: " r ", keywordSetIds: ["s1"], actions: [{ ...EMPTY_ACTION, type: "ai_reply", prompt: "be brief" }], cooldownSeconds: 60 });
  expect(rule).toMatchObject({
    name: "r", keywordSetIds: ["s1"], actions: [{ type: "ai_reply", mode: "full", strategyId: null, prompt: "be brief", target: "private", markup: null }],
    cooldownSeconds: 60, sourceGroupIds: [], senderAccountIds: [],
    conditions: { excludeAdmin: true, oncePerUser: false, timeRange: null, excludeLeadStages: ["closed_won", "closed_lost"] },
  });
});

test("health shows the score when nothing limits the account", () => {
  expect(health({ ...account, state: "active", healthScore: 87 } as never, translator("en"), Date.now(), String)).toBe("87/100");
});
