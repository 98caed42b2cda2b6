// The Channels screen (Tailchat bot apps) against a fake gateway and a fake live feed.
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { translator } from "../i18n";
import { fakeLive, mount } from "../testing";
import { botInfoPayload, Channels, EMPTY_BOT_INFO, inboundLine } from "./Channels";

afterEach(cleanup);
const at = "2026-01-01T00:00:00Z";
const app = {
  appId: "app1", name: "support", serverUrl: "https://chat.example.com", status: "ok", botNickname: "Helper",
  botUserId: "u-bot", callbackTokenSet: true, callbackTokenRotatedAt: at, createdAt: at, updatedAt: at, lastCheckedAt: at,
};
const REPLIES = {
  "get-tailchat-apps": { items: [app] },
  "get-tailchat-commands": { appId: "app1", version: 3, commands: [{ command: "help", description: "What I can do" }] },
  "check-tailchat-app": { ...app, status: "rejected", lastError: "Open app secret not match" },
  "rotate-tailchat-callback-token": { callbackPath: "/api/v1/channels/tailchat/app1/callback/tok-new", rotatedAt: at, applied: false },
  "register-tailchat-app": { app: { ...app, appId: "app2", name: "sales" }, callbackPath: "/api/v1/channels/tailchat/app2/callback/tok-2" },
  "set-tailchat-bot-info": { appId: "app1", fields: ["allowGroup", "commands"] },
};

test("apps with status, bot and token; the bot's commands by scope", async () => {
  const gw = mount(<Channels />, "viewer", REPLIES);
  const row = await screen.findByTestId("tailchat-app");
  expect(row.dataset.status).toBe("ok");
  expect(row.textContent).toContain("Helper (u-bot)");
  expect(await screen.findByText("/help")).toBeTruthy();
  fireEvent.change(screen.getByRole("combobox", { name: "Scope" }), { target: { value: "all_group_chats" } });
  await waitFor(() => expect(gw.calls.filter((c) => c.command === "get-tailchat-commands").at(-1)?.body).toEqual({ appId: "app1", scopeType: "all_group_chats" }));
});

test("a viewer gets no write control; an operator may check but not register, rotate or remove", async () => {
  mount(<Channels />, "viewer", REPLIES);
  await screen.findByTestId("tailchat-app");
  expect(screen.queryAllByRole("button")).toEqual([]);
  cleanup();
  const gw = mount(<Channels />, "operator", REPLIES);
  await screen.findByTestId("tailchat-app");
  expect(screen.queryByTestId("tailchat-register")).toBeNull();
  expect(screen.queryByTestId("tailchat-bot-info")).toBeNull();
  expect(screen.queryByRole("button", { name: "Rotate token" })).toBeNull();
  expect(screen.queryByRole("button", { name: "Remove" })).toBeNull();
  fireEvent.click(screen.getByRole("button", { name: "Check" }));
  await waitFor(() => expect(gw.calls.find((c) => c.command === "check-tailchat-app")?.body).toEqual({ appId: "app1" }));
});

test("registering sends the secret once and clears it; the callback URL is shown once", async () => {
  const gw = mount(<Channels />, "admin", REPLIES);
  const form = await screen.findByTestId("tailchat-register");
  const field = (name: string) => form.querySelector(`input[name="${name}"]`) as HTMLInputElement;
  fireEvent.change(field("tc-server"), { target: { value: "https://chat.example.com" } });
  fireEvent.change(field("tc-app-id"), { target: { value: "app2" } });
  fireEvent.change(field("tc-secret"), { target: { value: "app2:s3cret" } });
  expect(field("tc-secret").type).toBe("password");
  fireEvent.click(within(form).getByRole("button", { name: "Register" }));
  expect((await screen.findByTestId("registered-path")).textContent).toContain("/api/v1/channels/tailchat/app2/callback/tok-2");
  expect(gw.calls.find((c) => c.command === "register-tailchat-app")?.body).toEqual({
    serverUrl: "https://chat.example.com", appId: "app2", appSecret: "app2:s3cret", name: null, check: true,
  });
  expect(field("tc-secret").value).toBe("");
  // Rotating asks first, then shows the new path.
  window.confirm = vi.fn(() => true);
  fireEvent.click(screen.getByRole("button", { name: "Rotate token" }));
  expect((await screen.findByTestId("callback-path")).textContent).toContain("callback/tok-new");
});

test("bot info sends only the fields filled in; commands when asked to replace them", async () => {
  expect(botInfoPayload("a", EMPTY_BOT_INFO)).toEqual({ appId: "a" });
  expect(
    botInfoPayload("a", {
      ...EMPTY_BOT_INFO, allowGroup: "no", username: " help_bot ", setCommands: true,
      commands: [{ command: "/help", description: "Help", scope: "default" }, { command: "", description: "x", scope: "default" }, { command: "buy", description: "Buy", scope: "all_group_chats" }],
    }),
  ).toEqual({
    appId: "a", username: "help_bot", allowGroup: false,
    commands: [{ command: "help", description: "Help", scope: null }, { command: "buy", description: "Buy", scope: { type: "all_group_chats" } }],
  });
  // An empty list when asked: that clears the bot's commands.
  expect(botInfoPayload("a", { ...EMPTY_BOT_INFO, setCommands: true }).commands).toEqual([]);
});

test("what the bots receive appears live, newest first", async () => {
  const { live, push } = fakeLive();
  mount(<Channels />, "viewer", REPLIES, live);
  await screen.findByTestId("tailchat-app");
  push("channel-message-received", { appId: "app1", isDm: true, senderId: "u1", senderName: "Ann", text: "hi" });
  push("button-pressed", { appId: "app1", userId: "u1", actionId: "buy" });
  push("account-added", { id: "x" });
  const lines = await screen.findAllByTestId("inbound");
  expect(lines.map((l) => l.dataset.event)).toEqual(["button-pressed", "channel-message-received"]);
  expect(lines[1].textContent).toContain("DM from Ann: hi");
  const t = translator("zh-Hant");
  expect(inboundLine({ event: "channel-dm-started", subject: "", timestamp: at, data: { userId: "u2", startParam: "ref1" } }, t)).toBe("u2 開啟了私訊（參數：ref1）");
});
