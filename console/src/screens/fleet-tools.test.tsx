// The Fleet screen's extras against a fake gateway: bulk actions, exit IP checks, session-string import,
// API credentials, the developer-site scrape with its code step, proxies.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { mount } from "../testing";
import { Fleet } from "./Fleet";
import { EMPTY_PROXY, parseSessionLines, proxyConfig } from "./FleetTools";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";
const acct = (id: string, phone: string) => ({ id, phone, state: "active", role: "listener", createdAt: at, updatedAt: at });
const proxy = { type: "socks5", host: "10.0.0.9", port: 1080 };
const SESSION = "1BVtsOKABu" + "x".repeat(40);
const BASE = {
  "get-accounts": { items: [acct("a1", "+15550001"), acct("a2", "+15550002")] },
  "ip-get-all-bindings": { items: [{ accountId: "a1", phone: "+15550001", boundAt: at, exitIp: "203.0.113.7", proxy, successCount: 4, failCount: 1, avgLatencyMs: 80 }] },
  "get-api-credentials": { capacity: 10, inUse: 1, items: [{ id: "c1", apiId: 12345, apiHashMasked: "ab…ef", maxAccounts: 10, accountsInUse: 1, createdAt: at, source: "scraped", lastTestOk: true, lastTestedAt: at }] },
  "bulk-assign-role": { ok: false, affected: 1, requested: 2, failed: [{ accountId: "a2", code: "CONFLICT", message: "logging in" }] },
  "bulk-delete-accounts": { ok: true, affected: 2, requested: 2 },
  "batch-update-accounts": { ok: true, affected: 2, requested: 2 },
  "ip-verify-binding": { accountId: "a1", checkedAt: at, isValid: false, ipChanged: true, exitIp: "198.51.100.2", proxyReachable: true },
  "test-api-credential": { apiId: 12345, ok: false, error: "API_ID_INVALID", testedAt: at },
  "save-api-credential": { id: "c2", apiId: 777, apiHashMasked: "12…34", maxAccounts: 5, createdAt: at },
  "test-proxy": { ok: true, exitIp: "192.0.2.44", latencyMs: 120.4, telegramReachable: true, proxy, testedAt: at },
  "ip-bind": { accountId: "a2", boundAt: at, proxy },
  "add-account": acct("a3", "+15550003"),
};

test("bulk actions apply to the selected accounts and show each failure; delete only for admins", async () => {
  const gw = mount(<Fleet />, "operator", BASE);
  await screen.findByText("+15550002", { selector: "td" });
  const bulk = screen.getByTestId("bulk");
  expect(within(bulk).queryByRole("button", { name: "Delete selected" })).toBeNull();
  expect((within(bulk).getByRole("button", { name: "Set role" }) as HTMLButtonElement).disabled).toBe(true);
  fireEvent.click(screen.getByRole("checkbox", { name: "Select all shown" }));
  expect(within(bulk).getByText("2 selected")).toBeTruthy();
  fireEvent.change(within(bulk).getByRole("combobox", { name: "Role" }), { target: { value: "sender" } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set role" }));
  const result = await screen.findByTestId("bulk-result");
  expect(result.textContent).toContain("1 of 2 done.");
  expect(result.textContent).toContain("a2: CONFLICT logging in");
  expect(gw.calls.find((c) => c.command === "bulk-assign-role")?.body).toEqual({ accountIds: ["a1", "a2"], role: "sender" });
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550002" }));
  fireEvent.change(within(bulk).getByRole("spinbutton"), { target: { value: "25" } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set limit" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "batch-update-accounts")?.body).toEqual({ accountIds: ["a2"], updates: { dailySendLimit: 25 } }));
  cleanup();
  const admin = mount(<Fleet />, "admin", BASE);
  await screen.findByText("+15550002", { selector: "td" });
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  window.confirm = vi.fn(() => true);
  fireEvent.click(screen.getByRole("button", { name: "Delete selected" }));
  await waitFor(() => expect(admin.calls.find((c) => c.command === "bulk-delete-accounts")?.body).toEqual({ accountIds: ["a1"], logout: true, confirm: true }));
});

test("an account's exit IP is checked on demand and a change is shown", async () => {
  mount(<Fleet />, "operator", BASE);
  const rowOf = async (phone: string) => (await screen.findAllByTestId("account-row")).find((r) => r.dataset.phone === phone)!;
  const row = await rowOf("+15550001");
  fireEvent.click(await within(row).findByRole("button", { name: "Check IP" }));
  await waitFor(() => expect(within(row).getByTestId("exit-ip").textContent).toBe("check failed: exit IP changed to 198.51.100.2"));
  // Only a bound account can be checked.
  const other = await rowOf("+15550002");
  expect(within(other).queryByRole("button", { name: "Check IP" })).toBeNull();
});

test("session strings: one per line, bad lines named, each imported with its own outcome", async () => {
  expect(parseSessionLines(`# header\n+1 555 000 3 ${SESSION}\n\n+15550004,${SESSION}\nnot a line`)).toEqual({
    ok: [{ line: 2, phone: "+15550003", sessionString: SESSION }, { line: 4, phone: "+15550004", sessionString: SESSION }],
    bad: [5],
  });
  const gw = mount(<Fleet />, "operator", { ...BASE, "add-account": undefined });
  const panel = await screen.findByTestId("import-sessions");
  const box = within(panel).getByRole("textbox");
  fireEvent.change(box, { target: { value: `+15550003 ${SESSION}\noops` } });
  expect(within(panel).getByText('Lines 2 are not "phone session-string".')).toBeTruthy();
  expect((within(panel).getByRole("button", { name: "Import 1" }) as HTMLButtonElement).disabled).toBe(true);
  fireEvent.change(box, { target: { value: `+15550003 ${SESSION}` } });
  fireEvent.click(within(panel).getByRole("button", { name: "Import 1" }));
  // The fake answers add-account NOT_FOUND here: the line's failure is shown, with its number.
  expect((await within(panel).findByTestId("import-result")).textContent).toBe("Line 1 (+15550003): NOT_FOUND no");
  expect(gw.calls.find((c) => c.command === "add-account")?.body).toEqual({ phone: "+15550003", sessionString: SESSION });
});

test("API credentials: the hash is write-only, a test shows its error; a viewer sees the pool only", async () => {
  const gw = mount(<Fleet />, "admin", BASE);
  const panel = await screen.findByTestId("api-credentials");
  const row = await within(panel).findByTestId("api-credential");
  expect(row.textContent).toContain("ab…ef");
  expect(row.textContent).toContain("from the developer site");
  fireEvent.click(within(row).getByRole("button", { name: "Test" }));
  await waitFor(() => expect(row.textContent).toContain("failed: API_ID_INVALID"));
  const hash = panel.querySelector('input[name="cred-api-hash"]') as HTMLInputElement;
  expect(hash.type).toBe("password");
  fireEvent.change(panel.querySelector('input[name="cred-api-id"]')!, { target: { value: "777" } });
  fireEvent.change(hash, { target: { value: "0123456789abcdef0123456789abcdef" } });
  fireEvent.click(within(panel).getByRole("button", { name: "Add credential" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "save-api-credential")?.body).toMatchObject({ apiId: 777, apiHash: "0123456789abcdef0123456789abcdef", test: true }));
  await waitFor(() => expect(hash.value).toBe(""));
  cleanup();
  mount(<Fleet />, "viewer", BASE);
  const viewer = await screen.findByTestId("api-credentials");
  await within(viewer).findByTestId("api-credential");
  expect(within(viewer).queryAllByRole("button")).toEqual([]);
  expect(viewer.querySelector("form")).toBeNull();
  expect(screen.queryByTestId("credential-scrape")).toBeNull();
  expect(screen.queryByTestId("import-sessions")).toBeNull();
  expect(screen.queryByTestId("bulk")).toBeNull();
  await within(screen.getByTestId("proxies")).findByTestId("binding");
  expect(within(screen.getByTestId("proxies")).queryAllByRole("button")).toEqual([]);
});

test("the developer-site scrape asks for the code inline when it is typed by hand", async () => {
  const scrape = (state: string) => ({ accountId: "a1", phone: "+15550001", scrapeId: "s1", startedAt: at, state, codeSource: "manual", log: [{ at, message: `now ${state}` }] });
  const replies: Record<string, unknown> = { ...BASE, "credential-start-scrape": scrape("starting"), "credential-get-status": scrape("waiting_code"), "credential-submit-code": scrape("submitting_code") };
  const gw = mount(<Fleet />, "admin", replies);
  const panel = await screen.findByTestId("credential-scrape");
  await within(panel).findAllByRole("option", { name: "+15550001" });
  fireEvent.change(panel.querySelector('select[name="scrape-account"]')!, { target: { value: "a1" } });
  fireEvent.change(panel.querySelector('select[name="scrape-code-source"]')!, { target: { value: "manual" } });
  fireEvent.click(within(panel).getByRole("button", { name: "Start" }));
  expect((await within(panel).findByTestId("scrape")).dataset.state).toBe("waiting_code");
  expect(gw.calls.find((c) => c.command === "credential-start-scrape")?.body).toMatchObject({ accountId: "a1", codeSource: "manual", addToPool: true });
  fireEvent.change(within(panel).getByRole("textbox", { name: "Code from Telegram" }), { target: { value: " 12345 " } });
  replies["credential-get-status"] = { ...scrape("completed"), apiId: 4242, apiHashMasked: "aa…bb" };
  fireEvent.click(within(panel).getByRole("button", { name: "Submit" }));
  await waitFor(() => expect(within(panel).getByTestId("scrape").dataset.state).toBe("completed"));
  expect(gw.calls.find((c) => c.command === "credential-submit-code")?.body).toEqual({ scrapeId: "s1", code: "12345" });
  expect(within(panel).getByTestId("scrape").textContent).toContain("API ID 4242, hash aa…bb, added to the pool.");
});

test("a proxy is tested (exit IP, latency, Telegram) and then bound to an account", async () => {
  expect(proxyConfig({ ...EMPTY_PROXY, host: "socks5://u:p@1.2.3.4:1080" })).toEqual({ type: "socks5", host: "1.2.3.4", port: 1080, username: "u", password: "p", secret: null });
  expect(proxyConfig({ ...EMPTY_PROXY, type: "http", host: " proxy.local ", port: "3128" })).toEqual({ type: "http", host: "proxy.local", port: 3128, username: null, password: null, secret: null });
  const gw = mount(<Fleet />, "operator", BASE);
  const panel = await screen.findByTestId("proxies");
  expect((await within(panel).findByTestId("binding")).textContent).toContain("4 ok, 1 failed, 80 ms");
  fireEvent.change(panel.querySelector('input[name="proxy-host"]')!, { target: { value: "10.0.0.9" } });
  fireEvent.change(panel.querySelector('input[name="proxy-port"]')!, { target: { value: "1080" } });
  fireEvent.click(within(panel).getByRole("button", { name: "Test proxy" }));
  expect((await within(panel).findByTestId("proxy-result")).textContent).toBe("Works: exit IP 192.0.2.44, 120 ms, Telegram reachable: yes.");
  expect(gw.calls.find((c) => c.command === "test-proxy")?.body).toMatchObject({ type: "socks5", host: "10.0.0.9", port: 1080, checkTelegram: true });
  const bind = panel.querySelector('select[name="bind-account"]') as HTMLSelectElement;
  await within(bind).findByRole("option", { name: "+15550002" });
  fireEvent.change(bind, { target: { value: "a2" } });
  fireEvent.click(within(panel).getByRole("button", { name: "Bind to account" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "ip-bind")?.body).toMatchObject({ accountId: "a2", proxy: { host: "10.0.0.9", port: 1080 }, verify: true }));
});
