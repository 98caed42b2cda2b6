"""The channel-neutral message the trigger-rule path decides on (`Inbound`), and what differs when the
message came from a Tailchat bot rather than a Telegram account (`ChannelReplies`).

Both channels go through the one decision path of `service.py` (`_rules` -> `engine.evaluate` ->
`_reserve` -> `_act`): a Telegram `message-received` and a Tailchat `channel-message-received` each
become an `Inbound`; only the reply's last step differs — a Telegram reply is a job of messaging's
paced queue, a Tailchat reply is the tailchat service's `send-channel-reply`.

Scope (the campaign README says the same): a rule answers on Tailchat only when it names the app as
a source, `sourceType: specific` with `tailchat:<appId>` among `sourceGroupIds` (`scope_id`). A rule
of `sourceType: all` stays a rule of the monitored Telegram groups: an operator opts a bot in, and no
existing rule starts talking on a new channel. The keyword sets matched are the scoped rules' own.
Only a DM to the bot, or a group message that names it, is answered (with the bot's receive-all
setting Tailchat sends every group message: those are not). An end-to-end encrypted message has no
text and matches nothing.

Identities: on Tailchat the chat is `tailchat:<appId>:<converseId>`, the sender `tailchat:<userId>`
(rule state, cooldowns and claims keyed apart from Telegram's numeric ids), the "group" the scope id.
A Tailchat user is not a lead (leads are Telegram users): `add_lead` and `start_scenario` are refused
as action errors, and the events' Telegram `userId` is null.

The reply, `ChannelReplies.send`:

- compliance first: the sender's key `tailchat:<userId>` must not be blacklisted or opted out
  (messaging's compliance store, the one the queue checks); a message with one of
  `compliance.stopWords` opts the sender out (recorded under that key) and fires nothing;
- exactly once: the idempotency key is `trg:<firing key>`, carried to the tailchat service, which
  posts once per key and answers a repeat with the message already posted. A crash after the post
  and before the firing records the action is redelivered, resumes the firing and asks again with
  the same key: the stored message, no second post;
- paced: by the tailchat service (its per-app call pacing and the server's limits, one call per
  reply); a bot answers at once, so the rule's `delayMin`/`delayMax` (a user account's human pause
  in the queue) do not apply;
- a refusal (no such app, the app's secret refused, the server unreachable, the markup too big)
  is the action's error on the firing and in `trigger-fired`'s detail; it is not retried.
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


#: A `sourceGroupIds` entry starting so names a Tailchat app's bot, not a monitored group.
TAILCHAT_SCOPE = "tailchat:"


def scope_id(app_id: str) -> str:
    """The `sourceGroupIds` entry that scopes a rule to a Tailchat app's bot."""
    return TAILCHAT_SCOPE + app_id


@dataclass(frozen=True)
class TailchatPlace:
    app_id: str
    converse_id: str
    group_id: str | None
    user_id: str  # the sender's Tailchat user id
    is_dm: bool


@dataclass(frozen=True)
class Inbound:
    """One message as the rule path sees it, whatever channel it came from."""

    channel: Literal["telegram", "tailchat"]
    chat_id: int | str
    message_id: int | str
    account_id: str  # Telegram: the listener account; Tailchat: the app id
    sender_id: int | str | None
    text: str
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    chat_title: str | None = None
    tailchat: TailchatPlace | None = None

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


def tailchat_message(evt: ChannelMessageReceived) -> Inbound | None:
    """The message, when it is one a rule may answer: to the bot (a DM, or naming it), with text."""
    if not (evt.is_dm or evt.bot_mentioned) or evt.encrypted or not evt.text.strip():
        return None
    return Inbound(
        channel="tailchat",
        chat_id=f"tailchat:{evt.app_id}:{evt.converse_id}",
        message_id=evt.message_id,
        account_id=evt.app_id,
        sender_id=f"tailchat:{evt.sender_id}",
        text=evt.text,
        first_name=evt.sender_name,
        tailchat=TailchatPlace(evt.app_id, evt.converse_id, evt.group_id, evt.sender_id, evt.is_dm),
    )


def scope_group(app_id: str, set_ids: list[str]) -> dict[str, Any]:
    """What the rule path reads of a monitored group, for a Tailchat app's bot."""
    return {"_id": scope_id(app_id), "title": None, "keyword_set_ids": set_ids, "member_account_ids": []}


class ChannelReplies:
    """Compliance, template text and the send of a reply on Tailchat."""

    def __init__(self, stores: MessagingStores, rules: Rules, call: Call) -> None:
        self.stores, self.rules, self.call = stores, rules, call

    @staticmethod
    def keys(place: TailchatPlace) -> list[str]:
        return [f"tailchat:{place.user_id}"]

    async def opted_out_now(self, msg: Inbound, at: datetime) -> bool:
        """True when the message has a stop word: the sender is opted out (recorded) and no rule runs."""
        assert msg.tailchat is not None
        word = (await self.rules.stop_words()).match(msg.text)
        if word is None:
            return False
        place = msg.tailchat
        keys, app = self.keys(place), scope_id(place.app_id)
        user: Any = place.user_id  # a Tailchat user id is a string; the store keeps it as given
        await self.stores.compliance.opt_out(keys, user_id=user, account_id=app, stop_word=word, at=at)
        log.info("tailchat user of app %s opted out (stop word)", place.app_id)
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
        """Post the reply once per `key`: the Tailchat message id. Compliance's refusal (blacklisted,
        opted out) and the tailchat service's refusals raise DomainError, for the firing's errors."""
        place = msg.tailchat
        assert place is not None
        blocked = await self.stores.compliance.blocked(self.keys(place))
        if blocked:
            raise Conflict(f"skipped: {reason_of(next(iter(blocked.values())))}")
        where: dict[str, Any] = (
            {"userId": place.user_id}
            if target == "private" or place.is_dm
            else {"converseId": place.converse_id, "groupId": place.group_id}
        )
        body = {"appId": place.app_id, **where, "text": text, "key": f"trg:{key}"}
        if markup is not None:
            body["markup"] = markup.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            req = SendChannelReplyRequest.model_validate(body)
        except ValidationError as exc:
            raise Invalid(f"the Tailchat reply is not sendable: {exc.errors()[0]['msg']}") from None
        view = await self.call(SendChannelReply, req, SEND_TIMEOUT)
        return str(view.message_id)
