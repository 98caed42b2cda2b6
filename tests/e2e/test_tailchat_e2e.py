"""The product on Tailchat, end to end (issue 15): the process stack (gateway, tailchat, campaign,
analytics) with the seed-faithful Tailchat fake of tools/fakes, which POSTs its callbacks to the
gateway's public route exactly as the real server (fork blooworet/tailchat) does.

1. An operator registers a bot app, points its callback URL at the gateway, sets commands with
   scopes and reads them back with their ETag (the second read is notModified).
2. A keyword rule scoped to the bot (`sourceGroupIds: ["tailchat:<appId>"]`) answers a user's DM
   with an inline keyboard (channel-message-received -> automation -> send-channel-reply).
3. The user presses the button; the press reaches the gateway and the answer (answer-callback) is
   shown to the user within the 30 s window. A press answered after 30 s (the fake's clock moved,
   no sleep) is a clear CONFLICT saying it expired.
4. A report schedule with a Tailchat recipient, run now, arrives in the group's text channel.
5. No app secret in any stored document (every database of the stack dumped) or any log.

6. The Telegram half (`test_the_same_rule_answers_a_telegram_bot_account_user`, tg-session on the
   emulator): a bot account added by token, the same rule and markup scoped to it answer its user
   with an inline keyboard (callback data `tgm_contracts.markup.callback_data`), and the press is
   answered through the same public `answer-callback` (channel telegram).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tgm_fakes.testing import RunningFake
from tgm_stack import Stack
from tgm_testing import dumps
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
pytest_plugins = ["tgm_fakes.testing"]

SERVICES = ("tailchat", "campaign", "analytics")
KEYBOARD = {
    "inline": {
        "actions": [
            {"id": "buy", "type": "invoke", "label": "Buy now", "params": {"sku": "a1"}},
            {"id": "docs", "type": "url", "label": "Price list", "url": "https://example.com/p"},
        ],
        "rows": [{"actions": ["buy", "docs"]}],
    }
}


@pytest.fixture
def tailchat_stack(start_stack: Any) -> Iterator[Stack]:
    yield start_stack(services=SERVICES)


def price_rule(gw: GatewayClient, name: str, scope: str) -> dict[str, Any]:
    """The rule both halves test: "price" in a message to the bot (`scope`, a channel's source id)
    answers by template, with `KEYBOARD` as the reply's inline keyboard, at once."""
    keywords = gw.ok("add-keyword-set", {"name": "pricing", "keywords": ["price"]})
    template = gw.ok("add-template", {"name": "price reply", "content": "Hello! Our {keyword} list:"})
    reply = {"type": "reply_template", "templateId": template["template"]["id"], "markup": KEYBOARD}
    return gw.ok(
        "save-trigger-rule",
        {
            "name": name,
            "sourceType": "specific",
            "sourceGroupIds": [scope],
            "keywordSetIds": [keywords["id"]],
            "actions": [reply],
            "delayMin": 0,
            "delayMax": 0,
        },
    )


def bot_messages(people: httpx.Client, bot: str, converse: str | None = None) -> list[dict[str, Any]]:
    params = {"author": bot, **({"converseId": converse} if converse else {})}
    found: list[dict[str, Any]] = people.get("/messages", params=params).json()
    return found


def all_logs(stack: Stack) -> str:
    return "\n".join(p.read_text(errors="replace") for p in Path(stack.logs_dir).rglob("*") if p.is_file())


def test_tailchat_bot_commands_rule_reply_button_report_and_no_secret(
    tailchat_stack: Stack, fake_tailchat: RunningFake
) -> None:
    started = time.monotonic()
    extra = fake_tailchat.extra or {}
    app, bot, alice = extra["app_id"], extra["bot_user_id"], extra["alice_id"]
    group, panel = extra["group_id"], extra["group_converse_id"]
    secret = fake_tailchat.key
    assert secret and secret.partition(":")[2]
    with (
        GatewayClient(tailchat_stack) as gw,
        httpx.Client(base_url=fake_tailchat.url + "/_fake/tailchat", timeout=30) as people,
    ):
        # 1. the app, its callback URL at the gateway, commands with scopes and their ETag
        registered = gw.ok(
            "register-tailchat-app", {"serverUrl": fake_tailchat.url, "appId": app, "appSecret": secret}
        )
        assert registered["app"]["botUserId"] == bot and registered["app"]["status"] == "ok"
        rotated = gw.ok("rotate-tailchat-callback-token", {"appId": app, "apply": False})
        callback = tailchat_stack.gateway_url.rstrip("/") + rotated["callbackPath"]
        commands = [
            {"command": "help", "description": "What I can do"},
            {"command": "price", "description": "Prices", "scope": {"type": "all_private_chats"}},
            {"command": "report", "description": "Reports", "scope": {"type": "chat", "chatId": panel}},
        ]
        set_info = gw.ok(
            "set-tailchat-bot-info", {"appId": app, "callbackUrl": callback, "commands": commands}
        )
        assert set_info["fields"] == ["callbackUrl", "commands"]
        assert people.get("/world").json()["apps"][0]["bot"]["callbackUrl"] == callback
        every = gw.ok("get-tailchat-commands", {"appId": app})
        assert {c["command"] for c in every["commands"]} == {"help", "price", "report"}
        assert every["etag"] and every["version"] >= 1 and not every["notModified"]
        private = gw.ok("get-tailchat-commands", {"appId": app, "scopeType": "all_private_chats"})
        assert [c["command"] for c in private["commands"]] == ["price"]
        again = gw.ok(
            "get-tailchat-commands", {"appId": app, "ifVersion": every["version"], "ifEtag": every["etag"]}
        )
        assert again["notModified"] and again["commands"] is None and again["etag"] == every["etag"]

        # 2. a keyword rule scoped to the bot answers a DM with an inline keyboard
        rule = price_rule(gw, "price on tailchat", f"tailchat:{app}")
        dm = people.post("/dm", json={"userId": alice, "content": "what is the price?"}).json()
        assert [d["status"] for d in dm["callbacks"]] == [200]
        converse = dm["message"]["converseId"]
        [answer] = wait_until(lambda: bot_messages(people, bot, converse), 30, "the rule's reply in the DM")
        assert answer["content"] == "Hello! Our price list:"
        inline = answer["meta"]["inlineActions"]
        assert [a["id"] for a in inline["actions"]] == ["buy", "docs"]
        assert inline["keyboard"] == [{"actions": ["buy", "docs"]}]
        assert inline["actions"][0]["params"]["botId"] == bot  # so the press calls the bot back
        fired = gw.ok("get-trigger-rules", {})["items"]
        assert next(r for r in fired if r["id"] == rule["id"])["triggerCount"] == 1

        # 3. the press and its answer within 30 s; a late answer is CONFLICT, expired
        pressed_at = time.monotonic()
        press = {"userId": alice, "messageId": answer["_id"], "actionId": "buy", "traceId": "tc-e2e-1"}
        click = people.post("/press", json=press).json()
        assert [(c["kind"], c["status"]) for c in click["callbacks"]] == [("buttonCallback", 200)]
        done = gw.ok(
            "answer-callback", {"appId": app, "traceId": "tc-e2e-1", "userId": alice, "text": "Added!"}
        )
        assert done["answered"]
        shown = wait_until(
            lambda: [a for a in people.get("/answers").json() if a["traceId"] == "tc-e2e-1"], 10, "the answer"
        )
        assert shown[0]["text"] == "Added!" and time.monotonic() - pressed_at < 30
        late = {"userId": alice, "messageId": answer["_id"], "actionId": "buy", "traceId": "tc-e2e-2"}
        assert people.post("/press", json=late).json()["callbacks"][0]["status"] == 200
        people.post("/clock", json={"advance": 31})
        refused = gw.err(
            "answer-callback",
            {"appId": app, "traceId": "tc-e2e-2", "userId": alice, "text": "Too late"},
            "CONFLICT",
            409,
        )
        assert "expired" in refused["message"]

        # 4. a report run now arrives in the group's text channel
        before = len(bot_messages(people, bot, panel))
        schedule = gw.ok(
            "schedule-report",
            {
                "action": "save",
                "name": "daily on tailchat",
                "report": "messages",
                "format": "csv",
                "cron": "@daily",
                "window": "last_24h",
                "recipients": [{"kind": "tailchat", "target": f"{app}/{group}/{panel}"}],
            },
        )["schedule"]
        run = gw.ok("schedule-report", {"action": "run", "scheduleId": schedule["id"]})
        posted = wait_until(
            lambda: bot_messages(people, bot, panel)[before:], 30, "the report in the Tailchat channel"
        )
        assert run["reportId"] in posted[0]["content"] and posted[0]["groupId"] == group

        def recorded() -> dict[str, Any] | None:
            mine = next(
                s
                for s in gw.ok("schedule-report", {"action": "list"})["schedules"]
                if s["id"] == schedule["id"]
            )
            return mine if mine["lastReportId"] == run["reportId"] else None

        assert wait_until(recorded, 30, "the run on its schedule")["lastError"] is None

    # 5. the app's secret in no stored document and no log
    key = secret.partition(":")[2]
    stored = dumps.databases(tailchat_stack.mongodb_uri)
    assert "tailchat_apps" in stored or app in stored  # the dump is of the stack's data
    assert key not in stored
    logs = all_logs(tailchat_stack)
    assert logs and key not in logs
    assert time.monotonic() - started < 60


def test_the_same_rule_answers_a_telegram_bot_account_user(start_stack: Any, emulator: Any) -> None:
    """The Telegram half: a bot account added by token (tg-session, on the emulator); a rule scoped to
    it (`telegram:<botId>`) with the same markup answers the user's DM with an inline keyboard whose
    callback data is `tgm_contracts.markup`'s; the user's press is answered through the same public
    `answer-callback` (channel telegram)."""
    started = time.monotonic()
    bot, token = emulator.do(lambda: emulator.world.bots.add("price_e2e_bot", first_name="Prices"))
    una = emulator.do(lambda: emulator.world.add_user("+15550471001", first_name="Una", username="una_e2e"))
    stack = start_stack(services=("tg-session", "tailchat", "campaign"), emulator=emulator)
    with GatewayClient(stack) as gw:
        creds = gw.ok("get-api-credentials", {})["items"]
        if creds:
            gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
        bot_id = gw.ok("add-telegram-bot", {"token": token})["botId"]
        wait_until(
            lambda: [b for b in gw.ok("get-telegram-bots", {})["items"] if b["heldBy"]], 30, "the bot online"
        )
        price_rule(gw, "price on the telegram bot", f"telegram:{bot_id}")
        emulator.do(lambda: emulator.world.post(una, bot, "what is the price?"))

        def answered() -> Any:
            return emulator.do(lambda: emulator.world.bots.latest_markup_message(una, bot))

        msg_id = wait_until(answered, 30, "the rule's reply with its keyboard")
        record = emulator.do(lambda: [d for d in emulator.world.deliveries if d.from_user_id == bot.id][-1])
        assert record.text == "Hello! Our price list:" and record.to_user_id == una.id
        buttons = record.reply_markup["rows"][0]["buttons"]
        assert [b["text"] for b in buttons] == ["Buy now", "Price list"]
        assert buttons[0]["type"]["data"] == 'buy:{"sku":"a1"}'  # markup.callback_data, as on Tailchat

        query = emulator.do(lambda: emulator.world.bots.press(una, bot, msg_id, b'buy:{"sku":"a1"}'))
        done = gw.ok(
            "answer-callback",
            {
                "channel": "telegram",
                "appId": bot_id,
                "traceId": str(query.query_id),
                "userId": str(una.id),
                "text": "Added!",
            },
        )
        assert done["answered"]
        assert emulator.do(lambda: query.answer)["message"] == "Added!"
    assert time.monotonic() - started < 60
