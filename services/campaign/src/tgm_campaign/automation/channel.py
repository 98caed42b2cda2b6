"""The channel-neutral message the trigger-rule path decides on (`Inbound`), and what differs when the
message came to a bot — a Tailchat app's or a Telegram bot account's — rather than to a fleet account
(`ChannelReplies`).

Every channel goes through the one decision path of `service.py` (`_rules` -> `engine.evaluate` ->
`_reserve` -> `_act`): a Telegram `message-received` and a bot's `channel-message-received` (the
tailchat service's, or tg-session's for its bot accounts, `channel: telegram`) each become an
`Inbound`; only the reply's last step differs — a fleet account's reply is a job of messaging's paced
queue, a bot's reply the bot's own service's keyed send (tailchat `send-channel-reply`, tg-session
`send-bot-reply`).

Scope (the campaign README says the same): a rule answers a bot's messages only when it names the bot
as a source, `sourceType: specific` with `tailchat:<appId>` or `telegram:<botId>` among
`sourceGroupIds` (`scope_id`). A rule of `sourceType: all` stays a rule of the monitored Telegram
groups: an operator opts a bot in, and no existing rule starts talking on a new channel. The keyword
sets matched are the scoped rules' own. Only a DM to the bot, or a group message that names it, is
answered (with Tailchat's receive-all setting every group message arrives: those are not). An
end-to-end encrypted message has no text and matches nothing.

Identities: the chat is `<channel>:<appId>:<converseId>`, the sender `<channel>:<userId>` (rule state,
cooldowns and claims keyed apart from the fleet's numeric ids), the "group" the scope id. A bot's user
is not a lead (leads are the fleet's contacts): `add_lead` and `start_scenario` are refused as action
errors, and the events' Telegram `userId` is null.

The reply, `ChannelReplies.send`:

- compliance first: the sender must not be blacklisted or opted out (messaging's compliance store, the
  one the queue checks) — a Telegram user under `id:<user id>`, the same key as everywhere, so the
  fleet's blacklist holds for bots too; a Tailchat user under `tailchat:<userId>`; a message with one
  of `compliance.stopWords` opts the sender out (recorded under that key) and fires nothing;
- exactly once: the idempotency key is `trg:<firing key>`, carried to the channel's service, which
  posts once per key and answers a repeat with the message already posted. A crash after the post
  and before the firing records the action is redelivered, resumes the firing and asks again with
  the same key: the stored message, no second post;
- paced: by the channel's service (tailchat's per-app call pacing and the server's limits; tg-session's
  bot pacing), one call per reply; a bot answers at once, so the rule's `delayMin`/`delayMax` (a user
  account's human pause in the queue) do not apply;
- a refusal (no such app or bot, its secret refused, the server unreachable, the markup too big) is
  the action's error on the firing and in `trigger-fired`'s detail; it is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from tgm_contracts.events_channels import ChannelMessageReceived
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.markup import MessageMarkup
from tgm_contracts.models.campaign import TemplateVariable
from tgm_contracts.rpc_bots import SendBotReply, SendBotReplyRequest
from tgm_contracts.rpc_channels import SendChannelReply, SendChannelReplyRequest
from tgm_runtime import Conflict, Invalid, NotFound

from ..messaging.compliance import reason_of
from ..messaging.rules import Rules
from ..messaging.stores import MessagingStores
from ..messaging.templates import MAX_MESSAGE, merge_values, parse, render, seeded
from .ports import Call

log = logging.getLogger("tgm.campaign.automation.channel")

#: Deadline of one Tailchat send (the tailchat service's own timeout and pacing are inside it).
SEND_TIMEOUT = 30.0


#: `sourceGroupIds` entries starting so name a bot (a Tailchat app's, a Telegram bot account's), not a
#: monitored group.
BOT_SCOPES = ("tailchat:", "telegram:")


def scope_id(app_id: str, channel: str = "tailchat") -> str:
    """The `sourceGroupIds` entry that scopes a rule to a bot: `tailchat:<appId>`, `telegram:<botId>`."""
    return f"{channel}:{app_id}"


@dataclass(frozen=True)
class BotPlace:
    """Where a bot's message was written: the channel, the bot (Tailchat appId / Telegram bot id)."""

    channel: Literal["tailchat", "telegram"]
    app_id: str
    converse_id: str
    group_id: str | None
    user_id: str  # the sender's Tailchat user id
    is_dm: bool


@dataclass(frozen=True)
class Inbound:
    """One message as the rule path sees it, whatever channel it came from."""

    channel: Literal["telegram", "tailchat", "telegram_bot"]  # telegram: a fleet (user) account's
    chat_id: int | str
    message_id: int | str
    account_id: str  # Telegram: the listener account; a bot: its app / bot id
    sender_id: int | str | None
    text: str
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    chat_title: str | None = None
    bot: BotPlace | None = None

    @property
    def telegram_user(self) -> int | None:
        """The sender's Telegram user id (events and leads know only those)."""
        return self.sender_id if isinstance(self.sender_id, int) else None

    def telegram_ids(self) -> tuple[int, int]:
        """(chat id, message id) of a Telegram message (the queue's and leads' numbers)."""
        assert isinstance(self.chat_id, int) and isinstance(self.message_id, int), self.channel
        return self.chat_id, self.message_id


def telegram_message(evt: MessageReceived) -> Inbound:
    sender = evt.sender
    return Inbound(
        channel="telegram",
        chat_id=evt.chat_id,
        message_id=evt.message_id,
        account_id=evt.account_id,
        sender_id=evt.sender_id,
        text=evt.text,
        username=sender.username if sender else None,
        first_name=sender.first_name if sender else None,
        last_name=sender.last_name if sender else None,
        chat_title=evt.chat_title,
    )


def bot_message(evt: ChannelMessageReceived) -> Inbound | None:
    """The message, when it is one a rule may answer: to the bot (a DM, or naming it), with text."""
    if not (evt.is_dm or evt.bot_mentioned) or evt.encrypted or not evt.text.strip():
        return None
    channel = evt.channel
    return Inbound(
        channel="tailchat" if channel == "tailchat" else "telegram_bot",
        chat_id=f"{channel}:{evt.app_id}:{evt.converse_id}",
        message_id=evt.message_id,
        account_id=evt.app_id,
        sender_id=f"{channel}:{evt.sender_id}",
        text=evt.text,
        first_name=evt.sender_name,
        bot=BotPlace(channel, evt.app_id, evt.converse_id, evt.group_id, evt.sender_id, evt.is_dm),
    )


def scope_group(scope: str, set_ids: list[str]) -> dict[str, Any]:
    """What the rule path reads of a monitored group, for a bot (`scope`: its `scope_id`)."""
    return {"_id": scope, "title": None, "keyword_set_ids": set_ids, "member_account_ids": []}


class ChannelReplies:
    """Compliance, template text and the send of a bot's reply (Tailchat, Telegram bot accounts)."""

    def __init__(self, stores: MessagingStores, rules: Rules, call: Call) -> None:
        self.stores, self.rules, self.call = stores, rules, call

    @staticmethod
    def keys(place: BotPlace) -> list[str]:
        """The sender's compliance keys: a Telegram user is `id:<user id>` as everywhere (a ban of the
        person holds for bot replies too); a Tailchat user `tailchat:<userId>`."""
        return [f"id:{place.user_id}" if place.channel == "telegram" else f"tailchat:{place.user_id}"]

    async def opted_out_now(self, msg: Inbound, at: datetime) -> bool:
        """True when the message has a stop word: the sender is opted out (recorded) and no rule runs."""
        assert msg.bot is not None
        word = (await self.rules.stop_words()).match(msg.text)
        if word is None:
            return False
        place = msg.bot
        keys, app = self.keys(place), scope_id(place.app_id, place.channel)
        user: Any = place.user_id  # a Tailchat user id is a string; the store keeps it as given
        await self.stores.compliance.opt_out(keys, user_id=user, account_id=app, stop_word=word, at=at)
        log.info("a %s user of bot %s opted out (stop word)", place.channel, place.app_id)
        return True

    async def template_text(self, template_id: str, variables: Mapping[str, str | None], key: str) -> str:
        """The template rendered for the sender (variables, spintax), fixed by the firing key."""
        tpl = await self.stores.templates.get(template_id)
        if tpl is None:
            raise NotFound(f"template {template_id} was deleted")
        if not tpl.get("is_active", True):
            raise Conflict(f"template {template_id} is inactive")
        declared = [TemplateVariable.model_validate(v) for v in tpl.get("variables") or []]
        values = merge_values(declared, variables)
        try:
            return render(parse(tpl["content"]), values, seeded(key))[:MAX_MESSAGE]
        except ValueError as exc:  # bad syntax, a variable with no value
            raise Invalid(f"template {template_id}: {exc}") from None

    async def send(self, msg: Inbound, target: str, text: str, markup: MessageMarkup | None, key: str) -> str:
        """Post the reply once per `key`: the message id. Compliance's refusal (blacklisted, opted out)
        and the channel service's refusals raise DomainError, for the firing's errors."""
        place = msg.bot
        assert place is not None
        blocked = await self.stores.compliance.blocked(self.keys(place))
        if blocked:
            raise Conflict(f"skipped: {reason_of(next(iter(blocked.values())))}")
        private = target == "private" or place.is_dm
        body: dict[str, Any] = {"text": text, "key": f"trg:{key}"}
        if markup is not None:
            body["markup"] = markup.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            if place.channel == "telegram":  # tg-session's bot account (a bot writes to whoever wrote to it)
                where: dict[str, Any] = {"chatId": place.user_id if private else place.converse_id}
                if not private and str(msg.message_id).isdigit():
                    where["replyToMessageId"] = int(msg.message_id)
                bot_req = SendBotReplyRequest.model_validate({"botId": place.app_id, **where, **body})
            else:
                spot = (
                    {"userId": place.user_id}
                    if private
                    else {"converseId": place.converse_id, "groupId": place.group_id}
                )
                req = SendChannelReplyRequest.model_validate({"appId": place.app_id, **spot, **body})
        except ValidationError as exc:
            raise Invalid(f"the {place.channel} reply is not sendable: {exc.errors()[0]['msg']}") from None
        if place.channel == "telegram":
            sent = await self.call(SendBotReply, bot_req, SEND_TIMEOUT)
            return str(sent.message_ids[0])
        view = await self.call(SendChannelReply, req, SEND_TIMEOUT)
        return str(view.message_id)
