"""Inbound Telegram updates of held accounts become events on TGM_EVENTS: new messages (private and
group), edits, outgoing messages typed on another device, and members joining groups.

Messages from Telegram's service account (777000) carry login codes: their text never goes into an
event (events are stored for days), only the fact that such a message arrived.

What is published (automation's monitoring set, `watched.py`):
- private messages (and their edits): always;
- group, supergroup, channel and gigagroup messages, their edits, and `member-joined`: only of a
  watched chat (id in `MonitoredChats.chat_ids`, or username in `usernames`) while monitoring is
  `active`; nothing of groups before the set was first read (see `watched.py`). Skipped updates are
  counted in `tgm_session_inbound_unwatched_total{kind}`;
- outgoing messages typed on another device (`message-sent`, origin external): always, as before
  (our own accounts' words, which chat history and analytics need wherever they were written).
Decision on the other consumers of group messages: chat history keeps private conversations only
and analytics counts what it is given, so neither needs unwatched groups. The CRM keeps tracked
users' group messages: it now keeps those heard in watched groups (the groups the operator points
the fleet at); a tracked user's words in a group nobody monitors are not published. Should the
product want them everywhere, the rule to add is one more set lookup here (`sender_id` in a
tracked-users set written to the same KV value by campaign).

The adapter asks `wanted` (chat id, direction) before it fetches a group update's chat and sender,
so an unwatched group message costs no fetch; every group message, published or not, first tells
`learn` the account is in that chat (`accounts/membership.py`).

Every event goes out through the outbox (`outbox.py`): what NATS refuses is kept and re-published in
order when NATS is back, so a brief outage loses no message.

Event ids are derived from what the event is about (`stable_id`: account, chat, message id; an
edit's date; a join's user and date), not drawn at random: the same message seen twice (live and
again by catch-up, `catchup.py`) is the same event, which JetStream's duplicate window drops and
consumers keyed by event id keep once. An outgoing message is ours (no `message-sent` external)
when the in-memory echo list knows it or, for one seen again after a restart, `sent_before` finds
its `sends` record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tgm_contracts import Event
from tgm_contracts.base import utcnow
from tgm_contracts.events_session import MemberJoined, MessageEdited, MessageReceived, MessageSent

from ..metrics import SessionMetrics
from ..ports import InboundHandlers, InboundJoin, InboundMessage
from .outbox import Outbox
from .watched import WatchedChats

log = logging.getLogger("tgm.session.inbound")

SERVICE_USER_ID = 777000
REDACTED = "[message from Telegram's service account; not forwarded because it may hold a login code]"
_IDS = uuid.UUID("8c4f4f7e-2a7c-4c55-9d1e-5b7f3f1f0a11")


def stable_id(*parts: object) -> str:
    """The event id of a fact: the same parts, the same id (what makes a re-fetched message a
    duplicate everybody drops)."""
    return uuid.uuid5(_IDS, ":".join(str(p) for p in parts)).hex


@dataclass(eq=False)
class Inbound:
    #: Publishes, keeping what NATS refuses (`outbox.py`).
    outbox: Outbox
    metrics: SessionMetrics
    #: (account id, chat id, message id) -> True if this replica sent it through the send path.
    own_send: Callable[[str, int, int], bool]
    #: The chats automation watches (`watched.py`).
    watched: WatchedChats
    touch: Callable[[str], Awaitable[None]] | None = None
    #: (account id, chat id) of every group message, watched or not, before its event goes out: the
    #: account is in that chat (`accounts/membership.py` `Memberships.seen`: never raises, one write
    #: per pair per process).
    learn: Callable[[str, int], Awaitable[None]] | None = None
    #: (account id, chat id) when an update says the account left or was removed from the chat.
    unlearn: Callable[[str, int], Awaitable[None]] | None = None
    #: (account id, chat id, message id) -> True if a `sends` record says we sent it (an echo seen
    #: again by catch-up after a restart, when the in-memory `own_send` list is gone).
    sent_before: Callable[[str, int, int], Awaitable[bool]] | None = None

    def handlers(self, account_id: str) -> InboundHandlers:
        async def on_message(msg: InboundMessage) -> None:
            await self.message(account_id, msg)

        async def on_join(join: InboundJoin) -> None:
            await self.join(account_id, join)

        async def on_left(chat_id: int) -> None:
            if self.unlearn is not None:
                await self.unlearn(account_id, chat_id)

        async def wanted(chat_id: int, outgoing: bool, edited: bool) -> bool:
            return await self.wanted(account_id, chat_id, outgoing, edited)

        return InboundHandlers(on_message=on_message, on_join=on_join, on_left=on_left, wanted=wanted)

    async def wanted(self, account_id: str, chat_id: int, outgoing: bool, edited: bool) -> bool:
        """A group message known by chat id only (before the adapter fetches chat and sender): False
        when `message` would skip it whatever the chat's username; it is learnt and counted here."""
        if (outgoing and not edited) or self.watched.may_want(chat_id):
            return True
        if self.learn is not None:
            await self.learn(account_id, chat_id)
        self.metrics.unwatched.labels("edit" if edited else "message").inc()
        return False

    async def _count_and_emit(self, kind: str, event: Event) -> None:
        self.metrics.inbound.labels(kind).inc()
        await self.outbox.publish(event)

    async def message(self, account_id: str, msg: InboundMessage) -> None:
        if self.learn is not None and msg.chat_kind != "private":
            await self.learn(account_id, msg.chat_id)
        # Groups: only watched chats (edits too); our own new messages typed elsewhere: always.
        if (
            msg.chat_kind != "private"
            and (msg.edited or not msg.outgoing)
            and not self.watched.group(msg.chat_id, msg.chat_username)
        ):
            self.metrics.unwatched.labels("edit" if msg.edited else "message").inc()
            return
        text = msg.text
        if msg.sender_id == SERVICE_USER_ID or (
            msg.chat_kind == "private" and msg.chat_id == SERVICE_USER_ID
        ):
            text = REDACTED
        # What every message event says of the message: whose, where, which and its text.
        seen: dict[str, Any] = {
            "account_id": account_id,
            "chat_kind": msg.chat_kind,
            "chat_id": msg.chat_id,
            "message_id": msg.message_id,
            "text": text,
        }
        if msg.edited:
            edit_date = msg.edit_date or msg.date or utcnow()
            await self._count_and_emit(
                "edit",
                MessageEdited(
                    **seen,
                    event_id=stable_id(
                        "edit", account_id, msg.chat_id, msg.message_id, edit_date.timestamp()
                    ),
                    sender_id=msg.sender_id,
                    edit_date=edit_date,
                ),
            )
            return
        if msg.outgoing:
            if self.own_send(account_id, msg.chat_id, msg.message_id):
                return
            if self.sent_before is not None and await self.sent_before(
                account_id, msg.chat_id, msg.message_id
            ):
                return
            await self._count_and_emit(
                "outgoing",
                MessageSent(
                    **seen,
                    event_id=stable_id("sent", account_id, msg.chat_id, msg.message_id),
                    has_media=msg.media_kind is not None,
                    reply_to_message_id=msg.reply_to_message_id,
                    sent_at=msg.date,
                    origin="external",
                ),
            )
            return
        await self._count_and_emit(
            "message",
            MessageReceived(
                **seen,
                event_id=stable_id("received", account_id, msg.chat_id, msg.message_id),
                chat_title=msg.chat_title,
                chat_username=msg.chat_username,
                sender_id=msg.sender_id,
                sender=msg.sender,
                date=msg.date,
                reply_to_message_id=msg.reply_to_message_id,
                media_kind=msg.media_kind,
                mentioned=msg.mentioned,
                is_outgoing=False,
                forwarded=msg.forwarded,
                grouped_id=msg.grouped_id,
            ),
        )
        if self.touch is not None:
            await self.touch(account_id)

    async def join(self, account_id: str, join: InboundJoin) -> None:
        if not self.watched.chat(join.chat_id):
            self.metrics.unwatched.labels("join").inc()
            return
        for user in join.users:
            await self._count_and_emit(
                "join",
                MemberJoined(
                    event_id=stable_id(
                        "joined", account_id, join.chat_id, user.user_id, join.date.timestamp()
                    ),
                    account_id=account_id,
                    chat_id=join.chat_id,
                    chat_title=join.chat_title,
                    user=user,
                    inviter_id=join.inviter_id,
                    via=join.via,
                    joined_at=join.date,
                ),
            )
