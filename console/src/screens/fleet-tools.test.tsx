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

const CHOICES = {
  "get-groups": { groups: [{ id: "g1", name: "Sales", accountCount: 1 }, { id: "g2", name: "Support", accountCount: 0 }] },
  "get-tags": { tags: [{ name: "vip", accountCount: 1 }, { name: "warm", accountCount: 0 }] },
  "get-personas": { personas: [{ id: "p1", name: "Amy" }, { id: "p2", name: "Bo" }] },
  "update-account": acct("a1", "+15550001"),
  "bulk-assign-group": { ok: true, affected: 2, requested: 2 },
};
const tagged = { ...acct("a1", "+15550001"), label: "one", group: "Sales", tags: ["vip", "old"], personaId: "p1", dailySendLimit: 40, notes: "keep" };

test("an account's group, tags and persona are edited in place and only the changed fields are sent", async () => {
  const gw = mount(<Fleet />, "operator", { ...BASE, ...CHOICES, "get-accounts": { items: [tagged, acct("a2", "+15550002")] } });
  const row = (await screen.findAllByTestId("account-row")).find((r) => r.dataset.phone === "+15550001")!;
  await within(row).findByText("Amy");
  expect(within(row).getByText("Sales")).toBeTruthy();
  expect(within(row).getByText("vip, old")).toBeTruthy();
  fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
  const form = screen.getByTestId("account-edit");
  const save = within(form).getByRole("button", { name: "Save" }) as HTMLButtonElement;
  expect(save.disabled).toBe(true); // nothing changed yet
  // The vocabulary and the account's own tags are offered; the groups are suggestions.
  expect(within(form).getByRole("checkbox", { name: "vip" })).toHaveProperty("checked", true);
  expect(within(form).getByRole("checkbox", { name: "old" })).toHaveProperty("checked", true);
  expect(within(form).getByRole("checkbox", { name: "warm" })).toHaveProperty("checked", false);
  expect(Array.from(form.querySelectorAll("#edit-groups option")).map((o) => (o as HTMLOptionElement).value)).toEqual(["Sales", "Support"]);
  fireEvent.change(form.querySelector('input[name="edit-group"]')!, { target: { value: " Support " } });
  fireEvent.click(within(form).getByRole("checkbox", { name: "old" }));
  fireEvent.click(within(form).getByRole("checkbox", { name: "warm" }));
  fireEvent.change(form.querySelector('input[name="edit-new-tags"]')!, { target: { value: "new one, vip,," } });
  fireEvent.change(within(form).getByRole("combobox", { name: "Persona" }), { target: { value: "p2" } });
  fireEvent.click(save);
  await waitFor(() => expect(screen.queryByTestId("account-edit")).toBeNull());
  expect(gw.calls.find((c) => c.command === "update-account")?.body).toEqual({ accountId: "a1", group: "Support", tags: ["vip", "warm", "new one"], personaId: "p2" });
  // Cleared: no group, no persona, no tags, no label are sent as null / [].
  fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
  const again = screen.getByTestId("account-edit");
  fireEvent.change(again.querySelector('input[name="edit-group"]')!, { target: { value: "" } });
  fireEvent.change(again.querySelector('input[name="edit-label"]')!, { target: { value: "  " } });
  fireEvent.click(within(again).getByRole("checkbox", { name: "vip" }));
  fireEvent.click(within(again).getByRole("checkbox", { name: "old" }));
  fireEvent.change(within(again).getByRole("combobox", { name: "Persona" }), { target: { value: "" } });
  fireEvent.change(within(again).getByRole("combobox", { name: "Role" }), { target: { value: "sender" } });
  fireEvent.change(again.querySelector('input[name="edit-limit"]')!, { target: { value: "1001" } });
  expect(within(again).getByTestId("edit-error").textContent).toBe("The daily send limit is a whole number from 0 to 1000.");
  expect((within(again).getByRole("button", { name: "Save" }) as HTMLButtonElement).disabled).toBe(true);
  fireEvent.change(again.querySelector('input[name="edit-limit"]')!, { target: { value: "30" } });
  fireEvent.click(within(again).getByRole("button", { name: "Save" }));
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "update-account")).toHaveLength(2));
  expect(gw.calls.filter((c) => c.command === "update-account")[1].body).toEqual({
    accountId: "a1", label: null, group: null, tags: [], personaId: null, role: "sender", dailySendLimit: 30,
  });
});

test("a tag over 40 characters is named and nothing is sent; a viewer has no Edit", async () => {
  const gw = mount(<Fleet />, "operator", { ...BASE, ...CHOICES });
  const row = (await screen.findAllByTestId("account-row"))[0];
  fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
  const form = screen.getByTestId("account-edit");
  fireEvent.change(form.querySelector('input[name="edit-new-tags"]')!, { target: { value: `ok, ${"x".repeat(41)}` } });
  expect(within(form).getByTestId("edit-error").textContent).toBe(`A tag is at most 40 characters: ${"x".repeat(41)}`);
  fireEvent.submit(form);
  fireEvent.click(within(form).getByRole("button", { name: "Cancel" }));
  expect(screen.queryByTestId("account-edit")).toBeNull();
  expect(gw.calls.some((c) => c.command === "update-account")).toBe(false);
  cleanup();
  mount(<Fleet />, "viewer", { ...BASE, ...CHOICES });
  await screen.findAllByTestId("account-row");
  expect(screen.queryByRole("button", { name: "Edit" })).toBeNull();
});

test("bulk: a group (or none), tags added, removed or replaced, and a persona for the selected accounts", async () => {
  const gw = mount(<Fleet />, "operator", { ...BASE, ...CHOICES });
  await screen.findByText("+15550002", { selector: "td" });
  const bulk = screen.getByTestId("bulk");
  await within(bulk).findByRole("option", { name: "Bo" });
  fireEvent.click(screen.getByRole("checkbox", { name: "Select all shown" }));
  const bodies = (command: string) => gw.calls.filter((c) => c.command === command).map((c) => c.body);
  fireEvent.change(bulk.querySelector('input[name="bulk-group"]')!, { target: { value: " Sales " } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set group" }));
  await waitFor(() => expect(bodies("bulk-assign-group")).toEqual([{ accountIds: ["a1", "a2"], group: "Sales" }]));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550002" }));
  fireEvent.change(bulk.querySelector('input[name="bulk-group"]')!, { target: { value: "" } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set group" }));
  await waitFor(() => expect(bodies("bulk-assign-group")[1]).toEqual({ accountIds: ["a2"], group: null }));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  const apply = within(bulk).getByRole("button", { name: "Apply tags" }) as HTMLButtonElement;
  expect(apply.disabled).toBe(true); // no tag typed
  fireEvent.change(bulk.querySelector('input[name="bulk-tags"]')!, { target: { value: "vip, warm, vip" } });
  fireEvent.click(apply);
  await waitFor(() => expect(bodies("batch-update-accounts")).toEqual([{ accountIds: ["a1"], updates: { tags: { mode: "add", tags: ["vip", "warm"] } } }]));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  fireEvent.change(within(bulk).getByRole("combobox", { name: "Tags" }), { target: { value: "remove" } });
  fireEvent.change(bulk.querySelector('input[name="bulk-tags"]')!, { target: { value: "warm" } });
  fireEvent.click(apply);
  await waitFor(() => expect(bodies("batch-update-accounts")[1]).toEqual({ accountIds: ["a1"], updates: { tags: { mode: "remove", tags: ["warm"] } } }));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  fireEvent.change(within(bulk).getByRole("combobox", { name: "Tags" }), { target: { value: "set" } });
  fireEvent.click(apply);
  await waitFor(() => expect(bodies("batch-update-accounts")[2]).toEqual({ accountIds: ["a1"], updates: { tags: { mode: "set", tags: ["warm"] } } }));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  fireEvent.change(within(bulk).getByRole("combobox", { name: "Persona" }), { target: { value: "p2" } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set persona" }));
  await waitFor(() => expect(bodies("batch-update-accounts")[3]).toEqual({ accountIds: ["a1"], updates: { personaId: "p2" } }));
  fireEvent.click(screen.getByRole("checkbox", { name: "Select +15550001" }));
  fireEvent.change(within(bulk).getByRole("combobox", { name: "Persona" }), { target: { value: "" } });
  fireEvent.click(within(bulk).getByRole("button", { name: "Set persona" }));
  await waitFor(() => expect(bodies("batch-update-accounts")[4]).toEqual({ accountIds: ["a1"], updates: { personaId: null } }));
});
