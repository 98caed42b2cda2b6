"""Trigger rules on a Tailchat bot, on a real nats-server and database: `channel-message-received`
published as the tailchat service does, the tailchat service's `send-channel-reply` a plain NATS
responder here (it records what it was asked and posts once per key, as the real one does).

- a rule scoped to the app (`sourceGroupIds: ["tailchat:<appId>"]`) answers a DM with its template
  and inline keyboard, keyed `trg:<firing key>`; a rule of `sourceType: all` stays Telegram's;
- a group message that does not name the bot, and an encrypted one, are not answered;
- the same message delivered again (another event id) fires nothing more;
- a stop word opts the sender out: nothing fires for it, and a later match is skipped by compliance;
- `add_lead` on Tailchat is a clear action error (a Tailchat user is not a lead); a `group_reply`
  answers in the group's channel."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tgm_contracts.commands import automation as A
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_channels import ChannelMessageReceived, TelegramBotMessageReceived
from tgm_contracts.rpc_bots import SendBotReply
from tgm_contracts.rpc_channels import SendChannelReply

from .test_automation_inbound_integration import Responders

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

APP = "tc_app_1"
BOT = "bot0000000000000000000001"
KEYBOARD = {
    "inline": {
        "actions": [
            {"id": "buy", "type": "invoke", "label": "Buy", "params": {"sku": "a1"}},
            {"id": "docs", "type": "url", "label": "Docs", "url": "https://example.com/docs"},
        ],
        "rows": [{"actions": ["buy", "docs"]}],
    }
}


class TailchatResponder:
    """send-channel-reply: one message per key, the stored one answered on a repeat."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.asked: list[dict[str, Any]] = []
        self.posted: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        async def reply(msg: Any) -> None:
            body = json.loads(msg.data)
            self.asked.append(body)
            view = self.posted.setdefault(
                body["key"],
                {
                    "appId": body["appId"],
                    "messageId": f"m{len(self.posted) + 1}",
                    "converseId": body.get("converseId") or "dm-" + body.get("userId", ""),
                    "content": body["text"],
                },
            )
            await msg.respond(json.dumps({"ok": True, "data": view}).encode())

        async def bot_reply(msg: Any) -> None:  # tg-session's send-bot-reply, the same once-per-key
            body = json.loads(msg.data)
            self.asked.append(body)
            view = self.posted.setdefault(
                body["key"],
                {"botId": body["botId"], "chatId": body["chatId"], "messageIds": [len(self.posted) + 1]},
            )
            await msg.respond(json.dumps({"ok": True, "data": view}).encode())

        await self.nc.subscribe(SendChannelReply.SUBJECT, cb=reply)
        await self.nc.subscribe(SendBotReply.SUBJECT, cb=bot_reply)


def channel_message(
    mid: str, sender: str, text: str, *, dm: bool = True, **extra: Any
) -> ChannelMessageReceived:
    return ChannelMessageReceived(
        **{
            "event_id": f"evt-{mid}-{extra.pop('copy', 0)}",
            "app_id": APP,
            "bot_user_id": BOT,
            "converse_id": "dm1" if dm else "panel1",
            "group_id": None if dm else "group1",
            "message_id": mid,
            "sender_id": sender,
            "text": text,
            "raw_text": text,
            "bot_mentioned": not dm,
            "is_dm": dm,
            **extra,
        }
    )


def fired(campaign: Any, rule_id: str) -> list[dict[str, Any]]:
    return [
        e for e in campaign.events if e["_subject"].endswith("trigger-fired.v1") and e["ruleId"] == rule_id
    ]


async def test_a_scoped_rule_answers_on_tailchat_once_with_its_keyboard_and_compliance(campaign) -> None:
    tailchat = TailchatResponder(campaign.nc)
    await tailchat.start()
    ks = await campaign.data(A.AddKeywordSet, {"name": "pricing", "keywords": ["price"]})
    tpl = await campaign.data(M.AddTemplate, {"name": "price", "content": "Our price list, {keyword}!"})
    template = tpl["template"]["id"]
    common = {"keywordSetIds": [ks["id"]], "delayMin": 0, "delayMax": 0, "cooldownSeconds": 0}
    rule = await campaign.data(
        A.SaveTriggerRule,
        {
            **common,
            "name": "tc price",
            "sourceType": "specific",
            "sourceGroupIds": [f"tailchat:{APP}"],
            "actions": [{"type": "reply_template", "templateId": template, "markup": KEYBOARD}],
        },
    )
    telegram_only = await campaign.data(
        A.SaveTriggerRule,
        {**common, "name": "tg price", "exclusive": False, "actions": [{"type": "notify"}]},
    )
    pub = campaign.fleet.rt.publish

    await pub(channel_message("m1", "alice", "what is the price?"))
    evt = await campaign.wait_event(lambda e: e in fired(campaign, rule["id"]), timeout=20)
    assert evt["outcome"] == "fired" and evt["userId"] is None and evt["groupId"] == f"tailchat:{APP}"
    [asked] = tailchat.asked
    assert asked["appId"] == APP and asked["userId"] == "alice" and asked["text"] == "Our price list, price!"
    assert asked["key"] == f"trg:{rule['id']}|tailchat:{APP}:dm1|m1"
    assert [r["actions"] for r in asked["markup"]["inline"]["rows"]] == [["buy", "docs"]]
    assert evt["jobIds"] == ["m1"]  # the Tailchat message id

    # the same message again (another delivery's event), a group message not naming the bot, an
    # encrypted one: nothing more is sent
    await pub(channel_message("m1", "alice", "what is the price?", copy=1))
    await pub(channel_message("m2", "bob", "price?", dm=False, bot_mentioned=False))
    await pub(channel_message("m3", "bob", "", encrypted=True))
    # a group message naming the bot is answered (target `private`: by DM to its sender)
    await pub(channel_message("m4", "bob", "@bot price?", dm=False))
    evt = await campaign.wait_event(
        lambda e: e in fired(campaign, rule["id"]) and e["eventId"] != evt["eventId"]
    )
    assert evt["outcome"] == "fired"
    assert [(a["userId"], a["converseId"]) for a in tailchat.asked[1:]] == [("bob", None)]
    assert fired(campaign, telegram_only["id"]) == []  # sourceType all: Telegram's groups only

    # a stop word opts the sender out (nothing fires); her next match is skipped by compliance
    await pub(channel_message("m5", "alice", "stop the price spam"))
    await pub(channel_message("m6", "alice", "price again?"))
    evt = await campaign.wait_event(
        lambda e: e in fired(campaign, rule["id"]) and e["outcome"] == "error", timeout=20
    )
    assert "skipped: opted_out" in evt["detail"], evt["detail"]
    assert len(tailchat.asked) == 2
    optout = await campaign.rt.db["blocked"].find_one({"_id": "tailchat:alice"})
    assert optout is not None and optout["opted_out"] is True

    # add_lead on Tailchat is refused as the action's error; the reply still goes
    await campaign.data(
        A.SaveTriggerRule,
        {
            **common,
            "id": rule["id"],
            "name": "tc price",
            "sourceType": "specific",
            "sourceGroupIds": [f"tailchat:{APP}"],
            "actions": [
                {"type": "add_lead"},
                {"type": "reply_template", "templateId": template, "target": "group_reply"},
            ],
        },
    )
    await pub(channel_message("m7", "carol", "@bot price?", dm=False))
    evt = await campaign.wait_event(
        lambda e: (
            e in fired(campaign, rule["id"]) and e["outcome"] == "error" and "lead" in (e["detail"] or "")
        )
    )
    assert "not a lead" in evt["detail"]
    last = tailchat.asked[-1]  # group_reply: in the group's channel
    assert (last["converseId"], last["groupId"], last.get("userId")) == ("panel1", "group1", None)


async def test_the_same_rule_answers_a_telegram_bot_accounts_user(campaign) -> None:
    """tg-session publishes the same event for its bot accounts (`channel: telegram`): a rule scoped to
    `telegram:<botId>` answers through tg-session's `send-bot-reply` with the same markup; the
    person's Telegram compliance key (`id:<user>`) applies."""
    tailchat = TailchatResponder(campaign.nc)
    await tailchat.start()
    ks = await campaign.data(A.AddKeywordSet, {"name": "pricing", "keywords": ["price"]})
    tpl = await campaign.data(M.AddTemplate, {"name": "price", "content": "Prices here"})
    rule = await campaign.data(
        A.SaveTriggerRule,
        {
            "name": "both bots",
            "sourceType": "specific",
            "sourceGroupIds": [f"tailchat:{APP}", "telegram:tg-777"],
            "keywordSetIds": [ks["id"]],
            "actions": [{"type": "reply_template", "templateId": tpl["template"]["id"], "markup": KEYBOARD}],
            "delayMin": 0,
            "delayMax": 0,
            "cooldownSeconds": 0,
        },
    )

    def telegram(mid: str, sender: str, text: str) -> TelegramBotMessageReceived:
        return TelegramBotMessageReceived(
            event_id=f"tg-{mid}",
            app_id="tg-777",
            bot_user_id="777",
            converse_id=sender,
            message_id=mid,
            sender_id=sender,
            sender_name="Tom",
            text=text,
            raw_text=text,
            bot_mentioned=False,
            is_dm=True,
        )

    pub = campaign.fleet.rt.publish
    await pub(telegram("11", "4242", "price please"))
    evt = await campaign.wait_event(lambda e: e in fired(campaign, rule["id"]), timeout=20)
    assert evt["outcome"] == "fired" and evt["groupId"] == "telegram:tg-777" and evt["jobIds"] == ["1"]
    [asked] = tailchat.asked
    assert (asked["botId"], asked["chatId"], asked["text"]) == ("tg-777", "4242", "Prices here")
    assert asked["key"] == f"trg:{rule['id']}|telegram:tg-777:4242|11"
    assert [r["actions"] for r in asked["markup"]["inline"]["rows"]] == [["buy", "docs"]]

    # a blacklisted Telegram user (the fleet's own blacklist) is not answered by the bot either
    await campaign.data(CRM.BlacklistUser, {"userId": 4243, "reason": "spam"})
    await pub(telegram("12", "4243", "price?"))
    evt = await campaign.wait_event(
        lambda e: e in fired(campaign, rule["id"]) and e["outcome"] == "error", timeout=20
    )
    assert "skipped: blacklisted" in evt["detail"] and len(tailchat.asked) == 1


async def test_an_ai_reply_on_tailchat_with_markup_and_a_semi_suggestion(campaign) -> None:
    """`ai_reply` on Tailchat: ai is asked for the bot (`tailchat:<appId>`) and the sender, the text is
    sent as the bot with the action's markup (not as a template: the AI's braces stay as written);
    in `semi` mode it is a suggestion for an operator and nothing is sent."""
    tailchat = TailchatResponder(campaign.nc)
    await tailchat.start()
    ai = Responders(campaign.nc)
    await ai.start()
    ks = await campaign.data(A.AddKeywordSet, {"name": "pricing", "keywords": ["price"]})
    common = {
        "sourceType": "specific",
        "sourceGroupIds": [f"tailchat:{APP}"],
        "keywordSetIds": [ks["id"]],
        "delayMin": 0,
        "delayMax": 0,
        "cooldownSeconds": 0,
    }
    rule = await campaign.data(
        A.SaveTriggerRule,
        {**common, "name": "ai", "actions": [{"type": "ai_reply", "mode": "full", "markup": KEYBOARD}]},
    )
    await campaign.fleet.rt.publish(channel_message("a1", "alice", "price of the pro plan?"))
    evt = await campaign.wait_event(lambda e: e in fired(campaign, rule["id"]), timeout=20)
    assert evt["outcome"] == "fired", evt
    [call] = ai.ai_calls
    assert (call["accountId"], call["userId"], call["message"]) == (
        f"tailchat:{APP}",
        "tailchat:alice",
        "price of the pro plan?",
    )
    [asked] = tailchat.asked
    assert (
        asked["text"] == "Our price is {fair} | ask me"
        and asked["markup"]["inline"]["actions"][0]["id"] == "buy"
    )

    await campaign.data(
        A.SaveTriggerRule,
        {**common, "id": rule["id"], "name": "ai", "actions": [{"type": "ai_reply", "mode": "semi"}]},
    )
    await campaign.fleet.rt.publish(channel_message("a2", "bob", "price?"))
    suggested = await campaign.wait_event(lambda e: e["_subject"].endswith("reply-suggested.v1"), timeout=20)
    assert suggested["accountId"] == f"tailchat:{APP}" and suggested["chatId"] is None
    assert suggested["userId"] is None and len(tailchat.asked) == 1
